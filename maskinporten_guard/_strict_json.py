"""
Strict JSON for untrusted documents: tokens and key sets.

UTF-8 only, no NaN or Infinity, no member name twice in one object (RFC 7515
section 5.2 and RFC 8259 section 4 leave duplicates to the parser; refusing
them keeps two parsers from reading one document two ways), and nesting
bounded by the interpreter's recursion limit.

The standard library's decoder, with a hook that sees every member, is the
judge. It is slow next to an RSA verify, so a document first goes to orjson,
which cannot see duplicates: its answer is taken only when orjson writes the
value back byte for byte as the document. A serialisation names each member
once, so such a document has no duplicates; and it is what issuers send,
compact and unescaped. Anything else, an error included, is decided by the
standard library alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson

__all__ = ["StrictJSONError", "parse_object"]


class StrictJSONError(ValueError):
    """
    A document is not strict JSON.

    Attributes:
        problem: what is wrong, as a phrase: "is not UTF-8", "has duplicate
            members", "is not valid JSON" or "is not a JSON object".
    """

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


class _DuplicateMember(ValueError):
    pass


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    members = dict(pairs)
    if len(members) != len(pairs):
        raise _DuplicateMember

    return members


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_decoder = json.JSONDecoder(
    object_pairs_hook=_unique_members, parse_constant=_refuse_constant
)
# The decoder's scanner reads one value at an index: what `decode` runs after
# skipping white space. Typeshed does not declare the attribute.
_scan: Callable[[str, int], tuple[Any, int]] = _decoder.scan_once  # type: ignore[attr-defined]


def parse_object(data: bytes) -> dict[str, Any]:
    """
    Decode one strict JSON object.

    Raises:
        StrictJSONError: the document breaks one of the rules above.
    """
    try:
        value = orjson.loads(data)
        # orjson writes no deeper than 254 levels: deeper documents fall through.
        if type(value) is dict and orjson.dumps(value) == data:
            return value
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):
        pass

    return _parse_with_stdlib(data)


def _parse_with_stdlib(data: bytes) -> dict[str, Any]:
    try:
        text = data.decode("utf-8")
        # A document that is one object from its first character to its last,
        # as issuers write them, needs only the scanner; anything else (white
        # space around it, trailing data) goes through the whole decoder.
        value, end = _scan(text, 0) if text[:1] == "{" else (None, -1)
        if end != len(text):
            value = _decoder.decode(text)
    except UnicodeDecodeError:
        raise StrictJSONError("is not UTF-8") from None
    except _DuplicateMember:
        raise StrictJSONError("has duplicate members") from None
    except (ValueError, RecursionError, StopIteration):
        raise StrictJSONError("is not valid JSON") from None
    if not isinstance(value, dict):
        raise StrictJSONError("is not a JSON object")

    return value
