"""`deploy/alerts.yaml`: Prometheus rule format, the alerts issue #22 asks for, and
only metric names the API's /metrics exposes (the catalogue every collector
makes its families from; tests/integration/test_api_ops.py checks a real answer
exposes exactly the catalogue)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from settlement.api.metrics.catalogue import EXPOSED

RULES_FILE = Path(__file__).resolve().parents[2] / "deploy" / "alerts.yaml"
REQUIRED = {"SettlementConsumerLagGrowing", "SettlementRelayStalled",
            "SettlementProjectorStalled", "SettlementSafeguardingShortfall",
            "SettlementPayoutDeadlineNear", "SettlementAuditChainBroken"}
RULE_KEYS = {"alert", "expr", "for", "labels", "annotations"}
DURATION = re.compile(r"([0-9]+(ms|s|m|h|d|w|y))+")
# Our metrics all start so; label names and PromQL functions never do.
METRIC = re.compile(r"\bsettlement_[a-z0-9_]+\b")


def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES_FILE.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def metric_names(expr: str) -> set[str]:
    without_strings = re.sub(r'"[^"]*"', '""', expr)  # a label value is not a metric
    return set(METRIC.findall(without_strings))


def test_the_file_is_groups_of_named_rules() -> None:
    document = yaml.safe_load(RULES_FILE.read_text())
    assert set(document) == {"groups"}
    names = [group["name"] for group in document["groups"]]
    assert len(names) == len(set(names)) and all(names)
    for group in document["groups"]:
        assert set(group) == {"name", "rules"} and group["rules"], group["name"]
    alerts = [rule["alert"] for rule in rules()]
    assert len(alerts) == len(set(alerts))
    assert REQUIRED <= set(alerts)


@pytest.mark.parametrize("rule", rules(), ids=lambda rule: rule["alert"])
def test_each_rule_is_complete_and_names_exposed_metrics_only(rule: dict[str, Any]) -> None:
    assert set(rule) == RULE_KEYS
    assert DURATION.fullmatch(rule["for"]), rule["for"]
    assert rule["labels"]["severity"] in {"warning", "critical"}
    assert rule["annotations"]["summary"].strip() and rule["annotations"]["description"].strip()
    used = metric_names(rule["expr"])
    assert used, "a rule must watch one of the API's metrics"
    assert used <= EXPOSED, f"not exposed by /metrics: {sorted(used - EXPOSED)}"


def test_the_name_check_would_catch_a_misspelt_metric() -> None:
    used = metric_names('settlement_relay_lagg{relay="settlement_x"} > 0 and '
                        'rate(settlement_commands_total[5m]) > 0')
    assert used == {"settlement_relay_lagg", "settlement_commands_total"}
    assert used - EXPOSED == {"settlement_relay_lagg"}
