"""The system's NetworkPolicy: what may leave its pods (broker, DNS, HTTPS), nothing else."""

from __future__ import annotations

from components.core.config import parse_spec
from trading_operator import names
from trading_operator.builders import System
from trading_operator.builders.policies import network_policy
from trading_operator.builders.services import broker_ports
from trading_operator.settings import DEFAULT_IMAGE


def _policy() -> dict:
    spec = parse_spec({"symbols": ["AAPL"]})[1]
    return network_policy(System("demo", "ns", "uid-1", spec, DEFAULT_IMAGE, execution_replicas=1))


def test_network_policy_when_built_then_egress_is_broker_dns_and_https_only() -> None:
    policy = _policy()["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    ports = [
        (port["protocol"], port["port"]) for rule in policy["egress"] for port in rule["ports"]
    ]
    spec = parse_spec({"symbols": ["AAPL"]})[1]
    system = System("demo", "ns", "uid-1", spec, DEFAULT_IMAGE, execution_replicas=1)
    bus = [("TCP", port) for _, port in broker_ports(system)]
    assert sorted(ports) == sorted([*bus, ("UDP", 53), ("TCP", 53), ("TCP", 443), ("TCP", 6443)])
    broker_rule = policy["egress"][0]
    assert broker_rule["to"] == [{"podSelector": {"matchLabels": names.selector("demo")}}]
    assert all(rule.get("to") for rule in policy["egress"][:2])  # only HTTPS goes anywhere
