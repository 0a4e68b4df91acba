"""MarketplacePublisher against the real broker: scenario events land on their topic,
keyed by job (payouts by payout), byte for byte, in order per key; invalid events
are refused before anything is sent; raw bytes go out untouched."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord

from settlement.infra.broker import ensure_topics
from settlement.infra.topics import Topics
from settlement.ingest.decoding import RECORD_BYTES_MAX, BadRecord, decode
from settlement.ingest.publisher import MarketplacePublisher, encode_event
from settlement.service.scenario import cloud_event, marketplace_day

START = datetime(2026, 11, 26, 9, tzinfo=UTC)
PARTITIONS = 4
READ_TIMEOUT_S = 30.0
OVERSIZE = b"x" * (RECORD_BYTES_MAX + 1)
RAW_RECORDS = 2
GRACE_MS = 1000


def payout_results() -> list[dict[str, Any]]:
    return [
        cloud_event("pr-1", "payout.settled", START, {"payout_id": "po-1", "bank_ref": "zengin:1"}),
        cloud_event("pr-2", "payout.failed", START, {"payout_id": "po-2", "reason": "closed"}),
        cloud_event("pr-3", "payout.settled", START, {"payout_id": "po-2", "bank_ref": "zengin:2"}),
    ]


async def read(bootstrap: str, topics: list[str], count: int) -> list[ConsumerRecord]:
    """The records of `topics` from the beginning: at least `count` of them, and any
    that arrive within a grace period after those."""
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        request_timeout_ms=10_000,
        fetch_max_wait_ms=100,
    )
    await consumer.start()
    records: list[ConsumerRecord] = []
    deadline = time.monotonic() + READ_TIMEOUT_S
    try:
        while len(records) < count and time.monotonic() < deadline:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(batch)
        # Not `end_offsets`: the embedded broker's high watermark counts batches, not
        # records, so only reading on tells whether anything else was sent.
        for batch in (await consumer.getmany(timeout_ms=GRACE_MS)).values():
            records.extend(batch)
    finally:
        await consumer.stop()
    return records


async def publish_all(bootstrap: str, topics: Topics, events: list[dict[str, Any]]) -> None:
    await ensure_topics(bootstrap, [topics.jobs, topics.payouts], partitions=PARTITIONS)
    async with MarketplacePublisher(bootstrap, topics) as publisher:
        for event in events:
            await publisher.publish(event)
        bad = cloud_event("bad-1", "project.milestone_funded", START,
                          {"job_id": "j", "milestone_id": "m1", "payment_ref": "p",
                           "amount": {"amount": 11000.5, "currency": "JPY"}})
        with pytest.raises(BadRecord) as refused:
            await publisher.publish(bad)
        assert refused.value.code == "schema_invalid"
        with pytest.raises(BadRecord) as wrong:
            await publisher.publish({**bad, "type": "project.exploded"})
        assert wrong.value.code == "unknown_type"
        await publisher.publish_raw(topics.jobs, "raw-job", b"\xff not json")
        await publisher.publish_raw(topics.jobs, "raw-job", OVERSIZE)


def test_published_events_come_back_keyed_and_byte_for_byte(
    broker: str, topic_prefix: str
) -> None:
    topics = Topics(topic_prefix)
    jobs, payouts = marketplace_day(START, "pub"), payout_results()
    asyncio.run(publish_all(broker, topics, jobs + payouts))

    expected = len(jobs) + len(payouts) + RAW_RECORDS
    records = asyncio.run(read(broker, [topics.jobs, topics.payouts], expected))

    assert len(records) == expected  # the refused events were never sent
    by_topic: dict[str, list[ConsumerRecord]] = defaultdict(list)
    for record in records:
        by_topic[record.topic].append(record)
    raw = [r for r in by_topic[topics.jobs] if r.key == b"raw-job"]
    assert [r.value for r in sorted(raw, key=lambda r: r.offset)] == [b"\xff not json", OVERSIZE]
    assert_arrived(by_topic[topics.jobs], jobs, "job_id", "jobs")
    assert_arrived(by_topic[topics.payouts], payouts, "payout_id", "payouts")


def assert_arrived(records: list[ConsumerRecord], sent: list[dict[str, Any]], key: str,
                   kind: str) -> None:
    """Each event arrived once, keyed by `data[key]`, with the bytes the publisher
    encoded; all of a key's events share a partition and keep their order."""
    arrived = {r.value: r for r in records if r.key != b"raw-job"}
    assert len(arrived) == len(sent)
    partitions: dict[bytes, set[int]] = defaultdict(set)
    for event in sent:
        record = arrived[encode_event(event)]
        assert record.key == event["data"][key].encode()
        assert decode(record.value, kind).id == event["id"]  # type: ignore[arg-type]
        partitions[record.key].add(record.partition)
    assert all(len(used) == 1 for used in partitions.values()), partitions
    for record_key in partitions:
        in_log = sorted((r for r in records if r.key == record_key), key=lambda r: r.offset)
        expected = [encode_event(e) for e in sent if e["data"][key].encode() == record_key]
        assert [r.value for r in in_log] == expected
