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


def _expanded(annotations: dict[str, str], labels: dict[str, str]) -> dict[str, str]:
    """Annotations as Prometheus fills them in, for templates that only read labels."""
    return {
        key: re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m[1]], text)
        for key, text in annotations.items()
    }


def test_breaker_and_feed_alerts_fire_on_the_exported_series(
    rules: dict[str, Any], tmp_path: Path
) -> None:
    alerts = {rule["alert"]: rule for group in rules["groups"] for rule in group["rules"]}
    risk = {"namespace": "trading", "service": "demo-risk-metrics"}
    feed = {"namespace": "trading", "service": "demo-marketdata-metrics", "feed": "alpaca"}
    state = 'marketdata_feed_state{namespace="trading",service="demo-marketdata-metrics",'
    tests = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {
                        "series": 'risk_breaker_open{namespace="trading",'
                        'service="demo-risk-metrics",instance="a"}',
                        "values": "0 0 1 1",
                    },
                    {
                        "series": f'{state}feed="alpaca",marketdata_feed_state="subscribed"}}',
                        "values": "1 0x5",
                    },
                    {
                        "series": f'{state}feed="alpaca",marketdata_feed_state="reconnecting"}}',
                        "values": "0 1x5",
                    },
                ],
                "alert_rule_test": [
                    {"eval_time": "1m", "alertname": "TradingBreakerOpen", "exp_alerts": []},
                    {
                        "eval_time": "3m",
                        "alertname": "TradingBreakerOpen",
                        "exp_alerts": [
                            {
                                "exp_labels": {**risk, "severity": "critical"},
                                "exp_annotations": _expanded(
                                    alerts["TradingBreakerOpen"]["annotations"], risk
                                ),
                            }
                        ],
                    },
                    # Not yet: the feed has been down for less than feedDownFor (2m).
                    {"eval_time": "2m", "alertname": "MarketDataFeedDown", "exp_alerts": []},
                    {
                        "eval_time": "4m",
                        "alertname": "MarketDataFeedDown",
                        "exp_alerts": [
                            {
                                "exp_labels": {**feed, "severity": "warning"},
                                "exp_annotations": _expanded(
                                    alerts["MarketDataFeedDown"]["annotations"], feed
                                ),
                            }
                        ],
                    },
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
