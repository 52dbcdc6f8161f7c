"""The broker's Service (the bus: every component connects to it) and one metrics Service per
component (Prometheus scrapes `/metrics` on the `http` port)."""

from __future__ import annotations

from typing import Any

from trading_operator import names
from trading_operator.builders.system import System

BROKER_PORTS = ("publish_port", "subscribe_port", "request_port", "reply_port")


def broker_ports(system: System) -> list[tuple[str, int]]:
    broker = system.spec.broker
    return [(port.removesuffix("_port"), getattr(broker, port)) for port in BROKER_PORTS]


def broker_service(system: System) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": system.metadata(names.broker_service(system.name), "broker"),
        "spec": {
            "type": "ClusterIP",
            "selector": names.selector(system.name, "broker"),
            "ports": [
                {"name": name, "port": port, "targetPort": name, "protocol": "TCP"}
                for name, port in broker_ports(system)
            ],
        },
    }


def metrics_service(system: System, component: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": system.metadata(names.metrics_service(system.name, component), component),
        "spec": {
            "type": "ClusterIP",
            "selector": names.selector(system.name, component),
            "ports": [
                {"name": "http", "port": names.HTTP_PORT, "targetPort": "http", "protocol": "TCP"}
            ],
        },
    }
