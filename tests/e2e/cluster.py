"""A throwaway kind cluster driven by the real kind, docker, kubectl and helm binaries
(`make e2e` puts kind, kubectl and helm in .tools/bin). Why a run cannot happen is a skip reason."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".tools" / "bin"
NAME = "tradingsystem-e2e"
IMAGE = "tradingsystem:0.1.0"  # what `make image` builds and the chart runs
NAMESPACE = "trading"
RELEASE = "tradingsystem"


def quickstart(name: str) -> str:
    """The README's shell block marked `<!-- quickstart: NAME -->`, as it stands."""
    readme = (ROOT / "README.md").read_text()
    after = readme.split(f"<!-- quickstart: {name} -->\n```sh\n", 1)[1]
    return after.split("```", 1)[0]


def tool(name: str) -> str | None:
    local = TOOLS / name
    return str(local) if local.is_file() else shutil.which(name)


def why_not() -> str | None:
    """Why the end-to-end suite cannot run here, or None when it can."""
    docker = tool("docker")
    if docker is None:
        return "no docker CLI: the kind end-to-end suite needs Docker"
    info = subprocess.run([docker, "info"], capture_output=True, timeout=30, check=False)
    if info.returncode != 0:
        return "no Docker engine answers `docker info`: the kind end-to-end suite needs one"
    for name in ("kind", "kubectl", "helm"):
        if tool(name) is None:
            return f"no {name} in .tools/bin or on PATH: run `make e2e`, which installs it"
    if os.environ.get("TS_E2E") != "1":
        return "the kind suite creates a cluster (minutes): it runs under `make e2e` (TS_E2E=1)"
    return None


@dataclass
class Cluster:
    kubeconfig: Path

    def run(self, *command: str, timeout_s: float = 600, check: bool = True) -> str:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig)}
        binary = tool(command[0]) or command[0]
        result = subprocess.run(
            [binary, *command[1:]],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(command)}:\n{result.stdout}{result.stderr}")
        return result.stdout

    def script(self, text: str, timeout_s: float = 1800) -> str:
        """Shell lines as a user types them, on this cluster (KUBECONFIG) and not another."""
        text = text.replace("--name tradingsystem\n", f"--name {NAME}\n")
        return self.run("sh", "-e", "-x", "-c", text, timeout_s=timeout_s)

    def kubectl(self, *args: str, timeout_s: float = 600) -> str:
        return self.run("kubectl", "--namespace", NAMESPACE, *args, timeout_s=timeout_s)

    def get(self, *args: str) -> dict[str, Any]:
        return json.loads(self.kubectl("get", *args, "--output", "json"))

    def metrics(self, service: str) -> str:
        """A component's /metrics through the API server's service proxy (no port-forward)."""
        path = f"/api/v1/namespaces/{NAMESPACE}/services/{service}:http/proxy/metrics"
        return self.run("kubectl", "get", "--raw", path)

    def delete(self) -> None:
        self.run("kind", "delete", "cluster", "--name", NAME, check=False)


def eventually(what: str, check: Callable[[], Any], timeout_s: float = 300) -> Any:
    """Poll `check` until it returns something truthy (a cluster has no events to wait on)."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(2)
