"""The settlement application: escrows in an `eventsourcing` event store on PostgreSQL.

`handle_batch` applies marketplace commands in one transaction together with
their command-log records (idempotency) and, for Kafka input, the consumed
positions: either all of it is stored or none of it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.application import (
    AggregateNotFoundError,
    Application,
    Cache,
    LRUCache,
    ProcessingEvent,
)
from eventsourcing.domain import Aggregate, DomainEventProtocol
from eventsourcing.persistence import IntegrityError, JSONTranscoder
from eventsourcing.utils import get_topic

from settlement.application import handlers
from settlement.application.parties import (
    Parties,
    apply_party_command,
    load_parties,
    party_ids_of,
)
from settlement.core.commands import Command
from settlement.core.errors import Conflict, SettlementError
from settlement.core.fees import DEFAULT_FEE_PLANS, FeePlan, load_fee_plans
from settlement.escrow import Escrow, escrow_id
from settlement.parties import PARTY_TYPES, Party
from settlement.payouts import PAYOUT_RESULT_TYPES, RETURNED, PartyPayouts, apply_payout_result
from settlement.store import transcodings
from settlement.store.recorder import CommandRecord, PositionUpdate, SettlementRecorder
from settlement.store.repository import preload
from settlement.tax.remittance import ClientWithholding
from settlement.tax.results import apply_remittance_result, is_remittance_result

APPLIED, DUPLICATE, REJECTED = "applied", "duplicate", "rejected"
BATCH_COMMANDS_MAX = 5_000


class ConcurrentModification(Conflict):
    """Another writer stored events for the same escrow (or the same command) first."""

    code = "concurrent_modification"


@dataclass(frozen=True)
class Outcome:
    command: Command
    status: str
    error: SettlementError | None = None
    events: list[DomainEventProtocol[UUID]] = field(default_factory=list)


@dataclass
class Batch:
    """Decided commands, not yet stored."""

    outcomes: list[Outcome] = field(default_factory=list)
    events: list[DomainEventProtocol[UUID]] = field(default_factory=list)
    records: list[CommandRecord] = field(default_factory=list)
    escrows: dict[str, Escrow | None] = field(default_factory=dict)
    parties: dict[UUID, PartyPayouts] = field(default_factory=dict)  # payout streams
    party_records: dict[str, Party | None] = field(default_factory=dict)  # by party id
    remittances: dict[UUID, ClientWithholding] = field(default_factory=dict)  # by stream


class SettlementApplication(Application[UUID]):
    name = "settlement"
    log_section_size = 1000
    env = {
        "APPLICATION_RECORDER_TOPIC": get_topic(SettlementRecorder),
        "TRANSCODER_TOPIC": get_topic(transcodings.OrjsonTranscoder),
        "AGGREGATE_CACHE_MAXSIZE": "10000",
    }

    def __init__(self, env: Mapping[str, str] | None = None,
                 plans: Mapping[str, FeePlan] | None = None) -> None:
        super().__init__(env)
        self.plans = plans if plans is not None else load_fee_plans(DEFAULT_FEE_PLANS)

    @property
    def store(self) -> SettlementRecorder:
        assert isinstance(self.recorder, SettlementRecorder)
        return self.recorder

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcodings.register(transcoder)

    def escrow(self, job_id: str) -> Escrow | None:
        try:
            aggregate: Aggregate = self.repository.get(escrow_id(job_id))
        except AggregateNotFoundError:
            return None
        assert isinstance(aggregate, Escrow)
        return aggregate

    def handle(self, command: Command) -> Outcome:
        return self.handle_batch([command])[0]

    def handle_batch(self, commands: Sequence[Command],
                     positions: Sequence[PositionUpdate] = ()) -> list[Outcome]:
        """Apply `commands` in order and store everything in one transaction.

        Raises `ConcurrentModification` if another writer got there first; then
        nothing was stored and the whole batch may be retried.
        """
        batch = self.prepare(commands)
        self.commit(batch, positions)
        return batch.outcomes

    def prepare(self, commands: Sequence[Command], ahead: Batch | None = None) -> Batch:
        """Decide every command (nothing is stored yet); `commit` stores the batch.

        Between the two, the caller may publish what must not be lost, such as
        rejections: if the process dies before the commit, the input is read again.

        `ahead` is a batch decided before this one and not committed yet (a caller
        that pipelines commits them in order): this batch continues from its escrows,
        payout streams and command records. If `ahead` fails to commit, this batch
        must be abandoned too.
        """
        if len(commands) > BATCH_COMMANDS_MAX:
            raise ValueError(f"at most {BATCH_COMMANDS_MAX} commands per batch")
        seen = self.store.select_commands([c.command_id for c in commands])
        batch = Batch()
        if ahead is not None:
            seen.update((r.command_id, r) for r in ahead.records)
            batch.parties.update(ahead.parties)
            batch.party_records.update(ahead.party_records)
            batch.remittances.update(ahead.remittances)
            batch.escrows.update(_carried(commands, ahead.escrows))
        batch.escrows.update(self._absent_escrows(
            (c for c in commands if c.command_id not in seen), known=batch.escrows))
        party_ids = party_ids_of(c for c in commands
                                 if c.type in PARTY_TYPES and c.command_id not in seen)
        batch.party_records.update(load_parties(self, party_ids - batch.party_records.keys()))
        for command in commands:
            prior = seen.get(command.command_id)
            if prior is not None:
                batch.outcomes.append(self._repeat(command, prior))
                continue
            if command.type in PAYOUT_RESULT_TYPES:
                outcome, job_id = self._apply_payout_result(command, batch), None
            elif command.type in PARTY_TYPES:
                outcome, job_id = self._apply_party(command, batch.party_records), None
            else:
                outcome, job_id = self._apply(command, batch.escrows)
            batch.outcomes.append(outcome)
            batch.events += outcome.events
            status = APPLIED if outcome.error is None else f"{REJECTED}:{outcome.error.code}"
            record = CommandRecord(command.command_id, command.digest, job_id, status)
            batch.records.append(record)
            seen[command.command_id] = record
        return batch

    def _absent_escrows(self, commands: Iterable[Command],
                        known: Iterable[str] = ()) -> dict[str, None]:
        """Read the escrows of `commands` that are not cached (nor `known`) with one
        query; the jobs that have no escrow yet map to None (their openers need no
        more reads)."""
        job_ids = set()
        for command in commands:
            with contextlib.suppress(SettlementError):  # `_apply` rejects a bad job id
                job_ids.add(command.job_id)
        job_ids.difference_update(known)
        ids = {escrow_id(job_id): job_id for job_id in job_ids}
        return {ids[i]: None for i in preload(self.repository, self.store, ids.keys())}

    def commit(self, batch: Batch, positions: Sequence[PositionUpdate] = ()) -> None:
        try:
            self._record_batch(batch, positions)
        except IntegrityError as exc:
            self._evict(batch.escrows)
            raise ConcurrentModification(str(exc)) from exc
        except Exception:
            self._evict(batch.escrows)
            raise

    def _apply(self, command: Command,
               working: dict[str, Escrow | None]) -> tuple[Outcome, str | None]:
        job_id = None
        try:
            job_id = command.job_id
            if job_id not in working:
                working[job_id] = self.escrow(job_id)
            escrow = handlers.apply(working[job_id], command, self.plans)
        except SettlementError as error:
            # Commands validate before they emit: a rejected one changed nothing.
            # Should one ever emit and then fail, its half-done escrow must not be stored.
            failed = working.get(job_id) if job_id else None
            if failed is not None and failed.pending_events:
                raise RuntimeError(f"{command.command_id} failed after emitting events") from error
            return Outcome(command, REJECTED, error), job_id
        working[job_id] = escrow
        return Outcome(command, APPLIED, events=list(escrow.collect_events())), job_id

    def _apply_payout_result(self, command: Command, batch: Batch) -> Outcome:
        if is_remittance_result(command):  # a withholding remittance (`settlement.tax`)
            try:
                stream = apply_remittance_result(self.repository, command, batch.remittances)
            except SettlementError as error:  # validated before emitting: nothing changed
                return Outcome(command, REJECTED, error)
            return Outcome(command, APPLIED, events=list(stream.collect_events()))
        try:
            party = apply_payout_result(self.repository, command, batch.parties)
        except SettlementError as error:  # validated before emitting: nothing changed
            return Outcome(command, REJECTED, error)
        events: list[DomainEventProtocol[UUID]] = list(party.collect_events())
        if command.type == RETURNED:  # the party is held until a new bank account
            records = batch.party_records
            if party.party_id not in records:
                records.update(load_parties(self, [party.party_id]))
            record = records[party.party_id]
            if record is not None:
                record.transfer_returned(command.data["payout_id"],
                                         causation_id=command.command_id, at=command.time)
                events += record.collect_events()
        return Outcome(command, APPLIED, events=events)

    def _apply_party(self, command: Command, parties: Parties) -> Outcome:
        try:
            party = apply_party_command(self, command, parties)
        except SettlementError as error:  # validated before emitting: nothing changed
            return Outcome(command, REJECTED, error)
        return Outcome(command, APPLIED, events=list(party.collect_events()))

    @staticmethod
    def _repeat(command: Command, prior: CommandRecord) -> Outcome:
        if prior.digest == command.digest:
            return Outcome(command, DUPLICATE)
        error = Conflict(f"event id {command.command_id} was seen with other content", "conflict")
        return Outcome(command, REJECTED, error)

    def _record_batch(self, batch: Batch, positions: Sequence[PositionUpdate]) -> None:
        """`save()` without its per-object protocol checks (a tenth of a batch, profiled):
        the events are ours and already in command order."""
        processing = ProcessingEvent[UUID]()
        processing.events = list(batch.events)
        changed: list[Aggregate] = [e for e in batch.escrows.values() if e is not None]
        changed += [p for p in batch.party_records.values() if p is not None]
        processing.aggregates = {a.id: a for a in [*changed, *batch.parties.values(),
                                                   *batch.remittances.values()]}
        processing.saved_kwargs = {"commands": batch.records, "positions": positions}
        self._record(processing)

    def reset_cache(self) -> None:
        """Drop every cached escrow (after a rebalance nothing cached can be trusted)."""
        if self.repository.cache is not None:
            maxsize = int(self.env.get(self.AGGREGATE_CACHE_MAXSIZE) or 0)
            self.repository.cache = LRUCache(maxsize) if maxsize else Cache()

    def abandon(self, batch: Batch) -> None:
        """Forget a prepared batch that will not be committed."""
        self._evict(batch.escrows)

    def _evict(self, working: Mapping[str, Any]) -> None:
        cache = self.repository.cache
        if cache is not None:
            for job_id in working:
                with contextlib.suppress(KeyError):
                    cache.get(escrow_id(job_id), evict=True)


def _carried(commands: Iterable[Command],
             escrows: Mapping[str, Escrow | None]) -> dict[str, Escrow | None]:
    """The escrows (or None: still absent) of an uncommitted earlier batch that
    `commands` refer to."""
    carried = {}
    for command in commands:
        job_id = command.data.get("job_id")
        if isinstance(job_id, str) and job_id in escrows:
            carried[job_id] = escrows[job_id]
    return carried
