"""
A decorator that protects one plain Starlette endpoint.

    @protect(all_of=["demo:inspections.read"])
    async def read(request: Request) -> Response: ...

It reuses the identity `MaskinportenMiddleware` verified, or verifies the
token itself through the guard given to it, the middleware's, or
`app.state.maskinporten_guard`. Refusals are the guard's RFC 6750 answers.
For HTTP endpoints; protect WebSocket routes with the middleware.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable

from starlette.requests import Request
from starlette.responses import Response

from .asgi import decide_endpoint, publish
from .decision import Guard
from .policy import Delegation, Requirement, require

__all__ = ["protect"]

Endpoint = Callable[[Request], Awaitable[Response]]


def protect(
    *,
    all_of: Iterable[str] = (),
    any_of: Iterable[str] = (),
    consumers: Iterable[str] | None = None,
    suppliers: Iterable[str] | None = None,
    delegation: Delegation = "allow",
    audience: Iterable[str] = (),
    pid: bool = False,
    system_user: bool = False,
    requirement: Requirement | None = None,
    guard: Guard | None = None,
) -> Callable[[Endpoint], Endpoint]:
    """
    Require a valid token, and what the arguments add, on one endpoint.

    The keyword arguments are those of `require`, or pass a ready
    `requirement`. The identity is at `request.state.maskinporten`.

    Args:
        all_of: scopes the token must all have.
        any_of: scopes of which the token must have one.
        consumers: consumer orgnos allowed.
        suppliers: supplier orgnos allowed for delegated tokens.
        delegation: `allow`, `forbid` or `require` a supplier in the token.
        audience: audiences of which the token's `aud` must hold one.
        pid: require a pid-restricted token.
        system_user: accept only Altinn system-user tokens.
        requirement: a ready requirement, instead of the arguments above.
        guard: the guard that verifies tokens; by default the middleware's,
            else `app.state.maskinporten_guard`.
    """
    if requirement is None:
        requirement = require(
            all_of=all_of,
            any_of=any_of,
            consumers=consumers,
            suppliers=suppliers,
            delegation=delegation,
            audience=audience,
            pid=pid,
            system_user=system_user,
        )
    needed = requirement

    def decorate(endpoint: Endpoint) -> Endpoint:
        @functools.wraps(endpoint)
        async def protected(request: Request) -> Response:
            chosen, decision = await decide_endpoint(request.scope, needed, guard)
            if not decision.allowed:
                answer = chosen.response(decision)
                return Response(answer.body, answer.status, dict(answer.headers))
            publish(request.scope, decision)

            return await endpoint(request)

        return protected

    return decorate
