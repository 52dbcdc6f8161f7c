import pytest

from components.core.errors import ConfigError
from components.runtime.credentials import AlpacaCredentials


def test_reads_both_variables_and_builds_alpaca_headers():
    creds = AlpacaCredentials.from_env(
        {"APCA_API_KEY_ID": "PKTEST", "APCA_API_SECRET_KEY": "s3cr3t-value"}
    )
    assert creds.headers() == {"APCA-API-KEY-ID": "PKTEST", "APCA-API-SECRET-KEY": "s3cr3t-value"}


def test_the_secret_never_shows_in_repr_str_or_dumps():
    creds = AlpacaCredentials.from_env(
        {"APCA_API_KEY_ID": "PKTEST", "APCA_API_SECRET_KEY": "s3cr3t-value"}
    )
    for text in (repr(creds), str(creds), creds.model_dump_json(), str(creds.model_dump())):
        assert "s3cr3t-value" not in text


def test_missing_or_blank_variables_are_named_without_values():
    with pytest.raises(ConfigError) as caught:
        AlpacaCredentials.from_env({"APCA_API_KEY_ID": "PKTEST", "APCA_API_SECRET_KEY": "  "})
    assert "APCA_API_SECRET_KEY: not set" in str(caught.value)
    assert "PKTEST" not in str(caught.value)
