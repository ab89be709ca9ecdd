"""
What each route demands of a token, and the decision for one identity.

A `Policy` is an ordered list of `Rule`s, compiled once at start-up. A rule
matches a path pattern (Starlette syntax: `/inspections/{id}`,
`/files/{rest:path}`) and optionally a set of methods; the first match wins.
Its `access` is one of:

- a `Requirement`: a valid token, plus scopes (all of, any of), consumers,
  suppliers, audience, pid and system-user conditions;
- `PUBLIC`: no token is read at all;
- `OPTIONAL`: a token is verified when one is sent, and a bad one is refused,
  but a request without one passes anonymously.

Routes no rule matches fail closed: a valid token is still required, and the
request is then refused with 403 unless `Policy(default=...)` says otherwise.

Decisions use the token's `consumer`, the legal party the data is for, never
`client_id`, `supplier` or `authorization_details`; the supplier is checked
only by the delegation conditions, on top of the consumer rule.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Literal, TypedDict

from starlette.routing import compile_path

from .errors import (
    ConfigurationError,
    ConsumerNotAllowed,
    InsufficientScope,
    InvalidClaim,
)
from .identity import Identity
from .orgno import is_valid_orgno

__all__ = [
    "OPTIONAL",
    "PUBLIC",
    "Access",
    "Conditions",
    "Delegation",
    "Policy",
    "Requirement",
    "Rule",
    "authorize",
    "require",
]

Delegation = Literal["allow", "forbid", "require"]


class Conditions(TypedDict, total=False):
    """
    The keyword arguments of `require`, for adapters that pass them on.

    `protect(...)`, `Maskinporten(...)` and the Flask decorator all take these
    and hand them to `require` unchanged; see `require` for their meaning.
    """

    all_of: Iterable[str]
    any_of: Iterable[str]
    consumers: Iterable[str] | None
    suppliers: Iterable[str] | None
    delegation: Delegation
    audience: Iterable[str]
    pid: bool
    system_user: bool


class Open(Enum):
    """Access that needs no token (`PUBLIC`) or takes one if sent (`OPTIONAL`)."""

    PUBLIC = "public"
    OPTIONAL = "optional"


PUBLIC = Open.PUBLIC
OPTIONAL = Open.OPTIONAL


def _orgnos(setting: str, values: Iterable[str] | None) -> frozenset[str] | None:
    if values is None:
        return None
    if isinstance(values, str):
        values = [values]
    result = frozenset(values)
    bad = sorted(v for v in result if not is_valid_orgno(v))
    if bad:
        raise ConfigurationError(
            f"{setting} has invalid organisation numbers {bad}: each must be "
            "9 digits with a valid mod-11 check digit"
        )

    return result


def _scopes(setting: str, values: Iterable[str]) -> frozenset[str]:
    if isinstance(values, str):
        raise ConfigurationError(
            f"{setting} takes a list of scopes, not one string; write "
            f"{setting}=[{values!r}]"
        )
    result = frozenset(values)
    for scope in result:
        if not scope or not isinstance(scope, str) or " " in scope or ":" not in scope:
            raise ConfigurationError(
                f"{setting}: {scope!r} is not a Maskinporten scope (prefix:subscope)"
            )

    return result


@dataclass(frozen=True, slots=True)
class Requirement:
    """
    What a token must carry to pass a route. Build it with `require(...)`.

    Attributes:
        all_of: scopes the token must all have.
        any_of: scopes of which the token must have at least one.
        consumers: consumer orgnos allowed; None allows any consumer.
        suppliers: supplier orgnos allowed for delegated tokens; None allows
            any supplier.
        delegation: `allow` delegated tokens, `forbid` them, or `require` them.
        audience: audiences of which the token's `aud` must hold one.
        pid: require a pid-restricted token.
        system_user: accept only Altinn system-user tokens.
    """

    all_of: frozenset[str] = frozenset()
    any_of: frozenset[str] = frozenset()
    consumers: frozenset[str] | None = None
    suppliers: frozenset[str] | None = None
    delegation: Delegation = "allow"
    audience: tuple[str, ...] = ()
    pid: bool = False
    system_user: bool = False
    scope_hint: str = field(init=False, default="")

    def __post_init__(self) -> None:
        hint = " ".join(sorted(self.all_of or self.any_of))
        object.__setattr__(self, "scope_hint", hint)


def require(
    *,
    all_of: Iterable[str] = (),
    any_of: Iterable[str] = (),
    consumers: Iterable[str] | None = None,
    suppliers: Iterable[str] | None = None,
    delegation: Delegation = "allow",
    audience: Iterable[str] = (),
    pid: bool = False,
    system_user: bool = False,
) -> Requirement:
    """
    Build a `Requirement`, checking every value.

    Both scope modes are spelled out: `all_of=[...]` needs every scope,
    `any_of=[...]` needs one. With neither, any valid token passes.

    Args:
        all_of: scopes the token must all have.
        any_of: scopes of which the token must have one.
        consumers: consumer orgnos allowed (nine digits, valid check digit).
        suppliers: supplier orgnos allowed for delegated tokens.
        delegation: `allow`, `forbid` or `require` a supplier in the token.
        audience: audiences of which the token's `aud` must hold one.
        pid: require a pid-restricted token.
        system_user: accept only Altinn system-user tokens.
    """
    if delegation not in ("allow", "forbid", "require"):
        raise ConfigurationError(
            f"delegation must be 'allow', 'forbid' or 'require'; got {delegation!r}"
        )
    if suppliers is not None and delegation == "forbid":
        raise ConfigurationError("suppliers has no effect when delegation='forbid'")
    audiences = (audience,) if isinstance(audience, str) else tuple(audience)

    return Requirement(
        all_of=_scopes("all_of", all_of),
        any_of=_scopes("any_of", any_of),
        consumers=_orgnos("consumers", consumers),
        suppliers=_orgnos("suppliers", suppliers),
        delegation=delegation,
        audience=audiences,
        pid=pid,
        system_user=system_user,
    )


Access = Requirement | Open

AUTHENTICATED = Requirement()
"""Any valid token, no scope needed."""


@dataclass(frozen=True, slots=True)
class Rule:
    """
    One route's access: a path pattern, optional methods, and what it needs.

    Attributes:
        pattern: the path pattern, also used as the route name in records.
        access: a `Requirement`, `PUBLIC` or `OPTIONAL`.
        methods: the HTTP methods it applies to; None means all. A rule for
            GET covers HEAD too.
    """

    pattern: str
    access: Access
    methods: Collection[str] | None = None
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.pattern.startswith("/"):
            raise ConfigurationError(
                f"rule pattern {self.pattern!r} must start with '/'"
            )
        try:
            regex, _, _ = compile_path(self.pattern)
        except (ValueError, AssertionError) as exc:
            raise ConfigurationError(
                f"rule pattern {self.pattern!r} is not a valid path pattern: {exc}"
            ) from exc
        object.__setattr__(self, "regex", regex)
        if self.methods is not None:
            methods = {m.upper() for m in self.methods}
            if "GET" in methods:
                # HEAD is GET without a body; frameworks answer it with the
                # GET route, so it gets the GET rule too.
                methods.add("HEAD")
            object.__setattr__(self, "methods", frozenset(methods))

    def matches(self, method: str, path: str) -> bool:
        """Tell whether this rule covers a request."""
        if self.methods is not None and method not in self.methods:
            return False

        return self.regex.match(path) is not None


class Policy:
    """
    The ordered rules of an API; the first rule that matches decides.

    Args:
        rules: the rules, most specific first.
        default: the access for routes no rule matches; by default a valid
            token is required and the request is then refused (fail closed).
        allow_preflight: let CORS preflight requests (OPTIONS with
            `Access-Control-Request-Method`) through without a token, so a
            CORS middleware behind the guard can answer them.
    """

    def __init__(
        self,
        rules: Sequence[Rule] = (),
        *,
        default: Access | None = None,
        allow_preflight: bool = False,
    ) -> None:
        self.rules = tuple(rules)
        for rule in self.rules:
            if not isinstance(rule, Rule):
                raise ConfigurationError(f"Policy rules must be Rule objects: {rule!r}")
        self.default = Rule(
            "/{rest:path}", default if default is not None else AUTHENTICATED
        )
        self.fail_closed = default is None
        self.allow_preflight = allow_preflight
        # What `match` runs per request, unpacked once.
        self._table = tuple((r.methods, r.regex.match, r) for r in self.rules)

    def match(self, method: str, path: str) -> Rule:
        """The rule for a request: the first that matches, else the default."""
        for methods, matches, rule in self._table:
            if (methods is None or method in methods) and matches(path) is not None:
                return rule

        return self.default

    def is_default(self, rule: Rule) -> bool:
        """Tell whether `rule` is the catch-all for unmatched routes."""
        return rule is self.default


def authorize(
    requirement: Requirement, identity: Identity, *, fail_closed: bool = False
) -> tuple[str, ...]:
    """
    Decide one request: answer the scopes that authorised it, or raise.

    Args:
        requirement: what the route demands.
        identity: the verified token.
        fail_closed: refuse whatever the token holds (an unmatched route).

    Raises:
        InsufficientScope: the token lacks the required scopes (403).
        ConsumerNotAllowed: the consumer, supplier or token kind is refused (403).
        InvalidClaim: the token is not restricted as the route demands (401).
    """
    if fail_closed:
        raise ConsumerNotAllowed("no access rule covers this route", reason="no_rule")

    scopes = identity.scopes
    if requirement.all_of:
        if not requirement.all_of <= scopes:
            raise InsufficientScope(
                "the token lacks a scope this route requires",
                required=tuple(sorted(requirement.all_of)),
            )
        granted = tuple(sorted(requirement.all_of))
    else:
        granted = ()
    if requirement.any_of:
        present = requirement.any_of & scopes
        if not present:
            raise InsufficientScope(
                "the token has none of the scopes this route accepts",
                required=tuple(sorted(requirement.any_of)),
            )
        granted = tuple(sorted(set(granted) | present))

    if requirement.consumers is not None and (
        identity.consumer.orgno not in requirement.consumers
    ):
        raise ConsumerNotAllowed("this consumer may not use this route")
    _check_delegation(requirement, identity)
    if requirement.system_user and identity.system_user is None:
        raise ConsumerNotAllowed(
            "this route accepts only Altinn system user tokens", reason="system_user"
        )
    if requirement.audience and not any(
        a in requirement.audience for a in identity.audience
    ):
        raise InvalidClaim(
            "aud", "the token is not restricted to this route's audience"
        )
    if requirement.pid and identity.pid is None:
        raise InvalidClaim("pid", "this route accepts only pid-restricted tokens")

    return granted


def _check_delegation(requirement: Requirement, identity: Identity) -> None:
    supplier = identity.supplier
    if supplier is None:
        if requirement.delegation == "require":
            raise ConsumerNotAllowed(
                "this route accepts only delegated tokens", reason="supplier"
            )
        return
    if requirement.delegation == "forbid":
        raise ConsumerNotAllowed(
            "this route does not accept delegated tokens", reason="supplier"
        )
    if (
        requirement.suppliers is not None
        and supplier.orgno not in requirement.suppliers
    ):
        raise ConsumerNotAllowed(
            "this supplier may not act for consumers on this route", reason="supplier"
        )
