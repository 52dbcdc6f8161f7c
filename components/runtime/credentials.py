"""API credentials, read only from the environment (a Kubernetes Secret reaches a pod as env vars).

The variable names are Alpaca's own (`APCA_API_KEY_ID`, `APCA_API_SECRET_KEY`), so a Secret made for
Alpaca's tools works unchanged; the operator maps a TradingSystem's credentials Secret onto them.
The secret never leaves this object in readable form: `repr`, `str` and pydantic dumps show a mask.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, SecretStr

from components.core.errors import ConfigError

KEY_ID_VAR = "APCA_API_KEY_ID"
SECRET_KEY_VAR = "APCA_API_SECRET_KEY"


class AlpacaCredentials(BaseModel):
    model_config = ConfigDict(frozen=True)
    key_id: str
    secret_key: SecretStr

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AlpacaCredentials:
        """Read both variables; a missing or empty one is a ConfigError naming the variable only."""
        env = os.environ if env is None else env
        missing = [name for name in (KEY_ID_VAR, SECRET_KEY_VAR) if not env.get(name, "").strip()]
        if missing:
            raise ConfigError("environment", [f"{name}: not set" for name in missing])
        return cls(
            key_id=env[KEY_ID_VAR].strip(), secret_key=SecretStr(env[SECRET_KEY_VAR].strip())
        )

    def headers(self) -> dict[str, str]:
        """Alpaca's REST authentication headers (never log these)."""
        return {
            "APCA-API-KEY-ID": self.key_id,
            "APCA-API-SECRET-KEY": self.secret_key.get_secret_value(),
        }
