"""
What the guard trusts and how strict it is, validated once when built.

Build settings from a preset (`Settings.prod()`, `Settings.test()`), from a
custom issuer for local work (`Settings.custom("http://127.0.0.1:8080/")`), or
from `MASKINPORTEN_*` environment variables (`Settings.from_env()`). Every
value is checked in `__post_init__`; a bad one raises `ConfigurationError`
naming the setting and what to do about it.
"""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigurationError
from .orgno import is_valid_orgno

__all__ = ["ENVIRONMENTS", "Environment", "Settings"]

SUPPORTED_ALGORITHMS = frozenset({"RS256", "RS384", "RS512"})


@dataclass(frozen=True, slots=True)
class Environment:
    """A Maskinporten environment: its exact issuer and where its keys live."""

    name: str
    issuer: str
    jwks_uri: str
    metadata_uri: str


ENVIRONMENTS: Mapping[str, Environment] = {
    "prod": Environment(
        "prod",
        "https://maskinporten.no/",
        "https://maskinporten.no/jwk",
        "https://maskinporten.no/.well-known/oauth-authorization-server",
    ),
    "test": Environment(
        "test",
        "https://test.maskinporten.no/",
        "https://test.maskinporten.no/jwk",
        "https://test.maskinporten.no/.well-known/oauth-authorization-server",
    ),
}

_RETIRED_HOSTS = ("ver1.", "ver2.", "yt2.")


def is_loopback_host(host: str | None) -> bool:
    """Tell whether `host` names this machine (localhost, 127.0.0.0/8, ::1)."""
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(setting: str, url: str) -> str:
    """
    Refuse a URL that is not https, unless it is http on a loopback address.

    Plain http is allowed on 127.0.0.1 so that tests and the demo can run an
    issuer locally; anywhere else it would let the network forge keys.
    """
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and is_loopback_host(parts.hostname):
        return url
    raise ConfigurationError(
        f"{setting} must be an https URL (plain http is allowed only on a "
        f"loopback address such as 127.0.0.1); got {url!r}"
    )


def _positive(setting: str, value: float, *, zero: bool = False) -> None:
    if not isinstance(value, int | float) or math.isnan(value) or value < 0:
        raise ConfigurationError(f"{setting} must be a number >= 0; got {value!r}")
    if not zero and value == 0:
        raise ConfigurationError(f"{setting} must be greater than 0; got {value!r}")


@dataclass(frozen=True, slots=True)
class Settings:
    """
    Everything the verifier and the key source need, validated on creation.

    Args:
        issuer: the exact `iss` to accept, trailing slash included.
        jwks_uri: where the signing keys are; when None they are located through
            the issuer's `/.well-known/oauth-authorization-server` document.
        audience: audiences this API accepts. When set, every token must carry
            one of them in `aud` (exact match) and tokens without `aud`, or with
            the legacy `"unspecified"`, are refused. Leave empty for APIs that do
            not use audience-restricted tokens.
        require_pid: refuse tokens that carry no `pid` (pid-restricted APIs).
        allowed_consumers: when set, only these consumer orgnos are accepted
            anywhere in the API; routes can narrow it further.
        algorithms: signature algorithms to accept; only RS256, RS384, RS512.
        leeway: seconds of clock skew allowed for `exp`, `iat` and `nbf`.
        refresh_interval: seconds between scheduled key set refreshes.
        max_staleness: seconds the last good key set keeps serving while the
            JWKS endpoint fails; after that requests get 503.
        unknown_kid_cooldown: at most one refetch for unknown `kid`s per this
            many seconds.
        connect_timeout: seconds to connect to the key endpoint.
        read_timeout: seconds to wait for each read from the key endpoint.
        fetch_timeout: seconds for a whole fetch, however slowly it drips.
        max_jwks_bytes: the largest key set or metadata document read.
        max_token_bytes: the longest token accepted, in bytes.
        token_cache_size: verified tokens kept so that a reused token is cheap;
            0 turns the cache off.
        accept_subunits: accept consumer ids naming a sub-unit, such as
            `0192:991825827:ER//987464291:1`; the orgno used is the main unit.
        accept_eseal: accept consumer ids under `etsi-en-319-412`
            (`NTRNO-<orgno>`), from the EU eSeal pilot.
    """

    issuer: str
    jwks_uri: str | None = None
    audience: tuple[str, ...] = ()
    require_pid: bool = False
    allowed_consumers: frozenset[str] | None = None
    algorithms: tuple[str, ...] = ("RS256", "RS384", "RS512")
    leeway: float = 30.0
    refresh_interval: float = 3600.0
    max_staleness: float = 86400.0
    unknown_kid_cooldown: float = 60.0
    connect_timeout: float = 2.0
    read_timeout: float = 3.0
    fetch_timeout: float = 5.0
    max_jwks_bytes: int = 256 * 1024
    max_token_bytes: int = 8192
    token_cache_size: int = 10_000
    accept_subunits: bool = False
    accept_eseal: bool = False
    metadata_uri: str = field(init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.issuer, str) or not self.issuer:
            raise ConfigurationError("issuer must be a non-empty URL string")
        check_url("issuer", self.issuer)
        host = urlsplit(self.issuer).hostname or ""
        if host.startswith(_RETIRED_HOSTS):
            raise ConfigurationError(
                f"issuer {self.issuer!r} is a retired Maskinporten environment; "
                "use Settings.test() or Settings.prod()"
            )
        if host == "sky.maskinporten.no":
            raise ConfigurationError(
                "Skyporten (sky.maskinporten.no) issues tokens with other claims "
                "and is not supported; use the Maskinporten issuer"
            )
        if self.jwks_uri is not None:
            check_url("jwks_uri", self.jwks_uri)

        audience = self.audience
        if isinstance(audience, str):
            audience = (audience,)
        audience = tuple(audience)
        if any(not isinstance(a, str) or not a.strip() for a in audience):
            raise ConfigurationError("audience entries must be non-empty strings")
        if "unspecified" in audience:
            raise ConfigurationError(
                'audience "unspecified" is what legacy tokens carry instead of an '
                "audience; set the audience your API registered, or none"
            )
        object.__setattr__(self, "audience", audience)

        if self.allowed_consumers is not None:
            consumers = frozenset(self.allowed_consumers)
            bad = sorted(c for c in consumers if not is_valid_orgno(str(c)))
            if bad:
                raise ConfigurationError(
                    f"allowed_consumers has invalid organisation numbers {bad}: each "
                    "must be 9 digits with a valid mod-11 check digit"
                )
            object.__setattr__(self, "allowed_consumers", consumers)

        algorithms = tuple(self.algorithms)
        unsupported = sorted(set(algorithms) - SUPPORTED_ALGORITHMS)
        if not algorithms or unsupported:
            raise ConfigurationError(
                f"algorithms must be a non-empty subset of RS256, RS384, RS512; "
                f"refused {unsupported or 'an empty list'}"
            )
        object.__setattr__(self, "algorithms", algorithms)

        _positive("leeway", self.leeway, zero=True)
        if self.leeway > 300:
            raise ConfigurationError(
                f"leeway is {self.leeway} s; more than 300 s of clock skew would "
                "keep expired tokens alive, fix the clock instead"
            )
        for name in (
            "refresh_interval",
            "max_staleness",
            "unknown_kid_cooldown",
            "connect_timeout",
            "read_timeout",
            "fetch_timeout",
        ):
            _positive(name, getattr(self, name))
        if self.max_staleness < self.refresh_interval:
            raise ConfigurationError(
                "max_staleness must be at least refresh_interval, or keys would "
                "expire before they are refreshed"
            )
        for name in ("max_jwks_bytes", "max_token_bytes"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1024:
                raise ConfigurationError(f"{name} must be an int >= 1024")
        if not isinstance(self.token_cache_size, int) or self.token_cache_size < 0:
            raise ConfigurationError("token_cache_size must be an int >= 0")

        object.__setattr__(self, "metadata_uri", _metadata_uri(self.issuer))

    @classmethod
    def prod(cls, **options: Any) -> Settings:
        """Settings for production Maskinporten (`https://maskinporten.no/`)."""
        return cls.for_environment("prod", **options)

    @classmethod
    def test(cls, **options: Any) -> Settings:
        """Settings for Maskinporten's test environment."""
        return cls.for_environment("test", **options)

    @classmethod
    def for_environment(cls, name: str, **options: Any) -> Settings:
        """Settings for the environment called `name` (`prod` or `test`)."""
        env = ENVIRONMENTS.get(name)
        if env is None:
            raise ConfigurationError(
                f"unknown Maskinporten environment {name!r}; use one of "
                f"{', '.join(ENVIRONMENTS)}, or set an issuer"
            )
        options.setdefault("jwks_uri", env.jwks_uri)

        return cls(issuer=env.issuer, **options)

    @classmethod
    def custom(cls, issuer: str, **options: Any) -> Settings:
        """Settings for any other issuer, such as the testing kit's."""
        return cls(issuer=issuer, **options)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """
        Settings from `MASKINPORTEN_*` environment variables.

        `MASKINPORTEN_ENV` (prod or test) or `MASKINPORTEN_ISSUER` picks the
        issuer; the README lists every variable.
        """
        env = os.environ if environ is None else environ
        options: dict[str, Any] = {}
        for variable, (name, parse) in _ENV_OPTIONS.items():
            raw = env.get(variable)
            if raw is None or raw.strip() == "":
                continue
            try:
                options[name] = parse(raw.strip())
            except ValueError as exc:
                raise ConfigurationError(f"{variable}: {exc}") from None

        issuer = env.get("MASKINPORTEN_ISSUER", "").strip()
        environment = env.get("MASKINPORTEN_ENV", "").strip()
        if issuer:
            if environment and environment in ENVIRONMENTS:
                preset = ENVIRONMENTS[environment]
                if preset.issuer != issuer:
                    raise ConfigurationError(
                        "MASKINPORTEN_ENV and MASKINPORTEN_ISSUER disagree; set one"
                    )
            return cls.custom(issuer, **options)
        if not environment:
            raise ConfigurationError(
                "set MASKINPORTEN_ENV (prod or test) or MASKINPORTEN_ISSUER"
            )

        return cls.for_environment(environment, **options)

    def with_options(self, **options: Any) -> Settings:
        """A copy with some settings changed, validated again."""
        return replace(self, **options)


def _metadata_uri(issuer: str) -> str:
    return issuer.rstrip("/") + "/.well-known/oauth-authorization-server"


def _parse_bool(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


def _parse_list(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _parse_number(raw: str) -> float:
    value = float(raw)
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"expected a number, got {raw!r}")

    return value


_ENV_OPTIONS: dict[str, tuple[str, Any]] = {
    "MASKINPORTEN_JWKS_URI": ("jwks_uri", str),
    "MASKINPORTEN_AUDIENCE": ("audience", _parse_list),
    "MASKINPORTEN_REQUIRE_PID": ("require_pid", _parse_bool),
    "MASKINPORTEN_ALLOWED_CONSUMERS": (
        "allowed_consumers",
        lambda raw: frozenset(_parse_list(raw)),
    ),
    "MASKINPORTEN_ALGORITHMS": ("algorithms", _parse_list),
    "MASKINPORTEN_LEEWAY": ("leeway", _parse_number),
    "MASKINPORTEN_KEYS_REFRESH": ("refresh_interval", _parse_number),
    "MASKINPORTEN_KEYS_MAX_STALENESS": ("max_staleness", _parse_number),
    "MASKINPORTEN_KID_COOLDOWN": ("unknown_kid_cooldown", _parse_number),
    "MASKINPORTEN_FETCH_TIMEOUT": ("fetch_timeout", _parse_number),
    "MASKINPORTEN_TOKEN_CACHE_SIZE": ("token_cache_size", int),
    "MASKINPORTEN_ACCEPT_SUBUNITS": ("accept_subunits", _parse_bool),
    "MASKINPORTEN_ACCEPT_ESEAL": ("accept_eseal", _parse_bool),
}
