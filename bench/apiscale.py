"""`bench/api.py --scale`: the same endpoints at 1× and after the read models
grow to 10,000,000 ledger entries, 1,000,000 receivables and 100,000 accounts
(× `--scale-factor`), in one run, so the ratio of the two p99s is measured on
the same machine in the same hour: the 1× database and a grown copy of it, each
served by its own API process, their requests alternated in short windows.

The growth is generated inside PostgreSQL (`INSERT … SELECT` over
`generate_series`, the server-side form of a COPY: no pipeline, no Python per
row), into the live schema the API reads, then the balances and the summary
rows are made from it as a rebuild would (`summaries.fill`) and the tables
analysed. The grown rows are of other accounts, jobs, workers and clients than
the 1× ones (a bigger marketplace: more parties, not longer pages), older than
them (two years of history before the 1× day); 2 % of the receivables are open
claims and 1 in 5,000 overdue (an overdue claim is a Freelance Act breach, so a
sound platform has few: the `overdue` total reads the open overdue ones).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from settlement.api.queries import entries as entry_queries
from settlement.projections.storage import schema, summaries

ENTRIES, RECEIVABLES, ACCOUNTS = 10_000_000, 1_000_000, 100_000
HISTORY = timedelta(days=730)
AS_OF = "2026-11-26T11:00:00Z"  # bench/api.py's START + 2 h

# (name, path): every endpoint whose cost could grow with the data.
ENDPOINTS: Sequence[tuple[str, str]] = (
    ("balances", "/v1/balances?currency=JPY&limit=100"),
    ("balances_prefix", "/v1/balances?currency=JPY&prefix=liabilities:worker_payable:&limit=100"),
    ("balances_account", "/v1/balances?account=liabilities:worker_payable:worker-7"),
    ("trial_balance", "/v1/trial-balance?currency=JPY&limit=100"),
    ("safeguarding", "/v1/safeguarding?currency=JPY"),
    ("receivables", "/v1/receivables?currency=JPY&limit=100"),
    ("receivables_worker", "/v1/receivables?worker_id=worker-7&limit=100"),
    ("receivables_client", "/v1/receivables?client_id=client-5&limit=100"),
    ("entries_worker", "/v1/accounts/liabilities:worker_payable:worker-7/entries?currency=JPY"),
    ("entries_cash", "/v1/accounts/assets:safeguarded_cash/entries?currency=JPY&limit=100"),
    ("escrow", "/v1/escrows/bench-000007"),
    # As of two hours into the 1x day: the days before it and that day's entries.
    ("balances_as_of", f"/v1/balances?currency=JPY&limit=100&as_of={AS_OF}"),
    ("balances_prefix_as_of", "/v1/balances?currency=JPY&prefix=liabilities:worker_payable:"
                              f"&limit=100&as_of={AS_OF}"),
    ("trial_balance_as_of", f"/v1/trial-balance?currency=JPY&limit=100&as_of={AS_OF}"),
    ("safeguarding_as_of", f"/v1/safeguarding?currency=JPY&as_of={AS_OF}"),
)


@dataclass(frozen=True)
class Latency:
    p50_ms: float
    p99_ms: float
    requests: int


async def _timed(host: str, port: int, path: str, token: str, stop_at: float,
                 out: list[float]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    request = (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
               "Accept: application/json\r\n\r\n").encode()
    try:
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = next((int(line[15:]) for line in head.split(b"\r\n")
                           if line[:15].lower() == b"content-length:"), 0)
            await reader.readexactly(length)
            if head[9:12] != b"200":
                raise SystemExit(f"{path}: HTTP {head[9:12].decode()}")
            out.append(time.perf_counter() - started)
    finally:
        writer.close()


def alternated(ports: tuple[int, int], token: str, seconds: float, clients: int,
               rounds: int = 5) -> tuple[dict[str, Latency], dict[str, Latency]]:
    """Every endpoint's latencies on the API at `ports[0]` (1x) and `ports[1]` (at
    scale): `rounds` windows on each in turn, `seconds` in all per side."""
    found: list[dict[str, list[float]]] = [{}, {}]
    for name, path in ENDPOINTS:
        for port in ports:
            _window(port, path, token, min(1.0, seconds / 4), clients)  # warm up
        for _ in range(rounds):
            for side, port in enumerate(ports):
                found[side].setdefault(name, []).extend(
                    _window(port, path, token, seconds / rounds, clients))
    small, big = ({name: _latency(times) for name, times in side.items()} for side in found)
    return small, big


def _window(port: int, path: str, token: str, seconds: float, clients: int) -> list[float]:
    async def run() -> list[float]:
        out: list[float] = []
        stop_at = time.perf_counter() + seconds
        await asyncio.gather(*(_timed("127.0.0.1", port, path, token, stop_at, out)
                               for _ in range(clients)))
        return out
    return asyncio.run(run())


def _latency(times: list[float]) -> Latency:
    found = sorted(times)
    p99 = found[min(len(found) - 1, int(len(found) * 0.99))]
    return Latency(statistics.median(found) * 1000, p99 * 1000, len(found))


def grow(url: str, factor: float, before: datetime) -> dict[str, int]:
    """Add `factor` × (ENTRIES, RECEIVABLES, ACCOUNTS) to the live projections,
    dated in the two years before `before`; the row counts after."""
    events = int(ENTRIES * factor) // 2  # two entries each: cash debited, an account credited
    accounts, receivables = max(10, int(ACCOUNTS * factor)), int(RECEIVABLES * factor)
    s = sql.Identifier(schema.LIVE_SCHEMA)
    step = HISTORY.total_seconds() / max(events, 1)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '256MB'")
        row = conn.execute(sql.SQL("SELECT coalesce(max(position), 0) FROM {}.ledger_entries")
                           .format(s)).fetchone()
        base = int(row[0]) if row else 0
        # The secondary indexes go while the rows load and are made again after.
        indexes = [f"{t.name}_{n}" for t in schema.TABLES if t.name in (
            "ledger_entries", "receivables") for n, _ in enumerate(t.indexes, start=1)]
        for name in indexes:
            conn.execute(sql.SQL("DROP INDEX IF EXISTS {}.{}").format(s, sql.Identifier(name)))
        account = sql.SQL(
            "CASE a %% 10 WHEN 0 THEN 'liabilities:client_refundable:sc-' || a "
            "WHEN 1 THEN 'liabilities:withholding_tax:sc-' || a "
            "WHEN 2 THEN 'liabilities:worker_payable:sw-' || a "
            "WHEN 3 THEN 'liabilities:worker_payable:sw-' || a "
            "WHEN 4 THEN 'liabilities:worker_payable:sw-' || a "
            "ELSE 'liabilities:escrow:scale-j' || a END")
        conn.execute(sql.SQL(
            "INSERT INTO {s}.ledger_entries SELECT %(base)s + g, l, "
            "%(t0)s + g * %(step)s * interval '1 second', 'scale-j' || (g %% %(accounts)s), "
            "'settlement.scale', CASE l WHEN 1 THEN 'assets:safeguarded_cash' ELSE {account} END, "
            "CASE l WHEN 1 THEN 'debit' ELSE 'credit' END, 1000 + g %% 997, 'JPY' "
            "FROM generate_series(1, %(events)s) AS g, LATERAL (SELECT g %% %(accounts)s AS a) x, "
            "(VALUES (1), (2)) AS v(l)").format(s=s, account=account),
            {"base": base, "t0": before - HISTORY, "step": step, "accounts": accounts,
             "events": events})
        conn.execute(sql.SQL(
            "INSERT INTO {s}.balances AS t SELECT account, currency, "
            "coalesce(sum(amount) FILTER (WHERE side = 'debit'), 0), "
            "coalesce(sum(amount) FILTER (WHERE side = 'credit'), 0) "
            "FROM {s}.ledger_entries WHERE position > %s GROUP BY 1, 2 "
            "ON CONFLICT (account, currency) DO UPDATE SET debits = t.debits + EXCLUDED.debits, "
            "credits = t.credits + EXCLUDED.credits").format(s=s), (base,))
        conn.execute(sql.SQL(
            "INSERT INTO {s}.receivables SELECT 'scale-r' || lpad(g::text, 8, '0'), 'm1', "
            "'sw-' || (g %% %(workers)s), 'sc-' || (g %% %(clients)s), "
            "CASE WHEN g %% 50 = 0 THEN 'delivered' ELSE 'released' END, 10000, 8800, 'JPY', "
            "true, d, ((d AT TIME ZONE 'Asia/Tokyo')::date + 60)::timestamp "
            "AT TIME ZONE 'Asia/Tokyo', g %% 50 <> 0 "
            "FROM generate_series(1, %(receivables)s) AS g, LATERAL (SELECT CASE "
            "WHEN g %% 5000 = 0 THEN %(before)s - interval '100 days' "
            "WHEN g %% 50 = 0 THEN %(before)s - interval '5 days' "
            "ELSE %(t0)s + (g * %(rstep)s) * interval '1 second' END AS d) AS x").format(s=s),
            {"workers": max(1, accounts * 3 // 10), "clients": max(1, accounts // 10),
             "receivables": receivables, "before": before, "t0": before - HISTORY,
             "rstep": HISTORY.total_seconds() / max(receivables, 1)})
        schema.create(conn, schema.LIVE_SCHEMA)  # the indexes again
        with conn.transaction(), conn.cursor() as cur:
            summaries.fill(cur, s)
        conn.execute("VACUUM ANALYZE")
        return {table: _count(conn, table) for table in (
            "ledger_entries", "balances", "receivables", "balance_totals", "receivable_totals")}


def deep_entries(url: str, runs: int = 20) -> tuple[int, float]:
    """A page of the cash account's entries from the middle of its history (its
    running balance counts every entry before): the position and p50 ms of
    `account_entries` on one connection."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(sql.SQL(
            "SELECT position FROM {}.ledger_entries WHERE account = 'assets:safeguarded_cash' "
            "AND currency = 'JPY' ORDER BY position OFFSET (SELECT count(*) / 2 "
            "FROM {}.ledger_entries WHERE account = 'assets:safeguarded_cash') LIMIT 1").format(
                sql.Identifier(schema.LIVE_SCHEMA), sql.Identifier(schema.LIVE_SCHEMA))).fetchone()
        after = int(row[0]) if row else 0
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            entry_queries.account_entries(conn, schema.LIVE_SCHEMA, "assets:safeguarded_cash",
                                          "JPY", after=after, limit=100)
            times.append(time.perf_counter() - started)
    return after, statistics.median(times) * 1000


def _count(conn: psycopg.Connection[Any], table: str) -> int:
    row = conn.execute(sql.SQL("SELECT count(*) FROM {}.{}").format(
        sql.Identifier(schema.LIVE_SCHEMA), sql.Identifier(table))).fetchone()
    return int(row[0]) if row else 0


def report(before: dict[str, Latency], after: dict[str, Latency]) -> tuple[str, float]:
    """Print each endpoint's p50/p99 at 1× and at scale; the worst p99 ratio's
    endpoint and ratio."""
    worst, worst_ratio = "", 0.0
    print(f"{'endpoint':<20} {'p50 1x':>8} {'p99 1x':>8} {'p50 big':>8} {'p99 big':>8} "
          f"{'p99 ratio':>9}")
    for name, _ in ENDPOINTS:
        a, b = before[name], after[name]
        ratio = b.p99_ms / a.p99_ms
        if ratio > worst_ratio:
            worst, worst_ratio = name, ratio
        print(f"{name:<20} {a.p50_ms:8.2f} {a.p99_ms:8.2f} {b.p50_ms:8.2f} {b.p99_ms:8.2f} "
              f"{ratio:9.2f}", flush=True)
    return worst, worst_ratio
