"""
The ASGI adapter: one pure ASGI middleware for Starlette, FastAPI and any ASGI app.

    app.add_middleware(MaskinportenMiddleware, rules=[Rule("/me", require())])

`MaskinportenMiddleware` reads the request (method, path, every `Authorization`
header, the query string), asks the shared `Guard` for a decision, and either
calls the application or writes the guard's refusal. HTTP and WebSocket scopes
are both protected; a refused WebSocket never reaches `accept`. Lifespan passes
through, and the middleware uses it to fetch keys at start-up and to flush and
close at shutdown, whether or not the wrapped application handles lifespan.

An allowed request carries its identity the way Starlette users expect:
`request.state.maskinporten` (the `Identity`), `request.state.
maskinporten_decision` (the `Decision`), `scope["auth"]` (the token's scopes as
`AuthCredentials`, so `starlette.authentication.requires` works) and
`scope["user"]` (a `MaskinportenUser`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from starlette.authentication import AuthCredentials, BaseUser, UnauthenticatedUser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .clock import Clock, system_clock
from .decision import Decision, Guard, policy_argument
from .errors import ConfigurationError
from .identity import Identity
from .metrics import Metrics
from .policy import Policy, Requirement, Rule
from .record import Recorder
from .responses import ErrorResponse
from .settings import Settings
from .verifier import AsyncKeys

__all__ = [
    "STATE_DECISION",
    "STATE_GUARD",
    "STATE_IDENTITY",
    "MaskinportenMiddleware",
    "MaskinportenUser",
]

logger = logging.getLogger("maskinporten_guard.asgi")

STATE_IDENTITY = "maskinporten"
"""The `request.state` attribute holding the verified `Identity`."""
STATE_DECISION = "maskinporten_decision"
"""The `request.state` attribute holding the middleware's `Decision`."""
STATE_GUARD = "maskinporten_guard"
"""The `request.state` (and `app.state`) attribute holding the `Guard`."""

_AUTHORIZATION = b"authorization"
_PREFLIGHT_HEADER = b"access-control-request-method"
_HTTP_DENIAL = "websocket.http.response"
# RFC 6455 section 7.4.1: 1008 policy violation, 1011 server error, 1013 try
# again later (the keys are unavailable, the client is not at fault).
_CLOSE_POLICY = 1008
_CLOSE_TRY_AGAIN = 1013
_CLOSE_ERROR = 1011


class MaskinportenUser(BaseUser):
    """
    The `scope["user"]` of a request with a verified token.

    Args:
        identity: the verified identity.

    Attributes:
        maskinporten: the verified `Identity`.
    """

    def __init__(self, identity: Identity) -> None:
        self.maskinporten = identity

    @property
    def is_authenticated(self) -> bool:
        """Always true: the token verified."""
        return True

    @property
    def display_name(self) -> str:
        """The consumer's organisation number."""
        return self.maskinporten.consumer.orgno

    @property
    def identity(self) -> str:
        """The consumer's full id, e.g. `0192:991825827`."""
        return self.maskinporten.consumer.id


def read_request(scope: Scope) -> tuple[list[str], bool]:
    """
    Read the `Authorization` values, in order, and whether this is a preflight.

    A preflight is an OPTIONS request with `Access-Control-Request-Method`.
    ASGI servers send lower-case header names; values are latin-1.
    """
    authorization: list[str] = []
    preflight = False
    for name, value in scope["headers"]:
        if name == _AUTHORIZATION:
            authorization.append(value.decode("latin-1"))
        elif name == _PREFLIGHT_HEADER:
            preflight = True

    return authorization, preflight and scope.get("method") == "OPTIONS"


def route_path(scope: Scope) -> str:
    """The path the application routes on: `path` without the `root_path`."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        return path[len(root) :] or "/"

    return path


def publish(scope: Scope, decision: Decision) -> None:
    """Put an allowed decision's identity where Starlette endpoints look for it."""
    state = scope.setdefault("state", {})
    state[STATE_DECISION] = decision
    identity = decision.identity
    if identity is None:
        scope.setdefault("auth", AuthCredentials())
        scope.setdefault("user", UnauthenticatedUser())
        return
    state[STATE_IDENTITY] = identity
    scope["auth"] = AuthCredentials(sorted(identity.scopes))
    scope["user"] = MaskinportenUser(identity)


def raw_headers(response: ErrorResponse) -> list[tuple[bytes, bytes]]:
    """The refusal's headers as ASGI wants them: byte pairs."""
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers]


async def send_refusal(send: Send, response: ErrorResponse) -> None:
    """Write a refusal as an HTTP response."""
    await send(
        {
            "type": "http.response.start",
            "status": response.status,
            "headers": raw_headers(response),
        }
    )
    await send({"type": "http.response.body", "body": response.body})


class _Lifespan:
    """How far the wrapped application got through the lifespan protocol."""

    __slots__ = ("shutdown_answered", "shutdown_asked", "startup_answered")

    def __init__(self) -> None:
        self.startup_answered = False
        self.shutdown_asked = False
        self.shutdown_answered = False


class MaskinportenMiddleware:
    """
    Protect every HTTP and WebSocket route of an ASGI application.

    Pass either a ready `guard`, or the rules and settings to build one. Routes
    no rule matches fail closed (see `Policy`). WebSocket handshakes are decided
    as `GET` requests.

    Args:
        app: the ASGI application to protect.
        rules: the route rules; shorthand for `policy=Policy(rules)`.
        policy: the route rules as a `Policy`.
        settings: the issuer and verification rules; read from the
            `MASKINPORTEN_*` environment variables when None.
        guard: a ready guard; then leave rules, policy and settings out.
        keys: a key source for the guard it builds (tests pass one here).
        recorder: where decisions are written down; None records nothing.
        realm: the `realm` in `WWW-Authenticate` challenges.
        expose_descriptions: put human descriptions in refusals.
        allow_preflight: with `rules`, let CORS preflights through untouched.
        clock: the time source for verification.
        metrics: where key source metrics go.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        rules: Sequence[Rule] | None = None,
        policy: Policy | None = None,
        settings: Settings | None = None,
        guard: Guard | None = None,
        keys: AsyncKeys | None = None,
        recorder: Recorder | None = None,
        realm: str = "maskinporten",
        expose_descriptions: bool = True,
        allow_preflight: bool = False,
        clock: Clock = system_clock,
        metrics: Metrics | None = None,
    ) -> None:
        self.app = app
        policy = policy_argument(
            guard=guard,
            rules=rules,
            policy=policy,
            settings=settings,
            allow_preflight=allow_preflight,
        )
        if guard is None:
            guard = Guard(
                policy,
                settings,
                keys=keys,
                realm=realm,
                expose_descriptions=expose_descriptions,
                recorder=recorder,
                clock=clock,
                metrics=metrics,
            )
        self.guard = guard
        self._started = False
        self._stopped = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            # The HTTP path is written out here, not in helper coroutines: a
            # reused token is decided without awaiting anything.
            guard = self.guard
            authorization, preflight = read_request(scope)
            decision = guard.decide_now(
                scope["method"],
                route_path(scope),
                authorization,
                scope.get("query_string", b""),
                preflight=preflight,
            )
            if not isinstance(decision, Decision):
                decision = await guard.settle(decision)
            if not decision.allowed:
                await send_refusal(send, guard.response(decision))
                return
            publish(scope, decision)
            scope["state"][STATE_GUARD] = guard
            await self.app(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _decide(self, scope: Scope, method: str) -> Decision:
        authorization, preflight = read_request(scope)

        return await self.guard.check(
            method,
            route_path(scope),
            authorization,
            scope.get("query_string", b""),
            preflight=preflight,
        )

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        decision = await self._decide(scope, "GET")
        if decision.allowed:
            publish(scope, decision)
            scope.setdefault("state", {})[STATE_GUARD] = self.guard
            await self.app(scope, receive, send)
            return

        response = self.guard.response(decision)
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        if _HTTP_DENIAL in scope.get("extensions", {}):
            await send(
                {
                    "type": "websocket.http.response.start",
                    "status": response.status,
                    "headers": raw_headers(response),
                }
            )
            await send({"type": "websocket.http.response.body", "body": response.body})
            return
        await send(
            {
                "type": "websocket.close",
                "code": _close_code(response.status),
                "reason": decision.reason,
            }
        )

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        progress = _Lifespan()

        async def receive_and_act() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self._startup()
            elif message["type"] == "lifespan.shutdown":
                progress.shutdown_asked = True
            return message

        async def act_and_send(message: Message) -> None:
            kind = message["type"]
            if kind.startswith("lifespan.startup."):
                progress.startup_answered = True
            elif kind.startswith("lifespan.shutdown."):
                await self._shutdown()
                progress.shutdown_answered = True
            await send(message)

        try:
            await self.app(scope, receive_and_act, act_and_send)
        except Exception:
            if progress.startup_answered:
                raise
            logger.debug("the application does not handle lifespan; the guard does")
        if not progress.shutdown_answered:
            await self._finish_lifespan(progress, receive, send)

    async def _finish_lifespan(
        self, progress: _Lifespan, receive: Receive, send: Send
    ) -> None:
        """Answer the lifespan messages an application that ignores them left."""
        if not progress.startup_answered:
            if not self._started:
                await receive()
                await self._startup()
            await send({"type": "lifespan.startup.complete"})
        while not progress.shutdown_asked:
            message = await receive()
            progress.shutdown_asked = message["type"] == "lifespan.shutdown"
        await self._shutdown()
        await send({"type": "lifespan.shutdown.complete"})

    async def _startup(self) -> None:
        if self._started:
            return
        self._started = True
        try:
            await self.guard.startup()
        except Exception:
            logger.warning(
                "the guard could not start; requests will fetch keys on demand",
                exc_info=True,
            )

    async def _shutdown(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        try:
            await self.guard.shutdown()
        except Exception:
            logger.warning("the guard did not shut down cleanly", exc_info=True)


def _close_code(status: int) -> int:
    if status == 503:
        return _CLOSE_TRY_AGAIN
    if status >= 500:
        return _CLOSE_ERROR

    return _CLOSE_POLICY


async def decide_endpoint(
    scope: Scope, requirement: Requirement, guard: Guard | None
) -> tuple[Guard, Decision]:
    """
    Decide an endpoint-level requirement, for the decorator and dependencies.

    Reuses the identity the middleware verified, if any (its allowed decision
    is then not recorded twice); otherwise verifies the request's token.

    Args:
        scope: the request's ASGI scope.
        requirement: what the endpoint demands.
        guard: the guard to use; when None, the middleware's guard from the
            request state, else `app.state.maskinporten_guard`.
    """
    state: dict[str, Any] = scope.get("state") or {}
    guard = guard or state.get(STATE_GUARD) or _app_guard(scope)
    route = scope.get("route")
    pattern = getattr(route, "path", None) or route_path(scope)
    method = scope.get("method", "GET")

    identity = state.get(STATE_IDENTITY)
    if isinstance(identity, Identity):
        decision = guard.authorize(
            identity, requirement, method=method, route=pattern, record_allowed=False
        )
        return guard, decision

    authorization, _ = read_request(scope)
    decision = await guard.check_endpoint(
        requirement,
        method=method,
        route=pattern,
        authorization=authorization,
        query_string=scope.get("query_string", b""),
    )

    return guard, decision


def _app_guard(scope: Scope) -> Guard:
    app = scope.get("app")
    guard = getattr(getattr(app, "state", None), STATE_GUARD, None)
    if not isinstance(guard, Guard):
        raise ConfigurationError(
            "no Guard found for this endpoint: add MaskinportenMiddleware, set "
            "app.state.maskinporten_guard, or pass guard= to the dependency"
        )

    return guard
