"""Why an event cannot be projected. None is ever skipped silently: a read model
that quietly missed a money movement would be worse than one that stopped."""

from __future__ import annotations

from settlement.core.errors import SettlementError


class ProjectionError(SettlementError):
    code = "projection_failed"


class MalformedEvent(ProjectionError):
    """The CloudEvent lacks a field every settlement event carries (SPEC §4)."""

    code = "projection_malformed_event"


class UnknownEventType(ProjectionError):
    """No projection folds this event type (a newer producer than this projector)."""

    code = "projection_unknown_type"


class VersionGap(ProjectionError):
    """An event of a job arrived before one of its predecessors: events were lost."""

    code = "projection_version_gap"


class Unbalanced(ProjectionError):
    """An event's postings do not balance per currency (SPEC §6)."""

    code = "projection_unbalanced"


class InvariantBroken(ProjectionError):
    """A folded view breaks a ledger invariant (an escrow below zero, an unknown item)."""

    code = "projection_invariant"


class PositionConflict(ProjectionError):
    """Another consumer moved the stored Kafka position on: this batch was not stored."""

    code = "projection_position_conflict"
