"""
One structured audit event per access decision, through stdlib `logging`.

`AuditLog.emit` writes each `AuditEvent` to the logger
`maskinporten_guard.audit`: allowed requests at INFO, refusals at WARNING by
default. The event's fields travel on the log record as the attribute
`maskinporten` (a plain dict), so any handler can read them; `JsonFormatter`
renders a record as one JSON object per line. The library installs no
handler: attach one, with the formatter, where the application configures
logging.

The token is never part of an event. Every value that came from a token is
escaped before it reaches a message or a JSON line, so a claim holding a
newline or a quote cannot forge a log line.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from cachetools import LRUCache

from .errors import safe_text

__all__ = ["AUDIT_LOGGER", "AuditEvent", "AuditLog", "JsonFormatter", "Outcome"]

AUDIT_LOGGER = "maskinporten_guard.audit"
RECORD_ATTRIBUTE = "maskinporten"

Outcome = Literal["allow", "deny"]


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """
    What was decided about one request, and for whom.

    Attributes:
        time: when the decision was made, in seconds since the epoch.
        outcome: `allow` or `deny`.
        reason: a short stable code (`ok`, `expired`, `insufficient_scope`, ...).
        method: the HTTP method.
        route: the route template (`/invoices/{id}`), never the raw path, which
            may carry personal data.
        status: the HTTP status answered.
        consumer: the consumer's organisation number, when the token was read.
        supplier: the supplier's organisation number, when delegated.
        delegation_source: where the delegation was made.
        client_id: the client that asked for the token.
        jti: the token id.
        scopes: the scopes that authorised the request (empty when refused).
        system_user_org: the organisation number of an Altinn system user.
        system_id: the vendor system of an Altinn system user.
    """

    time: float
    outcome: Outcome
    reason: str
    method: str
    route: str
    status: int
    consumer: str | None = None
    supplier: str | None = None
    delegation_source: str | None = None
    client_id: str | None = None
    jti: str | None = None
    scopes: tuple[str, ...] = ()
    system_user_org: str | None = None
    system_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The event as JSON-ready values; `scopes` becomes a list."""
        values = asdict(self)
        values["scopes"] = list(self.scopes)

        return values


class AuditLog:
    """
    Writes audit events to the `maskinporten_guard.audit` logger.

    With `first_use_only`, an allowed request is logged only when it is the
    first use that UTC day of one of its (scope, consumer, supplier) grants;
    refusals are always logged. The memory of uses seen is bounded by
    `remember`; when it is full the oldest entries are forgotten, so a grant
    may be logged again the same day, never lost. Thread-safe.
    """

    def __init__(
        self,
        *,
        logger: logging.Logger | None = None,
        allow_level: int = logging.INFO,
        deny_level: int = logging.WARNING,
        first_use_only: bool = False,
        remember: int = 100_000,
    ) -> None:
        """
        Configure levels and volume.

        Args:
            logger: where to write; `maskinporten_guard.audit` by default.
            allow_level: the level of allowed requests.
            deny_level: the level of refusals.
            first_use_only: log an allowed request only for the first use of a
                grant per UTC day.
            remember: how many (scope, consumer, supplier, day) uses to remember
                for `first_use_only`.
        """
        self._logger = logger or logging.getLogger(AUDIT_LOGGER)
        self._allow_level = allow_level
        self._deny_level = deny_level
        self._first_use_only = first_use_only
        self._seen: LRUCache[tuple[str, str | None, str | None, int], bool] = LRUCache(
            maxsize=remember
        )
        self._lock = threading.Lock()

    def wants(self, allowed: bool) -> bool:
        """
        Tell whether an event of this outcome would be logged at all.

        Callers check this first so that no event is built for a level that
        is switched off.
        """
        level = self._allow_level if allowed else self._deny_level

        return self._logger.isEnabledFor(level)

    def emit(self, event: AuditEvent) -> bool:
        """
        Log `event` if its level is enabled and the volume rules let it through.

        Args:
            event: the decision to record.

        Returns:
            True when a record was handed to the logger.
        """
        allowed = event.outcome == "allow"
        level = self._allow_level if allowed else self._deny_level
        if not self._logger.isEnabledFor(level):
            return False
        if allowed and self._first_use_only and not self._is_first_use(event):
            return False

        self._logger.log(
            level,
            "%s %s %s -> %s reason=%s consumer=%s supplier=%s scopes=%s",
            event.outcome,
            safe_text(event.method, 16),
            safe_text(event.route, 200),
            event.status,
            safe_text(event.reason, 64),
            safe_text(event.consumer, 64),
            safe_text(event.supplier, 64),
            safe_text(" ".join(event.scopes), 256),
            extra={RECORD_ATTRIBUTE: event.as_dict()},
        )

        return True

    def _is_first_use(self, event: AuditEvent) -> bool:
        day = int(event.time // 86_400)
        keys = [(scope, event.consumer, event.supplier, day) for scope in event.scopes]
        with self._lock:
            fresh = [key for key in keys if key not in self._seen]
            for key in fresh:
                self._seen[key] = True

        return bool(fresh) or not keys


class JsonFormatter(logging.Formatter):
    """
    Renders a log record as one JSON object on one line.

    The object holds `time` (ISO 8601, UTC), `level`, `logger` and `message`,
    and, for audit records, every `AuditEvent` field. Strings are cut to
    `max_length` characters and written ASCII-only, so control characters,
    line breaks and lone surrogates come out as JSON escapes and one record is
    always exactly one line.
    """

    def __init__(self, *, max_length: int = 512) -> None:
        """
        Args:
            max_length: the longest string value kept whole; longer ones are
                cut and end with `...`.
        """
        super().__init__()
        self._max_length = max_length

    def format(self, record: logging.LogRecord) -> str:
        """Render `record` as one JSON line (without the trailing newline)."""
        document: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, RECORD_ATTRIBUTE, None)
        if isinstance(fields, dict):
            document.update(fields)
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)

        return json.dumps(self._shorten(document), ensure_ascii=True)

    def _shorten(self, value: Any) -> Any:
        if isinstance(value, str):
            if len(value) > self._max_length:
                return value[: self._max_length] + "..."
            return value
        if isinstance(value, dict):
            return {str(key): self._shorten(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self._shorten(item) for item in value]
        if value is None or isinstance(value, bool | int | float):
            return value

        return self._shorten(repr(value))
