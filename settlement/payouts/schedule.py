"""When a run pays and what it covers (SPEC §11 "Closings"): its window.

A closing D (the 15th or a month end, JST) covers events with `time` before
D+1 00:00 JST stored when it starts, may start only from that instant, and
pays on D's payment day (`banking.calendar.payment_day`); its run id is
`closing-YYYY-MM-DD`, so it runs once. A `--now` run (SPEC §9) covers
everything stored when it starts and pays on the first bank business day
after its JST date. Either way the minimum never carries an item due (its
`due_by`) on or before the next closing's payment day: that is when a
carried-over amount would next be paid.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from settlement.banking import calendar
from settlement.core.errors import InvalidInput, Rejected
from settlement.payouts.ids import checked_run_id, run_id_of

CLOSING_RUN_PREFIX = "closing-"


@dataclass(frozen=True)
class RunWindow:
    run_id: str
    now: datetime  # the run's business time: its events carry it
    closing: date | None  # None for a `--now` run
    cutoff: datetime | None  # events from this instant on are the next closing's
    payment_day: date  # 取組日
    next_payment_day: date  # the next closing's: the minimum never carries past it

    def carries(self, due_by: datetime | None) -> bool:
        """Whether an item due by `due_by` may wait for the next closing."""
        return due_by is None or calendar.jst_date(due_by) > self.next_payment_day


def _checked_now(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise InvalidInput("now must carry a timezone", "time_format")
    return now


def closing_run_id(closing: date) -> str:
    return f"{CLOSING_RUN_PREFIX}{closing.isoformat()}"


def closing_window(closing: date, now: datetime) -> RunWindow:
    """The window of closing `closing` started at `now`. Refused, in order:
    `time_format`, `not_a_closing_day`, `date_outside_calendar`,
    `closing_not_reached` (before D+1 00:00 JST)."""
    cutoff = calendar.closing_cutoff(closing)
    pay_on = calendar.payment_day(closing)
    if _checked_now(now) < cutoff:
        raise Rejected(f"closing {closing.isoformat()} may start from {cutoff.isoformat()}",
                       "closing_not_reached")
    following = calendar.payment_day(calendar.next_closing(closing))
    return RunWindow(closing_run_id(closing), now, closing, cutoff, pay_on, following)


def now_window(now: datetime, run_id: str | None = None) -> RunWindow:
    """The window of a `--now` run (`run_id` default: `run-<UTC time>`)."""
    today = calendar.jst_date(_checked_now(now))
    pay_on = calendar.next_business_day(today + timedelta(days=1))
    following = calendar.payment_day(calendar.closing_of(today))
    return RunWindow(checked_run_id(run_id or run_id_of(now)), now, None, None, pay_on,
                     max(following, pay_on))


def due_closing(now: datetime) -> date:
    """The latest closing whose cutoff has passed at `now`: the one a timer runs."""
    today = calendar.jst_date(_checked_now(now))
    previous = today - timedelta(days=1)  # its cutoff is today 00:00 JST, passed
    if calendar.is_closing_day(previous):
        return previous
    mid = previous.replace(day=calendar.CLOSING_MID_MONTH_DAY)
    return mid if previous > mid else previous.replace(day=1) - timedelta(days=1)
