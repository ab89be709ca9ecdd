"""
The values a grant store keeps, and the interface every store implements.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, NamedTuple, Protocol

__all__ = [
    "SCHEMA_VERSION",
    "Batch",
    "GrantStore",
    "RefusalKey",
    "RefusalRow",
    "Usage",
    "UsageKey",
    "UsageRow",
    "batch_rows",
    "storable",
]

SCHEMA_VERSION = 1
"""The schema this release writes; a store holding a newer one is refused."""

MAX_TEXT = 512
"""The longest text kept whole; longer values are cut and tagged with a hash."""


# The three keys and counts below are named tuples, not dataclasses: a flush
# builds one of each per distinct key (10 000 and more), and tuples cost a
# fraction to build and to hash.
class UsageKey(NamedTuple):
    """
    What one allowed request counts against.

    Attributes:
        scope: the scope that authorised the request.
        consumer: the consumer's organisation number.
        supplier: the supplier's organisation number, or None.
        day: the UTC date of the request.
    """

    scope: str
    consumer: str
    supplier: str | None
    day: date


class Usage(NamedTuple):
    """
    Requests counted against one `UsageKey`, with the first and last seen.

    Attributes:
        requests: how many requests.
        first_seen: the earliest request, seconds since the epoch.
        last_seen: the latest request, seconds since the epoch.
    """

    requests: int
    first_seen: float
    last_seen: float


class RefusalKey(NamedTuple):
    """
    What one refusal of a verified consumer counts against.

    Attributes:
        reason: the refusal's short code (`insufficient_scope`, `consumer`, ...).
        consumer: the consumer's organisation number.
        supplier: the supplier's organisation number, or None.
        scope: the scope the route required, when there was one.
        day: the UTC date of the refusal.
    """

    reason: str
    consumer: str
    supplier: str | None
    scope: str | None
    day: date


@dataclass(frozen=True, slots=True)
class Batch:
    """
    Counts to add to a store in one transaction.

    Attributes:
        id: unique per batch; a store applies a batch id at most once, so a
            batch retried after a lost commit acknowledgement is not counted
            twice.
        usage: requests per usage key.
        refusals: refusals per refusal key.
    """

    id: str
    usage: Mapping[UsageKey, Usage]
    refusals: Mapping[RefusalKey, int]


@dataclass(frozen=True, slots=True)
class UsageRow:
    """One stored usage count, as read back for a report."""

    key: UsageKey
    usage: Usage


@dataclass(frozen=True, slots=True)
class RefusalRow:
    """One stored refusal count, as read back for a report."""

    key: RefusalKey
    refusals: int


class GrantStore(Protocol):
    """
    Where the ledger's counts are kept: a database, or memory for tests.

    Implementations add counts (never overwrite them), so several processes
    writing the same keys sum correctly.
    """

    def ensure_schema(self) -> None:
        """
        Create the tables if missing and check the schema version.

        Raises:
            StoreError: the store is unreachable or holds a newer schema.
        """

    def write(self, batch: Batch) -> bool:
        """
        Add `batch` in one transaction.

        Returns:
            True when written, False when a batch with this id was already
            written (the counts are then left alone).

        Raises:
            StoreError: nothing was written (or it is unknown whether the
                commit landed; retrying the same batch is then safe).
        """
        ...

    def read_usage(
        self, since: date | None = None, until: date | None = None
    ) -> list[UsageRow]:
        """
        Read usage counts for the days from `since` to `until`, both included.

        Raises:
            StoreError: the store could not be read.
        """
        ...

    def read_refusals(
        self, since: date | None = None, until: date | None = None
    ) -> list[RefusalRow]:
        """
        Read refusal counts for the days from `since` to `until`, both included.

        Raises:
            StoreError: the store could not be read.
        """
        ...

    def close(self) -> None:
        """Release connections; the store is unusable afterwards."""


def storable(text: str) -> str:
    """
    Turn any text into text every store accepts, the same way every time.

    NUL characters and lone surrogates, which PostgreSQL or UTF-8 refuse,
    become backslash escapes (a backslash itself is doubled, so distinct inputs
    stay distinct). Text longer than `MAX_TEXT` is cut and ends with a hash of
    the whole value, which keeps distinct long values apart in the indexes.
    Ordinary organisation numbers and scopes come back unchanged.

    Args:
        text: a value that came from a token.
    """
    escaped = text
    if "\\" in escaped or "\x00" in escaped:
        escaped = escaped.replace("\\", "\\\\").replace("\x00", "\\x00")
    if not escaped.isascii():
        escaped = escaped.encode("utf-8", "backslashreplace").decode("utf-8")
    if len(escaped) > MAX_TEXT:
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
        escaped = f"{escaped[: MAX_TEXT - 20]}...#{digest[:16]}"

    return escaped


def batch_rows(
    batch: Batch, day: Callable[[date], Any]
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """
    A batch as parameter rows for the SQL stores: usage rows, refusal rows.

    Usage rows are (scope, consumer, supplier, day, requests, first_seen,
    last_seen); refusal rows (reason, consumer, supplier, scope, day, count).
    Text goes through `storable`, once per distinct value: the same few
    scopes and consumers fill thousands of rows. A missing supplier or scope
    is stored as the empty string, so it can be part of a unique key.

    Args:
        batch: the counts to write.
        day: how the store wants a date (a `date`, or ISO text for SQLite).
    """
    seen: dict[str, str] = {}

    def text(value: str | None) -> str:
        value = value or ""
        known = seen.get(value)
        if known is None:
            known = seen[value] = storable(value)
        return known

    days: dict[date, Any] = {}

    def when(value: date) -> Any:
        known = days.get(value)
        if known is None:
            known = days[value] = day(value)
        return known

    usage = [
        (
            text(key.scope),
            text(key.consumer),
            text(key.supplier),
            when(key.day),
            count.requests,
            count.first_seen,
            count.last_seen,
        )
        for key, count in batch.usage.items()
    ]
    refusals = [
        (
            text(key.reason),
            text(key.consumer),
            text(key.supplier),
            text(key.scope),
            when(key.day),
            count,
        )
        for key, count in batch.refusals.items()
    ]

    return usage, refusals
