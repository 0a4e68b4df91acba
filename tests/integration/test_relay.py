"""The outbox relay on the real broker and PostgreSQL: the SPEC §4 records of a
day, stop and restart, a crash between the acknowledgements and the stored
position, a reset while running, and a broker that lost its data."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from eventsourcing.domain import Aggregate

from settlement.application.app import SettlementApplication
from settlement.infra.broker import EmbeddedBroker
from settlement.infra.config import Settings
from settlement.infra.topics import Topics
from settlement.relay.cloudevents import to_cloud_event
from settlement.relay.positions import RelayPositions
from settlement.relay.records import is_settlement_event
from settlement.relay.service import BrokerDataLoss, Relay
from settlement.relay.stats import RelayStats
from settlement.service.scenario import marketplace_day
from support.ingest import commands_of, read_topic

START = datetime(2026, 11, 26, 9, tzinfo=UTC)
KILLED = 137
IDLE_EXIT_S = 1.0
PROCESS_TIMEOUT_S = 120
CATCH_UP_TIMEOUT_S = 30.0
# Each record as read back: (partition, offset, key, value).
Published = tuple[int, int, bytes, bytes]


@pytest.fixture
def relay_app(es_env: dict[str, str]) -> Iterator[SettlementApplication]:
    """An application of the relay's own, beside the one that writes (owner_app)."""
    app = SettlementApplication(es_env)
    yield app
    app.close()


def apply_days(app: SettlementApplication, prefix: str, days: int = 1) -> None:
    """Apply `days` marketplace days directly, interleaved, in one batch."""
    rows = [marketplace_day(START, f"{prefix}{n}") for n in range(days)]
    app.handle_batch(commands_of([event for row in zip(*rows, strict=True) for event in row]))


def expected_events(app: SettlementApplication) -> dict[int, dict[str, Any]]:
    """The CloudEvent of every stored settlement event, by position, with the
    hashes of its audit chain row (SPEC §8)."""
    chain = {position: (hash_, prev) for position, _, hash_, prev
             in app.store.select_chain(0, 1_000_000)}
    out = {}
    for n in app.recorder.select_notifications(start=1, limit=1_000_000):
        event = app.mapper.to_domain_event(n)
        if is_settlement_event(event):
            out[n.id] = to_cloud_event(n.id, event, chain[n.id])
    return out


def relay_once(app: SettlementApplication, bootstrap: str, topics: Topics,
               **options: Any) -> RelayStats:
    relay = Relay(app, bootstrap, topics, **options)
    return asyncio.run(relay.run(asyncio.Event(), idle_exit_s=IDLE_EXIT_S))


def published(bootstrap: str, topic: str, expect: int) -> list[Published]:
    records = read_topic(bootstrap, topic, expect)
    return sorted((r.partition, r.offset, r.key or b"", r.value or b"") for r in records)


def ids_of(records: list[Published]) -> Counter[str]:
    return Counter(orjson.loads(value)["id"] for _, _, _, value in records)


def check_contract(records: list[Published], expected: dict[int, dict[str, Any]]) -> None:
    """Each record is the SPEC §4 CloudEvent of its position, keyed by job; per job,
    one partition and, de-duplicated by id as consumers do, position order with
    contiguous versions; postings balance."""
    per_job: dict[bytes, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    seen: set[str] = set()
    for partition, _, key, value in records:  # sorted by partition, then offset
        event = orjson.loads(value)
        data = event["data"]
        if event["id"] in seen:
            continue
        seen.add(event["id"])
        assert event == expected[data["position"]]
        assert key == data["job_id"].encode("utf-8")
        assert {"job_id", "position", "version", "causation_id", "postings", "hash",
                "prev_hash"} <= data.keys()
        assert event["id"] == f"settlement-{data['position']}"
        assert balanced(data["postings"]), data
        per_job[key].append((partition, data))
    for rows in per_job.values():
        assert len({partition for partition, _ in rows}) == 1
        positions = [data["position"] for _, data in rows]
        assert positions == sorted(positions)
        assert [data["version"] for _, data in rows] == list(range(1, len(rows) + 1))


def balanced(postings: list[dict[str, str]]) -> bool:
    """Debits equal credits in each currency."""
    net: dict[str, Decimal] = defaultdict(Decimal)
    for posting in postings:
        sign = {"debit": 1, "credit": -1}[posting["side"]]
        net[posting["currency"]] += sign * Decimal(posting["amount"])
    return all(amount == 0 for amount in net.values())


def caught_up(relay: Relay, app: SettlementApplication) -> None:
    """Wait (in a thread) until `relay` has published every event stored so far."""
    head = app.recorder.max_notification_id() or 0
    deadline = time.monotonic() + CATCH_UP_TIMEOUT_S
    while relay.stats.position < head:
        assert time.monotonic() < deadline, relay.stats
        time.sleep(0.05)


async def run_live(relay: Relay, app: SettlementApplication,
                   writes: list[Callable[[], object]]) -> RelayStats:
    """Run `relay` while `writes` happen; stop it once it has published the last."""
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    for write in writes:
        await asyncio.to_thread(write)
    head = await asyncio.to_thread(app.recorder.max_notification_id)
    deadline = time.monotonic() + CATCH_UP_TIMEOUT_S
    while relay.stats.position < (head or 0) and not task.done():
        assert time.monotonic() < deadline, relay.stats
        await asyncio.sleep(0.05)
    stop.set()
    return await task


def settlement_relay(settings: Settings, *args: str, failpoints: str = "",
                     returncode: int = 0) -> dict[str, Any]:
    """Run `settlement relay …` as a process of its own; its last output line (JSON)."""
    env = {**os.environ, "SETTLEMENT_DATABASE_URL": str(settings.database_url),
           "SETTLEMENT_KAFKA_BOOTSTRAP": str(settings.kafka_bootstrap),
           "SETTLEMENT_TOPIC_PREFIX": settings.topic_prefix, "SETTLEMENT_FAILPOINTS": failpoints}
    done = subprocess.run([sys.executable, "-m", "settlement.cli", "relay", *args], env=env,
                          capture_output=True, text=True, timeout=PROCESS_TIMEOUT_S)
    assert done.returncode == returncode, done.stderr
    lines = done.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines else {}


def partitions_of(bootstrap: str, topic: str) -> int | None:
    async def describe() -> int | None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
        await admin.start()
        try:
            if topic not in await admin.list_topics():
                return None
            [description] = await admin.describe_topics([topic])
            return len(description["partitions"])
        finally:
            await admin.close()

    return asyncio.run(describe())


def test_a_day_is_published_once_per_event_keyed_and_ordered_by_job(
    owner_app: SettlementApplication, relay_app: SettlementApplication, broker: str,
    topics: Topics,
) -> None:
    apply_days(owner_app, "day", days=2)
    owner_app.save(Aggregate())  # not an escrow: skipped, but passed over
    apply_days(owner_app, "late")
    expected = expected_events(owner_app)
    head = owner_app.recorder.max_notification_id()
    stats = relay_once(relay_app, broker, topics)
    assert (stats.published, stats.skipped, stats.position, stats.lag) == (
        len(expected), 1, head, 0)
    assert stats.events_per_s > 0
    records = published(broker, topics.events, expect=len(expected))
    assert ids_of(records) == Counter(f"settlement-{p}" for p in expected)
    check_contract(records, expected)
    assert sum(1 for e in expected.values() if e["data"]["postings"]) >= 10  # money moved
    assert RelayPositions(relay_app.store).get("relay") == head


def test_unbalanced_postings_are_caught_by_the_check() -> None:
    line = {"account": "a", "amount": "5", "currency": "JPY"}
    assert balanced([{**line, "side": "debit"}, {**line, "side": "credit"}])
    assert not balanced([{**line, "side": "debit"}, {**line, "side": "credit", "amount": "4"}])
    assert not balanced([{**line, "side": "debit"}, {**line, "side": "credit",
                                                      "currency": "USD"}])


def test_stopped_and_restarted_the_relay_continues_from_its_stored_position(
    owner_app: SettlementApplication, relay_app: SettlementApplication, broker: str,
    topics: Topics,
) -> None:
    # Live: the relay is woken by each commit (LISTEN/NOTIFY), then stopped.
    first = asyncio.run(run_live(Relay(relay_app, broker, topics), owner_app,
                                 [lambda: apply_days(owner_app, "a"),
                                  lambda: apply_days(owner_app, "b", days=2)]))
    stopped_at = first.position
    assert stopped_at == owner_app.recorder.max_notification_id()
    apply_days(owner_app, "c")  # while the relay is stopped
    second = relay_once(relay_app, broker, topics)
    expected = expected_events(owner_app)
    assert first.published + second.published == len(expected)
    assert second.published == sum(1 for p in expected if p > stopped_at)
    records = published(broker, topics.events, expect=len(expected))
    assert ids_of(records) == Counter(f"settlement-{p}" for p in expected)
    check_contract(records, expected)


def test_killed_before_storing_its_position_the_relay_publishes_the_batch_again(
    owner_app: SettlementApplication, relay_app: SettlementApplication, settings: Settings,
    broker: str, topics: Topics,
) -> None:
    apply_days(owner_app, "k", days=3)
    expected = expected_events(owner_app)
    settlement_relay(settings, "--batch-events", "10", failpoints="relay.after_publish=2",
                     returncode=KILLED)
    stored = RelayPositions(relay_app.store).get("relay")
    before = published(broker, topics.events, expect=stored + 1)
    sent = ids_of(before)
    # The second batch reached the broker; its position was never stored.
    assert 0 < stored < max(int(i.removeprefix("settlement-")) for i in sent) < len(expected)
    output = settlement_relay(settings, "--batch-events", "10", "--idle-exit", str(IDLE_EXIT_S))
    assert output["position"] == max(expected) and output["lag"] == 0
    records = published(broker, topics.events, expect=len(expected) + len(sent) - stored)
    again = {f"settlement-{p}" for p in expected if p > stored} & set(sent)
    assert again, "the unstored batch is published again"
    assert ids_of(records) == Counter(f"settlement-{p}" for p in expected) + Counter(again)
    check_contract(records, expected)  # repeats are the same records: same ids, same values


def test_a_reset_while_running_is_honoured_at_the_next_batch(
    owner_app: SettlementApplication, relay_app: SettlementApplication, broker: str,
    topics: Topics,
) -> None:
    positions = RelayPositions(relay_app.store)
    stats = asyncio.run(run_live(Relay(relay_app, broker, topics), owner_app, [
        lambda: apply_days(owner_app, "r"),
        lambda: time.sleep(IDLE_EXIT_S),  # published and stored by now
        lambda: positions.reset("relay", 0),
        lambda: apply_days(owner_app, "s"),
    ]))
    expected = expected_events(owner_app)
    day_r = {f"settlement-{p}" for p, e in expected.items() if e["subject"].startswith("r0")}
    records = published(broker, topics.events, expect=stats.published)
    assert len(records) == stats.published
    counts = ids_of(records)
    # Day s (or its first batch) was published but not stored: the stored position had
    # moved. The relay then followed again from 0: day r is there twice, day s once or twice.
    assert {i for i, n in counts.items() if n == 2} >= day_r
    assert set(counts) == {f"settlement-{p}" for p in expected} and max(counts.values()) == 2
    check_contract(records, expected)


def test_after_the_broker_lost_its_data_a_reset_republishes_every_event(
    owner_app: SettlementApplication, relay_app: SettlementApplication, settings: Settings,
    topic_prefix: str,
) -> None:
    topics = Topics(topic_prefix)
    with EmbeddedBroker() as local:  # its own: a restart loses every topic
        apply_days(owner_app, "lost", days=2)
        expected = expected_events(owner_app)
        first = relay_once(relay_app, local.bootstrap, topics)
        before = published(local.bootstrap, topics.events, expect=len(expected))
        assert first.published == len(expected)
        local.restart()
        assert partitions_of(local.bootstrap, topics.events) is None
        local_settings = dataclasses.replace(settings, kafka_bootstrap=local.bootstrap)
        reset = settlement_relay(local_settings, "reset", "--from", "1")
        assert (reset["previous_position"], reset["position"]) == (first.position, 0)
        assert settlement_relay(local_settings, "status")["lag"] == first.position
        again = relay_once(relay_app, local.bootstrap, topics)
        assert again.published == len(expected)
        assert partitions_of(local.bootstrap, topics.events) == 4
        after = published(local.bootstrap, topics.events, expect=len(expected))
        assert sorted(v for *_, v in after) == sorted(v for *_, v in before)
        check_contract(after, expected)


def test_a_broker_restart_while_running_stops_the_relay_and_republishes_in_order(
    owner_app: SettlementApplication, relay_app: SettlementApplication, topic_prefix: str,
) -> None:
    topics = Topics(topic_prefix)
    with EmbeddedBroker() as local:
        relay = Relay(relay_app, local.bootstrap, topics)
        with pytest.raises(BrokerDataLoss):
            asyncio.run(run_live(relay, owner_app, [
                lambda: apply_days(owner_app, "x", days=4),
                lambda: caught_up(relay, owner_app),  # all of x acknowledged by the old broker
                local.restart,
                lambda: apply_days(owner_app, "y", days=4),
            ]))
        # The new log began with the batch in flight: it is cleared, and the relay
        # publishes everything again, in order, when it starts again (soak seed 11).
        assert RelayPositions(relay_app.store).get("relay") == 0
        assert read_topic(local.bootstrap, topics.events, expect=0) == []
        expected = expected_events(owner_app)
        assert relay_once(relay_app, local.bootstrap, topics).published == len(expected)
        after = published(local.bootstrap, topics.events, expect=len(expected))
        assert sorted(ids_of(after).values()) == [1] * len(expected)  # each event once
        check_contract(after, expected)  # in order per job


def test_stored_positions_move_by_compare_and_set_and_reset_unconditionally(
    relay_app: SettlementApplication,
) -> None:
    positions = RelayPositions(relay_app.store)
    positions.create_table()
    positions.create_table()  # idempotent
    assert positions.table_name == "settlement_relay_positions"
    assert positions.get("a") == 0
    assert positions.advance("a", 0, 5)
    assert not positions.advance("a", 3, 9)  # another process moved it
    assert positions.advance("a", 5, 9) and positions.get("a") == 9
    assert positions.get("b") == 0
    assert positions.reset("a", 2) == 9 and positions.get("a") == 2
    with pytest.raises(ValueError):
        positions.reset("a", -1)
