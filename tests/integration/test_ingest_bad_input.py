"""A corpus of bad records interleaved with a good marketplace day: each lands in the
dead-letter topic or on the rejections topic with its code, every good record applies,
and nothing else changes."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from settlement.application.app import SettlementApplication
from settlement.infra.topics import Topics
from settlement.ingest.decoding import RECORD_BYTES_MAX
from settlement.service.scenario import cloud_event, marketplace_day
from support.ingest import (
    Outgoing,
    Reference,
    digests,
    ingest,
    publish,
    read_topic,
    stored_event_count,
)

START = datetime(2026, 11, 26, 9, tzinfo=UTC)
LATE = START + timedelta(hours=2)


def jpy(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": "JPY"}


def funding(amount: Any, event_id: str = "x-fund") -> dict[str, Any]:
    return cloud_event(event_id, "project.milestone_funded", LATE,
                       {"job_id": "bad-project", "milestone_id": "m3", "amount": amount,
                        "payment_ref": "pay-x"})


def text(event: dict[str, Any]) -> str:
    return json.dumps(event, separators=(",", ":"))


def raw(event: dict[str, Any]) -> bytes:
    return text(event).encode()


def dead_letters() -> list[tuple[bytes, str]]:
    """Records the decoder refuses, and the code each must get."""
    good = text(funding(jpy("1000")))
    event = funding(jpy("1000"))
    no_milestone = {**event, "data": {k: v for k, v in event["data"].items()
                                      if k != "milestone_id"}}
    return [
        (b"{not json", "invalid_json"),
        (good.encode() + b" trailing", "invalid_json"),
        (good.replace('"id":"x-fund"', '"id":"x-fund","id":"x-fund2"').encode(), "duplicate_key"),
        (good.replace('"milestone_id":"m3"', '"milestone_id":"m3","milestone_id":"m4"').encode(),
         "duplicate_key"),
        (good.replace('"amount":"1000"', '"amount":1000.5').encode(), "schema_invalid"),
        (good.replace('"amount":"1000"', '"amount":1000').encode(), "schema_invalid"),
        (good.replace('"amount":"1000"', '"amount":NaN').encode(), "invalid_number"),
        (good.replace('"amount":"1000"', '"amount":Infinity').encode(), "invalid_number"),
        (raw(funding(jpy("1e3"))), "schema_invalid"),
        (raw(funding(jpy("-5"))), "schema_invalid"),
        (raw(funding(jpy("0"))), "schema_invalid"),
        (raw(funding({"amount": "1000", "currency": "jpy"})), "schema_invalid"),
        (raw(funding({"amount": "1000"})), "schema_invalid"),
        (raw(no_milestone), "schema_invalid"),
        (raw({k: v for k, v in event.items() if k != "data"}), "schema_invalid"),
        (raw({**event, "type": "project.exploded"}), "unknown_type"),
        (raw({**event, "type": "payout.settled"}), "unknown_type"),
        (raw({**event, "specversion": "0.3"}), "schema_invalid"),
        (raw({**event, "time": "2026-11-26T10:00:00"}), "schema_invalid"),
        (raw({**event, "id": "has space"}), "schema_invalid"),
        (raw({**event, "id": "x" * 129}), "schema_invalid"),
        (raw({**event, "data": ["not", "an", "object"]}), "schema_invalid"),
        (raw({**event, "data": {**event["data"], "surprise": True}}), "schema_invalid"),
        (b"[1, 2, 3]", "schema_invalid"),
        (b"\xff\xfe\xfd", "invalid_utf8"),
        (b"", "empty_record"),
        (b"{" + b" " * RECORD_BYTES_MAX + b"}", "record_too_large"),
    ]


def good_events() -> list[dict[str, Any]]:
    day = marketplace_day(START, "bad")
    project, contest, task = "bad-project", "bad-contest2", "bad-task2"
    extra = [
        ("project.milestone_added", {"job_id": project, "milestone_id": "m3",
                                     "amount": jpy("20000")}),
        ("competition.opened", {"job_id": contest, "client_id": "client-c", "fee_plan": "tiered",
                                "prize": jpy("30000"), "guaranteed": True,
                                "entry_deadline": "2026-12-01T00:00:00Z",
                                "award_deadline": "2026-12-08T00:00:00Z"}),
        ("competition.funded", {"job_id": contest, "amount": jpy("30000"),
                                "payment_ref": "pay-c2"}),
        ("competition.entry_submitted", {"job_id": contest, "entry_id": "e1",
                                         "worker_id": "worker-9"}),
        ("task.opened", {"job_id": task, "client_id": "client-c", "fee_plan": "tiered",
                         "unit_price": jpy("800"), "quantity": 1}),
        ("task.funded", {"job_id": task, "amount": jpy("800"), "payment_ref": "pay-t2"}),
        ("task.submission_received", {"job_id": task, "submission_id": "s1",
                                      "worker_id": "worker-8"}),
    ]
    return day + [cloud_event(f"good-{n}", t, LATE, d) for n, (t, d) in enumerate(extra)]


def rejected_events() -> list[tuple[dict[str, Any], str]]:
    """Valid records that break a business rule, and the code each must get."""
    def ev(event_id: str, type_: str, data: dict[str, Any]) -> dict[str, Any]:
        return cloud_event(event_id, type_, LATE, data)

    p, c, t = "bad-project", "bad-contest2", "bad-task2"
    return [
        (funding(jpy("1000.5"), "r-precise"), "amount_too_precise"),
        (ev("r-currency", "project.milestone_added", {"job_id": p, "milestone_id": "m9",
                                                      "amount": {"amount": "10.00",
                                                                 "currency": "USD"}}),
         "currency_mismatch"),
        (funding(jpy("19999"), "r-mismatch"), "amount_mismatch"),
        (ev("r-ghost", "project.milestone_delivered", {"job_id": "ghost", "milestone_id": "m1"}),
         "unknown_job"),
        (ev("r-state", "project.milestone_accepted", {"job_id": p, "milestone_id": "m3"}),
         "milestone_not_delivered"),
        (ev("bad-0001", "project.milestone_delivered", {"job_id": p, "milestone_id": "m1"}),
         "conflict"),
        (ev("r-over", "task.submission_received", {"job_id": t, "submission_id": "s2",
                                                   "worker_id": "worker-7"}),
         "quantity_exceeded"),
        (ev("r-dup-entry", "competition.entry_submitted", {"job_id": c, "entry_id": "e1",
                                                           "worker_id": "worker-6"}),
         "duplicate_item"),
        (ev("r-award", "competition.awarded", {"job_id": c, "awards": [
            {"entry_id": "e1", "amount": jpy("29999")}]}), "award_sum_mismatch"),
        (ev("r-cancel", "competition.cancelled", {"job_id": c, "reason": "changed mind"}),
         "competition_guaranteed"),
        (ev("r-exists", "task.opened", {"job_id": t, "client_id": "client-c",
                                        "fee_plan": "tiered", "unit_price": jpy("800"),
                                        "quantity": 1}), "job_exists"),
        (ev("r-plan", "task.opened", {"job_id": "bad-task3", "client_id": "client-c",
                                      "fee_plan": "platinum", "unit_price": jpy("800"),
                                      "quantity": 1}), "unknown_fee_plan"),
        (ev("r-withholding", "task.opened", {"job_id": "bad-task4", "client_id": "client-c",
                                             "fee_plan": "usd_standard", "withholding": True,
                                             "unit_price": {"amount": "8.00", "currency": "USD"},
                                             "quantity": 1}), "withholding_currency"),
        (ev("r-not-disputable", "dispute.opened", {"job_id": p, "item_id": "m1",
                                                   "opened_by": "client", "reason": "late"}),
         "item_not_disputable"),
        (ev("r-not-disputed", "dispute.resolved", {"job_id": p, "item_id": "m3",
                                                   "worker_amount": jpy("0"),
                                                   "client_amount": jpy("20000")}),
         "item_not_disputed"),
        (ev("r-contest-task", "task.closed", {"job_id": c}), "wrong_format"),
    ]


def test_bad_records_are_dead_lettered_or_rejected_and_good_ones_apply(
    owner_app: SettlementApplication, broker: str, topics: Topics, reference: Reference
) -> None:
    good, dead, rejected = good_events(), dead_letters(), rejected_events()
    assert len(dead) + len(rejected) >= 40
    stream: list[Outgoing] = []
    for n, event in enumerate(good):  # interleave: a dead letter after most good records
        stream.append(event)
        if n < len(dead):
            stream.append(("bad-project", dead[n][0]))
    stream += [("bad-project", value) for value, _ in dead[len(good):]]
    stream += [event for event, _ in rejected]
    publish(broker, topics, stream)

    stats = ingest(owner_app, broker, topics)
    assert stats.dead_lettered == len(dead) and stats.rejected == len(rejected)

    letters = [orjson.loads(r.value) for r in read_topic(broker, topics.jobs_dlq, len(dead))]
    got_dead = sorted((base64.b64decode(d["original"]), d["error"]["code"]) for d in letters)
    assert got_dead == sorted(dead)
    assert all(d["topic"] == topics.jobs and d["offset"] >= 0 for d in letters)

    notices = [orjson.loads(r.value) for r in read_topic(broker, topics.rejections, len(rejected))]
    assert all(n["type"] == "settlement.command_rejected" for n in notices)
    got_rejected = sorted((n["data"]["causation_id"], n["data"]["code"]) for n in notices)
    assert got_rejected == sorted((e["id"], code) for e, code in rejected)

    expected, count = reference(good)
    jobs = {e["data"]["job_id"] for e in good} | {"ghost", "bad-task3", "bad-task4"}
    assert digests(owner_app, jobs) == {**expected, "ghost": None, "bad-task3": None,
                                        "bad-task4": None}
    assert stored_event_count(owner_app) == count
