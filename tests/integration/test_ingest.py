"""The input consumer on the real broker and PostgreSQL: a marketplace day applied,
duplicates, crashes at both sides of the database commit, a consumer group, and a
broker that lost its topics, written anew."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import Counter
from datetime import UTC, datetime

from settlement.application.app import SettlementApplication
from settlement.infra.broker import EmbeddedBroker, ensure_topics
from settlement.infra.config import Settings
from settlement.infra.topics import Topics
from settlement.service.scenario import marketplace_day
from support.ingest import (
    Reference,
    digests,
    ingest,
    ingest_process,
    publish,
    read_topic,
    stored_event_count,
)
from support.processes import Watched

START = datetime(2026, 11, 26, 9, tzinfo=UTC)
KILLED = 137
PROCESS_TIMEOUT_S = 120


def many_days(jobs_per_format: int, prefix: str = "d") -> list[dict]:
    """Several marketplace days, each under its own prefix, interleaved by position."""
    days = [marketplace_day(START, f"{prefix}{n}") for n in range(jobs_per_format)]
    return [event for rows in zip(*days, strict=True) for event in rows]


def jobs_of(events: list[dict]) -> list[str]:
    return [e["data"]["job_id"] for e in events]


def all_decided(app: SettlementApplication, events: list[dict]) -> bool:
    """Every event's command is stored (applied, or refused for good)."""
    return len(app.store.select_commands([e["id"] for e in events])) == len(events)


def test_marketplace_day_through_kafka_gives_the_expected_escrows(
    owner_app: SettlementApplication, broker: str, topics: Topics, reference: Reference
) -> None:
    events = marketplace_day(START, "day")
    publish(broker, topics, events)
    stats = ingest(owner_app, broker, topics)
    assert (stats.records, stats.rejected, stats.dead_lettered) == (len(events), 0, 0)
    project = owner_app.escrow("day-project")
    contest = owner_app.escrow("day-contest")
    task = owner_app.escrow("day-task")
    assert project and contest and task
    # m1: 110,000 with 10,000 tax, tiered plan: fee 20,000 + tax 2,000, withholding
    # floor(100,000 × 0.1021) = 10,210. m2 disputed: 30,000 to the worker, 25,000 back.
    assert project.released.amount == 140_000 and project.refunded.amount == 25_000
    assert project.withheld.amount == 10_210 + 3_063
    assert contest.state == "awarded" and contest.released.amount == 50_000
    # Task: 10 × 500 funded, two approved, 8 slots refunded at close or on rejection.
    assert task.state == "closed" and task.released.amount == 1_000
    assert task.refunded.amount == 4_000 and task.held.amount == 0
    expected, count = reference(events)
    assert digests(owner_app, jobs_of(events)) == expected
    assert stored_event_count(owner_app) == count


def test_every_record_delivered_twice_changes_nothing_the_second_time(
    owner_app: SettlementApplication, broker: str, topics: Topics, reference: Reference
) -> None:
    events = marketplace_day(START, "dup")
    publish(broker, topics, events)
    publish(broker, topics, events)
    stats = ingest(owner_app, broker, topics)
    assert stats.rejected == 0 and stats.dead_lettered == 0
    assert stats.duplicates == len(events)
    expected, count = reference(events)
    assert digests(owner_app, jobs_of(events)) == expected
    assert stored_event_count(owner_app) == count
    assert read_topic(broker, topics.rejections, expect=0) == []


def _crash_then_resume(settings: Settings, owner_app: SettlementApplication, broker: str,
                       topics: Topics, reference: Reference, failpoint: str) -> None:
    events = many_days(3)
    publish(broker, topics, events)
    crashed = ingest_process(settings, batch_records=7, failpoints=f"{failpoint}=3")
    crashed.wait(PROCESS_TIMEOUT_S)
    assert crashed.returncode == KILLED, crashed.stderr.read() if crashed.stderr else ""
    partial = stored_event_count(owner_app)
    assert 0 < partial < len(events)
    resumed = Watched(ingest_process(settings, batch_records=7))
    out, err = resumed.stop_when(lambda: all_decided(owner_app, events))
    assert resumed.process.returncode == 0, err
    expected, count = reference(events)
    assert digests(owner_app, jobs_of(events)) == expected
    assert stored_event_count(owner_app) == count
    assert len(owner_app.store.select_commands([e["id"] for e in events])) == len(events)


def test_killed_after_the_database_commit_resumes_without_repeating(
    settings: Settings, owner_app: SettlementApplication, broker: str, topics: Topics,
    reference: Reference,
) -> None:
    _crash_then_resume(settings, owner_app, broker, topics, reference, "ingest.after_db_commit")


def test_killed_before_the_database_commit_resumes_without_losing(
    settings: Settings, owner_app: SettlementApplication, broker: str, topics: Topics,
    reference: Reference,
) -> None:
    _crash_then_resume(settings, owner_app, broker, topics, reference, "ingest.before_db_commit")


def test_two_consumers_in_one_group_apply_every_record_exactly_once(
    settings: Settings, owner_app: SettlementApplication, broker: str, topics: Topics,
    reference: Reference,
) -> None:
    first, second = (Watched(ingest_process(settings, batch_records=5, idle_exit_s=8.0))
                     for _ in range(2))
    for process in (first, second):  # both in the group: the partitions split between them
        process.wait_for("marketplace.job-events/")
    events = many_days(8)
    publish(broker, topics, events)
    outputs = [p.stop_when(lambda: all_decided(owner_app, events)) for p in (first, second)]
    assert [p.process.returncode for p in (first, second)] == [0, 0], outputs
    expected, count = reference(events)
    assert digests(owner_app, jobs_of(events)) == expected
    assert stored_event_count(owner_app) == count
    assert len(owner_app.store.select_commands([e["id"] for e in events])) == len(events)
    # Both processes owned input partitions at some point.
    for _, err in outputs:
        assert "marketplace.job-events/" in err


def test_a_topic_the_broker_lost_and_that_was_written_anew_is_read_from_its_beginning(
    owner_app: SettlementApplication, topics: Topics, reference: Reference
) -> None:
    """Read at the stored offsets, the new log's first records would be skipped: the
    consumer sees that the records before them are not the ones it decided."""
    old, new = many_days(1, "old"), many_days(4, "new")
    with EmbeddedBroker() as own:  # its own: a restart loses every topic and record
        asyncio.run(ensure_topics(own.bootstrap, topics.all, partitions=4))
        publish(own.bootstrap, topics, old)
        assert ingest(owner_app, own.bootstrap, topics).records == len(old)
        stored = owner_app.store.select_positions(f"{topics.prefix}ingest")
        own.restart()
        asyncio.run(ensure_topics(own.bootstrap, topics.all, partitions=4))
        publish(own.bootstrap, topics, new)
        # The premise: in some partition, the new log reaches past the stored offset.
        counts = Counter(r.partition for r in read_topic(own.bootstrap, topics.jobs, len(new)))
        assert any(counts[partition] > offset for (_, partition), offset in stored.items())
        stats = ingest(owner_app, own.bootstrap, topics)
        assert (stats.records, stats.rejected, stats.dead_lettered) == (len(new), 0, 0)
        # The same log again: nothing is read twice.
        assert ingest(owner_app, own.bootstrap, topics, idle_exit_s=1.0).records == 0
    expected, count = reference(old + new)
    assert digests(owner_app, jobs_of(old + new)) == expected
    assert stored_event_count(owner_app) == count


def test_a_running_consumer_reads_a_topic_the_broker_lost_again_from_its_beginning(
    owner_app: SettlementApplication, settings: Settings, topics: Topics, reference: Reference
) -> None:
    """The broker loses its topics under a running consumer; once the consumer has
    seen the loss (the new log ends before its positions, or its group is gone),
    marketplace services write the topics anew: nothing of the new log is skipped."""
    old, new = many_days(1, "old"), many_days(4, "new")
    with EmbeddedBroker() as own:  # its own: a restart loses every topic and record
        local = dataclasses.replace(settings, kafka_bootstrap=own.bootstrap)
        asyncio.run(ensure_topics(own.bootstrap, topics.all, partitions=4))
        process = Watched(ingest_process(local, idle_exit_s=15.0))
        publish(own.bootstrap, topics, old)
        deadline = time.monotonic() + PROCESS_TIMEOUT_S
        while len(owner_app.store.select_commands([e["id"] for e in old])) < len(old):
            assert time.monotonic() < deadline, "the first day was not ingested"
            time.sleep(0.5)
        own.restart()
        asyncio.run(ensure_topics(own.bootstrap, topics.all, partitions=4))
        # The consumer reconnects, sees the loss and reads its partitions from the start.
        process.wait_for("ingest.partition_replaced", "ingest.assigned")
        publish(own.bootstrap, topics, new)
        out, err = process.stop_when(lambda: all_decided(owner_app, old + new))
    assert process.process.returncode == 0, err
    assert "ingest.partition_replaced" in err
    expected, count = reference(old + new)
    assert digests(owner_app, jobs_of(old + new)) == expected
    assert stored_event_count(owner_app) == count
