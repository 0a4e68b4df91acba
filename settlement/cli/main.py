"""The `settlement` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from settlement.cli import (
    api,
    audit,
    demo,
    ingest,
    invoices,
    payouts,
    projections,
    reconcile,
    relay,
    run,
    tax,
    timers,
)
from settlement.core.errors import ConfigError
from settlement.core.fees import load_fee_plans
from settlement.infra.config import Settings
from settlement.infra.logging import configure_logging, get_logger

CONFIG_INVALID_EXIT = 2  # as argparse's for a bad command line

# In the order `settlement --help` lists their commands.
GROUPS = (demo, ingest, audit, relay, api, payouts, timers, run, projections, reconcile,
          tax, invoices)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="settlement", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.add_commands(commands)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    configure_logging()
    try:
        settings = Settings.from_env()
        # The fee plans too (floors included): a bad file stops any command here.
        load_fee_plans(settings.fee_plans_path)
    except ConfigError as exc:
        # One line naming the variable and entry at fault, not a traceback.
        get_logger().error("config.invalid", error=str(exc))
        return CONFIG_INVALID_EXIT
    result: int = args.func(args, settings)
    return result


if __name__ == "__main__":
    sys.exit(main())
