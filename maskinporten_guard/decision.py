"""
One decision per request, the same for every framework.

A `Guard` (async, for ASGI) or `SyncGuard` (threads, for WSGI) takes what an
adapter read from a request (method, path, `Authorization` values, query
string) and answers a `Decision`: allowed, with the verified identity and the
scopes that authorised the request, or refused, with the `AuthError` that says
how to answer. Both run the same `_Core`; they differ only in how they wait
for the verifier. Adapters then only translate: read a request, and either
call the app or write `guard.response(decision)`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from .clock import Clock, system_clock
from .errors import AuthError, ConfigurationError, InvalidRequest, MissingToken
from .extract import extract_bearer
from .identity import Identity
from .metrics import Metrics
from .policy import OPTIONAL, PUBLIC, Access, Policy, Requirement, Rule, authorize
from .record import Recorder
from .responses import ErrorResponse, error_response
from .settings import Settings
from .verifier import AsyncKeys, SyncKeys, SyncVerifier, Verifier

__all__ = ["Decision", "Guard", "Pending", "SyncGuard", "policy_argument"]

logger = logging.getLogger("maskinporten_guard.decision")

_ANONYMOUS = "anonymous"
_PUBLIC = "public"
_PREFLIGHT = "preflight"
_OK = "ok"
_MAX_REMEMBERED_DECISIONS = 4096


@dataclass(frozen=True, slots=True)
class Decision:
    """
    The answer for one request.

    Attributes:
        allowed: whether the request may reach the application.
        status: 200 when allowed, else the HTTP status to answer with.
        route: the pattern of the rule that decided, for logs and records.
        identity: the verified identity; None when no token was verified.
        scopes: the scopes that authorised the request.
        error: the refusal, when not allowed.
        reason: a short stable code: `ok`, `public`, `anonymous`,
            `preflight`, or the refusal's reason.
        rule_scope: the scopes the rule asks for, space-separated.
    """

    allowed: bool
    status: int
    route: str
    identity: Identity | None = None
    scopes: tuple[str, ...] = ()
    error: AuthError | None = None
    reason: str = _OK
    rule_scope: str = ""


@dataclass(frozen=True, slots=True)
class Pending:
    """
    A request whose token still has to be verified: see `Guard.decide_now`.

    Its repr leaves the token out.
    """

    method: str
    rule: Rule
    token: str = field(repr=False)


def policy_argument(
    *,
    guard: object | None,
    rules: Sequence[Rule] | None,
    policy: Policy | None,
    settings: Settings | None,
    allow_preflight: bool = False,
) -> Policy | None:
    """
    Check how an adapter was configured and answer the policy to build with.

    An adapter takes a ready guard, or rules (or a policy) with settings to
    build one; never both, and never rules and a policy together.

    Raises:
        ConfigurationError: the arguments contradict each other.
    """
    if rules is not None and policy is not None:
        raise ConfigurationError("pass rules= or policy=, not both")
    if guard is not None and (
        rules is not None or policy is not None or settings is not None
    ):
        raise ConfigurationError(
            "pass either guard= or rules/policy/settings, not both: a ready "
            "guard already holds its policy and settings"
        )
    if rules is not None:
        return Policy(rules, allow_preflight=allow_preflight)

    return policy


def _as_policy(policy: Policy | Sequence[Rule] | None) -> Policy:
    if policy is None:
        return Policy()
    if isinstance(policy, Policy):
        return policy

    return Policy(policy)


@lru_cache(maxsize=1024)
def _endpoint_rule(route: str, access: Access) -> Rule:
    """The rule an endpoint-level decision is made under, compiled once per route."""
    return Rule(route if route.startswith("/") else "/" + route, access)


class _Core:
    """The parts of a decision that never wait: match, extract, decide, record."""

    def __init__(
        self,
        settings: Settings,
        policy: Policy,
        *,
        realm: str,
        expose_descriptions: bool,
        recorder: Recorder | None,
    ) -> None:
        self.settings = settings
        self.policy = policy
        self.realm = realm
        self.expose_descriptions = expose_descriptions
        self.recorder = recorder
        self.max_token_bytes = settings.max_token_bytes
        # A rule applied to one verified identity always decides the same way,
        # so allowed decisions are kept per (rule, identity). The verifier
        # hands out the same Identity object for a reused token, so a reused
        # token skips the rule evaluation. Entries hold their identity and are
        # checked by identity, not by id alone; the table is simply emptied
        # when full, as the verifier's cache keeps the identities themselves.
        self._allowed: dict[tuple[int, int], Decision] = {}

    def begin(
        self,
        method: str,
        path: str,
        authorization: Sequence[str],
        query_string: bytes | str,
        preflight: bool,
    ) -> tuple[Rule, str] | Decision:
        """Answer at once when no token needs verifying, else the token to verify."""
        rule = self.policy.match(method, path)
        if preflight and self.policy.allow_preflight:
            return Decision(True, 200, rule.pattern, reason=_PREFLIGHT)
        access = rule.access
        if access is PUBLIC:
            return Decision(True, 200, rule.pattern, reason=_PUBLIC)

        try:
            token = extract_bearer(
                authorization, query_string, max_bytes=self.max_token_bytes
            )
        except MissingToken as exc:
            if access is OPTIONAL:
                return Decision(True, 200, rule.pattern, reason=_ANONYMOUS)
            return self.refuse(rule, exc)
        except InvalidRequest as exc:
            return self.refuse(rule, exc)

        return rule, token

    def begin_endpoint(
        self,
        requirement: Requirement,
        route: str,
        authorization: Sequence[str],
        query_string: bytes | str,
    ) -> tuple[Rule, str] | Decision:
        """Like `begin`, for a requirement named at the endpoint, not in the policy."""
        rule = _endpoint_rule(route, requirement)
        try:
            token = extract_bearer(
                authorization, query_string, max_bytes=self.max_token_bytes
            )
        except AuthError as exc:
            return self.refuse(rule, exc)

        return rule, token

    def conclude(
        self, rule: Rule, identity: Identity, *, remember: bool = False
    ) -> Decision:
        """
        Apply the rule to a verified identity.

        Args:
            rule: the rule that matched.
            identity: the verified token.
            remember: keep an allowed decision for next time; for identities
                the verifier answered from its cache, which come back.
        """
        key = (id(rule), id(identity))
        known = self._allowed.get(key)
        if known is not None and known.identity is identity:
            return known

        decision = self._evaluate(rule, identity)
        if remember and decision.allowed:
            if len(self._allowed) >= _MAX_REMEMBERED_DECISIONS:
                self._allowed.clear()
            self._allowed[key] = decision

        return decision

    def _evaluate(self, rule: Rule, identity: Identity) -> Decision:
        access = rule.access
        if not isinstance(access, Requirement):
            return Decision(True, 200, rule.pattern, identity)
        fail_closed = self.policy.fail_closed and self.policy.is_default(rule)
        try:
            scopes = authorize(access, identity, fail_closed=fail_closed)
        except AuthError as exc:
            return self.refuse(rule, exc, identity)

        return Decision(
            True, 200, rule.pattern, identity, scopes, rule_scope=access.scope_hint
        )

    def refuse(
        self, rule: Rule, error: AuthError, identity: Identity | None = None
    ) -> Decision:
        access = rule.access
        hint = access.scope_hint if isinstance(access, Requirement) else ""

        return Decision(
            False,
            error.status,
            rule.pattern,
            identity,
            error=error,
            reason=error.reason,
            rule_scope=hint,
        )

    def finish(self, decision: Decision, method: str) -> Decision:
        if self.recorder is not None:
            self.recorder.record(decision, method)

        return decision

    def response(self, decision: Decision) -> ErrorResponse:
        if decision.error is None:
            raise ValueError("only a refused decision has an error response")

        return error_response(
            decision.error,
            realm=self.realm,
            expose_descriptions=self.expose_descriptions,
        )


class _GuardBase:
    """What both guards share: configuration, responses, one-off decisions."""

    def __init__(
        self,
        settings: Settings,
        policy: Policy | Sequence[Rule] | None,
        *,
        realm: str,
        expose_descriptions: bool,
        recorder: Recorder | None,
    ) -> None:
        self._core = _Core(
            settings,
            _as_policy(policy),
            realm=realm,
            expose_descriptions=expose_descriptions,
            recorder=recorder,
        )

    @property
    def settings(self) -> Settings:
        """The verification settings."""
        return self._core.settings

    @property
    def policy(self) -> Policy:
        """The route rules."""
        return self._core.policy

    @property
    def recorder(self) -> Recorder | None:
        """Where decisions are written down, if anywhere."""
        return self._core.recorder

    def response(self, decision: Decision) -> ErrorResponse:
        """The HTTP answer to a refused decision (RFC 6750, problem+json)."""
        return self._core.response(decision)

    def authorize(
        self,
        identity: Identity,
        requirement: Requirement,
        *,
        method: str,
        route: str,
        record_allowed: bool = True,
    ) -> Decision:
        """
        Decide an endpoint-level requirement for an already verified identity.

        Used by the decorators and dependencies, which name their requirement
        next to the endpoint instead of in the policy.

        Args:
            identity: the verified identity, e.g. the middleware's.
            requirement: what the endpoint demands.
            method: the HTTP method, for the record.
            route: the route pattern, for the record.
            record_allowed: record an allowed decision; pass False when an
                earlier decision (the middleware's) already recorded this
                request, so the ledger counts it once. Refusals are always
                recorded.
        """
        core = self._core
        decision = core.conclude(_endpoint_rule(route, requirement), identity)
        if decision.allowed and not record_allowed:
            return decision

        return core.finish(decision, method)

    def refusal(self, error: AuthError, *, method: str, route: str) -> Decision:
        """Record and answer a refusal found outside `check` (endpoint level)."""
        rule = _endpoint_rule(route, PUBLIC)

        return self._core.finish(self._core.refuse(rule, error), method)


class Guard(_GuardBase):
    """
    Decides requests in async code; one per application.

    Args:
        policy: the route rules, as a `Policy` or a list of `Rule`s; None
            requires a valid token everywhere and refuses every route (fail
            closed) until rules are given.
        settings: the issuer and verification rules; read from the
            `MASKINPORTEN_*` environment variables when None.
        verifier: a ready verifier; built from `settings` when None.
        keys: a key source for the verifier it builds (tests pass one here).
        realm: the `realm` in `WWW-Authenticate` challenges.
        expose_descriptions: put human descriptions in refusals.
        recorder: where decisions are written down; None records nothing.
        clock: the time source for verification.
        metrics: where key source metrics go.
    """

    def __init__(
        self,
        policy: Policy | Sequence[Rule] | None = None,
        settings: Settings | None = None,
        *,
        verifier: Verifier | None = None,
        keys: AsyncKeys | None = None,
        realm: str = "maskinporten",
        expose_descriptions: bool = True,
        recorder: Recorder | None = None,
        clock: Clock = system_clock,
        metrics: Metrics | None = None,
    ) -> None:
        if verifier is None:
            settings = settings or Settings.from_env()
            verifier = Verifier(settings, keys, clock=clock, metrics=metrics)
        self.verifier = verifier
        super().__init__(
            verifier.settings,
            policy,
            realm=realm,
            expose_descriptions=expose_descriptions,
            recorder=recorder,
        )

    async def check(
        self,
        method: str,
        path: str,
        authorization: Sequence[str],
        query_string: bytes | str = b"",
        *,
        preflight: bool = False,
    ) -> Decision:
        """
        Decide one request.

        Args:
            method: the HTTP method, upper case.
            path: the request path, without the query string.
            authorization: every `Authorization` header value, in order.
            query_string: the raw query string.
            preflight: the request is a CORS preflight.
        """
        decided = self.decide_now(
            method, path, authorization, query_string, preflight=preflight
        )
        if isinstance(decided, Decision):
            return decided

        return await self.settle(decided)

    def decide_now(
        self,
        method: str,
        path: str,
        authorization: Sequence[str],
        query_string: bytes | str = b"",
        *,
        preflight: bool = False,
    ) -> Decision | Pending:
        """
        Decide one request if that needs no waiting, else say what is pending.

        The same as `check`, split for hot paths: everything that needs no
        key fetch (public routes, refusals, tokens verified before, new tokens
        signed with a key at hand) is decided here, without a coroutine; a
        token whose key must be fetched comes back as a `Pending` to pass to
        `settle`. The arguments are those of `check`.
        """
        core = self._core
        begun = core.begin(method, path, authorization, query_string, preflight)
        if isinstance(begun, Decision):
            return core.finish(begun, method)

        rule, token = begun
        verifier = self.verifier
        identity = verifier.verify_cached(token)
        if identity is not None:
            return core.finish(core.conclude(rule, identity, remember=True), method)
        try:
            identity = verifier.verify_at_hand(token)
        except AuthError as exc:
            return core.finish(core.refuse(rule, exc), method)
        if identity is None:
            return Pending(method, rule, token)

        return core.finish(core.conclude(rule, identity), method)

    async def settle(self, pending: Pending) -> Decision:
        """Verify a pending request's token and decide it."""
        core = self._core
        try:
            identity = await self.verifier.verify_uncached(pending.token)
        except AuthError as exc:
            return core.finish(core.refuse(pending.rule, exc), pending.method)

        return core.finish(core.conclude(pending.rule, identity), pending.method)

    async def check_endpoint(
        self,
        requirement: Requirement,
        *,
        method: str,
        route: str,
        authorization: Sequence[str],
        query_string: bytes | str = b"",
    ) -> Decision:
        """
        Decide one request against a requirement named at the endpoint.

        The same steps as `check` (extract, verify, authorize, record), for
        decorators and dependencies that run without the middleware.

        Args:
            requirement: what the endpoint demands.
            method: the HTTP method, upper case.
            route: the route pattern, for the record.
            authorization: every `Authorization` header value, in order.
            query_string: the raw query string.
        """
        core = self._core
        begun = core.begin_endpoint(requirement, route, authorization, query_string)
        if isinstance(begun, Decision):
            return core.finish(begun, method)

        rule, token = begun
        try:
            identity = await self.verifier.verify(token)
        except AuthError as exc:
            return core.finish(core.refuse(rule, exc), method)

        return core.finish(core.conclude(rule, identity), method)

    async def verify(self, token: str) -> Identity:
        """Verify a token with this guard's verifier."""
        return await self.verifier.verify(token)

    async def startup(self) -> None:
        """Fetch the keys ahead of the first request and start recording."""
        if not await self.verifier.prefetch():
            logger.warning(
                "the signing keys could not be fetched at start-up; the guard "
                "will retry on the first request"
            )
        if self.recorder is not None:
            await self.recorder.start()

    async def shutdown(self) -> None:
        """Flush the records and close the key source."""
        if self.recorder is not None:
            await self.recorder.aclose()
        await self.verifier.aclose()


class SyncGuard(_GuardBase):
    """
    Decides requests in threaded code (WSGI); thread-safe, one per process.

    Takes the same arguments as `Guard`, with a `SyncVerifier` and sync keys.
    """

    def __init__(
        self,
        policy: Policy | Sequence[Rule] | None = None,
        settings: Settings | None = None,
        *,
        verifier: SyncVerifier | None = None,
        keys: SyncKeys | None = None,
        realm: str = "maskinporten",
        expose_descriptions: bool = True,
        recorder: Recorder | None = None,
        clock: Clock = system_clock,
        metrics: Metrics | None = None,
    ) -> None:
        if verifier is None:
            settings = settings or Settings.from_env()
            verifier = SyncVerifier(settings, keys, clock=clock, metrics=metrics)
        self.verifier = verifier
        super().__init__(
            verifier.settings,
            policy,
            realm=realm,
            expose_descriptions=expose_descriptions,
            recorder=recorder,
        )

    def check(
        self,
        method: str,
        path: str,
        authorization: Sequence[str],
        query_string: bytes | str = b"",
        *,
        preflight: bool = False,
    ) -> Decision:
        """Decide one request; the arguments are those of `Guard.check`."""
        core = self._core
        begun = core.begin(method, path, authorization, query_string, preflight)
        if isinstance(begun, Decision):
            return core.finish(begun, method)

        rule, token = begun
        identity = self.verifier.verify_cached(token)
        if identity is not None:
            return core.finish(core.conclude(rule, identity, remember=True), method)
        try:
            identity = self.verifier.verify_uncached(token)
        except AuthError as exc:
            return core.finish(core.refuse(rule, exc), method)

        return core.finish(core.conclude(rule, identity), method)

    def check_endpoint(
        self,
        requirement: Requirement,
        *,
        method: str,
        route: str,
        authorization: Sequence[str],
        query_string: bytes | str = b"",
    ) -> Decision:
        """Decide one request against an endpoint's requirement; see `Guard`."""
        core = self._core
        begun = core.begin_endpoint(requirement, route, authorization, query_string)
        if isinstance(begun, Decision):
            return core.finish(begun, method)

        rule, token = begun
        try:
            identity = self.verifier.verify(token)
        except AuthError as exc:
            return core.finish(core.refuse(rule, exc), method)

        return core.finish(core.conclude(rule, identity), method)

    def verify(self, token: str) -> Identity:
        """Verify a token with this guard's verifier."""
        return self.verifier.verify(token)

    def startup(self) -> None:
        """Fetch the keys ahead of the first request and start recording."""
        if not self.verifier.prefetch():
            logger.warning(
                "the signing keys could not be fetched at start-up; the guard "
                "will retry on the first request"
            )
        if self.recorder is not None:
            self.recorder.start_thread()

    def shutdown(self) -> None:
        """Flush the records and close the key source."""
        if self.recorder is not None:
            self.recorder.close()
        self.verifier.close()
