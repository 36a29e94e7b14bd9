"""Prometheus config and alert rules, checked by the real `promtool` (Debian's prometheus
package, installed by `deploy/local/stack.sh`): fails, never skips, when it is missing."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "deploy" / "prometheus"
GRAFANA = ROOT / "deploy" / "grafana"


# promtool comes with the prometheus package that `make stack-up` installs, so these run
# with the integration tests, after the stack is up.
pytestmark = pytest.mark.integration


def promtool(*args: str) -> str:
    exe = shutil.which("promtool")
    assert exe, "promtool not found: `make stack-up` installs Debian's prometheus package"
    proc = subprocess.run(
        [exe, *args], cwd=PROM, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus.compose.yml"])
def test_promtool_check_config(config: str) -> None:
    out = promtool("check", "config", config)
    assert "SUCCESS" in out


def test_promtool_check_rules() -> None:
    assert "SUCCESS" in promtool("check", "rules", "rules.yml")


def test_promtool_rule_unit_tests_pass() -> None:
    assert "SUCCESS" in promtool("test", "rules", "rules_test.yml")


def alert_names() -> set[str]:
    rules = yaml.safe_load((PROM / "rules.yml").read_text())
    return {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}


def test_every_alert_rule_is_shown_firing_by_a_rule_unit_test() -> None:
    tests = yaml.safe_load((PROM / "rules_test.yml").read_text())
    firing = {
        case["alertname"]
        for test in tests["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert alert_names() == firing
    assert {
        "MarketsignalServiceDown",
        "MarketsignalConsumerLagGrowing",
        "MarketsignalDeadLettersRising",
        "MarketsignalFeedStale",
        "MarketsignalTickToAlertLatencyHigh",
    } <= alert_names()


def test_both_configs_scrape_every_service_on_its_documented_port() -> None:
    ports = {"ingestor": 9101, "processor": 9102, "alerter": 9103}
    local = yaml.safe_load((PROM / "prometheus.yml").read_text())
    jobs = {j["job_name"]: j for j in local["scrape_configs"]}
    for service, port in ports.items():
        assert jobs[f"marketsignal-{service}"]["static_configs"][0]["targets"] == [
            f"127.0.0.1:{port}"
        ]
    compose = yaml.safe_load((PROM / "prometheus.compose.yml").read_text())
    jobs = {j["job_name"]: j for j in compose["scrape_configs"]}
    for service, port in ports.items():
        sd = jobs[f"marketsignal-{service}"]["dns_sd_configs"][0]
        assert (sd["names"], sd["port"]) == ([service], port)


# -- metric names used by dashboards and rules (checked against real /metrics output in
#    tests/integration/test_metrics_prometheus.py)

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_PROMQL_WORDS = {
    "sum", "min", "max", "avg", "count", "by", "without", "rate", "increase", "deriv",
    "delta", "histogram_quantile", "vector", "and", "or", "unless", "le", "on", "ignoring",
    "group_left", "group_right", "offset", "bool", "humanize", "humanizeDuration",
}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression (label matchers, strings, ranges removed)."""
    text = re.sub(r'"[^"]*"', "", expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", text)
    return {n for n in _NAME.findall(text) if n not in _PROMQL_WORDS and not n[0].isdigit()}


def used_metric_names() -> set[str]:
    """Every metric name a dashboard panel or an alert rule queries, minus what Prometheus
    itself makes (`up`) or the rules define (recording rules, named with colons)."""
    exprs = []
    dashboards = sorted((GRAFANA / "dashboards").glob("*.json"))
    assert dashboards
    for path in dashboards:
        for panel in json.loads(path.read_text())["panels"]:
            exprs += [t["expr"] for t in panel.get("targets", [])]
    rules = yaml.safe_load((PROM / "rules.yml").read_text())
    exprs += [r["expr"] for g in rules["groups"] for r in g["rules"]]
    names: set[str] = set()
    for expr in exprs:
        names |= metric_names(expr)
    return {n for n in names if n != "up" and ":" not in n}


# The per-source metrics of a live feed (services/ingestor/source_metrics.py): a file
# replay does not expose them; test_akshare_feed.py checks them on a live ingestor.
LIVE_SOURCE_PREFIX = "marketsignal_ingest_source_"


def test_metric_name_extraction() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le) (rate(a_bucket{x="y"}[5m]))) > 2.5 '
        "and deriv(b:c[5m]) > 0 or vector(0)"
    )
    assert metric_names(expr) == {"a_bucket", "b:c"}
    assert "marketsignal_alerts_delivered_total" in used_metric_names()
