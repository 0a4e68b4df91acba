from __future__ import annotations

from pathlib import Path

import pytest

from settlement.infra.config import DEFAULT_FEE_PLANS, ENV_VARS, ConfigError, Settings, split_addr


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
    }
    assert set(env) == set(ENV_VARS)
    settings = Settings.from_env(env)
    assert settings.database_url == "postgresql://u:p@db:5432/settlement"
    assert settings.kafka_bootstrap == "kafka:9092"
    assert settings.api_addr == "0.0.0.0:9000"
    assert settings.api_tokens == {"f1": "finance", "a1": "auditor"}
    assert settings.fee_plans_path == Path("/etc/settlement/plans.toml")
    assert settings.topic("settlement.events") == "prod.settlement.events"


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
