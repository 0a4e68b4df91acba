"""Every metric `/metrics` exposes, by the name its samples carry, with its type
and help. The collectors make their families here (`gauge`, `counter`), so no
metric can be exposed without being listed, and the alert rules
(`deploy/alerts.yaml`) are checked against this list (`EXPOSED`)."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

GAUGE, COUNTER = "gauge", "counter"
CATALOGUE: dict[str, tuple[str, str]] = {
    # The pipeline, from the positions stored beside the data.
    "settlement_events_stored": (GAUGE, "highest position in the event store (its head)"),
    "settlement_projection_position": (GAUGE, "highest event position the projections applied"),
    "settlement_projection_lag": (GAUGE, "positions stored but not projected yet"),
    "settlement_projection_events_per_second": (
        GAUGE, "positions projected per second since the previous scrape"),
    "settlement_relay_position": (GAUGE, "last position the relay published"),
    "settlement_relay_lag": (GAUGE, "positions not published yet"),
    "settlement_relay_progress_age_seconds": (
        GAUGE, "seconds since the relay's stored position last moved"),
    "settlement_projector_position": (
        GAUGE, "highest position a projector group applied, over its partitions"),
    "settlement_projector_lag": (GAUGE, "head minus the projector group's position"),
    "settlement_consumer_next_offset": (
        GAUGE, "next Kafka offset the input consumer will read"),
    "settlement_commands_total": (COUNTER, "marketplace commands seen"),
    "settlement_rejections_total": (COUNTER, "commands rejected by a business rule"),
    # The processes, from their heartbeats.
    "settlement_part_heartbeat_age_seconds": (GAUGE, "seconds since the part's last heartbeat"),
    "settlement_part_progress_age_seconds": (
        GAUGE, "seconds since the part last made progress"),
    "settlement_part_lag": (GAUGE, "records or events the part is behind, as it reports"),
    "settlement_timers_last_pass_age_seconds": (GAUGE, "seconds since the last timer pass"),
    "settlement_supervisor_child_backing_off": (
        GAUGE, "1 while the supervisor waits to restart the child, else 0"),
    "settlement_supervisor_child_restarts": (GAUGE, "restarts of the child by the supervisor"),
    # Money and audit, for the alerts.
    "settlement_safeguarding_cash": (GAUGE, "safeguarded cash (assets:safeguarded_cash)"),
    "settlement_safeguarding_obligations": (GAUGE, "sum of every liabilities:* balance"),
    "settlement_safeguarding_shortfall": (GAUGE, "max(obligations - cash, 0)"),
    "settlement_reconciliation_unmatched_lines": (GAUGE, "bank statement lines not matched"),
    "settlement_reconciliation_unmatched_amount": (GAUGE, "sum of those lines"),
    "settlement_reconciliation_ledger_unmatched": (
        GAUGE, "ledger cash movements with no bank line, older than 3 business days"),
    "settlement_reconciliation_ledger_unmatched_amount": (GAUGE, "sum of those movements"),
    "settlement_reconciliation_difference": (
        GAUGE, "bank closing balance minus assets:safeguarded_cash, last statement day"),
    "settlement_receivables_due_soon": (
        GAUGE, "unpaid claims whose payout deadline (60-day rule) falls within 7 days"),
    "settlement_receivables_due_soon_amount": (GAUGE, "sum of those claims"),
    "settlement_receivables_overdue": (GAUGE, "unpaid claims past their payout deadline"),
    "settlement_receivables_overdue_amount": (GAUGE, "sum of those claims"),
    "settlement_audit_chain_ok": (
        GAUGE, "1 if the last hash chain verification matched, 0 if it found a bad position"),
    "settlement_audit_chain_events_checked": (GAUGE, "events the last verification checked"),
    "settlement_audit_chain_verified_timestamp_seconds": (
        GAUGE, "Unix time the last verification finished"),
}
EXPOSED = frozenset(CATALOGUE)


def gauge(name: str, labels: Sequence[str] = (), value: float | None = None
          ) -> GaugeMetricFamily:
    kind, help_ = CATALOGUE[name]
    assert kind == GAUGE, name
    return GaugeMetricFamily(name, help_, labels=labels or None, value=value)


def counter(name: str, labels: Sequence[str]) -> CounterMetricFamily:
    kind, help_ = CATALOGUE[name]
    assert kind == COUNTER and name.endswith("_total"), name
    return CounterMetricFamily(name.removesuffix("_total"), help_, labels=labels)
