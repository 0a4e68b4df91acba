"""Service configuration, read once from the environment (SPEC §9)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from settlement.core.errors import ConfigError
from settlement.core.fees import DEFAULT_FEE_PLANS

ENV_VARS = (
    "SETTLEMENT_DATABASE_URL",
    "SETTLEMENT_KAFKA_BOOTSTRAP",
    "SETTLEMENT_API_ADDR",
    "SETTLEMENT_API_TOKENS",
    "SETTLEMENT_FEE_PLANS",
    "SETTLEMENT_TOPIC_PREFIX",
)
ROLES = frozenset({"finance", "auditor"})
DEFAULT_API_ADDR = "127.0.0.1:8080"
_TOPIC_PREFIX = re.compile(r"[A-Za-z0-9._-]{0,100}")


@dataclass(frozen=True)
class Settings:
    database_url: str | None = None
    kafka_bootstrap: str | None = None
    api_addr: str = DEFAULT_API_ADDR
    # repr=False: the tokens are secrets and Settings ends up in logs.
    api_tokens: dict[str, str] = field(default_factory=dict, repr=False)
    fee_plans_path: Path = DEFAULT_FEE_PLANS
    # The prefix is prepended verbatim, so it carries its own separator ("prod.").
    topic_prefix: str = ""
    state_dir: Path = field(default_factory=lambda: Path.cwd() / ".settlement")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        # An empty variable means "unset", so compose files can pass `${VAR:-}` through.
        def get(name: str) -> str | None:
            return environ.get(name, "").strip() or None

        api_addr = get("SETTLEMENT_API_ADDR") or DEFAULT_API_ADDR
        split_addr(api_addr)
        prefix = get("SETTLEMENT_TOPIC_PREFIX") or ""
        if not _TOPIC_PREFIX.fullmatch(prefix):
            raise ConfigError(
                "SETTLEMENT_TOPIC_PREFIX may hold only letters, digits, '.', '_' and '-' "
                f"(at most 100), got {prefix!r}"
            )
        fee_plans = get("SETTLEMENT_FEE_PLANS")
        return cls(
            database_url=get("SETTLEMENT_DATABASE_URL"),
            kafka_bootstrap=get("SETTLEMENT_KAFKA_BOOTSTRAP"),
            api_addr=api_addr,
            api_tokens=parse_api_tokens(get("SETTLEMENT_API_TOKENS") or ""),
            fee_plans_path=Path(fee_plans) if fee_plans else DEFAULT_FEE_PLANS,
            topic_prefix=prefix,
            state_dir=Path.cwd() / ".settlement",
        )

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"


def parse_api_tokens(text: str) -> dict[str, str]:
    """Parse `token:role,…`; error messages name entries by position, never by token."""
    tokens: dict[str, str] = {}
    for number, entry in enumerate(text.split(","), start=1):
        if not entry.strip():
            continue  # A trailing comma is harmless.
        token, sep, role = (part.strip() for part in entry.strip().rpartition(":"))
        if not sep or not token:
            raise ConfigError(f"SETTLEMENT_API_TOKENS entry {number} is not 'token:role'")
        if role not in ROLES:
            raise ConfigError(
                f"SETTLEMENT_API_TOKENS entry {number} has role {role!r}; "
                f"roles are {', '.join(sorted(ROLES))}"
            )
        if tokens.get(token, role) != role:
            raise ConfigError(
                f"SETTLEMENT_API_TOKENS entry {number} repeats a token with another role"
            )
        tokens[token] = role
    return tokens


def split_addr(addr: str) -> tuple[str, int]:
    """Split `host:port` (IPv6 hosts in brackets) and check the port."""
    host, sep, port = addr.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"SETTLEMENT_API_ADDR must be host:port, got {addr!r}")
    return host.strip("[]"), int(port)
