"""Rebuild every projection from the event store into a fresh schema (SPEC §8).

The notification log is read in pages; each page becomes the CloudEvents the
relay publishes (`to_cloud_event`) and goes through the very `Store.apply_batch`
the live projector uses, one transaction per page. Memory stays bounded by the
page, whatever the length of the history.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg

from settlement.application import SettlementApplication
from settlement.events_out import to_cloud_event
from settlement.projections import schema
from settlement.projections.digest import digest
from settlement.projections.envelope import parse
from settlement.projections.store import Store

PAGE_EVENTS = 1_000


@dataclass(frozen=True)
class Rebuilt:
    schema: str
    events: int
    through_position: int
    digest: str
    seconds: float


def cloud_events(app: SettlementApplication, start: int, limit: int,
                 stop: int | None = None) -> list[dict[str, Any]]:
    """The stored events from position `start` (at most `limit`, none after `stop`)
    as the relay publishes them, through JSON, so a rebuild reads exactly what
    a projector decodes from Kafka."""
    notifications = app.recorder.select_notifications(start, limit, stop=stop)
    return [orjson.loads(orjson.dumps(to_cloud_event(n.id, app.mapper.to_domain_event(n))))
            for n in notifications]


@contextmanager
def _connection(app: SettlementApplication,
                conn: psycopg.Connection[Any] | None) -> Iterator[psycopg.Connection[Any]]:
    if conn is not None:
        yield conn
        return
    # The application's pool hands out connections in autocommit mode, as Store needs.
    with app.recorder.datastore.get_connection() as pooled:  # type: ignore[attr-defined]
        yield pooled


def rebuild(app: SettlementApplication, schema_name: str, *,
            conn: psycopg.Connection[Any] | None = None, through: int | None = None,
            page_events: int = PAGE_EVENTS) -> Rebuilt:
    """Rebuild into `schema_name` (replacing an earlier rebuild there) every event up
    to position `through` (default: the last one stored when the rebuild starts)."""
    started = time.monotonic()
    last = through if through is not None else app.recorder.max_notification_id() or 0
    count, position = 0, 0
    with _connection(app, conn) as connection:
        schema.recreate_for_rebuild(connection, schema_name)
        store = Store(connection, schema_name)
        while position < last:
            page = cloud_events(app, position + 1, page_events, stop=last)
            if not page:
                break
            changes = store.apply_batch([parse(event) for event in page])
            count += changes.applied
            position = page[-1]["data"]["position"]
        return Rebuilt(schema_name, count, position, digest(connection, schema_name),
                       time.monotonic() - started)
