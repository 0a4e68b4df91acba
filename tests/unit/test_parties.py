"""Parties (SPEC §10): the record's checks as a table of input → code, the
aggregate's history, holds, and what leaves the service (the number masked)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from settlement.core.errors import SettlementError
from settlement.parties import Party, party_stream_id
from settlement.parties.events import PartyUpdated, TransferReturned
from settlement.parties.holds import hold_reason
from settlement.relay.cloudevents import to_cloud_event
from settlement.service.scenario import bank_account

AT = datetime(2026, 11, 25, 9, tzinfo=UTC)
ACCOUNT = bank_account("1234567", "ヤマダ タロウ")
WORKER: dict[str, Any] = {"party_id": "worker-1", "kind": "individual", "name": "山田 太郎",
                          "name_kana": "ヤマダ タロウ", "bank_account": ACCOUNT,
                          "kyc_verified": True}


def register(**changes: Any) -> Party:
    data = {**WORKER, **changes}
    return Party.register(data["party_id"], data, causation_id="mkt-1", at=AT)


def test_registration_keeps_the_record_and_a_deterministic_stream() -> None:
    party = register(invoice_registration_number="T7000012050002", kind="corporation")
    assert party.id == party_stream_id("worker-1")
    record = party.record
    assert (record.kind, record.kyc_verified, record.transfer_fee_bearer) == (
        "corporation", True, "platform")
    assert record.bank_account is not None and record.bank_account.masked() == "****567"
    assert "1234567" not in repr(record) and "山田" not in repr(record)


REFUSALS: list[tuple[str, dict[str, Any], str]] = [
    ("party id", {"party_id": "worker 1"}, "invalid_identifier"),
    ("kind", {"kind": "company"}, "party_kind_unknown"),
    ("blank name", {"name": "  "}, "invalid_field"),
    ("kana with kanji", {"name_kana": "山田"}, "name_kana_format"),
    ("kana emoji", {"name_kana": "ヤマダ😀"}, "name_kana_format"),
    ("address", {"address": 5}, "invalid_field"),
    ("registration form", {"invoice_registration_number": "T123"},
     "invalid_registration_number"),
    ("full-width digits", {"invoice_registration_number": "T７０００012050002"},
     "invalid_registration_number"),
    ("check digit", {"kind": "corporation", "invoice_registration_number": "T1000012050002"},
     "registration_check_digit"),
    ("bank code", {"bank_account": {**ACCOUNT, "bank_code": "12a4"}}, "bank_code_format"),
    ("branch code", {"bank_account": {**ACCOUNT, "branch_code": "01"}}, "branch_code_format"),
    ("account type", {"bank_account": {**ACCOUNT, "account_type": "checking"}},
     "account_type_unknown"),
    ("account number", {"bank_account": {**ACCOUNT, "account_number": "123456"}},
     "account_number_format"),
    ("holder blank", {"bank_account": {**ACCOUNT, "holder_kana": " "}}, "holder_kana_format"),
    ("bank name kana", {"bank_account": {**ACCOUNT, "bank_name_kana": "三菱"}},
     "bank_name_kana_format"),
    ("kyc", {"kyc_verified": "yes"}, "invalid_field"),
    ("fee bearer", {"transfer_fee_bearer": "client"}, "transfer_fee_bearer_unknown"),
]


@pytest.mark.parametrize(("field", "changes", "code"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_a_bad_registration_is_refused_with_its_code(field: str, changes: dict[str, Any],
                                                     code: str) -> None:
    with pytest.raises(SettlementError) as refused:
        register(**changes)
    assert refused.value.code == code
    assert "1234567" not in str(refused.value) and "山田" not in str(refused.value)


@pytest.mark.parametrize(("field", "changes", "code"),
                         [r for r in REFUSALS if r[1].keys() != {"party_id"}],
                         ids=[r[0] for r in REFUSALS if r[1].keys() != {"party_id"}])
def test_a_bad_update_is_refused_and_changes_nothing(field: str, changes: dict[str, Any],
                                                     code: str) -> None:
    party = register()
    before, version = party.record, party.version
    with pytest.raises(SettlementError) as refused:
        party.update(changes, causation_id="mkt-2", at=AT)
    assert refused.value.code == code
    assert party.record == before and party.version == version
    assert len(party.collect_events()) == 1  # the registration only


def test_an_update_rechecks_the_kept_number_against_a_new_kind() -> None:
    party = register(invoice_registration_number="T1000012050002")  # an individual's form
    with pytest.raises(SettlementError) as refused:
        party.update({"kind": "corporation"}, causation_id="mkt-2", at=AT)
    assert refused.value.code == "registration_check_digit"


def test_a_holder_without_a_zengin_name_is_accepted_and_held() -> None:
    party = register(bank_account={**ACCOUNT, "holder_kana": "山田 太郎"})
    assert hold_reason(party.record, "JPY") == "name_not_representable"
    assert hold_reason(party.record, "USD") is None


def test_holds_in_their_documented_order() -> None:
    assert hold_reason(None, "JPY") == "kyc_missing"
    assert hold_reason(register(kyc_verified=False).record, "JPY") == "kyc_missing"
    no_account = {k: v for k, v in WORKER.items() if k != "bank_account"}
    party = Party.register("worker-1", no_account, causation_id="m", at=AT)
    assert hold_reason(party.record, "JPY") == "bank_account_missing"
    party = register()
    assert hold_reason(party.record, "JPY") is None
    party.transfer_returned("po-1", causation_id="res-1", at=AT)
    assert hold_reason(party.record, "JPY") == "bank_account_returned"
    party.update({"kyc_verified": True}, causation_id="mkt-2", at=AT)
    assert hold_reason(party.record, "JPY") == "bank_account_returned"  # still no new account
    party.update({"bank_account": {**ACCOUNT, "account_number": "7654321"}},
                 causation_id="mkt-3", at=AT)
    assert hold_reason(party.record, "JPY") is None
    assert [type(e) for e in party.collect_events()[1:]] == [
        TransferReturned, PartyUpdated, PartyUpdated]


def test_an_update_records_the_fields_it_carried_and_the_whole_record() -> None:
    party = register()
    party.update({"address": "大阪府", "transfer_fee_bearer": "payee"}, causation_id="m-2",
                 at=AT)
    event = party.collect_events()[-1]
    assert isinstance(event, PartyUpdated)
    assert event.changed == ["address", "transfer_fee_bearer"]
    assert event.record.address == "大阪府" and event.record.kind == "individual"
    party.update({"address": None}, causation_id="m-3", at=AT)
    assert party.record.address is None
    with pytest.raises(SettlementError) as refused:
        party.update({}, causation_id="m-4", at=AT)
    assert refused.value.code == "party_update_empty"


def test_party_events_leave_the_service_with_the_account_number_masked() -> None:
    party = register()
    cloud = to_cloud_event(7, party.collect_events()[0])
    assert cloud["type"] == "settlement.party_registered"
    assert cloud["subject"] == "worker-1" and cloud["data"]["party_id"] == "worker-1"
    account = cloud["data"]["record"]["bank_account"]
    assert account["account_number"] == "****567" and account["bank_code"] == "0005"
    assert "1234567" not in str(cloud)
