"""
Faults with real servers and processes: a failing JWKS, a kid flood, signals.

The guards run behind uvicorn and waitress on 127.0.0.1 against a real
`IssuerServer`; time is a `ManualClock` the test moves, so hours of key age
pass without sleeping. Real time is spent only on the short fetch timeouts.
The signal tests run the FastAPI example as a uvicorn subprocess with a
SQLite grant ledger and compare its counts with the 200s the clients saw.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from maskinporten_guard import ManualClock, Policy, Settings
from maskinporten_guard.policy import Rule, require
from maskinporten_guard.stores import open_store
from maskinporten_guard.testing import FakeMaskinporten, IssuerServer

from .servers import free_port, serve_guarded

NOW = 1_760_000_000.0
READ = "demo:inspections.read"
POLICY = Policy([Rule("/inspections/{id}", require(all_of=[READ]))])
REFRESH = 3600.0
STALENESS = 7200.0
COOLDOWN = 60.0
ROOT = Path(__file__).resolve().parents[1]
ADAPTERS = [pytest.param("asgi", id="asgi"), pytest.param("wsgi", id="wsgi")]
WAIT = 15.0
_pause = threading.Event()


def _settings(issuer: IssuerServer) -> Settings:
    return Settings.custom(
        issuer.url,
        refresh_interval=REFRESH,
        max_staleness=STALENESS,
        unknown_kid_cooldown=COOLDOWN,
        fetch_timeout=0.5,
        read_timeout=0.3,
        connect_timeout=0.3,
    )


def wait_for(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    """Poll every 10 ms until `condition()` holds, failing after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout} s")
        _pause.wait(0.01)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class SteadyTraffic:
    """
    Requests with fresh valid tokens from a thread, labelled with the phase.

    A request counts for a phase only if the phase was the same when its
    token was minted and when its answer arrived, so moving the clock never
    blurs which phase an answer belongs to.
    """

    url: str
    fake: FakeMaskinporten
    phase: str = "start"
    answers: list[tuple[str, int, str | None]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=WAIT) as client:
            n = 0
            while not self.stop.is_set():
                phase = self.phase
                token = self.fake.mint(READ)
                response = client.get(f"/inspections/{n}", headers=bearer(token))
                if phase == self.phase:
                    retry = response.headers.get("retry-after")
                    self.answers.append((phase, response.status_code, retry))
                n += 1

    def during(self, phase: str, count: int = 10) -> list[int]:
        """Enter `phase`, wait for `count` answers in it; answer their statuses."""
        self.phase = phase
        wait_for(lambda: len(self.of(phase)) >= count, f"{count} answers in {phase}")

        return [status for status, _ in self.of(phase)]

    def of(self, phase: str) -> list[tuple[int, str | None]]:
        return [(s, retry) for p, s, retry in list(self.answers) if p == phase]


@contextlib.contextmanager
def traffic(url: str, fake: FakeMaskinporten) -> Iterator[SteadyTraffic]:
    """Run `SteadyTraffic` in a thread for the duration of the block."""
    steady = SteadyTraffic(url, fake)
    thread = threading.Thread(target=steady.run, daemon=True)
    thread.start()
    try:
        yield steady
    finally:
        steady.stop.set()
        thread.join(timeout=WAIT)


def break_issuer(issuer: IssuerServer, fault: str) -> None:
    if fault == "stopped":
        issuer.stop()
        return
    issuer.fault = fault  # type: ignore[assignment]
    # Longer than fetch_timeout: a slow answer comes too late, a drip too.
    issuer.delay = 1.0 if fault == "slow" else 0.05


def mend_issuer(issuer: IssuerServer, fault: str) -> None:
    if fault == "stopped":
        issuer.start()
        return
    issuer.fault = None


@pytest.mark.parametrize("adapter", ADAPTERS)
@pytest.mark.parametrize(
    "fault",
    [
        pytest.param("down", id="down-503"),
        pytest.param("refuse", id="refuse-connection"),
        pytest.param("stopped", id="stopped-process"),
        pytest.param("slow", id="slow"),
        pytest.param("drip", id="drip"),
        pytest.param("garbage", id="garbage"),
    ],
)
def test_jwks_fault_during_traffic(adapter: str, fault: str) -> None:
    """Cached keys serve until max staleness, then 503, then recovery in place."""
    clock = ManualClock(NOW)
    fake = FakeMaskinporten(clock=clock)
    with (
        IssuerServer(fake) as issuer,
        serve_guarded(adapter, POLICY, _settings(issuer), clock) as url,
        traffic(url, fake) as steady,
    ):
        assert set(steady.during("fresh")) == {200}
        fetched = issuer.jwks_fetches
        break_issuer(issuer, fault)

        # A refresh is due, fails in the background; cached keys keep serving.
        for step, seconds in enumerate([0.9 * REFRESH + 60, 2000, 1800]):
            clock.advance(seconds)
            assert set(steady.during(f"stale-{step}")) == {200}
        assert clock() - NOW < STALENESS
        if fault != "stopped":
            # The refreshes really reached the broken issuer, spaced by the cooldown.
            assert fetched < issuer.jwks_fetches <= fetched + 3

        clock.advance(STALENESS - (clock() - NOW) + 1)
        assert set(steady.during("too-old")) == {503}
        assert all(
            retry is not None and int(retry) >= 1 for _, retry in steady.of("too-old")
        )

        mend_issuer(issuer, fault)
        clock.advance(COOLDOWN + 1)
        assert set(steady.during("recovered")) == {200}


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_rotation_during_traffic(adapter: str) -> None:
    """A rotated key is fetched once on first sight; a withdrawn one stops passing."""
    clock = ManualClock(NOW)
    fake = FakeMaskinporten(clock=clock)
    with (
        IssuerServer(fake) as issuer,
        serve_guarded(adapter, POLICY, _settings(issuer), clock) as url,
        traffic(url, fake) as steady,
        httpx.Client(base_url=url, timeout=WAIT) as client,
    ):
        assert set(steady.during("before")) == {200}
        old = fake.current_key
        clock.advance(COOLDOWN + 1)
        fetched = issuer.jwks_fetches

        fake.rotate(keep_old=True)
        assert set(steady.during("rotated")) == {200}
        assert issuer.jwks_fetches == fetched + 1
        old_token = fake.mint(READ, key=old)
        assert (
            client.get("/inspections/1", headers=bearer(old_token)).status_code == 200
        )

        fake.keys = [fake.current_key]
        clock.advance(REFRESH)
        assert set(steady.during("withdrawn")) == {200}

        def old_key_refused() -> bool:
            token = fake.mint(READ, key=old)
            answer = client.get("/inspections/1", headers=bearer(token))
            return answer.status_code == 401

        wait_for(old_key_refused, "the withdrawn key refused after the refresh")


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_random_kid_flood(adapter: str) -> None:
    """500 tokens with random kids cost the issuer at most one fetch per cooldown."""
    clock = ManualClock(NOW)
    fake = FakeMaskinporten(clock=clock)
    with (
        IssuerServer(fake) as issuer,
        serve_guarded(adapter, POLICY, _settings(issuer), clock) as url,
        httpx.Client(base_url=url, timeout=WAIT) as client,
    ):
        assert (
            client.get("/inspections/0", headers=bearer(fake.mint(READ))).status_code
            == 200
        )

        def flood() -> set[int]:
            def one(n: int) -> int:
                kid = secrets.token_urlsafe(16)
                token = fake.mint(READ, header={"kid": kid})
                return client.get(
                    f"/inspections/{n}", headers=bearer(token)
                ).status_code

            with ThreadPoolExecutor(max_workers=8) as pool:
                return set(pool.map(one, range(500)))

        for _ in range(2):
            clock.advance(COOLDOWN + 1)
            before = issuer.jwks_fetches
            assert flood() == {401}
            assert issuer.jwks_fetches - before <= 1
        valid = client.get("/inspections/1", headers=bearer(fake.mint(READ)))
        assert valid.status_code == 200


FLUSH = 0.2
"""The subprocess's ledger flush interval, in seconds."""


@dataclass
class Load:
    """Steady requests from threads; each 200 is remembered with its arrival."""

    url: str
    tokens: list[str]
    oks: list[float] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self, worker: int) -> None:
        n = worker
        with httpx.Client(base_url=self.url, timeout=5) as client:
            while not self.stop.is_set():
                token = self.tokens[n % len(self.tokens)]
                try:
                    response = client.get(f"/inspections/{n}", headers=bearer(token))
                except httpx.TransportError:
                    # The server is going away; keep trying until told to stop.
                    _pause.wait(0.005)
                    continue
                if response.status_code == 200:
                    self.oks.append(time.monotonic())
                n += 4


@contextlib.contextmanager
def example_process(
    issuer: IssuerServer, db: Path
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """The FastAPI example under uvicorn, in its own process, with a SQLite ledger."""
    port = free_port()
    env = {
        **os.environ,
        "MASKINPORTEN_ISSUER": issuer.url,
        "MASKINPORTEN_GRANTS_STORE": f"sqlite:///{db}",
        "MASKINPORTEN_LEDGER_FLUSH": str(FLUSH),
    }
    env.pop("MASKINPORTEN_ENV", None)
    log = (db.parent / "uvicorn.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "examples.fastapi_app.app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:

        def healthy() -> bool:
            assert process.poll() is None, "the example exited during start-up"
            try:
                return httpx.get(url + "/health", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(healthy, "the example's start-up")
        yield process, url
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=WAIT)
        log.close()


def counted(db: Path) -> int:
    """Requests the ledger holds for the read scope."""
    store = open_store(f"sqlite:///{db}")
    try:
        return sum(
            row.usage.requests for row in store.read_usage() if row.key.scope == READ
        )
    finally:
        store.close()


def run_until_signal(
    issuer: IssuerServer, db: Path, signum: signal.Signals
) -> tuple[Load, float]:
    """Load the example, then send `signum`; answer the load and when it was sent."""
    fake = issuer.fake
    tokens = [fake.mint(READ, consumer) for consumer in ("991825827", "889640782")]
    with example_process(issuer, db) as (process, url):
        load = Load(url, tokens)
        workers = [
            threading.Thread(target=load.run, args=(i,), daemon=True) for i in range(4)
        ]
        for worker in workers:
            worker.start()
        try:
            started = time.monotonic()
            # Ten flush intervals of load, so a flush's worth is a small part.
            wait_for(
                lambda: (
                    len(load.oks) >= 300 and time.monotonic() - started >= 10 * FLUSH
                ),
                "two seconds and 300 answered requests",
            )
            signalled = time.monotonic()
            process.send_signal(signum)
            process.wait(timeout=WAIT)
        finally:
            load.stop.set()
            for worker in workers:
                worker.join(timeout=WAIT)

    return load, signalled


def test_sigterm_under_load_counts_every_answer(tmp_path: Path) -> None:
    """After SIGTERM, the ledger holds exactly the 200s the clients received."""
    with IssuerServer(FakeMaskinporten()) as issuer:
        load, _ = run_until_signal(issuer, tmp_path / "ledger.db", signal.SIGTERM)

    assert len(load.oks) >= 300
    assert counted(tmp_path / "ledger.db") == len(load.oks)


def test_sigkill_under_load_loses_at_most_one_flush(tmp_path: Path) -> None:
    """After SIGKILL, only counts from about the last flush interval are missing."""
    with IssuerServer(FakeMaskinporten()) as issuer:
        load, killed = run_until_signal(issuer, tmp_path / "ledger.db", signal.SIGKILL)

    # Counts since the last flush that completed are lost: one interval of
    # sleeping plus the write in flight when the process died (milliseconds
    # on SQLite; allowed another whole interval here).
    window = 2 * FLUSH
    at_risk = sum(1 for arrived in load.oks if arrived >= killed - window)
    total = counted(tmp_path / "ledger.db")
    figures = f"{len(load.oks)} answered, {total} counted, {at_risk} at risk"
    assert at_risk < len(load.oks) / 2, figures
    assert total >= len(load.oks) - at_risk, figures
    # A request may be counted and flushed while its answer is cut off: at
    # most one per client thread.
    assert total <= len(load.oks) + 4, figures
