"""Finance API benchmark (issue 5): read throughput of `/v1/balances` and
`/v1/receivables` with ≥ 100,000 ledger entries loaded.

Task jobs (10 slots, 9 submissions approved, 1,000 workers) are decided in
memory and saved through the application (the event store), then projected
into the live schema by the projector's own `Store.apply_batch`. `settlement
api` then serves them with uvicorn in its own process, and keep-alive clients
(a small raw HTTP/1.1 client on asyncio, so the client costs little of the 2
cores) load each endpoint for a fixed time. Same-run baselines: `/healthz` (the
HTTP and framework floor) and the very SQL of each endpoint run in a loop on
one connection (the database ceiling of one client).

Last line:

    RESULT balances_rps=<n> receivables_rps=<n> healthz_rps=<n> sql_balances_qps=<n>
           sql_receivables_qps=<n> entries=<n>   (one line)

Run: `flock /tmp/settlement-bench.lock .venv/bin/python bench/api.py`
(embedded PostgreSQL unless SETTLEMENT_DATABASE_URL is set; `--jobs 2700` ≈
100,000 entries; `--seconds` per endpoint; `--clients` connections).

`--scale` (issue 21, `bench/apiscale.py`): instead, p50/p99 of every endpoint
whose cost could grow with the data, at 1× (the jobs above) and again after the
read models grow by 10,000,000 ledger entries, 1,000,000 receivables and
100,000 accounts (× `--scale-factor`), in one run. Last line:

    RESULT scale_entries=<n> worst_p99_ratio=<x> worst_endpoint=<name>
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import apiscale  # bench/apiscale.py, beside this file
import psycopg
from machine import describe  # bench/machine.py, beside this file
from psycopg import sql

from settlement.api.queries import balances as balance_queries
from settlement.api.queries import receivables as receivable_queries
from settlement.application import handlers
from settlement.core.commands import Command
from settlement.infra.bootstrap import application, owner_env
from settlement.infra.config import Settings
from settlement.infra.postgres import create_database, database, drop_database, with_dbname
from settlement.projections.model.envelope import parse
from settlement.projections.rebuild.serial import cloud_events
from settlement.projections.storage import schema
from settlement.projections.storage.store import Store
from settlement.service.scenario import cloud_event

START = datetime(2026, 11, 26, 9, tzinfo=UTC)
SUBMISSIONS = 9  # funding (2 entries) + 9 approvals (4 entries each) = 38 entries a job
TOKEN = "bench-token"
SAVE_BATCH, PROJECT_PAGE = 2_000, 1_000
BALANCES = "/v1/balances?currency=JPY&limit=100"
RECEIVABLES = "/v1/receivables?currency=JPY&limit=100"


def job_events(job: int, start: datetime = START,
               spacing: timedelta = timedelta(seconds=30)) -> list[dict[str, Any]]:
    """Job `job`'s events, from `start + job × spacing`, a second apart."""
    job_id = f"bench-{job:06d}"
    rows: list[tuple[str, dict[str, Any]]] = [
        ("task.opened", {"job_id": job_id, "client_id": f"client-{job % 97}", "fee_plan": "tiered",
                         "unit_price": {"amount": "1000", "currency": "JPY"}, "quantity": 10}),
        ("task.funded", {"job_id": job_id, "amount": {"amount": "10000", "currency": "JPY"},
                         "payment_ref": f"pay-{job}"}),
    ]
    for n in range(SUBMISSIONS):
        rows.append(("task.submission_received", {"job_id": job_id, "submission_id": f"s{n}",
                                                  "worker_id": f"worker-{(job + n) % 1000}"}))
        rows.append(("task.submission_approved", {"job_id": job_id, "submission_id": f"s{n}"}))
    return [cloud_event(f"{job_id}-{i}", t, start + job * spacing + timedelta(seconds=i), d)
            for i, (t, d) in enumerate(rows)]


def load(url: str, settings: Settings, jobs: int, start: datetime = START,
         spacing: timedelta = timedelta(seconds=30)) -> int:
    """Store the jobs' events (`job_events`) and project them into the live schema;
    the entry count."""
    app = application(url, settings, owner_env())
    try:
        escrows: dict[str, Any] = {}
        pending: list[Any] = []
        for job in range(jobs):
            for e in job_events(job, start, spacing):
                cmd = Command.create(e["id"], e["type"], datetime.fromisoformat(e["time"]),
                                     e["data"])
                escrow = handlers.apply(escrows.get(cmd.job_id), cmd, app.plans)
                escrows[cmd.job_id] = escrow
                pending += escrow.collect_events()
            if len(pending) >= SAVE_BATCH:
                app.save(*pending)
                pending.clear()
        if pending:
            app.save(*pending)
        with psycopg.connect(url, autocommit=True) as conn:
            schema.create(conn, schema.LIVE_SCHEMA)
            store = Store(conn, schema.LIVE_SCHEMA)
            position, last = 0, app.recorder.max_notification_id() or 0
            while position < last:
                page = cloud_events(app, position + 1, PROJECT_PAGE, stop=last)
                store.apply_batch([parse(event) for event in page])
                position = page[-1]["data"]["position"]
            conn.execute("ANALYZE")
            row = conn.execute("SELECT count(*) FROM projections.ledger_entries").fetchone()
            return int(row[0]) if row else 0
    finally:
        app.close()


async def _client(host: str, port: int, path: str, stop_at: float, counts: list[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    request = (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {TOKEN}\r\n"
               "Accept: application/json\r\n\r\n").encode()
    try:
        while time.perf_counter() < stop_at:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = head[9:12]
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            if status != b"200":
                raise SystemExit(f"{path}: HTTP {status.decode()}")
            counts[0] += 1
    finally:
        writer.close()


async def _load(host: str, port: int, path: str, seconds: float, clients: int) -> float:
    counts = [0]
    started = time.perf_counter()
    stop_at = started + seconds
    await asyncio.gather(*(_client(host, port, path, stop_at, counts) for _ in range(clients)))
    return counts[0] / (time.perf_counter() - started)


def http_rate(port: int, path: str, seconds: float, clients: int) -> float:
    asyncio.run(_load("127.0.0.1", port, path, 1.0, clients))  # warm up
    return asyncio.run(_load("127.0.0.1", port, path, seconds, clients))


def sql_rate(url: str, seconds: float, query: Any) -> float:
    """The endpoint's own query in a loop on one connection."""
    with psycopg.connect(url, autocommit=True) as conn:
        count, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            query(conn)  # one statement: its own snapshot, as the API runs it
            count += 1
        return count / (time.perf_counter() - started)


def serve(url: str, port: int, role: str = "finance") -> subprocess.Popen[str]:
    """`settlement api` on `port`, TOKEN naming `role`."""
    env = {**os.environ, "SETTLEMENT_DATABASE_URL": url,
           "SETTLEMENT_API_ADDR": f"127.0.0.1:{port}", "SETTLEMENT_API_TOKENS": f"{TOKEN}:{role}"}
    process = subprocess.Popen([sys.executable, "-m", "settlement.cli", "api"], env=env,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return process
        if process.poll() is not None:
            raise SystemExit(f"settlement api exited: {process.stderr}")
        time.sleep(0.1)
    raise SystemExit("settlement api did not start")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2_700, help="task jobs, 38 entries each")
    parser.add_argument("--seconds", type=float, default=10.0, help="load time per endpoint")
    parser.add_argument("--clients", type=int, default=16, help="concurrent connections")
    parser.add_argument("--scale", action="store_true",
                        help="p50/p99 per endpoint at 1x and at 10M entries (apiscale.py)")
    parser.add_argument("--scale-factor", type=float, default=1.0,
                        help="with --scale: the growth x (10M entries, 1M receivables, "
                             "100k accounts)")
    args = parser.parse_args()
    print(describe(), flush=True)
    if args.scale:
        return scale(args)
    with tempfile.TemporaryDirectory() as tmp:
        env = Settings.from_env()
        settings = Settings(database_url=env.database_url, state_dir=Path(tmp))
        with database(settings) as server:
            name = f"bench_api_{uuid.uuid4().hex[:8]}"
            url = create_database(server, name)
            try:
                started = time.perf_counter()
                entries = load(url, settings, args.jobs)
                print(f"loaded {entries:,} ledger entries ({args.jobs} jobs) in "
                      f"{time.perf_counter() - started:.1f}s", flush=True)
                now = datetime.now(UTC)
                sql_bal = sql_rate(url, args.seconds, lambda c: balance_queries.balances_page(
                    c, "projections", "JPY", limit=100))
                sql_rec = sql_rate(url, args.seconds, lambda c: receivable_queries.receivables_page(
                    c, "projections", "JPY", now=now, limit=100))
                print(f"SQL on one connection: balances {sql_bal:,.0f} q/s, "
                      f"receivables {sql_rec:,.0f} q/s", flush=True)
                port = free_port()
                api = serve(url, port)
                try:
                    rates = {path: http_rate(port, path, args.seconds, args.clients)
                             for path in ("/healthz", BALANCES, RECEIVABLES)}
                finally:
                    api.send_signal(signal.SIGTERM)
                    api.wait(30)
                for path, rate in rates.items():
                    print(f"HTTP {path}: {rate:,.0f} requests/s ({args.clients} clients)",
                          flush=True)
            finally:
                drop_database(server, name)
    print(f"RESULT balances_rps={rates[BALANCES]:.0f} receivables_rps={rates[RECEIVABLES]:.0f} "
          f"healthz_rps={rates['/healthz']:.0f} sql_balances_qps={sql_bal:.0f} "
          f"sql_receivables_qps={sql_rec:.0f} entries={entries}")


@contextmanager
def bench_database(prefix: str) -> Iterator[tuple[str, Settings]]:
    """A database of its own (embedded PostgreSQL unless SETTLEMENT_DATABASE_URL is
    set), dropped after: its URL and the settings."""
    with tempfile.TemporaryDirectory() as tmp:
        env = Settings.from_env()
        settings = Settings(database_url=env.database_url, state_dir=Path(tmp))
        with database(settings) as server:
            name = f"{prefix}_{uuid.uuid4().hex[:8]}"
            url = create_database(server, name)
            try:
                yield url, settings
            finally:
                drop_database(server, name)


def scale(args: argparse.Namespace) -> None:
    """`--scale`: the endpoints' latencies at 1x and at scale in one run: two copies
    of the 1x database, one grown, each served by its own API process, and every
    endpoint's requests alternated between the two (so a busy moment of the shared
    machine slows both sides alike)."""
    latency_clients = min(args.clients, 2)  # service time, not a queue
    with bench_database("bench_api") as (url, settings):
        entries = load(url, settings, args.jobs)
        print(f"1x: {entries:,} ledger entries ({args.jobs} jobs)", flush=True)
        big_name = f"bench_api_big_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(big_name), sql.Identifier(conn.info.dbname)))
        big_url = with_dbname(url, big_name)
        try:
            started = time.perf_counter()
            counts = apiscale.grow(big_url, args.scale_factor, START)
            print(f"grown in {time.perf_counter() - started:.0f}s: "
                  + ", ".join(f"{t} {n:,}" for t, n in counts.items()), flush=True)
            ports = free_port(), free_port()
            apis = [serve(u, port) for u, port in zip((url, big_url), ports, strict=True)]
            try:
                small, big = apiscale.alternated(ports, TOKEN, args.seconds, latency_clients)
            finally:
                for api in apis:
                    api.send_signal(signal.SIGTERM)
                    api.wait(30)
            deep = [apiscale.deep_entries(u) for u in (url, big_url)]
        finally:
            drop_database(url, big_name)
    worst, ratio = apiscale.report(small, big)
    print("SQL, the cash account's entries from the middle of its history: "
          + ", ".join(f"after {a:,}: {ms:.1f} ms" for a, ms in deep), flush=True)
    print(f"RESULT scale_entries={counts['ledger_entries']} "
          f"scale_receivables={counts['receivables']} scale_accounts={counts['balances']} "
          f"worst_p99_ratio={ratio:.2f} worst_endpoint={worst}")


if __name__ == "__main__":
    main()
