"""The Helm chart, rendered by the real `helm`: lint-clean; valid against the official schemas
with every switch off and on; its CRD and RBAC the generated copies of the Python sources; the
operator's Deployment the one `trading_operator.deploy` describes; RBAC that covers exactly what
the operator creates and nothing wider; a values schema that describes every value and refuses
unknown ones."""

from __future__ import annotations

import json
import tomllib
from typing import Any

import kubernetes_validate
import pytest
import yaml

from components import catalog
from components.core.config import parse_spec
from tests.chart import helm
from tests.chart.helm import ALL_ON, CHART, NAMESPACE, ROOT, find, template
from tests.operator.crd_schema import CrdSchema
from trading_operator import chart, deploy, names, rbac
from trading_operator.builders import System, children
from trading_operator.builders.accounts import risk_account
from trading_operator.settings import DEFAULT_IMAGE

KUBERNETES = "1.31"
MONITORING_KINDS = {"ServiceMonitor", "PrometheusRule"}  # no official schema: checked below


@pytest.fixture(scope="module")
def all_off() -> list[dict[str, Any]]:
    return template()


@pytest.fixture(scope="module")
def all_on() -> list[dict[str, Any]]:
    return template(*ALL_ON)


def test_generated_copies_match_the_python_sources() -> None:
    for name, text in chart.files(CHART).items():
        assert (CHART / name).read_text() == text, f"{name} is stale: run `make chart`"
    committed_crd = (ROOT / "crds" / "tradingsystem.yaml").read_text()
    assert (CHART / "crds" / "tradingsystem.yaml").read_text() == committed_crd


@pytest.mark.parametrize("switches", [(), ALL_ON], ids=["defaults", "all-on"])
def test_lint_strict_is_clean(switches: tuple[str, ...]) -> None:
    args = ["lint", "--strict", str(CHART), "--namespace", NAMESPACE]
    for value in switches:
        args += ["--set", value]
    result = helm.run(*args)
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("rendered", ["all_off", "all_on"])
def test_every_object_is_valid_against_the_official_schemas(
    rendered: str, request: pytest.FixtureRequest
) -> None:
    objects = request.getfixturevalue(rendered)
    crd = find(objects, "CustomResourceDefinition")
    schema = CrdSchema(crd)
    for obj in objects:
        if obj["kind"] == "TradingSystem":
            _, problems = schema.admit(obj)
            assert problems == [], problems
            parse_spec(obj)  # and the operator would accept it
        elif obj["kind"] not in MONITORING_KINDS:
            kubernetes_validate.validate(obj, KUBERNETES, strict=True)


def test_switches_off_render_only_the_operator(all_off: list[dict[str, Any]]) -> None:
    kinds = sorted(obj["kind"] for obj in all_off)
    assert kinds == [
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "Deployment",
        "Service",
        "ServiceAccount",
    ]


def test_switches_on_render_system_and_monitoring(all_on: list[dict[str, Any]]) -> None:
    kinds = {obj["kind"] for obj in all_on}
    assert {"TradingSystem", "ServiceMonitor", "PrometheusRule", "ConfigMap"} <= kinds
    system = find(all_on, "TradingSystem")
    assert (system["metadata"]["name"], system["metadata"]["namespace"]) == ("demo", NAMESPACE)
    dashboard = find(all_on, "ConfigMap")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    json.loads(dashboard["data"]["tradingsystem.json"])


def test_service_monitor_scrapes_the_operators_metrics_port(
    all_on: list[dict[str, Any]],
) -> None:
    monitor = find(all_on, "ServiceMonitor")
    service = find(all_on, "Service")
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    ports = {port["name"] for port in service["spec"]["ports"]}
    assert [endpoint["port"] for endpoint in monitor["spec"]["endpoints"]] == ["metrics"]
    assert "metrics" in ports
    deployment = find(all_on, "Deployment")
    assert service["spec"]["selector"].items() <= (
        deployment["spec"]["template"]["metadata"]["labels"].items()
    )


def _without_labels(obj: dict[str, Any]) -> dict[str, Any]:
    """Helm adds its own labels (chart, release, version); everything else must be equal."""
    obj = json.loads(json.dumps(obj))
    obj["metadata"].pop("labels", None)
    template_ = obj.get("spec", {}).get("template")
    if template_:
        template_["metadata"].pop("labels", None)
    return obj


def test_operator_objects_are_the_ones_deploy_describes(all_off: list[dict[str, Any]]) -> None:
    expected = deploy.manifests(NAMESPACE, DEFAULT_IMAGE)
    for wanted in expected:
        rendered = find(all_off, wanted["kind"], wanted["metadata"]["name"])
        if wanted["kind"] != "Deployment":
            assert _without_labels(rendered) == _without_labels(wanted)
            continue
        got_pod = rendered["spec"]["template"]["spec"]
        want_pod = wanted["spec"]["template"]["spec"]
        (got,), (want,) = got_pod.pop("containers"), want_pod.pop("containers")
        assert got_pod == want_pod
        # The chart passes more settings (resync, poll, teardown) and the pull policy.
        assert [var for var in want["env"] if var not in got["env"]] == []
        for key in ("env", "imagePullPolicy"):
            got.pop(key)
            want.pop(key, None)
        assert got == want
        rendered["spec"].pop("template")
        wanted["spec"].pop("template")
        assert rendered["spec"] == wanted["spec"]


def test_cluster_role_is_rbac_rules_with_nothing_wider(all_off: list[dict[str, Any]]) -> None:
    rules = find(all_off, "ClusterRole")["rules"]
    assert rules == rbac.RULES
    for rule in rules:
        assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]
        assert "secrets" not in rule["resources"]  # Secrets reach pods by reference only
        assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"])


def _granted(rules: list[dict[str, Any]], group: str, resource: str) -> set[str]:
    return {
        verb
        for rule in rules
        if group in rule["apiGroups"] and resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_cluster_role_covers_every_child_the_operator_creates(
    all_off: list[dict[str, Any]],
) -> None:
    rules = find(all_off, "ClusterRole")["rules"]
    spec = parse_spec({"symbols": ["AAPL"], "monitoring": {"service_monitor": True}})[1]
    system = System("demo", NAMESPACE, "uid-1", spec, DEFAULT_IMAGE, execution_replicas=1)
    plural = {"NetworkPolicy": "networkpolicies"}
    for child in children(system):
        group = child["apiVersion"].rpartition("/")[0]
        resource = plural.get(child["kind"], child["kind"].lower() + "s")
        assert set(rbac.CHILDREN) <= _granted(rules, group, resource), child["kind"]


def test_operator_holds_what_it_grants_the_risk_manager(all_off: list[dict[str, Any]]) -> None:
    """RBAC refuses to let a subject grant more than it holds (no `escalate` here)."""
    rules = find(all_off, "ClusterRole")["rules"]
    spec = parse_spec({"symbols": ["AAPL"]})[1]
    system = System("demo", NAMESPACE, "uid-1", spec, DEFAULT_IMAGE, execution_replicas=1)
    role = find(risk_account(system), "Role")
    for rule in role["rules"]:
        assert rule["resourceNames"] == ["demo"]  # its own TradingSystem only
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                assert set(rule["verbs"]) <= _granted(rules, group, resource)


def test_prometheus_rules_name_every_component() -> None:
    text = (CHART / "templates" / "prometheusrule.yaml").read_text()
    listed = text.split('$components := "', 1)[1].split('"', 1)[0].split("|")
    assert sorted(listed) == sorted(catalog.COMPONENTS) == sorted(names.COMPONENTS)


def _value_paths(values: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Paths of values.yaml the schema does not describe."""
    missing: list[str] = []
    if not isinstance(values, dict) or schema.get("type") != "object":
        return missing
    if schema.get("additionalProperties") is not False:
        return missing  # a free-form map (labels, resources, a TradingSystem's spec)
    for key, value in values.items():
        sub = schema["properties"].get(key)
        if sub is None:
            missing.append(f"{path}.{key}")
        else:
            missing += _value_paths(value, sub, f"{path}.{key}")
    return missing


def test_values_schema_describes_every_value() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert _value_paths(values, schema) == []
    assert schema["additionalProperties"] is False


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ("operatr.resyncSeconds=10", "operatr"),
        ("operator.pollSeconds=0", "pollSeconds"),
        ("image.pullPolicy=Sometimes", "pullPolicy"),
        ("monitoring.prometheusRule.feedDownFor=soon", "feedDownFor"),
        # The TradingSystem's spec, against the models' schema: before the API server sees it.
        ("system.spec.execution.venue=nasdaq", "/system/spec/execution/venue"),
        ("system.spec.symbol=AAPL", "'symbol' not allowed"),
        ("system.spec.strategy.bar_interval_s=0", "/system/spec/strategy/bar_interval_s"),
    ],
)
def test_values_schema_refuses_a_bad_value(value: str, complaint: str) -> None:
    result = helm.run("template", "demo", str(CHART), "--set", value, check=False)
    assert result.returncode != 0
    assert complaint in result.stderr


def test_versions_agree_chart_project_and_default_image() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    meta = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert meta["appVersion"] == project
    assert f"tradingsystem:{project}" == DEFAULT_IMAGE


def _notes(*sets: str) -> str:
    args = ["install", "demo", str(CHART), "--dry-run=client", "--namespace", NAMESPACE]
    for value in sets:
        args += ["--set", value]
    return helm.run(*args).stdout.split("NOTES:", 1)[1]


def test_notes_tell_what_to_run_next() -> None:
    notes = _notes()
    assert f"rollout status deployment/{names.MANAGER}" in notes
    example = yaml.safe_load((ROOT / "examples" / "simulated.yaml").read_text())
    assert "apply -f examples/simulated.yaml" in notes
    assert f"wait tradingsystem/{example['metadata']['name']} --for=condition=Ready" in notes
    assert "Monitoring" not in notes


def test_notes_name_the_system_installed_with_the_chart() -> None:
    notes = _notes("system.enabled=true", "system.name=paper", "monitoring.dashboard.enabled=true")
    assert "wait tradingsystem/paper --for=condition=Ready" in notes
    assert "apply -f examples" not in notes
    assert "dashboard: true" in notes


@pytest.mark.parametrize(
    ("sets", "scraped"),
    [
        ((), False),
        (("monitoring.serviceMonitor.enabled=true",), True),
        (
            (
                "monitoring.serviceMonitor.enabled=true",
                "system.spec.monitoring.service_monitor=false",
            ),
            False,
        ),
    ],
    ids=["switch-off", "switch-on", "spec-says-no"],
)
def test_the_systems_components_are_scraped_with_the_switch(
    sets: tuple[str, ...], scraped: bool
) -> None:
    """The operator creates the components' ServiceMonitor when the spec asks; the chart's
    switch asks for its system unless the spec's own value says otherwise."""
    system = find(template("system.enabled=true", *sets), "TradingSystem")
    assert system["spec"]["monitoring"]["service_monitor"] is scraped
    spec = parse_spec(system)[1]
    built = System("demo", NAMESPACE, "uid-1", spec, DEFAULT_IMAGE, execution_replicas=1)
    kinds = [child["kind"] for child in children(built)]
    assert ("ServiceMonitor" in kinds) is scraped
