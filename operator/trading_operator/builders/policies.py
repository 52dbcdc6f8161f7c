"""The NetworkPolicy of a system's pods. In: only the broker's ports (from the system's own
pods) and the HTTP port (metrics and probes, from anywhere: Prometheus lives elsewhere). Out:
the broker's ports on the system's own pods, DNS, and HTTPS anywhere (the feeds and venues are
on the internet; the risk manager reports its breaker to the API server, which is not a pod, on
443 through the `kubernetes` Service or on 6443 where a CNI sees the translated address).
Nothing else leaves: a compromised pod cannot reach the rest of the cluster."""

from __future__ import annotations

from typing import Any

from trading_operator import names
from trading_operator.builders.services import broker_ports
from trading_operator.builders.system import System

DNS = {"namespaceSelector": {}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}
HTTPS_PORTS = (443, 6443)


def network_policy(system: System) -> dict[str, Any]:
    own_pods = {"podSelector": {"matchLabels": names.selector(system.name)}}
    bus = [{"protocol": "TCP", "port": port} for _, port in broker_ports(system)]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": system.metadata(names.network_policy(system.name)),
        "spec": {
            "podSelector": {"matchLabels": names.selector(system.name)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [
                {"from": [own_pods], "ports": bus},
                {"ports": [{"protocol": "TCP", "port": names.HTTP_PORT}]},
            ],
            "egress": [
                {"to": [own_pods], "ports": bus},
                {
                    "to": [DNS],
                    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                },
                {"ports": [{"protocol": "TCP", "port": port} for port in HTTPS_PORTS]},
            ],
        },
    }
