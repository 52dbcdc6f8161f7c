"""A Prometheus Operator ServiceMonitor for every metrics Service of the system (opt-in:
`spec.monitoring.service_monitor`; the monitoring.coreos.com CRD must be installed)."""

from __future__ import annotations

from typing import Any

from trading_operator import names
from trading_operator.builders.system import System


def service_monitor(system: System) -> dict[str, Any]:
    interval = f"{system.spec.monitoring.scrape_interval_s}s"
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": system.metadata(names.service_monitor(system.name)),
        "spec": {
            "selector": {"matchLabels": names.selector(system.name)},
            "endpoints": [{"port": "http", "path": "/metrics", "interval": interval}],
        },
    }
