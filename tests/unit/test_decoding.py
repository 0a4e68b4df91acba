"""Decoding marketplace records (SPEC §3): every good event decodes, every bad record
is refused with the code of the first check it fails, in the documented order."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from settlement.core.commands import Command, amount
from settlement.core.errors import InvalidMoney
from settlement.ingest.decoding import (
    RECORD_BYTES_MAX,
    TERMS_DEPTH_MAX,
    BadRecord,
    CloudEvent,
    decode,
    schemas_dir,
    to_command,
)
from settlement.service.scenario import cloud_event, marketplace_day

START = datetime(2026, 11, 26, 9, tzinfo=UTC)
JPY = {"amount": "11000", "currency": "JPY"}
DECODES_PER_S_MIN = 20_000


def funded(**data: Any) -> dict[str, Any]:
    fields = {"job_id": "job-42", "milestone_id": "m1", "amount": JPY, "payment_ref": "pay-9"}
    return cloud_event("mkt-000123", "project.milestone_funded", START, {**fields, **data})


def envelope(**fields: Any) -> dict[str, Any]:
    return {**funded(), **fields}


def without(event: dict[str, Any], name: str) -> dict[str, Any]:
    return {key: value for key, value in event.items() if key != name}


def raw(event: Any) -> bytes:
    return json.dumps(event, ensure_ascii=False).encode()


def amount_of(value: Any) -> bytes:
    return raw(funded(amount={**JPY, "amount": value}))


def fails(value: bytes | None, kind: str = "jobs") -> BadRecord:
    with pytest.raises(BadRecord) as refused:
        decode(value, kind)  # type: ignore[arg-type]  # the table holds plain str kinds
    return refused.value


GOOD = raw(funded())
DEEPEST_TERMS: dict[str, Any] = {"a": [{"b": 1}]}  # three levels: {}, [], {}
for _ in range(TERMS_DEPTH_MAX - 3):
    DEEPEST_TERMS = {"n": DEEPEST_TERMS}

# (label, record value, topic kind, code): one row per way a record can be bad.
CORPUS: list[tuple[str, bytes | None, str, str]] = [
    ("oversize", b" " * (RECORD_BYTES_MAX + 1), "jobs", "record_too_large"),
    ("oversize valid event", GOOD + b" " * (RECORD_BYTES_MAX + 1 - len(GOOD)), "jobs",
     "record_too_large"),
    ("oversize invalid utf-8", b"\xff" * (RECORD_BYTES_MAX + 1), "jobs", "record_too_large"),
    ("no value (tombstone)", None, "jobs", "empty_record"),
    ("empty value", b"", "jobs", "empty_record"),
    ("invalid utf-8 bytes", b"\xff\xfe{}", "jobs", "invalid_utf8"),
    ("invalid utf-8 in a string", GOOD.replace(b"pay-9", b"pay-\xc3\x28"), "jobs", "invalid_utf8"),
    ("overlong utf-8", GOOD.replace(b"pay-9", b"pay-\xc0\xaf"), "jobs", "invalid_utf8"),
    ("utf-8 encoded surrogate", GOOD.replace(b"pay-9", b"pay-\xed\xa0\x80"), "jobs",
     "invalid_utf8"),
    ("truncated", GOOD[:-1], "jobs", "invalid_json"),
    ("not json", b"hello", "jobs", "invalid_json"),
    ("trailing garbage", GOOD + b"garbage", "jobs", "invalid_json"),
    ("two documents", GOOD + GOOD, "jobs", "invalid_json"),
    ("single quotes", b"{'id': 'x'}", "jobs", "invalid_json"),
    ("trailing comma", GOOD[:-1] + b",}", "jobs", "invalid_json"),
    ("byte order mark", b"\xef\xbb\xbf" + GOOD, "jobs", "invalid_json"),
    ("raw control character", GOOD.replace(b"pay-9", b"pay\n9"), "jobs", "invalid_json"),
    ("nested too deeply", b"[" * 100_000 + b"]" * 100_000, "jobs", "invalid_json"),
    ("duplicate key, top level", GOOD[:-1] + b', "id": "other"}', "jobs", "duplicate_key"),
    ("duplicate key in data",
     GOOD.replace(b'"job_id": "job-42"', b'"job_id": "job-42", "job_id": "job-43"'),
     "jobs", "duplicate_key"),
    ("duplicate key in money",
     GOOD.replace(b'"currency": "JPY"', b'"currency": "JPY", "amount": "1"'),
     "jobs", "duplicate_key"),
    ("NaN amount", GOOD.replace(b'"11000"', b"NaN"), "jobs", "invalid_number"),
    ("Infinity amount", GOOD.replace(b'"11000"', b"Infinity"), "jobs", "invalid_number"),
    ("-Infinity amount", GOOD.replace(b'"11000"', b"-Infinity"), "jobs", "invalid_number"),
    ("integer too long to read", GOOD.replace(b'"11000"', b"9" * 5000), "jobs", "invalid_number"),
    ("array, not object", b"[1, 2]", "jobs", "schema_invalid"),
    ("string, not object", b'"event"', "jobs", "schema_invalid"),
    ("wrong specversion", raw(envelope(specversion="0.3")), "jobs", "schema_invalid"),
    ("specversion as number", raw(envelope(specversion=1.0)), "jobs", "schema_invalid"),
    ("missing id", raw(without(funded(), "id")), "jobs", "schema_invalid"),
    ("missing source", raw(without(funded(), "source")), "jobs", "schema_invalid"),
    ("missing time", raw(without(funded(), "time")), "jobs", "schema_invalid"),
    ("missing type", raw(without(funded(), "type")), "jobs", "schema_invalid"),
    ("missing data", raw(without(funded(), "data")), "jobs", "schema_invalid"),
    ("id with spaces", raw(envelope(id="mkt 123")), "jobs", "schema_invalid"),
    ("id of 129 chars", raw(envelope(id="i" * 129)), "jobs", "schema_invalid"),
    ("id with a trailing newline", raw(envelope(id="mkt-1\n")), "jobs", "schema_invalid"),
    ("empty id", raw(envelope(id="")), "jobs", "schema_invalid"),
    ("time without offset", raw(envelope(time="2026-11-26T10:00:00")), "jobs", "schema_invalid"),
    ("time as date", raw(envelope(time="2026-11-26")), "jobs", "schema_invalid"),
    ("time as epoch", raw(envelope(time=1795770000)), "jobs", "schema_invalid"),
    ("time on February 30", raw(envelope(time="2026-02-30T10:00:00Z")), "jobs", "schema_invalid"),
    ("extra envelope field", raw(envelope(traceparent="00-ab")), "jobs", "schema_invalid"),
    ("other content type", raw(envelope(datacontenttype="text/plain")), "jobs", "schema_invalid"),
    ("subject with spaces", raw(envelope(subject="job 42")), "jobs", "schema_invalid"),
    ("data not an object", raw(envelope(data=["job-42"])), "jobs", "schema_invalid"),
    ("data as text", raw(envelope(data="job-42")), "jobs", "schema_invalid"),
    ("empty type", raw(envelope(type="")), "jobs", "schema_invalid"),
    ("unknown type", raw(envelope(type="project.exploded")), "jobs", "unknown_type"),
    ("output type as input", raw(envelope(type="settlement.milestone_released")), "jobs",
     "unknown_type"),
    ("payout type on jobs topic", raw(cloud_event("p-1", "payout.settled", START,
                                                  {"payout_id": "po-1", "bank_ref": "b-1"})),
     "jobs", "unknown_type"),
    ("job type on payouts topic", GOOD, "payouts", "unknown_type"),
    ("float amount 11000.5", amount_of(11000.5), "jobs", "schema_invalid"),
    ("integer amount 11000", amount_of(11000), "jobs", "schema_invalid"),
    ("exponent string 1e3", amount_of("1e3"), "jobs", "schema_invalid"),
    ("negative -5", amount_of("-5"), "jobs", "schema_invalid"),
    ("zero amount", amount_of("0"), "jobs", "schema_invalid"),
    ("amount with spaces", amount_of(" 11000"), "jobs", "schema_invalid"),
    ("amount with a plus sign", amount_of("+11000"), "jobs", "schema_invalid"),
    ("money without currency", raw(funded(amount={"amount": "11000"})), "jobs", "schema_invalid"),
    ("money as text", raw(funded(amount="11000 JPY")), "jobs", "schema_invalid"),
    ("missing payment_ref", raw(envelope(data=without(funded()["data"], "payment_ref"))), "jobs",
     "schema_invalid"),
    ("extra unknown data field", raw(funded(note="rush")), "jobs", "schema_invalid"),
    ("job_id with slash", raw(funded(job_id="job/42")), "jobs", "schema_invalid"),
    ("terms nested too deeply", raw(cloud_event("t-1", "task.opened", START, {
        "job_id": "t", "client_id": "c", "fee_plan": "flat", "unit_price": JPY, "quantity": 1,
        "terms": {"n": DEEPEST_TERMS}})), "jobs", "schema_invalid"),
    ("lone surrogate in a reason", raw(cloud_event("r-1", "task.submission_rejected", START, {
        "job_id": "t", "submission_id": "s1", "reason": "blurry"})).replace(b"blurry", b"\\ud800"),
     "jobs", "invalid_utf8"),
    ("NUL in a reason", raw(cloud_event("r-1", "task.submission_rejected", START, {
        "job_id": "t", "submission_id": "s1", "reason": "blurry"})).replace(
            b"blurry", b"blu\\u0000rry"), "jobs", "schema_invalid"),
    ("NUL in a key of the terms", raw(cloud_event("t-1", "task.opened", START, {
        "job_id": "t", "client_id": "c", "fee_plan": "flat", "unit_price": JPY, "quantity": 1,
        "terms": {"scope": ["logo", {"note": 1}]}})).replace(b'"note"', b'"no\\u0000te"'),
     "jobs", "schema_invalid"),
]


@pytest.mark.parametrize(("label", "value", "kind", "code"), CORPUS, ids=[row[0] for row in CORPUS])
def test_bad_record_is_refused_with_its_code(
    label: str, value: bytes | None, kind: str, code: str
) -> None:
    refused = fails(value, kind)
    assert refused.code == code, f"{label}: {refused}"
    assert refused.message and len(refused.message) <= 501


def test_corpus_is_large_and_covers_every_code() -> None:
    assert len(CORPUS) >= 30
    assert {row[3] for row in CORPUS} == {
        "record_too_large", "empty_record", "invalid_utf8", "invalid_json", "duplicate_key",
        "invalid_number", "schema_invalid", "unknown_type",
    }


def test_every_scenario_event_decodes() -> None:
    events = marketplace_day(START, "dec")
    for sent in events:
        event = decode(raw(sent), "jobs")
        assert (event.id, event.type, event.source, event.subject) == (
            sent["id"], sent["type"], sent["source"], sent["subject"])
        assert event.time == datetime.fromisoformat(sent["time"])
        assert event.time.utcoffset() == timedelta(0)
        assert event.data == sent["data"]


@pytest.mark.parametrize(("type_", "data"), [
    ("payout.settled", {"payout_id": "po-1", "bank_ref": "zengin:0001-77"}),
    ("payout.failed", {"payout_id": "po-2", "reason": "account closed"}),
])
def test_payout_results_decode_on_the_payouts_topic(type_: str, data: dict[str, Any]) -> None:
    event = decode(raw(cloud_event("pr-1", type_, START, data)), "payouts")
    assert (event.type, event.data) == (type_, data)


def test_to_command_carries_id_type_time_and_data() -> None:
    event = decode(GOOD, "jobs")
    command = to_command(event)
    assert isinstance(command, Command)
    assert (command.command_id, command.type, command.time, command.data) == (
        "mkt-000123", "project.milestone_funded", START, event.data)
    assert command.digest == to_command(decode(GOOD, "jobs")).digest
    assert command.digest != to_command(decode(raw(funded(payment_ref="pay-10")), "jobs")).digest


def test_decoded_event_is_frozen() -> None:
    event = decode(GOOD, "jobs")
    assert isinstance(event, CloudEvent)
    with pytest.raises(AttributeError):
        event.id = "other"  # type: ignore[misc]


def test_numbers_never_become_binary_floats() -> None:
    terms = {"rate": 1.5, "pages": 12, "tiny": 1e-7}
    event = decode(raw(cloud_event("t-2", "task.opened", START, {
        "job_id": "t", "client_id": "c", "fee_plan": "flat", "unit_price": JPY, "quantity": 2,
        "terms": terms})), "jobs")
    assert event.data["terms"] == {"rate": Decimal("1.5"), "pages": 12, "tiny": Decimal("1E-7")}
    assert type(event.data["terms"]["rate"]) is Decimal
    assert type(event.data["quantity"]) is int


def test_optional_fields_stay_absent_and_null_subject_is_absent() -> None:
    event = decode(raw(envelope(subject=None)), "jobs")
    assert event.subject is None
    opened = decode(raw(cloud_event("t-3", "task.opened", START, {
        "job_id": "t", "client_id": "c", "fee_plan": "flat", "unit_price": JPY, "quantity": 2})),
        "jobs")
    assert "withholding" not in opened.data and "approval_days" not in opened.data


def test_time_keeps_its_offset() -> None:
    event = decode(raw(envelope(time="2026-11-26T19:00:00.25+09:00")), "jobs")
    assert event.time == START + timedelta(hours=1, milliseconds=250)
    assert event.time.utcoffset() == timedelta(hours=9)


def test_unicode_text_and_escaped_pairs_are_fine() -> None:
    reason = "画像がぼやけています 😀"
    rejected = cloud_event("r-2", "task.submission_rejected", START,
                           {"job_id": "t", "submission_id": "s1", "reason": reason})
    assert decode(raw(rejected), "jobs").data["reason"] == reason
    escaped = json.dumps(rejected, ensure_ascii=True).encode()
    assert b"\\ud83d\\ude00" in escaped
    assert decode(escaped, "jobs").data["reason"] == reason


def test_a_nul_is_refused_where_it_is_and_an_escaped_backslash_is_not_one() -> None:
    # PostgreSQL text and jsonb cannot hold U+0000: stored, such an event would stop
    # every projection at its position.
    rejected = raw(cloud_event("r-3", "task.submission_rejected", START, {
        "job_id": "t", "submission_id": "s1", "reason": "blurry"}))
    refused = fails(rejected.replace(b"blurry", b"\\u0000"))
    assert (refused.code, refused.message) == (
        "schema_invalid", "$.data.reason: holds U+0000, which cannot be stored")
    # A backslash, then the text u0000: six characters, no NUL.
    kept = decode(rejected.replace(b"blurry", b"\\\\u0000"), "jobs")
    assert kept.data["reason"] == "\\u0000"


def test_too_many_decimals_is_left_to_the_domain() -> None:
    event = decode(raw(funded(amount={**JPY, "amount": "11000.5"})), "jobs")
    with pytest.raises(InvalidMoney) as refused:
        amount(to_command(event).data, "amount")
    assert refused.value.code == "amount_too_precise"


def test_largest_record_is_accepted() -> None:
    padded = GOOD + b" " * (RECORD_BYTES_MAX - len(GOOD))
    assert len(padded) == RECORD_BYTES_MAX
    assert decode(padded, "jobs").id == "mkt-000123"


def test_terms_at_the_depth_limit_are_accepted() -> None:
    terms = DEEPEST_TERMS
    event = decode(raw(cloud_event("t-4", "task.opened", START, {
        "job_id": "t", "client_id": "c", "fee_plan": "flat", "unit_price": JPY, "quantity": 1,
        "terms": terms})), "jobs")
    assert event.data["terms"] == terms


@pytest.mark.parametrize(("label", "value", "code"), [
    ("oversize beats empty-looking content", b"\x00" * (RECORD_BYTES_MAX + 1), "record_too_large"),
    ("invalid json beats a duplicate key", GOOD[:-1] + b', "id": "x"} trailing', "invalid_json"),
    ("invalid json beats NaN", GOOD.replace(b'"11000"', b"NaN") + b"]", "invalid_json"),
    ("a later duplicate beats an earlier NaN",
     GOOD.replace(b'"11000"', b"NaN")[:-1] + b', "id": "x"}', "duplicate_key"),
    ("envelope beats unknown type", raw(envelope(type="nope", specversion="2.0")),
     "schema_invalid"),
    ("schema beats a lone surrogate", raw(funded(job_id="x y")).replace(b"pay-9", b"\\udc00"),
     "schema_invalid"),
])
def test_checks_run_in_the_documented_order(label: str, value: bytes, code: str) -> None:
    assert fails(value).code == code, label


def test_an_envelope_error_is_reported_before_a_data_error() -> None:
    # `data` is validated first inside the combined validator; the envelope must still win.
    refused = fails(raw(funded(amount=11000) | {"extra": 1}))
    assert refused.code == "schema_invalid"
    assert refused.message.startswith("$:"), refused.message


@pytest.mark.parametrize(("event", "path"), [
    (funded(amount={**JPY, "amount": 11000.5}), "$.data.amount.amount: must be string"),
    (funded(amount={**JPY, "amount": "1e3"}), "$.data.amount.amount: must match pattern"),
    (envelope(time="2026-11-26T10:00:00"), "$.time: must match pattern"),
    (envelope(data=without(funded()["data"], "payment_ref")),
     "$.data: must contain ['payment_ref']"),
    (cloud_event("p-1", "project.contracted", START, {
        "job_id": "p", "client_id": "c", "worker_id": "w", "fee_plan": "tiered",
        "milestones": [{"milestone_id": "m1", "amount": JPY},
                       {"milestone_id": "m2", "amount": {**JPY, "amount": "-1"}}]}),
     "$.data.milestones[1].amount.amount: must match pattern"),
    (funded(note="x"), "$.data: must not contain {'note'} properties"),
])
def test_schema_messages_name_the_json_path_and_reason(event: dict[str, Any], path: str) -> None:
    refused = fails(raw(event))
    assert refused.code == "schema_invalid"
    assert refused.message.startswith(path), refused.message


def test_duplicate_key_message_names_the_key() -> None:
    assert "'milestone_id'" in fails(GOOD.replace(b'"m1"', b'"m1", "milestone_id": "m2"')).message


def test_schemas_dir_can_be_overridden(tmp_path: Path) -> None:
    for path in schemas_dir().glob("*.json"):
        (tmp_path / path.name).write_bytes(path.read_bytes())
    schema = json.loads((tmp_path / "task.closed.json").read_text())
    schema["properties"]["closed_by"] = {"type": "string"}
    (tmp_path / "task.closed.json").write_text(json.dumps(schema))
    event = raw(cloud_event("c-1", "task.closed", START, {"job_id": "t", "closed_by": "client"}))
    probe = (
        "import sys; from settlement.ingest.decoding import decode, BadRecord\n"
        "try: decode(sys.stdin.buffer.read(), 'jobs'); print('accepted')\n"
        "except BadRecord as e: print(e.code)\n"
    )

    def run(env: dict[str, str]) -> str:
        done = subprocess.run([sys.executable, "-c", probe], input=event, capture_output=True,
                              env=env, check=True, timeout=60)
        return done.stdout.decode().strip()

    base = {key: value for key, value in os.environ.items() if key != "SETTLEMENT_SCHEMAS_DIR"}
    assert run(base) == "schema_invalid"
    assert run({**base, "SETTLEMENT_SCHEMAS_DIR": str(tmp_path)}) == "accepted"


def test_decoding_is_fast() -> None:
    # A regression guard with a wide margin (~60,000/s measured on one core): falling
    # below it means something slow, such as interpreted schema validation, crept in.
    # Timed in this process's CPU time: other processes busy on the cores (the suite
    # runs in several workers) do not make decoding slower.
    value = raw(funded())
    rounds = 20_000
    best = 0.0
    for _ in range(3):
        started = time.process_time()
        for _ in range(rounds):
            decode(value, "jobs")
        best = max(best, rounds / (time.process_time() - started))
    assert best > DECODES_PER_S_MIN, f"{best:,.0f} decodes/s"
