"""`settlement ingest`: consume marketplace job events and payout results into
escrows until SIGTERM (or `--idle-exit`), then print the consumer's counts.
Heavy modules are imported by the command itself."""

from __future__ import annotations

import argparse
from typing import Any

from settlement.cli.common import add_loop_options, until_signal
from settlement.infra.config import Settings


def add_commands(commands: Any) -> None:
    """Add `ingest` to the `settlement` subparsers `commands`."""
    ingest = commands.add_parser("ingest", help="consume marketplace events into escrows")
    ingest.add_argument("--group", default="settlement-ingest", help="consumer group id")
    ingest.add_argument("--client", default="settlement-ingest", help="client id")
    add_loop_options(ingest, batch_flag="--batch-records",
                     batch_help="records per poll batch (one database transaction)")
    ingest.set_defaults(func=_ingest)


def _ingest(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from settlement.infra.bootstrap import open_application, owner_env, tune_gc
    from settlement.infra.broker import ensure_topics, kafka
    from settlement.infra.topics import Topics
    from settlement.ingest.consumer import Ingestor

    topics = Topics(settings.topic_prefix)
    with kafka(settings) as bootstrap, open_application(settings, owner_env()) as app:
        asyncio.run(ensure_topics(bootstrap, topics.all, partitions=args.partitions))
        tune_gc()
        ingestor = Ingestor(app, bootstrap, topics, group_id=args.group, client_id=args.client,
                            batch_records_max=args.batch_records)
        stats = asyncio.run(until_signal(lambda stop: ingestor.run(stop, args.idle_exit)))
        print(stats, flush=True)
    return 0
