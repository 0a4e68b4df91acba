"""Rendered documents (payment statement PDFs, SPEC §12) stored with their
SHA-256, so a re-render can be proven identical: table `settlement_documents`
beside the event store, one row per (kind, key), written once and never
updated. The first render is stored; every later one is compared with it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

TABLE = "settlement_documents"
_CREATE = sql.SQL("CREATE TABLE IF NOT EXISTS {} (kind text NOT NULL, key text NOT NULL, "
                  "sha256 text NOT NULL, content bytea NOT NULL, "
                  "recorded_at timestamptz NOT NULL DEFAULT now(), "
                  "PRIMARY KEY (kind, key))").format(sql.Identifier(TABLE))


@dataclass(frozen=True)
class StoredDocument:
    kind: str
    key: str
    sha256: str
    content: bytes

    def __repr__(self) -> str:  # the content may carry names: never in a log
        return f"StoredDocument({self.kind}, {self.key}, {self.sha256[:12]}…)"


def digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def stored(conn: psycopg.Connection[Any], kind: str, key: str) -> StoredDocument | None:
    """The stored document, or None (also while the table does not exist)."""
    with conn.cursor(row_factory=tuple_row) as cur:
        exists = cur.execute("SELECT to_regclass(%s)", (TABLE,)).fetchone()
        if exists is None or exists[0] is None:
            return None
        row = cur.execute(sql.SQL("SELECT sha256, content FROM {} WHERE kind = %s AND key = %s")
                          .format(sql.Identifier(TABLE)), (kind, key)).fetchone()
    return None if row is None else StoredDocument(kind, key, row[0], bytes(row[1]))


def store_once(conn: psycopg.Connection[Any], kind: str, key: str,
               content: bytes) -> StoredDocument:
    """Store `content` unless a document is there; returns the one stored (the
    caller compares its SHA-256 with the content's)."""
    with conn.transaction():
        conn.execute(_CREATE)
        conn.execute(sql.SQL("INSERT INTO {} (kind, key, sha256, content) "
                             "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING")
                     .format(sql.Identifier(TABLE)), (kind, key, digest(content), content))
    found = stored(conn, kind, key)
    assert found is not None
    return found
