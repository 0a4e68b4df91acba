"""`settlement timers run --now T` (one pass) and `settlement timers loop
[--interval S]` (a pass every S seconds at the wall clock, until SIGTERM)."""

from __future__ import annotations

import argparse
from typing import Any

from settlement.cli.payouts import _aware_time
from settlement.infra.config import Settings

DEFAULT_INTERVAL_S = 60.0


def add_commands(commands: Any) -> None:
    """Add `timers run` and `timers loop` to the `settlement` subparsers `commands`."""
    timers = commands.add_parser("timers", help="automatic actions that are due (SPEC §2)")
    actions = timers.add_subparsers(dest="timers_command", required=True, metavar="{run,loop}")
    run = actions.add_parser("run", help="one timer pass at --now")
    run.add_argument("--now", type=_aware_time, required=True,
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
    import signal

    from settlement.infra.bootstrap import open_application
    from settlement.timers.run import timer_loop

    async def until_signal() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        return await timer_loop(app, stop, args.interval)

    with open_application(settings) as app:
        asyncio.run(until_signal())
    return 0
