"""`settlement payouts run --closing YYYY-MM-DD | --now T [--csv PATH] [--zengin PATH]
[--run-id ID] [--batch-parties N]`: one payout run.

Also runnable on its own as `python -m settlement.cli.payouts run …`. A closing
runs once: running it again is a no-op that reports the first and exports the
same batch and file. Repeating a `--now` run (same `--now` or `--run-id`) does
the same: the way to finish a run that crashed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from settlement.cli.common import instant
from settlement.infra.config import Settings


def add_commands(commands: Any) -> None:
    """Add `payouts run` to the `settlement` subparsers `commands`."""
    payouts = commands.add_parser("payouts", help="pay out payable and refundable balances")
    actions = payouts.add_subparsers(dest="payouts_command", required=True, metavar="{run}")
    run = actions.add_parser(
        "run", help="one payout run: a closing, or a run at --now",
        description="Pay each party with something payable and nothing holding it (one "
                    "payout per currency), record a hold or carry-over for every other, "
                    "write the run's Zengin file (JPY) and its batch as CSV.")
    run.add_argument("--closing", type=date.fromisoformat, default=None, metavar="YYYY-MM-DD",
                     help="the closing to run: the 15th or a month end (JST)")
    run.add_argument("--now", type=instant, default=None,
                     help="business time of the run (ISO 8601 with a timezone); required "
                          "without --closing, else the wall clock")
    run.add_argument("--csv", type=Path, default=None, metavar="PATH",
                     help="write the run's batch to PATH")
    run.add_argument("--zengin", type=Path, default=None, metavar="PATH",
                     help="write the run's 総合振込 file (JPY) to PATH")
    run.add_argument("--run-id", default=None,
                     help="run id of a --now run (default: derived from --now, e.g. "
                          "run-20261126T000000Z); a closing's is closing-YYYY-MM-DD")
    run.add_argument("--batch-parties", type=int, default=1_000, metavar="N",
                     help="parties stored per transaction (default 1000)")
    run.set_defaults(func=_run)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from settlement.infra.bootstrap import open_application
    from settlement.payouts.closing import run_payouts_cli
    from settlement.payouts.policy import load_policy

    if args.closing is None and args.now is None:
        raise SystemExit("settlement payouts run: give --closing YYYY-MM-DD or --now T")
    if args.closing is not None and args.run_id is not None:
        raise SystemExit("settlement payouts run: a closing's run id is closing-YYYY-MM-DD")
    # The wall clock is read here, at the edge: a closing may start only once its day ended.
    now = args.now or datetime.now(UTC)
    policy = load_policy(settings.payout_config_path)
    with open_application(settings) as app:
        return run_payouts_cli(app, now, args.csv, args.run_id, closing=args.closing,
                               zengin_path=args.zengin, policy=policy,
                               batch_parties=args.batch_parties)


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
