"""`settlement payouts run --now T [--csv PATH] [--run-id ID]`: one payout run.

Also runnable on its own as `python -m settlement.cli.payouts run --now T`.
Repeating a run with the same `--now` (or `--run-id`) is a no-op that exports
the same batch again: the way to finish a run that crashed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from settlement.cli.common import instant
from settlement.infra.config import Settings


def add_commands(commands: Any) -> None:
    """Add `payouts run` to the `settlement` subparsers `commands`."""
    payouts = commands.add_parser("payouts", help="pay out payable and refundable balances")
    actions = payouts.add_subparsers(dest="payouts_command", required=True, metavar="{run}")
    run = actions.add_parser(
        "run", help="one payout run",
        description="Create one payout per party and currency with a positive payable or "
                    "refundable balance and export the run's batch as CSV for the bank.")
    run.add_argument("--now", type=instant, required=True,
                     help="business time of the run (ISO 8601 with a timezone)")
    run.add_argument("--csv", type=Path, default=None, metavar="PATH",
                     help="write the run's batch to PATH")
    run.add_argument("--run-id", default=None,
                     help="run id (default: derived from --now, e.g. run-20261126T000000Z)")
    run.set_defaults(func=_run)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from settlement.infra.bootstrap import open_application
    from settlement.payouts.run import run_payouts_cli

    with open_application(settings) as app:
        return run_payouts_cli(app, args.now, args.csv, args.run_id)


def main(argv: Sequence[str] | None = None) -> int:
    from settlement.infra.logging import configure_logging

    root = argparse.ArgumentParser(prog="settlement")
    add_commands(root.add_subparsers(dest="command", required=True))
    args = root.parse_args(["payouts", *(sys.argv[1:] if argv is None else argv)])
    configure_logging()
    result: int = args.func(args, Settings.from_env())
    return result


if __name__ == "__main__":
    sys.exit(main())
