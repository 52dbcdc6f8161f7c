"""The chart's monitoring: the alert rules pass `promtool check rules` and fire in `promtool test
rules` on the series the components export; every alert carries a runbook line; the Grafana
dashboard loads, shows what an operator needs, and reads only metrics the components (scraped
from a real running system) or the operator export."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import prometheus_client as prom
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.chart.helm import CHART, find, template
from tests.chart.promql import metric_names
from tests.integration.test_endpoints import _get, running  # noqa: F401  (a fixture)
from trading_operator import metrics as operator_metrics

# Series the rules read that no component exports: Prometheus's own scrape health, and
# kube-state-metrics' view of a Deployment's readiness.
EXTERNAL = {"up", "kube_deployment_status_replicas_unavailable"}
ALERTS = {
    "TradingBreakerOpen",
    "MarketDataFeedDown",
    "RiskRejectionRateHigh",
    "ExecutionOrderLatencyHigh",
    "TradingComponentDown",
    "TradingComponentNotReady",
}
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
}


@pytest.fixture(scope="module")
def rules() -> dict[str, Any]:
    """The rule groups as Prometheus would load them from the rendered PrometheusRule."""
    rendered = template("monitoring.prometheusRule.enabled=true")
    return find(rendered, "PrometheusRule")["spec"]


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads((CHART / "files" / "dashboard.json").read_text())


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    return found


def test_rules_pass_promtool_check(rules: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(rules))
    result = subprocess.run(
        [_promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in result.stdout


def test_every_alert_is_present_with_severity_and_runbook(rules: dict[str, Any]) -> None:
    alerts = {rule["alert"]: rule for group in rules["groups"] for rule in group["rules"]}
    assert set(alerts) == ALERTS
    for rule in alerts.values():
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert {"summary", "description", "runbook"} <= rule["annotations"].keys()
        assert len(rule["annotations"]["runbook"].split()) > 5


def _expanded(
    annotations: dict[str, str], labels: dict[str, str], value: str = ""
) -> dict[str, str]:
    """Annotations as Prometheus fills them in: labels, and `$value` as its filter prints it."""
    result = {}
    for key, text in annotations.items():
        text = re.sub(r"\{\{ \$value \| \w+ \}\}", value, text)
        result[key] = re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m[1]], text)
    return result


RISK = {"namespace": "trading", "service": "demo-risk-metrics"}
FEED = {"namespace": "trading", "service": "demo-marketdata-metrics", "feed": "alpaca"}
EXECUTION = {"namespace": "trading", "service": "demo-execution-metrics"}
DOWN = {**RISK, "job": "demo-risk-metrics"}
NOT_READY = {"namespace": "trading", "deployment": "demo-execution"}


def _input(name: str, labels: dict[str, str], values: str) -> dict[str, str]:
    text = ",".join(f'{key}="{value}"' for key, value in labels.items())
    return {"series": f"{name}{{{text}}}", "values": values}


# Per alert: input series (one sample a minute), a time before it may fire, a time it fires,
# the labels it fires with, and how its annotations print $value.
CASES: dict[str, tuple[list[dict[str, str]], str, str, dict[str, str], str]] = {
    "TradingBreakerOpen": (
        [_input("risk_breaker_open", {**RISK, "instance": "a"}, "0 0 1 1")],
        "1m", "3m", RISK, "",
    ),
    # Not before the feed has been down for feedDownFor (2m).
    "MarketDataFeedDown": (
        [
            _input("marketdata_feed_state", {**FEED, "marketdata_feed_state": "subscribed"},
                    "1 0x5"),
            _input("marketdata_feed_state", {**FEED, "marketdata_feed_state": "reconnecting"},
                    "0 1x5"),
        ],
        "2m", "4m", FEED, "",
    ),
    # Three rejections for each approval: 75 % against a 50 % threshold, for 10 minutes.
    "RiskRejectionRateHigh": (
        [
            _input("risk_checks_total", {**RISK, "outcome": "rejected"}, "0+3x30"),
            _input("risk_checks_total", {**RISK, "outcome": "approved"}, "0+1x30"),
        ],
        "8m", "25m", RISK, "75%",
    ),
    # Every order acknowledged between 0.5 s and 1 s: the p99 is past the 0.5 s threshold.
    "ExecutionOrderLatencyHigh": (
        [
            _input("execution_submit_seconds_bucket", {**EXECUTION, "le": "0.5"}, "0x30"),
            _input("execution_submit_seconds_bucket", {**EXECUTION, "le": "1"}, "0+10x30"),
            _input("execution_submit_seconds_bucket", {**EXECUTION, "le": "+Inf"}, "0+10x30"),
        ],
        "10m", "20m", EXECUTION, "995ms",
    ),
    "TradingComponentDown": ([_input("up", DOWN, "1 0x6")], "2m", "4m", DOWN, ""),
    # Another application's Deployment with the same problem raises nothing.
    "TradingComponentNotReady": (
        [
            _input("kube_deployment_status_replicas_unavailable", NOT_READY, "0 1x10"),
            _input("kube_deployment_status_replicas_unavailable",
                    {"namespace": "trading", "deployment": "demo-web"}, "0 1x10"),
        ],
        "5m", "8m", NOT_READY, "",
    ),
}  # fmt: skip


@pytest.mark.parametrize("alert", sorted(CASES))
def test_each_alert_fires_on_its_series_and_not_before_its_time(
    rules: dict[str, Any], tmp_path: Path, alert: str
) -> None:
    rule = {r["alert"]: r for group in rules["groups"] for r in group["rules"]}[alert]
    series, before, when, labels, value = CASES[alert]
    fired = {
        "exp_labels": {**labels, "severity": rule["labels"]["severity"]},
        "exp_annotations": _expanded(rule["annotations"], labels, value),
    }
    tests = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    {"eval_time": before, "alertname": alert, "exp_alerts": []},
                    {"eval_time": when, "alertname": alert, "exp_alerts": [fired]},
                ],
            }
        ],
    }
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules))
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests))
    result = subprocess.run(
        [_promtool(), "test", "rules", "tests.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _queries(dashboard: dict[str, Any]) -> list[str]:
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            queries.append(variable["definition"])
    return queries


def test_dashboard_shows_pnl_positions_orders_latency_breaker_and_feed_lag(
    dashboard: dict[str, Any],
) -> None:
    titles = " / ".join(panel["title"] for panel in dashboard["panels"])
    for topic in ("P&L", "Positions", "Orders", "latency", "breaker", "Feed lag"):
        assert topic.lower() in titles.lower(), topic
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}"


def _series(exposition: str) -> set[str]:
    """Every series name an exposition can produce, declared even before a first sample."""
    names: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        names.add(family.name)
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ()))
        names.update(sample.name for sample in family.samples)
    return names


@pytest.mark.integration
def test_every_metric_the_dashboard_and_rules_read_is_exported(
    running: tuple[Path, dict[str, int]],  # noqa: F811
    dashboard: dict[str, Any],
    rules: dict[str, Any],
) -> None:
    _, ports = running
    exported = _series(prom.generate_latest(operator_metrics.REGISTRY).decode())
    for port in ports.values():
        status, text = _get(port, "/metrics")
        assert status == 200
        exported |= _series(text)
    read_by_dashboard = set().union(*map(metric_names, _queries(dashboard)))
    assert read_by_dashboard - exported == set()
    read_by_rules = {
        name
        for group in rules["groups"]
        for rule in group["rules"]
        for name in metric_names(rule["expr"])
    }
    assert read_by_rules - exported == EXTERNAL
    assert {"risk_equity", "risk_breaker_state", "execution_orders_total"} <= read_by_dashboard
