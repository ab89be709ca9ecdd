"""
Real servers on 127.0.0.1 for the proofs: uvicorn for ASGI, waitress for WSGI.

Both helpers are context managers that bind a free loopback port, serve the
given application from a thread, wait (bounded) until it answers, yield the
base URL and stop the server on exit. The apps under test are minimal: one
catch-all route answering 200 JSON, behind the adapter being proved.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import uvicorn
from flask import Flask
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from waitress.server import create_server

from maskinporten_guard import ManualClock, Policy, Settings
from maskinporten_guard.asgi import MaskinportenMiddleware
from maskinporten_guard.wsgi import MaskinportenWSGIMiddleware

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication
    from starlette.types import ASGIApp

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
START_TIMEOUT = 10.0
_poll = threading.Event()


def _wait_until(ready: Any, what: str) -> None:
    """Poll `ready()` every 10 ms for at most `START_TIMEOUT` seconds."""
    for _ in range(int(START_TIMEOUT / 0.01)):
        if ready():
            return
        _poll.wait(0.01)
    raise TimeoutError(f"{what} did not start within {START_TIMEOUT} s")


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]

    return port


@contextlib.contextmanager
def serve_asgi(app: ASGIApp) -> Iterator[str]:
    """
    Serve an ASGI app with uvicorn (lifespan on) in a thread; yield its URL.

    Args:
        app: the application to serve.
    """
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="on", http="h11"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True
    )
    thread.start()
    try:
        _wait_until(lambda: server.started or not thread.is_alive(), "uvicorn")
        if not server.started:
            raise RuntimeError("uvicorn stopped during start-up")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=START_TIMEOUT)
        sock.close()


@contextlib.contextmanager
def serve_wsgi(app: WSGIApplication) -> Iterator[str]:
    """
    Serve a WSGI app with waitress (4 threads) in a thread; yield its URL.

    Args:
        app: the application to serve.
    """
    server = create_server(
        app, host="127.0.0.1", port=0, threads=4, asyncore_loop_timeout=0.05
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        # Workers wake the loop through its trigger when they finish a task,
        # so they stop first; then the loop closes its own sockets, since
        # closing them from this thread races with its select() on them.
        server.task_dispatcher.shutdown()
        server.trigger.pull_trigger(server.close)
        thread.join(timeout=START_TIMEOUT)


async def _answer(request: Request) -> JSONResponse:
    return JSONResponse({"path": request.url.path, "ok": True})


def starlette_app(policy: Policy, settings: Settings, clock: ManualClock) -> Starlette:
    """A catch-all Starlette app behind `MaskinportenMiddleware`."""
    app = Starlette(
        routes=[
            Route("/", _answer, methods=METHODS),
            Route("/{path:path}", _answer, methods=METHODS),
        ]
    )
    app.add_middleware(
        MaskinportenMiddleware, policy=policy, settings=settings, clock=clock
    )

    return app


def flask_app(
    policy: Policy, settings: Settings, clock: ManualClock
) -> tuple[Flask, MaskinportenWSGIMiddleware]:
    """A catch-all Flask app behind `MaskinportenWSGIMiddleware`, and the latter."""
    app = Flask("attacked")

    @app.route("/", defaults={"path": ""}, methods=METHODS)
    @app.route("/<path:path>", methods=METHODS)
    def answer(path: str) -> dict[str, object]:
        return {"path": "/" + path, "ok": True}

    middleware = MaskinportenWSGIMiddleware(
        app.wsgi_app, policy=policy, settings=settings, clock=clock
    )
    app.wsgi_app = middleware  # type: ignore[method-assign]

    return app, middleware


@contextlib.contextmanager
def serve_guarded(
    adapter: str, policy: Policy, settings: Settings, clock: ManualClock
) -> Iterator[str]:
    """
    Serve the catch-all app behind one adapter on a real server; yield its URL.

    Args:
        adapter: "asgi" (Starlette on uvicorn) or "wsgi" (Flask on waitress).
        policy: the routes the guard enforces.
        settings: the issuer to trust.
        clock: the guard's clock.
    """
    if adapter == "asgi":
        with serve_asgi(starlette_app(policy, settings, clock)) as url:
            yield url
        return
    app, middleware = flask_app(policy, settings, clock)
    try:
        with serve_wsgi(app) as url:
            yield url
    finally:
        middleware.close()
