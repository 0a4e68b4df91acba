"""`bench/broker.py` runs at a tiny size and prints its RESULT line."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "broker.py"
RESULT = re.compile(r"RESULT broker_us_per_record_first=(\d+) broker_us_per_record_last=(\d+) "
                    r"growth=([\d.]+) baseline_us_per_record=(\d+)")


def test_the_broker_benchmark_runs_at_a_tiny_size(broker: str) -> None:
    # The test session's broker runs on this machine, so its CPU can be read.
    env = {**os.environ, "SETTLEMENT_KAFKA_BOOTSTRAP": broker}
    done = subprocess.run([sys.executable, str(BENCH), "--rate", "200", "--seconds", "2",
                           "--window", "1"], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    found = RESULT.fullmatch(done.stdout.strip().splitlines()[-1])
    assert found, done.stdout[-2000:]
    first, last, growth, baseline = (float(v) for v in found.groups())
    assert first > 0 and last > 0 and growth > 0 and baseline > 0
    # Both windows were sampled, and the consumers read what was published to them.
    assert "window 2 (2 s of history)" in done.stdout
    read = re.search(r"read (\d+) of the (\d+) records", done.stdout)
    assert read and read.group(1) == read.group(2) and int(read.group(2)) > 300, done.stdout
