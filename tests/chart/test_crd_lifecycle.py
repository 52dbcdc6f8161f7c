"""The CRD's lifecycle under Helm, with the real binary: the TradingSystem CRD is a template, so
it is in the manifest `helm upgrade` applies (what Helm keeps under `crds/` is installed once and
never upgraded, as the peering CRDs there show); it is kept on `helm uninstall` unless
`crds.keep=false`; `crds.install=false` leaves it to the user. A changed CRD (a v1alpha2 as
docs/crd-versioning.md describes) reaches the upgrade manifest as it is.

What cannot run without a cluster: `helm upgrade` itself (even `--dry-run=client` asks the
cluster for the release), the API server's check of the new CRD against the stored objects and
the storage version migration; `helm template --is-upgrade` renders exactly what an upgrade
would apply, which is what is checked here."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import yaml

from components import crd
from tests.chart import helm
from tests.chart.helm import CHART, NAMESPACE
from tests.operator.crd_schema import CrdSchema


def _render(chart: Path, *args: str) -> list[dict[str, Any]]:
    result = helm.run("template", "demo", str(chart), "--namespace", NAMESPACE, *args)
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def _crds(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == "CustomResourceDefinition"}


def test_upgrade_manifest_when_rendered_then_holds_the_crd_and_not_crds_dir() -> None:
    upgrade = _crds(_render(CHART, "--is-upgrade"))
    assert list(upgrade) == [crd.NAME]  # the template; crds/ is not part of an upgrade
    everything = _crds(_render(CHART, "--include-crds"))
    assert set(everything) == {crd.NAME, "clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"}
    assert upgrade[crd.NAME]["spec"] == crd.definition()["spec"]


def test_crd_when_kept_then_annotated_so_uninstall_leaves_it() -> None:
    kept = _crds(_render(CHART))[crd.NAME]["metadata"]
    assert kept["annotations"] == {"helm.sh/resource-policy": "keep"}
    assert kept["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    assert kept["labels"]["app.kubernetes.io/part-of"] == "tradingsystem"
    not_kept = _crds(_render(CHART, "--set", "crds.keep=false"))[crd.NAME]["metadata"]
    assert not not_kept.get("annotations")
    assert crd.NAME not in _crds(_render(CHART, "--set", "crds.install=false"))


def _v1alpha2(definition: dict[str, Any]) -> dict[str, Any]:
    """The next version as docs/crd-versioning.md plans it: both served, the new one stored."""
    changed = copy.deepcopy(definition)
    old = changed["spec"]["versions"][0]
    new = copy.deepcopy(old)
    new["name"] = "v1alpha2"
    old["storage"] = False
    old["deprecated"] = True
    changed["spec"]["versions"].append(new)
    return changed


def test_upgrade_manifest_when_crd_changed_then_carries_the_new_version(tmp_path: Path) -> None:
    chart = tmp_path / "tradingsystem"
    shutil.copytree(CHART, chart)
    generated = chart / "files" / "crds" / "tradingsystem.yaml"
    generated.write_text(yaml.safe_dump(_v1alpha2(crd.definition()), sort_keys=False))
    helm.run("lint", "--strict", str(chart))

    upgraded = _crds(_render(chart, "--is-upgrade"))[crd.NAME]
    versions = [
        (v["name"], v["served"], v["storage"], v.get("deprecated", False))
        for v in upgraded["spec"]["versions"]
    ]
    assert versions == [("v1alpha1", True, False, True), ("v1alpha2", True, True, False)]
    assert upgraded["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    # An object stored under v1alpha1 is still valid under v1alpha2 (conversion: None).
    system = {
        "apiVersion": "trading.dev/v1alpha2",
        "kind": "TradingSystem",
        "metadata": {"name": "demo"},
        "spec": {"symbols": ["AAPL"]},
    }
    new = copy.deepcopy(upgraded)
    new["spec"]["versions"] = [upgraded["spec"]["versions"][1]]
    assert CrdSchema(new).admit(system)[1] == []
