"""
FastAPI dependencies that require scopes and consumers on one endpoint.

Needs the `fastapi` extra; only code that imports this module needs FastAPI.

    app = FastAPI()
    install(app, guard)

    @app.get("/inspections/{id}")
    async def read(identity: Identity = Depends(Maskinporten(all_of=[READ]))): ...

A `Maskinporten(...)` dependency returns the verified `Identity`. When
`MaskinportenMiddleware` already verified the token, it reuses that identity
and only applies its own requirement; otherwise it verifies the token itself
through the guard given to it, the middleware's, or `app.state.
maskinporten_guard`. Every dependency declares the `maskinporten` OAuth2
security scheme with its scopes, so Swagger UI shows the scope each operation
needs; `install_openapi` does the same for routes the middleware's rules
protect.

Refusals are raised as `MaskinportenRefusal`, an `HTTPException` with the RFC
6750 headers; `install` registers the handler that answers with the guard's
problem+json body. Without it, FastAPI's own handler still sends the right
status and `WWW-Authenticate`, but a `{"detail": ...}` JSON body.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from typing import Any, Unpack

from fastapi import FastAPI, HTTPException, Security
from fastapi.openapi.models import OAuth2, OAuthFlowClientCredentials, OAuthFlows
from fastapi.security.base import SecurityBase
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from .asgi import STATE_GUARD, decide_endpoint, publish
from .decision import Guard
from .errors import ConfigurationError
from .identity import Identity
from .policy import Conditions, Policy, Requirement, require
from .responses import ErrorResponse

__all__ = [
    "SCHEME_NAME",
    "Maskinporten",
    "MaskinportenRefusal",
    "MaskinportenScheme",
    "install",
    "install_openapi",
    "refusal_handler",
]

SCHEME_NAME = "maskinporten"
PRODUCTION_TOKEN_URL = "https://maskinporten.no/token"  # noqa: S105 - a URL
_DESCRIPTION = (
    "A Maskinporten access token (machine-to-machine). Get one from "
    "Maskinporten's token endpoint with a JWT grant signed by your business "
    "certificate or registered key; send it as `Authorization: Bearer <token>`."
)


class MaskinportenScheme(SecurityBase):
    """
    The OAuth2 client-credentials scheme the OpenAPI document declares.

    Only documents: the `Maskinporten` dependency does the verifying. Swagger
    UI cannot fetch a Maskinporten token itself (it needs a signed JWT grant),
    so paste a token into the `Authorization` header instead.

    Args:
        token_url: the issuer's token endpoint, shown in the document.
        scheme_name: the name of the scheme in the document.
    """

    def __init__(
        self, token_url: str = PRODUCTION_TOKEN_URL, scheme_name: str = SCHEME_NAME
    ) -> None:
        flow = OAuthFlowClientCredentials(tokenUrl=token_url, scopes={})
        self.model = OAuth2(
            flows=OAuthFlows(clientCredentials=flow), description=_DESCRIPTION
        )
        self.scheme_name = scheme_name

    async def __call__(self) -> None:
        return None


DEFAULT_SCHEME = MaskinportenScheme()


class MaskinportenRefusal(HTTPException):
    """
    A refusal from a dependency, carrying the guard's complete answer.

    Args:
        response: the status, headers and problem+json body to answer with.
    """

    def __init__(self, response: ErrorResponse) -> None:
        headers = {
            name: value
            for name, value in response.headers
            if name not in ("content-type", "content-length")
        }
        super().__init__(response.status, json.loads(response.body), headers)
        self.response = response


async def refusal_handler(request: Request, exc: Exception) -> Response:
    """Answer a `MaskinportenRefusal` with its RFC 6750 headers and body."""
    if not isinstance(exc, MaskinportenRefusal):
        raise exc
    answer = exc.response

    return Response(answer.body, answer.status, dict(answer.headers))


class Maskinporten:
    """
    A dependency that requires a valid token and returns its `Identity`.

    Use it as `Depends(Maskinporten(...))` or `Security(Maskinporten(...))`.
    The keyword arguments are those of `require`; or pass a ready
    `requirement`. With none, any valid token passes.

    Args:
        requirement: a ready requirement, instead of the conditions.
        guard: the guard that verifies tokens; by default the middleware's,
            else `app.state.maskinporten_guard`.
        scheme: the security scheme to declare in the OpenAPI document.
        conditions: the keyword arguments of `require` (`all_of`, `any_of`,
            `consumers`, ...).
    """

    __signature__: inspect.Signature

    def __init__(
        self,
        *,
        requirement: Requirement | None = None,
        guard: Guard | None = None,
        scheme: MaskinportenScheme = DEFAULT_SCHEME,
        **conditions: Unpack[Conditions],
    ) -> None:
        if requirement is None:
            requirement = require(**conditions)
        self.requirement = requirement
        self.guard = guard
        scopes = sorted(requirement.all_of | requirement.any_of)
        # FastAPI reads the parameters from this signature; the scheme
        # parameter carries this dependency's scopes into the OpenAPI document.
        self.__signature__ = inspect.Signature(
            [
                inspect.Parameter(
                    "connection",
                    inspect.Parameter.POSITIONAL_OR_KEYWORD,
                    annotation=HTTPConnection,
                ),
                inspect.Parameter(
                    "scheme",
                    inspect.Parameter.KEYWORD_ONLY,
                    default=Security(scheme, scopes=scopes),
                    annotation=None,
                ),
            ],
            return_annotation=Identity,
        )

    async def __call__(
        self, connection: HTTPConnection, *, scheme: None = None
    ) -> Identity:
        guard, decision = await decide_endpoint(
            connection.scope, self.requirement, self.guard
        )
        if not decision.allowed or decision.identity is None:
            raise MaskinportenRefusal(guard.response(decision))
        publish(connection.scope, decision)

        return decision.identity


def install(app: FastAPI, guard: Guard | None = None) -> None:
    """
    Register the refusal handler, and the guard dependencies fall back to.

    Args:
        app: the FastAPI application.
        guard: stored as `app.state.maskinporten_guard` when given. Its
            `startup()` and `shutdown()` are the application's to call when no
            middleware runs them.
    """
    app.add_exception_handler(MaskinportenRefusal, refusal_handler)
    if guard is not None:
        setattr(app.state, STATE_GUARD, guard)


def install_openapi(
    app: FastAPI,
    policy: Policy | None = None,
    *,
    token_url: str | None = None,
    scheme_name: str = SCHEME_NAME,
) -> None:
    """
    Show the scopes of middleware-protected routes in the OpenAPI document.

    Each operation whose rule holds a requirement gets the `maskinporten`
    security requirement with the rule's scopes, next to what its
    dependencies declared. The scheme lists every scope seen.

    Args:
        app: the FastAPI application.
        policy: the middleware's rules; None only fills in scopes and token URL.
        token_url: the issuer's token endpoint, e.g.
            `https://test.maskinporten.no/token`.
        scheme_name: the name of the scheme in the document.
    """
    build: Callable[[], dict[str, Any]] = app.openapi
    done: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        if done:
            return done[0]
        schema = build()
        _document_policy(schema, policy, scheme_name)
        _document_scheme(schema, scheme_name, token_url)
        done.append(schema)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def _document_policy(
    schema: dict[str, Any], policy: Policy | None, scheme_name: str
) -> None:
    if policy is None:
        return
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in _METHODS:
                continue
            rule = policy.match(method.upper(), path)
            access = rule.access
            if policy.is_default(rule) and policy.fail_closed:
                continue
            if not isinstance(access, Requirement):
                continue
            scopes = sorted(access.all_of | access.any_of)
            security: list[dict[str, list[str]]] = operation.setdefault("security", [])
            for entry in security:
                if scheme_name in entry:
                    entry[scheme_name] = sorted(set(entry[scheme_name]) | set(scopes))
                    break
            else:
                security.append({scheme_name: scopes})


def _document_scheme(
    schema: dict[str, Any], scheme_name: str, token_url: str | None
) -> None:
    seen: set[str] = set()
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            for entry in operation.get("security", []):
                seen.update(entry.get(scheme_name, ()))
    if not seen and scheme_name not in schema.get("components", {}).get(
        "securitySchemes", {}
    ):
        return
    schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
    scheme = schemes.get(scheme_name)
    if scheme is None:
        scheme = DEFAULT_SCHEME.model.model_dump(by_alias=True, exclude_none=True)
        schemes[scheme_name] = scheme
    flow = scheme.get("flows", {}).get("clientCredentials")
    if flow is None:
        raise ConfigurationError(
            f"the security scheme {scheme_name!r} is not an OAuth2 "
            "client-credentials scheme; pick another scheme_name"
        )
    flow["scopes"] = {scope: f"Maskinporten scope {scope}" for scope in sorted(seen)}
    if token_url is not None:
        flow["tokenUrl"] = token_url
