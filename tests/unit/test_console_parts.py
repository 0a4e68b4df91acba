"""The console's pure parts: how amounts, ratios and instants are written, which
language a browser gets, sessions' lifetimes, the chart's series and geometry,
and that every label a template asks for exists in both languages."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from settlement.console import formatting, i18n
from settlement.console.chart import geometry
from settlement.console.queries.daily import Sums, chart
from settlement.console.sessions import SessionStore

TEMPLATES = Path(__file__).parents[2] / "settlement" / "console" / "templates"


@pytest.mark.parametrize(("value", "currency", "shown"), [
    ("1234567", "JPY", "¥1,234,567"),
    ("1234.56", "USD", "$1,234.56"),
    ("105", "USD", "$105.00"),  # padded to the minor unit
    ("0.105", "USD", "$0.105"),  # more places than the currency's: kept, never rounded
    ("-5000", "JPY", "−¥5,000"),
    ("0", "JPY", "¥0"),
    ("999999999999.99", "USD", "$999,999,999,999.99"),
    ("12", "KWD", "12.000 KWD"),
    ("7", "XXZ", "7 XXZ"),  # an unknown code: digits as recorded
])
def test_amounts_are_written_exactly_with_symbol_and_groups(value: str, currency: str,
                                                            shown: str) -> None:
    assert formatting.money(value, currency) == shown
    assert formatting.money(Decimal(value), currency) == shown


def test_ratios_instants_and_days() -> None:
    assert formatting.percent("1.149510") == "114.9510 %"
    assert formatting.percent(None) == "—"
    assert formatting.instant("2026-11-26T09:02:00.123456+00:00") == "2026-11-26 18:02:00 +09:00"
    assert formatting.instant(datetime(2026, 12, 31, 15, tzinfo=UTC)) == \
        "2027-01-01 00:00:00 +09:00"
    assert formatting.end_of_day(date(2026, 11, 26)).isoformat() == \
        "2026-11-26T23:59:59.999999+09:00"
    assert formatting.start_of_day(date(2026, 11, 26)).isoformat() == "2026-11-26T00:00:00+09:00"


@pytest.mark.parametrize(("header", "lang"), [
    ("ja-JP,ja;q=0.9,en;q=0.8", "ja"),
    ("en-US,en;q=0.9,ja;q=0.8", "en"),
    ("fr-FR, ja;q=0.5", "ja"),
    ("fr", "en"),
    ("ja;q=0, en;q=0.1", "en"),
    ("ja;q=abc, en", "en"),
    ("en;q=0.2, ja;q=0.7", "ja"),
    ("", "en"),
    (None, "en"),
])
def test_the_browser_language_is_chosen_by_quality(header: str | None, lang: str) -> None:
    assert i18n.choose(None, None, header) == lang


def test_the_switch_beats_the_cookie_which_beats_the_browser() -> None:
    assert i18n.choose("en", "ja", "ja") == "en"
    assert i18n.choose(None, "ja", "en") == "ja"
    assert i18n.choose("xx", "yy", "ja") == "ja"


def test_every_label_a_template_uses_exists_in_both_languages() -> None:
    used: set[str] = set()
    for template in TEMPLATES.glob("*.html"):
        used |= set(re.findall(r"""\bt\(["']([a-z_0-9]+)["']\)""", template.read_text()))
    used |= {f"role_{role}" for role in ("finance", "auditor")}  # built as "role_" ~ role
    assert used - set(i18n.LABELS) == set()
    assert all(en and ja for en, ja in i18n.LABELS.values())


def test_sessions_end_after_their_lifetime_idle_time_or_sign_out() -> None:
    now = [0.0]
    store = SessionStore(clock=lambda: now[0], lifetime_seconds=100, idle_seconds=30,
                         sessions_max=2)
    first, session = store.open("finance", "t-1")
    assert store.get(first) == session and len(session.csrf) >= 40
    now[0] = 29
    assert store.get(first) is not None  # seen again: idle time restarts
    now[0] = 58
    assert store.get(first) is not None
    now[0] = 88
    assert store.get(first) is None  # idle 30 s
    second, _ = store.open("auditor", "t-2")
    for step in range(1, 5):
        now[0] = 88 + 25 * step
        alive = store.get(second) is not None
    assert not alive  # past its lifetime of 100 s, however busy
    a, _ = store.open("finance", "t-1")
    b, _ = store.open("finance", "t-1")
    c, _ = store.open("finance", "t-1")
    assert store.get(a) is None and store.get(b) and store.get(c)  # at most 2: oldest out
    store.close(b)
    assert store.get(b) is None
    assert store.get(None) is None and store.get("x" * 500) is None and store.get("") is None


def test_the_chart_series_carries_balances_forward_and_rounds_the_ratio_down() -> None:
    days = {date(2026, 1, 1): Sums(Decimal(300), Decimal(200), Decimal(300)),
            date(2026, 1, 3): Sums(Decimal(-100), Decimal(-100), Decimal(0)),
            date(2026, 1, 9): Sums(Decimal(1), Decimal(1), Decimal(1))}  # after the last day
    series = chart(days, date(2026, 1, 4), 3)
    assert [d.day.isoformat() for d in series] == ["2026-01-02", "2026-01-03", "2026-01-04"]
    assert [(d.cash, d.obligations, d.received) for d in series] == [
        (300, 200, 0), (200, 100, 0), (200, 100, 0)]
    assert [d.coverage_ratio for d in series] == [Decimal("1.5"), Decimal(2), Decimal(2)]
    thirds = chart({date(2026, 1, 1): Sums(Decimal(1), Decimal(3), Decimal(1))},
                   date(2026, 1, 1), 1)
    assert thirds[0].coverage_ratio == Decimal("0.333333")  # down, as /v1/safeguarding
    assert chart({}, date(2026, 1, 1), 2)[0].coverage_ratio is None  # nothing owed


def test_the_chart_geometry_scales_bars_and_the_ratio_axis() -> None:
    series = chart({date(2026, 1, 1): Sums(Decimal(500), Decimal(100), Decimal(500)),
                    date(2026, 1, 2): Sums(Decimal(0), Decimal(0), Decimal(250))},
                   date(2026, 1, 2), 2)
    g = geometry(series)
    assert len(g.bars) == 2 and Decimal(g.bars[0].height) == 2 * Decimal(g.bars[1].height)
    assert g.received_top == 500
    assert [t.value for t in g.ratio_ticks] == [0, Decimal("1.5"), 3, Decimal("4.5"), 6]  # 500 %
    assert g.line.count(",") == 2
    assert [t.value for t in geometry(chart({}, date(2026, 1, 1), 1)).ratio_ticks] == [
        0, Decimal("0.5"), 1, Decimal("1.5")]
