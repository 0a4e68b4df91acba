"""Withholding per client and month, and the 支払調書 per client, worker and year
(SPEC §12): sums over releases, each release's withholding as it was computed
and recorded at release (§5), never computed again from a monthly total.

Months and years are in Japan (JST) and come from the events' `time`. A month's
tax is due to the tax office by the 10th of the next month; a 10th that is not
a bank business day moves to the next business day (`banking.calendar`).

Pure: the releases come in as `Release` rows (read by the API's queries or the
remittance's scan), `now` as an argument.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from settlement.banking.calendar import next_business_day
from settlement.core.errors import InvalidInput
from settlement.core.months import Month

DUE_DAY = 10  # of the month after the month of release
ANNUAL_THRESHOLD = Decimal(50_000)  # 支払調書: paid more than this (JPY) in the year
INDIVIDUAL = "individual"
_MONTH = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")
_YEAR = re.compile(r"[0-9]{4}")


def due_date(month: Month) -> date:
    """When `month`'s withholding is due: the 10th of the next month, or the next
    business day after it."""
    after = month.next()
    return next_business_day(date(after.year, after.month, DUE_DAY))


def parse_month(text: str, now: datetime) -> Month:
    """A `YYYY-MM` month that is over at `now` (in JST). Codes: invalid_month
    (malformed), month_not_over (it has not ended yet)."""
    match = _MONTH.fullmatch(text)
    if match is None or not 2000 <= int(match.group(1)) <= 2098:
        raise InvalidInput(f"month must be YYYY-MM (2000-01 to 2098-12), got {text!r}",
                           "invalid_month")
    month = Month.parse(text)
    if now < month.end:
        raise InvalidInput(f"month {month} is not over yet", "month_not_over")
    return month


def parse_year(text: str, now: datetime) -> int:
    """A calendar year (JST) that has begun at `now`. Codes: invalid_year,
    year_in_future."""
    if _YEAR.fullmatch(text) is None or not 2000 <= int(text) <= 2098:
        raise InvalidInput(f"year must be YYYY (2000 to 2098), got {text!r}", "invalid_year")
    year = int(text)
    if now < Month(year, 1).start:
        raise InvalidInput(f"year {year} has not begun", "year_in_future")
    return year


def year_over(year: int, now: datetime) -> bool:
    return now >= Month(year + 1, 1).start


@dataclass(frozen=True, slots=True)
class Release:
    """One release to a worker as its event recorded it (amounts in yen)."""

    position: int
    time: datetime
    job_id: str
    item_id: str
    client_id: str
    worker_id: str
    currency: str
    gross: Decimal  # tax-included
    fee: Decimal
    fee_tax: Decimal
    withholding: Decimal
    net: Decimal


@dataclass
class MonthlyWithholding:
    """A client's withholding of one month, and its 所得税徴収高計算書 data:
    支払年月 (`month`), 人員 (`workers`: distinct workers withheld from), 支給額
    (`gross`: gross paid tax-included in the releases withheld from), 税額
    (`withheld`)."""

    client_id: str
    currency: str
    month: Month
    withheld: Decimal = Decimal(0)
    gross: Decimal = Decimal(0)
    releases: int = 0
    worker_ids: set[str] = field(default_factory=set)

    @property
    def workers(self) -> int:
        return len(self.worker_ids)

    @property
    def due_date(self) -> date:
        return due_date(self.month)


def monthly(releases: Iterable[Release], month: Month) -> list[MonthlyWithholding]:
    """Per client and currency, the releases of `month` that withheld tax, summed
    as recorded (a client with nothing withheld has no row), by client id."""
    rows: dict[tuple[str, str], MonthlyWithholding] = {}
    for release in releases:
        if release.withholding <= 0 or not month.start <= release.time < month.end:
            continue
        key = (release.client_id, release.currency)
        row = rows.get(key) or rows.setdefault(
            key, MonthlyWithholding(release.client_id, release.currency, month))
        row.withheld += release.withholding
        row.gross += release.gross
        row.releases += 1
        row.worker_ids.add(release.worker_id)
    return [rows[key] for key in sorted(rows)]


@dataclass
class AnnualPayment:
    """One 支払調書 row: what a client paid an individual worker in a year."""

    client_id: str
    worker_id: str
    currency: str
    year: int
    gross: Decimal = Decimal(0)  # tax-included
    withheld: Decimal = Decimal(0)
    releases: int = 0


def annual(releases: Iterable[Release], year: int, individuals: Iterable[str],
           threshold: Decimal = ANNUAL_THRESHOLD) -> list[AnnualPayment]:
    """Per client and individual worker (JPY), the year's releases summed, where
    the gross is over `threshold`, withheld or not; by client, then worker."""
    people = set(individuals)
    start, end = Month(year, 1).start, Month(year + 1, 1).start
    rows: dict[tuple[str, str], AnnualPayment] = {}
    for release in releases:
        if (release.currency != "JPY" or release.worker_id not in people
                or not start <= release.time < end):
            continue
        key = (release.client_id, release.worker_id)
        row = rows.get(key) or rows.setdefault(
            key, AnnualPayment(release.client_id, release.worker_id, "JPY", year))
        row.gross += release.gross
        row.withheld += release.withholding
        row.releases += 1
    return [rows[key] for key in sorted(rows) if rows[key].gross > threshold]
