from __future__ import annotations

import contextlib
import json
import queue
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from maskinporten_guard import Settings
from maskinporten_guard.testing import FakeMaskinporten, IssuerServer, SigningKey
from maskinporten_guard.verifier import SyncVerifier

COMMAND = [sys.executable, "-m", "maskinporten_guard.cli"]
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """Run the command line as a user would, in a new process."""
    return subprocess.run(
        [*COMMAND, *args], input=stdin, capture_output=True, text=True, timeout=60
    )


def read_lines(
    process: subprocess.Popen[str], count: int, timeout: float = 20
) -> list[str]:
    """The first `count` lines of the process's stdout, within `timeout`."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        # The fixture closes the stream at teardown, possibly while this
        # thread still reads it; that ends the pumping, it is not an error.
        with contextlib.suppress(ValueError, OSError):
            for line in process.stdout:
                lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    try:
        return [lines.get(timeout=timeout) for _ in range(count)]
    except queue.Empty:
        pytest.fail("the process did not print its URLs in time")


@pytest.fixture
def client_key(maskinporten: FakeMaskinporten, tmp_path: Path) -> SigningKey:
    """A client's key, its public half written to client.pem."""
    key = maskinporten.new_key()
    (tmp_path / "client.pem").write_bytes(
        key.private_key.public_key().public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )
    )

    return key


@pytest.fixture
def issuer_process(
    tmp_path: Path, client_key: SigningKey
) -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    """`serve-issuer` in its own process, with its printed URLs; always stopped."""
    process = subprocess.Popen(
        [
            *COMMAND,
            "serve-issuer",
            "--key-file",
            str(tmp_path / "issuer.pem"),
            "--client",
            f"demo-client:889640782:demo:read demo:write:{tmp_path / 'client.pem'}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        urls = {}
        for line in read_lines(process, 4):
            name, _, value = line.partition(":")
            urls[name] = value.strip()
        yield process, urls
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_inspect_reads_stdin(maskinporten: FakeMaskinporten, tmp_path: Path) -> None:
    """The console script inspects a piped token offline and exits 0."""
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(maskinporten.jwks()))
    token = maskinporten.mint()
    result = run("inspect", "--env", "test", "--jwks", str(jwks), stdin=token)

    assert result.returncode == 0, result.stderr
    assert "Verdict: VALID" in result.stdout
    assert token not in result.stdout + result.stderr


def test_inspect_refuses_a_forged_token_from_a_live_issuer(
    maskinporten_server: IssuerServer,
) -> None:
    """A token signed by an unpublished key under a published kid exits 1."""
    fake = maskinporten_server.fake
    token = fake.mint(key=fake.new_key(kid=fake.current_key.kid))
    result = run("inspect", token, "--issuer", maskinporten_server.url)

    assert result.returncode == 1
    assert "[FAIL] signature" in result.stdout


def test_serve_issuer_prints_its_urls(
    issuer_process: tuple[subprocess.Popen[str], dict[str, str]],
) -> None:
    """The first lines name the issuer, metadata, key set and token URLs."""
    _, urls = issuer_process

    assert urls["issuer"].startswith("http://127.0.0.1:")
    assert httpx.get(urls["metadata"], timeout=5).json()["issuer"] == urls["issuer"]
    assert httpx.get(urls["jwks"], timeout=5).json()["keys"]
    assert urls["token"] == urls["issuer"] + "token"


def test_jwt_bearer_round_trip(
    issuer_process: tuple[subprocess.Popen[str], dict[str, str]],
    client_key: SigningKey,
) -> None:
    """A client's grant gets a token that the guard accepts for its consumer."""
    _, urls = issuer_process
    now = int(time.time())
    grant = jwt.encode(
        {
            "aud": urls["issuer"],
            "iss": "demo-client",
            "scope": "demo:write",
            "iat": now,
            "exp": now + 60,
            "jti": str(uuid.uuid4()),
        },
        client_key.private_key,
        algorithm="RS256",
    )
    response = httpx.post(
        urls["token"], data={"grant_type": JWT_BEARER, "assertion": grant}, timeout=5
    )
    assert response.status_code == 200, response.text

    verifier = SyncVerifier(Settings.custom(urls["issuer"]))
    try:
        identity = verifier.verify(response.json()["access_token"])
    finally:
        verifier.close()
    assert identity.consumer_orgno == "889640782"
    assert identity.scopes == {"demo:write"}


def test_mint_shares_the_served_key(
    issuer_process: tuple[subprocess.Popen[str], dict[str, str]], tmp_path: Path
) -> None:
    """mint with serve-issuer's key file makes tokens the served keys verify."""
    _, urls = issuer_process
    minted = run(
        "mint", "--scope", "demo:read", "--issuer", urls["issuer"],
        "--key-file", str(tmp_path / "issuer.pem"),
    )  # fmt: skip
    assert minted.returncode == 0, minted.stderr

    result = run("inspect", minted.stdout.strip(), "--issuer", urls["issuer"])
    assert result.returncode == 0, result.stdout


def test_serve_issuer_stops_on_sigterm(
    issuer_process: tuple[subprocess.Popen[str], dict[str, str]],
) -> None:
    """SIGTERM stops the issuer cleanly with exit code 0."""
    process, _ = issuer_process
    process.terminate()

    assert process.wait(timeout=10) == 0
