"""Histories for the projection tests: marketplace scripts (with timer passes)
turned into settlement CloudEvents, either purely through the escrow aggregates
or through the application into the event store."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
import psycopg
from aiokafka import AIOKafkaProducer

from settlement.application import handlers
from settlement.application.app import APPLIED, SettlementApplication
from settlement.core.commands import Command
from settlement.core.fees import FeePlan
from settlement.escrow import Escrow
from settlement.infra.config import Settings
from settlement.infra.topics import Topics
from settlement.projections.live.projector import Projector
from settlement.projections.storage.store import Store
from settlement.relay.cloudevents import to_cloud_event
from settlement.relay.records import is_settlement_event
from settlement.service.scenario import cloud_event, marketplace_day
from support.consumed import run_until_read


@dataclass(frozen=True)
class Timers:
    """A timer pass over one job at `now` (SPEC §2)."""

    job_id: str
    now: datetime


Step = dict[str, Any] | Timers


def money(amount: str, currency: str = "JPY") -> dict[str, str]:
    return {"amount": amount, "currency": currency}


def wire(position: int, event: Any, chain: tuple[str, str] | None = None) -> dict[str, Any]:
    """The CloudEvent as a consumer decodes it from Kafka."""
    return orjson.loads(orjson.dumps(to_cloud_event(position, event, chain)))


def cloud_events(script: Iterable[Step], plans: Mapping[str, FeePlan]) -> list[dict[str, Any]]:
    """The settlement events of `script`, applied to escrows in memory, numbered
    from 1. Every step must be accepted."""
    return run(script, plans)[0]


def run(script: Iterable[Step], plans: Mapping[str, FeePlan],
        first_position: int = 1) -> tuple[list[dict[str, Any]], dict[str, Escrow]]:
    """The settlement events of `script` and the escrows they leave."""
    escrows: dict[str, Escrow] = {}
    out: list[dict[str, Any]] = []
    for step in script:
        if isinstance(step, Timers):
            escrow = escrows[step.job_id]
            escrow.run_timers(step.now)
        else:
            command = Command.create(step["id"], step["type"], datetime.fromisoformat(step["time"]),
                                     step["data"])
            escrow = handlers.apply(escrows.get(command.job_id), command, plans)
        escrows[escrow.job_id] = escrow
        for event in escrow.collect_events():
            out.append(wire(first_position + len(out), event))
    return out, escrows


def store(app: SettlementApplication, script: Sequence[Step]) -> None:
    """Apply `script` through the application: commands in batches, timer passes
    on the stored escrows in between."""
    pending: list[Command] = []

    def flush() -> None:
        outcomes = app.handle_batch(pending) if pending else []
        refused = [o for o in outcomes if o.status != APPLIED]
        assert not refused, refused
        pending.clear()

    for step in script:
        if isinstance(step, Timers):
            flush()
            escrow = app.escrow(step.job_id)
            assert escrow is not None and escrow.run_timers(step.now), step
            app.save(escrow)
        else:
            pending.append(Command.create(step["id"], step["type"],
                                          datetime.fromisoformat(step["time"]), step["data"]))
    flush()


def stored_cloud_events(app: SettlementApplication) -> list[dict[str, Any]]:
    """Every stored event as the relay publishes it, in order (a payout stream's
    opening is not published)."""
    notifications = app.recorder.select_notifications(start=1, limit=1_000_000)
    events = ((n.id, app.mapper.to_domain_event(n)) for n in notifications)
    chain = {position: (hash_, prev) for position, _, hash_, prev  # the audit chain's hashes
             in app.store.select_chain(0, 1_000_000) if hash_ is not None and prev is not None}
    return [wire(position, event, chain.get(position)) for position, event in events
            if is_settlement_event(event)]


def rich_day(start: datetime, prefix: str) -> list[Step]:
    """`marketplace_day` and, past it, what the day does not show: amendments and
    cancellations in USD, an unfunded milestone, cancelled and refunded
    competitions, a disputed entry and submission, and the timers."""
    t = lambda minutes: start + timedelta(minutes=minutes)  # noqa: E731
    usd, cancel, few, split, tasks, idle = (f"{prefix}-{name}" for name in (
        "usd", "cancel", "few", "split", "tasks", "idle"))
    rows: list[tuple[str, datetime, dict[str, Any]]] = [
        ("project.contracted", t(100), {
            "job_id": usd, "client_id": "client-u", "worker_id": "worker-u",
            "fee_plan": "usd_standard",
            "milestones": [{"milestone_id": "m1", "amount": money("100.00", "USD")}]}),
        ("project.milestone_added", t(101), {"job_id": usd, "milestone_id": "m2",
                                             "amount": money("50.50", "USD")}),
        ("project.milestone_added", t(102), {"job_id": usd, "milestone_id": "m3",
                                             "amount": money("20.00", "USD")}),
        ("project.milestone_funded", t(103), {"job_id": usd, "milestone_id": "m1",
                                              "amount": money("105.00", "USD"),
                                              "payment_ref": "pay-u1"}),
        ("project.milestone_funded", t(104), {"job_id": usd, "milestone_id": "m2",
                                              "amount": money("53.02", "USD"),
                                              "payment_ref": "pay-u2"}),
        ("project.milestone_cancelled", t(105), {"job_id": usd, "milestone_id": "m2",
                                                 "reason": "scope cut"}),
        ("project.milestone_delivered", t(106), {"job_id": usd, "milestone_id": "m1"}),
        ("competition.opened", t(110), {
            "job_id": cancel, "client_id": "client-b", "fee_plan": "tiered",
            "prize": money("30000"), "guaranteed": False,
            "entry_deadline": t(2000).isoformat(), "award_deadline": t(3000).isoformat()}),
        ("competition.funded", t(111), {"job_id": cancel, "amount": money("30000"),
                                        "payment_ref": "pay-c1"}),
        ("competition.cancelled", t(112), {"job_id": cancel, "reason": "brief withdrawn"}),
        ("competition.opened", t(120), {
            "job_id": few, "client_id": "client-b", "fee_plan": "flat", "prize": money("20000"),
            "guaranteed": True, "min_entries": 3,
            "entry_deadline": t(2000).isoformat(), "award_deadline": t(3000).isoformat()}),
        ("competition.funded", t(121), {"job_id": few, "amount": money("21100"),
                                        "payment_ref": "pay-c2"}),
        ("competition.entry_submitted", t(122), {"job_id": few, "entry_id": "e1",
                                                 "worker_id": "worker-2"}),
        ("competition.opened", t(130), {
            "job_id": split, "client_id": "client-c", "fee_plan": "tiered",
            "prize": money("90000"), "guaranteed": True, "withholding": True,
            "entry_deadline": t(2000).isoformat(), "award_deadline": t(3000).isoformat()}),
        ("competition.funded", t(131), {"job_id": split, "amount": money("90000"),
                                        "payment_ref": "pay-c3"}),
        ("competition.entry_submitted", t(132), {"job_id": split, "entry_id": "e1",
                                                 "worker_id": "worker-6"}),
        ("competition.entry_submitted", t(133), {"job_id": split, "entry_id": "e2",
                                                 "worker_id": "worker-7"}),
        ("dispute.opened", t(134), {"job_id": split, "item_id": "e2", "opened_by": "worker",
                                    "reason": "plagiarism claim"}),
        ("dispute.resolved", t(135), {"job_id": split, "item_id": "e2",
                                      "worker_amount": money("60000"),
                                      "client_amount": money("30000")}),
        ("task.opened", t(140), {"job_id": tasks, "client_id": "client-d", "fee_plan": "tiered",
                                 "unit_price": money("1000"), "quantity": 4}),
        ("task.funded", t(141), {"job_id": tasks, "amount": money("4000"),
                                 "payment_ref": "pay-t1"}),
        ("task.submission_received", t(142), {"job_id": tasks, "submission_id": "s1",
                                              "worker_id": "worker-8"}),
        ("task.submission_received", t(143), {"job_id": tasks, "submission_id": "s2",
                                              "worker_id": "worker-9"}),
        ("task.submission_received", t(144), {"job_id": tasks, "submission_id": "s3",
                                              "worker_id": "worker-8"}),
        ("dispute.opened", t(145), {"job_id": tasks, "item_id": "s2", "opened_by": "client",
                                    "reason": "off brief"}),
        ("dispute.resolved", t(146), {"job_id": tasks, "item_id": "s2",
                                      "worker_amount": money("400"),
                                      "client_amount": money("600")}),
        ("task.closed", t(147), {"job_id": tasks}),
        ("project.contracted", t(150), {
            "job_id": idle, "client_id": "client-e", "worker_id": "worker-e",
            "fee_plan": "tiered", "milestones": [{"milestone_id": "m1", "amount": money("7000")}]}),
    ]
    extra = [cloud_event(f"{prefix}-x{n:03d}", type_, at, data)
             for n, (type_, at, data) in enumerate(rows, start=1)]
    later = start + timedelta(days=30)
    timers = [Timers(usd, later), Timers(few, later), Timers(tasks, later)]
    return [*marketplace_day(start, prefix), *extra, *timers]


def find(events: Sequence[dict[str, Any]], name: str, job_id: str, nth: int = 0) -> dict[str, Any]:
    """The `nth` event named `name` (e.g. "milestone_released") of `job_id`."""
    matches = [e for e in events
               if e["type"] == f"settlement.{name}" and e["data"]["job_id"] == job_id]
    return matches[nth]


def publish_events(broker: str, topic: str, events: Iterable[dict[str, Any]]) -> None:
    """Publish settlement CloudEvents as the relay does: keyed by job (payout
    events by payout), in order."""

    async def send_all() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=broker, acks="all",
                                    enable_idempotence=False, linger_ms=5)
        await producer.start()
        try:
            sent = [await producer.send(topic, key=e["subject"].encode(),
                                        value=orjson.dumps(e)) for e in events]
            await asyncio.gather(*sent)
        finally:
            await producer.stop()

    asyncio.run(send_all())


def project(conn: psycopg.Connection[Any], broker: str, topics: Topics, *, group: str,
            schema: str = "projections", batch_records: int = 1000,
            idle_exit_s: float = 5.0, head: Callable[[], int | None] | None = None) -> Projector:
    """Run a projector in this process until it has read every event published before
    (`run_until_read`), or else until it has been idle for `idle_exit_s` (counted from
    its assignment; with records still to read, `run_until_read` waits longer)."""
    projector = Projector(conn, broker, topics, schema_name=schema, group_id=group,
                          client_id=f"{group}-{uuid.uuid4().hex[:6]}",
                          batch_records_max=batch_records, head=head)
    with psycopg.connect(conn.info.dsn, password=conn.info.password,
                         autocommit=True) as reader:  # beside the projector's own

        def stored() -> dict[tuple[str, int], int]:
            try:
                positions = Store(reader, schema).positions(group)
            except (psycopg.errors.InvalidSchemaName, psycopg.errors.UndefinedTable):
                return {}  # before the projector created its tables
            return {tp: offset for tp, (offset, _) in positions.items()}

        asyncio.run(run_until_read(projector.run, broker, [topics.events], stored, idle_exit_s))
    return projector


def project_process(settings: Settings, *, group: str, batch_records: int = 1000,
                    idle_exit_s: float = 3.0, failpoints: str = "") -> subprocess.Popen[str]:
    """`settlement project` as a process of its own on the test's database and topics."""
    env = {**os.environ, "SETTLEMENT_DATABASE_URL": str(settings.database_url),
           "SETTLEMENT_KAFKA_BOOTSTRAP": str(settings.kafka_bootstrap),
           "SETTLEMENT_TOPIC_PREFIX": settings.topic_prefix, "SETTLEMENT_FAILPOINTS": failpoints}
    command = [sys.executable, "-m", "settlement.cli", "project", "--group", group,
               "--client", f"{group}-{uuid.uuid4().hex[:6]}", "--batch-records",
               str(batch_records), "--idle-exit", str(idle_exit_s)]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
