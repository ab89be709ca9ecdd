"""
The attack table and header fuzzing through both adapters over real servers.

Every case of `tests/attacks.py` is sent over a socket to Starlette behind
`MaskinportenMiddleware` on uvicorn, and to Flask behind
`MaskinportenWSGIMiddleware` on waitress. Cases without `prepare` share one
server pair wired to one issuer; cases with `prepare` change what their own
issuer publishes (or break it) and get a fresh issuer, guard and server, so
their key cache starts cold.

Neither server refuses any case itself: uvicorn (h11) and waitress both
pass the 20 kB header, the duplicate headers, the tab and the latin-1 byte
on to the adapter, so every answer checked here is the guard's. Waitress
folds the two `Authorization` headers into one joined by ", ", which the
guard refuses with the same 400 as two headers.
"""

from __future__ import annotations

import http.client
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maskinporten_guard import ManualClock, Policy, Settings
from maskinporten_guard.testing import FakeMaskinporten, IssuerServer

from .attacks import ATTACK_RULES, ATTACKS, READ, Attack, Request
from .servers import serve_guarded

NOW = 1_760_000_000.0
ADAPTERS = [pytest.param("asgi", id="asgi"), pytest.param("wsgi", id="wsgi")]

ERROR_FOR_STATUS = {
    400: "invalid_request",
    401: "invalid_token",
    403: "insufficient_scope",
}
_PARAM = r'[a-z_]+="(?:[^"\\]|\\.)*"'
CHALLENGE = re.compile(rf'Bearer realm="maskinporten"(, {_PARAM})*')
"""An RFC 7235 challenge: the scheme, the realm, then quoted-string params."""
ERROR_DESCRIPTION = re.compile(r'error_description="([^"]*)"')
RFC6750_DESCRIPTION = re.compile(r"[\x20-\x21\x23-\x5b\x5d-\x7e]*")
"""RFC 6750 section 3: `error_description` characters; no quote, no backslash."""


def _settings(issuer: IssuerServer) -> Settings:
    return Settings.custom(
        issuer.url, fetch_timeout=1.0, read_timeout=0.5, connect_timeout=0.5
    )


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture(scope="module")
def issuer(clock: ManualClock) -> Iterator[IssuerServer]:
    with IssuerServer(FakeMaskinporten(clock=clock)) as server:
        yield server


@pytest.fixture(scope="module")
def servers(issuer: IssuerServer, clock: ManualClock) -> Iterator[dict[str, str]]:
    """One long-running server per adapter, both wired to the shared issuer."""
    policy = Policy(ATTACK_RULES)
    with (
        serve_guarded("asgi", policy, _settings(issuer), clock) as asgi,
        serve_guarded("wsgi", policy, _settings(issuer), clock) as wsgi,
    ):
        yield {"asgi": asgi, "wsgi": wsgi}


@dataclass(frozen=True)
class Answer:
    """A response as it came off the wire."""

    status: int
    headers: dict[str, str]
    raw_headers: str
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def send(base_url: str, request: Request) -> Answer:
    """
    Send one table request over a fresh connection, as raw as `http.client` is.

    Each `Authorization` value becomes its own header line, byte for byte in
    latin-1 (trailing spaces and tabs included), so that the server's latin-1
    decoding hands the adapter the table's text.
    """
    host, port = urlsplit(base_url).netloc.split(":")
    url = request.path + ("?" + request.query if request.query else "")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.putrequest(request.method, url, skip_accept_encoding=True)
        for value in request.authorization:
            connection.putheader("Authorization", value.encode("latin-1"))
        connection.endheaders()
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    pairs = response.getheaders()

    return Answer(
        response.status,
        {name.lower(): value for name, value in pairs},
        str(pairs),
        body,
    )


def credentials(request: Request) -> list[str]:
    """The token-like parts of the request, which no answer may echo."""
    tokens = [value.partition(" ")[2].strip() for value in request.authorization]
    if "access_token=" in request.query:
        tokens.append(request.query.partition("access_token=")[2])

    return [token for token in tokens if len(token) > 20]


def assert_not_echoed(response: Answer, secrets: list[str]) -> None:
    """No credential appears in the answer's headers or body."""
    text = response.body.decode("latin-1")
    headers = response.raw_headers
    for secret in secrets:
        assert secret not in text
        assert secret not in headers


def assert_rfc6750_shape(response: Answer) -> None:
    """A refusal has a well-formed challenge and problem body, or Retry-After."""
    status = response.status
    assert status in {400, 401, 403, 503}, status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == status
    if status == 503:
        assert "www-authenticate" not in response.headers
        assert int(response.headers["retry-after"]) >= 1
        return
    challenge = response.headers["www-authenticate"]
    assert CHALLENGE.fullmatch(challenge), challenge
    error = re.search(r'error="([^"]*)"', challenge)
    if error is not None:
        assert error.group(1) == ERROR_FOR_STATUS[status]
    else:
        assert status == 401


@pytest.mark.parametrize("adapter", ADAPTERS)
@pytest.mark.parametrize("attack", ATTACKS)
def test_attack_over_server(
    attack: Attack,
    adapter: str,
    servers: dict[str, str],
    issuer: IssuerServer,
    clock: ManualClock,
) -> None:
    """Each attack gets its status and RFC 6750 code from a real server."""
    if attack.prepare is None:
        request = attack.build(issuer.fake)
        response = send(servers[adapter], request)
    else:
        with IssuerServer(FakeMaskinporten(clock=clock)) as own:
            attack.prepare(own.fake, own)
            request = attack.build(own.fake)
            policy = Policy(ATTACK_RULES)
            with serve_guarded(adapter, policy, _settings(own), clock) as url:
                response = send(url, request)

    assert_not_echoed(response, credentials(request))
    assert response.status == attack.status, response.body
    if attack.status == 200:
        assert response.json()["ok"] is True
        return
    assert_rfc6750_shape(response)
    challenge = response.headers.get("www-authenticate", "")
    if attack.status == 503:
        return
    if attack.error is None:
        assert "error=" not in challenge
    else:
        assert f'error="{attack.error}"' in challenge


# Header bytes a client can put on the wire: visible ASCII, space, tab and
# obs-text (RFC 9110 section 5.5); NUL, CR and LF would end the header.
WIRE = "".join(chr(c) for c in [9, *range(0x20, 0x7F), *range(0x80, 0x100)])
wire_text = st.text(alphabet=WIRE, max_size=200)
header_values = wire_text | st.builds(lambda s: "Bearer " + s, wire_text)
FUZZ = settings(max_examples=60, deadline=None)


@st.composite
def mutated(draw: st.DrawFn, token: str) -> str:
    """A valid token with one character replaced, inserted, deleted or moved."""
    kind = draw(st.sampled_from(["flip", "insert", "delete", "swap"]))
    at = draw(st.integers(0, len(token) - 1))
    char = draw(st.sampled_from("ABCabc012-_.=+/ \té,"))
    if kind == "flip":
        return token[:at] + char + token[at + 1 :]
    if kind == "insert":
        return token[:at] + char + token[at:]
    if kind == "delete":
        return token[:at] + token[at + 1 :]
    other = draw(st.integers(0, len(token) - 1))
    chars = list(token)
    chars[at], chars[other] = chars[other], chars[at]

    return "".join(chars)


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_random_headers_over_server(adapter: str, servers: dict[str, str]) -> None:
    """Random Authorization values are refused in RFC 6750 shape, never a 500."""

    @FUZZ
    @given(values=st.lists(header_values, max_size=2))
    def check(values: list[str]) -> None:
        request = Request(authorization=tuple(values))
        response = send(servers[adapter], request)

        assert_rfc6750_shape(response)
        assert response.status in {400, 401}
        assert_not_echoed(response, credentials(request))

    check()


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_mutated_tokens_over_server(
    adapter: str, servers: dict[str, str], issuer: IssuerServer
) -> None:
    """A valid token changed anywhere is never a 200 and never a 500."""
    valid = issuer.fake.mint(READ)

    @FUZZ
    @given(token=mutated(valid))
    def check(token: str) -> None:
        request = Request(authorization=(f"Bearer {token}",))
        response = send(servers[adapter], request)

        if token.strip(" \t") == valid:
            # Servers strip whitespace around a header value: not a mutation.
            assert response.status in {200, 400, 401}
            return
        assert_rfc6750_shape(response)
        assert response.status in {400, 401}
        assert_not_echoed(response, credentials(request))

    check()


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_error_description_keeps_rfc6750_characters(
    adapter: str, servers: dict[str, str], issuer: IssuerServer
) -> None:
    """A kid with a control character is described without quotes or backslashes."""
    token = issuer.fake.mint(READ, header={"kid": "key\x7f1"})

    response = send(servers[adapter], Request(authorization=(f"Bearer {token}",)))

    assert response.status == 401
    description = ERROR_DESCRIPTION.search(response.headers["www-authenticate"])
    assert description is not None
    assert RFC6750_DESCRIPTION.fullmatch(description.group(1)), description.group(1)
