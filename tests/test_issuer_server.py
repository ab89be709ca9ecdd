from __future__ import annotations

import gzip

import httpx
import pytest

from maskinporten_guard.testing import FakeMaskinporten, IssuerServer


def test_start_points_the_fake_at_the_server(maskinporten: FakeMaskinporten) -> None:
    """Starting the server makes the fake mint tokens for the server's URL."""
    with IssuerServer(maskinporten) as server:
        assert maskinporten.issuer == server.url
        assert server.url.startswith("http://127.0.0.1:")
        assert server.url.endswith("/")


def test_serves_metadata(maskinporten_server: IssuerServer) -> None:
    """The metadata document names the server as issuer and its JWKS URL."""
    response = httpx.get(maskinporten_server.metadata_uri)

    assert response.status_code == 200
    assert response.json()["issuer"] == maskinporten_server.url
    assert response.json()["jwks_uri"] == maskinporten_server.jwks_uri
    assert maskinporten_server.metadata_fetches == 1


def test_serves_jwks(
    maskinporten: FakeMaskinporten, maskinporten_server: IssuerServer
) -> None:
    """The key set is the fake's, as JSON, and each request is counted."""
    first = httpx.get(maskinporten_server.jwks_uri)
    httpx.get(maskinporten_server.jwks_uri)

    assert first.headers["content-type"] == "application/json"
    assert first.json() == maskinporten.jwks()
    assert maskinporten_server.jwks_fetches == 2


def test_unknown_path_is_404(maskinporten_server: IssuerServer) -> None:
    """Paths other than the two documents answer 404 and are not counted."""
    response = httpx.get(maskinporten_server.url + "token")

    assert response.status_code == 404
    assert maskinporten_server.jwks_fetches == 0


@pytest.mark.parametrize(
    ("fault", "status", "body"),
    [
        pytest.param("down", 503, b'{"error": "temporarily_unavailable"}', id="down"),
        pytest.param("garbage", 200, b"<html>this is not JSON</html>", id="garbage"),
        pytest.param("empty", 200, b'{"keys": []}', id="empty"),
    ],
)
def test_simple_faults(
    maskinporten_server: IssuerServer, fault: str, status: int, body: bytes
) -> None:
    """Each simple fault answers its status and body."""
    maskinporten_server.fault = fault  # type: ignore[assignment]
    response = httpx.get(maskinporten_server.jwks_uri)

    assert (response.status_code, response.content) == (status, body)


def test_refuse_closes_without_answer(maskinporten_server: IssuerServer) -> None:
    """The refuse fault drops the connection before any response."""
    maskinporten_server.fault = "refuse"

    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(maskinporten_server.jwks_uri)


def test_redirect_points_at_a_working_copy(maskinporten_server: IssuerServer) -> None:
    """The redirect fault answers 302 to a URL that serves the real key set."""
    maskinporten_server.fault = "redirect"
    response = httpx.get(maskinporten_server.jwks_uri)
    followed = httpx.get(maskinporten_server.jwks_uri, follow_redirects=True)

    assert response.status_code == 302
    assert followed.json()["keys"]


def test_gzip_is_a_bomb(maskinporten_server: IssuerServer) -> None:
    """The gzip fault sends a small body that expands to megabytes of zeros."""
    maskinporten_server.fault = "gzip"
    headers = {"Accept-Encoding": "identity"}
    with httpx.stream("GET", maskinporten_server.jwks_uri, headers=headers) as r:
        raw = b"".join(r.iter_raw())

    assert r.headers["content-encoding"] == "gzip"
    assert len(raw) < 100_000
    assert len(gzip.decompress(raw)) >= 16 * 1024 * 1024


def test_huge_streams_without_length(maskinporten_server: IssuerServer) -> None:
    """The huge fault streams past any sane cap and announces no length."""
    maskinporten_server.fault = "huge"
    read = 0
    with httpx.stream("GET", maskinporten_server.jwks_uri) as response:
        for chunk in response.iter_raw():
            read += len(chunk)
            if read > 1024 * 1024:
                break

    assert "content-length" not in response.headers
    assert read > 1024 * 1024


def test_slow_answers_after_the_delay(maskinporten_server: IssuerServer) -> None:
    """The slow fault still answers the real key set, late."""
    maskinporten_server.fault = "slow"
    maskinporten_server.delay = 0.01

    assert httpx.get(maskinporten_server.jwks_uri).json()["keys"]


def test_drip_sends_one_byte_at_a_time(maskinporten_server: IssuerServer) -> None:
    """The drip fault sends the body in one-byte writes."""
    maskinporten_server.fault = "drip"
    maskinporten_server.delay = 0.01
    with httpx.stream("GET", maskinporten_server.jwks_uri) as response:
        first = next(response.iter_raw())

    assert first == b"{"


def test_stop_frees_the_port(maskinporten: FakeMaskinporten) -> None:
    """After stop the server no longer answers."""
    server = IssuerServer(maskinporten).start()
    url = server.jwks_uri
    server.stop()

    with pytest.raises(httpx.ConnectError):
        httpx.get(url)
