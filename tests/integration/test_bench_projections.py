"""`bench/projections.py` runs end to end at a tiny size and prints its RESULT line."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "projections.py"
RESULT = re.compile(r"RESULT projector_events_per_s=(\d+) baseline_events_per_s=(\d+) "
                    r"e2e_p50_ms=([\d.]+) e2e_p99_ms=([\d.]+) cpu_us_per_record=(\d+) "
                    r"cpu_us_per_record_backlog=(\d+)")
# The latency by second of the load: "p50/p99" per second.
BY_SECOND = re.compile(r"^p50/p99 ms by second of the load:((?: \d+/\d+)+)$", re.MULTILINE)
# The per-process lines of the CPU breakdown, each with its µs per record.
SHARE = re.compile(r"^  (\S+) +[\d.]+ s +\d+% of a core +(\d+) µs/record$", re.MULTILINE)


def test_the_projections_benchmark_runs_at_a_tiny_size(pg_server: str, broker: str) -> None:
    env = {**os.environ, "SETTLEMENT_DATABASE_URL": pg_server,
           "SETTLEMENT_KAFKA_BOOTSTRAP": broker}
    # One process per group: the smallest pipeline (the group of two and the
    # projector alone beside it are the default's, not what this test checks).
    done = subprocess.run([sys.executable, str(BENCH), "--jobs", "10", "--rate", "100",
                           "--seconds", "1", "--consumers", "1", "--backlog", "40"], env=env,
                          capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    last = done.stdout.strip().splitlines()[-1]
    found = RESULT.fullmatch(last)
    assert found, last
    projector, baseline, p50, p99, cpu, backlog = (float(v) for v in found.groups())
    assert projector > 0 and baseline > 0 and 0 < p50 <= p99 and cpu > 0 and backlog > 0
    seconds = BY_SECOND.search(done.stdout)
    assert seconds, done.stdout
    assert 1 <= len(seconds.group(1).split()) <= 3  # a cell per second of the 1 s load
    # Every process of the pipeline is measured (the broker and PostgreSQL run on
    # this machine here), and each total is the sum of its shares: the steady
    # load's, then the backlog's.
    steady, drained = done.stdout.split("backlog of 40 records")
    for report, total in ((steady, cpu), (drained, backlog)):
        shares = dict(SHARE.findall(report))
        assert set(shares) == {"ingest", "relay", "project", "broker", "postgres"}, report
        assert abs(sum(int(v) for v in shares.values()) - total) <= len(shares)  # rounding
    assert "not measured" not in done.stdout
    assert "200 settlement events" in done.stdout  # 10 jobs of 20 events
