"""Kafka adapters at the edge of the service (SPEC §3).

`topics` names every topic in one place, `decoding` turns a record value into a
validated CloudEvent (or a `BadRecord` with a stable code, for the dead-letter
topic) and then into a `settlement.core.commands.Command`, and `publisher` sends
marketplace events the way a marketplace would, validated by the same decoder.
"""
