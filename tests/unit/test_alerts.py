"""deploy/prometheus/alerts.yml: valid rules (YAML, PromQL parsed by promql-parser), only
metrics the exporter emits, thresholds equal to the dashboard's, every alert documented."""

from __future__ import annotations

import re
from pathlib import Path

import promql_parser
import yaml

from platformdb.dashboard import exporter, health

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
DOC = ROOT / "docs" / "alerts.md"
DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")


def rules() -> list[dict]:
    data = yaml.safe_load(RULES.read_text())
    assert set(data) == {"groups"}
    out = []
    for g in data["groups"]:
        assert set(g) == {"name", "rules"} and g["rules"], g.get("name")
        out += g["rules"]
    return out


def test_every_rule_is_well_formed() -> None:
    rs = rules()
    assert len(rs) >= 15
    names = [r["alert"] for r in rs]
    assert len(names) == len(set(names)), "alert names must be unique"
    for r in rs:
        assert set(r) <= {"alert", "expr", "for", "labels", "annotations"}, r["alert"]
        assert re.fullmatch(r"Platformdb[A-Za-z]+", r["alert"])
        promql_parser.parse(r["expr"])  # raises on a PromQL syntax error
        if "for" in r:
            assert DURATION.match(str(r["for"])), r["alert"]
        assert r["labels"]["severity"] in ("warning", "critical"), r["alert"]
        assert r["annotations"]["summary"] and r["annotations"]["description"], r["alert"]


def test_the_parser_refuses_a_broken_expression() -> None:
    """The check above can fail: a broken expression does not parse."""
    try:
        promql_parser.parse("platformdb_queue_depth > > 1")
    except ValueError:
        return
    raise AssertionError("promql-parser accepted a broken expression")


def test_rules_use_only_metrics_the_exporter_emits() -> None:
    used = {m for r in rules() for m in re.findall(r"\bplatformdb_[a-z0-9_]+\b", r["expr"])}
    assert used, "no platformdb metric in the rules"
    assert used <= set(exporter.FAMILIES), used - set(exporter.FAMILIES)
    # the families the issue asks for are all alerted on
    for family in (
        "platformdb_queue_oldest_ready_age_seconds",
        "platformdb_dead_letters",
        "platformdb_transactions_24h",
        "platformdb_whatsapp_messages_24h",
        "platformdb_cache_hit_ratio",
        "platformdb_service_health",
        "platformdb_partition_months_ahead",
    ):
        assert family in used, family


def _threshold(alert: str) -> float:
    expr = next(r["expr"] for r in rules() if r["alert"] == alert)
    return float(re.findall(r"[<>]\s*([0-9.]+)\s*$", expr.strip())[-1])


def test_thresholds_are_the_dashboards() -> None:
    assert _threshold("PlatformdbQueueBacklog") == health.QUEUE_AGE_RED
    assert _threshold("PlatformdbQueueSlow") == health.QUEUE_AGE_AMBER
    assert _threshold("PlatformdbPaymentsFailing") == health.PAYMENT_FAIL_RED
    assert _threshold("PlatformdbPaymentsFailureRateHigh") == health.PAYMENT_FAIL_AMBER
    assert _threshold("PlatformdbPaymentStuckProcessing") == health.PAYMENT_PROCESSING_RED
    assert _threshold("PlatformdbPaymentStuckPending") == health.PAYMENT_PENDING_AMBER
    assert _threshold("PlatformdbWhatsAppFailing") == health.WA_FAIL_RED
    assert _threshold("PlatformdbWhatsAppFailureRateHigh") == health.WA_FAIL_AMBER
    assert _threshold("PlatformdbWhatsAppBacklog") == health.WA_AGE_RED
    assert _threshold("PlatformdbPartitionsRunningOut") == 3


def test_every_alert_is_documented() -> None:
    doc = DOC.read_text()
    for r in rules():
        assert f"`{r['alert']}`" in doc, f"{r['alert']} is not explained in docs/alerts.md"


def test_every_metric_family_is_documented() -> None:
    doc = (ROOT / "docs" / "dashboard.md").read_text()
    for family in exporter.FAMILIES:
        assert f"`{family}`" in doc, f"{family} is not in docs/dashboard.md"
