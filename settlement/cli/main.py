"""The `settlement` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from settlement.cli.api import add_commands as add_api_commands
from settlement.cli.common import add_loop_options
from settlement.cli.payouts import add_commands as add_payout_commands
from settlement.cli.projections import add_commands as add_projection_commands
from settlement.cli.relay import add_commands as add_relay_commands
from settlement.cli.timers import add_commands as add_timer_commands
from settlement.infra.config import Settings
from settlement.infra.logging import configure_logging
from settlement.service.supervisor import add_commands as add_run_commands


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from settlement.infra.bootstrap import open_application
    from settlement.service.day import run_demo

    with open_application(settings) as app:
        return 0 if run_demo(app, sys.stdout) else 1


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
        stats = asyncio.run(_until_signal(ingestor.run, args.idle_exit))
        print(stats, flush=True)
    return 0


async def _until_signal(run: Any, idle_exit: float | None) -> Any:
    import asyncio
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return await run(stop, idle_exit)


def _audit_verify(args: argparse.Namespace, settings: Settings) -> int:
    import json

    from settlement.audit.verify import verify_chain
    from settlement.infra.bootstrap import open_application

    with open_application(settings) as app:
        result = verify_chain(app, progress=lambda n: print(f"checked {n}", file=sys.stderr))
    print(json.dumps({"ok": result.ok, "events_checked": result.events_checked,
                      "first_bad_position": result.first_bad_position}))
    return 0 if result.ok else 1


def _audit_export(args: argparse.Namespace, settings: Settings) -> int:
    from settlement.audit.export import export_rows, write_csv, write_jsonl
    from settlement.core.commands import timestamp
    from settlement.infra.bootstrap import open_application

    def when(value: str | None) -> Any:
        return timestamp({"t": value}, "t") if value else None

    with open_application(settings) as app:
        rows = export_rows(app, start=when(args.start), end=when(args.end), job_id=args.job)
        write = write_jsonl if args.format == "jsonl" else write_csv
        count = write(rows, sys.stdout)
    print(f"exported {count} events", file=sys.stderr)
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="settlement", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run a sample marketplace day and print the ledger")
    demo.set_defaults(func=_demo)
    ingest = commands.add_parser("ingest", help="consume marketplace events into escrows")
    ingest.add_argument("--group", default="settlement-ingest", help="consumer group id")
    ingest.add_argument("--client", default="settlement-ingest", help="client id")
    add_loop_options(ingest, batch_flag="--batch-records",
                     batch_help="records per poll batch (one database transaction)")
    ingest.set_defaults(func=_ingest)
    audit = commands.add_parser("audit", help="auditors' tools").add_subparsers(
        dest="audit_command", required=True)
    verify = audit.add_parser("verify", help="recompute the hash chain over the whole history")
    verify.set_defaults(func=_audit_verify)
    export = audit.add_parser("export", help="stream the history with hashes")
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    export.add_argument("--from", dest="start", help="events with time at or after (ISO 8601)")
    export.add_argument("--to", dest="end", help="events with time at or before (ISO 8601)")
    export.add_argument("--job", help="only this job's events")
    export.set_defaults(func=_audit_export)
    add_relay_commands(commands)
    add_api_commands(commands)
    add_payout_commands(commands)
    add_timer_commands(commands)
    add_run_commands(commands)
    add_projection_commands(commands)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    configure_logging()
    settings = Settings.from_env()
    result: int = args.func(args, settings)
    return result


if __name__ == "__main__":
    sys.exit(main())
