"""The finance console in a real browser: Debian's Chromium, headless, driven by
Playwright, against the API served by uvicorn over a populated ledger. Each
role signs in through the form; the overview's figures are compared with the
API's; an escrow is followed from the search box; a table is paged and its CSV
downloaded and compared with the API's; finance meets the 403 page on audit
pages; signing out ends the session. Every page passes axe-core with no serious
or critical violation, works from the keyboard, on a phone and without
JavaScript; hostile names never run. A screenshot of each page is saved in
$SETTLEMENT_SCREENSHOTS_DIR (default: the run's temporary directory).

No browser is a failure, not a skip: `.ci/run` installs Debian's `chromium`."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from settlement.api.app import ApiConfig, create_app
from support.api import AUDITOR_TOKEN, FINANCE_TOKEN, TOKENS, populated_database
from support.console import (
    HOSTILE_JOB,
    NOW,
    add_hostile_names,
    api_client,
    api_overview,
    served,
)

CHROMIUM = os.environ.get("SETTLEMENT_CHROMIUM", "/usr/bin/chromium")
# Headless and offline: without these Chromium tries the network and fails here.
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
AXE = Path(__file__).parents[1] / "support" / "vendor" / "axe.min.js"
LAPTOP, PHONE = {"width": 1280, "height": 800}, {"width": 390, "height": 844}
FINANCE = {"Authorization": f"Bearer {FINANCE_TOKEN}"}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: apt-get install chromium (.ci/run does)")
    with sync_playwright() as playwright, tempfile.TemporaryDirectory() as profile:
        # Playwright gives each launch a fresh profile of its own; ours is for the
        # crash reports and caches Chromium would otherwise write in $HOME.
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=[*ARGS, f"--crash-dumps-dir={profile}", f"--disk-cache-dir={profile}"])
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def site(pg_server: str) -> Iterator[str]:
    with populated_database(pg_server) as db:
        add_hostile_names(db.url)
        app = create_app(ApiConfig(db.url, TOKENS, now=lambda: NOW))
        try:
            with served(app) as base:
                yield base
        finally:
            app.state.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = os.environ.get("SETTLEMENT_SCREENSHOTS_DIR")
    path = Path(where) if where else tmp_path_factory.getbasetemp() / "console-screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


def context(browser: Browser, **options: Any) -> BrowserContext:
    made = browser.new_context(**{"viewport": LAPTOP, "locale": "en-US",
                                  "accept_downloads": True, **options})
    made.set_default_timeout(15_000)
    return made


def sign_in(page: Page, site: str, token: str) -> None:
    page.goto(f"{site}/console/")
    expect(page).to_have_url(f"{site}/console/sign-in?next=%2Fconsole%2F")
    page.fill("#token", token)
    page.press("#token", "Enter")  # from the keyboard
    expect(page).to_have_url(f"{site}/console/")


def check(page: Page, shots: Path, name: str) -> None:
    """Save a screenshot; no serious or critical axe-core violation; no page wider
    than the window; no error in the console."""
    page.screenshot(path=shots / f"{name}.png", full_page=True)
    page.evaluate(AXE.read_text())  # by the driver, so the page's CSP does not apply
    found = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']}))"
                          ".violations.map(v => [v.id, v.impact, v.nodes.length])")
    assert [v for v in found if v[1] in ("serious", "critical")] == [], name
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"{name} is wider than the window: {width}"
    assert page.evaluate("window.__owned") is None  # no hostile name ran


def finance_reads_the_overview_with_the_api_figures(browser: Browser, site: str,
                                                          shots: Path) -> None:
    with context(browser) as ctx:
        page = ctx.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        sign_in(page, site, FINANCE_TOKEN)
        with api_client(site) as api:
            expected = api_overview(api, "JPY", FINANCE)
        shown = {key: page.locator(f"#{key} data").first.get_attribute("value") or ""
                 for key in expected}
        assert shown == expected
        expect(page.locator("#cash")).to_have_text("¥368,125")
        expect(page.locator("#verdict")).to_contain_text("Covered")
        expect(page.locator(".chart svg title")).to_contain_text("last 90 days")
        check(page, shots, "overview")
        page.select_option("select[name=currency]", "USD")
        page.click("form.inline button")
        expect(page.locator("#cash")).to_have_text("$158.02")
        assert errors == []


def an_escrow_from_the_search_box(browser: Browser, site: str, shots: Path) -> None:
    with context(browser) as ctx:
        page = ctx.new_page()
        sign_in(page, site, FINANCE_TOKEN)
        page.fill("#job-search", "day0-project")
        page.press("#job-search", "Enter")
        expect(page).to_have_url(f"{site}/console/escrows/day0-project")
        with api_client(site) as api:
            escrow = api.get("/v1/escrows/day0-project", headers=FINANCE).json()
        expect(page.locator("#items tbody tr")).to_have_count(len(escrow["items"]))
        assert page.locator("#held data").get_attribute("value") == escrow["held"]
        expect(page.locator("#timeline li").first).to_contain_text("settlement.")
        check(page, shots, "escrow")
        page.goto(f"{site}/console/escrows/{HOSTILE_JOB}")
        expect(page.locator("#client")).to_have_text('<img src=x onerror="window.__owned=1">')
        check(page, shots, "escrow-hostile-names")


def a_table_pages_and_downloads_the_api_csv(browser: Browser, site: str,
                                                 shots: Path) -> None:
    with context(browser) as ctx:
        page = ctx.new_page()
        sign_in(page, site, FINANCE_TOKEN)
        page.goto(f"{site}/console/trial-balance?currency=JPY&limit=5")
        check(page, shots, "trial-balance")
        with api_client(site) as api:
            first = api.get("/v1/trial-balance", params={"currency": "JPY", "limit": 5},
                            headers=FINANCE).headers["x-next-after"]
            expected = api.get("/v1/trial-balance", params={
                "currency": "JPY", "limit": 5, "after": first},
                headers={**FINANCE, "Accept": "text/csv"}).text
        page.click("a[rel=next]")
        expect(page).to_have_url(f"{site}/console/trial-balance?currency=JPY&limit=5"
                                 f"&after={quote(first, safe='')}")
        with page.expect_download() as download:
            page.click("a.download")
        saved = Path(download.value.path()).read_text()
        assert saved == expected and saved.count("\n") == 6
        for name, path in (("balances", "/balances?prefix=liabilities:worker_payable:"),
                           ("entries", "/accounts/assets:safeguarded_cash/entries"),
                           ("receivables", "/receivables?limit=25"),
                           ("payouts", "/payouts")):
            page.goto(f"{site}/console{path}")
            check(page, shots, name)
        expect(page.locator("#payouts tbody tr").first).to_be_visible()


def finance_meets_the_403_page_and_signs_out(browser: Browser, site: str,
                                                  shots: Path) -> None:
    with context(browser) as ctx:
        page = ctx.new_page()
        sign_in(page, site, FINANCE_TOKEN)
        response = page.goto(f"{site}/console/audit/events")
        assert response is not None and response.status == 403
        expect(page.locator("h1")).to_have_text("Not for your role")
        check(page, shots, "forbidden")
        page.click(".sign-out button")
        expect(page.locator("#signed-out")).to_be_visible()
        check(page, shots, "sign-in")
        page.goto(f"{site}/console/")
        expect(page).to_have_url(f"{site}/console/sign-in?next=%2Fconsole%2F")  # refused


def the_auditor_verifies_the_chain_and_reads_the_audit_log(
        browser: Browser, site: str, shots: Path) -> None:
    with context(browser) as ctx:
        page = ctx.new_page()
        sign_in(page, site, AUDITOR_TOKEN)
        page.click("nav.sections >> text=Audit log")
        expect(page.locator("h1")).to_have_text("Audit log")
        check(page, shots, "audit-log")
        page.click("nav.sections >> text=Chain verification")
        page.click("text=Verify the chain now")
        expect(page.locator("#result h2")).to_contain_text("The chain is intact.")
        check(page, shots, "verification")
        page.click("nav.sections >> text=Replay status")
        expect(page.locator("#replay")).to_contain_text("No replay schema")
        check(page, shots, "replay")


def keyboard_phone_no_javascript_and_japanese(browser: Browser, site: str,
                                                   shots: Path) -> None:
    with context(browser) as ctx:
        page = ctx.new_page()
        sign_in(page, site, FINANCE_TOKEN)
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.className") == "skip"
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "main"
    with context(browser, viewport=PHONE, is_mobile=True, has_touch=True) as ctx:
        page = ctx.new_page()
        sign_in(page, site, FINANCE_TOKEN)
        check(page, shots, "overview-phone")
        page.goto(f"{site}/console/receivables?limit=25")
        check(page, shots, "receivables-phone")
    with context(browser, java_script_enabled=False) as ctx:
        page = ctx.new_page()
        sign_in(page, site, AUDITOR_TOKEN)
        assert page.locator("#cash data").get_attribute("value") == "368125"
        page.goto(f"{site}/console/trial-balance?currency=JPY&limit=5")
        page.click("a[rel=next]")
        expect(page.locator("#accounts tbody tr")).to_have_count(5)
    with context(browser, locale="ja-JP") as ctx:
        page = ctx.new_page()
        sign_in(page, site, FINANCE_TOKEN)
        expect(page.locator("h1")).to_contain_text("概要")
        check(page, shots, "overview-ja")
        page.click("text=English")
        expect(page.locator("h1")).to_contain_text("Overview")


def test_the_console_in_a_browser(browser: Browser, site: str, shots: Path) -> None:
    """One test, so one browser and one served ledger whatever the suite's workers
    (each step opens its own contexts: cookies never leak between steps)."""
    for step in (finance_reads_the_overview_with_the_api_figures, an_escrow_from_the_search_box,
                 a_table_pages_and_downloads_the_api_csv, finance_meets_the_403_page_and_signs_out,
                 the_auditor_verifies_the_chain_and_reads_the_audit_log,
                 keyboard_phone_no_javascript_and_japanese):
        step(browser, site, shots)
    assert len(list(shots.glob("*.png"))) >= 15
