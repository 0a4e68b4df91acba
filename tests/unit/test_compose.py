"""compose.yaml must agree with the code that reads its settings."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from settlement.infra.config import ENV_VARS, Settings, split_addr
from settlement.infra.postgres import pg_env

COMPOSE = Path(__file__).parents[2] / "compose.yaml"
# Compose's `${VAR:-default}` / `${VAR-default}` / `${VAR}` interpolation.
_VARIABLE = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def _interpolate(value: str) -> str:
    """Interpolate as compose would with an empty caller environment."""
    return _VARIABLE.sub(lambda match: match.group(2) or "", value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


@pytest.fixture(scope="module")
def service_env(compose: dict[str, Any]) -> dict[str, str]:
    raw = compose["services"]["settlement"]["environment"]
    return {name: _interpolate(str(value)) for name, value in raw.items()}


def test_service_gets_only_variables_the_code_reads(service_env: dict[str, str]) -> None:
    assert set(service_env) == set(ENV_VARS)


def test_service_settings_load(service_env: dict[str, str]) -> None:
    settings = Settings.from_env(service_env)
    assert set(settings.api_tokens.values()) == {"finance", "auditor"}


def test_database_url_names_the_postgres_service(
    compose: dict[str, Any], service_env: dict[str, str]
) -> None:
    env = pg_env(service_env["SETTLEMENT_DATABASE_URL"])
    postgres = compose["services"][env["POSTGRES_HOST"]]
    assert postgres["environment"]["POSTGRES_USER"] == env["POSTGRES_USER"]
    assert postgres["environment"]["POSTGRES_PASSWORD"] == env["POSTGRES_PASSWORD"]
    assert postgres["environment"]["POSTGRES_DB"] == env["POSTGRES_DBNAME"]
    assert env["POSTGRES_PORT"] == "5432"


def test_kafka_bootstrap_is_the_advertised_listener(
    compose: dict[str, Any], service_env: dict[str, str]
) -> None:
    host, port = service_env["SETTLEMENT_KAFKA_BOOTSTRAP"].split(":")
    kafka_env = compose["services"][host]["environment"]
    assert f"PLAINTEXT://{host}:{port}" in kafka_env["KAFKA_ADVERTISED_LISTENERS"].split(",")


def test_dependencies_exist_and_are_health_checked(compose: dict[str, Any]) -> None:
    services = compose["services"]
    depends_on = services["settlement"]["depends_on"]
    assert set(depends_on) == {"postgres", "kafka"}
    for name, condition in depends_on.items():
        assert condition == {"condition": "service_healthy"}
        assert "healthcheck" in services[name]


def test_published_port_is_the_api_port(
    compose: dict[str, Any], service_env: dict[str, str]
) -> None:
    host, port = split_addr(service_env["SETTLEMENT_API_ADDR"])
    # Inside a container the API must listen on every interface to be reachable.
    assert host == "0.0.0.0"
    ports = compose["services"]["settlement"]["ports"]
    assert [str(entry).rsplit(":", 1)[-1] for entry in ports] == [str(port)]


def test_service_runs_the_documented_command(compose: dict[str, Any]) -> None:
    assert compose["services"]["settlement"]["command"] == ["settlement", "run"]
