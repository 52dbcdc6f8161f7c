"""The Helm chart, rendered by the real `helm`: lint-clean; valid against the official schemas
with every switch off and on; its CRD and RBAC the generated copies of the Python sources; the
operator's objects the ones `trading_operator.deploy` describes, cluster-wide and namespaced;
RBAC that covers exactly what the operator creates and nothing wider, and in namespaced mode
nothing cluster-wide over children; a values schema that describes every value and refuses
unknown ones. The CRD lifecycle (a template, kept on uninstall, upgraded by `helm upgrade`) is
in test_crd_lifecycle.py."""

from __future__ import annotations

import json
import tomllib
from typing import Any

import kubernetes_validate
import pytest
import yaml

from components import catalog
from components import crd as crd_module
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
PEERING_KINDS = {"KopfPeering", "ClusterKopfPeering"}  # checked against their CRDs
WATCHED = ("trading", "paper")
NAMESPACED = (f"operator.watchNamespaces={{{','.join(WATCHED)}}}",)


@pytest.fixture(scope="module")
def all_off() -> list[dict[str, Any]]:
    return template()


@pytest.fixture(scope="module")
def all_on() -> list[dict[str, Any]]:
    return template(*ALL_ON)


@pytest.fixture(scope="module")
def namespaced() -> list[dict[str, Any]]:
    return template(*NAMESPACED)


def _crd(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return find(objects, "CustomResourceDefinition", crd_module.NAME)


def test_generated_copies_match_the_python_sources() -> None:
    for name, text in chart.files(CHART).items():
        assert (CHART / name).read_text() == text, f"{name} is stale: run `make chart`"
    committed_crd = (ROOT / "crds" / "tradingsystem.yaml").read_text()
    assert (CHART / "files" / "crds" / "tradingsystem.yaml").read_text() == committed_crd


@pytest.mark.parametrize("switches", [(), ALL_ON], ids=["defaults", "all-on"])
def test_lint_strict_is_clean(switches: tuple[str, ...]) -> None:
    args = ["lint", "--strict", str(CHART), "--namespace", NAMESPACE]
    for value in switches:
        args += ["--set", value]
    result = helm.run(*args)
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("rendered", ["all_off", "all_on", "namespaced"])
def test_every_object_is_valid_against_the_official_schemas(
    rendered: str, request: pytest.FixtureRequest
) -> None:
    objects = request.getfixturevalue(rendered)
    schema = CrdSchema(_crd(objects))
    peering = {
        crd_["spec"]["names"]["kind"]: CrdSchema(crd_)
        for crd_ in objects
        if crd_["kind"] == "CustomResourceDefinition" and crd_["spec"]["group"] == "kopf.dev"
    }
    for obj in objects:
        if obj["kind"] == "TradingSystem":
            _, problems = schema.admit(obj)
            assert problems == [], problems
            parse_spec(obj)  # and the operator would accept it
        elif obj["kind"] in PEERING_KINDS:
            assert peering[obj["kind"]].admit(obj)[1] == []
        elif obj["kind"] not in MONITORING_KINDS:
            kubernetes_validate.validate(obj, KUBERNETES, strict=True)


def test_switches_off_render_only_the_operator(all_off: list[dict[str, Any]]) -> None:
    kinds = sorted(obj["kind"] for obj in all_off)
    assert kinds == [
        "ClusterKopfPeering",
        "ClusterRole",
        "ClusterRoleBinding",
        *["CustomResourceDefinition"] * 3,  # TradingSystem, and kopf's two peering kinds
        "Deployment",
        "NetworkPolicy",
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


def _find_in(objects: list[dict[str, Any]], wanted: dict[str, Any]) -> dict[str, Any]:
    meta = wanted["metadata"]
    matches = [
        obj
        for obj in objects
        if (obj["kind"], obj["metadata"]["name"], obj["metadata"].get("namespace"))
        == (wanted["kind"], meta["name"], meta.get("namespace"))
    ]
    assert len(matches) == 1, f"{len(matches)} {wanted['kind']} {meta}"
    return matches[0]


@pytest.mark.parametrize(
    ("rendered", "watched"), [("all_off", ()), ("namespaced", WATCHED)], ids=["cluster", "ns"]
)
def test_operator_objects_are_the_ones_deploy_describes(
    rendered: str, watched: tuple[str, ...], request: pytest.FixtureRequest
) -> None:
    objects = request.getfixturevalue(rendered)
    expected = deploy.manifests(NAMESPACE, DEFAULT_IMAGE, watched)
    operator_kinds = {obj["kind"] for obj in expected}
    extra = [
        (obj["kind"], obj["metadata"]["name"])
        for obj in objects
        if obj["kind"] in operator_kinds
        and obj["metadata"]["name"] == names.MANAGER
        and not any(_find_in([obj], wanted) for wanted in expected if _same(obj, wanted))
    ]
    assert extra == []  # nothing of the operator's that deploy.py does not describe
    for wanted in expected:
        rendered_ = json.loads(json.dumps(_find_in(objects, wanted)))  # fixtures are shared
        if wanted["kind"] != "Deployment":
            assert _without_labels(rendered_) == _without_labels(wanted)
            continue
        got_pod = rendered_["spec"]["template"]["spec"]
        want_pod = wanted["spec"]["template"]["spec"]
        (got,), (want,) = got_pod.pop("containers"), want_pod.pop("containers")
        assert got_pod == want_pod
        # The chart passes more settings (resync, poll, teardown) and the pull policy.
        assert [var for var in want["env"] if var not in got["env"]] == []
        for key in ("env", "imagePullPolicy"):
            got.pop(key)
            want.pop(key, None)
        assert got == want
        rendered_["spec"].pop("template")
        wanted["spec"].pop("template")
        assert rendered_["spec"] == wanted["spec"]


def _same(obj: dict[str, Any], wanted: dict[str, Any]) -> bool:
    meta, want = obj["metadata"], wanted["metadata"]
    return (obj["kind"], meta["name"], meta.get("namespace")) == (
        wanted["kind"],
        want["name"],
        want.get("namespace"),
    )


def test_cluster_role_is_rbac_rules_with_nothing_wider(all_off: list[dict[str, Any]]) -> None:
    rules = find(all_off, "ClusterRole")["rules"]
    assert rules == rbac.cluster_rules()
    for rule in rules:
        assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]
        assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"])
    # The admin-token Secrets: made and read by name, never listed or watched.
    assert _granted(rules, "", "secrets") == {"get", "create", "patch"}


def test_rbac_lets_children_block_their_owners_deletion(all_off: list[dict[str, Any]]) -> None:
    """OwnerReferencesPermissionEnforcement: `blockOwnerDeletion` needs `update` on the owner's
    finalizers subresource."""
    rules = find(all_off, "ClusterRole")["rules"]
    assert "update" in _granted(rules, names.GROUP, f"{names.PLURAL}/finalizers")


def test_namespaced_mode_grants_nothing_cluster_wide_over_children(
    namespaced: list[dict[str, Any]],
) -> None:
    cluster = find(namespaced, "ClusterRole")["rules"]
    for group, resource in [
        ("apps", "deployments"),
        ("rbac.authorization.k8s.io", "roles"),
        ("rbac.authorization.k8s.io", "rolebindings"),
        ("", "secrets"),
        ("", "configmaps"),
        (names.GROUP, names.PLURAL),
    ]:
        assert _granted(cluster, group, resource) == set(), resource
    assert all(set(rule["verbs"]) <= {"get", "list", "watch"} for rule in cluster)
    roles = [obj for obj in namespaced if obj["kind"] == "Role"]
    assert sorted(role["metadata"]["namespace"] for role in roles) == sorted(WATCHED)
    bindings = [obj for obj in namespaced if obj["kind"] == "RoleBinding"]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == sorted(WATCHED)
    for role in roles:
        assert set(rbac.CHILDREN) <= _granted(role["rules"], "apps", "deployments")
        assert "update" in _granted(role["rules"], names.GROUP, f"{names.PLURAL}/finalizers")
    command = find(namespaced, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert [arg for arg in command["command"] if arg.startswith("--namespace")] == [
        f"--namespace={ns}" for ns in WATCHED
    ]
    assert "--all-namespaces" not in command["command"]


def _granted(rules: list[dict[str, Any]], group: str, resource: str) -> set[str]:
    return {
        verb
        for rule in rules
        if group in rule["apiGroups"] and resource in rule["resources"]
        for verb in rule["verbs"]
    }


@pytest.mark.parametrize("rendered", ["all_off", "namespaced"])
def test_rbac_covers_every_child_the_operator_creates(
    rendered: str, request: pytest.FixtureRequest
) -> None:
    objects = request.getfixturevalue(rendered)
    roles = [obj for obj in objects if obj["kind"] == "Role"]
    rules = (roles[0] if roles else find(objects, "ClusterRole"))["rules"]
    spec = parse_spec({"symbols": ["AAPL"], "monitoring": {"service_monitor": True}})[1]
    system = System("demo", NAMESPACE, "uid-1", spec, DEFAULT_IMAGE, execution_replicas=1)
    plural = {"NetworkPolicy": "networkpolicies"}
    for child in children(system):
        group = child["apiVersion"].rpartition("/")[0]
        resource = plural.get(child["kind"], child["kind"].lower() + "s")
        # Every verb of a child but watch (only the kinds the operator watches have that).
        assert set(rbac.UNWATCHED_CHILDREN) <= _granted(rules, group, resource), child["kind"]


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
