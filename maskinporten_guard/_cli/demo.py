"""
`maskinporten-guard demo`: a development issuer, an API behind the guard, and
a short scripted day of traffic against both, over real sockets.

The issuer is the testing kit's `IssuerServer` in a thread of this process;
the API is `examples/fastapi_app` served by uvicorn in a child process, so the
guard fetches keys and answers requests exactly as it would in production.
Each scripted call states the status it expects, so the demo checks itself and
doubles as an end-to-end smoke test. The example lives in the repository, not
in the installed package: the demo runs from a clone.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import httpx
import jwt

import maskinporten_guard

from ..report import run_report
from ..testing import FakeMaskinporten, IssuerServer
from .app import EXIT_INVALID, UsageProblem

__all__ = ["Step", "demo_command", "describe", "find_repository"]

# The example's scopes and writers (examples/fastapi_app/app.py); the package
# cannot import the example, which is not installed with it.
READ = "demo:inspections.read"
WRITE = "demo:inspections.write"
OTHER = "demo:reports.read"
WRITER = "991825827"

DIGDIR = "991825827"
NAV = "889640782"
CUSTOMER = "974761076"
DELEGATING = "910753614"
CLIENT_ORG = "314240979"

KID_COOLDOWN = 0.2
HEALTH_DEADLINE = 20.0
STOP_DEADLINE = 10.0
CALL_TIMEOUT = 5.0
# uvicorn exits 0, or re-raises the SIGTERM it handled once it has shut down.
_STOPPED_CLEANLY = (0, -signal.SIGTERM)
_ANSWER_FIELDS = ("id", "status", "requested_by", "consumer", "supplier", "scopes")


@dataclass(frozen=True, slots=True)
class Step:
    """
    One scripted call and the status the script expects for it.

    Attributes:
        story: what the call stands for, in a few words.
        method: the HTTP method.
        path: the path on the API.
        who: the consumer (and supplier) the token names, for people.
        expected: the status the guard should answer with.
        token: the bearer token; never printed.
        body: a JSON body to send, for writes.
    """

    story: str
    method: str
    path: str
    who: str
    expected: int
    token: str = field(repr=False)
    body: Mapping[str, Any] | None = None


def find_repository() -> Path:
    """
    The clone the package runs from, which holds `examples/fastapi_app`.

    Raises:
        UsageProblem: the package is installed without its repository.
    """
    root = Path(maskinporten_guard.__file__).resolve().parents[1]
    if not (root / "examples" / "fastapi_app" / "app.py").is_file():
        raise UsageProblem(
            f"the demo serves examples/fastapi_app from the repository, and there "
            f"is none at {root}; clone the repository and run "
            "`python3 dev.py demo` there"
        )

    return root


def _require_servers() -> None:
    """
    Check that the example's web stack is installed.

    Raises:
        UsageProblem: uvicorn or FastAPI is missing.
    """
    missing = [m for m in ("uvicorn", "fastapi") if importlib.util.find_spec(m) is None]
    if missing:
        raise UsageProblem(
            f"the demo needs {' and '.join(missing)}; install them with "
            "pip install 'maskinporten-guard[cli,fastapi]'"
        )


def describe(status: int, headers: Mapping[str, str], body: bytes) -> str:
    """
    Say in plain words what the API answered.

    A refusal is read from its problem+json body (`error`, `detail`) and, for
    a missing scope, the scope the `WWW-Authenticate` challenge asks for; an
    answer is shown by its main fields.

    Args:
        status: the HTTP status.
        headers: the response headers (case-insensitive mapping).
        body: the response body.
    """
    try:
        document = json.loads(body) if body else None
    except ValueError:
        document = None
    if 200 <= status < 300:
        shown = document
        if isinstance(document, dict):
            shown = {k: v for k, v in document.items() if k in _ANSWER_FIELDS and v}
        return f"allowed: {json.dumps(shown, separators=(', ', ': '))}"

    words = f"refused ({status})"
    if isinstance(document, dict):
        error = document.get("error")
        detail = document.get("detail")
        words = f"refused, {error or 'no token'}: {detail or document.get('title')}"
    scope = _challenged_scope(headers.get("www-authenticate", ""))
    if scope:
        words += f" [required scope: {scope}]"

    return words


def _challenged_scope(challenge: str) -> str | None:
    marker = 'scope="'
    start = challenge.find(marker)
    if start < 0:
        return None
    start += len(marker)
    end = challenge.find('"', start)

    return challenge[start:end] if end > start else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]

    return port


def _api_environment(issuer: str, store_url: str) -> dict[str, str]:
    """The child's environment: ours without MASKINPORTEN_*, plus the demo's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MASKINPORTEN_")}
    env.update(
        {
            "MASKINPORTEN_ISSUER": issuer,
            "MASKINPORTEN_GRANTS_STORE": store_url,
            "MASKINPORTEN_LEDGER_FLUSH": "0.5",
            # One refetch for an unknown kid per this many seconds: short, so
            # the rotation below is picked up at once.
            "MASKINPORTEN_KID_COOLDOWN": str(KID_COOLDOWN),
            "DEMO_WRITERS": WRITER,
        }
    )

    return env


@contextlib.contextmanager
def _api_process(
    root: Path, port: int, env: Mapping[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """
    uvicorn serving the example in a child process; always stopped on exit.

    The child gets SIGTERM first so that uvicorn runs the lifespan shutdown
    (the ledger's last flush), then is killed if it has not gone within
    `STOP_DEADLINE` seconds. On Windows the first stop is already a kill.
    """
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "examples.fastapi_app.app:app",
        "--app-dir",
        str(root),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    with log.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603 - our interpreter, fixed arguments
            command, cwd=root, env=dict(env), stdout=output, stderr=output
        )
    try:
        yield process
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_DEADLINE)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_DEADLINE)


def _wait_healthy(
    client: httpx.Client, process: subprocess.Popen[bytes], log: Path
) -> None:
    """
    Return once `/health` answers 200, within `HEALTH_DEADLINE` seconds.

    Raises:
        click.ClickException: the server exited or never answered.
    """
    deadline = time.monotonic() + HEALTH_DEADLINE
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise click.ClickException(
                f"the API server exited with {process.returncode} while starting:\n"
                + _tail(log)
            )
        with contextlib.suppress(httpx.TransportError):
            if client.get("/health", timeout=1.0).status_code == 200:
                return
        time.sleep(0.05)
    raise click.ClickException(
        f"the API server did not answer /health within {HEALTH_DEADLINE:.0f} s:\n"
        + _tail(log)
    )


def _tail(log: Path, lines: int = 20) -> str:
    text = log.read_text("utf-8", "replace") if log.exists() else ""

    return "\n".join(text.splitlines()[-lines:]) or "(it printed nothing)"


def _fetch_token(server: IssuerServer) -> str:
    """
    Get a token the way a consumer does: a jwt-bearer grant at `/token`.

    A client of `CLIENT_ORG` is registered with its own RSA key; its signed
    assertion (RFC 7523) names the issuer as audience and asks for `READ`.

    Raises:
        click.ClickException: the token endpoint refused the grant.
    """
    client_key = server.fake.new_key()
    server.register_client(
        "demo-client",
        client_key.private_key.public_key(),
        CLIENT_ORG,
        [READ],
        kid=client_key.kid,
    )
    now = int(time.time())
    assertion = jwt.encode(
        {
            "iss": "demo-client",
            "aud": server.url,
            "scope": READ,
            "iat": now,
            "exp": now + 60,
            "jti": str(uuid.uuid4()),
        },
        client_key.private_key,
        algorithm="RS256",
        headers={"kid": client_key.kid},
    )
    answer = httpx.post(
        server.token_endpoint,
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "assertion": assertion,
        },
        timeout=CALL_TIMEOUT,
    )
    if answer.status_code != 200:
        raise click.ClickException(
            f"the token endpoint refused the demo's grant: {answer.status_code}"
        )
    token: str = answer.json()["access_token"]

    return token


def morning(fake: FakeMaskinporten, fetched: str) -> list[Step]:
    """
    The calls before the key rotation.

    Args:
        fake: the issuer the API trusts.
        fetched: a token fetched at the issuer's `/token` for `CLIENT_ORG`.
    """
    stranger = FakeMaskinporten("https://test.maskinporten.no/")
    forger = fake.new_key(kid=fake.current_key.kid)
    an_hour_ago = time.time() - 3600

    return [
        Step("Digdir reads", "GET", "/inspections/1", DIGDIR, 200, fake.mint(READ)),
        Step("NAV reads", "GET", "/inspections/2", NAV, 200, fake.mint(READ, NAV)),
        Step(
            "fetched with a jwt-bearer grant at /token",
            "GET",
            "/inspections/3",
            CLIENT_ORG,
            200,
            fetched,
        ),
        Step(
            "Digdir writes; it is on the writers' list",
            "POST",
            "/inspections",
            DIGDIR,
            201,
            fake.mint([READ, WRITE]),
            {"site": "Oslo"},
        ),
        Step(
            "NAV has the write scope, not the writers' list",
            "POST",
            "/inspections",
            NAV,
            403,
            fake.mint([READ, WRITE], NAV),
            {"site": "Bergen"},
        ),
        Step(
            "a token without the read scope",
            "GET",
            "/inspections/4",
            CUSTOMER,
            403,
            fake.mint(OTHER, CUSTOMER),
        ),
        Step(
            "a token that expired an hour ago",
            "GET",
            "/inspections/5",
            NAV,
            401,
            fake.mint(READ, NAV, issued_at=an_hour_ago),
        ),
        Step(
            "forged: an unpublished key, the issuer's kid",
            "GET",
            "/inspections/6",
            DIGDIR,
            401,
            fake.mint(READ, key=forger),
        ),
        Step(
            "another issuer's token, its key unknown here",
            "GET",
            "/inspections/7",
            DIGDIR,
            401,
            stranger.mint(READ),
        ),
        Step(
            "names another issuer, signed with this one's key",
            "GET",
            "/inspections/8",
            DIGDIR,
            401,
            fake.mint(READ, extra={"iss": stranger.issuer}),
        ),
        Step(
            "a supplier for its customer, Altinn delegation",
            "GET",
            "/inspections/9",
            f"{DELEGATING} via supplier {DIGDIR}",
            200,
            fake.mint(READ, DELEGATING, supplier=DIGDIR),
        ),
    ]


def afternoon(fake: FakeMaskinporten) -> list[Step]:
    """The calls after the rotation, every token signed with the new key."""
    return [
        Step(
            "NAV reads, token signed with the new key",
            "GET",
            "/inspections/10",
            NAV,
            200,
            fake.mint(READ, NAV),
        ),
        Step(
            "Digdir writes with the new key",
            "POST",
            "/inspections",
            DIGDIR,
            201,
            fake.mint(WRITE),
            {"site": "Trondheim"},
        ),
        Step(
            "a vendor's system as its customer's system user",
            "GET",
            "/inspections/11",
            f"{CUSTOMER} as system user for {CLIENT_ORG}",
            200,
            fake.mint(READ, CUSTOMER, system_user=CLIENT_ORG),
        ),
    ]


def _call(client: httpx.Client, step: Step) -> tuple[bool, list[str]]:
    """Make one call; answer whether it surprised, and the lines that show it."""
    response = client.request(
        step.method,
        step.path,
        headers={"Authorization": f"Bearer {step.token}"},
        json=step.body,
    )
    words = describe(response.status_code, response.headers, response.content)
    surprise = response.status_code != step.expected
    mark = f"  UNEXPECTED, the script expects {step.expected}" if surprise else ""
    lines = [
        f"  {step.method:<4} {step.path:<16} {step.who}  ({step.story})",
        f"       {response.status_code} {words}{mark}",
    ]

    return surprise, lines


def _play(client: httpx.Client, steps: Sequence[Step], quiet: bool) -> int:
    """Make each call, print it, and answer how many got an unexpected status."""
    surprises = 0
    for step in steps:
        surprise, lines = _call(client, step)
        surprises += surprise
        _show(lines, quiet and not surprise)

    return surprises


def _show(lines: Sequence[str], hidden: bool = False) -> None:
    if not hidden:
        for line in lines:
            click.echo(line)


def _rotation(client: httpx.Client, server: IssuerServer, quiet: bool) -> int:
    """
    Rotate the issuer's key, call once with the new kid, and count key fetches.

    The guard has never seen the new kid, so it must refetch the key set once
    (not per token) and accept the call; either failing is a surprise.
    """
    # Let the unknown kid of the other issuer's token leave the cooldown.
    time.sleep(KID_COOLDOWN * 1.5)
    before = server.jwks_fetches
    server.fake.rotate()
    first, *rest = afternoon(server.fake)
    surprise, lines = _call(client, first)
    surprises = int(surprise)
    fetches = server.jwks_fetches - before
    if fetches == 1:
        note = "the guard fetched the new key set once"
    else:
        surprises += 1
        note = f"UNEXPECTED, the guard fetched the key set {fetches} times"
    click.echo(f"  -- issuer rotated its signing key; {note}")
    _show(lines, quiet and not surprises)

    return surprises + _play(client, rest, quiet)


def _day(client: httpx.Client, server: IssuerServer, quiet: bool) -> int:
    """Play the whole day; answer the number of surprises."""
    surprises = _play(client, morning(server.fake, _fetch_token(server)), quiet)

    return surprises + _rotation(client, server, quiet)


def _header(server: IssuerServer, api_url: str, store_url: str) -> None:
    click.echo("maskinporten-guard demo: an API behind the guard, and a day of calls")
    click.echo(f"  issuer  {server.url}  the testing kit's fake Maskinporten")
    click.echo("          (metadata, /jwk, jwt-bearer /token), in this process")
    click.echo(f"  api     {api_url}  examples/fastapi_app behind the guard,")
    click.echo("          served by uvicorn in a child process")
    click.echo(f"  ledger  {store_url}")
    click.echo(f"  rules   GET /inspections/{{id}} needs {READ};")
    click.echo(f"          POST /inspections needs {WRITE}, writers {WRITER} only")
    click.echo("")
    click.echo("Calls (tokens are not shown):")


@click.command(name="demo")
@click.option(
    "--keep", is_flag=True, help="Keep the SQLite ledger and print where it is."
)
@click.option(
    "--quiet", is_flag=True, help="Print only unexpected answers and the report."
)
def demo_command(keep: bool, quiet: bool) -> None:
    """
    Show the guard protecting an API, on nothing but this machine.

    Starts a development issuer on 127.0.0.1, serves examples/fastapi_app
    behind the guard with uvicorn on another free port, and plays a scripted
    day of calls from several consumers: allowed reads and a write, a write
    refused for its consumer, a missing scope, an expired token, a forged
    signature, a token from another issuer, a delegated supplier, a key
    rotation and a system user. Each call and its decision is printed; then
    the API is stopped (its grant ledger flushed) and the ledger report with
    the yearly price is printed. Everything started is stopped again.

    Runs from a clone of the repository (`python3 dev.py demo`). Exits 0 when
    every call got the status the script expects, 1 otherwise, 2 when the
    example or uvicorn is missing.
    """
    root = find_repository()
    _require_servers()
    folder = Path(tempfile.mkdtemp(prefix="maskinporten-guard-demo-"))
    store_url = f"sqlite:///{folder / 'grants.db'}"
    try:
        surprises = _run(root, folder, store_url, quiet)
        click.echo("")
        click.echo(run_report(store_url), nl=False)
    finally:
        if keep:
            click.echo(f"\nThe ledger is kept at {folder / 'grants.db'}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    if surprises:
        click.echo(f"\n{surprises} answer(s) differed from the script.", err=True)
        raise SystemExit(EXIT_INVALID)


def _run(root: Path, folder: Path, store_url: str, quiet: bool) -> int:
    """Start the issuer and the API, play the day, stop both; answer surprises."""
    server = IssuerServer(FakeMaskinporten()).start()
    try:
        port = _free_port()
        api_url = f"http://127.0.0.1:{port}"
        env = _api_environment(server.url, store_url)
        log = folder / "uvicorn.log"
        _header(server, api_url, store_url)
        with (
            _api_process(root, port, env, log) as process,
            httpx.Client(base_url=api_url, timeout=CALL_TIMEOUT) as client,
        ):
            _wait_healthy(client, process, log)
            surprises = _day(client, server, quiet)
        click.echo("")
        click.echo(_count(surprises))
        if process.returncode in _STOPPED_CLEANLY:
            click.echo("The API stopped cleanly and flushed its ledger.")
        else:
            surprises += 1
            click.echo(
                f"UNEXPECTED: the API exited with {process.returncode} when stopped; "
                "its last counts may be missing:\n" + _tail(log)
            )
    finally:
        server.stop()

    return surprises


def _count(surprises: int) -> str:
    if surprises == 0:
        return "Every call got the answer the script expects"

    return f"{surprises} call(s) got an answer the script does not expect"
