"""`settlement reconcile import FILE`: a bank statement into the event store.

Two passes, each streaming (one record, or one CSV line, held at a time besides
a chunk of `LINES_PER_EVENT` lines). The first reads the file, checks all of it
and stores nothing: a file refused is refused whole, with the record or line
and the reason; its checked lines go to a spool file on disk, as canonical rows
(`store.statement_lines`). The second reads the spool and stores the lines not
stored before (looked up by their ids, staged by COPY), a chunk per
transaction: the rows by COPY into the lines table, keyed by the line's id, and
one event with their digest, so a line is stored once however often (or
however concurrently: the second writer fails on the key, nothing of its chunk
stored) its statement is imported; a crash between chunks leaves whole chunks,
and importing the file again stores the rest. The day balances go with the
first event stored, their ids in the command log.

Refusals before any record is read, in this order:

| refusal | code |
|---|---|
| the file is larger than `bytes_max` | `statement_too_large` |
| the format is neither Zengin (a first byte `1`) nor the CSV columns | `statement_format` |

then the file's own (`banking.statement`, `lines`), then:

| refusal | code |
|---|---|
| a Zengin section for an account other than the safeguarded one | `statement_wrong_account` |
| a line booked after `today` (JST) | `statement_line_in_future` |
| a day's closing balance other than the one stored for it | `statement_balance_conflict` |
| another import storing the same lines at once (import again) | `statement_import_concurrent` |
"""

from __future__ import annotations

import csv
import hashlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from eventsourcing.persistence import IntegrityError

from settlement.banking.accounts import ACCOUNT_TYPE_CODES
from settlement.banking.statement import Account, StatementError
from settlement.core.errors import ConfigError, Conflict, InvalidInput
from settlement.payouts.policy import PayoutPolicy
from settlement.reconcile.events import LINES_PER_EVENT, Statement
from settlement.reconcile.lines import (
    CSV,
    CURRENCY,
    ZENGIN,
    Balance,
    Identities,
    Line,
    account_key,
    balance_id,
    csv_lines,
    zengin_items,
)
from settlement.store.recorder import CommandRecord
from settlement.store.statement_lines import LineDigest, StatementRows, canonical, line_id_of

STATEMENT_BYTES_MAX = 256 * 1024 * 1024
_READ_BYTES = 1024 * 1024
BALANCE_COMMAND = "statement-balance:"


@dataclass(frozen=True)
class ImportReport:
    statement_id: str
    source: str
    lines: int          # in the file
    stored: int         # new lines stored now
    balances: int       # day balances in the file
    balances_stored: int
    events: int

    def to_json(self) -> dict[str, Any]:
        return dict(vars(self))


class _Hashing:
    """A binary stream that hashes what is read through it and refuses more than
    `bytes_max` bytes (a pipe has no size to check up front)."""

    def __init__(self, raw: BinaryIO, bytes_max: int) -> None:
        self.raw, self.bytes_max, self.read_bytes = raw, bytes_max, 0
        self.digest = hashlib.sha256()

    def read(self, size: int = -1, /) -> bytes:
        data = self.raw.read(size)
        self.read_bytes += len(data)
        if self.read_bytes > self.bytes_max:
            raise InvalidInput(f"the statement is larger than {self.bytes_max} bytes",
                               "statement_too_large")
        self.digest.update(data)
        return data

    def text_lines(self) -> Iterator[str]:
        """The stream as UTF-8 text lines (a byte 0x0A is never inside a character),
        a byte order mark dropped."""
        pending, first = b"", True
        while chunk := self.read(_READ_BYTES):
            *complete, pending = (pending + chunk).split(b"\n")
            for line in complete:
                yield _utf8(line + b"\n", first)
                first = False
        if pending:
            yield _utf8(pending, first)


def _utf8(raw: bytes, first: bool) -> str:
    text = raw.decode("utf-8")
    return text.removeprefix("\ufeff") if first else text


def safeguarded_account(policy: PayoutPolicy) -> Account:
    """The safeguarded account: the one payouts are sent from (the requester's, from
    the payout configuration, SPEC §11)."""
    requester = policy.requester
    if requester is None:
        raise ConfigError("the payout configuration names no requester account, so no "
                          "statement can be checked against the safeguarded account")
    return Account(requester.bank_code, requester.branch_code,
                   ACCOUNT_TYPE_CODES[requester.account_type], requester.account_number)


def detect_format(path: Path) -> str:
    with path.open("rb") as f:
        start = f.read(256)
    if start[:3] == b"103":
        return ZENGIN
    first = start.split(b"\n", 1)[0].decode("utf-8", "replace").strip().lower()
    if first.replace(" ", "").startswith("date,direction") or first[:4].isdigit():
        return CSV
    raise InvalidInput("the file is neither a Zengin 入出金明細 nor the CSV statement "
                       "(date, direction, amount, counterparty, reference)", "statement_format")


@dataclass
class _Items:
    """A file's items after the checks of the module doc."""

    source: str
    account: str
    today: date
    digest: str = ""

    def items(self, stream: _Hashing) -> Iterator[tuple[str, Line | Balance]]:
        """(id, line or balance) of every item of the file, checked."""
        identities = Identities(self.account)
        for item in self._read(stream):
            if isinstance(item, Account):
                if account_key(item) != self.account:
                    raise InvalidInput(f"the statement is for account {item.masked()}, not "
                                       f"the safeguarded account {self.account}",
                                       "statement_wrong_account")
            elif isinstance(item, Line):
                if item.booked > self.today:
                    raise StatementError(item.record, f"booked on {item.booked}, after today "
                                         f"({self.today})", "statement_line_in_future",
                                         unit="line" if self.source == CSV else "record")
                yield identities.line_id(item), item
            else:
                yield balance_id(self.account, item.day), item

    def _read(self, stream: _Hashing) -> Iterator[Account | Line | Balance]:
        if self.source == ZENGIN:
            yield from zengin_items(stream)
            return
        try:
            yield from csv_lines(stream.text_lines())
        except UnicodeDecodeError:
            raise InvalidInput("the CSV statement is not UTF-8", "statement_encoding") from None
        except csv.Error as exc:
            raise InvalidInput(f"CSV: {exc}", "statement_field_format") from None


def _balance_data(key: str, balance: Balance) -> dict[str, Any]:
    return {"balance_id": key, "day": balance.day.isoformat(),
            "opening": {"amount": str(balance.opening), "currency": CURRENCY},
            "closing": {"amount": str(balance.closing), "currency": CURRENCY}}


def import_statement(app: Any, path: Path, account: Account, today: date, now: datetime,
                     bytes_max: int = STATEMENT_BYTES_MAX,
                     lines_per_event: int = LINES_PER_EVENT) -> ImportReport:
    """Check `path` whole, then store what is new (see the module doc); `app` is the
    settlement application, `account` the safeguarded account, `today` the JST date.

    The file is read once: its lines, checked, go to a spool file (one canonical row
    each, `store.statement_lines`), which the storing pass reads back; its day
    balances (one per section) are kept in memory."""
    if path.stat().st_size > bytes_max:
        raise InvalidInput(f"the statement is larger than {bytes_max} bytes",
                           "statement_too_large")
    plan = _Items(detect_format(path), account_key(account), today)
    lines = 0
    balances: dict[str, Balance] = {}
    with path.open("rb") as raw, tempfile.TemporaryFile("w+", encoding="utf-8",
                                                        newline="\n") as spool:
        stream = _Hashing(raw, bytes_max)
        for key, item in plan.items(stream):  # check everything, store nothing
            if isinstance(item, Line):
                lines += 1
                spool.write(canonical(key, item.booked, item.direction, item.amount,
                                      item.counterparty, item.reference, item.kind,
                                      item.inquiry_number, item.record))
                spool.write("\n")
            else:
                balances.setdefault(key, item)
        plan.digest = stream.digest.hexdigest()
        pending = _new_balances(app, balances)
        balances_stored = len(pending)
        spool.seek(0)
        stored = events = 0
        for chunk in _chunks(spool, lines_per_event):
            known = app.store.select_known_lines([line_id_of(row) for row in chunk])
            rows = [row for row in chunk if line_id_of(row) not in known]
            if rows:
                _store(app, plan, rows, pending, now)
                stored, events, pending = stored + len(rows), events + 1, []
        if pending:  # no new line to carry them
            _store(app, plan, [], pending, now)
            events += 1
    return ImportReport(plan.digest, plan.source, lines, stored, len(balances),
                        balances_stored, events)


def _chunks(spool: TextIO, size: int) -> Iterator[list[str]]:
    chunk: list[str] = []
    for row in spool:
        chunk.append(row[:-1])
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _new_balances(app: Any, balances: dict[str, Balance]) -> list[tuple[str, Balance]]:
    """The day balances not stored before, in day order; a day stored with another
    closing balance refuses the file."""
    known = app.store.select_commands([BALANCE_COMMAND + key for key in balances])
    new = []
    for key, balance in sorted(balances.items()):
        prior = known.get(BALANCE_COMMAND + key)
        if prior is None:
            new.append((key, balance))
        elif prior.digest != str(balance.closing):
            raise InvalidInput(f"the closing balance of {key} is stated as {balance.closing}, "
                               f"the one stored is {prior.digest}",
                               "statement_balance_conflict")
    return new


def _store(app: Any, plan: _Items, rows: list[str], balances: list[tuple[str, Balance]],
           now: datetime) -> None:
    """One event with `rows` (canonical, new) stored beside it and `balances` (new)."""
    digest = LineDigest.of(rows)
    statement = Statement.imported(plan.digest, plan.source, plan.account, digest,
                                   [_balance_data(key, b) for key, b in balances], now)
    records = [CommandRecord(BALANCE_COMMAND + key, str(b.closing), None, "applied")
               for key, b in balances]
    try:
        app.save(statement, commands=records,
                 statement_lines=StatementRows(digest.first_line_id, rows))
    except IntegrityError:
        raise Conflict("another import stored some of these lines at the same time: nothing "
                       "of this chunk was stored; import the file again to store the rest",
                       "statement_import_concurrent") from None
