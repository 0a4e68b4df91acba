"""Replay benchmark (issue: audit replay, SPEC §8).

Stores at least `--events` settlement events (task jobs of 20 events each, as in
`bench/ingest.py`: decided in memory, saved through the application in batches,
hash chain included), vacuums, analyses and checkpoints the database (as a store
written over months would be), then runs `settlement replay` as a process of its own and
reads its rate from its report (events read, folded and written per second of
the rebuild, before the final digests) and its peak RSS (`wait4`, plus the
peaks its other shard processes report). In the same run the baseline is a raw
read of the notification log (`select_notifications` pages of the same size) in
this process, once before the replay and once after it: the faster of the two
counts (a raw read at a slow moment of the machine would flatter the ratio;
the raw reads of two runs minutes apart have differed by twice). The last line is

    RESULT events=<n> events_per_s=<n> baseline_events_per_s=<n> peak_rss_mb=<n>

Run: `.venv/bin/python bench/replay.py [--events 1000000]` (embedded PostgreSQL
unless SETTLEMENT_DATABASE_URL is set; the replay has no live projections to
compare with here, so its report says `equal: false`, which is expected).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import job_events  # noqa: E402  (bench/ingest.py, beside this file)
from machine import describe  # noqa: E402  (bench/machine.py)

from settlement.application import handlers  # noqa: E402
from settlement.core.commands import Command  # noqa: E402
from settlement.infra.bootstrap import application, owner_env  # noqa: E402
from settlement.infra.config import Settings  # noqa: E402
from settlement.infra.postgres import create_database, database  # noqa: E402

EVENTS_PER_JOB = 20
JOBS_PER_SAVE = 250  # 5,000 events per transaction
PAGE_EVENTS = 1_000


def generate(url: str, settings: Settings, events: int) -> int:
    """Store `events` (rounded up to whole jobs); the number of stored events."""
    app = application(url, settings, owner_env())
    jobs = -(-events // EVENTS_PER_JOB)
    started, stored = time.perf_counter(), 0
    try:
        for first in range(0, jobs, JOBS_PER_SAVE):
            domain_events: list[Any] = []
            for job in range(first, min(first + JOBS_PER_SAVE, jobs)):
                escrow = None
                for e in job_events(job):
                    command = Command.create(e["id"], e["type"],
                                             datetime.fromisoformat(e["time"]), e["data"])
                    escrow = handlers.apply(escrow, command, app.plans)
                assert escrow is not None
                domain_events += escrow.collect_events()
            app.save(*domain_events)
            stored += len(domain_events)
            if (first // JOBS_PER_SAVE) % 20 == 0:
                rate = stored / (time.perf_counter() - started)
                print(f"  stored {stored:,}/{jobs * EVENTS_PER_JOB:,} events "
                      f"({rate:,.0f}/s)", file=sys.stderr, flush=True)
    finally:
        app.close()
    return stored


def settle(url: str) -> None:
    """Vacuum, analyse and checkpoint the freshly written store, as a store written
    over months is: otherwise autovacuum works through the million new rows while
    the replay runs (the first 30 s of a replay ran at two thirds of its later rate)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
        try:
            conn.execute("CHECKPOINT")
        except psycopg.Error:  # not a superuser (an external server): carry on
            pass


def baseline(url: str, settings: Settings, stored: int) -> float:
    """Raw read of the whole notification log in pages: events/s (all `stored` read)."""
    app = application(url, settings)
    try:
        started, position, count = time.perf_counter(), 0, 0
        while True:
            page = app.recorder.select_notifications(position + 1, PAGE_EVENTS)
            if not page:
                break
            count += len(page)
            position = page[-1].id
        rate = count / (time.perf_counter() - started)
    finally:
        app.close()
    if count != stored:
        raise SystemExit(f"baseline read {count} events of {stored}")
    return rate


def run_replay(url: str) -> tuple[dict[str, Any], float, float]:
    """`settlement replay` in a process of its own: (report, wall seconds, peak RSS MB)."""
    env = {**os.environ, "SETTLEMENT_DATABASE_URL": url}
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "settlement.cli", "replay", "--schema", "bench_replay",
         "--page-events", str(PAGE_EVENTS), "--progress-interval", "10"],
        env=env, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    out = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)  # this child's own peak RSS
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    lines = out.strip().splitlines()
    if process.returncode not in (0, 1) or not lines:
        raise SystemExit(f"settlement replay failed with status {process.returncode}")
    report = json.loads(lines[-1])
    # ru_maxrss: KiB on Linux. The replay's other shard processes (each reads,
    # decodes and folds its share of the jobs) are counted on top: the sum of the peaks.
    return report, seconds, usage.ru_maxrss / 1024 + report["shards_peak_rss_mb"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000,
                        help="settlement events to store and replay (whole jobs of 20)")
    args = parser.parse_args()
    print(describe(), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        configured = Settings.from_env()
        settings = Settings(database_url=configured.database_url, state_dir=Path(tmp))
        with database(settings) as server:
            url = create_database(server, f"bench_r_{uuid.uuid4().hex[:8]}")
            started = time.perf_counter()
            stored = generate(url, settings, args.events)
            print(f"stored {stored:,} events in {time.perf_counter() - started:,.0f} s",
                  flush=True)
            settle(url)
            before = baseline(url, settings, stored)
            report, seconds, rss_mb = run_replay(url)
            if report["events"] != stored:
                raise SystemExit(f"replayed {report['events']} events of {stored}")
            rate = report["events_per_s"]
            print(f"replay: {rate:,} events/s (rebuild loop), {seconds:,.1f} s for the "
                  f"whole command incl. start-up and digests, peak RSS {rss_mb:,.0f} MB",
                  flush=True)
            after = baseline(url, settings, stored)
            base = max(before, after)
            print(f"baseline raw notification read: {base:,.0f} events/s (before the "
                  f"replay {before:,.0f}, after it {after:,.0f}: the faster counts)",
                  flush=True)
    print(f"RESULT events={stored} events_per_s={rate:.0f} baseline_events_per_s={base:.0f} "
          f"peak_rss_mb={rss_mb:.0f}")


if __name__ == "__main__":
    main()
