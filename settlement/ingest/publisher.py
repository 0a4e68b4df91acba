"""Publish marketplace events the way a marketplace does (SPEC §3): the demo, the
tests and load runs use it. Every event is validated by the service's own decoder
before it is sent, so what goes out is exactly what the consumer accepts.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from aiokafka import AIOKafkaProducer

from settlement.infra.topics import Topics
from settlement.ingest.decoding import BadRecord, decode, topic_kind_of

# A send whose delivery nobody awaited yet; flushed once this many pile up, so a
# long publishing run holds a bounded number of futures.
PENDING_SENDS_MAX = 10_000
# What each input topic is keyed by (SPEC §3, §10).
KEY_FIELDS = {"jobs": "job_id", "payouts": "payout_id", "parties": "party_id"}
# Room for the largest record the decoder accepts (256 KiB) with the batch header.
MAX_REQUEST_BYTES = 1024 * 1024


def encode_event(event: Mapping[str, Any]) -> bytes:
    """The record value of `event`: compact UTF-8 JSON. Values JSON cannot carry
    (a Decimal, a datetime) are refused rather than turned into something else."""
    try:
        text = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise BadRecord("invalid_json", f"the event is not JSON: {exc}") from None
    return text.encode("utf-8", "surrogatepass")


def _key_bytes(key: str | None) -> bytes | None:
    return None if key is None else key.encode("utf-8")


class MarketplacePublisher:
    """An async producer of marketplace events, keyed by job (payout events by payout,
    party events by party).

    `publish` queues a record; `flush` (and leaving the context) waits until every
    queued record is acknowledged by all in-sync replicas and raises the first
    delivery error.
    """

    def __init__(
        self,
        bootstrap: str,
        topics: Topics,
        *,
        client_id: str = "marketplace-publisher",
        linger_ms: int = 5,
        max_batch_size: int = 64 * 1024,
        request_timeout_ms: int = 10_000,
    ) -> None:
        self.topics = topics
        self._pending: list[asyncio.Future[Any]] = []
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            client_id=client_id,
            acks="all",
            # The embedded broker supports no idempotent producer; each partition has one
            # batch in flight at a time, so a retry cannot reorder a job's events.
            enable_idempotence=False,
            linger_ms=linger_ms,
            max_batch_size=max_batch_size,
            max_request_size=MAX_REQUEST_BYTES,
            request_timeout_ms=request_timeout_ms,
            retry_backoff_ms=100,
            compression_type=None,
            key_serializer=_key_bytes,
            value_serializer=None,
        )

    async def __aenter__(self) -> MarketplacePublisher:
        await self.start()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if error is None:
                await self.flush()
        finally:
            await self.stop()

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def publish(self, event: Mapping[str, Any]) -> None:
        """Queue `event` on its topic, keyed by `data.job_id` (`data.payout_id`,
        `data.party_id`).

        Raises BadRecord, and sends nothing, when the service would refuse the event.
        """
        value = encode_event(event)
        kind = topic_kind_of(str(event.get("type", "")))
        decoded = decode(value, kind)
        key = decoded.data[KEY_FIELDS[kind]]
        await self._send(self.topics.input(kind), key, value)

    async def publish_raw(self, topic: str, key: str | None, value: bytes | None) -> None:
        """Queue `value` as it is, valid or not: for tests of what bad records do."""
        await self._send(topic, key, value)

    async def flush(self) -> None:
        """Wait for every queued record; raise the first delivery error."""
        pending, self._pending = self._pending, []
        await self._producer.flush()
        for outcome in await asyncio.gather(*pending, return_exceptions=True):
            if isinstance(outcome, BaseException):
                raise outcome

    async def _send(self, topic: str, key: str | None, value: bytes | None) -> None:
        self._pending.append(await self._producer.send(topic, value=value, key=key))
        if len(self._pending) >= PENDING_SENDS_MAX:
            await self.flush()
