"""
What each piece costs per request, in one process, without a server.

    .venv/bin/python bench/bench_inprocess.py

Rows, each the best of several rounds of CPU time, in microseconds:

- parse: `jws.parse_compact` on a production-shaped token;
- claims, a client's first token: `claims.read_identity` on its payload;
- claims, a client seen before: `claims.IdentityReader.read` on it, which
  checks only `exp`, `iat`, `nbf` and `jti` of a payload it has seen the rest
  of;
- ASGI overhead: `MaskinportenMiddleware` around a trivial ASGI app, one
  reused token, minus the bare app;
- WSGI overhead: `MaskinportenWSGIMiddleware` the same way;
- ledger: the ASGI middleware with a SQLite `GrantLedger` recording, minus
  without, over 600 (scope, consumer) pairs (no flush inside the timing).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from maskinporten_guard import GrantLedger, ManualClock, Recorder, Rule, Settings
from maskinporten_guard.asgi import MaskinportenMiddleware
from maskinporten_guard.claims import IdentityReader, read_identity
from maskinporten_guard.decision import SyncGuard
from maskinporten_guard.jws import parse_compact
from maskinporten_guard.policy import require
from maskinporten_guard.stores import open_store
from maskinporten_guard.testing import AsyncStaticKeys, FakeMaskinporten, StaticKeys
from maskinporten_guard.wsgi import MaskinportenWSGIMiddleware

READ = "demo:inspections.read"
ROUNDS = 9


def _best(run: Callable[[], float]) -> float:
    return min(run() for _ in range(ROUNDS))


def _per_call(fn: Callable[[], object], calls: int) -> float:
    start = time.process_time()
    for _ in range(calls):
        fn()

    return (time.process_time() - start) / calls * 1e6


async def _asgi_app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def _asgi_per_call(app: Any, headers: Iterable[bytes], calls: int) -> float:
    values = list(headers)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request"}

    async def send(message: dict[str, Any]) -> None:
        pass

    async def run() -> float:
        start = time.process_time()
        for n in range(calls):
            scope = {
                "type": "http",
                "method": "GET",
                "path": "/inspections/7",
                "root_path": "",
                "query_string": b"",
                "headers": [(b"authorization", values[n % len(values)])],
            }
            await app(scope, receive, send)
        return (time.process_time() - start) / calls * 1e6

    return asyncio.run(run())


def _wsgi_app(environ: Any, start_response: Any) -> list[bytes]:
    start_response("200 OK", [("content-type", "text/plain")])
    return [b"ok"]


def _wsgi_per_call(app: Any, header: str, calls: int) -> float:
    def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
        pass

    start = time.process_time()
    for _ in range(calls):
        app(
            {
                "REQUEST_METHOD": "GET",
                "PATH_INFO": "/inspections/7",
                "QUERY_STRING": "",
                "HTTP_AUTHORIZATION": header,
            },
            start_response,
        )

    return (time.process_time() - start) / calls * 1e6


def main() -> None:
    clock = ManualClock(time.time())
    fake = FakeMaskinporten(clock=clock)
    token = fake.mint(READ, lifetime=3600)
    settings = Settings.custom(fake.issuer)
    algorithms = frozenset(settings.algorithms)
    parsed = parse_compact(token, algorithms=algorithms, max_bytes=8192)
    rules = [Rule("/inspections/{id}", require(all_of=[READ]))]
    rows: list[tuple[str, float]] = []

    rows.append(
        (
            "parse",
            _best(
                lambda: _per_call(
                    lambda: parse_compact(token, algorithms=algorithms, max_bytes=8192),
                    20_000,
                )
            ),
        )
    )
    rows.append(
        (
            "claims, a client's first token",
            _best(
                lambda: _per_call(
                    lambda: read_identity(parsed.claims, settings, clock()), 20_000
                )
            ),
        )
    )
    reader = IdentityReader(settings)
    rows.append(
        (
            "claims, a client seen before",
            _best(
                lambda: _per_call(
                    lambda: reader.read(parsed.claims, clock(), parsed.kid), 20_000
                )
            ),
        )
    )

    header = f"Bearer {token}".encode()
    guarded = MaskinportenMiddleware(
        _asgi_app,
        rules=rules,
        settings=settings,
        keys=AsyncStaticKeys(fake),
        clock=clock,
    )
    bare = _best(lambda: _asgi_per_call(_asgi_app, [header], 20_000))
    rows.append(
        (
            "ASGI overhead, reused token",
            _best(lambda: _asgi_per_call(guarded, [header], 20_000)) - bare,
        )
    )

    guard = SyncGuard(rules, settings, keys=StaticKeys(fake), clock=clock)
    wsgi = MaskinportenWSGIMiddleware(_wsgi_app, guard=guard, prefetch=False)
    text = header.decode()
    bare = _best(lambda: _wsgi_per_call(_wsgi_app, text, 20_000))
    rows.append(
        (
            "WSGI overhead, reused token",
            _best(lambda: _wsgi_per_call(wsgi, text, 20_000)) - bare,
        )
    )

    scopes = [f"demo:s{n}" for n in range(100)]
    consumers = ["991825827", "889640782", "974761076", "910753614", "314240979"]
    consumers.append("313367002")
    headers = [
        f"Bearer {fake.mint(s, c, lifetime=3600)}".encode()
        for s in scopes
        for c in consumers
    ]
    any_scope = [Rule("/inspections/{id}", require(any_of=scopes))]
    with tempfile.TemporaryDirectory() as folder:
        ledger = GrantLedger(open_store(f"sqlite:///{Path(folder) / 'grants.db'}"))
        with_ledger = MaskinportenMiddleware(
            _asgi_app,
            rules=any_scope,
            settings=settings,
            keys=AsyncStaticKeys(fake),
            recorder=Recorder(ledger=ledger),
            clock=clock,
        )
        without = MaskinportenMiddleware(
            _asgi_app,
            rules=any_scope,
            settings=settings,
            keys=AsyncStaticKeys(fake),
            clock=clock,
        )
        _asgi_per_call(with_ledger, headers, len(headers))
        _asgi_per_call(without, headers, len(headers))
        on = _best(lambda: _asgi_per_call(with_ledger, headers, 6_000))
        off = _best(lambda: _asgi_per_call(without, headers, 6_000))
        ledger.close()
    rows.append(("ledger counting (ASGI, on minus off)", on - off))

    print(f"{'what':40s} {'us':>7s}")
    for name, value in rows:
        print(f"{name:40s} {value:7.2f}")


if __name__ == "__main__":
    main()
