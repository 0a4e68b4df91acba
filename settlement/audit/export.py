"""`settlement audit export`: stream the history with its hashes (SPEC §8), for
external audit tools. Each row carries what the chain was computed over
(`stored`: stream, version, type and the stored bytes), so the chain can be
re-verified from the exported file alone (`verify_export`). A statement event's
JSON line also carries the lines stored beside it (`statement_lines`: their
canonical rows, `store.statement_lines`), which its digest covers; the CSV form
does not (its columns are the event's)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, TextIO
from uuid import UUID

from settlement.application.app import SettlementApplication
from settlement.audit.verify import chain_rows
from settlement.ledger.chain import GENESIS, ChainedEvent, Verification, link
from settlement.reconcile.events import StatementImported
from settlement.relay.cloudevents import to_cloud_event
from settlement.relay.records import is_settlement_event
from settlement.store.statement_lines import HASHED, LineDigest, canonical

CSV_COLUMNS = ("position", "job_id", "version", "type", "time", "causation_id", "hash",
               "prev_hash", "originator_id", "topic", "state")


def export_rows(app: SettlementApplication, *, start: datetime | None = None,
                end: datetime | None = None, job_id: str | None = None) -> Iterator[dict[str, Any]]:
    """Stored events in order with hashes; filters keep each row's own link checkable."""
    for position, stored, hash_, prev_hash in chain_rows(app):
        if stored is None:
            continue  # a deleted row: `audit verify` reports it; nothing to export
        row = _row(app, position, stored, hash_, prev_hash)
        if job_id is not None and row["job_id"] != job_id:
            continue
        time = datetime.fromisoformat(row["time"]) if row["time"] else None
        if time is not None and ((start and time < start) or (end and time > end)):
            continue
        yield row


def _row(app: SettlementApplication, position: int, stored: ChainedEvent, hash_: str | None,
         prev_hash: str | None) -> dict[str, Any]:
    event = app.mapper.to_domain_event(_notification(stored))
    wire = to_cloud_event(position, event) if is_settlement_event(event) else None
    return {
        "position": position, "job_id": getattr(event, "job_id", None),
        "version": stored.originator_version, "type": wire["type"] if wire else stored.topic,
        "time": event.timestamp.isoformat() if hasattr(event, "timestamp") else None,
        "causation_id": getattr(event, "causation_id", None),
        "data": wire["data"] if wire else None, "hash": hash_, "prev_hash": prev_hash,
        "stored": {"originator_id": str(stored.originator_id), "topic": stored.topic,
                   "state": stored.state.decode("utf-8")},
        **_statement_lines(app, event),
    }


def _statement_lines(app: SettlementApplication, event: Any) -> dict[str, Any]:
    """A statement event's stored lines (JSON lines only): its canonical rows in
    order (`store.statement_lines`), whose digest the event carries."""
    digest = getattr(event, "digest", None) if isinstance(event, StatementImported) else None
    if not isinstance(digest, dict) or not digest.get("lines"):
        return {}
    width = len(HASHED)
    return {"statement_lines": [canonical(*row[:width]) for row in
                                app.store.select_statement_lines(digest["first_line_id"])]}


def _notification(stored: ChainedEvent) -> Any:
    from eventsourcing.persistence import Notification

    return Notification(id=stored.position, originator_id=stored.originator_id,
                        originator_version=stored.originator_version, topic=stored.topic,
                        state=stored.state)


def write_jsonl(rows: Iterable[dict[str, Any]], out: TextIO) -> int:
    count = 0
    for row in rows:
        out.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")
        count += 1
    return count


def write_csv(rows: Iterable[dict[str, Any]], out: TextIO) -> int:
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    count = 0
    for row in rows:
        stored = row["stored"]
        writer.writerow([row["position"], row["job_id"], row["version"], row["type"],
                         row["time"], row["causation_id"], row["hash"], row["prev_hash"],
                         stored["originator_id"], stored["topic"], stored["state"]])
        count += 1
    return count


def verify_export(rows: Iterable[dict[str, Any]], *, complete: bool = True) -> Verification:
    """Re-verify exported rows alone: each row's hash from its own content and
    `prev_hash`; for a complete export also that they chain from GENESIS."""
    prev, checked = GENESIS, 0
    for row in rows:
        checked += 1
        stored = row["stored"]
        event = ChainedEvent(int(row["position"]), UUID(stored["originator_id"]),
                             int(row["version"]), stored["topic"], stored["state"].encode())
        if (complete and row["prev_hash"] != prev) or link(row["prev_hash"], event) != row["hash"]:
            return Verification(False, checked, int(row["position"]))
        if "statement_lines" in row and LineDigest.of(row["statement_lines"]).to_json() != \
                (row["data"] or {}).get("digest"):
            return Verification(False, checked, int(row["position"]))
        prev = row["hash"]
    return Verification(True, checked, None)
