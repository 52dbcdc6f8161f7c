"""The risk manager's config refuses what it cannot enforce, here and (through the CRD's CEL
rules) at the API server alike: an allow-list naming symbols the system does not trade, an
unknown time zone, a session start that is no time of day."""

from __future__ import annotations

import pytest

from components import crd
from components.core.config import parse_spec
from components.core.errors import ConfigError
from tests.operator.crd_schema import CrdSchema


def manifest(risk: dict[str, object]) -> dict[str, object]:
    return {
        "apiVersion": "trading.dev/v1alpha1",
        "kind": "TradingSystem",
        "metadata": {"name": "demo"},
        "spec": {"symbols": ["AAPL", "MSFT"], "risk": risk},
    }


def test_allowed_symbols_when_subset_then_admitted_by_both() -> None:
    document = manifest({"limits": {"allowed_symbols": ["MSFT"]}})
    assert parse_spec(document)[1].risk.limits.allowed_symbols == ["MSFT"]
    assert CrdSchema(crd.definition()).admit(document)[1] == []


def test_allowed_symbols_when_not_traded_then_refused_by_both() -> None:
    document = manifest({"limits": {"allowed_symbols": ["MSFT", "IBM"]}})
    with pytest.raises(ConfigError, match=r"risk\.limits\.allowed_symbols: IBM not in symbols"):
        parse_spec(document)
    _, problems = CrdSchema(crd.definition()).admit(document)
    assert any("spec.risk.limits.allowed_symbols: must all be in symbols" in p for p in problems)


@pytest.mark.parametrize("start", ["9:30", "24:00", "09:60"])
def test_session_start_when_not_hh_mm_then_refused(start: str) -> None:
    with pytest.raises(ConfigError, match=r"risk\.session\.start"):
        parse_spec(manifest({"session": {"start": start}}))
