"""Looking at a `tradingsystem run` from outside, as an operator would: its child processes (from
/proc, by the config path they were started with), their HTTP ports, and polling for a condition.
"""

from __future__ import annotations

import time
import urllib.error
from collections.abc import Callable
from pathlib import Path
from typing import Any


def children_of(data_dir: Path) -> dict[str, int]:
    """Component name -> pid of the live (not zombie) processes started with this run's config."""
    config = str(data_dir.resolve() / "tradingsystem.yaml")
    found: dict[str, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode().split("\0")
            if (entry / "stat").read_text().rpartition(")")[2].split()[0] == "Z":
                continue
        except OSError:
            continue
        if config in argv and "component" in argv:
            found[argv[argv.index("component") + 1]] = int(entry.name)
    return found


def http_port(pid: int) -> int:
    """The HTTP port the supervisor gave a child (its TS_HTTP_PORT)."""
    for item in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
        if item.startswith(b"TS_HTTP_PORT="):
            return int(item.split(b"=", 1)[1])
    raise AssertionError(f"process {pid} has no TS_HTTP_PORT")


def wait_until(condition: Callable[[], Any], what: str, timeout_s: float) -> Any:
    """Poll `condition` until it is truthy and return it; a process or port not there yet (an
    OSError, a URLError, a half-written answer) counts as not yet."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            value = condition()
        except (OSError, ValueError, urllib.error.URLError):
            value = None
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
