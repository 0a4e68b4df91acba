"""`settlement ingest`: consume marketplace job events and payout results into
escrows until SIGTERM (or `--idle-exit`), then print the consumer's counts.
Heavy modules are imported by the command itself."""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING, Any

from settlement.cli.common import add_loop_options, catch_stop_signals, run_until_signal
from settlement.infra.config import Settings

if TYPE_CHECKING:
    from settlement.ingest.consumer import IngestStats


def add_commands(commands: Any) -> None:
    """Add `ingest` to the `settlement` subparsers `commands`."""
    ingest = commands.add_parser("ingest", help="consume marketplace events into escrows")
    ingest.add_argument("--group", default="settlement-ingest", help="consumer group id")
    ingest.add_argument("--client", default="settlement-ingest", help="client id")
    add_loop_options(ingest, batch_flag="--batch-records",
                     batch_help="records per poll batch (one database transaction)")
    ingest.set_defaults(func=_ingest)


def _ingest(args: argparse.Namespace, settings: Settings) -> int:
    from settlement.infra.broker import kafka
    from settlement.infra.postgres import database
    from settlement.ingest.consumer import IngestStats

    catch_stop_signals()
    with kafka(settings) as bootstrap, database(settings) as url:
        stats = run_until_signal(lambda stop: _consume(args, settings, url, bootstrap, stop))
    print(stats or IngestStats(), flush=True)
    return 0


async def _consume(args: argparse.Namespace, settings: Settings, url: str, bootstrap: str,
                   stop: asyncio.Event) -> IngestStats | None:
    """The consumer, once PostgreSQL and the broker answer; None if stopped first."""
    from settlement.infra.bootstrap import owner_env, service_application, service_topics, tune_gc
    from settlement.infra.liveness import Liveness
    from settlement.infra.logging import get_logger
    from settlement.infra.outage import Outages
    from settlement.infra.topics import Topics
    from settlement.ingest.consumer import Ingestor

    topics = Topics(settings.topic_prefix)
    log = get_logger(component="ingest", group=args.group, client=args.client)
    with Liveness(url, args.client, log, "ingest") as liveness:
        outages = Outages(log, "ingest", liveness.waiting)
        app = await service_application(url, settings, outages, stop, owner_env())
        if app is None:
            return None
        try:
            if not await service_topics(bootstrap, topics.all, args.partitions, outages, stop):
                return None
            tune_gc()
            ingestor = Ingestor(app, bootstrap, topics, group_id=args.group,
                                client_id=args.client, batch_records_max=args.batch_records,
                                fetch_wait_ms=settings.batching.fetch_wait_ms,
                                liveness=liveness)
            return await ingestor.run(stop, args.idle_exit)
        finally:
            await asyncio.to_thread(app.close)
