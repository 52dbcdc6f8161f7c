"""The NetworkPolicy of a system's pods: in, only the broker's ports (from the system's own pods)
and the HTTP port (metrics and probes, from anywhere: Prometheus lives elsewhere). Out is open:
the feeds and venues are on the internet."""

from __future__ import annotations

from typing import Any

from trading_operator import names
from trading_operator.builders.services import broker_ports
from trading_operator.builders.system import System


def network_policy(system: System) -> dict[str, Any]:
    own_pods = {"podSelector": {"matchLabels": names.selector(system.name)}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": system.metadata(names.network_policy(system.name)),
        "spec": {
            "podSelector": {"matchLabels": names.selector(system.name)},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [own_pods],
                    "ports": [
                        {"protocol": "TCP", "port": port} for _, port in broker_ports(system)
                    ],
                },
                {"ports": [{"protocol": "TCP", "port": names.HTTP_PORT}]},
            ],
        },
    }
