"""Helpers for tests that drive the service through the real broker and database."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from settlement.application.app import SettlementApplication
from settlement.core.commands import Command
from settlement.infra.config import Settings
from settlement.infra.topics import Topics
from settlement.ingest.consumer import Ingestor, IngestStats
from settlement.ingest.publisher import MarketplacePublisher
from support.consumed import run_until_read

# An event to publish, or a (key, raw bytes) record for the jobs topic.
Outgoing = dict[str, Any] | tuple[str, bytes]
# Digests and stored event count of events applied directly, uninterrupted.
Reference = Callable[[Sequence[dict[str, Any]]], tuple[dict[str, Any], int]]
READ_IDLE_S = 1.5
READ_TIMEOUT_S = 30.0


def publish(broker: str, topics: Topics, events: Iterable[Outgoing]) -> None:
    """Publish in order: events through the validating publisher, raw pairs as they are."""

    async def run() -> None:
        async with MarketplacePublisher(broker, topics) as publisher:
            for event in events:
                if isinstance(event, tuple):
                    await publisher.publish_raw(topics.jobs, event[0], event[1])
                else:
                    await publisher.publish(event)
            await publisher.flush()

    asyncio.run(run())


def read_topic(broker: str, topic: str, expect: int) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of `topic` from the beginning: at least `expect`, read up to the end
    of each partition as its fetches report it (else up to a short idle period)."""

    async def run() -> list[ConsumerRecord[bytes, bytes]]:
        consumer = AIOKafkaConsumer(bootstrap_servers=broker, enable_auto_commit=False,
                                    auto_offset_reset="earliest", group_id=None)
        await consumer.start()
        try:
            partitions = consumer.partitions_for_topic(topic) or set()
            tps = [TopicPartition(topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            records: list[ConsumerRecord[bytes, bytes]] = []
            seen: set[tuple[int, int]] = set()
            read_to = dict.fromkeys(tps, 0)  # the next offset, past the records read
            deadline, idle_since = time.monotonic() + READ_TIMEOUT_S, time.monotonic()
            while time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=200)
                # The embedded broker may hand a record back twice: keep each once.
                fresh = [r for rs in batch.values() for r in rs
                         if (r.partition, r.offset) not in seen]
                seen.update((r.partition, r.offset) for r in fresh)
                records += fresh
                for tp, rs in batch.items():
                    read_to[tp] = max([read_to[tp], *(r.offset + 1 for r in rs)])
                if len(records) >= expect and all(
                        (end := consumer.highwater(tp)) is not None and read_to[tp] >= end
                        for tp in tps):
                    break  # the whole log, as the last fetch of each partition saw it
                if fresh:
                    idle_since = time.monotonic()
                elif len(records) >= expect and time.monotonic() - idle_since > READ_IDLE_S:
                    break
            return records
        finally:
            await consumer.stop()

    return asyncio.run(run())


def ingest(app: SettlementApplication, broker: str, topics: Topics, *, group: str = "ingest",
           batch_records: int = 1000, idle_exit_s: float = 5.0) -> IngestStats:
    """Run the consumer in this process until it has read every record published
    before (`run_until_read`), or else until it has been idle for `idle_exit_s`.

    Groups are named per test (under its topic prefix): a member killed by an
    earlier test stays in its group until the session times out and would hold
    up the next join."""
    group_id = f"{topics.prefix}{group}"
    ingestor = Ingestor(app, broker, topics, group_id=group_id, batch_records_max=batch_records)
    return asyncio.run(run_until_read(ingestor.run, broker, list(topics.inputs),
                                      lambda: app.store.select_positions(group_id), idle_exit_s))


def ingest_process(settings: Settings, *, group: str = "ingest", batch_records: int = 1000,
                   idle_exit_s: float = 8.0, failpoints: str = "") -> subprocess.Popen[str]:
    """`settlement ingest` as a process of its own on the test's database and topics.
    Tests stop it once what they wait for is stored (`Watched.stop_when`) or by a
    failpoint; the idle exit is a fallback, long enough that a group join and the
    first fetch on a loaded CI machine (four test workers on two cores) fit in it."""
    env = {**os.environ, "SETTLEMENT_DATABASE_URL": str(settings.database_url),
           "SETTLEMENT_KAFKA_BOOTSTRAP": str(settings.kafka_bootstrap),
           "SETTLEMENT_TOPIC_PREFIX": settings.topic_prefix, "SETTLEMENT_FAILPOINTS": failpoints}
    group = f"{settings.topic_prefix}{group}"
    command = [sys.executable, "-m", "settlement.cli", "ingest", "--group", group,
               "--client", f"{group}-{uuid.uuid4().hex[:6]}", "--batch-records",
               str(batch_records), "--idle-exit", str(idle_exit_s)]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def commands_of(events: Iterable[dict[str, Any]]) -> list[Command]:
    return [Command.create(e["id"], e["type"], datetime.fromisoformat(e["time"]), e["data"])
            for e in events]


def digests(app: SettlementApplication, job_ids: Iterable[str]) -> dict[str, Any]:
    """Every named escrow's observable state (None where it does not exist)."""
    result = {}
    for job_id in sorted(set(job_ids)):
        escrow = app.escrow(job_id)
        result[job_id] = None if escrow is None else escrow.state_digest()
    return result


def stored_event_count(app: SettlementApplication) -> int:
    return len(app.recorder.select_notifications(start=1, limit=1_000_000))
