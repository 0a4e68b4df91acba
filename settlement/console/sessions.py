"""Console sessions: a bearer token of `SETTLEMENT_API_TOKENS` exchanged, once,
for a random session id carried by an HttpOnly cookie.

Sessions live in the API process's memory, so signing out ends one at once and
a restart ends them all (sign in again). The cookie carries only the random id;
the store keys sessions by its SHA-256, so the ids themselves are not kept. A
session ends after `lifetime_seconds` whatever happens, after `idle_seconds`
without a request, and as soon as its token is no longer configured (checked
on every request by the caller). Each session has its own CSRF token, which
every POST form carries.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

LIFETIME_SECONDS = 8 * 3600  # a working day
IDLE_SECONDS = 30 * 60
SESSIONS_MAX = 1_000  # beyond it the oldest session is dropped
ID_BYTES = 32


@dataclass(frozen=True, slots=True)
class Session:
    role: str
    token: str  # kept in memory only, to end the session when the token is revoked
    csrf: str
    created_at: float
    seen_at: float


def _key(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode()).digest()


def new_secret() -> str:
    return secrets.token_urlsafe(ID_BYTES)


class SessionStore:
    """Sessions by (the digest of) their id; safe to share between threads."""

    def __init__(self, clock: Callable[[], float] = time.time,
                 lifetime_seconds: int = LIFETIME_SECONDS,
                 idle_seconds: int = IDLE_SECONDS, sessions_max: int = SESSIONS_MAX) -> None:
        assert 0 < idle_seconds <= lifetime_seconds and sessions_max > 0
        self.clock, self.lifetime_seconds = clock, lifetime_seconds
        self.idle_seconds, self.sessions_max = idle_seconds, sessions_max
        self._sessions: dict[bytes, Session] = {}
        self._lock = threading.Lock()

    def open(self, role: str, token: str) -> tuple[str, Session]:
        """A new session for `role`: its id (for the cookie) and the session."""
        now = self.clock()
        session_id = new_secret()
        session = Session(role, token, new_secret(), now, now)
        with self._lock:
            self._drop_expired(now)
            while len(self._sessions) >= self.sessions_max:
                oldest = min(self._sessions, key=lambda k: self._sessions[k].created_at)
                del self._sessions[oldest]
            self._sessions[_key(session_id)] = session
        return session_id, session

    def get(self, session_id: str | None) -> Session | None:
        """The live session of `session_id` (its idle time restarts), else None."""
        if not session_id or len(session_id) > 2 * ID_BYTES:
            return None
        now, key = self.clock(), _key(session_id)
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                return None
            if self._expired(session, now):
                del self._sessions[key]
                return None
            session = self._sessions[key] = replace(session, seen_at=now)
        return session

    def close(self, session_id: str | None) -> None:
        if session_id:
            with self._lock:
                self._sessions.pop(_key(session_id), None)

    def _expired(self, session: Session, now: float) -> bool:
        return (now - session.created_at >= self.lifetime_seconds
                or now - session.seen_at >= self.idle_seconds)

    def _drop_expired(self, now: float) -> None:
        for key in [k for k, s in self._sessions.items() if self._expired(s, now)]:
            del self._sessions[key]
