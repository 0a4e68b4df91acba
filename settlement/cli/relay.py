"""`settlement relay` (run the relay), `settlement relay reset --from POSITION` and
`settlement relay status`. Heavy modules are imported by the commands themselves."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import TYPE_CHECKING, Any

from settlement.cli.common import add_loop_options, catch_stop_signals, run_until_signal
from settlement.infra.config import Settings

if TYPE_CHECKING:
    from settlement.relay.stats import RelayStats


def add_commands(commands: Any) -> None:
    """Add `relay` and its subcommands to the `settlement` subparsers `commands`."""
    relay = commands.add_parser(
        "relay", help="publish settlement events to Kafka (the outbox relay)",
        description="Follow the event store and publish every settlement event to "
                    "settlement.events; `reset` chooses where the next run starts.")
    relay.add_argument("--name", default="relay", help="relay name (key of its stored position)")
    add_loop_options(relay, batch_flag="--batch-events",
                     batch_help="events per batch (acknowledged before the position is stored)",
                     idle_help="stop after this long without new events (tests, benchmarks)")
    relay.set_defaults(func=_run)
    actions = relay.add_subparsers(dest="relay_command", metavar="{reset,status}")
    reset = actions.add_parser(
        "reset", help="make the next run publish again from POSITION",
        description="Store POSITION - 1 as the relay's published position, so that its "
                    "next run publishes every event from POSITION on again (after the "
                    "broker lost its data). Stop the relay first.")
    reset.add_argument("--from", dest="from_position", type=_position, required=True,
                       metavar="POSITION", help="the first position to publish again (>= 1)")
    status = actions.add_parser("status", help="print the relay's position, head and lag")
    for sub in (reset, status):
        # SUPPRESS: `relay --name x reset` must not be overwritten by this default.
        sub.add_argument("--name", default=argparse.SUPPRESS, help="relay name")
    reset.set_defaults(func=_reset)
    status.set_defaults(func=_status)


def _position(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"positions start at 1, got {value}")
    return value


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from settlement.infra.broker import kafka
    from settlement.infra.postgres import database
    from settlement.relay.service import BrokerDataLoss

    catch_stop_signals()
    with kafka(settings) as bootstrap, database(settings) as url:
        try:
            stats = run_until_signal(lambda stop: _relaying(args, settings, url, bootstrap, stop))
        except BrokerDataLoss as lost:
            then = ("The topic held only the batch in flight: it was emptied and the relay "
                    "set back to publish every event again when it starts (to choose "
                    "another start: `settlement relay reset --from POSITION`)."
                    if lost.stale_log_only else
                    "Choose the first position to publish again, run `settlement relay reset "
                    "--from POSITION`, then start the relay.")
            print(f"settlement relay: {lost}. {then}", file=sys.stderr, flush=True)
            return 1
    if stats is not None:
        print(json.dumps({"relay": args.name, **stats.as_dict()}), flush=True)
    return 0


async def _relaying(args: argparse.Namespace, settings: Settings, url: str, bootstrap: str,
                    stop: asyncio.Event) -> RelayStats | None:
    """The relay, once PostgreSQL answers; None if stopped first."""
    from settlement.infra.bootstrap import service_application, tune_gc
    from settlement.infra.liveness import Liveness
    from settlement.infra.logging import get_logger
    from settlement.infra.outage import Outages
    from settlement.infra.topics import Topics
    from settlement.relay.service import Relay

    log = get_logger(component="relay", relay=args.name)
    with Liveness(url, args.name, log, "relay") as liveness:
        outages = Outages(log, "relay", liveness.waiting)
        app = await service_application(url, settings, outages, stop)
        if app is None:
            return None
        try:
            tune_gc()
            relay = Relay(app, bootstrap, Topics(settings.topic_prefix), args.name,
                          batch_events_max=args.batch_events, partitions=args.partitions,
                          linger_s=settings.batching.relay_linger_ms / 1000,
                          liveness=liveness)
            return await relay.run(stop, args.idle_exit)
        finally:
            await asyncio.to_thread(app.close)


def _reset(args: argparse.Namespace, settings: Settings) -> int:
    from settlement.infra.bootstrap import open_application
    from settlement.relay.positions import RelayPositions

    with open_application(settings) as app:
        positions = RelayPositions(app.store)
        positions.create_table()
        previous = positions.reset(args.name, args.from_position - 1)
        head = app.recorder.max_notification_id() or 0
    print(json.dumps({"relay": args.name, "previous_position": previous,
                      "position": args.from_position - 1, "head": head,
                      "next_run_publishes_from": args.from_position}), flush=True)
    return 0


def _status(args: argparse.Namespace, settings: Settings) -> int:
    from settlement.infra.bootstrap import open_application
    from settlement.relay.positions import RelayPositions

    with open_application(settings) as app:
        positions = RelayPositions(app.store)
        positions.create_table()
        position = positions.get(args.name)
        head = app.recorder.max_notification_id() or 0
    print(json.dumps({"relay": args.name, "position": position, "head": head,
                      "lag": max(0, head - position)}), flush=True)
    return 0
