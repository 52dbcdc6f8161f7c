"""The risk manager's admin token: the bearer token of its `/breaker/trip` and `/breaker/reset`
(`TS_RISK_ADMIN_TOKEN`), from a Secret the spec names or, by default, one the operator creates
per system with a random token. Created once and never applied again (`apply.create_once`): a
token rotated by every pass would lock out whoever holds it. Only the risk pod reads it.
"""

from __future__ import annotations

import base64
import secrets
from typing import Any

from trading_operator import names
from trading_operator.builders.system import System

ADMIN_TOKEN_KEY = "TS_RISK_ADMIN_TOKEN"


def admin_secret_name(system: System) -> str:
    return system.spec.risk_admin_secret or names.risk_admin_secret(system.name)


def admin_secret(system: System) -> dict[str, Any] | None:
    """The Secret to create when the spec names none, with a fresh random token; else None."""
    if system.spec.risk_admin_secret is not None:
        return None
    token = secrets.token_urlsafe(32)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": system.metadata(names.risk_admin_secret(system.name), "risk"),
        "type": "Opaque",
        "data": {ADMIN_TOKEN_KEY: base64.b64encode(token.encode()).decode()},
    }


def admin_token_env(system: System) -> dict[str, Any]:
    reference = {"name": admin_secret_name(system), "key": ADMIN_TOKEN_KEY}
    return {"name": ADMIN_TOKEN_KEY, "valueFrom": {"secretKeyRef": reference}}
