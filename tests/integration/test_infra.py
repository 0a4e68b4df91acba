from __future__ import annotations

import asyncio
import shutil
import uuid
from pathlib import Path

import psycopg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from settlement.infra.broker import BrokerStartError, EmbeddedBroker, ensure_topics
from settlement.infra.postgres import create_database, drop_database, embedded_postgres, pg_env


def test_embedded_postgres_answers_and_keeps_its_data(tmp_path: Path) -> None:
    with embedded_postgres(tmp_path / "state") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
            conn.execute("create table kept (n int)")
    # A second start reuses the data directory instead of running initdb again.
    with embedded_postgres(tmp_path / "state") as url, psycopg.connect(url) as conn:
        assert conn.execute("select count(*) from kept").fetchone() == (0,)


def test_databases_are_isolated(pg_server: str, database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("create table mine (n int)")
    other = f"test_{uuid.uuid4().hex[:16]}"
    other_url = create_database(pg_server, other)
    try:
        with psycopg.connect(other_url) as conn:
            found = conn.execute("select to_regclass('mine')").fetchone()
            assert found == (None,)
    finally:
        drop_database(pg_server, other)
    with psycopg.connect(pg_server) as conn:
        row = conn.execute("select 1 from pg_database where datname = %s", (other,)).fetchone()
        assert row is None


def test_pg_env_values_connect(database_url: str) -> None:
    env = pg_env(database_url)
    with psycopg.connect(
        dbname=env["POSTGRES_DBNAME"],
        host=env["POSTGRES_HOST"],
        port=env["POSTGRES_PORT"],
        user=env["POSTGRES_USER"],
        password=env["POSTGRES_PASSWORD"],
    ) as conn:
        assert conn.execute("select current_database()").fetchone() == (env["POSTGRES_DBNAME"],)


def test_broker_round_trip_with_manual_commit(broker: str, topic_prefix: str) -> None:
    topic = f"{topic_prefix}round-trip"
    asyncio.run(_round_trip(broker, topic))


async def _round_trip(bootstrap: str, topic: str) -> None:
    assert await ensure_topics(bootstrap, [topic], partitions=3) == {topic}
    assert await ensure_topics(bootstrap, [topic], partitions=3) == set()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False)
    await producer.start()
    try:
        for n in range(10):
            await producer.send_and_wait(topic, f"value-{n}".encode(), key=f"job-{n}".encode())
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"{topic}.group",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        # The embedded broker holds a first join for half the session timeout.
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    await consumer.start()
    try:
        values = await _consume(consumer, 10)
        await consumer.commit()
        partitions = consumer.assignment()
        ends = await consumer.end_offsets(list(partitions))
        committed = {tp: await consumer.committed(tp) for tp in partitions}
    finally:
        await consumer.stop()
    assert sorted(values) == sorted(f"value-{n}".encode() for n in range(10))
    assert {tp.partition for tp in partitions} == {0, 1, 2}
    assert committed == ends


async def _consume(consumer: AIOKafkaConsumer, count: int) -> list[bytes]:
    values: list[bytes] = []
    async with asyncio.timeout(60):
        while len(values) < count:
            batches = await consumer.getmany(timeout_ms=500)
            values += [record.value for records in batches.values() for record in records]
    return values


def test_broker_restart_loses_topics() -> None:
    with EmbeddedBroker() as embedded:
        topic = "lost-on-restart"
        asyncio.run(ensure_topics(embedded.bootstrap, [topic]))
        assert topic in asyncio.run(_topics(embedded.bootstrap))
        embedded.restart()
        # Same address, empty broker: the storage is memory only.
        assert asyncio.run(_topics(embedded.bootstrap)) == set()
        assert asyncio.run(ensure_topics(embedded.bootstrap, [topic])) == {topic}


async def _topics(bootstrap: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


def test_broker_that_dies_reports_its_output(monkeypatch: pytest.MonkeyPatch) -> None:
    # `ls` rejects the broker's arguments, prints why and exits non-zero.
    monkeypatch.setenv("CALF_TANSU_BIN", shutil.which("ls") or "/bin/ls")
    with pytest.raises(BrokerStartError, match=r"(?s)broker exited with 2.*--listener-url"):
        EmbeddedBroker(start_timeout_s=5).start()
