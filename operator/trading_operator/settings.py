"""How the operator runs, from its environment (the chart sets these):

TS_OPERATOR_IMAGE            image of the components when a spec names none
TS_OPERATOR_RESYNC_S         every system is reconciled at least this often (default 30)
TS_OPERATOR_POLL_S           the risk manager's /status is polled this often (default 5)
TS_OPERATOR_RISK_STATUS_URL  where to poll it; {service} and {namespace} are filled in
TS_OPERATOR_METRICS_PORT     the operator's /metrics and /health (default 9090; 0: any free)
TS_OPERATOR_TEARDOWN_TIMEOUT_S  how long a deletion waits for execution to stop (default 120)
TS_OPERATOR_RETRY_S          delay before a failed pass or teardown step is retried (default 5)
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_IMAGE = "tradingsystem:0.1.0"
DEFAULT_RISK_STATUS_URL = "http://{service}.{namespace}.svc:8080/status"


class OperatorSettings(BaseModel):
    model_config = ConfigDict(frozen=True)
    image: str = DEFAULT_IMAGE
    resync_s: float = Field(30.0, gt=0)
    poll_s: float = Field(5.0, gt=0)
    risk_status_url: str = DEFAULT_RISK_STATUS_URL
    metrics_port: int = Field(9090, ge=0, le=65535)
    teardown_timeout_s: float = Field(120.0, ge=0)
    retry_s: float = Field(5.0, gt=0)


def from_environment(environ: Mapping[str, str] | None = None) -> OperatorSettings:
    env = os.environ if environ is None else environ
    fields = {
        "image": "TS_OPERATOR_IMAGE",
        "resync_s": "TS_OPERATOR_RESYNC_S",
        "poll_s": "TS_OPERATOR_POLL_S",
        "risk_status_url": "TS_OPERATOR_RISK_STATUS_URL",
        "metrics_port": "TS_OPERATOR_METRICS_PORT",
        "teardown_timeout_s": "TS_OPERATOR_TEARDOWN_TIMEOUT_S",
        "retry_s": "TS_OPERATOR_RETRY_S",
    }
    return OperatorSettings.model_validate(
        {field: env[variable] for field, variable in fields.items() if variable in env}
    )
