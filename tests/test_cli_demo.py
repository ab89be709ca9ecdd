from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from maskinporten_guard._cli import cli
from maskinporten_guard._cli.demo import Step, _call, describe, find_repository

# Three base64url segments, long enough to be a signed JWT and not a word.
JWT_LIKE = re.compile(r"[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")


@pytest.fixture(scope="module")
def demo_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> subprocess.CompletedProcess[str]:
    """The demo run once as a user runs it, from an unrelated folder."""
    return subprocess.run(
        [sys.executable, "-m", "maskinporten_guard", "demo"],
        cwd=tmp_path_factory.mktemp("elsewhere"),
        capture_output=True,
        text=True,
        timeout=90,
    )


def header_value(output: str, name: str) -> str:
    """The value printed after `name` in the demo's header."""
    match = re.search(rf"^  {name}\s+(\S+)", output, re.MULTILINE)
    assert match is not None, f"no {name} line in the header"

    return match.group(1)


def test_demo_exits_zero(demo_run: subprocess.CompletedProcess[str]) -> None:
    """Every scripted call gets the answer the script expects."""
    assert demo_run.returncode == 0, demo_run.stdout + demo_run.stderr
    assert "Every call got the answer the script expects" in demo_run.stdout


@pytest.mark.parametrize(
    "line",
    [
        pytest.param("200 allowed", id="read"),
        pytest.param('201 allowed: {"id": 1, "status": "open"', id="write"),
        pytest.param("403 refused, insufficient_scope: this consumer", id="writer"),
        pytest.param("[required scope: demo:inspections.read]", id="scope"),
        pytest.param("401 refused, invalid_token: the token has expired", id="exp"),
        pytest.param("the token's signature does not verify", id="forged"),
        pytest.param("no published signing key has kid", id="other-issuer-key"),
        pytest.param("not issued by the configured issuer", id="other-iss"),
        pytest.param("910753614 via supplier 991825827", id="delegated"),
        pytest.param("at /token)", id="jwt-bearer"),
        pytest.param("974761076 as system user for 314240979", id="system-user"),
    ],
)
def test_demo_shows_each_decision(
    demo_run: subprocess.CompletedProcess[str], line: str
) -> None:
    """Each kind of call in the script is printed with its decision."""
    assert line in demo_run.stdout


def test_demo_reports_the_rotation(demo_run: subprocess.CompletedProcess[str]) -> None:
    """The rotation line states the one key set fetch the guard made."""
    assert (
        "issuer rotated its signing key; the guard fetched the new key set once"
        in demo_run.stdout
    )


def test_demo_prints_the_ledger_report(
    demo_run: subprocess.CompletedProcess[str],
) -> None:
    """The flushed ledger is reported per scope, with the yearly price."""
    rows = re.findall(r"^(demo:inspections\.\w+)\s+(\d+)", demo_run.stdout, re.M)

    assert rows == [("demo:inspections.read", "5"), ("demo:inspections.write", "1")]
    assert "yearly price of the accesses seen: 78 000 NOK" in demo_run.stdout


def test_demo_prints_no_token(demo_run: subprocess.CompletedProcess[str]) -> None:
    """Nothing shaped like a JWT reaches stdout or stderr."""
    output = demo_run.stdout + demo_run.stderr

    assert JWT_LIKE.search(output) is None
    assert "eyJ" not in output


@pytest.mark.parametrize("name", ["issuer", "api"])
def test_demo_leaves_no_server_behind(
    demo_run: subprocess.CompletedProcess[str], name: str
) -> None:
    """The issuer's and the API's ports are closed once the demo has exited."""
    port = httpx.URL(header_value(demo_run.stdout, name)).port
    assert port is not None

    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_demo_deletes_its_ledger(demo_run: subprocess.CompletedProcess[str]) -> None:
    """Without --keep the temporary folder with the SQLite ledger is gone."""
    database = Path(header_value(demo_run.stdout, "ledger").removeprefix("sqlite:///"))

    assert not database.parent.exists()


def test_demo_keep_leaves_the_ledger(tmp_path: Path) -> None:
    """With --keep the SQLite ledger stays, and its path is printed."""
    result = subprocess.run(
        [sys.executable, "-m", "maskinporten_guard", "demo", "--keep", "--quiet"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=90,
    )
    match = re.search(r"The ledger is kept at (\S+)", result.stdout)

    assert result.returncode == 0, result.stdout + result.stderr
    assert match is not None
    database = Path(match.group(1))
    try:
        assert database.is_file()
        assert "GET  /inspections/1 " not in result.stdout
    finally:
        for path in database.parent.iterdir():
            path.unlink()
        database.parent.rmdir()


def test_demo_help_names_its_options() -> None:
    """`demo --help` explains the command and lists --keep and --quiet."""
    result = CliRunner().invoke(cli, ["demo", "--help"])

    assert result.exit_code == 0
    assert "--keep" in result.output
    assert "--quiet" in result.output


def test_find_repository_finds_the_example() -> None:
    """Run from a clone, the demo finds examples/fastapi_app."""
    assert (find_repository() / "examples" / "fastapi_app" / "app.py").is_file()


@pytest.mark.parametrize(
    ("status", "headers", "body", "words"),
    [
        pytest.param(
            200,
            {},
            b'{"id": 3, "status": "closed", "jti": "x"}',
            'allowed: {"id": 3, "status": "closed"}',
            id="answer",
        ),
        pytest.param(
            403,
            {"www-authenticate": 'Bearer realm="api", scope="demo:a demo:b"'},
            b'{"error": "insufficient_scope", "detail": "lacks a scope"}',
            "refused, insufficient_scope: lacks a scope "
            "[required scope: demo:a demo:b]",
            id="missing-scope",
        ),
        pytest.param(
            401,
            {},
            b'{"title": "Unauthorized", "status": 401}',
            "refused, no token: Unauthorized",
            id="no-error-code",
        ),
        pytest.param(502, {}, b"<html>", "refused (502)", id="not-json"),
    ],
)
def test_describe(
    status: int, headers: dict[str, str], body: bytes, words: str
) -> None:
    """An answer is put in plain words from its body and challenge."""
    assert describe(status, headers, body) == words


def test_an_unexpected_status_is_flagged() -> None:
    """A call answered otherwise than the script expects is marked as such."""
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={}))
    step = Step("a refusal", "GET", "/inspections/1", "889640782", 403, "t.t.t")
    with httpx.Client(transport=transport, base_url="http://api") as client:
        surprise, lines = _call(client, step)

    assert surprise
    assert "UNEXPECTED, the script expects 403" in lines[1]


def test_step_repr_hides_the_token() -> None:
    """A step's repr leaves its token out."""
    step = Step("a read", "GET", "/", "991825827", 200, "secret.token.value")

    assert "secret" not in repr(step)
