"""Matching bank statement lines to the ledger's cash movements (SPEC §13):
deterministic, every match with its rule, ambiguity never guessed.

What the ledger expects the bank to show (`Expected`, built by the caller):
a credit per funding (its `payment_ref`, the client's name kana), a credit per
returned transfer (the payee's name), a debit per payout run's Zengin file
total (on its payment day, covering the run's payouts) and a debit per settled
payout. Lines are taken in (booked, line_id) order; each expected movement is
matched at most once. Finance's decisions (`Decision`) come first: a line
matched by hand, confirmed as a bank charge, or unmatched by hand is not
matched automatically.

Rules for a credit, in order:

| rule | when |
|---|---|
| `payment_ref` | its reference names the `payment_ref` of fundings, all open, adding up to it |
| `amount_name` | exactly one open funding of its name and amount within the window |
| `amount_name_combined` | none, and exactly one set of 2 to `COMBINED_MAX` of the |
| | name's open fundings in the window adds up to it |
| `returned_transfer` | exactly one open returned payout of its amount in the window |
| | (and of its name, where it names one) |

and for a debit:

| rule | when |
|---|---|
| `run_total` | exactly one open payout run of its Zengin total, payment day in the window |
| `payout` | no run, and exactly one open settled payout of its amount in the window |

The window is `WINDOW_BUSINESS_DAYS` bank business days either side of the
ledger's date. A line with candidates from more than one of these (or more than one candidate
of one) is left open as `ambiguous` with every candidate listed; a line whose
only candidates are already matched is open as `already_matched` (a bank line
twice, or a ledger entry twice); a line with none is `no_candidate`.

Pure: no I/O, no clock; dates are the JST dates the caller gives.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from settlement.banking.calendar import add_business_days

CREDIT, DEBIT = "credit", "debit"
FUNDING, RETURN, PAYOUT, RUN = "funding", "return", "payout", "run"
WINDOW_BUSINESS_DAYS = 3
COMBINED_MAX = 12  # fundings of one name tried in sets: 2^12 sets at most
MATCH, UNMATCH, BANK_FEE = "match", "unmatch", "bank_fee"
_TOKEN = re.compile(r"[^\s,;]+")


@dataclass(frozen=True, slots=True)
class BankLine:
    line_id: str
    booked: date
    direction: str
    amount: int
    counterparty: str  # `lines.counterparty_key` form
    reference: str


@dataclass(frozen=True, slots=True)
class Expected:
    """A cash movement the ledger expects the bank to show."""

    key: str           # "funding:<position>", "return:<payout_id>", "payout:<id>", "run:<id>"
    kind: str
    direction: str
    amount: int
    day: date          # JST date of the ledger entry (a run: its payment day)
    ref: str = ""      # a funding's payment_ref
    name: str = ""     # `counterparty_key` of the client (funding) or payee (return)
    members: tuple[str, ...] = ()  # a run: the keys of its payouts


@dataclass(frozen=True, slots=True)
class Decision:
    """Finance's latest decision on a line (an event, see `decisions`)."""

    line_id: str
    action: str  # match / unmatch / bank_fee
    targets: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Match:
    line_id: str
    rule: str
    targets: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Open:
    line_id: str
    reason: str
    candidates: tuple[tuple[str, ...], ...] = ()


@dataclass
class Result:
    matches: dict[str, Match] = field(default_factory=dict)
    open: dict[str, Open] = field(default_factory=dict)
    covered: dict[str, str] = field(default_factory=dict)  # expected key → line id

    def unmatched_expected(self, expected: Iterable[Expected]) -> list[Expected]:
        """The ledger's movements no line covers (a run counts through its payouts)."""
        return [e for e in expected if e.kind != RUN and e.key not in self.covered]


@functools.lru_cache(maxsize=4_096)
def window(day: date) -> tuple[date, date]:
    return (add_business_days(day, -WINDOW_BUSINESS_DAYS),
            add_business_days(day, WINDOW_BUSINESS_DAYS))


def _within(line: BankLine, expected: Expected) -> bool:
    low, high = window(expected.day)
    return low <= line.booked <= high


def ref_key(text: str) -> str:
    return text.upper()


class _Index:
    """The expected movements by what the rules look them up by, each list in key
    order (whatever order they came in). A funding of no known name is found by
    its reference only (the name rules need one)."""

    def __init__(self, expected: Iterable[Expected]) -> None:
        self.by_ref: dict[str, Expected] = {}
        self.by_name: dict[str, list[Expected]] = defaultdict(list)
        self.by_amount: dict[tuple[str, str, int], list[Expected]] = defaultdict(list)
        self.runs: dict[str, Expected] = {}
        for e in expected:
            if e.kind == FUNDING:
                if e.ref:  # one funding per reference: the first by key
                    ref = e.ref if e.ref.isupper() else ref_key(e.ref)  # one string, not two
                    known = self.by_ref.get(ref)
                    if known is None or e.key < known.key:
                        self.by_ref[ref] = e
                if not e.name:
                    continue
                self.by_name[e.name].append(e)
            elif e.kind == RUN:
                self.runs[e.key] = e
            self.by_amount[(e.kind, e.name if e.kind == FUNDING else "", e.amount)].append(e)
        for group in (*self.by_name.values(), *self.by_amount.values()):
            group.sort(key=_key)


def _key(e: Expected) -> str:
    return e.key


def match(lines: Iterable[BankLine], expected: Iterable[Expected],
          decisions: Mapping[str, Decision] | None = None, *, ordered: bool = False,
          on_open: Callable[[BankLine], None] | None = None) -> Result:
    """Match every line (see the module doc). `ordered`: the lines come in (booked,
    line_id) order already, so they are read once and none is kept (a stream);
    `on_open` is told of each line left open, as it is."""
    index = _Index(expected)
    result = Result()
    decided = decisions or {}
    for held in sorted(decided.values(), key=lambda d: d.line_id):
        if held.action == MATCH:  # finance's matches hold their targets first
            _hold(result, index, held.line_id, held.targets)
    for line in lines if ordered else sorted(lines, key=lambda x: (x.booked, x.line_id)):
        decision = decided.get(line.line_id)
        if decision is None:
            _match_line(result, line, index)
        else:
            _decide(result, line, decision)
        if on_open is not None and line.line_id in result.open:
            on_open(line)
    return result


def _hold(result: Result, index: _Index, line_id: str, targets: Sequence[str]) -> None:
    for key in targets:
        result.covered[key] = line_id
        for member in index.runs[key].members if key in index.runs else ():
            result.covered[member] = line_id


def _cover(result: Result, index: _Index, line: BankLine, rule: str,
           targets: Sequence[str]) -> None:
    result.matches[line.line_id] = Match(line.line_id, rule, tuple(targets))
    _hold(result, index, line.line_id, targets)


def _decide(result: Result, line: BankLine, decision: Decision) -> None:
    if decision.action == MATCH:  # its targets are held already
        result.matches[line.line_id] = Match(line.line_id, "manual", tuple(decision.targets))
    elif decision.action == BANK_FEE:
        result.matches[line.line_id] = Match(line.line_id, "bank_fee", ())
    else:
        result.open[line.line_id] = Open(line.line_id, "unmatched_by_hand")


def _match_line(result: Result, line: BankLine, index: _Index) -> None:
    if line.direction == CREDIT:
        referenced = _referenced(line, index)
        if referenced:
            _by_reference(result, line, index, referenced)
            return
        groups = _credit_groups(result, line, index)
    else:
        groups = _debit_groups(result, line, index)
    _settle(result, line, index, groups)


def _referenced(line: BankLine, index: _Index) -> list[Expected]:
    found = {index.by_ref[t] for t in map(ref_key, _TOKEN.findall(line.reference))
             if t in index.by_ref}
    return sorted(found, key=lambda e: e.key)


def _by_reference(result: Result, line: BankLine, index: _Index,
                  referenced: list[Expected]) -> None:
    keys = tuple(e.key for e in referenced)
    if any(key in result.covered for key in keys):
        result.open[line.line_id] = Open(line.line_id, "already_matched", (keys,))
    elif sum(e.amount for e in referenced) != line.amount:
        result.open[line.line_id] = Open(line.line_id, "amount_differs", (keys,))
    else:
        _cover(result, index, line, "payment_ref", keys)


# A candidate group: (rule, keys), and whether each of its keys is still open.
Group = tuple[str, tuple[str, ...]]


def _credit_groups(result: Result, line: BankLine, index: _Index) -> list[tuple[Group, bool]]:
    groups: list[tuple[Group, bool]] = []
    for e in index.by_amount.get((FUNDING, line.counterparty, line.amount), ()):
        if line.counterparty and _within(line, e):
            groups.append((("amount_name", (e.key,)), e.key not in result.covered))
    for e in index.by_amount.get((RETURN, "", line.amount), ()):
        if _within(line, e) and (not line.counterparty or line.counterparty == e.name):
            groups.append((("returned_transfer", (e.key,)), e.key not in result.covered))
    if line.counterparty and not groups:
        groups += [(("amount_name_combined", keys), True)
                   for keys in _combined(result, line, index)]
    return groups


def _combined(result: Result, line: BankLine, index: _Index) -> list[tuple[str, ...]]:
    """The sets of the name's open fundings in the window that add up to the line."""
    open_ = [e for e in index.by_name.get(line.counterparty, ())
             if e.key not in result.covered and e.amount < line.amount and _within(line, e)]
    if len(open_) < 2 or len(open_) > COMBINED_MAX:
        return []
    found = []
    for size in range(2, len(open_) + 1):
        for subset in itertools.combinations(open_, size):
            if sum(e.amount for e in subset) == line.amount:
                found.append(tuple(e.key for e in subset))
    return found


def _debit_groups(result: Result, line: BankLine, index: _Index) -> list[tuple[Group, bool]]:
    runs: list[tuple[Group, bool]] = [
        (("run_total", (e.key,)), e.key not in result.covered)
        for e in index.by_amount.get((RUN, "", line.amount), ()) if _within(line, e)]
    if any(is_open for _, is_open in runs):
        return runs
    return runs + [(("payout", (e.key,)), e.key not in result.covered)
                   for e in index.by_amount.get((PAYOUT, "", line.amount), ())
                   if _within(line, e)]


def _settle(result: Result, line: BankLine, index: _Index,
            groups: list[tuple[Group, bool]]) -> None:
    open_groups = [group for group, is_open in groups if is_open]
    if len(open_groups) == 1:
        rule, keys = open_groups[0]
        _cover(result, index, line, rule, keys)
        return
    if open_groups:
        reason, listed = "ambiguous", open_groups
    elif groups:
        reason, listed = "already_matched", [group for group, _ in groups]
    else:
        reason, listed = "no_candidate", []
    result.open[line.line_id] = Open(line.line_id, reason, tuple(keys for _, keys in listed))
