"""Service configuration, read once from the environment (SPEC §9)."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from settlement.core.errors import ConfigError
from settlement.core.fees import DEFAULT_FEE_PLANS
from settlement.invoices.issuer import Issuer
from settlement.payouts.policy import DEFAULT_PAYOUT_CONFIG

ENV_VARS = (
    "SETTLEMENT_DATABASE_URL",
    "SETTLEMENT_KAFKA_BOOTSTRAP",
    "SETTLEMENT_API_ADDR",
    "SETTLEMENT_API_TOKENS",
    "SETTLEMENT_FEE_PLANS",
    "SETTLEMENT_TOPIC_PREFIX",
    "SETTLEMENT_PAYOUT_CONFIG",
    # The platform as its invoices name it (SPEC §12): all three, or none.
    "SETTLEMENT_PLATFORM_NAME",
    "SETTLEMENT_PLATFORM_ADDRESS",
    "SETTLEMENT_PLATFORM_INVOICE_REGISTRATION_NUMBER",
)
ROLES = frozenset({"finance", "auditor"})
DEFAULT_API_ADDR = "127.0.0.1:8080"
_TOPIC_PREFIX = re.compile(r"[A-Za-z0-9._-]{0,100}")
# `sha256:<hex>:role`: the token's digest, so the configuration holds no secret.
DIGEST_PREFIX = "sha256:"
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Settings:
    database_url: str | None = None
    kafka_bootstrap: str | None = None
    api_addr: str = DEFAULT_API_ADDR
    # credential (a plain token, or `sha256:<hex>` its digest) → role. repr=False:
    # plain tokens are secrets and Settings ends up in logs.
    api_tokens: dict[str, str] = field(default_factory=dict, repr=False)
    fee_plans_path: Path = DEFAULT_FEE_PLANS
    # The prefix is prepended verbatim, so it carries its own separator ("prod.").
    topic_prefix: str = ""
    state_dir: Path = field(default_factory=lambda: Path.cwd() / ".settlement")
    # Minimums, the Zengin requester and transfer fees (SPEC §11): a TOML file.
    payout_config_path: Path = DEFAULT_PAYOUT_CONFIG
    # The invoices' issuer (SPEC §12); None: not configured, no invoice can be issued.
    invoice_issuer: Issuer | None = None
    # How long the pipeline's stages wait to gather a batch (docs/batching.md).
    batching: Batching = field(default_factory=lambda: Batching())

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
            payout_config_path=Path(get("SETTLEMENT_PAYOUT_CONFIG") or DEFAULT_PAYOUT_CONFIG),
            invoice_issuer=platform_issuer(get),
            batching=Batching.from_env(get),
        )

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"


# Tuning knobs, not part of the contract (SPEC §9): docs/batching.md.
FETCH_WAIT_ENV = "SETTLEMENT_FETCH_WAIT_MS"
RELAY_LINGER_ENV = "SETTLEMENT_RELAY_LINGER_MS"
BATCH_WAIT_MS_MAX = 1_000


@dataclass(frozen=True)
class Batching:
    """How long each stage of the pipeline waits to gather a batch when records
    come slowly; a stage with a backlog never waits. Every batch costs a
    transaction, its round trips and broker requests whatever its size, so at a
    steady load of a few thousand records a second a little waiting saves most
    of the CPU the pipeline spends (docs/batching.md, docs/benchmarks.md)."""

    # A consumer's fetch (input consumer, projector) is answered when a MiB of
    # records is there or after this long.
    fetch_wait_ms: int = 50
    # After the relay takes a small batch (under a quarter of what a batch holds),
    # it waits this long once for more before publishing them.
    relay_linger_ms: int = 20

    def __post_init__(self) -> None:
        for name, value in (("fetch_wait_ms", self.fetch_wait_ms),
                            ("relay_linger_ms", self.relay_linger_ms)):
            if not 0 <= value <= BATCH_WAIT_MS_MAX:
                raise ConfigError(f"{name} must be 0 to {BATCH_WAIT_MS_MAX}, got {value}")

    @classmethod
    def from_env(cls, get: Callable[[str], str | None]) -> Batching:
        def millis(name: str, default: int) -> int:
            text = get(name)
            if text is None:
                return default
            if not text.isdigit() or int(text) > BATCH_WAIT_MS_MAX:
                raise ConfigError(f"{name} must be a whole number of milliseconds, 0 to "
                                  f"{BATCH_WAIT_MS_MAX}, got {text!r}")
            return int(text)

        return cls(fetch_wait_ms=millis(FETCH_WAIT_ENV, cls.fetch_wait_ms),
                   relay_linger_ms=millis(RELAY_LINGER_ENV, cls.relay_linger_ms))


def platform_issuer(get: Callable[[str], str | None]) -> Issuer | None:
    """The platform's name, address and registration number, checked; None if
    none of the three is set, `ConfigError` if only some are."""
    names = ("SETTLEMENT_PLATFORM_NAME", "SETTLEMENT_PLATFORM_ADDRESS",
             "SETTLEMENT_PLATFORM_INVOICE_REGISTRATION_NUMBER")
    values = [get(name) for name in names]
    if all(value is None for value in values):
        return None
    missing = [name for name, value in zip(names, values, strict=True) if value is None]
    if missing:
        raise ConfigError(f"{', '.join(missing)} must be set with the other "
                          "SETTLEMENT_PLATFORM_* variables")
    name, address, number = (value or "" for value in values)
    return Issuer.checked(name, address, number)


def parse_api_tokens(text: str) -> dict[str, str]:
    """Parse `token:role,…` and `sha256:<64 hex>:role,…` into credential → role.

    A credential is a token as given (the older, plain form) or `sha256:<hex>`,
    the digest of a token: the recommended form, since then the configuration
    holds no secret. Error messages name entries by position, never by token.
    """
    tokens: dict[str, str] = {}
    by_digest: dict[str, str] = {}
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
        credential = _credential(token, number)
        # A plain token and the digest of the same token are the same credential.
        digest = token_digest(credential)
        if by_digest.get(digest, role) != role:
            raise ConfigError(
                f"SETTLEMENT_API_TOKENS entry {number} repeats a token with another role"
            )
        tokens[credential], by_digest[digest] = role, role
    return tokens


def _credential(token: str, number: int) -> str:
    if not token.startswith(DIGEST_PREFIX):
        return token
    digest = token.removeprefix(DIGEST_PREFIX).lower()
    if not _SHA256_HEX.fullmatch(digest):
        raise ConfigError(
            f"SETTLEMENT_API_TOKENS entry {number} starts with {DIGEST_PREFIX!r} but is not "
            f"'{DIGEST_PREFIX}<64 hex digits>:role' (compute one with "
            "`printf %s TOKEN | sha256sum`)"
        )
    return DIGEST_PREFIX + digest


def token_digest(credential: str) -> str:
    """The SHA-256 hex digest a credential stands for: its own for `sha256:<hex>`,
    else the digest of the plain token."""
    if credential.startswith(DIGEST_PREFIX):
        return credential.removeprefix(DIGEST_PREFIX)
    return hashlib.sha256(credential.encode()).hexdigest()


def split_addr(addr: str) -> tuple[str, int]:
    """Split `host:port` (IPv6 hosts in brackets) and check the port."""
    host, sep, port = addr.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"SETTLEMENT_API_ADDR must be host:port, got {addr!r}")
    return host.strip("[]"), int(port)
