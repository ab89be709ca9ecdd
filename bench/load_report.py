"""
A sustained load run over both example apps, written to docs/LOAD_REPORT.md.

    .venv/bin/python bench/load_report.py [--seconds 60] [--consumers 5000]
        [--tokens 50000] [--connections 32] [--sample 2]

Needs wrk and taskset (`apt-get install -y wrk`). Mints `--tokens` tokens for
`demo:inspections.read`, each with its own `jti`, spread over `--consumers`
consumers with valid orgnos, and serves each example with the grant ledger on
(an SQLite file, flushed every 5 s):

- the FastAPI example (`examples.fastapi_app.create_app`) under uvicorn;
- the Flask example (`examples.flask_app.create_app`) under waitress, 8 threads.

The server runs pinned to CPU 0; wrk (one thread) on CPU 1 cycles through the
tokens with a Lua script for `--seconds`, so every request carries a token
the server has not seen for at least `--tokens` requests: with more tokens
than the verified-token cache holds, every request is verified afresh. The
server's VmRSS is read from /proc before, every `--sample` seconds during, and
after the run. After SIGTERM the ledger's SQLite file is read back and its
request total compared with wrk's count of 2xx responses.

The run fails (exit status 1, and the report says so) on any non-2xx
response, any socket error, or a ledger total outside the documented bound.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import os
import platform
import shlex
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._serve import (  # noqa: E402 (the path above makes `bench` importable)
    PinnedServer,
    RssSampler,
    WrkResult,
    free_port,
    mint_tokens,
    run_wrk,
    stop_on_sigterm,
    tools_missing,
    valid_orgnos,
    vm_rss_kib,
    wait_ready,
    write_lua,
    write_tokens,
)

READ = "demo:inspections.read"
PATH = "/inspections/7"
REPORT = ROOT / "docs" / "LOAD_REPORT.md"
ADAPTERS = {
    "fastapi": "FastAPI example under uvicorn (ASGI)",
    "flask": "Flask example under waitress, 8 threads (WSGI)",
}


def _recorder(database: str) -> Any:
    from maskinporten_guard.record import Recorder
    from maskinporten_guard.stores import STORE_ENV_VAR

    return Recorder.from_env({STORE_ENV_VAR: f"sqlite:///{database}"})


def serve(adapter: str, issuer: str, port: int, database: str) -> None:
    """Serve one example with the ledger on until SIGTERM (the child process)."""
    from maskinporten_guard.settings import Settings

    settings = Settings.custom(issuer)
    if adapter == "fastapi":
        import uvicorn

        from examples.fastapi_app.app import create_app as create_fastapi_app

        app = create_fastapi_app(settings, recorder=_recorder(database))
        uvicorn.run(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="on",
        )
        return

    from waitress import serve as waitress_serve

    from examples.flask_app.app import create_app as create_flask_app

    stop_on_sigterm()
    # waitress warns whenever requests queue, which wrk makes them do.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    flask_app = create_flask_app(settings, recorder=_recorder(database))
    waitress_serve(flask_app, host="127.0.0.1", port=port, threads=8, _quiet=True)


@dataclass(frozen=True, slots=True)
class Run:
    """
    One adapter's sustained run.

    Attributes:
        adapter: "fastapi" or "flask".
        wrk: what wrk measured.
        rss_before: server VmRSS in KiB once ready, before the load.
        rss_series: (seconds into the run, KiB) samples during the load.
        rss_after: server VmRSS in KiB a moment after the load ended.
        ledger_requests: requests in the ledger after shutdown.
        ledger_consumers: distinct consumers in the ledger.
        exit_status: the server's exit status after SIGTERM.
    """

    adapter: str
    wrk: WrkResult
    rss_before: int
    rss_series: list[tuple[float, int]]
    rss_after: int
    ledger_requests: int
    ledger_consumers: int
    exit_status: int | None

    @property
    def ledger_surplus(self) -> int:
        """Counted requests beyond wrk's 2xx: those in flight when wrk stopped."""
        return self.ledger_requests - self.wrk.ok

    def failures(self, connections: int) -> list[str]:
        """
        What this run got wrong; empty when it passed.

        Args:
            connections: wrk's connections, the most requests in flight.
        """
        failures = []
        if self.wrk.non_2xx:
            failures.append(f"{self.wrk.non_2xx} non-2xx responses")
        if self.wrk.socket_errors:
            failures.append(f"{self.wrk.socket_errors} socket errors")
        if not 0 <= self.ledger_surplus <= connections:
            failures.append(
                f"ledger total {self.ledger_requests} is not within 0..{connections} "
                f"above the {self.wrk.ok} 2xx responses"
            )

        return failures


def _read_ledger(database: Path) -> tuple[int, int]:
    from maskinporten_guard.stores import SqliteStore

    store = SqliteStore(database)
    try:
        rows = store.read_usage()
    finally:
        store.close()

    return sum(r.usage.requests for r in rows), len({r.key.consumer for r in rows})


def run_adapter(adapter: str, issuer: str, lua: Path, args: argparse.Namespace) -> Run:
    """Serve one example, load it for `args.seconds`, and read its ledger."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        database = Path(tmp) / "grants.db"
        command = [sys.executable, __file__, "serve", adapter, issuer, str(port)]
        command.append(str(database))
        with PinnedServer(command) as server:
            url = f"http://127.0.0.1:{port}"
            wait_ready(url + "/health")
            before = vm_rss_kib(server.pid)
            with RssSampler(server.pid, args.sample) as sampler:
                result = run_wrk(url, args.seconds, args.connections, lua)
            after = vm_rss_kib(server.pid)
            status = server.stop()
        requests, consumers = _read_ledger(database)

    return Run(
        adapter, result, before, sampler.samples, after, requests, consumers, status
    )


def _machine() -> list[str]:
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break

    return [
        f"- CPUs: {os.cpu_count()} (`nproc`), {model}",
        f"- Python {platform.python_version()} on {platform.system()} "
        f"{platform.release()}",
    ]


def _mib(kib: int) -> str:
    return f"{kib / 1024:.1f}"


def _bounds() -> list[str]:
    from maskinporten_guard.settings import Settings

    cache = Settings.custom("https://test.maskinporten.no/").token_cache_size

    return [
        f"- verified-token cache: {cache:,} tokens (`token_cache_size`, oldest "
        "admitted leaves first; while it thrashes only one new token in 8 is "
        "admitted), so it stays at that size;",
        "- key cache: the issuer's published key set (one key here), plus at "
        "most 1 024 unknown `kid`s remembered as negative answers;",
        "- `is_valid_orgno` answers: an LRU of 4 096 (more consumers than that "
        "are checked again, not stored);",
        "- parsed `scope` strings and organisation ids: 4 096 each, emptied when "
        "full; allowed decisions per (rule, identity): 4 096, emptied when full;",
        "- grant ledger: at most 100 000 distinct keys pending (`max_pending`); "
        "a flush every 5 s empties it, so here it holds at most one key per "
        "consumer seen in the last 5 s.",
    ]


def render(runs: list[Run], args: argparse.Namespace, command: str) -> str:
    """The report as Markdown."""
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Load report",
        "",
        "A sustained run of both example apps with fresh tokens from thousands of "
        "consumers and the grant ledger on. Generated by `bench/load_report.py`; "
        "do not edit by hand.",
        "",
        f"- Date: {now}",
        *_machine(),
        f"- Command: `{command}`",
        f"- Load: wrk 1 thread, {args.connections} connections, {args.seconds} s "
        f"per adapter, on CPU 1; server on CPU 0; 127.0.0.1 only",
        f"- Tokens: {args.tokens:,} pre-minted RS256 (2048-bit) tokens for "
        f"`{READ}`, each with its own `jti`, over {args.consumers:,} consumers "
        "with valid orgnos, cycled in order: no token repeats within "
        f"{args.tokens:,} requests, more than the verified-token cache holds: "
        "the first pass verifies every token in full; on later passes the "
        "tokens the cache admitted (one in eight while it thrashes) are "
        "answered from it",
        "- Ledger: SQLite file, background flush every 5 s, final flush at "
        "shutdown (SIGTERM: uvicorn's lifespan; waitress's `atexit`)",
        "",
        "## Throughput, latency and errors",
        "",
        "| adapter | requests | requests/s | p50 ms | p90 ms | p99 ms | non-2xx "
        "| socket errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        w = run.wrk
        lines.append(
            f"| {ADAPTERS[run.adapter]} | {w.requests:,} | {w.rps:,.0f} "
            f"| {w.p50_ms:.2f} | {w.p90_ms:.2f} | {w.p99_ms:.2f} | {w.non_2xx} "
            f"| {w.socket_errors} |"
        )
    lines += [
        "",
        "## Grant ledger after shutdown",
        "",
        "The ledger counts every request the server answered; wrk counts only "
        "responses that arrived before it stopped, so the ledger may be ahead by "
        f"the requests in flight at the end, at most one per connection "
        f"({args.connections}).",
        "",
        "| adapter | 2xx (wrk) | ledger requests | difference | distinct consumers "
        "| server exit |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        lines.append(
            f"| {run.adapter} | {run.wrk.ok:,} | {run.ledger_requests:,} "
            f"| +{run.ledger_surplus} | {run.ledger_consumers:,} "
            f"| {run.exit_status} |"
        )
    lines += [
        "",
        "Server exit: uvicorn re-raises SIGTERM after its graceful shutdown "
        "(lifespan done, ledger flushed), so its status reads -15; waitress "
        "exits 0 through `SystemExit`.",
        "",
        "## Resident memory of the server (VmRSS, MiB)",
        "",
        "| adapter | before | during: min | during: max | after | growth over "
        "the second half |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        during = [kib for _, kib in run.rss_series] or [run.rss_after]
        half = [kib for t, kib in run.rss_series if t >= args.seconds / 2] or during
        lines.append(
            f"| {run.adapter} | {_mib(run.rss_before)} | {_mib(min(during))} "
            f"| {_mib(max(during))} | {_mib(run.rss_after)} "
            f"| {(half[-1] - half[0]) / 1024:+.1f} |"
        )
    lines += ["", f"Samples every {args.sample:g} s (seconds into the run: MiB):", ""]
    for run in runs:
        series = ", ".join(f"{t:.0f}: {_mib(kib)}" for t, kib in run.rss_series)
        lines.append(f"- {run.adapter}: {series}")
    lines += [
        "",
        "Memory is bounded by these caches; once they are full it stays flat:",
        "",
        *_bounds(),
        "",
        "## Verdict",
        "",
    ]
    failures = [
        f"{run.adapter}: {failure}"
        for run in runs
        for failure in run.failures(args.connections)
    ]
    if failures:
        lines += ["FAILED:", "", *(f"- {failure}" for failure in failures)]
    else:
        lines.append(
            "Passed: no non-2xx responses and no socket errors on either adapter, "
            "and each ledger total equals the 2xx count plus at most the requests "
            "in flight when wrk stopped."
        )

    return "\n".join(lines) + "\n"


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        adapter, issuer_url, port, database = sys.argv[2:6]
        serve(adapter, issuer_url, int(port), database)
        return 0
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--consumers", type=int, default=5_000)
    parser.add_argument("--tokens", type=int, default=50_000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--sample", type=float, default=2.0)
    parser.add_argument("--output", type=Path, default=REPORT)
    args = parser.parse_args()
    missing = tools_missing()
    if missing:
        print(f"{missing}; skipped")
        return 0

    from maskinporten_guard.testing import FakeMaskinporten, IssuerServer

    command = ".venv/bin/python bench/load_report.py " + shlex.join(sys.argv[1:])
    consumers = valid_orgnos(args.consumers)
    fake = FakeMaskinporten()
    with IssuerServer(fake) as issuer, tempfile.TemporaryDirectory() as tmp:
        grants = [(READ, consumers[n % len(consumers)]) for n in range(args.tokens)]
        print(f"minting {len(grants):,} tokens for {len(consumers):,} consumers...")
        tokens = Path(tmp) / "tokens.txt"
        write_tokens(tokens, mint_tokens(fake, grants))
        lua = write_lua(Path(tmp) / "fresh.lua", tokens, PATH)
        runs = []
        for adapter in ADAPTERS:
            print(f"  {adapter}: {args.seconds} s of load...", flush=True)
            runs.append(run_adapter(adapter, issuer.url, lua, args))
            print(f"  {adapter}: {runs[-1].wrk.rps:,.0f} req/s", flush=True)

    report = render(runs, args, command.strip())
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report, encoding="utf-8")
    print(report)
    failed = any(run.failures(args.connections) for run in runs)

    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
