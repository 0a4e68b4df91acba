"""Storage per event (issue 21): bytes on disk per stored event of every table
of the event store (events, commands, positions, the hash chain) and of every
projection, and the growth per million events.

Loads `--jobs` task jobs through the application and the projector's own
`Store.apply_batch` (as `bench/api.py` does), vacuums, and divides each table's
`pg_total_relation_size` (heap, TOAST and indexes) by the events stored.

Last line:

    RESULT events=<n> event_store_bytes_per_event=<x> projections_bytes_per_event=<y>
           gb_per_million_events=<z>   (one line)

Run: `flock /tmp/settlement-bench.lock .venv/bin/python bench/storage.py`
"""

from __future__ import annotations

import argparse

import psycopg
from api import bench_database, load  # bench/api.py, beside this file
from machine import describe  # bench/machine.py, beside this file


def sizes(url: str) -> tuple[int, list[tuple[str, int, int]]]:
    """The events stored, and (schema.table, rows, bytes) of every table."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        tables = conn.execute(
            "SELECT n.nspname || '.' || c.relname, c.reltuples::bigint, "
            "pg_total_relation_size(c.oid) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') "
            "AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') "
            "ORDER BY 3 DESC").fetchall()
        events = conn.execute("SELECT max(position) FROM projections.audit_log").fetchone()
    return int(events[0]) if events and events[0] else 0, [
        (name, max(int(rows), 0), int(size)) for name, rows, size in tables]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5_000, help="task jobs, 20 events each")
    args = parser.parse_args()
    print(describe(), flush=True)
    with bench_database("bench_storage") as (url, settings):
        load(url, settings, args.jobs)
        events, tables = sizes(url)
    store = sum(size for table, _, size in tables if not table.startswith("projections."))
    projections = sum(size for table, _, size in tables if table.startswith("projections."))
    print(f"{events:,} events ({args.jobs:,} task jobs)")
    print(f"{'table':<40} {'rows':>10} {'bytes':>12} {'bytes/event':>12} {'MB per 1M events':>17}")
    for table, rows, size in tables:
        if size > 16_384:
            print(f"{table:<40} {rows:>10,} {size:>12,} {size / events:>12,.0f} "
                  f"{size / events:>17,.0f}")
    total = store + projections
    print(f"RESULT events={events} event_store_bytes_per_event={store / events:.0f} "
          f"projections_bytes_per_event={projections / events:.0f} "
          f"gb_per_million_events={total / events * 1e6 / 1e9:.2f}")


if __name__ == "__main__":
    main()
