"""The Tiltfile, without Tilt: it parses (Starlark is a Python subset), the chart installs with the
values it sets (the operator then restarted by watchfiles on a writable root), it names every
component, its live update syncs what the dev image copies, and its example exists."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

from components import catalog
from tests.chart.helm import find, template

ROOT = Path(__file__).resolve().parents[2]
TILTFILE = (ROOT / "Tiltfile").read_text()


def _constants() -> dict[str, Any]:
    tree = ast.parse(TILTFILE)
    constants: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name.isupper():
                constants[name] = ast.literal_eval(node.value)
    return constants


def test_names_every_component_once() -> None:
    components = _constants()["COMPONENTS"]
    assert sorted(components) == sorted(catalog.COMPONENTS)
    assert len(set(components)) == len(components)


def test_chart_renders_valid_with_the_tiltfiles_values() -> None:
    objects = template(*_constants()["HELM_SET"])
    for obj in objects:
        if obj["apiVersion"] != "kopf.dev/v1":  # kopf's peering object: no official schema
            kubernetes_validate.validate(obj, "1.31", strict=True)
    container = find(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][:3] == ["python", "-m", "watchfiles"]
    launch = "python -m trading_operator.launch run -m trading_operator.handlers"
    assert container["command"][-2].startswith(launch)
    assert container["command"][-1] == "/app/src"
    assert container["securityContext"]["readOnlyRootFilesystem"] is False


def test_live_update_syncs_what_the_dev_image_copies() -> None:
    syncs = dict(
        (local, remote)
        for local, remote in (
            line.strip().removeprefix("sync(").removesuffix("),").replace("'", "").split(", ")
            for line in TILTFILE.splitlines()
            if line.strip().startswith("sync(")
        )
    )
    assert set(syncs) == {"components", "operator/trading_operator"}
    for local, remote in syncs.items():
        assert (ROOT / local).is_dir()
        assert f"COPY --chown=10001:10001 {local} {remote}" in TILTFILE
    assert "ENV PYTHONPATH=/app/src:" in TILTFILE


def test_default_example_is_a_trading_system() -> None:
    default = TILTFILE.split("settings.get('example', '", 1)[1].split("'", 1)[0]
    body = yaml.safe_load((ROOT / default).read_text())
    assert body["kind"] == "TradingSystem"
