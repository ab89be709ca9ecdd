"""
Strict JSON for untrusted documents: tokens and key sets.

UTF-8 only, no NaN or Infinity, no member name twice in one object (RFC 7515
section 5.2 and RFC 8259 section 4 leave duplicates to the parser; refusing
them keeps two parsers from reading one document two ways), and nesting
bounded by the interpreter's recursion limit.
"""

from __future__ import annotations

import json
from typing import Any

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


def parse_object(data: bytes) -> dict[str, Any]:
    """
    Decode one strict JSON object.

    Raises:
        StrictJSONError: the document breaks one of the rules above.
    """
    try:
        value = _decoder.decode(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise StrictJSONError("is not UTF-8") from None
    except _DuplicateMember:
        raise StrictJSONError("has duplicate members") from None
    except (ValueError, RecursionError):
        raise StrictJSONError("is not valid JSON") from None
    if not isinstance(value, dict):
        raise StrictJSONError("is not a JSON object")

    return value
