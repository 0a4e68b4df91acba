"""The schema files are the published contract (SPEC §3): valid draft 2020-12, one
per input type, strict objects, and read the same way by the service's compiled
validators (fastjsonschema) and by the reference implementation (jsonschema)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from referencing import Registry, Resource

from settlement.ingest.decoding import (
    INPUT_TYPES,
    SCHEMA_BASE_URI,
    BadRecord,
    decode,
    schemas_dir,
    topic_kind_of,
)
from settlement.service.scenario import (
    bank_account,
    cloud_event,
    marketplace_day,
    marketplace_parties,
)

SCHEMAS = schemas_dir()
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
START = datetime(2026, 11, 26, 9, tzinfo=UTC)

# The table of SPEC §3, spelled out: a schema file missing here is a broken contract.
SPEC_TYPES = {
    "project.contracted", "project.milestone_added", "project.milestone_funded",
    "project.milestone_delivered", "project.revision_requested", "project.milestone_accepted",
    "project.milestone_cancelled", "competition.opened", "competition.funded",
    "competition.entry_submitted", "competition.awarded", "competition.cancelled",
    "task.opened", "task.funded", "task.submission_received", "task.submission_approved",
    "task.submission_rejected", "task.closed", "dispute.opened", "dispute.resolved",
    "payout.settled", "payout.failed", "payout.returned", "party.registered", "party.updated",
}
OTHER_FILES = {"defs.json", "cloudevent.json", "settlement.command_rejected.json", "dlq.json",
               "settlement.withholding_remitted.json",
               "settlement.withholding_remittance_confirmed.json",
               "settlement.withholding_remittance_failed.json"}
# Settlement events with a schema of their own (SPEC §13).
OTHER_FILES |= {"settlement.statement_imported.json", "settlement.statement_line_decided.json",
                "settlement.bank_fee_booked.json"}
OTHER_FILES |= {"settlement.invoice_issued.json"}  # SPEC §12
# Keywords that only annotate: fastjsonschema ignores every sibling of a `$ref`, so
# nothing else may stand beside one.
ANNOTATIONS = {"description", "title", "$comment", "examples", "default"}


def load(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SCHEMAS / name).read_text("utf-8"))
    return schema


def schema_files() -> list[Path]:
    return sorted(SCHEMAS.glob("*.json"))


def nodes(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from nodes(value)


REGISTRY: Registry = Registry().with_resources(
    (load(path.name)["$id"], Resource.from_contents(load(path.name))) for path in schema_files()
)


def reference(name: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": SCHEMA_BASE_URI + name}, registry=REGISTRY)


def reference_accepts(event: dict[str, Any]) -> bool:
    """Whether jsonschema finds the event valid: its envelope and its type's data."""
    if not reference("cloudevent.json").is_valid(event):
        return False
    return reference(f"{event['type']}.json").is_valid(event["data"])


def service_accepts(event: dict[str, Any]) -> bool:
    try:
        decode(json.dumps(event).encode(), topic_kind_of(event["type"]))
    except BadRecord as refused:
        assert refused.code == "schema_invalid", refused
        return False
    return True


def scenario() -> list[dict[str, Any]]:
    return marketplace_parties(START, "sch") + marketplace_day(START, "sch")


def samples() -> dict[str, dict[str, Any]]:
    """One valid event of every SPEC §3 type: the scenario's, and the types it lacks."""
    jpy = {"amount": "5000", "currency": "JPY"}
    extra = [
        cloud_event("x-1", "project.milestone_added", START,
                    {"job_id": "j", "milestone_id": "m3", "amount": jpy}),
        cloud_event("x-2", "project.milestone_cancelled", START,
                    {"job_id": "j", "milestone_id": "m3", "reason": "changed plans"}),
        cloud_event("x-3", "competition.cancelled", START, {"job_id": "c", "reason": "no time"}),
        cloud_event("x-4", "payout.settled", START,
                    {"payout_id": "po-1", "bank_ref": "zengin:77"}),
        cloud_event("x-5", "payout.failed", START,
                    {"payout_id": "po-2", "reason": "closed account"}),
        cloud_event("x-6", "payout.returned", START,
                    {"payout_id": "po-3", "reason": "振込不能: account closed"}),
        cloud_event("x-7", "party.updated", START,
                    {"party_id": "worker-5", "kyc_verified": True, "address": None,
                     "bank_account": bank_account("3000005", "ﾀｶﾊｼ ｼﾞﾛｳ")}),
    ]
    return {event["type"]: event for event in scenario() + extra}


def test_every_file_is_a_draft_2020_12_schema_with_its_own_id() -> None:
    for path in schema_files():
        schema = load(path.name)
        Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == DRAFT_2020_12, path.name
        assert schema["$id"] == SCHEMA_BASE_URI + path.name, path.name


def test_every_spec_type_has_a_schema_and_no_other_file_exists() -> None:
    names = {path.name for path in schema_files()}
    assert names == {f"{type_}.json" for type_ in SPEC_TYPES} | OTHER_FILES
    assert INPUT_TYPES == SPEC_TYPES
    assert set(samples()) == SPEC_TYPES


def test_every_object_refuses_unknown_properties() -> None:
    for path in schema_files():
        for node in nodes(load(path.name)):
            if "properties" in node and "allOf" not in node:
                assert node.get("additionalProperties") is False, (path.name, sorted(node))


def test_nothing_but_annotations_beside_a_ref() -> None:
    for path in schema_files():
        for node in nodes(load(path.name)):
            if "$ref" in node:
                assert set(node) - {"$ref"} <= ANNOTATIONS, (path.name, node)


def test_readme_lists_every_schema_file() -> None:
    readme = (SCHEMAS / "README.md").read_text("utf-8")
    for path in schema_files():
        assert f"`{path.name}`" in readme, path.name


def test_every_sample_is_valid_for_both_implementations() -> None:
    for event in samples().values():
        assert reference_accepts(event), event["type"]
        assert service_accepts(event), event["type"]


def mutations() -> Iterator[tuple[str, dict[str, Any], bool]]:
    """(label, event, valid): edits at the edge of the contract, good and bad."""
    base = samples()

    def edit(type_: str, change: Any) -> dict[str, Any]:
        event = copy.deepcopy(base[type_])
        change(event)
        return event

    def data(type_: str, **fields: Any) -> dict[str, Any]:
        return edit(type_, lambda event: event["data"].update(fields))

    money = {"amount": "11000", "currency": "JPY"}

    def amount(value: Any) -> dict[str, Any]:
        return data("task.funded", amount={**money, "amount": value})

    def at(time: str) -> dict[str, Any]:
        return edit("task.closed", lambda event: event.update(time=time))
    yield "float amount", amount(11000.5), False
    yield "integer amount", amount(11000), False
    yield "exponent", amount("1e3"), False
    yield "negative", amount("-5"), False
    yield "zero funding", amount("0"), False
    yield "zero with decimals", amount("0.00"), False
    yield "leading zero", amount("011000"), False
    yield "four decimals", amount("1.2345"), False
    yield "14 digits", amount("12345678901234"), False
    yield "trailing dot", amount("11000."), False
    yield "lower-case currency", data("task.funded", amount={**money, "currency": "jpy"}), False
    yield "extra money field", data("task.funded", amount={**money, "scale": 0}), False
    yield "decimals beyond JPY (a domain matter)", amount("1.123"), True
    yield "smallest positive", amount("0.001"), True
    yield "zero then a digit", amount("0.010"), True
    yield "13 digits (a domain matter)", amount("9999999999999"), True
    yield "zero split", data("dispute.resolved", worker_amount={**money, "amount": "0"}), True
    yield "zero tax", data("project.milestone_added", tax={**money, "amount": "0"}), True
    yield "opened by admin", data("dispute.opened", opened_by="admin"), False
    yield "quantity 0", data("task.opened", quantity=0), False
    yield "quantity 100000", data("task.opened", quantity=100_000), True
    yield "quantity 100001", data("task.opened", quantity=100_001), False
    yield "quantity as text", data("task.opened", quantity="10"), False
    yield "quantity true", data("task.opened", quantity=True), False
    yield "inspection 90", data("project.contracted", inspection_days=90), True
    yield "inspection 91", data("project.contracted", inspection_days=91), False
    yield "withholding as text", data("project.contracted", withholding="yes"), False
    yield "no milestones", data("project.contracted", milestones=[]), False
    yield "101 milestones", data("project.contracted", milestones=[
        {"milestone_id": f"m{n}", "amount": money} for n in range(101)]), False
    yield "reason of 2000", data("task.submission_rejected", reason="x" * 2000), True
    yield "reason of 2001", data("task.submission_rejected", reason="x" * 2001), False
    yield "terms as text", data("task.opened", terms="see attachment"), False
    yield "unknown data field", data("task.closed", note="bye"), False
    yield "id with space", edit("task.closed", lambda e: e.update(id="a b")), False
    yield "id of 128", edit("task.closed", lambda e: e.update(id="i" * 128)), True
    yield "id of 129", edit("task.closed", lambda e: e.update(id="i" * 129)), False
    yield "time without offset", at("2026-11-26T10:00:00"), False
    yield "time with offset", at("2026-11-26T19:00:00+09:00"), True
    yield "time in microseconds", at("2026-11-26T10:00:00.123456Z"), True
    yield "time with a space", at("2026-11-26 10:00:00Z"), False
    yield "null subject", edit("task.closed", lambda e: e.update(subject=None)), True
    yield "no subject", edit("task.closed", lambda e: e.pop("subject")), True
    yield "specversion 0.3", edit("task.closed", lambda e: e.update(specversion="0.3")), False
    yield "extension attribute", edit("task.closed", lambda e: e.update(traceparent="00-1")), False
    yield "data as list", edit("task.closed", lambda e: e.update(data=[])), False


@pytest.mark.parametrize(("label", "event", "valid"), list(mutations()), ids=lambda v: str(v)[:40])
def test_both_implementations_agree(label: str, event: dict[str, Any], valid: bool) -> None:
    assert service_accepts(event) is valid, label
    assert reference_accepts(event) is valid, label


@pytest.mark.parametrize("type_", sorted(SPEC_TYPES))
def test_every_required_field_is_required(type_: str) -> None:
    for field in load(f"{type_}.json")["required"]:
        event = copy.deepcopy(samples()[type_])
        del event["data"][field]
        assert not reference_accepts(event), field
        assert not service_accepts(event), field


def rejection(**data: Any) -> dict[str, Any]:
    base = {"causation_id": "mkt-1", "code": "unknown_job", "message": "unknown job j-9",
            "topic": "marketplace.job-events", "partition": 3, "offset": 41}
    return cloud_event("rej-1", "settlement.command_rejected", START, {**base, **data})


def test_rejection_event_schema() -> None:
    validator = reference("settlement.command_rejected.json")
    assert validator.is_valid(rejection())
    assert validator.is_valid(rejection(job_id="j-9"))
    assert not validator.is_valid(rejection(offset=-1))
    assert not validator.is_valid(rejection(code="Unknown Job"))
    assert not validator.is_valid(rejection(extra=True))
    assert not validator.is_valid({**rejection(), "type": "settlement.milestone_released"})
    incomplete = rejection()
    del incomplete["data"]["causation_id"]
    assert not validator.is_valid(incomplete)


def test_dead_letter_schema() -> None:
    validator = reference("dlq.json")
    record = {"original": "eyJ4Ijox", "topic": "marketplace.job-events", "partition": 0,
              "offset": 7, "error": {"code": "invalid_json", "message": "Expecting value"},
              "received_at": "2026-11-26T10:00:00.123456+00:00"}
    assert validator.is_valid(record)
    assert validator.is_valid({**record, "original": None})
    assert validator.is_valid({**record, "original": ""})
    assert not validator.is_valid({**record, "original": "not base64!"})
    assert not validator.is_valid({**record, "error": {"code": "invalid_json"}})
    assert not validator.is_valid({**record, "received_at": "2026-11-26 10:00"})
    assert not validator.is_valid({key: value for key, value in record.items() if key != "offset"})
