"""The operator's launcher gives each replica its own kopf peering priority (kopf pauses every
operator that shares the highest one)."""

from __future__ import annotations

import pytest

from trading_operator import launch


def test_priority_when_pods_differ_then_priorities_differ_and_repeat() -> None:
    names = [f"trading-operator-7d9f-{suffix}" for suffix in ("abcde", "fghij", "klmno")]
    priorities = [launch.priority(name) for name in names]
    assert len(set(priorities)) == 3
    assert all(1 <= p <= launch.PRIORITY_RANGE for p in priorities)
    assert launch.priority(names[0]) == priorities[0]  # a restarted container keeps its own


def test_command_when_pod_known_then_kopf_with_its_priority() -> None:
    args = launch.command(["run", "--peering=x"], {"POD_ID": "op-1"})
    assert args == ["kopf", "run", "--peering=x", f"--priority={launch.priority('op-1')}"]


def test_command_when_pod_unknown_then_refuses_to_start() -> None:
    with pytest.raises(SystemExit, match="POD_ID"):
        launch.command(["run"], {})
