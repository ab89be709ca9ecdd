"""Strict JSON: orjson answers only where the standard library would agree."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maskinporten_guard._strict_json import (
    StrictJSONError,
    _parse_with_stdlib,
    parse_object,
)

DOCUMENTS = [
    pytest.param(b'{"a":1}', id="compact"),
    pytest.param(b' {"a": 1} ', id="white-space"),
    pytest.param(b'{"iss":"https:\\/\\/x.no\\/"}', id="escaped-slashes"),
    pytest.param(b'{"a":"\\u00e9"}', id="unicode-escape"),
    pytest.param('{"a":"é"}'.encode(), id="raw-utf8"),
    pytest.param(b'{"a":"\\ud800"}', id="lone-surrogate-escape"),
    pytest.param(b'{"a":"\\n"}', id="newline-escape"),
    pytest.param(b'{"a":1,"a":2}', id="duplicate"),
    pytest.param(b'{"a":1,"a":1}', id="duplicate-same-value"),
    pytest.param(b'{"a":{"b":1,"b":2}}', id="nested-duplicate"),
    pytest.param(b'{"a":[{"b":1},{"c":1,"c":1}]}', id="duplicate-in-list"),
    pytest.param(b'{"a":NaN}', id="nan"),
    pytest.param(b'{"a":Infinity}', id="infinity"),
    pytest.param(b'{"a":1e400}', id="float-overflow"),
    pytest.param(b'{"a":-0}', id="minus-zero"),
    pytest.param(b'{"a":1.5e3}', id="exponent"),
    pytest.param(b'{"a":' + b"9" * 30 + b"}", id="int-beyond-64-bits"),
    pytest.param(b'{"a":' + b"[" * 300 + b"]" * 300 + b"}", id="nested-300"),
    pytest.param(b'{"a":' + b"[" * 3000 + b"]" * 3000 + b"}", id="nested-3000"),
    pytest.param(b'{"a":"\x01"}', id="raw-control-character"),
    pytest.param(b'{"a":"\xff"}', id="not-utf8"),
    pytest.param(b'{"a":"\xed\xa0\x80"}', id="utf8-surrogate"),
    pytest.param(b"\xef\xbb\xbf{}", id="bom"),
    pytest.param(b'{"a":1}x', id="trailing-data"),
    pytest.param(b'{"a":1}{}', id="two-objects"),
    pytest.param(b"[1]", id="array"),
    pytest.param(b"", id="empty"),
]


def _verdict(parse: Any, data: bytes) -> tuple[str, Any]:
    try:
        return "value", parse(data)
    except StrictJSONError as exc:
        return "error", exc.problem


@pytest.mark.parametrize("data", DOCUMENTS)
def test_agrees_with_the_standard_library(data: bytes) -> None:
    """Every document gets the standard library's verdict, value or problem."""
    assert _verdict(parse_object, data) == _verdict(_parse_with_stdlib, data)


def test_refuses_duplicates_orjson_would_accept() -> None:
    """A duplicate member is refused although orjson alone keeps the last one."""
    with pytest.raises(StrictJSONError, match="duplicate"):
        parse_object(b'{"consumer":{"ID":"0192:1"},"consumer":{"ID":"0192:2"}}')


keys = st.sampled_from(["a", "b", "c", "é", "\\", '"', "/"])
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6)
)


def _member_lists(children: Any) -> Any:
    return st.lists(st.tuples(keys, children), max_size=4)


values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3)
        | _member_lists(children).map(lambda pairs: ("object", pairs))
    ),
    max_leaves=12,
)


def _render(value: Any, compact: bool, ascii_only: bool) -> str:
    """Write JSON by hand, so objects may repeat a member name."""
    comma, colon = (",", ":") if compact else (", ", ": ")
    if isinstance(value, tuple):
        return (
            "{"
            + comma.join(
                json.dumps(k, ensure_ascii=ascii_only)
                + colon
                + _render(v, compact, ascii_only)
                for k, v in value[1]
            )
            + "}"
        )
    if isinstance(value, list):
        return "[" + comma.join(_render(v, compact, ascii_only) for v in value) + "]"

    return json.dumps(value, ensure_ascii=ascii_only)


@settings(max_examples=400, deadline=None)
@given(
    members=_member_lists(values),
    compact=st.booleans(),
    ascii_only=st.booleans(),
)
def test_any_document_gets_the_standard_librarys_verdict(
    members: list[tuple[str, Any]], compact: bool, ascii_only: bool
) -> None:
    """Generated objects, duplicates and escapes included, parse as json decides."""
    data = _render(("object", members), compact, ascii_only).encode()

    assert _verdict(parse_object, data) == _verdict(_parse_with_stdlib, data)


# The system-user example of MASKINPORTEN.md, compact, as Maskinporten writes it.
MASKINPORTEN_PAYLOAD = (
    b'{"authorization_details":[{"type":"urn:altinn:systemuser",'
    b'"systemuser_org":{"authority":"iso6523-actorid-upis","ID":"0192:313367002"},'
    b'"systemuser_id":["33a0911a-5459-456f-bc57-3d37ef9a016c"],'
    b'"system_id":"974761076_skatt_demo_system"}],'
    b'"scope":"skatteetaten:innrapporteringboligselskap",'
    b'"iss":"https://test.maskinporten.no/","client_amr":"virksomhetssertifikat",'
    b'"token_type":"Bearer","exp":1740737667,"iat":1740737547,'
    b'"client_id":"e6c868ef-d9d6-4847-ba25-409bbd040540",'
    b'"jti":"6vc-gdzU3lC7XkBlR9WLxsyB8QKBwBk_FhwmdsL_6BE",'
    b'"consumer":{"authority":"iso6523-actorid-upis","ID":"0192:974761076"}}'
)


def test_maskinporten_payload_needs_no_stdlib(monkeypatch: pytest.MonkeyPatch) -> None:
    """A payload as Maskinporten writes it is answered by orjson alone."""

    def refuse(data: bytes) -> dict[str, Any]:
        raise AssertionError("the stdlib parser was asked")

    monkeypatch.setattr("maskinporten_guard._strict_json._parse_with_stdlib", refuse)

    assert parse_object(MASKINPORTEN_PAYLOAD)["consumer"]["ID"] == "0192:974761076"
