"""`settlement timers run --now T` (one pass) and `settlement timers loop
[--interval S]` (a pass every S seconds at the wall clock, until SIGTERM)."""

from __future__ import annotations

import argparse
from typing import Any

from settlement.cli.common import instant, until_signal
from settlement.infra.config import Settings

DEFAULT_INTERVAL_S = 60.0


def add_commands(commands: Any) -> None:
    """Add `timers run` and `timers loop` to the `settlement` subparsers `commands`."""
    timers = commands.add_parser("timers", help="automatic actions that are due (SPEC §2)")
    actions = timers.add_subparsers(dest="timers_command", required=True, metavar="{run,loop}")
    run = actions.add_parser("run", help="one timer pass at --now")
    run.add_argument("--now", type=instant, required=True,
                     help="business time of the pass (ISO 8601 with a timezone)")
    run.set_defaults(func=_run)
    loop = actions.add_parser("loop", help="a timer pass every --interval seconds until SIGTERM")
    loop.add_argument("--interval", type=float, default=DEFAULT_INTERVAL_S, metavar="SECONDS")
    loop.set_defaults(func=_loop)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from settlement.infra.bootstrap import open_application
    from settlement.timers.run import run_timers_cli

    with open_application(settings) as app:
        return run_timers_cli(app, args.now)


def _loop(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from settlement.infra.bootstrap import open_application
    from settlement.timers.run import timer_loop

    with open_application(settings) as app:
        asyncio.run(until_signal(lambda stop: timer_loop(app, stop, args.interval)))
    return 0
