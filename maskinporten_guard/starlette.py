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
from collections.abc import Awaitable, Callable
from typing import Unpack

from starlette.requests import Request
from starlette.responses import Response

from .asgi import decide_endpoint, publish
from .decision import Guard
from .policy import Conditions, Requirement, require

__all__ = ["protect"]

Endpoint = Callable[[Request], Awaitable[Response]]


def protect(
    *,
    requirement: Requirement | None = None,
    guard: Guard | None = None,
    **conditions: Unpack[Conditions],
) -> Callable[[Endpoint], Endpoint]:
    """
    Require a valid token, and what the arguments add, on one endpoint.

    The keyword arguments are those of `require`, or pass a ready
    `requirement`. The identity is at `request.state.maskinporten`.

    Args:
        requirement: a ready requirement, instead of the conditions.
        guard: the guard that verifies tokens; by default the middleware's,
            else `app.state.maskinporten_guard`.
        conditions: the keyword arguments of `require` (`all_of`, `any_of`,
            `consumers`, ...).
    """
    needed = requirement if requirement is not None else require(**conditions)

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
