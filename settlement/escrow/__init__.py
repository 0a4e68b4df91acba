"""The escrow of one marketplace job (all three formats and disputes): the aggregate,
its commands per format and its events. Pure: no I/O, no clock.

Stored events name their classes by topic (`module:qualname`). Events stored
before the restructure (main at 88ff964) name the modules of the time,
`settlement.aggregates.events` and `settlement.aggregates.escrow`; registering
those module topics keeps every stored event readable
(tests/integration/test_stored_topics.py loads rows written by that code).
"""

from eventsourcing.utils import register_topic

from settlement.escrow import aggregate, events
from settlement.escrow.aggregate import Escrow, escrow_id

register_topic("settlement.aggregates.events", events)
register_topic("settlement.aggregates.escrow", aggregate)

__all__ = ["Escrow", "escrow_id"]
