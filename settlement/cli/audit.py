"""`settlement audit verify` (recompute the hash chain over the whole history;
exit status 1 if it breaks) and `settlement audit export` (the history with its
hashes, as JSON lines or CSV on stdout)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from settlement.infra.config import Settings


def add_commands(commands: Any) -> None:
    """Add `audit verify` and `audit export` to the `settlement` subparsers `commands`."""
    audit = commands.add_parser("audit", help="auditors' tools").add_subparsers(
        dest="audit_command", required=True)
    verify = audit.add_parser("verify", help="recompute the hash chain over the whole history "
                              "and check the statement lines against their events")
    verify.set_defaults(func=_verify)
    export = audit.add_parser("export", help="stream the history with hashes")
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    export.add_argument("--from", dest="start", help="events with time at or after (ISO 8601)")
    export.add_argument("--to", dest="end", help="events with time at or before (ISO 8601)")
    export.add_argument("--job", help="only this job's events")
    export.set_defaults(func=_export)


def _verify(args: argparse.Namespace, settings: Settings) -> int:
    import json

    from settlement.audit.verify import verify_chain
    from settlement.infra.bootstrap import open_application

    with open_application(settings) as app:
        result = verify_chain(app, progress=lambda n: print(f"checked {n}", file=sys.stderr))
    print(json.dumps({"ok": result.ok, "events_checked": result.events_checked,
                      "first_bad_position": result.first_bad_position}))
    return 0 if result.ok else 1


def _export(args: argparse.Namespace, settings: Settings) -> int:
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
