from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives import serialization

from maskinporten_guard._cli import cli
from maskinporten_guard._cli.app import UsageProblem
from maskinporten_guard._cli.serve import parse_client
from maskinporten_guard.testing import OMIT, FakeMaskinporten, IssuerServer

ISSUER = "https://test.maskinporten.no/"
Maker = Callable[[FakeMaskinporten], str]


@pytest.fixture
def jwks_file(maskinporten: FakeMaskinporten, tmp_path: Path) -> Path:
    """The fake's key set written to a file, for offline inspection."""
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(maskinporten.jwks()))

    return path


def run(*args: str, stdin: str | None = None) -> Result:
    """Run the command line in-process, with no MASKINPORTEN_* variables."""
    env = dict.fromkeys(("MASKINPORTEN_ENV", "MASKINPORTEN_ISSUER"))

    return CliRunner().invoke(cli, list(args), input=stdin, env=env)


def inspect(token: str, jwks: Path, *args: str) -> Result:
    """Inspect a token offline against the fake's key set."""
    return run("inspect", token, "--issuer", ISSUER, "--jwks", str(jwks), *args)


def test_help_lists_exit_codes() -> None:
    """The group's help documents every exit code."""
    result = run("--help")

    assert result.exit_code == 0
    for line in ("0  done", "1  the token is not valid", "2  usage", "3  the issuer"):
        assert line in result.output


@pytest.mark.parametrize("command", ["inspect", "mint", "serve-issuer"])
def test_every_command_has_help(command: str) -> None:
    """Each command answers --help with its own usage."""
    result = run(command, "--help")

    assert result.exit_code == 0
    assert f"Usage: cli {command}" in result.output


def test_valid_token_exits_zero(
    maskinporten: FakeMaskinporten, jwks_file: Path
) -> None:
    """A valid token is explained check by check and exits 0."""
    result = inspect(maskinporten.mint("demo:read demo:write"), jwks_file)

    assert result.exit_code == 0, result.output
    assert "NOT verified" in result.output
    assert "[pass] signature" in result.output
    assert "scopes: demo:read, demo:write" in result.output
    assert "Verdict: VALID for consumer 991825827" in result.output


@pytest.mark.parametrize(
    ("make", "options", "phrase"),
    [
        pytest.param(lambda f: "abc.def", (), "three base64url parts", id="malformed"),
        pytest.param(lambda f: "a.b.c.d.e", (), "JWE", id="jwe"),
        pytest.param(
            lambda f: f.mint(header={"alg": "none"}), (), "[FAIL] alg", id="alg-none"
        ),
        pytest.param(
            lambda f: f.mint(header={"alg": "HS256"}), (), "[FAIL] alg", id="alg-hmac"
        ),
        pytest.param(
            lambda f: f.mint(header={"jku": "https://evil/"}),
            (),
            "carries jku",
            id="jku",
        ),
        pytest.param(
            lambda f: f.mint(key=f.new_key()), (), "[FAIL] kid", id="unknown-kid"
        ),
        pytest.param(
            lambda f: f.mint(key=f.new_key(kid=f.current_key.kid)),
            (),
            "signature does not verify",
            id="forged",
        ),
        pytest.param(
            lambda f: f.mint(issued_at=time.time() - 3600),
            (),
            "has expired",
            id="expired",
        ),
        pytest.param(
            lambda f: f.mint(extra={"iss": "https://idporten.no"}),
            (),
            "not issued by the configured issuer",
            id="wrong-issuer",
        ),
        pytest.param(
            lambda f: f.mint(consumer="123456789"),
            (),
            "[FAIL] consumer",
            id="bad-consumer",
        ),
        pytest.param(
            lambda f: f.mint(extra={"scope": OMIT}),
            (),
            "scope claim is missing",
            id="no-scope",
        ),
        pytest.param(
            lambda f: f.mint(extra={"token_type": "DPoP"}),
            (),
            "token_type is not Bearer",
            id="token-type",
        ),
        pytest.param(
            lambda f: f.mint(),
            ("--audience", "https://api.example.no/"),
            "not restricted to this API's audience",
            id="no-audience",
        ),
        pytest.param(
            lambda f: f.mint(), ("--require-pid",), "pid-restricted", id="pid"
        ),
        pytest.param(
            lambda f: f.mint(extra={"jti": OMIT}),
            (),
            "jti claim is missing",
            id="no-jti",
        ),
    ],
)
def test_invalid_tokens_exit_one(
    maskinporten: FakeMaskinporten,
    jwks_file: Path,
    make: Maker,
    options: tuple[str, ...],
    phrase: str,
) -> None:
    """Each kind of invalid token exits 1 and says which rule it broke."""
    result = inspect(make(maskinporten), jwks_file, *options)

    assert result.exit_code == 1, result.output
    assert phrase in result.output
    assert "Verdict: INVALID" in result.output


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda f: f.mint(), id="valid"),
        pytest.param(
            lambda f: f.mint(key=f.new_key(kid=f.current_key.kid)), id="forged"
        ),
        pytest.param(lambda f: f.mint(header={"alg": "none"}), id="alg-none"),
    ],
)
@pytest.mark.parametrize("options", [(), ("--json",)], ids=["text", "json"])
def test_token_is_never_printed(
    maskinporten: FakeMaskinporten,
    jwks_file: Path,
    make: Maker,
    options: tuple[str, ...],
) -> None:
    """No part of the raw token appears in the output, valid or not."""
    token = make(maskinporten)
    result = inspect(token, jwks_file, *options)

    for part in token.split("."):
        assert part not in result.output


def test_json_output(maskinporten: FakeMaskinporten, jwks_file: Path) -> None:
    """--json prints the checks, the verdict and the verified identity."""
    result = inspect(maskinporten.mint("demo:read"), jwks_file, "--json")
    report = json.loads(result.output)

    assert report["verdict"] == {"valid": True}
    assert report["identity"]["consumer"] == "991825827"
    assert report["unverified_header"]["alg"] == "RS256"
    assert {c["name"] for c in report["checks"]} >= {"signature", "iss", "scope"}


@pytest.mark.parametrize("json_output", [False, True], ids=["text", "json"])
def test_pid_is_never_printed(
    maskinporten: FakeMaskinporten, jwks_file: Path, json_output: bool
) -> None:
    """A pid-restricted token's national id stays out of the output."""
    token = maskinporten.mint("demo:read", pid="01017012345")
    args = ("--json",) if json_output else ()

    result = inspect(token, jwks_file, *args)

    assert result.exit_code == 0
    assert "01017012345" not in result.output


def test_token_from_stdin(maskinporten: FakeMaskinporten, jwks_file: Path) -> None:
    """The token is read from stdin, with a Bearer prefix dropped."""
    result = run(
        "inspect",
        "--issuer",
        ISSUER,
        "--jwks",
        str(jwks_file),
        stdin=f"Bearer {maskinporten.mint()}\n",
    )

    assert result.exit_code == 0, result.output


def test_at_verifies_an_old_token(
    maskinporten: FakeMaskinporten, jwks_file: Path
) -> None:
    """--at checks an old token as of its own time."""
    token = maskinporten.mint(issued_at=1_584_693_440)

    assert inspect(token, jwks_file).exit_code == 1
    assert inspect(token, jwks_file, "--at", "2020-03-20T08:38:00Z").exit_code == 0


def test_delegation_and_system_user_are_explained(
    maskinporten: FakeMaskinporten, jwks_file: Path
) -> None:
    """Supplier, delegation source and system user are named in the checks."""
    token = maskinporten.mint(supplier="889640782", system_user="991825827")
    result = inspect(token, jwks_file)

    assert "supplier 889640782 acts for the consumer" in result.output
    assert "https://www.altinn.no/" in result.output
    assert "system user of 991825827" in result.output


def test_against_a_live_issuer(maskinporten_server: IssuerServer) -> None:
    """Keys are fetched from a running issuer through its metadata."""
    token = maskinporten_server.fake.mint()
    result = run("inspect", token, "--issuer", maskinporten_server.url)

    assert result.exit_code == 0, result.output


def test_keys_unavailable_exits_three(maskinporten_server: IssuerServer) -> None:
    """An issuer that is down gives exit code 3, not a verdict on the token."""
    maskinporten_server.fault = "down"
    token = maskinporten_server.fake.mint()
    result = run("inspect", token, "--issuer", maskinporten_server.url)

    assert result.exit_code == 3, result.output


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(("inspect", "x.y.z"), id="no-issuer"),
        pytest.param(("inspect", "x.y.z", "--issuer", "http://example.no/"), id="http"),
        pytest.param(("inspect", "x.y.z", "--env", "test", "--at", "soon"), id="at"),
        pytest.param(("inspect", " ", "--env", "test"), id="empty-token"),
        pytest.param(("mint", "--scope", "a:b", "--consumer", "123456789"), id="orgno"),
        pytest.param(("mint",), id="no-scope"),
    ],
)
def test_usage_errors_exit_two(args: tuple[str, ...]) -> None:
    """Bad options and missing configuration exit 2 with a message."""
    result = run(*args)

    assert result.exit_code == 2, result.output


def test_minted_token_verifies(tmp_path: Path) -> None:
    """mint prints a token that verifies against the key set it writes."""
    jwks = tmp_path / "jwks.json"
    result = run(
        "mint", "--scope", "demo:read", "--scope", "demo:write demo:admin",
        "--consumer", "889640782", "--jwks-out", str(jwks), "--audience", "api",
    )  # fmt: skip
    token = result.output.strip()

    check = inspect(token, jwks, "--audience", "api")
    assert check.exit_code == 0, check.output
    assert "scopes: demo:admin, demo:read, demo:write" in check.output
    assert "orgno 889640782" in check.output


def test_key_file_gives_a_stable_kid(tmp_path: Path) -> None:
    """Two mints with one key file sign under the same thumbprint kid."""
    key_file = tmp_path / "issuer.pem"
    first = run("mint", "--scope", "a:b", "--key-file", str(key_file)).output
    second = run("mint", "--scope", "a:b", "--key-file", str(key_file)).output

    kids = {json.loads(_segment(t.strip(), 0))["kid"] for t in (first, second)}
    assert len(kids) == 1
    assert key_file.stat().st_mode & 0o777 == 0o600


def _segment(token: str, index: int) -> bytes:
    part = token.split(".")[index]

    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def test_parse_client_reads_scopes_with_colons(
    maskinporten: FakeMaskinporten, tmp_path: Path
) -> None:
    """--client splits id and orgno first, the file last, scopes between."""
    pem = tmp_path / "client.pem"
    pem.write_bytes(
        maskinporten.current_key.private_key.public_key().public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )
    )
    spec = parse_client(f"my-client:991825827:demo:read demo:write:{pem}")

    assert spec.client_id == "my-client"
    assert spec.consumer == "991825827"
    assert spec.scopes == ("demo:read", "demo:write")


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("only-an-id", id="no-fields"),
        pytest.param("c:123456789:a:b:/nowhere.pem", id="bad-orgno"),
        pytest.param("c:991825827:a:b:/nowhere.pem", id="no-file"),
    ],
)
def test_parse_client_refusals(text: str) -> None:
    """A malformed --client is a usage error."""
    with pytest.raises(UsageProblem):
        parse_client(text)


def test_missing_click_says_how_to_install() -> None:
    """Without click, main prints the pip command and exits 2."""
    code = (
        "import sys; sys.modules['click'] = None\n"
        "from maskinporten_guard.cli import main; main(['--help'])"
    )
    process = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30
    )

    assert process.returncode == 2
    assert "pip install 'maskinporten-guard[cli]'" in process.stderr


def test_settings_from_environment_variables(
    maskinporten_server: IssuerServer,
) -> None:
    """Without issuer options, MASKINPORTEN_* variables configure inspect."""
    token = maskinporten_server.fake.mint()
    result = CliRunner().invoke(
        cli,
        ["inspect", token],
        env={"MASKINPORTEN_ISSUER": maskinporten_server.url, "MASKINPORTEN_ENV": None},
    )

    assert result.exit_code == 0, result.output
