"""Console benchmark (issue 20): how long each console page takes to answer at the
API benchmark's data size (2,700 task jobs ≈ 100,000 ledger entries) and at ten
times that, beside the API endpoints the pages read.

The jobs are bench/api.py's (38 entries each), spread over the 89 days before
now, so the overview's 90-day chart, the 60-day rule (a third of the claims are
overdue) and the as-of dates all have data; they are stored and projected as
bench/api.py does. `settlement api` serves them in its own process. One reader
(as a person at a browser: one request at a time, keep-alive) signs in through
the form, warms each page up, then requests it `--requests` times; then each
API endpoint, with a bearer token. The overview's first answer after the server
starts (the chart's day sums read in full, see `settlement.console.queries.daily`)
is reported on its own.

Last line:

    RESULT pages=N worst_p99_ms=X api_p99_ms=Y
    (at the largest scale: the slowest page's p99, and the slowest p99 of the API
    endpoints those pages read)

Run: `flock /tmp/settlement-bench.lock .venv/bin/python bench/console.py`
(`--scales 1,10`; embedded PostgreSQL unless SETTLEMENT_DATABASE_URL is set).
"""

from __future__ import annotations

import argparse
import re
import signal
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from api import TOKEN, free_port, load, serve  # bench/api.py, beside this file
from machine import describe

from settlement.core.deadlines import JST
from settlement.infra.config import Settings
from settlement.infra.postgres import create_database, database, drop_database

JOBS_1X = 2_700
SPAN = timedelta(days=89)
WARM_UP = 3


def pages(as_of: str) -> dict[str, str]:
    return {
        "overview": "/console/",
        "trial-balance": "/console/trial-balance?currency=JPY",
        "trial-balance-as-of": f"/console/trial-balance?currency=JPY&as_of={as_of}",
        "balances": "/console/balances?currency=JPY&prefix=liabilities:worker_payable:",
        "entries": "/console/accounts/liabilities:worker_payable:worker-7/entries?currency=JPY",
        "escrow": "/console/escrows/bench-001234",
        "receivables": "/console/receivables?currency=JPY",
        "receivables-worker": "/console/receivables?currency=JPY&worker_id=worker-7",
        "payouts": "/console/payouts",
        "audit-log": "/console/audit/events?job_id=bench-001234",
        "replay": "/console/audit/replay",
    }


def endpoints(as_of: str) -> dict[str, str]:
    """What the pages read, as API requests."""
    at = f"{as_of}T23:59:59.999999%2B09:00"
    return {
        "safeguarding": "/v1/safeguarding?currency=JPY",
        "balances-total": "/v1/balances?currency=JPY&prefix=liabilities:worker_payable:&limit=1",
        "trial-balance": "/v1/trial-balance?currency=JPY",
        "trial-balance-as-of": f"/v1/trial-balance?currency=JPY&as_of={at}",
        "entries": "/v1/accounts/liabilities:worker_payable:worker-7/entries?currency=JPY",
        "escrow": "/v1/escrows/bench-001234",
        "receivables": "/v1/receivables?currency=JPY",
        "receivables-worker": "/v1/receivables?currency=JPY&worker_id=worker-7",
        "payouts": "/v1/payouts",
        "audit-events": "/v1/audit/events?job_id=bench-001234",
    }


def sign_in(client: httpx.Client, base: str) -> None:
    form = client.get("/console/sign-in").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form)
    assert csrf, "no sign-in form"
    response = client.post("/console/sign-in", data={"csrf": csrf.group(1), "token": TOKEN},
                           headers={"Origin": base})
    assert response.status_code == 303, response.status_code


def timed(client: httpx.Client, path: str, requests: int) -> list[float]:
    for _ in range(WARM_UP):
        client.get(path)
    out = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(path)
        out.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{path}: HTTP {response.status_code}")
    return sorted(out)


def p(values: list[float], q: float) -> float:
    """The q-quantile, nearest rank (p99 of 100 values: the 99th)."""
    return values[min(len(values) - 1, max(0, round(q * len(values)) - 1))]


def measure(url: str, requests: int) -> tuple[dict[str, list[float]],
                                                          dict[str, list[float]], float]:
    as_of = (datetime.now(UTC) - timedelta(days=30)).astimezone(JST).date().isoformat()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    api = serve(url, port, role="auditor")  # auditors read every page
    try:
        with httpx.Client(base_url=base, timeout=60) as client:
            sign_in(client, base)
            started = time.perf_counter()
            client.get("/console/")
            first = (time.perf_counter() - started) * 1000
            page_ms = {name: timed(client, path, requests) for name, path in pages(as_of).items()}
        with httpx.Client(base_url=base, timeout=60,
                          headers={"Authorization": f"Bearer {TOKEN}"}) as client:
            api_ms = {name: timed(client, path, requests)
                      for name, path in endpoints(as_of).items()}
    except SystemExit:
        api.send_signal(signal.SIGTERM)
        _, errors = api.communicate(timeout=30)
        print(errors[-4000:], flush=True)  # the API's log: what went wrong
        raise
    finally:
        if api.poll() is None:
            api.send_signal(signal.SIGTERM)
            api.wait(30)
    return page_ms, api_ms, first


def report(scale: int, entries: int, page_ms: dict[str, list[float]],
           api_ms: dict[str, list[float]], first: float) -> None:
    print(f"\n{scale}×: {entries:,} ledger entries; first overview after start {first:.0f} ms",
          flush=True)
    for kind, found in (("page", page_ms), ("API", api_ms)):
        for name, values in found.items():
            print(f"  {kind} {name:<22} p50 {p(values, 0.5):7.1f} ms   "
                  f"p99 {p(values, 0.99):7.1f} ms", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="1,10", help="multiples of 2,700 jobs")
    parser.add_argument("--requests", type=int, default=100, help="timed requests per page")
    args = parser.parse_args()
    print(describe(), flush=True)
    last: tuple[dict[str, list[float]], dict[str, list[float]]] = ({}, {})
    with tempfile.TemporaryDirectory() as tmp:
        env = Settings.from_env()
        settings = Settings(database_url=env.database_url, state_dir=Path(tmp))
        with database(settings) as server:
            for scale in (int(s) for s in args.scales.split(",")):
                name = f"bench_console_{uuid.uuid4().hex[:8]}"
                url = create_database(server, name)
                try:
                    jobs = JOBS_1X * scale
                    started = time.perf_counter()
                    entries = load(url, settings, jobs, datetime.now(UTC) - SPAN, SPAN / jobs)
                    print(f"loaded {entries:,} ledger entries ({jobs:,} jobs over 89 days) in "
                          f"{time.perf_counter() - started:.0f} s", flush=True)
                    page_ms, api_ms, first = measure(url, args.requests)
                    report(scale, entries, page_ms, api_ms, first)
                    last = (page_ms, api_ms)
                finally:
                    drop_database(server, name)
    page_ms, api_ms = last
    print(f"RESULT pages={len(page_ms)} "
          f"worst_p99_ms={max(p(v, 0.99) for v in page_ms.values()):.0f} "
          f"api_p99_ms={max(p(v, 0.99) for v in api_ms.values()):.0f}")


if __name__ == "__main__":
    main()
