"""`settlement timers run --now T` (one pass) and `settlement timers loop
[--interval S]` (a pass every S seconds at the wall clock, until SIGTERM)."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from settlement.cli.common import catch_stop_signals, instant, run_until_signal
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
    from settlement.infra.postgres import database

    catch_stop_signals()
    with database(settings) as url:
        run_until_signal(lambda stop: _looping(args, settings, url, stop))
    return 0


async def _looping(args: argparse.Namespace, settings: Settings, url: str,
                   stop: asyncio.Event) -> None:
    from settlement.infra.bootstrap import service_application
    from settlement.infra.liveness import STALL_S, Liveness
    from settlement.infra.logging import get_logger
    from settlement.infra.outage import Outages
    from settlement.payouts.policy import load_policy
    from settlement.timers.run import timer_loop

    log = get_logger(component="timers")
    # The loop turns once a pass: a wait between passes is not a stall.
    with Liveness(url, "timers", log, "timers", stall_s=STALL_S + args.interval) as liveness:
        app = await service_application(url, settings, Outages(log, "timers", liveness.waiting),
                                        stop)
        if app is None:
            return
        try:
            await timer_loop(app, stop, args.interval, liveness=liveness,
                             closings=load_policy(settings.payout_config_path),
                             invoices=settings.invoice_issuer)
        finally:
            await asyncio.to_thread(app.close)
