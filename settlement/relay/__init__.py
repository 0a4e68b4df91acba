"""The outbox relay: settlement events from the event store to Kafka (SPEC §4).

The relay follows the notification log in order (eventsourcing's LISTEN/NOTIFY
subscription), publishes each escrow event as a CloudEvent on
`settlement.events` keyed by `job_id`, waits for every acknowledgement of a
batch, and only then stores the batch's last position in PostgreSQL.

Delivery is at-least-once: a crash between the acknowledgements and the stored
position publishes that batch again, under the same ids (`settlement-<position>`),
so consumers de-duplicate by id or position.

The embedded broker keeps its data in memory. After it lost its data, an
operator runs `settlement relay reset --from POSITION` and then the relay, which
recreates its topic and publishes again from POSITION. A relay that sees the
broker hand out offsets it had already handed out stops with `BrokerDataLoss`.

Modules: `service` (`Relay`), `follower` (the log as batches), `records` (event to
record, pure), `offsets` (data loss seen in acknowledgements, pure), `positions`
(the stored positions), `stats`, `cloudevents` (the wire format of settlement
events, SPEC §4). The commands are in `settlement/cli/relay.py`.
This file imports none of them, so the command line starts quickly.
"""
