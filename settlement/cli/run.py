"""`settlement run [--demo] [--timer-interval S] [--partitions N] [--consumers N]`:
the whole service as one process tree (`settlement.service.supervisor`)."""

from __future__ import annotations

import argparse
from typing import Any

from settlement.cli.timers import DEFAULT_INTERVAL_S
from settlement.service.supervisor import run_service


def add_commands(commands: Any) -> None:
    """Add `run` to the `settlement` subparsers `commands`."""
    run = commands.add_parser(
        "run", help="run the whole service (consumer, relay, projector, timers, API)",
        description="Start the input consumer, outbox relay, projector, timer loop and "
                    "finance API as one process tree (an embedded PostgreSQL and broker "
                    "when SETTLEMENT_DATABASE_URL / SETTLEMENT_KAFKA_BOOTSTRAP are unset). "
                    "SIGTERM stops it cleanly.")
    run.add_argument("--demo", action="store_true",
                     help="also publish a sample marketplace day, run a payout run and "
                          "print the API address, a token and the trial-balance URL")
    run.add_argument("--timer-interval", type=float, default=DEFAULT_INTERVAL_S,
                     metavar="SECONDS", help="seconds between timer passes")
    run.add_argument("--partitions", type=int, default=4, help="partitions of new topics")
    run.add_argument("--consumers", type=_positive, default=None, metavar="N",
                     help="input consumer and projector processes each, splitting the "
                          "partitions (default: one per core, at most one per partition)")
    run.set_defaults(func=run_service)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value
