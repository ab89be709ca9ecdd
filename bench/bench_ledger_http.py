"""
Requests per second with the grant ledger on (SQLite) against the guard with it off.

    .venv/bin/python bench/bench_ledger_http.py [--seconds 10] [--rounds 2]
        [--adapters asgi,wsgi] [--connections 32]

Needs wrk and taskset (`apt-get install -y wrk`); without them it says so and
exits. Every request is `GET /records/1` with one of 10 000 pre-minted tokens,
one per (scope, consumer) pair: 100 scopes `bench:scope000`..`bench:scope099`
times 100 consumers with valid orgnos. The route requires any of the 100
scopes, so each request authorises exactly one and the ledger counts one new
(scope, consumer) key for every pair in each flush interval. A wrk Lua script
cycles through the tokens, so both variants receive the same requests.

- off: `Recorder.from_env({})`, an audit log and no ledger;
- on: `Recorder.from_env` with `MASKINPORTEN_GRANTS_STORE` naming an SQLite
  file, flushed in the background every 5 s (the default).

The verified-token cache holds 20 000 tokens, and a warm-up run fills it
before each measurement, so verification costs the same in both variants.
Servers: uvicorn (asgi, `MaskinportenMiddleware` over a Starlette route) and
waitress with 8 threads (wsgi, `MaskinportenWSGIMiddleware` over a plain WSGI
function), pinned to CPU 0; wrk runs on CPU 1. The variants alternate for
`--rounds` rounds and the table gives the mean. Target (issue 5): on >= 95 %
of off.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import statistics
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._serve import (  # noqa: E402 (the path above makes `bench` importable)
    PinnedServer,
    free_port,
    mint_tokens,
    run_wrk,
    stop_on_sigterm,
    tools_missing,
    valid_orgnos,
    wait_ready,
    write_lua,
    write_tokens,
)

SCOPES = [f"bench:scope{n:03d}" for n in range(100)]
CONSUMERS = valid_orgnos(100)
PATH = "/records/1"
VARIANTS = ("off", "on")
ADAPTERS = ("asgi", "wsgi")
TOKEN_CACHE = 20_000


def _recorder(variant: str, database: str) -> Any:
    from maskinporten_guard.record import Recorder
    from maskinporten_guard.stores import STORE_ENV_VAR

    environ = {STORE_ENV_VAR: f"sqlite:///{database}"} if variant == "on" else {}

    return Recorder.from_env(environ)


def _rules() -> Any:
    from maskinporten_guard.policy import PUBLIC, Rule, require

    return [
        Rule("/health", PUBLIC, {"GET"}),
        Rule("/records/{id}", require(any_of=SCOPES), {"GET"}),
    ]


def _asgi_app(variant: str, issuer: str, database: str) -> Any:
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from maskinporten_guard.asgi import MaskinportenMiddleware
    from maskinporten_guard.settings import Settings

    async def record(request: Any) -> Any:
        return JSONResponse({"id": 1, "status": "kept"})

    async def health(request: Any) -> Any:
        return JSONResponse({"status": "ok"})

    app = Starlette(routes=[Route("/records/{id}", record), Route("/health", health)])

    return MaskinportenMiddleware(
        app,
        rules=_rules(),
        settings=Settings.custom(issuer, token_cache_size=TOKEN_CACHE),
        recorder=_recorder(variant, database),
    )


def _wsgi_app(variant: str, issuer: str, database: str) -> Any:
    from maskinporten_guard.settings import Settings
    from maskinporten_guard.wsgi import MaskinportenWSGIMiddleware

    def app(
        environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        body = b'{"id": 1, "status": "kept"}'
        headers = [("Content-Type", "application/json")]
        start_response("200 OK", [*headers, ("Content-Length", str(len(body)))])
        return [body]

    return MaskinportenWSGIMiddleware(
        app,
        rules=_rules(),
        settings=Settings.custom(issuer, token_cache_size=TOKEN_CACHE),
        recorder=_recorder(variant, database),
    )


def serve(adapter: str, variant: str, issuer: str, port: int, database: str) -> None:
    """Serve one adapter and variant until SIGTERM (the child process)."""
    if adapter == "asgi":
        import uvicorn

        http = "httptools" if importlib.util.find_spec("httptools") else "h11"
        loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
        uvicorn.run(
            _asgi_app(variant, issuer, database),
            host="127.0.0.1",
            port=port,
            loop=loop,
            http=http,
            log_level="warning",
            access_log=False,
            lifespan="on",
        )
        return

    from waitress import serve as waitress_serve

    stop_on_sigterm()
    # waitress warns whenever requests queue, which wrk makes them do.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    app = _wsgi_app(variant, issuer, database)
    waitress_serve(app, host="127.0.0.1", port=port, threads=8, _quiet=True)


def _ledger_requests(database: Path) -> int:
    from maskinporten_guard.stores import SqliteStore

    store = SqliteStore(database)
    try:
        return sum(row.usage.requests for row in store.read_usage())
    finally:
        store.close()


def measure(
    adapter: str, variant: str, issuer: str, lua: Path, args: argparse.Namespace
) -> float:
    """Serve one variant, warm its token cache, and answer its requests/s."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        database = Path(tmp) / "grants.db"
        command = [sys.executable, __file__, "serve", adapter, variant, issuer]
        command += [str(port), str(database)]
        with PinnedServer(command) as server:
            url = f"http://127.0.0.1:{port}"
            wait_ready(url + "/health")
            run_wrk(url, args.warmup, args.connections, lua)
            result = run_wrk(url, args.seconds, args.connections, lua)
            server.stop()
        if result.non_2xx or result.socket_errors:
            raise SystemExit(
                f"{adapter}/{variant}: {result.non_2xx} non-2xx responses and "
                f"{result.socket_errors} socket errors; the comparison is void"
            )
        if variant == "on":
            counted = _ledger_requests(database)
            print(f"    ledger counted {counted:,} requests after shutdown")

    return result.rps


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        adapter, variant, issuer_url, port, database = sys.argv[2:7]
        serve(adapter, variant, issuer_url, int(port), database)
        return 0
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--adapters", default=",".join(ADAPTERS))
    args = parser.parse_args()
    missing = tools_missing()
    if missing:
        print(f"{missing}; skipped")
        return 0

    from maskinporten_guard.testing import FakeMaskinporten, IssuerServer

    fake = FakeMaskinporten()
    adapters = [a for a in args.adapters.split(",") if a]
    results: dict[tuple[str, str], list[float]] = {}
    with IssuerServer(fake) as issuer, tempfile.TemporaryDirectory() as tmp:
        grants = [(scope, consumer) for scope in SCOPES for consumer in CONSUMERS]
        print(f"minting {len(grants):,} tokens, one per (scope, consumer)...")
        tokens = Path(tmp) / "tokens.txt"
        write_tokens(tokens, mint_tokens(fake, grants))
        lua = write_lua(Path(tmp) / "cycle.lua", tokens, PATH)
        for adapter in adapters:
            for round_number in range(1, args.rounds + 1):
                for variant in VARIANTS:
                    rps = measure(adapter, variant, issuer.url, lua, args)
                    results.setdefault((adapter, variant), []).append(rps)
                    print(
                        f"  {adapter} ledger {variant} round {round_number}: ", end=""
                    )
                    print(f"{rps:,.0f} req/s", flush=True)

    print(f"\nwrk -t1 -c{args.connections} -d{args.seconds}s on CPU 1 after a ", end="")
    print(f"{args.warmup} s warm-up; server on CPU 0; mean of {args.rounds} rounds\n")
    print("| server | ledger off (req/s) | ledger on, SQLite (req/s) | on / off |")
    print("|---|---:|---:|---:|")
    summary: dict[str, float] = {}
    for adapter in adapters:
        off = statistics.mean(results[(adapter, "off")])
        on = statistics.mean(results[(adapter, "on")])
        server = "uvicorn (ASGI)" if adapter == "asgi" else "waitress, 8 threads (WSGI)"
        print(f"| {server} | {off:,.0f} | {on:,.0f} | {on / off:.1%} |")
        summary[adapter] = on / off
    print("\ntarget (issue 5): on / off >= 95 %")
    print(json.dumps({k: round(v, 4) for k, v in summary.items()}))

    return 0


if __name__ == "__main__":
    sys.exit(main())
