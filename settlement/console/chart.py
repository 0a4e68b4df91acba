"""The overview chart's geometry, for an inline SVG drawn by the template: bars of
each day's receipts (right axis) and the coverage ratio at each day's end as a
line (left axis, 100 % dashed). Coordinates are Decimals rounded to a tenth of
a pixel; the figures themselves stay exact in the table beside the chart."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal

from settlement.console.queries.daily import ChartDay

WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 64, 96, 16, 32
PLOT_W, PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
RATIO_FLOOR_TOP = Decimal("1.5")  # the ratio axis shows at least 0–150 %
RATIO_FINE_TOP = Decimal(3)  # up to 300 %, ticks every 50 %
LABEL_EVERY_DAYS = 15
TENTH = Decimal("0.1")


def _px(value: Decimal) -> str:
    return str(value.quantize(TENTH, rounding=ROUND_HALF_EVEN))


@dataclass(frozen=True, slots=True)
class Bar:
    x: str
    y: str
    width: str
    height: str


@dataclass(frozen=True, slots=True)
class Tick:
    y: str
    value: Decimal


@dataclass(frozen=True, slots=True)
class Label:
    x: str
    text: str


@dataclass(frozen=True, slots=True)
class Geometry:
    bars: list[Bar]
    line: str  # polyline points of the ratio (days with obligations only)
    full_cover_y: str  # the 100 % line
    ratio_ticks: list[Tick]
    received_top: Decimal  # the right axis' top value
    day_labels: list[Label]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right_x: int = WIDTH - RIGHT
    bottom_y: int = HEIGHT - BOTTOM


def _axis_top(ratio: Decimal) -> Decimal:
    """Up to 300 %, the next half; beyond, the next even number (ticks at quarters)."""
    if ratio <= RATIO_FINE_TOP:
        return (ratio * 2).to_integral_value(ROUND_CEILING) / 2
    return (ratio / 2).to_integral_value(ROUND_CEILING) * 2


def geometry(days: list[ChartDay]) -> Geometry:
    slot = Decimal(PLOT_W) / max(len(days), 1)
    received_top = max((d.received for d in days), default=Decimal(0)) or Decimal(1)
    ratios = [d.coverage_ratio for d in days if d.coverage_ratio is not None]
    ratio_top = _axis_top(max([RATIO_FLOOR_TOP, *ratios]))
    base_y = Decimal(TOP + PLOT_H)

    def y_of(value: Decimal, top: Decimal) -> Decimal:
        return base_y - min(value / top, Decimal(1)) * PLOT_H

    bars, points, labels = [], [], []
    for n, d in enumerate(days):
        x = LEFT + slot * n
        if d.received > 0:
            y = y_of(d.received, received_top)
            bars.append(Bar(_px(x + slot * Decimal("0.15")), _px(y), _px(slot * Decimal("0.7")),
                            _px(base_y - y)))
        if d.coverage_ratio is not None:
            points.append(f"{_px(x + slot / 2)},{_px(y_of(d.coverage_ratio, ratio_top))}")
        if n % LABEL_EVERY_DAYS == 0 or n == len(days) - 1:
            labels.append(Label(_px(x + slot / 2), d.day.strftime("%m-%d")))
    step = Decimal("0.5") if ratio_top <= RATIO_FINE_TOP else ratio_top / 4
    ticks = [Tick(_px(y_of(step * k, ratio_top)), step * k)
             for k in range(int(ratio_top / step) + 1)]
    return Geometry(bars, " ".join(points), _px(y_of(Decimal(1), ratio_top)), ticks,
                    received_top, labels)
