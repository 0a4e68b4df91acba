"""The low-price guard end to end (issue 18, point 5): a contract or an added
milestone below its plan's floor, read from the real broker, lands on
`settlement.rejections` with `amount_below_minimum` and changes nothing; and
`/v1/reports/low-price` lists, from the projections, exactly the items computed
by hand to lie between the floor and 10 % above it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from fastapi.testclient import TestClient

from settlement.api.app import ApiConfig, create_app
from settlement.application.app import APPLIED, REJECTED, SettlementApplication
from settlement.core.fees import FeePlan, load_fee_plans
from settlement.infra.bootstrap import owner_env
from settlement.infra.postgres import create_database, drop_database, pg_env
from settlement.infra.topics import Topics
from settlement.service.scenario import cloud_event
from support.api import FINANCE_TOKEN, TOKENS, project_all
from support.ingest import commands_of, digests, ingest, publish, read_topic, stored_event_count

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

START = datetime(2026, 11, 26, 9, tzinfo=UTC)
FINANCE = {"Authorization": f"Bearer {FINANCE_TOKEN}"}
# The shipped plans with floors (tiered ¥3,000, flat ¥5,000, usd_standard $25.50),
# and a plan without.
PLANS = Path(__file__).resolve().parents[1] / "fixtures" / "fee_plans_floored.toml"


def jpy(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": "JPY"}


def usd(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": "USD"}


def event(n: int, type_: str, data: dict[str, Any]) -> dict[str, Any]:
    return cloud_event(f"lp-{n:03d}", type_, START + timedelta(minutes=n), data)


def contract(job_id: str, plan: str, *milestones: dict[str, str]) -> dict[str, Any]:
    return {"job_id": job_id, "client_id": f"client-{job_id}", "worker_id": f"worker-{job_id}",
            "fee_plan": plan, "milestones": [{"milestone_id": f"m{n}", "amount": amount}
                                             for n, amount in enumerate(milestones, 1)]}


@pytest.fixture(scope="module")
def plans() -> dict[str, FeePlan]:
    return load_fee_plans(PLANS)


def test_a_contract_or_milestone_below_the_floor_is_rejected_and_changes_nothing(
        database_url: str, broker: str, topics: Topics, plans: dict[str, FeePlan]) -> None:
    good = [event(1, "project.contracted", contract("g-project", "tiered", jpy("3000"))),
            event(2, "project.milestone_added", {"job_id": "g-project", "milestone_id": "m2",
                                                 "amount": jpy("3000")})]
    refused = [
        event(3, "project.contracted", contract("g-low", "tiered", jpy("9000"), jpy("2999"))),
        event(4, "project.milestone_added", {"job_id": "g-project", "milestone_id": "m3",
                                             "amount": jpy("2999")}),
        event(5, "task.opened", {"job_id": "g-task", "client_id": "client-t",
                                 "fee_plan": "flat", "unit_price": jpy("4999"), "quantity": 2}),
    ]
    app = SettlementApplication({**pg_env(database_url), **owner_env()}, plans=plans)
    try:
        publish(broker, topics, good + refused)
        stats = ingest(app, broker, topics, group="low-1")

        assert (stats.rejected, stats.dead_lettered) == (len(refused), 0)
        notices = [orjson.loads(r.value) for r in read_topic(broker, topics.rejections, 3)]
        assert sorted((n["data"]["causation_id"], n["data"]["code"], n["data"]["job_id"])
                      for n in notices) == [("lp-003", "amount_below_minimum", "g-low"),
                                            ("lp-004", "amount_below_minimum", "g-project"),
                                            ("lp-005", "amount_below_minimum", "g-task")]
        assert all(n["type"] == "settlement.command_rejected" for n in notices)
        messages = {n["data"]["causation_id"]: n["data"]["message"] for n in notices}
        assert messages == {
            "lp-003": "milestone m2: 2999 JPY is below the minimum item amount 3000 JPY "
                      "of fee plan tiered",
            "lp-004": "milestone m3: 2999 JPY is below the minimum item amount 3000 JPY "
                      "of fee plan tiered",
            "lp-005": "unit price: 4999 JPY is below the minimum item amount 5000 JPY "
                      "of fee plan flat"}
        # Nothing changed: no new escrow, the existing one as the good records left
        # it, and no event stored but the good records' two.
        assert digests(app, ["g-low", "g-task"]) == {"g-low": None, "g-task": None}
        assert stored_event_count(app) == 2
        escrow = app.escrow("g-project")
        assert escrow is not None and escrow.version == 2
        assert sorted(escrow.items) == ["m1", "m2"]
    finally:
        app.close()


def marketplace() -> list[dict[str, Any]]:
    """Jobs under each plan with items at, inside, at the edge of and outside the
    10 % band above the floor (tiered 3,000 → up to 3,300; flat 5,000 → 5,500;
    usd_standard 25.50 → 28.05), and a job whose plan has no floor."""
    contest = {"job_id": "lp-contest", "client_id": "client-c", "fee_plan": "tiered",
               "prize": jpy("6000"), "guaranteed": True,
               "entry_deadline": "2026-12-01T00:00:00Z", "award_deadline": "2026-12-08T00:00:00Z"}
    return [
        event(1, "project.contracted", contract("lp-project", "tiered", jpy("3000"), jpy("3300"),
                                                jpy("3301"), jpy("50000"))),
        event(2, "project.milestone_added", {"job_id": "lp-project", "milestone_id": "m5",
                                             "amount": jpy("3150")}),
        event(3, "project.contracted", contract("lp-flat", "flat", jpy("5500"), jpy("5501"))),
        event(4, "project.contracted", contract("lp-usd", "usd_standard", usd("28.05"),
                                                usd("30.00"))),
        event(5, "project.contracted", contract("lp-open", "open", jpy("1000"))),
        event(6, "task.opened", {"job_id": "lp-task", "client_id": "client-t",
                                 "fee_plan": "tiered", "unit_price": jpy("3200"), "quantity": 2}),
        event(7, "task.funded", {"job_id": "lp-task", "amount": jpy("6400"),
                                 "payment_ref": "pay-t"}),
        event(8, "task.submission_received", {"job_id": "lp-task", "submission_id": "s1",
                                              "worker_id": "worker-s"}),
        event(9, "competition.opened", contest),
        event(10, "competition.funded", {"job_id": "lp-contest", "amount": jpy("6000"),
                                         "payment_ref": "pay-c"}),
        event(11, "competition.entry_submitted", {"job_id": "lp-contest", "entry_id": "e1",
                                                  "worker_id": "worker-e1"}),
        event(12, "competition.entry_submitted", {"job_id": "lp-contest", "entry_id": "e2",
                                                  "worker_id": "worker-e2"}),
        # Awards only divide the prize: one below the floor is not refused (docs/domain.md).
        event(13, "competition.awarded", {"job_id": "lp-contest", "awards": [
            {"entry_id": "e1", "amount": jpy("3100")}, {"entry_id": "e2", "amount": jpy("2900")}]}),
        event(14, "project.contracted", contract("lp-low", "tiered", jpy("2999"))),  # refused
    ]


@pytest.fixture(scope="module")
def client(pg_server: str, plans: dict[str, FeePlan]) -> Iterator[TestClient]:
    url = create_database(pg_server, "api_low_price")
    app = SettlementApplication(pg_env(url), plans=plans)
    try:
        outcomes = app.handle_batch(commands_of(marketplace()))
        assert [o.status for o in outcomes] == [APPLIED] * 13 + [REJECTED]
        with psycopg.connect(url, autocommit=True) as conn:
            project_all(app, conn)
    finally:
        app.close()
    api = create_app(ApiConfig(url, TOKENS))
    with TestClient(api) as test_client:
        yield test_client
    api.state.close()
    drop_database(pg_server, "api_low_price")


def row(job_id: str, item_id: str, kind: str, state: str, client_id: str, worker_id: str,
        amount: str, plan: str, floor: str, currency: str = "JPY") -> dict[str, Any]:
    return {"job_id": job_id, "item_id": item_id, "kind": kind, "state": state,
            "client_id": client_id, "worker_id": worker_id, "currency": currency,
            "amount": amount, "plan": plan, "floor": floor}


# By hand: floor ≤ amount ≤ floor × 1.10 under the plan each job recorded.
EXPECTED = [
    row("lp-contest", "e1", "entry", "released", "client-c", "worker-e1", "3100", "tiered",
        "3000"),  # e2's 2,900 is below the floor, outside the band
    row("lp-flat", "m1", "milestone", "contracted", "client-lp-flat", "worker-lp-flat", "5500",
        "flat", "5000"),  # exactly 10 % above; m2's 5,501 is not
    row("lp-project", "m1", "milestone", "contracted", "client-lp-project",
        "worker-lp-project", "3000", "tiered", "3000"),  # at the floor
    row("lp-project", "m2", "milestone", "contracted", "client-lp-project",
        "worker-lp-project", "3300", "tiered", "3000"),  # m3 3,301 and m4 50,000 are not
    row("lp-project", "m5", "milestone", "contracted", "client-lp-project",
        "worker-lp-project", "3150", "tiered", "3000"),  # added later
    row("lp-task", "s1", "submission", "pending", "client-t", "worker-s", "3200", "tiered",
        "3000"),
    row("lp-usd", "m1", "milestone", "contracted", "client-lp-usd", "worker-lp-usd", "28.05",
        "usd_standard", "25.50", "USD"),  # 25.50 × 1.10; m2's 30.00 is not
]


def test_the_report_lists_the_items_within_ten_percent_above_their_floor(
        client: TestClient) -> None:
    response = client.get("/v1/reports/low-price", headers=FINANCE)
    assert response.status_code == 200, response.text
    assert response.json() == {"margin": "0.10", "rows": EXPECTED}
    assert "X-Next-After" not in response.headers


def test_the_report_pages_filters_and_answers_csv(client: TestClient) -> None:
    first = client.get("/v1/reports/low-price", params={"limit": 3}, headers=FINANCE)
    assert first.json()["rows"] == EXPECTED[:3]
    assert first.headers["X-Next-After"] == "lp-project/m1"
    rest = client.get("/v1/reports/low-price", headers=FINANCE,
                      params={"limit": 10, "after": first.headers["X-Next-After"]})
    assert rest.json()["rows"] == EXPECTED[3:]

    by_plan = client.get("/v1/reports/low-price", params={"plan": "flat"}, headers=FINANCE)
    assert by_plan.json()["rows"] == [EXPECTED[1]]
    in_usd = client.get("/v1/reports/low-price", params={"currency": "USD"}, headers=FINANCE)
    assert in_usd.json()["rows"] == [EXPECTED[-1]]

    csv = client.get("/v1/reports/low-price", params={"plan": "usd_standard"},
                     headers={**FINANCE, "Accept": "text/csv"})
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text == ("job_id,item_id,kind,state,client_id,worker_id,currency,amount,plan,"
                        "floor\nlp-usd,m1,milestone,contracted,client-lp-usd,worker-lp-usd,USD,"
                        "28.05,usd_standard,25.50\n")


def test_the_report_needs_a_token(client: TestClient) -> None:
    assert client.get("/v1/reports/low-price").status_code == 401
