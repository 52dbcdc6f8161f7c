"""Where a component runs, as opposed to what it does (that is the spec): ports, broker host, data
directory. Read from the environment, so the same config file serves a pod and a local process.

    TS_SYSTEM_NAME        name of the TradingSystem (default: the manifest's metadata.name)
    TS_COMPONENT_ID       publisher id on the bus (default: the component's name)
    TS_LISTEN_HOST        address the component listens on: HTTP, and the broker's ports (0.0.0.0)
    TS_HTTP_PORT          their port (default 8080)
    TS_BROKER_HOST        host of the broker (default 127.0.0.1)
    TS_BROKER_PUBLISH_PORT, TS_BROKER_SUBSCRIBE_PORT, TS_BROKER_REQUEST_PORT, TS_BROKER_REPLY_PORT
                          override the spec's broker ports (local runs pick free ones)
    TS_DATA_DIR           where state logs live (default ./var/<component>)
    TS_LOG_LEVEL          DEBUG, INFO, WARNING or ERROR (default INFO)
    TS_SHUTDOWN_TIMEOUT_S bound on a graceful shutdown (default 10)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from components.core.config import BrokerConfig, Port
from components.core.errors import ConfigError


class BrokerEndpoints(BaseModel):
    model_config = ConfigDict(frozen=True)
    host: str
    publish_port: Port
    subscribe_port: Port
    request_port: Port
    reply_port: Port

    def url(self, port: int) -> str:
        return f"tcp://{self.host}:{port}"

    @property
    def publish_url(self) -> str:
        return self.url(self.publish_port)

    @property
    def subscribe_url(self) -> str:
        return self.url(self.subscribe_port)

    @property
    def request_url(self) -> str:
        return self.url(self.request_port)

    @property
    def reply_url(self) -> str:
        return self.url(self.reply_port)


class RuntimeSettings(BaseModel):
    model_config = ConfigDict(frozen=True)
    system_name: str
    component_id: str
    listen_host: str = "0.0.0.0"
    http_port: Port = 8080
    broker: BrokerEndpoints
    data_dir: Path
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    shutdown_timeout_s: float = Field(10.0, gt=0, le=300)


def from_environment(
    component: str,
    system_name: str,
    broker: BrokerConfig,
    environ: Mapping[str, str] | None = None,
) -> RuntimeSettings:
    """Settings for `component`, from `environ` (default: the process environment)."""
    env = os.environ if environ is None else environ
    ports = {
        field: env.get(f"TS_BROKER_{field.upper()}", getattr(broker, field))
        for field in ("publish_port", "subscribe_port", "request_port", "reply_port")
    }
    raw = {
        "system_name": env.get("TS_SYSTEM_NAME", system_name),
        "component_id": env.get("TS_COMPONENT_ID", component),
        "listen_host": env.get("TS_LISTEN_HOST", "0.0.0.0"),
        "http_port": env.get("TS_HTTP_PORT", 8080),
        "broker": {"host": env.get("TS_BROKER_HOST", "127.0.0.1"), **ports},
        "data_dir": env.get("TS_DATA_DIR", str(Path("var") / component)),
        "log_level": env.get("TS_LOG_LEVEL", "INFO").upper(),
        "shutdown_timeout_s": env.get("TS_SHUTDOWN_TIMEOUT_S", 10.0),
    }
    try:
        return RuntimeSettings.model_validate(raw)
    except pydantic.ValidationError as exc:
        problems = [
            f"TS_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']} (was {e['input']!r})"
            for e in exc.errors()
        ]
        raise ConfigError("environment", problems) from exc
