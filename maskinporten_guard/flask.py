"""
Flask integration: an extension, a view decorator and the current identity.

    maskinporten = Maskinporten(app)            # or Maskinporten() + init_app

    @app.get("/inspections/<int:id>")
    @maskinporten.require(all_of=["demo:inspections.read"])
    def inspection(id: int) -> dict[str, object]:
        return {"id": id, "by": current_identity().consumer_orgno}

Settings come from the Flask config keys `MASKINPORTEN_*` first, then from
the environment variables of the same names (`MASKINPORTEN_ENV`,
`MASKINPORTEN_ISSUER`, `MASKINPORTEN_JWKS_URI`, `MASKINPORTEN_AUDIENCE`...,
as `Settings.from_env` reads them). Given `rules=` or `policy=`, the extension
also wraps `app.wsgi_app` in `MaskinportenWSGIMiddleware` with the same
guard, and the decorator then reuses the identity the middleware verified.

A refusal is raised as a `MaskinportenRefusal`, a Werkzeug `HTTPException`
whose response is the guard's RFC 6750 / problem+json answer. Flask renders
it as it is, and an application can replace it with its own handler, for the
class (`@app.errorhandler(MaskinportenRefusal)`) or for the status code
(`@app.errorhandler(401)`).

A request that passes both the middleware's rules and a decorator is
recorded twice (once per decision); protect a route in one place only.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ParamSpec, TypeVar, Unpack

from flask import Flask, current_app, g, request
from werkzeug.exceptions import (
    BadRequest,
    Forbidden,
    HTTPException,
    ServiceUnavailable,
    Unauthorized,
)
from werkzeug.wrappers import Response

from .decision import Decision, SyncGuard, policy_argument
from .errors import AuthError
from .extract import extract_bearer
from .identity import Identity
from .policy import Conditions, Policy, Requirement, Rule, require
from .record import Recorder
from .responses import ErrorResponse
from .settings import Settings
from .wsgi import MaskinportenWSGIMiddleware, ProcessStart, identity_from_environ

__all__ = [
    "Maskinporten",
    "MaskinportenRefusal",
    "current_identity",
    "settings_from_config",
]

_EXTENSION = "maskinporten"
_G_IDENTITY = "maskinporten_identity"
_PREFIX = "MASKINPORTEN_"

P = ParamSpec("P")
R = TypeVar("R")


class MaskinportenRefusal(HTTPException):
    """
    A refused request, answered with the guard's RFC 6750 response.

    Raised by `Maskinporten.require`; register a Flask error handler for this
    class or for its status code to answer differently.

    Attributes:
        decision: the refused decision, with its `AuthError` in `error`.
        error_response: the status, headers and problem+json body to send.
    """

    def __init__(self, decision: Decision, error_response: ErrorResponse) -> None:
        error = decision.error
        super().__init__(description=error.description if error else None)
        self.code = error_response.status
        self.decision = decision
        self.error_response = error_response

    @property
    def error(self) -> AuthError | None:
        """The refusal's `AuthError`."""
        return self.decision.error

    def get_response(
        self,
        environ: Any = None,
        scope: dict[str, Any] | None = None,
    ) -> Response:
        """The RFC 6750 answer: status, `WWW-Authenticate` and problem+json."""
        answer = self.error_response

        return Response(answer.body, status=answer.status, headers=answer.headers)


# One subclass per status, so `@app.errorhandler(401)` catches refusals too.
class _BadRequestRefusal(MaskinportenRefusal, BadRequest):
    pass


class _UnauthorizedRefusal(MaskinportenRefusal, Unauthorized):
    pass


class _ForbiddenRefusal(MaskinportenRefusal, Forbidden):
    pass


class _UnavailableRefusal(MaskinportenRefusal, ServiceUnavailable):
    pass


_REFUSALS: Mapping[int, type[MaskinportenRefusal]] = {
    400: _BadRequestRefusal,
    401: _UnauthorizedRefusal,
    403: _ForbiddenRefusal,
    503: _UnavailableRefusal,
}


def _refusal(guard: SyncGuard, decision: Decision) -> MaskinportenRefusal:
    answer = guard.response(decision)
    kind = _REFUSALS.get(answer.status, MaskinportenRefusal)

    return kind(decision, answer)


def _config_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple | set | frozenset):
        return ",".join(str(v) for v in value)

    return str(value)


def settings_from_config(config: Mapping[str, Any]) -> Settings:
    """
    Settings from `MASKINPORTEN_*` Flask config keys, then environment variables.

    A config key wins over the environment variable of the same name. Lists
    (audience, algorithms, consumers) may be given as Python lists.
    """
    values = {k: v for k, v in os.environ.items() if k.startswith(_PREFIX)}
    for key, value in config.items():
        if isinstance(key, str) and key.startswith(_PREFIX) and value is not None:
            values[key] = _config_text(value)

    return Settings.from_env(values)


class _State:
    """What one Flask application holds: its guard and its per-process start."""

    def __init__(self, guard: SyncGuard, *, prefetch: bool) -> None:
        self.guard = guard
        self.start = ProcessStart(guard, prefetch=prefetch)


class Maskinporten:
    """
    The Flask extension; one instance can serve several applications.

    Args:
        app: the application to set up now; or call `init_app` later.
        settings: the verification settings; from the app config and the
            environment when None.
        guard: a ready `SyncGuard`, instead of settings and rules.
        rules: route rules; when given (or `policy`), every request goes
            through `MaskinportenWSGIMiddleware` as well.
        policy: a ready `Policy`, instead of `rules`.
        recorder: where decisions are written down.
        realm: the `realm` of `WWW-Authenticate` challenges.
        expose_descriptions: put human descriptions in refusals.
        prefetch: fetch the keys in the background on each process's first
            request.
        middleware: wrap `app.wsgi_app` in the WSGI middleware; by default
            only when `rules` or `policy` is given. Set it for a ready `guard`
            whose policy should protect every request.
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        settings: Settings | None = None,
        guard: SyncGuard | None = None,
        rules: Sequence[Rule] | None = None,
        policy: Policy | None = None,
        recorder: Recorder | None = None,
        realm: str = "maskinporten",
        expose_descriptions: bool = True,
        prefetch: bool = True,
        middleware: bool | None = None,
    ) -> None:
        self._policy = policy_argument(
            guard=guard, rules=rules, policy=policy, settings=settings
        )
        self._settings = settings
        self._guard = guard
        self._recorder = recorder
        self._realm = realm
        self._expose = expose_descriptions
        self._prefetch = prefetch
        self._middleware = (
            middleware if middleware is not None else self._policy is not None
        )
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Build the guard for `app` from its config and attach it."""
        guard = self._guard
        if guard is None:
            guard = SyncGuard(
                self._policy,
                self._settings or settings_from_config(app.config),
                realm=self._realm,
                expose_descriptions=self._expose,
                recorder=self._recorder,
            )
        state = _State(guard, prefetch=self._prefetch)
        app.extensions[_EXTENSION] = state
        if self._middleware:
            middleware = MaskinportenWSGIMiddleware(app.wsgi_app, guard=guard)
            middleware.start = state.start
            app.wsgi_app = middleware  # type: ignore[method-assign]

    @staticmethod
    def guard_for(app: Flask) -> SyncGuard:
        """The guard `init_app` attached to `app`."""
        return _state(app).guard

    def require(
        self, **conditions: Unpack[Conditions]
    ) -> Callable[[Callable[P, R]], Callable[P, R]]:
        """
        Protect one view: a valid token that meets this requirement.

        The arguments are those of `maskinporten_guard.require`, checked when
        the view is decorated. The view runs with the identity in `flask.g`,
        read with `current_identity()`.

        Raises:
            MaskinportenRefusal: from the view, when the request is refused.
        """
        requirement = require(**conditions)

        def decorate(view: Callable[P, R]) -> Callable[P, R]:
            @functools.wraps(view)
            def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
                setattr(g, _G_IDENTITY, _authorize(requirement))
                return view(*args, **kwargs)

            return guarded

        return decorate


def _state(app: Flask) -> _State:
    state = app.extensions.get(_EXTENSION)
    if not isinstance(state, _State):
        raise RuntimeError(
            "Maskinporten is not set up on this application; call "
            "Maskinporten(app) or maskinporten.init_app(app) first"
        )

    return state


def _authorize(requirement: Requirement) -> Identity:
    """Verify the request's token (unless the middleware did) and decide."""
    state = _state(current_app)
    state.start.ensure()
    guard = state.guard
    method = request.method
    route = request.url_rule.rule if request.url_rule is not None else request.path

    identity = identity_from_environ(request.environ)
    if identity is None:
        authorization = request.environ.get("HTTP_AUTHORIZATION")
        try:
            token = extract_bearer(
                [authorization] if authorization is not None else [],
                request.environ.get("QUERY_STRING", ""),
                max_bytes=guard.settings.max_token_bytes,
            )
            identity = guard.verify(token)
        except AuthError as exc:
            raise _refusal(
                guard, guard.refusal(exc, method=method, route=route)
            ) from None

    decision = guard.authorize(identity, requirement, method=method, route=route)
    if not decision.allowed:
        raise _refusal(guard, decision)

    return identity


def current_identity() -> Identity | None:
    """
    The verified identity of the current request, or None.

    Set by `Maskinporten.require`, or by the WSGI middleware for routes its
    rules protect; None on public routes and anonymous optional ones.
    """
    identity = g.get(_G_IDENTITY)
    if isinstance(identity, Identity):
        return identity

    return identity_from_environ(request.environ)
