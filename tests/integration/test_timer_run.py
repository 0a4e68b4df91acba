"""Timer passes on the real (embedded) PostgreSQL: a pass applies exactly what
the escrows' own timers decide, a repeated pass does nothing, the loop reads
on, and the CLI runs one pass."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from settlement.application.app import SettlementApplication
from settlement.core.fees import DEFAULT_FEE_PLANS, load_fee_plans
from settlement.timers.run import TimerScan, timer_loop, timer_pass
from support.ingest import digests
from support.projections import Timers, rich_day, run, store

START = datetime(2026, 11, 26, 9, tzinfo=UTC)
LATER = START + timedelta(days=30)  # rich_day's timer passes run then


def day_without_timers(prefix: str) -> list[dict[str, object]]:
    return [step for step in rich_day(START, prefix) if not isinstance(step, Timers)]


def test_a_pass_applies_what_the_escrows_decide_once(app: SettlementApplication) -> None:
    store(app, day_without_timers("t"))
    expected_script = rich_day(START, "t")
    _, expected = run(expected_script, load_fee_plans(DEFAULT_FEE_PLANS))

    assert timer_pass(app, START + timedelta(minutes=30)).applied == 0  # nothing due yet
    report = timer_pass(app, LATER)
    # usd: the delivered milestone; few: refunded (too few entries); tasks: s1, s3
    # approved; the day's own contest: the award deadline, already awarded.
    assert report.actions == {"auto_accept": 1, "auto_approve": 2, "refund_min_entries": 1}
    assert report.failed == [] and report.conflicts == 0
    assert digests(app, expected) == {j: e.state_digest() for j, e in sorted(expected.items())}

    head = app.recorder.max_notification_id()
    assert timer_pass(app, LATER).applied == 0
    assert app.recorder.max_notification_id() == head


def test_the_loop_reads_on_and_acts_when_time_comes(app: SettlementApplication) -> None:
    store(app, day_without_timers("l"))
    times = iter([START + timedelta(hours=1), LATER, LATER + timedelta(days=1)])
    scan_sizes: list[int] = []
    stop = asyncio.Event()

    def clock() -> datetime:
        try:
            return next(times)
        except StopIteration:
            stop.set()
            return LATER + timedelta(days=1)

    applied = asyncio.run(timer_loop(app, stop, interval_s=0.01, clock=clock))
    assert applied == 4
    scan = TimerScan()
    timer_pass(app, LATER + timedelta(days=2), scan)
    scan_sizes.append(len(scan.jobs))
    assert scan_sizes == [0]  # nothing left that could act on its own


def test_the_cli_runs_one_pass(app: SettlementApplication, database_url: str,
                               tmp_path: Path) -> None:
    store(app, day_without_timers("c"))
    env = {**os.environ, "SETTLEMENT_DATABASE_URL": database_url}
    done = subprocess.run([sys.executable, "-m", "settlement.cli", "timers", "run", "--now",
                           LATER.isoformat()], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["applied"] == 4 and summary["failed"] == []


def test_a_pass_reads_only_jobs_with_news_or_a_timer_due(app: SettlementApplication) -> None:
    store(app, day_without_timers("n"))
    scan = TimerScan()
    first = timer_pass(app, START + timedelta(hours=1), scan)
    assert first.jobs_checked == 9 and first.applied == 0  # every job: all news
    waiting = {job for job, due in scan.jobs.items() if due is not None}
    # Delivered milestone, pending submissions, a funded competition: the others
    # (done, cancelled, awarded, unfunded) are forgotten until they have news.
    assert waiting == set(scan.jobs) == {"n-usd", "n-tasks", "n-few"}
    assert timer_pass(app, START + timedelta(hours=2), scan).jobs_checked == 0
    # The earliest timer due: only the jobs with one due are read.
    earliest = min(due for due in scan.jobs.values() if due is not None)
    at_earliest = timer_pass(app, earliest, scan)
    assert 1 <= at_earliest.jobs_checked < first.jobs_checked and at_earliest.applied >= 1
