from __future__ import annotations

import pytest

from maskinporten_guard.errors import AuthError, InvalidRequest, MissingToken
from maskinporten_guard.extract import extract_bearer

TOKEN = "aaa.bbb.ccc"


@pytest.mark.parametrize(
    ("headers", "query", "expected"),
    [
        pytest.param(["Bearer aaa.bbb.ccc"], b"", TOKEN, id="canonical"),
        pytest.param(["bearer aaa.bbb.ccc"], b"", TOKEN, id="lowercase-scheme"),
        pytest.param(["BEARER aaa.bbb.ccc"], b"", TOKEN, id="uppercase-scheme"),
        pytest.param(["Bearer   aaa.bbb.ccc"], b"", TOKEN, id="several-spaces"),
        pytest.param([" Bearer aaa.bbb.ccc "], b"", TOKEN, id="outer-whitespace"),
        pytest.param(["Bearer aaa.bbb.ccc"], b"a=1&b=2", TOKEN, id="other-query"),
        pytest.param(
            ["Bearer aaa.bbb.ccc"], b"x_access_token=1", TOKEN, id="lookalike-query"
        ),
    ],
)
def test_extracts_one_bearer_token(
    headers: list[str], query: bytes, expected: str
) -> None:
    """A single bearer credential in the Authorization header is taken."""
    assert extract_bearer(headers, query, max_bytes=8192) == expected


@pytest.mark.parametrize(
    ("headers", "query", "error"),
    [
        pytest.param([], b"", MissingToken, id="no-header"),
        pytest.param(["Basic dXNlcjpwYXNz"], b"", MissingToken, id="basic-scheme"),
        pytest.param(["Bearertoken"], b"", MissingToken, id="no-space"),
        pytest.param(["Token aaa.bbb.ccc"], b"", MissingToken, id="other-scheme"),
        pytest.param([""], b"", MissingToken, id="empty-header"),
        pytest.param(["Bearer"], b"", InvalidRequest, id="scheme-only"),
        pytest.param(["Bearer "], b"", InvalidRequest, id="scheme-and-space"),
        pytest.param(["Bearer a b"], b"", InvalidRequest, id="two-credentials"),
        pytest.param(["Bearer a, Bearer b"], b"", InvalidRequest, id="comma-list"),
        pytest.param(["Bearer a\tb"], b"", InvalidRequest, id="tab-inside"),
        pytest.param(["Bearer a", "Bearer b"], b"", InvalidRequest, id="two-headers"),
        pytest.param(["Bearer a", "Basic b"], b"", InvalidRequest, id="mixed-headers"),
        pytest.param([], b"access_token=x", InvalidRequest, id="query-token"),
        pytest.param(
            ["Bearer a"], b"a=1&access_token=x", InvalidRequest, id="header-and-query"
        ),
        pytest.param(["Bearer " + "a" * 9000], b"", InvalidRequest, id="oversized"),
    ],
)
def test_refuses_ambiguous_requests(
    headers: list[str], query: bytes, error: type[AuthError]
) -> None:
    """Missing credentials answer 401; ambiguous ones answer 400 invalid_request."""
    with pytest.raises(error):
        extract_bearer(headers, query, max_bytes=8192)
