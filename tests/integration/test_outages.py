"""Dependencies taken away under the running pipeline (issue 22), as an operator
would see it: PostgreSQL crashed (`pg_ctl -m immediate stop`) and started again
under load, a consumer started while it is down (and one stopped while it waits),
the broker paused (SIGSTOP) under load, and a broker that lost its data while a
consumer was paused, its new log grown past the consumer's position by the time
it fetches again. Every record is applied exactly once, the read models equal a
rebuild, each process logs an outage once with its length and resumes by itself.

Outages last seconds here; docs/service.md says how to make them minutes."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from settlement.application.app import SettlementApplication
from settlement.infra.broker import ensure_topics
from settlement.infra.postgres import pg_env
from settlement.infra.topics import Topics
from settlement.projections.rebuild.serial import rebuild
from settlement.projections.storage import schema
from settlement.projections.storage.digest import digest
from settlement.projections.storage.store import Store
from settlement.service.scenario import marketplace_day
from support.ingest import Reference, digests, publish, read_topic, stored_event_count
from support.outage import (
    PrivateBroker,
    PrivatePostgres,
    private_broker_fixture,  # noqa: F401 (the fixture `private_broker`)
    private_postgres_fixture,  # noqa: F401 (the fixture `private_postgres`)
    service,
    stored_commands,
)
from support.processes import Watched, wait_for
from support.projections import stored_cloud_events

START = datetime(2026, 11, 26, 9, tzinfo=UTC)
# Seconds here; the long run sets minutes (docs/service.md).
OUTAGE_S = float(os.environ.get("TEST_OUTAGE_S", "3"))
# Longer than the consumers' quiet period (watch.QUIET_S): they ask the broker.
PAUSE_S = float(os.environ.get("TEST_PAUSE_S", "7"))
CATCH_UP_S = 90.0


def days(count: int, prefix: str) -> list[dict[str, Any]]:
    """`count` marketplace days, interleaved by position (each under its own prefix)."""
    rows = [marketplace_day(START, f"{prefix}{n}") for n in range(count)]
    return [event for day in zip(*rows, strict=True) for event in day]


def publish_until_sent(bootstrap: str, topics: Topics, events: Sequence[dict[str, Any]],
                       ) -> None:
    deadline = time.monotonic() + CATCH_UP_S + PAUSE_S
    while True:
        try:
            publish(bootstrap, topics, events)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise


def ids(events: Sequence[dict[str, Any]]) -> list[str]:
    return [e["id"] for e in events]


def jobs(events: Sequence[dict[str, Any]]) -> list[str]:
    return [e["data"]["job_id"] for e in events]


class Pipeline:
    """`settlement ingest`, `relay` and `project` on one database and broker."""

    def __init__(self, url: str, bootstrap: str, prefix: str) -> None:
        self.url = url
        self.ingest = service(url, bootstrap, prefix, "ingest", "--group", f"{prefix}ingest",
                              "--client", f"{prefix}ingest-1", "--batch-records", "20")
        self.relay = service(url, bootstrap, prefix, "relay", "--batch-events", "20")
        self.project = service(url, bootstrap, prefix, "project", "--group",
                               f"{prefix}projections", "--client", f"{prefix}projector-1",
                               "--batch-records", "20")

    @property
    def processes(self) -> list[Watched]:
        return [self.ingest, self.relay, self.project]

    def stop(self) -> list[str]:
        """SIGTERM to each; their stderr, after checking each stopped with status 0."""
        for watched in self.processes:
            if watched.process.poll() is None:
                watched.process.send_signal(signal.SIGTERM)
        logs = [watched.communicate(30)[1] for watched in self.processes]
        for watched, log in zip(self.processes, logs, strict=True):
            assert watched.process.returncode == 0, log[-4000:]
            assert "Traceback" not in log, log[-4000:]
        return logs

    def kill(self) -> None:
        for watched in self.processes:
            if watched.process.poll() is None:
                watched.process.kill()


@pytest.fixture
def verify() -> Iterator[Callable[[str], SettlementApplication]]:
    """The application on a database, opened once the test needs it (after outages)."""
    opened: list[SettlementApplication] = []

    def open_app(url: str) -> SettlementApplication:
        opened.append(SettlementApplication(pg_env(url)))
        return opened[-1]

    yield open_app
    for app in opened:
        app.close()


def caught_up(url: str, events: Sequence[dict[str, Any]], app_of: Callable[[], Any]) -> bool:
    """Every command stored, and the read models hold every settlement event."""
    if stored_commands(url, ids(events)) < len(events):
        return False
    with psycopg.connect(url, autocommit=True) as conn:
        if schema.role_of(conn, schema.LIVE_SCHEMA) != schema.LIVE:
            return False
        return bool(Store(conn, schema.LIVE_SCHEMA).event_count()
                    == len(stored_cloud_events(app_of())))


def assert_exactly_once(url: str, app: SettlementApplication, events: Sequence[dict[str, Any]],
                        reference: Reference) -> None:
    expected, count = reference(events)
    assert digests(app, jobs(events)) == expected
    assert stored_event_count(app) == count
    with psycopg.connect(url, autocommit=True) as conn:
        rebuilt = rebuild(app, f"rebuilt_{uuid.uuid4().hex[:8]}", conn=conn).digest
        assert digest(conn, schema.LIVE_SCHEMA) == rebuilt


def test_a_database_crash_under_load_loses_and_repeats_nothing(
    private_postgres: PrivatePostgres, broker: str, topic_prefix: str, reference: Reference,
    verify: Callable[[str], SettlementApplication],
) -> None:
    url = private_postgres.url
    asyncio.run(ensure_topics(broker, Topics(topic_prefix).all, partitions=4))
    topics = Topics(topic_prefix)
    events = days(6, "crash")
    before, during, after = events[:48], events[48:96], events[96:]
    pipeline = Pipeline(url, broker, topic_prefix)
    try:
        publish(broker, topics, before)
        wait_for(lambda: stored_commands(url, ids(before)) == len(before), "the first events")
        private_postgres.stop()
        publish(broker, topics, during)  # read by the consumer while the database is away
        time.sleep(OUTAGE_S)
        private_postgres.start()
        publish(broker, topics, after)
        app = verify(url)
        wait_for(lambda: caught_up(url, events, lambda: app), "the pipeline", CATCH_UP_S)
        ingest, relay, project = pipeline.stop()
    finally:
        pipeline.kill()
    # Each outage seen once, with its length; nobody restarted.
    assert ingest.count("ingest.database_unavailable") == 1
    assert ingest.count("ingest.database_back") == 1 and '"duration_s"' in ingest
    assert relay.count("relay.database_unavailable") == 1
    assert relay.count("relay.database_back") == 1
    assert project.count("projector.database_unavailable") <= 1
    assert_exactly_once(url, app, events, reference)


def test_a_consumer_started_while_the_database_is_down_waits_then_applies_everything(
    private_postgres: PrivatePostgres, broker: str, topic_prefix: str, reference: Reference,
    verify: Callable[[str], SettlementApplication],
) -> None:
    url = private_postgres.url
    topics = Topics(topic_prefix)
    asyncio.run(ensure_topics(broker, topics.all, partitions=4))
    events = days(2, "late")
    private_postgres.stop()
    ingest = service(url, broker, topic_prefix, "ingest", "--group", f"{topic_prefix}ingest",
                     "--idle-exit", "3")
    try:
        ingest.wait_for("ingest.database_unavailable")
        time.sleep(OUTAGE_S)
        assert ingest.process.poll() is None, ingest.err  # waiting, not dead
        private_postgres.start()
        publish(broker, topics, events)
        out, err = ingest.communicate(CATCH_UP_S)
    finally:
        if ingest.process.poll() is None:
            ingest.process.kill()
    assert ingest.process.returncode == 0, err
    assert err.count("ingest.database_unavailable") == 1
    assert err.count("ingest.database_back") == 1
    app = verify(url)
    expected, count = reference(events)
    assert digests(app, jobs(events)) == expected and stored_event_count(app) == count


def test_a_consumer_stopped_while_it_waits_for_the_database_stops_at_once_with_status_0(
    private_postgres: PrivatePostgres, broker: str, topic_prefix: str,
) -> None:
    private_postgres.stop()
    ingest = service(private_postgres.url, broker, topic_prefix, "ingest", "--group",
                     f"{topic_prefix}ingest")
    try:
        ingest.wait_for("ingest.database_unavailable")
        stopped_at = time.monotonic()
        ingest.process.send_signal(signal.SIGTERM)
        _, err = ingest.communicate(30)
    finally:
        if ingest.process.poll() is None:
            ingest.process.kill()
    assert ingest.process.returncode == 0, err
    assert time.monotonic() - stopped_at < 10
    assert "Traceback" not in err


def test_a_broker_paused_under_load_loses_and_repeats_nothing(
    private_broker: PrivateBroker, database_url: str, topic_prefix: str, reference: Reference,
    verify: Callable[[str], SettlementApplication],
) -> None:
    bootstrap = private_broker.bootstrap
    topics = Topics(topic_prefix)
    asyncio.run(ensure_topics(bootstrap, topics.all, partitions=4))
    events = days(6, "pause")
    first, rest = events[:24], events[24:]
    # The marketplace publishes on, in slices, across the pause (its sends wait for
    # it; one that fails is sent again, as a marketplace service would: a record
    # delivered twice changes nothing).
    publisher = threading.Thread(target=lambda: [publish_until_sent(bootstrap, topics,
                                                                    rest[n:n + 12])
                                                 for n in range(0, len(rest), 12)])
    pipeline = Pipeline(database_url, bootstrap, topic_prefix)
    try:
        publish(bootstrap, topics, first)
        wait_for(lambda: stored_commands(database_url, ids(first)) == len(first),
                 "the first events")
        publisher.start()
        private_broker.pause()
        time.sleep(PAUSE_S)
        private_broker.resume()
        publisher.join(CATCH_UP_S)
        app = verify(database_url)
        wait_for(lambda: caught_up(database_url, events, lambda: app), "the pipeline",
                 CATCH_UP_S)
        ingest, _, _ = pipeline.stop()
    finally:
        private_broker.resume()
        pipeline.kill()
    assert ingest.count("ingest.broker_unavailable") <= 1
    assert ingest.count("ingest.broker_back") == ingest.count("ingest.broker_unavailable")
    assert_exactly_once(database_url, app, events, reference)


def test_a_consumer_paused_across_a_broker_loss_reads_the_new_log_from_its_beginning(
    private_broker: PrivateBroker, database_url: str, topic_prefix: str, reference: Reference,
    verify: Callable[[str], SettlementApplication],
) -> None:
    """The case README left open: the consumer's first fetch after the loss finds the
    new log already past its position. It must not decide what it finds there (out of
    order) but look again, as on assignment, and read the new log from its beginning."""
    bootstrap = private_broker.bootstrap
    topics = Topics(topic_prefix)
    old, new = days(1, "old"), days(4, "new")
    asyncio.run(ensure_topics(bootstrap, topics.all, partitions=4))
    ingest = service(database_url, bootstrap, topic_prefix, "ingest", "--group",
                     f"{topic_prefix}ingest")
    try:
        publish(bootstrap, topics, old)
        wait_for(lambda: stored_commands(database_url, ids(old)) == len(old), "the old log")
        app = verify(database_url)
        stored = app.store.select_positions(f"{topic_prefix}ingest")
        # Paused (for less than its session) while the broker loses everything and
        # marketplace services write the topics anew, past its positions.
        ingest.process.send_signal(signal.SIGSTOP)
        private_broker.restart()
        asyncio.run(ensure_topics(bootstrap, topics.all, partitions=4))
        publish(bootstrap, topics, new)
        counts = Counter(r.partition for r in read_topic(bootstrap, topics.jobs, len(new)))
        assert any(counts[partition] > offset for (_, partition), offset in stored.items())
        ingest.process.send_signal(signal.SIGCONT)
        wait_for(lambda: stored_commands(database_url, ids(new)) == len(new), "the new log",
                 CATCH_UP_S)
        _, err = ingest.stop_when(lambda: True)
    finally:
        ingest.process.send_signal(signal.SIGCONT)
        if ingest.process.poll() is None:
            ingest.process.kill()
    assert ingest.process.returncode == 0, err
    assert "ingest.partition_replaced" in err
    expected, count = reference(old + new)
    assert digests(app, jobs(old + new)) == expected
    assert stored_event_count(app) == count
