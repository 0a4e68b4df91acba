"""Matching bank statement lines to the ledger's cash movements (SPEC §13):
deterministic, every match with its rule, ambiguity never guessed.

What the ledger expects the bank to show (`Expected`, built by the caller):
a credit per funding (its `payment_ref`, the client's name kana), a credit per
returned transfer (the payee's name), a debit per payout run's Zengin file
total (on its payment day, covering the run's payouts), a debit per settled
payout and a debit per confirmed withholding remittance (the tax paid from the
safeguarded account). Lines are taken in (booked, line_id) order; each expected movement is
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
| `remittance` | no run, and exactly one open confirmed withholding remittance of its |
| | amount in the window (a payout of the same amount in it too: `ambiguous`) |

The window is `WINDOW_BUSINESS_DAYS` bank business days either side of the
ledger's date. A line with candidates from more than one of these (or more than one candidate
of one) is left open as `ambiguous` with every candidate listed; a line whose
only candidates are already matched is open as `already_matched` (a bank line
twice, or a ledger entry twice); a line with none is `no_candidate`.

`Matcher` applies the rules as a stream: the lines in (booked, line_id) order
and the ledger's movements in (day, key) order, each read once, with only the
movements whose window holds the current day in memory (besides every
funding's reference, the runs and what is matched, all compact), every decision
written to a `Sink` as it is made. `match` is the same with everything in
memory.

Pure: no I/O, no clock; dates are the JST dates the caller gives.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import re
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

from settlement.banking.calendar import add_business_days
from settlement.projections.model.fastinit import fast_init  # a million of each: built fast

CREDIT, DEBIT = "credit", "debit"
FUNDING, RETURN, PAYOUT, RUN = "funding", "return", "payout", "run"
REMITTANCE = "remittance"  # a withholding remittance paid from the safeguarded account
WINDOW_BUSINESS_DAYS = 3
COMBINED_MAX = 12  # fundings of one name tried in sets: 2^12 sets at most
MATCH, UNMATCH, BANK_FEE = "match", "unmatch", "bank_fee"
_TOKEN = re.compile(r"[^\s,;]+")


@fast_init
@dataclass(frozen=True, slots=True)
class BankLine:
    line_id: str
    booked: date
    direction: str
    amount: int
    counterparty: str  # `lines.counterparty_key` form
    reference: str


@fast_init
@dataclass(frozen=True, slots=True)
class Expected:
    """A cash movement the ledger expects the bank to show."""

    key: str           # "funding:<position>", "return:<payout_id>", "payout:<id>", "run:<id>",
    #                    "remittance:<remittance_id>"
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


@fast_init
@dataclass(frozen=True, slots=True)
class Match:
    line_id: str
    rule: str
    targets: tuple[str, ...]


@fast_init
@dataclass(frozen=True, slots=True)
class Open:
    line_id: str
    reason: str
    candidates: tuple[tuple[str, ...], ...] = ()


class Sink(Protocol):
    """Where the matching writes what it decides, line by line."""

    def matched(self, match: Match) -> None: ...

    def opened(self, line: BankLine, found: Open) -> None: ...

    def covered(self, key: str, line_id: str) -> None: ...


@dataclass
class Result:
    """Everything decided, in memory (`match`; a statement of a million lines writes
    to a `Sink` of its own instead, `results.StoredResults`)."""

    matches: dict[str, Match] = field(default_factory=dict)
    open: dict[str, Open] = field(default_factory=dict)
    covered: dict[str, str] = field(default_factory=dict)  # expected key → line id

    def matched(self, match: Match) -> None:
        self.matches[match.line_id] = match

    def opened(self, line: BankLine, found: Open) -> None:
        self.open[line.line_id] = found

    def covered_by(self, key: str, line_id: str) -> None:
        self.covered[key] = line_id

    def unmatched_expected(self, expected: Iterable[Expected]) -> list[Expected]:
        """The ledger's movements no line covers (a run counts through its payouts)."""
        return [e for e in expected if e.kind != RUN and e.key not in self.covered]

    # What the report and the API ask (`report.Results`).
    def match_of(self, line_id: str) -> Match | None:
        return self.matches.get(line_id)

    def open_of(self, line_id: str) -> Open | None:
        return self.open.get(line_id)

    def holder(self, key: str) -> str | None:
        return self.covered.get(key)

    def matched_count(self) -> int:
        return len(self.matches)


class _ResultSink:
    """`Result` as a `Sink` (its `covered` is a dict, not a method)."""

    def __init__(self, result: Result, on_open: Callable[[BankLine], None] | None) -> None:
        self.result, self.on_open = result, on_open

    def matched(self, match: Match) -> None:
        self.result.matched(match)

    def opened(self, line: BankLine, found: Open) -> None:
        self.result.opened(line, found)
        if self.on_open is not None:
            self.on_open(line)

    def covered(self, key: str, line_id: str) -> None:
        self.result.covered_by(key, line_id)


@functools.lru_cache(maxsize=4_096)
def window(day: date) -> tuple[date, date]:
    return (add_business_days(day, -WINDOW_BUSINESS_DAYS),
            add_business_days(day, WINDOW_BUSINESS_DAYS))


def _within(line: BankLine, expected: Expected) -> bool:
    low, high = window(expected.day)
    return low <= line.booked <= high


def ref_key(text: str) -> str:
    return text.upper()


_FUNDING_KEY = "funding:"
_AMOUNT_BITS = 41  # an amount below 2^41 yen (SPEC §3's maximum is 10^12)


class References:
    """Every funding's `payment_ref` (upper-cased) → its key and amount, for the whole
    ledger (a line may name a funding of any day): one int per reference where the
    key is `funding:<position>` (position and amount packed), the first by key when
    two fundings share one."""

    def __init__(self) -> None:
        self._found: dict[str, int | tuple[str, int]] = {}

    def add(self, e: Expected) -> None:
        if e.kind == FUNDING and e.ref:
            self.add_funding(e.key, e.ref, e.amount)

    def add_funding(self, key: str, ref: str, amount: int) -> None:
        ref = ref if ref.isupper() else ref_key(ref)  # one string, not two
        known = self.get(ref)
        if known is None or key < known[0]:
            self._found[ref] = _packed(key, amount)

    def get(self, ref: str) -> tuple[str, int] | None:
        value = self._found.get(ref)
        if value is None or isinstance(value, tuple):
            return value
        return f"{_FUNDING_KEY}{value >> _AMOUNT_BITS}", value & ((1 << _AMOUNT_BITS) - 1)


def _packed(key: str, amount: int) -> int | tuple[str, int]:
    position = _position(key)
    if position is not None and 0 <= amount < 1 << _AMOUNT_BITS:
        return position << _AMOUNT_BITS | amount
    return key, amount


class _Covered:
    """The expected keys matched so far: fundings' positions as bits, the rest as keys."""

    def __init__(self) -> None:
        self._bits = bytearray()
        self._keys: set[str] = set()

    def __contains__(self, key: str) -> bool:
        # `_position` inlined: asked once or twice per line.
        if key[:8] == _FUNDING_KEY:
            number = key[8:]
            if number.isdecimal() and number[0] != "0":
                position = int(number)
                index = position >> 3
                return index < len(self._bits) and bool(self._bits[index] >> (position & 7) & 1)
        return key in self._keys

    def add(self, key: str) -> None:
        position = _position(key)
        if position is None:
            self._keys.add(key)
            return
        index = position >> 3
        if index >= len(self._bits):
            self._bits.extend(bytes(max(index + 1 - len(self._bits), len(self._bits))))
        self._bits[index] |= 1 << (position & 7)


def _position(key: str) -> int | None:
    """The position of a funding's key (`funding:<position>`, as the ledger names it)."""
    if key[:8] != _FUNDING_KEY:
        return None
    number = key[8:]
    return int(number) if number.isdecimal() and number[0] != "0" else None


class _Window:
    """The expected movements a line of the current day could match (their window
    holds it), by what the rules look them up by, each list in key order. A
    funding of no known name is found by its reference only (the name rules need
    one)."""

    def __init__(self) -> None:
        self.by_name: dict[str, list[Expected]] = defaultdict(list)
        self.by_amount: dict[tuple[str, str, int], list[Expected]] = defaultdict(list)
        self.held: deque[Expected] = deque()  # in day order

    def add(self, e: Expected) -> None:
        self.held.append(e)
        if e.kind == FUNDING and e.name:
            bisect.insort(self.by_name[e.name], e, key=_key)
        if e.kind != FUNDING or e.name:
            bisect.insort(self.by_amount[_amount_key(e)], e, key=_key)

    def evict(self, before: date) -> Iterator[Expected]:
        """Take out the movements whose window ends before `before`."""
        while self.held and window(self.held[0].day)[1] < before:
            e = self.held.popleft()
            if e.kind == FUNDING and e.name:
                _remove(self.by_name, e.name, e)
            if e.kind != FUNDING or e.name:
                _remove(self.by_amount, _amount_key(e), e)
            yield e


def _amount_key(e: Expected) -> tuple[str, str, int]:
    return e.kind, e.name if e.kind == FUNDING else "", e.amount


def _remove(groups: dict[Any, list[Expected]], key: Any, e: Expected) -> None:
    group = groups[key]
    group.remove(e)
    if not group:
        del groups[key]


def _key(e: Expected) -> str:
    return e.key


def match(lines: Iterable[BankLine], expected: Iterable[Expected],
          decisions: Mapping[str, Decision] | None = None, *, ordered: bool = False,
          on_open: Callable[[BankLine], None] | None = None) -> Result:
    """Match every line (see the module doc), everything in memory. `ordered`: the
    lines come in (booked, line_id) order already; `on_open` is told of each line
    left open, as it is."""
    expected = list(expected)
    references = References()
    for e in expected:
        references.add(e)
    runs = {e.key: e for e in expected if e.kind == RUN}
    result = Result()
    matcher = Matcher(references, runs, decisions or {}, _ResultSink(result, on_open))
    matcher.run(lines if ordered else sorted(lines, key=lambda x: (x.booked, x.line_id)),
                sorted(expected, key=lambda e: (e.day, e.key)))
    return result


class Matcher:
    """The rules over lines in (booked, line_id) order and the ledger's movements in
    (day, key) order, both read once: only the movements whose window holds the
    current line's day are kept (`_Window`), besides every funding's reference
    (`References`), the runs and what is matched (`_Covered`); every decision goes
    to `sink` as it is made."""

    def __init__(self, references: References, runs: Mapping[str, Expected],
                 decisions: Mapping[str, Decision], sink: Sink) -> None:
        self.references, self.runs, self.decisions = references, runs, decisions
        self.sink = sink
        self.covered = _Covered()
        self.window = _Window()
        for held in sorted(decisions.values(), key=lambda d: d.line_id):
            if held.action == MATCH:  # finance's matches hold their targets first
                self._hold(held.line_id, held.targets)

    def run(self, lines: Iterable[BankLine], expected: Iterable[Expected]) -> list[Expected]:
        """Match every line (`expected` in day order); the movements no line covers
        (runs aside), in (day, key) order."""
        upcoming = iter(expected)
        following = next(upcoming, None)
        passed: list[Expected] = []  # out of the window: covered later only by reference
        day: date | None = None
        for line in lines:
            if line.booked != day:  # the window moves with the day
                day = line.booked
                while following is not None and window(following.day)[0] <= day:
                    self.window.add(following)
                    following = next(upcoming, None)
                passed += (e for e in self.window.evict(day) if e.key not in self.covered)
            decision = self.decisions.get(line.line_id)
            if decision is None:
                self._match_line(line)
            else:
                self._decide(line, decision)
        rest = [*passed, *self.window.held]
        if following is not None:
            rest += [following, *upcoming]
        return sorted((e for e in rest if e.kind != RUN and e.key not in self.covered),
                      key=lambda e: (e.day, e.key))

    def _hold(self, line_id: str, targets: Sequence[str]) -> None:
        for key in targets:
            self._cover_key(key, line_id)
            for member in self.runs[key].members if key in self.runs else ():
                self._cover_key(member, line_id)

    def _cover_key(self, key: str, line_id: str) -> None:
        self.covered.add(key)
        self.sink.covered(key, line_id)

    def _cover(self, line: BankLine, rule: str, targets: Sequence[str]) -> None:
        self.sink.matched(Match(line.line_id, rule, tuple(targets)))
        self._hold(line.line_id, targets)

    def _open(self, line: BankLine, reason: str,
              candidates: tuple[tuple[str, ...], ...] = ()) -> None:
        self.sink.opened(line, Open(line.line_id, reason, candidates))

    def _decide(self, line: BankLine, decision: Decision) -> None:
        if decision.action == MATCH:  # its targets are held already
            self.sink.matched(Match(line.line_id, "manual", tuple(decision.targets)))
        elif decision.action == BANK_FEE:
            self.sink.matched(Match(line.line_id, "bank_fee", ()))
        else:
            self._open(line, "unmatched_by_hand")

    def _match_line(self, line: BankLine) -> None:
        if line.direction == CREDIT:
            referenced = self._referenced(line)
            if referenced:
                self._by_reference(line, referenced)
                return
            groups = self._credit_groups(line)
        else:
            groups = self._debit_groups(line)
        self._settle(line, groups)

    def _referenced(self, line: BankLine) -> list[tuple[str, int]]:
        found = {known for t in map(ref_key, _TOKEN.findall(line.reference))
                 if (known := self.references.get(t)) is not None}
        return sorted(found)

    def _by_reference(self, line: BankLine, referenced: list[tuple[str, int]]) -> None:
        keys = tuple(key for key, _ in referenced)
        if any(key in self.covered for key in keys):
            self._open(line, "already_matched", (keys,))
        elif sum(amount for _, amount in referenced) != line.amount:
            self._open(line, "amount_differs", (keys,))
        else:
            self._cover(line, "payment_ref", keys)

    def _credit_groups(self, line: BankLine) -> list[tuple[Group, bool]]:
        by_amount, covered = self.window.by_amount, self.covered
        groups: list[tuple[Group, bool]] = []
        for e in by_amount.get((FUNDING, line.counterparty, line.amount), ()):
            if line.counterparty and _within(line, e):
                groups.append((("amount_name", (e.key,)), e.key not in covered))
        for e in by_amount.get((RETURN, "", line.amount), ()):
            if _within(line, e) and (not line.counterparty or line.counterparty == e.name):
                groups.append((("returned_transfer", (e.key,)), e.key not in covered))
        if line.counterparty and not groups:
            groups += [(("amount_name_combined", keys), True) for keys in self._combined(line)]
        return groups

    def _combined(self, line: BankLine) -> list[tuple[str, ...]]:
        """The sets of the name's open fundings in the window that add up to the line."""
        open_ = [e for e in self.window.by_name.get(line.counterparty, ())
                 if e.key not in self.covered and e.amount < line.amount and _within(line, e)]
        if len(open_) < 2 or len(open_) > COMBINED_MAX:
            return []
        found = []
        for size in range(2, len(open_) + 1):
            for subset in itertools.combinations(open_, size):
                if sum(e.amount for e in subset) == line.amount:
                    found.append(tuple(e.key for e in subset))
        return found

    def _debit_groups(self, line: BankLine) -> list[tuple[Group, bool]]:
        by_amount, covered = self.window.by_amount, self.covered
        runs: list[tuple[Group, bool]] = [
            (("run_total", (e.key,)), e.key not in covered)
            for e in by_amount.get((RUN, "", line.amount), ()) if _within(line, e)]
        if any(is_open for _, is_open in runs):
            return runs
        return runs + [((kind, (e.key,)), e.key not in covered)
                       for kind in (PAYOUT, REMITTANCE)
                       for e in by_amount.get((kind, "", line.amount), ())
                       if _within(line, e)]

    def _settle(self, line: BankLine, groups: list[tuple[Group, bool]]) -> None:
        open_groups = [group for group, is_open in groups if is_open]
        if len(open_groups) == 1:
            rule, keys = open_groups[0]
            self._cover(line, rule, keys)
            return
        if open_groups:
            reason, listed = "ambiguous", open_groups
        elif groups:
            reason, listed = "already_matched", [group for group, _ in groups]
        else:
            reason, listed = "no_candidate", []
        self._open(line, reason, tuple(keys for _, keys in listed))


# A candidate group: (rule, keys), and whether each of its keys is still open.
Group = tuple[str, tuple[str, ...]]
