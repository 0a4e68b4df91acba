"""A4 PDFs with Japanese text, the same bytes for the same data.

ReportLab's built-in CID fonts (`HeiseiKakuGo-W5`, `HeiseiMin-W3`) are named
in the PDF and drawn by the reader's Japanese fonts, so nothing is downloaded
or embedded. `invariant=1` leaves out the creation time and the random
document id: a re-render of stored data is byte-identical, and its SHA-256
proves it.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass, field

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

GOTHIC = "HeiseiKakuGo-W5"
pdfmetrics.registerFont(UnicodeCIDFont(GOTHIC))

_TITLE = ParagraphStyle("title", fontName=GOTHIC, fontSize=16, leading=22, spaceAfter=4 * mm)
_TEXT = ParagraphStyle("text", fontName=GOTHIC, fontSize=9, leading=13)
_CELL = ParagraphStyle("cell", fontName=GOTHIC, fontSize=8, leading=10)
_NUMBER = ParagraphStyle("number", parent=_CELL, alignment=2)  # right-aligned


@dataclass(frozen=True)
class Document:
    """What a statement or an invoice shows, in reading order.

    `parties`: label/value pairs at the top (who issues it, to whom, numbers and
    dates); `columns` and `rows`: the lines; `totals`: label/value pairs under
    them; `notes`: free lines at the end. Every value is already formatted text
    (amounts exact, dates in JST)."""

    title: str
    parties: Sequence[tuple[str, str]]
    columns: Sequence[str]
    rows: Sequence[Sequence[str]]
    totals: Sequence[tuple[str, str]] = ()
    notes: Sequence[str] = ()
    numeric_columns: frozenset[int] = field(default_factory=frozenset)
    column_widths_mm: Sequence[float] | None = None  # None: ReportLab sizes them


def render(document: Document) -> bytes:
    """The PDF's bytes (deterministic: see the module's text)."""
    out = io.BytesIO()
    template = SimpleDocTemplate(out, pagesize=A4, invariant=1, title=document.title,
                                 leftMargin=15 * mm, rightMargin=15 * mm,
                                 topMargin=15 * mm, bottomMargin=15 * mm)
    template.build(_flowables(document))
    return out.getvalue()


def sha256(pdf: bytes) -> str:
    return hashlib.sha256(pdf).hexdigest()


def _flowables(document: Document) -> list[Flowable]:
    story: list[Flowable] = [Paragraph(_escape(document.title), _TITLE)]
    if document.parties:
        story += [_pairs(document.parties), Spacer(1, 5 * mm)]
    header = [Paragraph(_escape(name), _CELL) for name in document.columns]
    body = [[Paragraph(_escape(value), _NUMBER if n in document.numeric_columns else _CELL)
             for n, value in enumerate(row)] for row in document.rows]
    widths = None if document.column_widths_mm is None else [
        w * mm for w in document.column_widths_mm]
    lines = Table([header, *body], repeatRows=1, colWidths=widths)
    style = [("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
             ("BACKGROUND", (0, 0), (-1, 0), colors.whitesmoke),
             ("VALIGN", (0, 0), (-1, -1), "TOP")]
    lines.setStyle(TableStyle(style))
    story.append(lines)
    if document.totals:
        story += [Spacer(1, 4 * mm), _pairs(document.totals, align_right=True)]
    story += [Spacer(1, 4 * mm), *(Paragraph(_escape(note), _TEXT) for note in document.notes)]
    return story


def _pairs(pairs: Sequence[tuple[str, str]], align_right: bool = False) -> Table:
    table = Table([[Paragraph(_escape(label), _TEXT), Paragraph(_escape(value), _TEXT)]
                   for label, value in pairs], hAlign="RIGHT" if align_right else "LEFT")
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"),
                               ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.lightgrey)]))
    return table


def _escape(text: str) -> str:
    """Paragraph text is a small markup language: a party's name is not markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
