"""The payment deadline of the Freelance Act (SPEC §2, as amended): a worker's
claim is paid out within 60 days counting the day of delivery as the first, in
Japanese time. So the deadline (`due_by`) is 00:00 JST of the 61st day: work
delivered 2026-01-06 18:00 JST is due by 2026-03-07T00:00:00+09:00.

The live projections stored before this rule held the delivery instant + 60 days
(up to a day late); `settlement/projections/storage/migrations.py` moves them to
this rule with the same arithmetic in SQL (a test checks the two agree).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

PAYMENT_DAYS = 60
JST = ZoneInfo("Asia/Tokyo")


def payment_due_by(delivered_at: datetime) -> datetime:
    """00:00 JST of the 61st day, the day of `delivered_at` (in JST) the first."""
    if delivered_at.tzinfo is None:
        raise ValueError("delivered_at must carry a timezone")
    day_61 = delivered_at.astimezone(JST).date() + timedelta(days=PAYMENT_DAYS)
    return datetime.combine(day_61, time(0), JST)
