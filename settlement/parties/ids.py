"""Deterministic party stream ids: `uuid5` of the marketplace's `party_id`, so
registering twice finds the first registration (SPEC §10)."""

from __future__ import annotations

import functools
import uuid

PARTIES_NAMESPACE = uuid.UUID("3b0f4f8e-93a4-4d0c-8a7e-1f5e2c6d9b41")


@functools.lru_cache(maxsize=16_384)
def party_stream_id(party_id: str) -> uuid.UUID:
    return uuid.uuid5(PARTIES_NAMESPACE, f"party:{party_id}")
