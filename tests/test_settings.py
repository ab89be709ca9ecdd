from __future__ import annotations

from typing import Any

import pytest

from maskinporten_guard.errors import ConfigurationError
from maskinporten_guard.settings import Settings


def test_presets_have_exact_issuers() -> None:
    """The presets carry Maskinporten's issuers with their trailing slash."""
    assert Settings.prod().issuer == "https://maskinporten.no/"
    assert Settings.prod().jwks_uri == "https://maskinporten.no/jwk"
    assert Settings.test().issuer == "https://test.maskinporten.no/"
    assert Settings.test().jwks_uri == "https://test.maskinporten.no/jwk"


def test_custom_issuer_locates_keys_through_metadata() -> None:
    """Without a JWKS URI, keys are found through the metadata document."""
    settings = Settings.custom("http://127.0.0.1:8080/")

    assert settings.jwks_uri is None
    assert (
        settings.metadata_uri
        == "http://127.0.0.1:8080/.well-known/oauth-authorization-server"
    )


BAD = [
    pytest.param({"issuer": "http://maskinporten.no/"}, "https", id="http-issuer"),
    pytest.param({"issuer": "http://10.0.0.1/"}, "https", id="http-private-ip"),
    pytest.param({"issuer": "ftp://x/"}, "https", id="ftp-issuer"),
    pytest.param({"issuer": ""}, "issuer", id="empty-issuer"),
    pytest.param({"issuer": "https://ver2.maskinporten.no/"}, "retired", id="ver2"),
    pytest.param(
        {"issuer": "https://sky.maskinporten.no/"}, "Skyporten", id="skyporten"
    ),
    pytest.param(
        {"issuer": "https://test.maskinporten.no/", "jwks_uri": "http://evil/jwk"},
        "jwks_uri",
        id="http-jwks",
    ),
    pytest.param({"leeway": -1}, "leeway", id="negative-leeway"),
    pytest.param({"leeway": 3600}, "leeway", id="huge-leeway"),
    pytest.param({"leeway": float("nan")}, "leeway", id="nan-leeway"),
    pytest.param({"algorithms": ("HS256",)}, "algorithms", id="hmac"),
    pytest.param({"algorithms": ("none",)}, "algorithms", id="alg-none"),
    pytest.param({"algorithms": ()}, "algorithms", id="no-algorithms"),
    pytest.param(
        {"allowed_consumers": {"123456789"}}, "allowed_consumers", id="bad-orgno"
    ),
    pytest.param({"audience": ("unspecified",)}, "unspecified", id="aud-unspecified"),
    pytest.param({"audience": ("",)}, "audience", id="aud-empty"),
    pytest.param(
        {"refresh_interval": 100, "max_staleness": 10}, "max_staleness", id="staleness"
    ),
    pytest.param({"unknown_kid_cooldown": 0}, "unknown_kid_cooldown", id="cooldown"),
    pytest.param({"fetch_timeout": -1}, "fetch_timeout", id="timeout"),
    pytest.param({"max_jwks_bytes": 10}, "max_jwks_bytes", id="tiny-jwks-cap"),
    pytest.param({"token_cache_size": -1}, "token_cache_size", id="cache-size"),
]


@pytest.mark.parametrize(("options", "phrase"), BAD)
def test_bad_settings_are_refused(options: dict[str, Any], phrase: str) -> None:
    """A bad value raises ConfigurationError naming the setting at fault."""
    options.setdefault("issuer", "https://test.maskinporten.no/")

    with pytest.raises(ConfigurationError, match=phrase):
        Settings(**options)


@pytest.mark.parametrize(
    "issuer",
    [
        pytest.param("http://127.0.0.1:9999/", id="ipv4-loopback"),
        pytest.param("http://127.5.0.1/", id="ipv4-loopback-range"),
        pytest.param("http://localhost:8080/", id="localhost"),
        pytest.param("http://[::1]:8080/", id="ipv6-loopback"),
    ],
)
def test_http_allowed_on_loopback(issuer: str) -> None:
    """Plain http is accepted for a local issuer, for tests and the demo."""
    assert Settings.custom(issuer).issuer == issuer


def test_from_env_reads_every_documented_variable() -> None:
    """The MASKINPORTEN_* variables map onto the settings."""
    settings = Settings.from_env(
        {
            "MASKINPORTEN_ENV": "test",
            "MASKINPORTEN_AUDIENCE": "https://api.example/, https://b/",
            "MASKINPORTEN_REQUIRE_PID": "true",
            "MASKINPORTEN_ALLOWED_CONSUMERS": "991825827,889640782",
            "MASKINPORTEN_ALGORITHMS": "RS256",
            "MASKINPORTEN_LEEWAY": "10",
            "MASKINPORTEN_KEYS_REFRESH": "600",
            "MASKINPORTEN_KEYS_MAX_STALENESS": "7200",
            "MASKINPORTEN_KID_COOLDOWN": "30",
            "MASKINPORTEN_FETCH_TIMEOUT": "3",
            "MASKINPORTEN_TOKEN_CACHE_SIZE": "50",
            "MASKINPORTEN_ACCEPT_SUBUNITS": "yes",
            "MASKINPORTEN_ACCEPT_ESEAL": "0",
        }
    )

    assert settings.issuer == "https://test.maskinporten.no/"
    assert settings.audience == ("https://api.example/", "https://b/")
    assert settings.require_pid is True
    assert settings.allowed_consumers == frozenset({"991825827", "889640782"})
    assert settings.algorithms == ("RS256",)
    assert settings.leeway == 10
    assert settings.refresh_interval == 600
    assert settings.max_staleness == 7200
    assert settings.unknown_kid_cooldown == 30
    assert settings.fetch_timeout == 3
    assert settings.token_cache_size == 50
    assert settings.accept_subunits is True
    assert settings.accept_eseal is False


def test_from_env_custom_issuer_and_jwks() -> None:
    """MASKINPORTEN_ISSUER and MASKINPORTEN_JWKS_URI configure a local issuer."""
    settings = Settings.from_env(
        {
            "MASKINPORTEN_ISSUER": "http://127.0.0.1:7000/",
            "MASKINPORTEN_JWKS_URI": "http://127.0.0.1:7000/jwk",
        }
    )

    assert settings.issuer == "http://127.0.0.1:7000/"
    assert settings.jwks_uri == "http://127.0.0.1:7000/jwk"


@pytest.mark.parametrize(
    ("environ", "phrase"),
    [
        pytest.param({}, "MASKINPORTEN_ENV", id="nothing-set"),
        pytest.param({"MASKINPORTEN_ENV": "ver2"}, "unknown", id="unknown-env"),
        pytest.param(
            {"MASKINPORTEN_ENV": "prod", "MASKINPORTEN_LEEWAY": "soon"},
            "MASKINPORTEN_LEEWAY",
            id="bad-number",
        ),
        pytest.param(
            {"MASKINPORTEN_ENV": "prod", "MASKINPORTEN_REQUIRE_PID": "maybe"},
            "MASKINPORTEN_REQUIRE_PID",
            id="bad-bool",
        ),
        pytest.param(
            {
                "MASKINPORTEN_ENV": "prod",
                "MASKINPORTEN_ISSUER": "https://test.maskinporten.no/",
            },
            "disagree",
            id="env-and-issuer-disagree",
        ),
        pytest.param(
            {"MASKINPORTEN_ENV": "prod", "MASKINPORTEN_LEEWAY": "inf"},
            "MASKINPORTEN_LEEWAY",
            id="infinite-leeway",
        ),
    ],
)
def test_from_env_errors_name_the_variable(
    environ: dict[str, str], phrase: str
) -> None:
    """A bad environment raises an error naming the variable to fix."""
    with pytest.raises(ConfigurationError, match=phrase):
        Settings.from_env(environ)


def test_with_options_validates_again() -> None:
    """A changed copy is validated like a new one."""
    with pytest.raises(ConfigurationError):
        Settings.test().with_options(leeway=-5)
