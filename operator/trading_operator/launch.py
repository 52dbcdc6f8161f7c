"""How the operator's process starts in its pod: `kopf run` with a peering priority of its own.

Replicas elect a leader through kopf peering: the replica with the highest priority serves, the
others pause until its keep-alive expires. kopf pauses *every* operator when two share the
highest priority, and the replicas of one Deployment share one pod template, so each takes its
priority from its pod's name (`POD_ID`, which kopf also uses as its peer identity).

`python -m trading_operator.launch run -m trading_operator.handlers --peering=NAME ...`
"""

from __future__ import annotations

import hashlib
import os
import sys

PRIORITY_RANGE = 2**31 - 1


def priority(pod_name: str) -> int:
    """A stable number in 1..2**31-1 from the pod's name; two pods share one by chance only
    (about one in two billion), and then kopf pauses both rather than let both write."""
    digest = hashlib.sha256(pod_name.encode()).digest()
    return int.from_bytes(digest[:8], "big") % PRIORITY_RANGE + 1


def command(argv: list[str], environ: dict[str, str]) -> list[str]:
    pod = environ.get("POD_ID")
    if not pod:
        raise SystemExit("while starting the operator: POD_ID (the pod's name) is not set")
    return ["kopf", *argv, f"--priority={priority(pod)}"]


def main(argv: list[str]) -> int:
    args = command(argv, dict(os.environ))
    os.execvp(args[0], args)  # replaces this process: kopf gets the signals directly
    return 0  # not reached


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
