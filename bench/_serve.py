"""
Building blocks shared by the HTTP load scripts in `bench/`.

Valid organisation numbers in bulk, a token file and the wrk Lua script that
cycles through it, a pinned server process, a wrk run parsed into figures, and
the resident memory of a process read from `/proc/<pid>/status`. Everything
stays on 127.0.0.1; the server runs on `SERVER_CPU` and wrk on `WRK_CPU`, so
the load generator does not steal the server's core.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from maskinporten_guard.testing import FakeMaskinporten

ROOT = Path(__file__).resolve().parent.parent
SERVER_CPU = 0
WRK_CPU = 1
TOKEN_LIFETIME = 3600

_WEIGHTS = (3, 2, 7, 6, 5, 4, 3, 2)

_LUA = """
local tokens = {}
for line in io.lines("%s") do tokens[#tokens + 1] = line end
local i = 0
request = function()
  i = i %% #tokens + 1
  return wrk.format("GET", "%s", {["Authorization"] = "Bearer " .. tokens[i]})
end
"""


def valid_orgnos(count: int, first: int = 91_000_000) -> list[str]:
    """
    `count` distinct organisation numbers with a correct mod-11 check digit.

    Args:
        count: how many to make.
        first: the eight-digit base to start from; bases whose check digit
            would be 10 (no valid number) are skipped.
    """
    orgnos: list[str] = []
    base = first
    while len(orgnos) < count:
        digits = f"{base:08d}"
        remainder = sum(int(d) * w for d, w in zip(digits, _WEIGHTS, strict=True)) % 11
        check = 0 if remainder == 0 else 11 - remainder
        if check != 10:
            orgnos.append(digits + str(check))
        base += 1

    return orgnos


def write_tokens(path: Path, tokens: Iterable[str]) -> int:
    """
    Write tokens one per line, for wrk's Lua script; answer how many.

    Args:
        path: the file to write (replaced).
        tokens: the compact tokens.
    """
    count = 0
    with path.open("w", encoding="ascii") as out:
        for token in tokens:
            out.write(token + "\n")
            count += 1

    return count


def write_lua(path: Path, tokens: Path, request_path: str) -> Path:
    """
    Write a wrk script that sends `GET request_path` with the next token each time.

    Args:
        path: the script file to write.
        tokens: the token file, one token a line.
        request_path: the path every request asks for.
    """
    path.write_text(_LUA % (tokens, request_path), encoding="ascii")

    return path


def vm_rss_kib(pid: int | str = "self") -> int:
    """
    The resident memory of a process in KiB, from `/proc/<pid>/status`.

    Args:
        pid: the process id, or "self".
    """
    status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    match = re.search(r"^VmRSS:\s+(\d+) kB$", status, re.MULTILINE)
    if match is None:
        raise ValueError(f"/proc/{pid}/status has no VmRSS line")

    return int(match.group(1))


class RssSampler:
    """
    Samples a process's resident memory every few seconds from a thread.

    Args:
        pid: the process to watch.
        every: seconds between samples.
    """

    def __init__(self, pid: int, every: float = 2.0) -> None:
        self.pid = pid
        self.every = every
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._started = 0.0

    def __enter__(self) -> RssSampler:
        self._started = time.monotonic()
        self._thread.start()

        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                rss = vm_rss_kib(self.pid)
            except (OSError, ValueError):
                return
            self.samples.append((time.monotonic() - self._started, rss))


@dataclass(frozen=True, slots=True)
class WrkResult:
    """
    What one wrk run measured.

    Attributes:
        requests: completed requests.
        seconds: the run's length.
        rps: requests per second.
        mean_ms: mean latency.
        p50_ms: median latency.
        p90_ms: 90th percentile latency.
        p99_ms: 99th percentile latency.
        non_2xx: responses outside 2xx and 3xx.
        socket_errors: connect, read, write and timeout errors together.
    """

    requests: int
    seconds: float
    rps: float
    mean_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int

    @property
    def ok(self) -> int:
        """Requests answered 2xx or 3xx."""
        return self.requests - self.non_2xx


def _millis(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise ValueError(f"wrk printed a latency it is not known to print: {text!r}")
    unit = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[match.group(2)]

    return float(match.group(1)) * unit


def _find(pattern: str, output: str) -> re.Match[str]:
    match = re.search(pattern, output)
    if match is None:
        raise ValueError(f"wrk's output has no match for {pattern!r}:\n{output}")

    return match


def parse_wrk(output: str) -> WrkResult:
    """
    Read the figures from the output of `wrk --latency`.

    Args:
        output: what wrk printed on stdout.
    """
    total = _find(r"(\d+) requests in ([\d.]+)(us|ms|s|m),", output)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)

    return WrkResult(
        requests=int(total.group(1)),
        seconds=_millis(total.group(2) + total.group(3)) / 1000,
        rps=float(_find(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        mean_ms=_millis(_find(r"Latency\s+([\d.]+\w+)", output).group(1)),
        p50_ms=_millis(_find(r"50%\s+([\d.]+\w+)", output).group(1)),
        p90_ms=_millis(_find(r"90%\s+([\d.]+\w+)", output).group(1)),
        p99_ms=_millis(_find(r"99%\s+([\d.]+\w+)", output).group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(n) for n in sockets.groups()) if sockets else 0,
    )


def run_wrk(url: str, seconds: float, connections: int, script: Path) -> WrkResult:
    """
    Load `url` with wrk (one thread, pinned to `WRK_CPU`) for `seconds`.

    Args:
        url: where to send requests; the script sets the path.
        seconds: how long to run.
        connections: open connections.
        script: the wrk Lua script.
    """
    command = [
        "taskset", "-c", str(WRK_CPU), "wrk", "-t1", f"-c{connections}",
        f"-d{seconds}s", "--latency", "-s", str(script), url,
    ]  # fmt: skip
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + 60, check=True
    )

    return parse_wrk(result.stdout)


def tools_missing() -> str | None:
    """Why a load run cannot happen here, or None when it can."""
    if shutil.which("wrk") is None or shutil.which("taskset") is None:
        return "wrk and taskset are needed: apt-get install -y wrk util-linux"
    if len(os.sched_getaffinity(0)) < 2:
        return "needs two CPUs, one for the server and one for wrk"

    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]

    return port


def wait_ready(
    url: str, headers: Mapping[str, str] | None = None, timeout: float = 30.0
) -> None:
    """
    Wait until `url` answers 200.

    Args:
        url: the URL to poll.
        headers: request headers, for example a token.
        timeout: seconds before giving up.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url, headers=headers, timeout=1)
        except httpx.TransportError:
            time.sleep(0.1)
            continue
        if response.status_code != 200:
            raise RuntimeError(f"{url} answered {response.status_code}, not 200")
        return
    raise RuntimeError(f"{url} did not answer within {timeout} s")


class PinnedServer:
    """
    A server process pinned to `SERVER_CPU`, stopped with SIGTERM.

    SIGTERM lets uvicorn run its lifespan shutdown and, with the handler the
    WSGI scripts install, lets a waitress process run its `atexit` hooks, so
    the grant ledger writes its last counts before the process ends.

    Args:
        command: the server command, without `taskset`.
    """

    def __init__(self, command: Sequence[str]) -> None:
        self.command = ["taskset", "-c", str(SERVER_CPU), *command]
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The server's process id (taskset execs the command in place)."""
        if self._process is None:
            raise RuntimeError("the server is not running")

        return self._process.pid

    def __enter__(self) -> PinnedServer:
        self._process = subprocess.Popen(self.command, cwd=ROOT)

        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self, timeout: float = 30.0) -> int | None:
        """
        Send SIGTERM, wait for the exit, and answer the exit status.

        Args:
            timeout: seconds to wait before killing the process.
        """
        process = self._process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=timeout)

        return process.returncode


def stop_on_sigterm() -> None:
    """Turn SIGTERM into `SystemExit`, so `atexit` hooks run (waitress)."""

    def _exit(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _exit)


_MINTER: list[FakeMaskinporten] = []


def _mint_one(grant: tuple[str, str]) -> str:
    return _MINTER[0].mint(grant[0], grant[1], lifetime=TOKEN_LIFETIME)


def mint_tokens(
    fake: FakeMaskinporten, grants: Sequence[tuple[str, str]], processes: int = 2
) -> list[str]:
    """
    One token per (scope, consumer) in `grants`, each with its own `jti`.

    Signing dominates (about a millisecond a token), so the work is split over
    forked processes that share the issuer's key. Tokens live for
    `TOKEN_LIFETIME` seconds, longer than any run.

    Args:
        fake: the issuer that signs.
        grants: (scope, consumer orgno) for each token, in order.
        processes: how many processes sign.
    """
    _MINTER[:] = [fake]
    try:
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            tokens = pool.map(_mint_one, grants, chunksize=500)
    finally:
        _MINTER.clear()

    return tokens
