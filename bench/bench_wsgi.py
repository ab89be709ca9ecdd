"""
Requests per second of a Flask API, bare and behind token checks, under wrk.

    apt-get install -y wrk       # once; the script says so and skips without it
    .venv/bin/python bench/bench_wsgi.py [--seconds 10] [--connections 32] [--rounds 3]

Each variant serves `GET /inspections/<id>` from waitress (8 threads) pinned
to CPU 0, while wrk (one thread) runs pinned to CPU 1, both on 127.0.0.1 only.
Every variant receives the same requests, `Authorization` header included:

- bare: Flask, no check at all;
- guard reused: Flask behind `MaskinportenWSGIMiddleware`, one token reused
  (a consumer reuses its token until it expires; the cache answers);
- guard fresh: the same, with the verified-token cache off and a wrk Lua
  script cycling through pre-minted tokens, so every request is verified;
- naive PyJWT: a Flask `before_request` hook that calls `jwt.decode` with the
  issuer's key on every request (no cache), a common hand-written check.

Keys come from the testing kit's `IssuerServer` over real HTTP. The table
gives requests per second, mean and 99th percentile latency, and the ratio to
bare Flask. Target: guard reused at least 90 % of bare.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
READ = "demo:inspections.read"
VARIANTS = ("bare", "guard-reused", "guard-fresh", "naive-pyjwt")
SERVER_CPU = 0
WRK_CPU = 1

_LUA = """
local tokens = {}
for line in io.lines("%s") do tokens[#tokens + 1] = line end
local i = 0
request = function()
  i = i %% #tokens + 1
  return wrk.format("GET", nil, {["Authorization"] = "Bearer " .. tokens[i]})
end
"""


def build_app(variant: str, issuer: str) -> object:
    """The WSGI application for one variant (runs in the server process)."""
    from flask import Flask, Response, abort, jsonify, request

    app = Flask("bench")

    @app.get("/health")
    def health() -> Response:
        return jsonify(status="ok")

    @app.get("/inspections/<int:inspection_id>")
    def inspection(inspection_id: int) -> Response:
        return jsonify(id=inspection_id, status="approved")

    if variant.startswith("guard"):
        from maskinporten_guard.policy import PUBLIC, Rule, require
        from maskinporten_guard.settings import Settings
        from maskinporten_guard.wsgi import MaskinportenWSGIMiddleware

        cache = 10_000 if variant == "guard-reused" else 0
        settings = Settings.custom(
            issuer, jwks_uri=issuer + "jwk", token_cache_size=cache
        )
        rules = [
            Rule("/health", PUBLIC),
            Rule("/inspections/{id}", require(all_of=[READ]), {"GET"}),
        ]
        app.wsgi_app = MaskinportenWSGIMiddleware(  # type: ignore[method-assign]
            app.wsgi_app, rules=rules, settings=settings
        )
    elif variant == "naive-pyjwt":
        import jwt

        jwks = httpx.get(issuer + "jwk", timeout=5).json()
        public_key = jwt.PyJWK(jwks["keys"][0]).key

        @app.before_request
        def check_token() -> None:
            if request.path == "/health":
                return
            header = request.headers.get("Authorization", "")
            if not header.startswith("Bearer "):
                abort(401)
            try:
                claims = jwt.decode(
                    header[7:], public_key, algorithms=["RS256"], issuer=issuer
                )
            except jwt.PyJWTError:
                abort(401)
            if READ not in claims.get("scope", "").split():
                abort(403)

    return app


def serve(variant: str, port: int, issuer: str) -> None:
    """Serve one variant with waitress on CPU 0 until killed."""
    from waitress import serve as waitress_serve

    os.sched_setaffinity(0, {SERVER_CPU})
    # waitress warns whenever requests queue, which wrk makes them do.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    app = build_app(variant, issuer)
    waitress_serve(app, host="127.0.0.1", port=port, threads=8, _quiet=True)


def _wait_ready(url: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the server at {url} did not start in {timeout} s")


def _wrk(
    url: str, seconds: int, connections: int, extra: list[str]
) -> dict[str, float]:
    command = [
        "taskset", "-c", str(WRK_CPU), "wrk", "-t1", f"-c{connections}",
        f"-d{seconds}s", "--latency", *extra, url,
    ]  # fmt: skip
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    mean = _millis(re.search(r"Latency\s+([\d.]+\w+)", out).group(1))  # type: ignore[union-attr]
    p99 = _millis(re.search(r"99%\s+([\d.]+\w+)", out).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)

    return {
        "rps": rps,
        "mean_ms": mean,
        "p99_ms": p99,
        "errors": float(non_2xx.group(1)) if non_2xx else 0.0,
    }


def _millis(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--serve", nargs=3, metavar=("VARIANT", "PORT", "ISSUER"))
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]), args.serve[2])
        return 0

    if shutil.which("wrk") is None or shutil.which("taskset") is None:
        print("wrk and taskset are needed: apt-get install -y wrk util-linux")
        print("skipped")
        return 0
    if len(os.sched_getaffinity(0)) < 2:
        print("needs two CPUs, one for the server and one for wrk; skipped")
        return 0

    from maskinporten_guard.testing import FakeMaskinporten, IssuerServer

    fake = FakeMaskinporten()
    with IssuerServer(fake) as issuer, tempfile.TemporaryDirectory() as tmp:
        # Long-lived tokens, so none expires during the runs.
        reused = fake.mint(READ, lifetime=3600)
        tokens_file = Path(tmp) / "tokens.txt"
        print(f"minting {args.tokens} tokens ...", flush=True)
        tokens_file.write_text(
            "\n".join(fake.mint(READ, lifetime=3600) for _ in range(args.tokens))
        )
        lua = Path(tmp) / "tokens.lua"
        lua.write_text(_LUA % tokens_file)

        runs: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
        # The variants take turns, so a passing load favours none of them.
        for _ in range(args.rounds):
            for port, variant in enumerate(VARIANTS, start=18_601):
                server = subprocess.Popen(
                    [
                        sys.executable,
                        __file__,
                        "--serve",
                        variant,
                        str(port),
                        issuer.url,
                    ],
                    cwd=ROOT,
                )
                try:
                    base = f"http://127.0.0.1:{port}"
                    _wait_ready(base + "/health")
                    header = ["-H", f"Authorization: Bearer {reused}"]
                    extra = ["-s", str(lua)] if variant == "guard-fresh" else header
                    url = base + "/inspections/1"
                    _wrk(url, 2, args.connections, extra)  # warm-up
                    run = _wrk(url, args.seconds, args.connections, extra)
                    runs[variant].append(run)
                    print(f"  {variant}: {run['rps']:.0f} req/s", flush=True)
                finally:
                    server.terminate()
                    server.wait(timeout=10)
        results = {
            v: sorted(r, key=lambda x: x["rps"])[len(r) // 2] for v, r in runs.items()
        }

    bare = results["bare"]["rps"]
    print(
        f"\nwaitress 8 threads on CPU {SERVER_CPU}, wrk -t1 -c{args.connections} "
        f"-d{args.seconds}s on CPU {WRK_CPU}, median of {args.rounds} round(s)\n"
    )
    print("| variant | requests/s | mean ms | p99 ms | vs bare | non-2xx |")
    print("|---|---:|---:|---:|---:|---:|")
    for variant, r in results.items():
        print(
            f"| {variant} | {r['rps']:.0f} | {r['mean_ms']:.2f} | {r['p99_ms']:.2f} "
            f"| {r['rps'] / bare:.1%} | {r['errors']:.0f} |"
        )

    return 0


if __name__ == "__main__":
    sys.exit(main())
