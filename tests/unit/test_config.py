from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from settlement.api.auth import role_of
from settlement.infra.config import (
    DEFAULT_FEE_PLANS,
    ENV_VARS,
    ConfigError,
    Settings,
    parse_api_tokens,
    split_addr,
    token_digest,
)


def test_defaults_when_nothing_is_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({})
    assert settings.database_url is None
    assert settings.kafka_bootstrap is None
    assert settings.api_addr == "127.0.0.1:8080"
    assert settings.api_tokens == {}
    assert settings.fee_plans_path == DEFAULT_FEE_PLANS
    assert DEFAULT_FEE_PLANS.parent == Path(__file__).parents[2] / "settlement" / "core"
    assert settings.topic_prefix == ""
    assert settings.state_dir == tmp_path / ".settlement"


def test_every_variable_is_read() -> None:
    env = {
        "SETTLEMENT_DATABASE_URL": "postgresql://u:p@db:5432/settlement",
        "SETTLEMENT_KAFKA_BOOTSTRAP": "kafka:9092",
        "SETTLEMENT_API_ADDR": "0.0.0.0:9000",
        "SETTLEMENT_API_TOKENS": "f1:finance, a1:auditor,",
        "SETTLEMENT_FEE_PLANS": "/etc/settlement/plans.toml",
        "SETTLEMENT_TOPIC_PREFIX": "prod.",
        "SETTLEMENT_PAYOUT_CONFIG": "/etc/settlement/payouts.toml",
        "SETTLEMENT_PLATFORM_NAME": "株式会社セトルメント",
        "SETTLEMENT_PLATFORM_ADDRESS": "東京都千代田区丸の内1-1-1",
        "SETTLEMENT_PLATFORM_INVOICE_REGISTRATION_NUMBER": "T7000012050002",
    }
    assert set(env) == set(ENV_VARS)
    settings = Settings.from_env(env)
    assert settings.database_url == "postgresql://u:p@db:5432/settlement"
    assert settings.kafka_bootstrap == "kafka:9092"
    assert settings.api_addr == "0.0.0.0:9000"
    assert settings.api_tokens == {"f1": "finance", "a1": "auditor"}
    assert settings.fee_plans_path == Path("/etc/settlement/plans.toml")
    assert settings.topic("settlement.events") == "prod.settlement.events"
    assert settings.payout_config_path == Path("/etc/settlement/payouts.toml")
    assert settings.invoice_issuer is not None
    assert settings.invoice_issuer.registration_number == "T7000012050002"


@pytest.mark.parametrize(("env", "named"), [
    ({"SETTLEMENT_PLATFORM_NAME": "P"}, "SETTLEMENT_PLATFORM_ADDRESS"),
    ({"SETTLEMENT_PLATFORM_NAME": "P", "SETTLEMENT_PLATFORM_ADDRESS": "A",
      "SETTLEMENT_PLATFORM_INVOICE_REGISTRATION_NUMBER": "T1000012050002"},
     "SETTLEMENT_PLATFORM_INVOICE_REGISTRATION_NUMBER"),
    ({"SETTLEMENT_PLATFORM_NAME": "P", "SETTLEMENT_PLATFORM_ADDRESS": "A",
      "SETTLEMENT_PLATFORM_INVOICE_REGISTRATION_NUMBER": "7000012050002"},
     "SETTLEMENT_PLATFORM_INVOICE_REGISTRATION_NUMBER"),
])
def test_the_invoice_issuer_is_all_three_and_a_valid_number(env: dict[str, str],
                                                            named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        Settings.from_env(env)


def test_empty_values_mean_unset() -> None:
    settings = Settings.from_env({name: "" for name in ENV_VARS})
    assert settings == Settings(state_dir=settings.state_dir)


def test_token_may_contain_colons() -> None:
    tokens = Settings.from_env({"SETTLEMENT_API_TOKENS": "a:b:c:auditor"}).api_tokens
    assert tokens == {"a:b:c": "auditor"}


@pytest.mark.parametrize(
    ("tokens", "message"),
    [
        ("secret:admin", "entry 1 has role 'admin'"),
        ("ok:finance,secret", "entry 2 is not 'token:role'"),
        (":finance", "entry 1 is not 'token:role'"),
        ("secret:finance,secret:auditor", "entry 2 repeats a token"),
    ],
)
def test_bad_tokens_are_rejected_without_echoing_them(tokens: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        Settings.from_env({"SETTLEMENT_API_TOKENS": tokens})
    assert "secret" not in str(raised.value)


def test_tokens_stay_out_of_repr() -> None:
    settings = Settings.from_env({"SETTLEMENT_API_TOKENS": "hunter2:finance"})
    assert "hunter2" not in repr(settings)


@pytest.mark.parametrize("addr", ["8080", "localhost", "host:0", "host:70000", ":8080", "h:x"])
def test_bad_api_addr_is_rejected(addr: str) -> None:
    with pytest.raises(ConfigError, match="SETTLEMENT_API_ADDR"):
        Settings.from_env({"SETTLEMENT_API_ADDR": addr})


def test_bad_topic_prefix_is_rejected() -> None:
    with pytest.raises(ConfigError, match="SETTLEMENT_TOPIC_PREFIX"):
        Settings.from_env({"SETTLEMENT_TOPIC_PREFIX": "a/b"})


def test_settings_are_immutable() -> None:
    settings = Settings()
    with pytest.raises(AttributeError):
        settings.api_addr = "0.0.0.0:1"  # type: ignore[misc]


def test_split_addr_handles_ipv6() -> None:
    assert split_addr("[::1]:8080") == ("::1", 8080)
    assert split_addr("0.0.0.0:80") == ("0.0.0.0", 80)


DIGEST = hashlib.sha256(b"hunter2").hexdigest()  # what `printf %s hunter2 | sha256sum` prints


def test_token_digests_are_read_and_normalised() -> None:
    tokens = Settings.from_env(
        {"SETTLEMENT_API_TOKENS": f"sha256:{DIGEST.upper()}:auditor, plain:finance"}).api_tokens
    assert tokens == {f"sha256:{DIGEST}": "auditor", "plain": "finance"}
    assert token_digest(f"sha256:{DIGEST}") == token_digest("hunter2") == DIGEST


@pytest.mark.parametrize(
    ("tokens", "message"),
    [
        ("sha256:abc:finance", "entry 1 starts with 'sha256:' but is not"),
        (f"ok:finance,sha256:{DIGEST}0:auditor", "entry 2 starts with 'sha256:'"),
        (f"sha256:{DIGEST[:-1]}g:finance", "printf %s TOKEN | sha256sum"),
        (f"sha256:{DIGEST}:root", "entry 1 has role 'root'"),
        # The plain token and its digest are one credential: one role.
        (f"hunter2:finance,sha256:{DIGEST}:auditor", "entry 2 repeats a token"),
    ],
)
def test_bad_digest_entries_are_rejected_clearly(tokens: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as raised:
        Settings.from_env({"SETTLEMENT_API_TOKENS": tokens})
    assert "hunter2" not in str(raised.value) and DIGEST not in str(raised.value)


def test_a_token_matches_its_plain_or_digest_entry_only() -> None:
    tokens = parse_api_tokens(f"sha256:{DIGEST}:auditor,s3cret:finance")
    assert role_of("hunter2", tokens) == "auditor"
    assert role_of("s3cret", tokens) == "finance"
    for wrong in ("", "hunter", "hunter2 ", DIGEST, f"sha256:{DIGEST}", "s3cre"):
        assert role_of(wrong, tokens) is None, wrong


def test_a_bad_entry_stops_the_command_at_start_with_one_clear_line(tmp_path: Path) -> None:
    env = {**os.environ, "SETTLEMENT_API_TOKENS": "hunter2:finance,sha256:nothex:auditor"}
    done = subprocess.run([sys.executable, "-m", "settlement.cli", "api"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    line = json.loads(done.stderr.strip())  # one JSON line, no traceback
    assert line["event"] == "config.invalid" and "entry 2" in line["error"]
    assert "hunter2" not in done.stderr
