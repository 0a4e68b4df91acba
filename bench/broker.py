"""The broker's CPU per record as a topic's history grows (issue 21, item 2).

`bench/projections.py` counts the broker's CPU in the pipeline's. This benchmark
isolates it: the load generator of that benchmark (a producer lingering 5 ms,
handed the records due every 5 ms) publishes `--rate` records a second for
`--seconds`

1. alone, into a topic of its own: the baseline, what the produce requests cost;
2. into a second topic that `--consumers` of the pipeline's consumers
   (`infra.broker.consumer`: one group, its fetch wait and sizes) read as they
   arrive; the broker's CPU (`bench/cpu.py`, its process from /proc) is sampled
   every `--window` seconds.

Per window it prints the broker's share of a core and its µs per record
published. With the embedded broker (tansu 0.6.0, memory storage) the cost grows
with the topic's history: a fetch costs more for every record the topic holds,
however far behind it. The last line is

    RESULT broker_us_per_record_first=<n> broker_us_per_record_last=<n>
           growth=<last/first> baseline_us_per_record=<n>

Run: `.venv/bin/python bench/broker.py` (the embedded broker unless
SETTLEMENT_KAFKA_BOOTSTRAP names a broker on this machine; one elsewhere is not
measured); smoke test: `--seconds 2 --window 1 --rate 200`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path

from aiokafka import AIOKafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cpu  # noqa: E402  (bench/cpu.py)
from machine import describe  # noqa: E402  (bench/machine.py)

from settlement.infra import broker  # noqa: E402
from settlement.infra.config import Settings  # noqa: E402

PARTITIONS = 4
TICK_S = 0.005  # as bench/projections.py's load generator
JOIN_TIMEOUT_S = 60.0
RECORD = b'{"type": "task.submission_approved", "data": {"job_id": "%d"}}' + b" " * 300


async def publish(bootstrap: str, topic: str, rate: float, seconds: float,
                  window_s: float, broker_pid: int) -> list[tuple[float, int]]:
    """Publish at `rate` for `seconds`; per window, (broker CPU seconds, records)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                enable_idempotence=False, linger_ms=5)
    await producer.start()
    windows: list[tuple[float, int]] = []
    try:
        started = time.perf_counter()
        sent = window_sent = 0
        mark, window_end = cpu.Snapshot().tree_s(broker_pid), started + window_s
        while (now := time.perf_counter()) - started < seconds:
            due = int((now - started) * rate) + 1
            for n in range(sent, due):
                await producer.send(topic, key=str(n % 1_500).encode(), value=RECORD % n)
            sent = due
            if now >= window_end:
                await producer.flush()
                spent = cpu.Snapshot().tree_s(broker_pid)
                windows.append((spent - mark, sent - window_sent))
                mark, window_sent, window_end = spent, sent, window_end + window_s
            await asyncio.sleep(TICK_S)
        await producer.flush()
        if sent > window_sent:
            windows.append((cpu.Snapshot().tree_s(broker_pid) - mark, sent - window_sent))
    finally:
        await producer.stop()
    return windows


async def consume(bootstrap: str, topic: str, consumers: int, joined: asyncio.Event,
                  stop: asyncio.Event, read: list[int]) -> None:
    """Read `topic` with the pipeline's consumers until `stop`, setting `joined` once
    the group holds every partition and counting the records read in `read[0]`."""
    group = f"bench-broker-{uuid.uuid4().hex[:8]}"
    clients = [broker.consumer(bootstrap, group_id=group, client_id=f"bench-{n}",
                               batch_records_max=1_000) for n in range(consumers)]

    async def drain(client: object) -> None:
        while not stop.is_set():
            batches = await client.getmany(timeout_ms=200)  # type: ignore[attr-defined]
            read[0] += sum(len(records) for records in batches.values())

    async def join() -> None:
        while sum(len(client.assignment()) for client in clients) < PARTITIONS:
            await asyncio.sleep(0.1)
        joined.set()

    for client in clients:
        client.subscribe([topic])
        await client.start()
    try:
        await asyncio.gather(join(), *(drain(client) for client in clients))
    finally:
        for client in clients:
            await broker.close(client)


async def run(bootstrap: str, broker_pid: int, args: argparse.Namespace) -> None:
    prefix = f"bench{uuid.uuid4().hex[:6]}."
    alone, read = prefix + "alone", prefix + "read"
    await broker.ensure_topics(bootstrap, [alone, read], partitions=PARTITIONS)
    base = await publish(bootstrap, alone, args.rate, args.seconds, args.seconds, broker_pid)
    base_us = sum(s for s, _ in base) * 1e6 / max(1, sum(n for _, n in base))
    print(f"producer alone: broker {base_us:.0f} µs/record", flush=True)
    joined, stop, records_read = asyncio.Event(), asyncio.Event(), [0]
    reader = asyncio.create_task(
        consume(bootstrap, read, args.consumers, joined, stop, records_read))
    await asyncio.wait_for(joined.wait(), JOIN_TIMEOUT_S)
    windows = await publish(bootstrap, read, args.rate, args.seconds, args.window, broker_pid)
    published = sum(records for _, records in windows)
    deadline = time.perf_counter() + JOIN_TIMEOUT_S
    while records_read[0] < published and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
    stop.set()
    await reader
    per_record = []
    for n, (spent, records) in enumerate(windows, 1):
        per_record.append(spent * 1e6 / max(1, records))
        print(f"window {n} ({n * args.window:g} s of history): broker "
              f"{spent / args.window:.0%} of a core, {per_record[-1]:.0f} µs/record", flush=True)
    print(f"{args.consumers} consumer(s) read {records_read[0]} of the {published} records",
          flush=True)
    first, last = per_record[0], per_record[-1]
    print(f"RESULT broker_us_per_record_first={first:.0f} broker_us_per_record_last={last:.0f} "
          f"growth={last / first:.2f} baseline_us_per_record={base_us:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=2_000.0, help="records per second")
    parser.add_argument("--seconds", type=float, default=40.0, help="how long each phase publishes")
    parser.add_argument("--window", type=float, default=5.0, help="seconds per CPU sample")
    parser.add_argument("--consumers", type=int, default=2,
                        help="consumers in the group reading the second topic")
    args = parser.parse_args()
    print(describe(), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        env = Settings.from_env()
        settings = Settings(database_url=env.database_url, kafka_bootstrap=env.kafka_bootstrap,
                            state_dir=Path(tmp))
        with broker.kafka(settings) as bootstrap:
            pid = cpu.listener(bootstrap)
            if pid is None:
                sys.exit(f"the broker at {bootstrap} is not a process of this machine: "
                         "its CPU cannot be measured")
            asyncio.run(run(bootstrap, pid, args))


if __name__ == "__main__":
    main()
