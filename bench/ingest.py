"""Ingestion benchmark (issue: Kafka ingestion).

Publishes job events across many jobs to the broker, then measures the input
consumer from its first record to its last committed batch; in the same run,
the raw `Application.save` of the same domain events in batches is the
baseline. Prints both rates and their ratio; the last line is

    RESULT events_per_s=<n> baseline_events_per_s=<n> ratio=<r>

Run: `.venv/bin/python bench/ingest.py [--jobs 5000]` (embedded PostgreSQL and
broker unless SETTLEMENT_DATABASE_URL / SETTLEMENT_KAFKA_BOOTSTRAP are set).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from machine import describe  # bench/machine.py, beside this file

from settlement.application import handlers
from settlement.core.commands import Command
from settlement.infra.bootstrap import application, owner_env, tune_gc
from settlement.infra.broker import ensure_topics, kafka
from settlement.infra.config import Settings
from settlement.infra.postgres import create_database, database
from settlement.infra.topics import Topics
from settlement.ingest.consumer import Ingestor, IngestStats
from settlement.service.scenario import cloud_event
from settlement.service.supervisor import default_consumers

START = datetime(2026, 11, 26, 9, tzinfo=UTC)
SUBMISSIONS_PER_TASK = 9  # 2 + 2×9 = 20 events per job
BASELINE_BATCH_EVENTS = 1_000
PARTITIONS = 4


def job_events(job: int) -> list[dict[str, Any]]:
    job_id = f"bench-{job:06d}"
    rows: list[tuple[str, dict[str, Any]]] = [
        ("task.opened", {"job_id": job_id, "client_id": f"client-{job % 97}", "fee_plan": "tiered",
                         "unit_price": {"amount": "1000", "currency": "JPY"}, "quantity": 10}),
        ("task.funded", {"job_id": job_id, "amount": {"amount": "10000", "currency": "JPY"},
                         "payment_ref": f"pay-{job}"}),
    ]
    for n in range(SUBMISSIONS_PER_TASK):
        rows.append(("task.submission_received", {"job_id": job_id, "submission_id": f"s{n}",
                                                  "worker_id": f"worker-{(job + n) % 1000}"}))
        rows.append(("task.submission_approved", {"job_id": job_id, "submission_id": f"s{n}"}))
    return [cloud_event(f"{job_id}-{i}", t, START + timedelta(seconds=i), d)
            for i, (t, d) in enumerate(rows)]


async def publish(bootstrap: str, topic: str, events: list[dict[str, Any]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False,
                                linger_ms=20, max_batch_size=512 * 1024)
    await producer.start()
    try:
        for event in events:
            await producer.send(topic, key=event["data"]["job_id"].encode(),
                                value=orjson.dumps(event))
        await producer.flush()
    finally:
        await producer.stop()


def baseline(url: str, settings: Settings, events: list[dict[str, Any]]) -> float:
    """Raw `Application.save` of the same domain events, decided beforehand in memory."""
    app = application(url, settings, owner_env())
    escrows: dict[str, Any] = {}
    domain_events: list[Any] = []
    for e in events:
        cmd = Command.create(e["id"], e["type"], datetime.fromisoformat(e["time"]), e["data"])
        escrow = handlers.apply(escrows.get(cmd.job_id), cmd, app.plans)
        escrows[cmd.job_id] = escrow
        domain_events += escrow.collect_events()
    started = time.perf_counter()
    for i in range(0, len(domain_events), BASELINE_BATCH_EVENTS):
        app.save(*domain_events[i:i + BASELINE_BATCH_EVENTS])
    elapsed = time.perf_counter() - started
    app.close()
    return len(domain_events) / elapsed


def consume(url: str, settings: Settings, bootstrap: str, topics: Topics, total: int,
            consumers: int) -> float:
    """`consumers` input consumer processes in one new group, from the first record
    any of them received to the last commit of any (their clocks are the same
    monotonic clock): events per second."""
    group = f"bench-{uuid.uuid4().hex[:8]}"
    stats = in_processes(consumer_process, consumers, url, settings, bootstrap,
                         topics.prefix, group, total)
    records = sum(s.records for s in stats)
    if records != total or any(s.rejected or s.dead_lettered or s.conflicts for s in stats):
        raise SystemExit(f"unexpected outcome: {stats}")
    first = min(s.first_batch_at for s in stats if s.records)
    return records / (max(s.last_commit_at for s in stats) - first)


def in_processes(target: Callable[..., None], count: int, *args: Any) -> list[Any]:
    """`target(*args, n, results)` in `count` processes of their own (n = 1…count),
    all at once; what each put on `results`."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    processes = [context.Process(target=target, name=f"{target.__name__}-{n}",
                                 args=(*args, n, results)) for n in range(1, count + 1)]
    for process in processes:
        process.start()
    found = [results.get() for _ in processes]
    for process in processes:
        process.join()
    return found


def consumer_process(url: str, settings: Settings, bootstrap: str, prefix: str, group: str,
                     total: int, n: int, results: Any) -> None:
    app = application(url, settings, owner_env())
    tune_gc()
    ingestor = Ingestor(app, bootstrap, Topics(prefix), group_id=group,
                        client_id=f"bench-consumer-{n}")

    async def run() -> IngestStats:
        progress = asyncio.create_task(report_progress(ingestor, total))
        try:
            # Idle this long after its last record: the other members' rebalances
            # (a join waits about half the session timeout) must not end it early.
            return await ingestor.run(asyncio.Event(), idle_exit_s=5.0)
        finally:
            progress.cancel()

    try:
        results.put(asyncio.run(run()))
    finally:
        app.close()


async def report_progress(ingestor: Ingestor, total: int) -> None:
    while True:
        await asyncio.sleep(2)
        print(f"  {ingestor.client_id}: consumed {ingestor.stats.records} of {total} in all",
              file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5_000, help="jobs, 20 events each")
    parser.add_argument("--consumers", type=int, default=default_consumers(PARTITIONS),
                        help="input consumer processes in the group (default: as "
                             "`settlement run` starts, one per core)")
    args = parser.parse_args()
    print(describe(), flush=True)
    events = [e for job in range(args.jobs) for e in job_events(job)]
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.from_env()
        settings = Settings(database_url=settings.database_url,
                            kafka_bootstrap=settings.kafka_bootstrap, state_dir=Path(tmp))
        with database(settings) as server, kafka(settings) as bootstrap:
            topics = Topics(f"bench{uuid.uuid4().hex[:6]}.")
            asyncio.run(ensure_topics(bootstrap, topics.all, partitions=PARTITIONS))
            print(f"publishing {len(events)} events for {args.jobs} jobs", flush=True)
            asyncio.run(publish(bootstrap, topics.jobs, events))
            suffix = uuid.uuid4().hex[:8]
            rate = consume(create_database(server, f"bench_c_{suffix}"), settings,
                           bootstrap, topics, len(events), args.consumers)
            print(f"consumer group of {args.consumers} process(es): {rate:,.0f} events/s",
                  flush=True)
            single = None
            if args.consumers != 1:
                single = consume(create_database(server, f"bench_s_{suffix}"), settings,
                                 bootstrap, topics, len(events), 1)
                print(f"one consumer process alone: {single:,.0f} events/s", flush=True)
            base = baseline(create_database(server, f"bench_b_{suffix}"), settings, events)
            print(f"baseline Application.save (one process): {base:,.0f} events/s", flush=True)
            if single is not None:
                print(f"one consumer process / baseline: {single / base:.2f}", flush=True)
    print(f"RESULT events_per_s={rate:.0f} baseline_events_per_s={base:.0f} "
          f"ratio={rate / base:.2f}")


if __name__ == "__main__":
    main()
