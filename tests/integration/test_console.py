"""The finance console over real projections (a rich marketplace day, through the
ASGI app): every figure equal to the API's, CSV downloads equal to the API's CSV,
pages walking every row, overdue claims first; sign-in, sessions, roles, CSRF and
cross-site requests; hostile names shown as text; languages; headers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from settlement.api.app import ApiConfig, create_app
from settlement.console.app import create_console
from settlement.console.guard import SESSION_COOKIE
from settlement.console.sessions import SessionStore
from support.api import (
    AUDITOR_TOKEN,
    FINANCE_TOKEN,
    START,
    TOKENS,
    Populated,
    populated_database,
)
from support.console import (
    HOSTILE_CLIENT,
    HOSTILE_JOB,
    HOSTILE_PARTY,
    NOW,
    add_hostile_names,
    api_overview,
    csrf_of,
    figures,
    sign_in,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

FINANCE = {"Authorization": f"Bearer {FINANCE_TOKEN}"}
AUDITOR = {"Authorization": f"Bearer {AUDITOR_TOKEN}"}
SAME_SITE = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}


@pytest.fixture(scope="module")
def populated(pg_server: str) -> Iterator[Populated]:
    with populated_database(pg_server) as db:
        add_hostile_names(db.url)
        yield db


@pytest.fixture(scope="module")
def app(populated: Populated) -> Iterator[Any]:
    api = create_app(ApiConfig(populated.url, TOKENS, now=lambda: NOW))
    yield api
    api.state.close()


def client_as(app: Any, token: str | None) -> TestClient:
    client = TestClient(app)
    if token:
        assert sign_in(client, token).status_code == 303
    return client


@pytest.fixture(scope="module")
def finance(app: Any) -> TestClient:
    return client_as(app, FINANCE_TOKEN)


@pytest.fixture(scope="module")
def auditor(app: Any) -> TestClient:
    return client_as(app, AUDITOR_TOKEN)


def page(client: TestClient, path: str, **params: Any) -> str:
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    return response.text


def api_csv(client: TestClient, path: str, **params: Any) -> tuple[str, str | None]:
    response = client.get(path, params=params, headers={**FINANCE, "Accept": "text/csv"})
    assert response.status_code == 200, response.text
    return response.text, response.headers.get("x-next-after")


def late_rows(html: str) -> list[tuple[str, str]]:
    """(job, item) of each row of the overdue table."""
    table = html.split('id="late"')[1].split("</table>")[0]
    return re.findall(r'<td><a[^>]*>([^<]+)</a></td><td>([^<]+)</td>', table)


def next_link(html: str, param: str = "after") -> str | None:
    """`param` of the first next-page link in `html` (one table's pager)."""
    found = re.search(r'<a rel="next" href="([^"]+)"', html)
    query = parse_qs(urlsplit(found.group(1).replace("&amp;", "&")).query) if found else {}
    return query[param][0] if param in query else None


# Signing in, sessions and roles ---------------------------------------------------

def test_pages_send_a_reader_without_a_session_to_the_sign_in_form(app: Any) -> None:
    client = TestClient(app)
    for path in ("/console/", "/console/trial-balance.csv", "/console/audit/events"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/console/sign-in?next=%2Fconsole%2F")
        assert "ended" not in response.headers["location"]  # it never had a session
    # htmx follows redirects itself: it is told to load the form instead.
    htmx = client.get("/console/", headers={"HX-Request": "true"}, follow_redirects=False)
    assert htmx.status_code == 401 and htmx.headers["HX-Redirect"].startswith("/console/sign-in")
    assert client.get("/console", follow_redirects=False).headers["location"].endswith(
        "/console/")


def test_sign_in_sets_a_strict_http_only_expiring_cookie_and_shows_no_token(
        app: Any, capsys: pytest.CaptureFixture[str]) -> None:
    client = TestClient(app)
    response = sign_in(client, FINANCE_TOKEN)
    assert response.status_code == 303 and response.headers["location"] == "/console/"
    cookie = next(c for c in response.headers.get_list("set-cookie")
                  if c.startswith(f"{SESSION_COOKIE}="))
    assert {"HttpOnly", "SameSite=strict", "Path=/console", "Max-Age=28800"} <= set(
        part.strip() for part in cookie.split(";"))
    assert "Secure" not in cookie  # plain HTTP here; over TLS it is Secure (below)
    html = page(client, "/console/")
    assert FINANCE_TOKEN not in html and FINANCE_TOKEN not in cookie
    out = capsys.readouterr()
    assert FINANCE_TOKEN not in out.out + out.err
    assert "console.signed_in" in out.out + out.err
    tls = TestClient(app, base_url="https://testserver")
    cookie = sign_in(tls, FINANCE_TOKEN, "https://testserver").headers["set-cookie"]
    assert "Secure" in cookie


def test_a_wrong_token_is_refused_and_not_echoed(app: Any) -> None:
    client = TestClient(app)
    response = sign_in(client, "not-a-token-<b>")
    assert response.status_code == 401
    assert "not-a-token" not in response.text and "token_refused" not in response.text
    assert 'id="refused"' in response.text
    assert f"{SESSION_COOKIE}=" not in response.headers.get("set-cookie", "")


def test_posts_without_the_csrf_token_or_from_another_site_are_refused(app: Any) -> None:
    client = TestClient(app)
    csrf = csrf_of(client.get("/console/sign-in").text)
    good = {"csrf": csrf, "token": FINANCE_TOKEN}
    cases = [
        ({"token": FINANCE_TOKEN}, SAME_SITE),  # no CSRF token
        ({"csrf": "x" * 43, "token": FINANCE_TOKEN}, SAME_SITE),  # another one
        (good, {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}),
        (good, {"Origin": "https://evil.example"}),
        (good, {"Sec-Fetch-Site": "same-site"}),
        (good, {"Origin": "null"}),
    ]
    for data, headers in cases:
        response = client.post("/console/sign-in", data=data, headers=headers,
                               follow_redirects=False)
        assert response.status_code == 403, (data, headers)
        assert f"{SESSION_COOKIE}=" not in response.headers.get("set-cookie", "")
    as_json = client.post("/console/sign-in", json=good, headers=SAME_SITE)
    assert as_json.status_code == 403
    assert client.post("/console/sign-in", data=good, headers=SAME_SITE,
                       follow_redirects=False).status_code == 303


def test_forged_expired_idle_and_revoked_sessions_are_refused(populated: Populated) -> None:
    clock = [1_000_000.0]
    tokens = dict(TOKENS)
    config = ApiConfig(populated.url, tokens, now=lambda: NOW)
    api = create_app(config)
    sessions = SessionStore(clock=lambda: clock[0], lifetime_seconds=600, idle_seconds=300)
    app = FastAPI()
    app.mount("/console", create_console(config, api.state.database, api.state.verifier,
                                         sessions))

    def status() -> int:
        return client.get("/console/", follow_redirects=False).status_code

    try:
        client = TestClient(app)
        forged = TestClient(app, cookies={SESSION_COOKIE: "forged-" + "A" * 36})
        assert forged.get("/console/", follow_redirects=False).status_code == 303
        assert sign_in(client, FINANCE_TOKEN).status_code == 303
        assert status() == 200
        clock[0] += 299  # used within the idle time: still signed in
        assert status() == 200
        clock[0] += 300  # idle too long
        ended = client.get("/console/", follow_redirects=False)
        assert ended.status_code == 303 and "ended=1" in ended.headers["location"]
        assert sign_in(client, FINANCE_TOKEN).status_code == 303
        assert [(clock.__setitem__(0, clock[0] + 200), status())[1] for _ in range(3)] == [
            200, 200, 303]  # busy, but past the lifetime at the third step
        assert sign_in(client, FINANCE_TOKEN).status_code == 303
        del tokens[FINANCE_TOKEN]  # the token revoked: its sessions end at once
        assert status() == 303
    finally:
        api.state.close()


def test_sign_out_needs_the_csrf_token_and_ends_the_session(app: Any) -> None:
    client = client_as(app, FINANCE_TOKEN)
    session_id = client.cookies[SESSION_COOKIE]
    html = page(client, "/console/")
    refused = client.post("/console/sign-out", data={}, headers=SAME_SITE)
    assert refused.status_code == 403
    assert client.get("/console/", follow_redirects=False).status_code == 200
    out = client.post("/console/sign-out", data={"csrf": csrf_of(html)}, headers=SAME_SITE,
                      follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/console/sign-in?signed_out=1"
    assert f'{SESSION_COOKIE}=""' in out.headers["set-cookie"]
    replayed = TestClient(app, cookies={SESSION_COOKIE: session_id})
    assert replayed.get("/console/", follow_redirects=False).status_code == 303


def test_finance_gets_the_403_page_on_audit_pages(finance: TestClient,
                                                   auditor: TestClient) -> None:
    for path in ("/console/audit/events", "/console/audit/events.csv", "/console/audit/verify",
                 "/console/audit/replay"):
        refused = finance.get(path)
        assert refused.status_code == 403 and 'id="error"' in refused.text
        assert ">Audit log</a>" not in refused.text  # nor in finance's menu
        assert auditor.get(path).status_code == 200
    assert finance.post("/console/audit/verify", data={}, headers=SAME_SITE).status_code == 403


# Every figure is the API's ---------------------------------------------------------

@pytest.mark.parametrize("currency", ["JPY", "USD"])
def test_overview_shows_the_api_figures(finance: TestClient, currency: str) -> None:
    shown = figures(page(finance, "/console/", currency=currency))
    expected = api_overview(finance, currency, FINANCE)
    assert {key: shown[key] for key in expected} == expected
    assert int(expected["overdue-count"]) > 0  # NOW is past the day's deadlines


def test_overview_formats_amounts_and_colours_the_coverage(finance: TestClient) -> None:
    html = page(finance, "/console/", currency="JPY")
    assert '<data value="368125">¥368,125</data>' in html
    assert 'class="coverage ok"' in html and "114.9510 %" in html
    usd = page(finance, "/console/", currency="USD")
    assert '<data value="158.02">$158.02</data>' in usd
    assert "2027-02-15" in html  # the closing that covers NOW (2027-02-04 in Japan)


def test_the_chart_ends_with_the_api_coverage(finance: TestClient) -> None:
    html = page(finance, "/console/", currency="JPY")
    rows = re.findall(r'<tr><th scope="row"><time datetime="([0-9-]+)">.*?</tr>', html, re.S)
    assert len(rows) == 90 and rows[-1] == "2027-02-04"
    last = re.findall(r"<tr><th scope=\"row\">.*?</tr>", html, re.S)[-1]
    assert re.findall(r'<data value="([0-9.]+)"', last)[:2] == ["368125", "320245"]
    assert "114.9510 %" in last
    assert "<title id=\"chart-title\">" in html and "<desc id=\"chart-desc\">" in html


def test_trial_balance_pages_walk_every_account_and_download_as_the_api(
        finance: TestClient) -> None:
    seen: list[str] = []
    after: str | None = None
    while True:
        params = {"currency": "JPY", "limit": 5, **({"after": after} if after else {})}
        html = page(finance, "/console/trial-balance", **params)
        download = finance.get("/console/trial-balance.csv", params=params)
        expected, next_after = api_csv(finance, "/v1/trial-balance", **params)
        assert download.text == expected
        assert download.headers["content-disposition"].startswith("attachment")
        assert download.headers.get("x-next-after") == next_after
        seen += [line.split(",")[0] for line in expected.splitlines()[1:]]
        after = next_link(html)
        assert after == next_after
        if after is None:
            break
    whole = finance.get("/v1/trial-balance", params={"currency": "JPY", "limit": 1000},
                        headers=FINANCE).json()
    assert seen == [a["account"] for a in whole["accounts"]]
    assert f'<data value="{whole["total_debits"]}">' in html  # the totals, on every page


def test_as_of_a_day_is_the_api_as_of_the_end_of_that_day_in_japan(finance: TestClient) -> None:
    params = {"currency": "JPY", "as_of": "2026-11-26", "limit": 1000}
    html = page(finance, "/console/trial-balance", **params)
    assert "2026-11-26 23:59:59 +09:00" in html
    expected, _ = api_csv(finance, "/v1/trial-balance", currency="JPY", limit=1000,
                          as_of="2026-11-26T23:59:59.999999+09:00")
    assert finance.get("/console/trial-balance.csv", params=params).text == expected
    before = finance.get("/console/trial-balance.csv", params={**params, "as_of": "2026-11-25"})
    assert before.text == "account,debits,credits,balance\n"


def test_balances_entries_and_payouts_download_as_the_api(finance: TestClient) -> None:
    prefix = {"currency": "JPY", "prefix": "liabilities:worker_payable:"}
    html = page(finance, "/console/balances", **prefix)
    total = finance.get("/v1/balances", params=prefix, headers=FINANCE).json()["total"]
    assert f'<td class="num" id="total-3"><data value="{total}">' in html
    assert finance.get("/console/balances.csv", params=prefix).text == api_csv(
        finance, "/v1/balances", **prefix)[0]
    account = "/accounts/assets:safeguarded_cash/entries"
    params = {"currency": "JPY", "limit": 3, "after": 2}
    assert finance.get(f"/console{account}.csv", params=params).text == api_csv(
        finance, f"/v1{account}", **params)[0]
    assert "Running balance" in page(finance, f"/console{account}", **params)
    assert finance.get("/console/payouts.csv", params={"status": "settled"}).text == api_csv(
        finance, "/v1/payouts", status="settled")[0]


def test_receivables_list_overdue_claims_first(finance: TestClient) -> None:
    params = {"currency": "JPY", "limit": 1000}
    api = finance.get("/v1/receivables", params=params, headers=FINANCE).json()
    overdue = sorted((r for r in api["rows"] if r["overdue"]),
                     key=lambda r: (r["due_by"], r["job_id"], r["item_id"]))
    html = page(finance, "/console/receivables", **params)
    assert late_rows(html) == [(r["job_id"], r["item_id"]) for r in overdue]
    assert html.split('id="late"')[1].split("</table>")[0].count('<tr class="overdue">') == len(
        overdue)
    shown = figures(html)
    assert {k: shown[f"total-{k}"] for k in api["totals"]} == api["totals"]
    claims = html.split('id="claims"')[1]
    assert claims.count('<tr class="overdue">') == len(overdue)  # highlighted there too
    assert finance.get("/console/receivables.csv", params=params).text == api_csv(
        finance, "/v1/receivables", **params)[0]
    one = {"currency": "JPY", "worker_id": "worker-1", "limit": 1}
    assert finance.get("/console/receivables.csv", params=one).text == api_csv(
        finance, "/v1/receivables", **one)[0]
    late_csv = finance.get("/console/receivables/overdue.csv", params=params).text
    assert [line.split(",")[:2] for line in late_csv.splitlines()[1:]] == [
        [r["job_id"], r["item_id"]] for r in overdue]


def test_overdue_claims_page_by_deadline(finance: TestClient) -> None:
    walked: list[tuple[str, str]] = []
    after: str | None = None
    while True:
        params = {"currency": "JPY", "limit": 2, **({"overdue_after": after} if after else {})}
        html = page(finance, "/console/receivables", **params)
        walked += late_rows(html)
        after = next_link(html.split('id="all-h"')[0], "overdue_after")  # its own pager
        if after is None:
            break
    whole = late_rows(page(finance, "/console/receivables", currency="JPY", limit=1000))
    assert walked == whole and len(whole) > 2


def test_an_escrow_from_the_search_box(finance: TestClient, auditor: TestClient) -> None:
    found = finance.get("/console/escrows", params={"job_id": "day0-project"},
                        follow_redirects=False)
    assert found.status_code == 303 and found.headers["location"] == "/console/escrows/day0-project"
    html = page(finance, "/console/escrows/day0-project")
    api = finance.get("/v1/escrows/day0-project", headers=FINANCE).json()
    shown = figures(html)
    for key in ("funded", "held", "released", "refunded", "fees", "withholding"):
        assert shown[key] == api[key]
    for item in api["items"]:
        assert f'<th scope="row">{item["item_id"]}</th><td><span class="state">{item["state"]}' \
            in html
    events = auditor.get("/v1/audit/events", params={"job_id": "day0-project"},
                         headers=AUDITOR).json()["events"]
    timeline = html.split('id="timeline"')[1].split("</ol>")[0]
    assert re.findall(r"#(\d+)<", timeline) == [str(e["position"]) for e in events]
    missing = finance.get("/console/escrows/no-such-job")
    assert missing.status_code == 404 and "no-such-job" in missing.text


def test_html_in_ids_and_names_is_shown_as_text(finance: TestClient) -> None:
    bad = finance.get("/console/escrows", params={"job_id": "<script>alert(1)</script>"})
    assert bad.status_code == 400
    assert "<script>alert" not in bad.text and "&#39;&lt;script&gt;alert(1)" in bad.text
    html = page(finance, f"/console/escrows/{HOSTILE_JOB}")
    for name in (HOSTILE_CLIENT, HOSTILE_PARTY):
        assert name not in html
    assert "&lt;img src=x onerror=&#34;window.__owned=1&#34;&gt;" in html
    payouts = page(finance, "/console/payouts")
    assert HOSTILE_PARTY not in payouts and "&lt;script&gt;window.__owned=2" in payouts
    assert finance.get("/console/accounts/<b>/entries").status_code in (400, 404)


def test_audit_pages_verify_the_chain_and_show_the_replay_status(
        auditor: TestClient, populated: Populated) -> None:
    params = {"job_id": "day0-project", "limit": 3}
    html = page(auditor, "/console/audit/events", **params)
    response = auditor.get("/v1/audit/events", params=params,
                           headers={**AUDITOR, "Accept": "text/csv"})
    assert auditor.get("/console/audit/events.csv", params=params).text == response.text
    assert response.text.splitlines()[1].split(",")[0] in html
    assert "Not verified" in page(auditor, "/console/audit/verify")
    refused = auditor.post("/console/audit/verify", data={}, headers=SAME_SITE)
    assert refused.status_code == 403
    form = page(auditor, "/console/audit/verify")
    done = auditor.post("/console/audit/verify", data={"csrf": csrf_of(form)}, headers=SAME_SITE)
    assert done.status_code == 200 and "The chain is intact." in done.text
    checked = auditor.get("/v1/audit/verify", headers=AUDITOR).json()["events_checked"]
    assert figures(done.text)["events-checked"] == str(checked) == str(populated.events)
    replay = page(auditor, "/console/audit/replay")
    assert "No replay schema" in replay and f'id="head">{populated.events:,}' in replay


# Languages, headers, files ---------------------------------------------------------

def test_the_browser_language_chooses_the_labels_and_the_switch_remembers(app: Any) -> None:
    client = client_as(app, FINANCE_TOKEN)
    ja = client.get("/console/", headers={"Accept-Language": "ja-JP,ja;q=0.9,en;q=0.8"})
    assert '<html lang="ja">' in ja.text and "顧客資金の保全" in ja.text
    en = client.get("/console/", headers={"Accept-Language": "fr, en;q=0.5"})
    assert '<html lang="en">' in en.text and "Client money safeguarded" in en.text
    switched = client.get("/console/trial-balance", params={"lang": "ja"},
                          headers={"Accept-Language": "en"})
    assert "試算表" in switched.text and "settlement_console_lang=ja" in switched.headers[
        "set-cookie"]
    assert "試算表" in client.get("/console/trial-balance", headers={
        "Accept-Language": "en"}).text


def test_pages_carry_security_headers_and_the_vendored_script(finance: TestClient) -> None:
    response = finance.get("/console/")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"
    htmx = finance.get("/console/static/htmx.min.js")
    assert htmx.status_code == 200 and 'version:"2.' in htmx.text
    assert "no-store" not in htmx.headers.get("cache-control", "")
    assert "BSD" in finance.get("/console/static/htmx.LICENSE").text
    assert "/console" not in finance.get("/openapi.json").text  # the API's document only


def test_a_missing_projections_schema_is_a_503_page(database_url: str) -> None:
    api = create_app(ApiConfig(database_url, TOKENS, now=lambda: NOW))
    try:
        client = client_as(api, FINANCE_TOKEN)
        assert client.get("/console/trial-balance").status_code == 503
    finally:
        api.state.close()


def test_invalid_parameters_are_a_400_page(finance: TestClient) -> None:
    for params in ({"as_of": "2026-13-45"}, {"limit": 0}, {"currency": "yen"}):
        response = finance.get("/console/trial-balance", params=params)
        assert response.status_code == 400 and 'id="error"' in response.text, params
    assert finance.get("/console/trial-balance", params={"as_of": "", "currency": ""}).status_code \
        == 200  # a form's empty fields mean "not given"
    assert Decimal(figures(page(finance, "/console/"))["cash"]) > 0
    assert finance.get("/console/receivables", params={
        "overdue_after": f"{int(timedelta(days=1).total_seconds())}/x/y"}).status_code == 200


def test_the_chart_keeps_ended_days_and_reads_them_again_when_one_changes(
        database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Days that ended are summed once; each request reads the recent entries and
    checks kept + recent against the running balances; an entry arriving late for
    an old day breaks the equality, and the sums are read again in full."""
    import psycopg

    from settlement.console.queries import daily
    from settlement.core.deadlines import JST
    from settlement.projections.storage import schema

    reads: list[tuple[Any, Any]] = []
    real = daily.read_days
    monkeypatch.setattr(daily, "read_days", lambda c, s, start, end: (
        reads.append((start, end)), real(c, s, start, end))[1])
    old, recent = datetime(2026, 11, 1, 12, tzinfo=JST), datetime(2026, 11, 25, 9, tzinfo=JST)
    now = datetime(2026, 11, 25, 12, tzinfo=JST)

    def post(conn: psycopg.Connection[Any], position: int, at: datetime, debit: str,
             credit: str, amount: int) -> None:
        for line, (account, side) in enumerate(((debit, "debit"), (credit, "credit"))):
            conn.execute("INSERT INTO projections.ledger_entries VALUES "
                         "(%s, %s, %s, 'j', 'settlement.x', %s, %s, %s, 'JPY')",
                         (position, line, at, account, side, amount))
            conn.execute("INSERT INTO projections.balances VALUES (%s, 'JPY', %s, %s) "
                         "ON CONFLICT (account, currency) DO UPDATE SET "
                         "debits = balances.debits + excluded.debits, "
                         "credits = balances.credits + excluded.credits",
                         (account, amount if side == "debit" else 0,
                          amount if side == "credit" else 0))

    def days(at: datetime) -> dict[Any, daily.Sums]:
        with psycopg.connect(database_url) as conn, conn.transaction():
            return totals.days(conn, "projections", at)["JPY"]

    totals = daily.DailyTotals()
    with psycopg.connect(database_url, autocommit=True) as conn:
        schema.create(conn, "projections")
        post(conn, 1, old, "assets:safeguarded_cash", "liabilities:escrow:j", 1000)
        post(conn, 2, recent, "liabilities:escrow:j", "liabilities:worker_payable:w", 400)
        assert days(now)[old.date()] == daily.Sums(Decimal(1000), Decimal(1000),
                                                   Decimal(1000))
        assert [start for start, _ in reads] == [None, reads[1][0]]  # all, then the recent
        assert reads[1][0] == datetime(2026, 11, 24, tzinfo=JST)  # yesterday on: recent
        reads.clear()
        days(now)
        assert [start for start, _ in reads] == [datetime(2026, 11, 24, tzinfo=JST)]
        post(conn, 3, old, "assets:safeguarded_cash", "liabilities:escrow:k", 50)  # late
        reads.clear()
        assert days(now)[old.date()] == daily.Sums(Decimal(1050), Decimal(1050),
                                                   Decimal(1050))
        assert [start for start, _ in reads] == [datetime(2026, 11, 24, tzinfo=JST), None]
        reads.clear()
        later = days(now + timedelta(days=1))  # the 24th ended: folded in, not all re-read
        assert [start for start, _ in reads] == [datetime(2026, 11, 24, tzinfo=JST),
                                                 datetime(2026, 11, 25, tzinfo=JST)]
        assert later[recent.date()] == daily.Sums(Decimal(0), Decimal(0), Decimal(0))


def test_balances_as_of_read_from_either_side_of_the_instant_agree(populated: Populated) -> None:
    """As of T the API sums the entries up to T, or the running balances less the
    entries after T, whichever side is smaller: both give every account's sums."""
    import psycopg

    from settlement.api.queries import balances as balance_queries

    with psycopg.connect(populated.url) as conn:
        span = conn.execute("SELECT min(time), max(time) FROM projections.ledger_entries"
                            ).fetchone()
        assert span is not None
        first, last = span
        step = (last - first) / 12
        for n in range(-1, 14):
            at = first + step * n
            direct = conn.execute(
                "SELECT account, currency, sum(amount) FILTER (WHERE side = 'debit'), "
                "sum(amount) FILTER (WHERE side = 'credit') FROM projections.ledger_entries "
                "WHERE time <= %s GROUP BY 1, 2", (at,)).fetchall()
            expected = {(a, c): (d or 0, cr or 0) for a, c, d, cr in direct}
            found = {(b.account, b.currency): (b.debits, b.credits)
                     for b in balance_queries.balances(conn, "projections", as_of=at)}
            assert found == expected, at


def test_the_payouts_page_shows_the_last_run_its_holds_and_their_csv(
        finance: TestClient, populated: Populated) -> None:
    import psycopg

    with psycopg.connect(populated.url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO projections.payout_runs VALUES ('run-1', '2026-11-30', '2026-12-15', "
            "%s, 900, 'completed', %s, %s, 904)",
            (START, '{"payouts": 3, "held": 1, "carried_over": 0, "failed": 0, '
                    '"totals": {"JPY": {"paid": "125327", "held": "8350"}}}', START))
        conn.execute(
            "INSERT INTO projections.payout_holds VALUES ('run-1', 'worker', 'worker-2', 'JPY', "
            "8350, 'kyc_missing', %s, %s, 905)", (START + timedelta(days=60), START))
    html = page(finance, "/console/payouts")
    assert 'id="run-status">completed' in html and "kyc_missing" in html
    assert '<data value="125327">¥125,327</data>' in html
    assert html.split('id="holds"')[1].count('<tr class="overdue">') == 1  # past NOW
    held = finance.get("/console/payouts/held.csv")
    assert held.text == api_csv(finance, "/v1/payouts/held")[0]
    assert held.text.splitlines()[1].startswith("worker,worker-2,JPY,8350,kyc_missing,held,")
    missing = finance.get("/console/payout-runs/run-1/zengin")  # no file stored here
    assert missing.status_code == 404 and 'id="error"' in missing.text


def test_sign_in_returns_to_a_console_page_and_never_elsewhere(app: Any) -> None:
    wanted = "/console/receivables?currency=JPY"
    for asked, landed in ((wanted, wanted), ("https://evil.example/", "/console/"),
                          ("//evil.example/console/", "/console/"),
                          ("/console/../v1/audit/verify", "/console/"),
                          ("/console/\\evil", "/console/")):
        client = TestClient(app)
        form = client.get("/console/sign-in")
        response = client.post("/console/sign-in", data={
            "csrf": csrf_of(form.text), "token": FINANCE_TOKEN, "next": asked},
            headers=SAME_SITE, follow_redirects=False)
        assert response.headers["location"] == landed, asked
