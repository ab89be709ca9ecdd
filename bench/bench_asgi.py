"""
Requests per second of one Starlette app, bare and behind five token checks.

    .venv/bin/python bench/bench_asgi.py [--seconds 10] [--connections 64] [--rounds 3]

Needs wrk (`apt-get install -y wrk` on Debian); without it the script says so
and exits. Each variant runs under uvicorn (uvloop, and httptools when it is
installed) in its own process pinned to CPU 0, with wrk pinned to CPU 1; the
load stays on 127.0.0.1. Every variant gets `GET /inspections/1` with an
`Authorization` header; the signing keys come from the testing kit's
`IssuerServer` over real HTTP. Variants:

- bare: the app, no check (the header is ignored);
- reused: `MaskinportenMiddleware`, one token reused (as consumers do);
- fresh: `MaskinportenMiddleware`, a different token on every request, cycling
  through more tokens than the verified-token cache holds;
- naive: a pure-ASGI middleware calling PyJWT's `jwt.decode` per request;
- authlib: authlib's `ResourceProtector` with a `BearerTokenValidator` that
  decodes with joserfc, per request.

With `--rounds N` the variants take turns N times and each row is the median,
which keeps a passing load on the machine from favouring one variant.

Targets (issue 3): reused >= 90 % of bare; fresh >= 1.3 x naive.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

READ = "demo:inspections.read"
PATH = "/inspections/1"
VARIANTS = ("bare", "reused", "fresh", "naive", "authlib")
LUA = """
local tokens = {}
for line in io.lines("%s") do tokens[#tokens + 1] = line end
local i = 0
request = function()
  i = i %% #tokens + 1
  return wrk.format("GET", "%s", {["Authorization"] = "Bearer " .. tokens[i]})
end
"""


def _endpoint_app() -> Any:
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def inspection(request: Any) -> Any:
        return JSONResponse({"id": 1, "status": "closed"})

    return Starlette(routes=[Route("/inspections/{id}", inspection)])


def _jwks(issuer: str) -> dict[str, Any]:
    import httpx

    document: dict[str, Any] = httpx.get(issuer + "jwk", timeout=5).json()

    return document


def _naive(app: Any, issuer: str) -> Any:
    import jwt

    keys = {k["kid"]: jwt.PyJWK(k).key for k in _jwks(issuer)["keys"]}

    async def guarded(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        header = dict(scope["headers"]).get(b"authorization", b"").decode()
        status = 401
        try:
            token = header.split(" ", 1)[1]
            kid = jwt.get_unverified_header(token)["kid"]
            claims = jwt.decode(
                token,
                keys[kid],
                algorithms=["RS256"],
                issuer=issuer,
                options={"require": ["exp", "iat"], "verify_aud": False},
            )
            status = 200 if READ in claims["scope"].split() else 403
        except Exception:
            status = 401
        if status == 200:
            await app(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    return guarded


def _authlib(app: Any, issuer: str) -> Any:
    from authlib.oauth2.rfc6749 import ResourceProtector
    from authlib.oauth2.rfc6750 import BearerTokenValidator
    from joserfc import jwt
    from joserfc.errors import JoseError
    from joserfc.jwk import KeySet

    keyset = KeySet.import_key_set(_jwks(issuer))  # type: ignore[arg-type]
    registry = jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": issuer},
        exp={"essential": True},
        iat={"essential": True},
        leeway=30,
    )

    class Token(dict[str, Any]):
        def is_expired(self) -> bool:
            return False

        def is_revoked(self) -> bool:
            return False

        def get_scope(self) -> str:
            return str(self.get("scope", ""))

    class Validator(BearerTokenValidator):  # type: ignore[misc]
        def authenticate_token(self, token_string: str) -> Token | None:
            try:
                token = jwt.decode(token_string, keyset, algorithms=["RS256"])
                registry.validate(token.claims)
            except (JoseError, ValueError):
                return None
            return Token(token.claims)

    protector = ResourceProtector()
    protector.register_token_validator(Validator())

    class Request:
        def __init__(self, headers: dict[str, str]) -> None:
            self.headers = headers

    async def guarded(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        value = dict(scope["headers"]).get(b"authorization", b"").decode()
        try:
            protector.validate_request([READ], Request({"Authorization": value}))
        except Exception as exc:
            status = getattr(exc, "status_code", 401)
            start: dict[str, Any] = {
                "type": "http.response.start",
                "status": status,
                "headers": [],
            }
            await send(start)
            await send({"type": "http.response.body", "body": b""})
            return
        await app(scope, receive, send)

    return guarded


def build(variant: str, issuer: str) -> Any:
    """The ASGI app for one variant."""
    from maskinporten_guard import Rule, Settings, require
    from maskinporten_guard.asgi import MaskinportenMiddleware

    app = _endpoint_app()
    if variant in ("reused", "fresh"):
        return MaskinportenMiddleware(
            app,
            rules=[Rule("/inspections/{id}", require(all_of=[READ]))],
            settings=Settings.custom(issuer),
        )
    if variant == "naive":
        return _naive(app, issuer)
    if variant == "authlib":
        return _authlib(app, issuer)

    return app


def serve(variant: str, issuer: str, port: int) -> None:
    """Run one variant under uvicorn (the child process)."""
    import uvicorn

    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    uvicorn.run(
        build(variant, issuer),
        host="127.0.0.1",
        port=port,
        loop=loop,
        http=http,
        log_level="warning",
        access_log=False,
        lifespan="on",
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_ready(port: int, token: str, deadline: float) -> None:
    import httpx

    while time.monotonic() < deadline:
        try:
            response = httpx.get(
                f"http://127.0.0.1:{port}{PATH}",
                headers={"Authorization": f"Bearer {token}"},
                timeout=1,
            )
            if response.status_code == 200:
                return
            raise SystemExit(f"the server answered {response.status_code}")
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit("the server did not start within 20 s")


def _parse(output: str) -> tuple[float, str, int]:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    latency = re.search(r"Latency\s+(\S+)", output).group(1)  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)

    return rps, latency, int(errors.group(1)) if errors else 0


def measure(
    variant: str, issuer: str, token: str, lua: Path, seconds: int, connections: int
) -> tuple[float, str, int]:
    """Serve one variant pinned to CPU 0 and load it from CPU 1 with wrk."""
    port = _free_port()
    serve_command = [sys.executable, __file__, "serve", variant, issuer, str(port)]
    taskset = shutil.which("taskset") or "taskset"
    # The commands are this script and wrk, with arguments it built itself.
    server = subprocess.Popen([taskset, "-c", "0", *serve_command], cwd=ROOT)
    try:
        _wait_ready(port, token, time.monotonic() + 20)
        wrk = shutil.which("wrk") or "wrk"
        command = [taskset, "-c", "1", wrk, "-t1", f"-c{connections}"]
        command += [f"-d{seconds}s", "--latency"]
        if variant == "bare" or variant == "reused":
            command += ["-H", f"Authorization: Bearer {token}"]
        else:
            command += ["-s", str(lua)]
        command.append(f"http://127.0.0.1:{port}{PATH}")
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=seconds + 30, check=True
        )
        return _parse(result.stdout)
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        serve(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--tokens", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed; on Debian: apt-get install -y wrk. Skipped.")
        return 0
    if len(os.sched_getaffinity(0)) < 2:
        print("needs two CPUs to pin the server and wrk apart. Skipped.")
        return 0

    from maskinporten_guard.testing import FakeMaskinporten, IssuerServer

    fake = FakeMaskinporten()
    with IssuerServer(fake) as issuer, tempfile.TemporaryDirectory() as tmp:
        token = fake.mint(READ, lifetime=3600)
        print(f"minting {args.tokens} tokens with distinct jti...", flush=True)
        tokens = [fake.mint(READ, lifetime=3600) for _ in range(args.tokens)]
        token_file = Path(tmp) / "tokens.txt"
        token_file.write_text("\n".join(tokens) + "\n")
        lua = Path(tmp) / "fresh.lua"
        lua.write_text(LUA % (token_file, PATH))

        runs: dict[str, list[tuple[float, str, int]]] = {v: [] for v in VARIANTS}
        for _ in range(args.rounds):
            for variant in VARIANTS:
                run = measure(
                    variant, issuer.url, token, lua, args.seconds, args.connections
                )
                runs[variant].append(run)
                print(f"  {variant}: {run[0]:.0f} req/s", flush=True)
        results = {v: sorted(r)[len(r) // 2] for v, r in runs.items()}

    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    print(f"\nuvicorn + uvloop + {http}, {args.connections} connections, ", end="")
    print(
        f"{args.seconds} s each, median of {args.rounds} alternating rounds, ", end=""
    )
    print("server on CPU 0, wrk on CPU 1\n")
    print("| variant | requests/s | mean latency | non-2xx |")
    print("|---|---:|---:|---:|")
    for variant, (rps, latency, errors) in results.items():
        print(f"| {variant} | {rps:,.0f} | {latency} | {errors} |")
    reused = results["reused"][0] / results["bare"][0]
    fresh = results["fresh"][0] / results["naive"][0]
    print(f"\nreused / bare = {reused:.1%} (target >= 90 %)")
    print(f"fresh / naive = {fresh:.3f} x (target >= 1.3 x)")
    print(json.dumps({k: v[0] for k, v in results.items()}))

    return 0


if __name__ == "__main__":
    sys.exit(main())
