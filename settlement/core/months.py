"""JST calendar months (SPEC Part II: every date is a date in Japan, taken from
the events' `time`), as invoices and withholding count them. A month is
`YYYY-MM`; what belongs to it has its `time` in [first day 00:00 JST, first day
of the next month 00:00 JST)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time

from settlement.core.deadlines import JST
from settlement.core.errors import InvalidInput

_MONTH = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        """`YYYY-MM`, else `invalid_month`."""
        found = _MONTH.fullmatch(text) if isinstance(text, str) else None
        if found is None or not 1 <= int(found[1]) <= 9998:
            raise InvalidInput(f"{str(text)[:20]!r} is not a month YYYY-MM", "invalid_month")
        return cls(int(found[1]), int(found[2]))

    @classmethod
    def of(cls, instant: datetime) -> Month:
        """The JST month of `instant`."""
        day = instant.astimezone(JST).date()
        return cls(day.year, day.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def compact(self) -> str:
        """`YYYYMM`, as invoice numbers and remittance ids name their month."""
        return f"{self.year:04d}{self.month:02d}"

    @property
    def start(self) -> datetime:
        return datetime.combine(date(self.year, self.month, 1), time(0), JST)

    @property
    def end(self) -> datetime:
        """The first instant after the month: 00:00 JST of the next month's first day."""
        return self.next().start

    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def previous(self) -> Month:
        return Month(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    def contains(self, instant: datetime) -> bool:
        return self.start <= instant < self.end

