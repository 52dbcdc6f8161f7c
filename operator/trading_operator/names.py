"""Every name and label the operator gives a child, in one place."""

from __future__ import annotations

from components import catalog
from components.core.config import API_VERSION, KIND

GROUP = API_VERSION.partition("/")[0]
PLURAL = "tradingsystems"
MANAGER = "trading-operator"
FINALIZER = f"{GROUP}/finalizer"
CONFIG_HASH = f"{GROUP}/config-hash"
# Set with spec.halted when the breaker latched a halt (resume policy manual): why it halted.
HALTED_BY_BREAKER = f"{GROUP}/halted-by-breaker"
CONFIG_FILE = "tradingsystem.yaml"
CONFIG_DIR = "/etc/tradingsystem"
DATA_DIR = "/var/lib/tradingsystem"
HTTP_PORT = 8080
COMPONENTS = tuple(catalog.COMPONENTS)  # broker, risk, execution, strategy, marketdata
STATEFUL = ("risk", "execution")  # their logs live on a PersistentVolumeClaim
TEARDOWN_ORDER = ("execution", "strategy", "marketdata", "risk", "broker")


def labels(system: str, component: str | None = None) -> dict[str, str]:
    """The Kubernetes recommended labels."""
    result = {
        "app.kubernetes.io/name": "tradingsystem",
        "app.kubernetes.io/instance": system,
        "app.kubernetes.io/part-of": "tradingsystem",
        "app.kubernetes.io/managed-by": MANAGER,
    }
    if component is not None:
        result["app.kubernetes.io/component"] = component
    return result


def selector(system: str, component: str | None = None) -> dict[str, str]:
    """What a Deployment selects (immutable, so it never includes a version)."""
    result = {"app.kubernetes.io/instance": system, "app.kubernetes.io/name": "tradingsystem"}
    if component is not None:
        result["app.kubernetes.io/component"] = component
    return result


def selector_text(labels_: dict[str, str]) -> str:
    return ",".join(f"{key}={value}" for key, value in sorted(labels_.items()))


def deployment(system: str, component: str) -> str:
    return f"{system}-{component}"


def broker_service(system: str) -> str:
    return f"{system}-broker"


def metrics_service(system: str, component: str) -> str:
    return f"{system}-{component}-metrics"


def config_map(system: str) -> str:
    return f"{system}-config"


def state_claim(system: str, component: str) -> str:
    return f"{system}-{component}-state"


def network_policy(system: str) -> str:
    return f"{system}-bus"


def risk_admin_secret(system: str) -> str:
    return f"{system}-risk-admin"


def risk_account(system: str) -> str:
    """The risk manager's ServiceAccount, Role and RoleBinding: it may patch its own status."""
    return f"{system}-risk"


def service_monitor(system: str) -> str:
    return f"{system}-metrics"


def owner_reference(body: dict) -> dict:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": body["metadata"]["name"],
        "uid": body["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
