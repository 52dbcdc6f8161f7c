"""The local supervisor's pure parts: restart backoff and the embedded default."""

from __future__ import annotations

from components.core.config import parse_spec
from components.local import default_document, restart_delay_s


def test_restart_delay_when_failures_repeat_then_doubles_up_to_thirty_seconds() -> None:
    assert [restart_delay_s(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


def test_default_document_when_parsed_then_a_manifest_of_the_simulated_demo() -> None:
    document = default_document()
    assert (document["apiVersion"], document["kind"]) == ("trading.dev/v1alpha1", "TradingSystem")
    name, spec = parse_spec(document)
    assert name == "demo"
    assert spec.marketdata.feed.kind == "synthetic"
    assert spec.execution.venue == "simulated"
