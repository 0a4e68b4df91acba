"""What the input consumer publishes about records it could not apply: a dead
letter for a record it cannot read (to the topic's `.dlq`), a rejection for a
valid record that breaks a business rule (to `settlement.rejections`). Ids are
stable, so a record read again after a crash publishes the same ids again."""

from __future__ import annotations

import base64
from typing import Any

import orjson
from aiokafka.structs import ConsumerRecord

from settlement.application.app import Outcome
from settlement.ingest.decoding import BadRecord


def dead_letter(record: ConsumerRecord[bytes, bytes], error: BadRecord, now: str) -> bytes:
    return orjson.dumps({
        "original": base64.b64encode(record.value or b"").decode(),
        "topic": record.topic, "partition": record.partition, "offset": record.offset,
        "error": {"code": error.code, "message": error.message}, "received_at": now,
    })


def rejection(outcome: Outcome, record: ConsumerRecord[bytes, bytes], now: str) -> bytes:
    assert outcome.error is not None
    data: dict[str, Any] = {
        "causation_id": outcome.command.command_id, "code": outcome.error.code,
        "message": outcome.error.message, "topic": record.topic,
        "partition": record.partition, "offset": record.offset,
    }
    if job_id := outcome.command.data.get("job_id"):
        data["job_id"] = job_id
    return orjson.dumps({
        "specversion": "1.0", "type": "settlement.command_rejected",
        "id": f"rejection:{record.topic}:{record.partition}:{record.offset}",
        "source": "settlement/ingest", "subject": data.get("job_id"), "time": now,
        "datacontenttype": "application/json", "data": data,
    })
