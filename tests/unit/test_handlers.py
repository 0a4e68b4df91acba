"""Marketplace events (SPEC §3 wire form, decimal-string money) through
`handlers.apply` to escrow commands, and the input rejections with their codes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
from moneyed import Money

from settlement.application import handlers
from settlement.core.commands import Command
from settlement.core.errors import InvalidInput, NotFound, Rejected, SettlementError
from settlement.core.fees import FeePlan
from settlement.core.money import money
from settlement.core.movements import Funding, Refund, Release
from settlement.escrow import Escrow
from settlement.escrow import events as ev

if TYPE_CHECKING:
    from conftest import Journal

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
JST = timezone(timedelta(hours=9))


def jpy(amount: int) -> Money:
    return money(Decimal(amount), "JPY", allow_zero=True)


def wire(amount: str, currency: str = "JPY") -> dict[str, str]:
    return {"amount": amount, "currency": currency}


class Feed:
    """Marketplace events for one job, numbered `mkt-1`, `mkt-2`, … an hour apart."""

    def __init__(self, plans: dict[str, FeePlan], journal: Journal, job_id: str = "job-42"):
        self.plans, self.journal, self.job_id = plans, journal, job_id
        self.escrow: Escrow | None = None
        self.sent = 0

    def send(self, type_: str, **data: Any) -> Any:
        """Apply one event; returns the single escrow event it caused."""
        self.sent += 1
        cmd = Command.create(f"mkt-{self.sent}", type_, T0 + timedelta(hours=self.sent),
                             {"job_id": self.job_id, **data})
        self.escrow = handlers.apply(self.escrow, cmd, self.plans)
        event = self.journal.one(self.escrow)
        assert (event.causation_id, event.timestamp) == (cmd.command_id, cmd.time)
        return event


CONTRACT = {
    "client_id": "c1", "worker_id": "w1", "fee_plan": "tiered",
    "milestones": [{"milestone_id": "m1", "amount": wire("110000"), "tax": wire("10000")},
                   {"milestone_id": "m2", "amount": wire("50000")}],
}
COMPETITION = {
    "client_id": "c1", "fee_plan": "tiered", "prize": wire("100000"), "guaranteed": False,
    "entry_deadline": "2026-12-03T10:00:00Z", "award_deadline": "2026-12-10T19:00:00+09:00",
}
TASK = {"client_id": "c1", "fee_plan": "tiered", "unit_price": wire("1000"), "quantity": 3}


# The marketplace types, end to end -----------------------------------------------


def test_project_events(plans: dict[str, FeePlan], journal: Journal) -> None:
    feed = Feed(plans, journal)
    contracted = feed.send("project.contracted", **CONTRACT, withholding=True,
                           inspection_days=7, terms={"scope": "site", "price": "110000"})
    escrow = feed.escrow
    assert isinstance(contracted, ev.ProjectContracted)
    assert (escrow.job_id, escrow.client_id, escrow.worker_id) == ("job-42", "c1", "w1")
    assert (escrow.withholding, escrow.inspection_days) == (True, 7)
    assert escrow.terms == {"scope": "site", "price": "110000"}
    assert [(i.item_id, i.amount, i.tax) for i in escrow.items.values()] == [
        ("m1", jpy(110_000), jpy(10_000)), ("m2", jpy(50_000), jpy(0))]

    added = feed.send("project.milestone_added", milestone_id="m3", amount=wire("22000"),
                      tax=wire("2000"))
    assert (added.milestone_id, added.amount, added.tax) == ("m3", jpy(22_000), jpy(2_000))

    funded = feed.send("project.milestone_funded", milestone_id="m1", amount=wire("110000"),
                       payment_ref="pay-9")
    assert funded.funding == Funding("m1", jpy(110_000), jpy(0), jpy(0), "pay-9")

    assert isinstance(feed.send("project.milestone_delivered", milestone_id="m1"),
                      ev.MilestoneDelivered)
    revision = feed.send("project.revision_requested", milestone_id="m1", reason="fix footer")
    assert (type(revision), revision.reason) == (ev.RevisionRequested, "fix footer")
    feed.send("project.milestone_delivered", milestone_id="m1")

    accepted = feed.send("project.milestone_accepted", milestone_id="m1")
    # fee 20 % × 100,000 + 10 % × 10,000 = 21,000, tax 2,100; withholding on
    # 110,000 − 10,000 tax = floor(100,000 × 0.1021) = 10,210; net 76,690.
    assert accepted.release == Release("m1", "w1", jpy(110_000), jpy(21_000), jpy(2_100),
                                       jpy(10_210), jpy(76_690))
    assert accepted.automatic is False

    cancelled = feed.send("project.milestone_cancelled", milestone_id="m2", reason="descoped")
    assert (cancelled.milestone_id, cancelled.reason, cancelled.refund) == (
        "m2", "descoped", None)
    assert [i.state for i in escrow.items.values()] == ["released", "cancelled", "contracted"]


def test_competition_events(plans: dict[str, FeePlan], journal: Journal) -> None:
    feed = Feed(plans, journal)
    opened = feed.send("competition.opened", **COMPETITION, min_entries=2, tax=wire("0"),
                       terms={"brief": "logo"})
    escrow = feed.escrow
    assert isinstance(opened, ev.CompetitionOpened)
    assert escrow.entry_deadline == datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
    # 19:00 in Japan is 10:00 UTC: the offset is kept, the instant is what counts.
    assert escrow.award_deadline == datetime(2026, 12, 10, 19, 0, tzinfo=JST)
    assert escrow.award_deadline == datetime(2026, 12, 10, 10, 0, tzinfo=UTC)
    assert (escrow.prize, escrow.guaranteed, escrow.min_entries) == (jpy(100_000), False, 2)

    feed.send("competition.funded", amount=wire("100000"), payment_ref="pay-1")
    entry = feed.send("competition.entry_submitted", entry_id="e1", worker_id="w1")
    assert (entry.entry_id, entry.worker_id) == ("e1", "w1")
    feed.send("competition.entry_submitted", entry_id="e2", worker_id="w2")

    awarded = feed.send("competition.awarded", awards=[
        {"entry_id": "e1", "amount": wire("60000")}, {"entry_id": "e2", "amount": wire("40000")}])
    # 20 % fee and 10 % tax on it: 60,000 → 12,000 + 1,200, net 46,800;
    # 40,000 → 8,000 + 800, net 31,200.
    assert awarded.releases == [
        Release("e1", "w1", jpy(60_000), jpy(12_000), jpy(1_200), jpy(0), jpy(46_800)),
        Release("e2", "w2", jpy(40_000), jpy(8_000), jpy(800), jpy(0), jpy(31_200)),
    ]


def test_competition_cancelled(plans: dict[str, FeePlan], journal: Journal) -> None:
    feed = Feed(plans, journal)
    feed.send("competition.opened", **COMPETITION)
    feed.send("competition.funded", amount=wire("100000"), payment_ref="pay-1")

    cancelled = feed.send("competition.cancelled", reason="project shelved")

    assert (cancelled.reason, cancelled.refund) == ("project shelved",
                                                    Refund("prize", jpy(100_000)))
    assert feed.escrow.state == "cancelled"


def test_task_events(plans: dict[str, FeePlan], journal: Journal) -> None:
    feed = Feed(plans, journal)
    opened = feed.send("task.opened", **TASK, approval_days=5, withholding=False)
    assert (type(opened), feed.escrow.approval_days) == (ev.TaskOpened, 5)

    funded = feed.send("task.funded", amount=wire("3000"), payment_ref="pay-1")
    assert funded.funding == Funding("capacity", jpy(3_000), jpy(0), jpy(0), "pay-1")
    for n in (1, 2, 3):
        feed.send("task.submission_received", submission_id=f"s{n}", worker_id=f"w{n}")

    approved = feed.send("task.submission_approved", submission_id="s1")
    # 20 % of 1,000 = 200, tax 20, net 780.
    assert approved.release == Release("s1", "w1", jpy(1_000), jpy(200), jpy(20), jpy(0),
                                       jpy(780))
    rejected = feed.send("task.submission_rejected", submission_id="s2", reason="blurry")
    assert (rejected.submission_id, rejected.reason, rejected.refund) == ("s2", "blurry", None)

    closed = feed.send("task.closed")
    # 3 slots − (s1 approved + s3 pending) = 1 free slot: 1,000 refunded.
    assert closed.refund == Refund("capacity", jpy(1_000))


def test_dispute_events(plans: dict[str, FeePlan], journal: Journal) -> None:
    feed = Feed(plans, journal)
    feed.send("project.contracted", **CONTRACT)
    feed.send("project.milestone_funded", milestone_id="m2", amount=wire("50000"),
              payment_ref="pay-1")

    opened = feed.send("dispute.opened", item_id="m2", opened_by="client", reason="no show")
    assert (opened.item_id, opened.opened_by, opened.reason) == ("m2", "client", "no show")

    # A zero side is allowed on the wire for a split (here: all back to the client).
    resolved = feed.send("dispute.resolved", item_id="m2", worker_amount=wire("0"),
                         client_amount=wire("50000"))
    assert (resolved.release, resolved.refund) == (None, Refund("m2", jpy(50_000)))


def test_optional_fields_take_their_defaults(plans: dict[str, FeePlan],
                                             journal: Journal) -> None:
    project = Feed(plans, journal, "job-p")
    project.send("project.contracted", **CONTRACT)
    competition = Feed(plans, journal, "job-c")
    competition.send("competition.opened", **COMPETITION)
    task = Feed(plans, journal, "job-t")
    task.send("task.opened", **TASK)

    assert (project.escrow.inspection_days, project.escrow.withholding,
            project.escrow.terms) == (14, False, None)
    assert (competition.escrow.min_entries, competition.escrow.prize_tax,
            competition.escrow.withholding) == (0, jpy(0), False)
    assert (task.escrow.approval_days, task.escrow.unit_tax) == (14, jpy(0))


# Rejections ----------------------------------------------------------------------


def apply(escrow: Escrow | None, type_: str, data: dict[str, Any], plans: dict[str, FeePlan],
          job_id: str = "job-42") -> Escrow:
    cmd = Command.create("mkt-99", type_, T0 + timedelta(days=1), {"job_id": job_id, **data})
    return handlers.apply(escrow, cmd, plans)


def refused(escrow: Escrow | None, type_: str, data: dict[str, Any],
            plans: dict[str, FeePlan], job_id: str = "job-42") -> SettlementError:
    with pytest.raises(SettlementError) as info:
        apply(escrow, type_, data, plans, job_id)
    if escrow is not None:
        assert escrow.collect_events() == []
    return info.value


@pytest.fixture
def project(plans: dict[str, FeePlan]) -> Escrow:
    escrow = apply(None, "project.contracted", CONTRACT, plans)
    escrow.collect_events()
    return escrow


@pytest.mark.parametrize(("type_", "data"), [
    ("project.contracted", CONTRACT),
    ("competition.opened", COMPETITION),
    ("task.opened", TASK),
])
def test_opening_an_existing_job_is_job_exists(plans: dict[str, FeePlan], project: Escrow,
                                               type_: str, data: dict[str, Any]) -> None:
    before = project.state_digest()
    error = refused(project, type_, data, plans)
    assert (type(error), error.code) == (Rejected, "job_exists")
    assert project.state_digest() == before


def test_a_command_for_a_missing_job_is_unknown_job(plans: dict[str, FeePlan]) -> None:
    error = refused(None, "project.milestone_funded",
                    {"milestone_id": "m1", "amount": wire("110000"), "payment_ref": "p"}, plans)
    # NotFound is a kind of Rejected: it goes to the rejections topic.
    assert (type(error), error.code) == (NotFound, "unknown_job")
    assert isinstance(error, Rejected)


@pytest.mark.parametrize("type_", ["project.exploded", "payment.captured", "", "task"])
def test_an_unknown_type_is_unknown_type(plans: dict[str, FeePlan], project: Escrow,
                                         type_: str) -> None:
    assert refused(project, type_, {}, plans).code == "unknown_type"
    assert refused(None, type_, {}, plans).code == "unknown_type"


@pytest.mark.parametrize(("type_", "data"), [
    ("project.contracted", CONTRACT),
    ("competition.opened", COMPETITION),
    ("task.opened", TASK),
])
def test_an_unknown_fee_plan_is_unknown_fee_plan(plans: dict[str, FeePlan], type_: str,
                                                 data: dict[str, Any]) -> None:
    assert refused(None, type_, {**data, "fee_plan": "platinum"}, plans).code == (
        "unknown_fee_plan")


@pytest.mark.parametrize("job_id", ["", "job 42", "job/42", "ジョブ", "j" * 129, "job-42\n",
                                    42, None])
def test_a_bad_job_id_is_invalid_identifier(plans: dict[str, FeePlan], job_id: Any) -> None:
    error = refused(None, "project.contracted", CONTRACT, plans, job_id=job_id)
    assert (type(error), error.code) == (InvalidInput, "invalid_identifier")


def test_identifiers_of_128_allowed_chars_are_accepted(plans: dict[str, FeePlan],
                                                       journal: Journal) -> None:
    job_id = "Az09._:-" * 16  # 128 chars, every allowed kind
    escrow = apply(None, "project.contracted", CONTRACT, plans, job_id=job_id)
    journal.take(escrow)
    assert escrow.job_id == job_id


@pytest.mark.parametrize(("type_", "data"), [
    ("project.contracted", {**CONTRACT, "client_id": "c 1"}),
    ("project.contracted", {**CONTRACT, "worker_id": ""}),
    ("project.contracted", {**CONTRACT, "milestones": [{"milestone_id": "m#1",
                                                        "amount": wire("1000")}]}),
    ("project.milestone_funded", {"milestone_id": "m1", "amount": wire("110000"),
                                  "payment_ref": "pay 9"}),
    ("project.milestone_accepted", {"milestone_id": 1}),
    ("dispute.opened", {"item_id": "m1\n", "opened_by": "client", "reason": "x"}),
])
def test_bad_identifiers_are_invalid_identifier(plans: dict[str, FeePlan], project: Escrow,
                                                type_: str, data: dict[str, Any]) -> None:
    escrow = None if type_ == "project.contracted" else project
    assert refused(escrow, type_, data, plans, job_id="job-new" if escrow is None else "job-42"
                   ).code == "invalid_identifier"


def test_a_bad_command_id_is_invalid_identifier() -> None:
    with pytest.raises(InvalidInput) as info:
        Command.create("mkt 1", "task.closed", T0, {"job_id": "job-42"})
    assert info.value.code == "invalid_identifier"


def test_a_command_time_without_timezone_is_time_format() -> None:
    with pytest.raises(InvalidInput) as info:
        Command.create("mkt-1", "task.closed", datetime(2026, 11, 26, 10), {"job_id": "j"})
    assert info.value.code == "time_format"


# Every required field of SPEC §3, one missing at a time.
VALID: dict[str, dict[str, Any]] = {
    "project.contracted": CONTRACT,
    "project.milestone_added": {"milestone_id": "m3", "amount": wire("1000")},
    "project.milestone_funded": {"milestone_id": "m1", "amount": wire("110000"),
                                 "payment_ref": "pay-1"},
    "project.milestone_delivered": {"milestone_id": "m1"},
    "project.revision_requested": {"milestone_id": "m1", "reason": "x"},
    "project.milestone_accepted": {"milestone_id": "m1"},
    "project.milestone_cancelled": {"milestone_id": "m1", "reason": "x"},
    "competition.opened": COMPETITION,
    "competition.funded": {"amount": wire("100000"), "payment_ref": "pay-1"},
    "competition.entry_submitted": {"entry_id": "e1", "worker_id": "w1"},
    "competition.awarded": {"awards": [{"entry_id": "e1", "amount": wire("100000")}]},
    "competition.cancelled": {"reason": "x"},
    "task.opened": TASK,
    "task.funded": {"amount": wire("3000"), "payment_ref": "pay-1"},
    "task.submission_received": {"submission_id": "s1", "worker_id": "w1"},
    "task.submission_approved": {"submission_id": "s1"},
    "task.submission_rejected": {"submission_id": "s1", "reason": "x"},
    "dispute.opened": {"item_id": "m1", "opened_by": "client", "reason": "x"},
    "dispute.resolved": {"item_id": "m1", "worker_amount": wire("0"),
                         "client_amount": wire("110000")},
}
MISSING = [(type_, name) for type_, data in VALID.items() for name in data]


@pytest.mark.parametrize(("type_", "name"), MISSING)
def test_a_missing_field_is_missing_field(plans: dict[str, FeePlan], project: Escrow,
                                          type_: str, name: str) -> None:
    data = {k: v for k, v in VALID[type_].items() if k != name}
    opening = type_ in handlers.OPENERS
    error = refused(None if opening else project, type_, data, plans,
                    job_id="job-new" if opening else "job-42")
    assert (type(error), error.code) == (InvalidInput, "missing_field"), error


@pytest.mark.parametrize(("type_", "data"), [
    ("project.contracted", {**CONTRACT, "milestones": [{"amount": wire("1000")}]}),
    ("project.contracted", {**CONTRACT, "milestones": [{"milestone_id": "m1"}]}),
    ("competition.awarded", {"awards": [{"amount": wire("100000")}]}),
    ("competition.awarded", {"awards": [{"entry_id": "e1"}]}),
])
def test_a_missing_field_inside_a_list_is_missing_field(
        plans: dict[str, FeePlan], project: Escrow, type_: str, data: dict[str, Any]) -> None:
    escrow = None if type_ in handlers.OPENERS else project
    error = refused(escrow, type_, data, plans, job_id="job-new" if escrow is None else "job-42")
    assert error.code == "missing_field"


def test_no_job_id_is_invalid_identifier(plans: dict[str, FeePlan]) -> None:
    cmd = Command.create("mkt-1", "task.opened", T0, TASK)
    with pytest.raises(InvalidInput) as info:
        handlers.apply(None, cmd, plans)
    assert info.value.code == "invalid_identifier"


@pytest.mark.parametrize("type_", ["project.contracted", "competition.opened", "task.opened"])
def test_terms_over_16_kib_are_terms_too_large(plans: dict[str, FeePlan], type_: str) -> None:
    data = {**VALID[type_], "terms": {"text": "x" * (16 * 1024)}}
    assert refused(None, type_, data, plans).code == "terms_too_large"


def test_terms_are_measured_in_utf8_bytes(plans: dict[str, FeePlan], journal: Journal) -> None:
    # 5,000 × "あ" is 15,000 bytes: under the limit.
    escrow = apply(None, "project.contracted", {**CONTRACT, "terms": {"t": "あ" * 5_000}}, plans)
    journal.take(escrow)
    assert escrow.terms == {"t": "あ" * 5_000}
    # 5,500 × "あ" is 5,500 characters but 16,500 bytes: over 16,384.
    data = {**CONTRACT, "terms": {"t": "あ" * 5_500}}
    assert refused(None, "project.contracted", data, plans, job_id="job-2").code == (
        "terms_too_large")


@pytest.mark.parametrize(("type_", "changes"), [
    ("project.contracted", {"inspection_days": 0}),
    ("project.contracted", {"inspection_days": 91}),
    ("project.contracted", {"inspection_days": "14"}),
    ("project.contracted", {"inspection_days": True}),
    ("project.contracted", {"withholding": "yes"}),
    ("project.contracted", {"terms": "see attachment"}),
    ("project.contracted", {"milestones": {"milestone_id": "m1"}}),
    ("project.contracted", {"milestones": [5]}),
    ("project.contracted", {"milestones": ["m1"]}),
    ("competition.opened", {"guaranteed": "true"}),
    ("competition.opened", {"min_entries": -1}),
    ("task.opened", {"quantity": 0}),
    ("task.opened", {"quantity": 100_001}),
    ("task.opened", {"approval_days": 91}),
])
def test_bad_field_values_are_invalid_field(plans: dict[str, FeePlan], type_: str,
                                            changes: dict[str, Any]) -> None:
    error = refused(None, type_, {**VALID[type_], **changes}, plans)
    assert (type(error), error.code) == (InvalidInput, "invalid_field"), error


@pytest.mark.parametrize(("type_", "data"), [
    ("competition.awarded", {"awards": {"e1": wire("100000")}}),
    ("competition.awarded", {"awards": [["e1", wire("100000")]]}),
    ("project.revision_requested", {"milestone_id": "m1", "reason": 42}),
    ("project.revision_requested", {"milestone_id": "m1", "reason": "x" * 2_001}),
])
def test_bad_command_field_values_are_invalid_field(plans: dict[str, FeePlan],
                                                    project: Escrow, type_: str,
                                                    data: dict[str, Any]) -> None:
    error = refused(project, type_, data, plans)
    assert (type(error), error.code) == (InvalidInput, "invalid_field"), error


@pytest.mark.parametrize("deadline", ["next friday", "2026-12-03T10:00:00", "", 1764756000])
def test_bad_deadlines_are_time_format(plans: dict[str, FeePlan], deadline: Any) -> None:
    data = {**COMPETITION, "entry_deadline": deadline}
    assert refused(None, "competition.opened", data, plans).code == "time_format"


@pytest.mark.parametrize(("amount", "code"), [
    ({"amount": 110000, "currency": "JPY"}, "amount_not_string"),
    ({"amount": 110000.0, "currency": "JPY"}, "amount_float"),
    (wire("110000.5"), "amount_too_precise"),
    (wire("0"), "amount_not_positive"),
    (wire("-110000"), "amount_not_positive"),
    (wire("1.1e5"), "amount_format"),
    (wire("110000\n"), "amount_format"),
    (wire(" 110000"), "amount_format"),
    (wire("NaN"), "amount_nan"),
    (wire("1000000000001"), "amount_too_large"),
    (wire("110000", "XYZ"), "currency_unknown"),
    ("110000 JPY", "money_format"),
])
def test_wire_money_is_a_positive_decimal_string(plans: dict[str, FeePlan], project: Escrow,
                                                 amount: Any, code: str) -> None:
    data = {"milestone_id": "m1", "amount": amount, "payment_ref": "pay-1"}
    error = refused(project, "project.milestone_funded", data, plans)
    assert (isinstance(error, InvalidInput), error.code) == (True, code)


def test_business_rules_still_apply_after_parsing(plans: dict[str, FeePlan],
                                                  project: Escrow) -> None:
    data = {"milestone_id": "m1", "amount": wire("110000", "USD"), "payment_ref": "pay-1"}
    assert refused(project, "project.milestone_funded", data, plans).code == (
        "currency_mismatch")
    data = {"item_id": "m1", "worker_amount": wire("-1"), "client_amount": wire("110001")}
    assert refused(project, "dispute.resolved", data, plans).code == "amount_not_positive"
    data = {"item_id": "m1", "opened_by": "platform", "reason": "x"}
    assert refused(project, "dispute.opened", data, plans).code == "invalid_party"
