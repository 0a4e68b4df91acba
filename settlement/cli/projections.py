"""`settlement project` (run the projector), `settlement rebuild --schema NAME`
(rebuild from the event store and compare with the live read models) and
`settlement replay [--as-of T] [--schema NAME]` (the auditors' replay, projection by
projection, SPEC §8). Heavy modules are imported by the commands themselves."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from settlement.cli.common import add_loop_options, catch_stop_signals, instant, run_until_signal
from settlement.infra.config import Settings


def add_commands(commands: Any) -> None:
    """Add `project`, `rebuild` and `replay` to the `settlement` subparsers `commands`."""
    project = commands.add_parser("project", help="consume settlement events into the read models")
    project.add_argument("--schema", default="projections", help="schema of the read models")
    project.add_argument("--group", default="settlement-projections", help="consumer group id")
    project.add_argument("--client", default="settlement-projector", help="client id")
    add_loop_options(project, batch_flag="--batch-records",
                     batch_help="records per poll batch (one database transaction)")
    project.set_defaults(func=_project)
    rebuild = commands.add_parser(
        "rebuild", help="rebuild the read models from the event store into a fresh schema",
        description="Rebuild every projection from the event store into SCHEMA (replacing "
                    "an earlier rebuild there, never anything else) and print whether its "
                    "digest equals the live projections' (exit status 1 if not). Compare "
                    "while the projector is caught up.")
    rebuild.add_argument("--schema", required=True, help="schema to rebuild into")
    rebuild.add_argument("--live", default="projections", help="schema of the live read models")
    rebuild.add_argument("--page-events", type=int, default=1000,
                         help="events per page read from the store (one transaction)")
    rebuild.set_defaults(func=_rebuild)
    replay = commands.add_parser(
        "replay", help="replay the event history into a fresh schema and compare it with live",
        description="Rebuild every projection from the event store into SCHEMA (a fresh "
                    "schema, or one an earlier replay or rebuild made; never the live "
                    "projections), showing progress on stderr, and print a JSON report "
                    "saying for each projection whether it equals the live one. With "
                    "--as-of T only the events with time <= T are replayed and compared "
                    "with the live projections' answers as of T. Exit status 1 if "
                    "anything differs. Compare while the projector is caught up.")
    replay.add_argument("--as-of", dest="as_of", type=instant, metavar="T",
                        help="an instant (ISO 8601 with a UTC offset, e.g. "
                             "2026-11-26T09:30:00Z): replay the events with time <= T")
    replay.add_argument("--schema", default="replay", help="schema to replay into")
    replay.add_argument("--live", default="projections", help="schema of the live read models")
    replay.add_argument("--page-events", type=int, default=1000,
                        help="events per page read from the store (one transaction)")
    replay.add_argument("--progress-interval", type=float, default=None, metavar="SECONDS",
                        help="seconds between progress updates on stderr (default: 0.2 on "
                             "a terminal, else 5; each update is then one JSON line)")
    replay.set_defaults(func=_replay)


def _project(args: argparse.Namespace, settings: Settings) -> int:
    from settlement.infra.broker import kafka
    from settlement.infra.postgres import database

    catch_stop_signals()
    with kafka(settings) as bootstrap, database(settings) as url:
        snapshot = run_until_signal(lambda stop: _projecting(args, settings, url, bootstrap, stop))
    if snapshot is not None:
        print(json.dumps(snapshot), flush=True)
    return 0


async def _projecting(args: argparse.Namespace, settings: Settings, url: str, bootstrap: str,
                      stop: asyncio.Event) -> dict[str, Any] | None:
    """The projector, once PostgreSQL and the broker answer; its metrics at the end,
    None if stopped first."""
    from settlement.infra import pool
    from settlement.infra.bootstrap import service_application, service_topics, tune_gc
    from settlement.infra.liveness import Liveness
    from settlement.infra.logging import get_logger
    from settlement.infra.outage import DATABASE, Outages
    from settlement.infra.topics import Topics
    from settlement.projections.live.projector import Projector

    topics = Topics(settings.topic_prefix)
    log = get_logger(component="projector", group=args.group, client=args.client)
    with Liveness(url, args.client, log, "projector") as liveness:
        outages = Outages(log, "projector", liveness.waiting)
        app = await service_application(url, settings, outages, stop)  # the head, for the lag
        if app is None:
            return None
        try:
            if not await service_topics(bootstrap, topics.all, args.partitions, outages, stop):
                return None
            tune_gc()
            conn = await outages.run(
                lambda: asyncio.to_thread(pool.connect, url, autocommit=True),
                {DATABASE: lambda: asyncio.to_thread(pool.answers, url)}, stop)
            if conn is None:
                return None
            try:
                projector = Projector(conn, bootstrap, topics, schema_name=args.schema,
                                      group_id=args.group, client_id=args.client,
                                      batch_records_max=args.batch_records,
                                      fetch_wait_ms=settings.batching.fetch_wait_ms,
                                      head=app.recorder.max_notification_id, liveness=liveness)
                await projector.run(stop, args.idle_exit)
                return await asyncio.to_thread(projector.snapshot)
            finally:
                await asyncio.to_thread(conn.close)
        finally:
            await asyncio.to_thread(app.close)


def _rebuild(args: argparse.Namespace, settings: Settings) -> int:
    import psycopg

    from settlement.infra.bootstrap import application
    from settlement.infra.postgres import database
    from settlement.projections.rebuild.serial import rebuild
    from settlement.projections.storage import schema
    from settlement.projections.storage.digest import digest
    from settlement.projections.storage.store import Store

    with database(settings) as url:
        app = application(url, settings)
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                rebuilt = rebuild(app, args.schema, conn=conn, page_events=args.page_events)
                live = schema.role_of(conn, args.live) == schema.LIVE
                live_digest = digest(conn, args.live) if live else None
                live_events = Store(conn, args.live).event_count() if live else 0
        finally:
            app.close()
    report = {"schema": rebuilt.schema, "events": rebuilt.events,
              "through_position": rebuilt.through_position, "digest": rebuilt.digest,
              "live_schema": args.live, "live_events": live_events, "live_digest": live_digest,
              "equal": rebuilt.digest == live_digest, "seconds": round(rebuilt.seconds, 3)}
    print(json.dumps(report), flush=True)
    return 0 if report["equal"] else 1


def _replay(args: argparse.Namespace, settings: Settings) -> int:
    import sys

    import psycopg

    from settlement.infra.bootstrap import application
    from settlement.infra.postgres import database
    from settlement.projections.rebuild.replay import Progress, replay

    with database(settings) as url:
        app = application(url, settings)
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                report = replay(app, conn, schema=args.schema, live=args.live, as_of=args.as_of,
                                page_events=args.page_events,
                                progress=Progress(sys.stderr, args.progress_interval))
        finally:
            app.close()
    print(json.dumps(report.as_dict()), flush=True)
    return 0 if report.equal else 1
