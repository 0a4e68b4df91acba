"""The `settlement` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from settlement.cli import api, audit, demo, ingest, payouts, projections, relay, run, timers
from settlement.infra.config import Settings
from settlement.infra.logging import configure_logging

# In the order `settlement --help` lists their commands.
GROUPS = (demo, ingest, audit, relay, api, payouts, timers, run, projections)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="settlement", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.add_commands(commands)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    configure_logging()
    settings = Settings.from_env()
    result: int = args.func(args, settings)
    return result


if __name__ == "__main__":
    sys.exit(main())
