from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from maskinporten_guard.audit import AUDIT_LOGGER, AuditEvent, AuditLog, JsonFormatter

HOSTILE = [
    pytest.param("\x00", id="nul"),
    pytest.param("\udc80", id="lone-surrogate"),
    pytest.param('"quoted" \\ back', id="quotes"),
    pytest.param("x'); DROP TABLE grant_usage; --", id="sql"),
    pytest.param('ok\n{"outcome": "allow", "forged": true}', id="newline-forgery"),
    pytest.param("\r\u2028\u2029", id="other-line-breaks"),
    pytest.param("A" * 10_240, id="ten-kilobytes"),
]


def _event(**changes: object) -> AuditEvent:
    values: dict[str, object] = {
        "time": 1_760_000_000.0,
        "outcome": "allow",
        "reason": "ok",
        "method": "GET",
        "route": "/invoices/{id}",
        "status": 200,
        "consumer": "991825827",
        "scopes": ("difi:api3",),
    }
    values.update(changes)

    return AuditEvent(**values)  # type: ignore[arg-type]


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """A JSON handler on the audit logger, removed afterwards."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(AUDIT_LOGGER)
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    yield buffer
    logger.removeHandler(handler)
    logger.setLevel(previous)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_allowed_event_is_one_json_line_with_its_fields(stream: io.StringIO) -> None:
    """An allowed decision becomes one INFO line carrying every event field."""
    AuditLog().emit(_event(supplier="889640782", jti="abc"))

    [line] = _lines(stream)
    assert line["level"] == "INFO"
    assert line["consumer"] == "991825827"
    assert line["supplier"] == "889640782"
    assert line["scopes"] == ["difi:api3"]
    assert line["route"] == "/invoices/{id}"


def test_refusal_is_logged_at_warning(stream: io.StringIO) -> None:
    """A refusal goes out at WARNING by default."""
    AuditLog().emit(_event(outcome="deny", reason="expired", status=401, scopes=()))

    [line] = _lines(stream)
    assert line["level"] == "WARNING"
    assert line["reason"] == "expired"


def test_levels_are_configurable(stream: io.StringIO) -> None:
    """Allowed requests can be logged at DEBUG instead of INFO."""
    AuditLog(allow_level=logging.DEBUG).emit(_event())

    assert _lines(stream)[0]["level"] == "DEBUG"


def test_disabled_level_logs_nothing(stream: io.StringIO) -> None:
    """An event below the logger's level is not emitted."""
    logging.getLogger(AUDIT_LOGGER).setLevel(logging.WARNING)

    assert AuditLog().emit(_event()) is False
    assert stream.getvalue() == ""


def test_first_use_only_logs_a_grant_once_per_day(stream: io.StringIO) -> None:
    """With first_use_only, the second use the same day is not logged."""
    audit = AuditLog(first_use_only=True)

    assert audit.emit(_event()) is True
    assert audit.emit(_event(time=1_760_000_100.0)) is False
    assert audit.emit(_event(time=1_760_000_000.0 + 86_400)) is True
    assert len(_lines(stream)) == 2


def test_first_use_only_distinguishes_suppliers(stream: io.StringIO) -> None:
    """The same scope and consumer through a supplier is a separate grant use."""
    audit = AuditLog(first_use_only=True)
    audit.emit(_event())

    assert audit.emit(_event(supplier="889640782")) is True


def test_first_use_only_still_logs_refusals(stream: io.StringIO) -> None:
    """Refusals are never thinned out."""
    audit = AuditLog(first_use_only=True)
    refusal = _event(outcome="deny", reason="consumer", status=403, scopes=())

    assert audit.emit(refusal) is True
    assert audit.emit(refusal) is True


def test_first_use_memory_is_bounded(stream: io.StringIO) -> None:
    """Past its bound the memory forgets the oldest use, which is logged again."""
    audit = AuditLog(first_use_only=True, remember=2)
    for scope in ("a:1", "a:2", "a:3"):
        audit.emit(_event(scopes=(scope,)))

    assert audit.emit(_event(scopes=("a:1",))) is True


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_claim_stays_on_one_line(stream: io.StringIO, value: str) -> None:
    """A hostile claim value cannot break or forge a JSON log line."""
    AuditLog().emit(_event(consumer=value, client_id=value, jti=value))

    text = stream.getvalue()
    assert text.count("\n") == 1
    assert text.isascii()
    [line] = _lines(stream)
    assert "forged" not in line
    assert len(str(line["client_id"])) <= 515


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_claim_is_escaped_in_the_message(value: str) -> None:
    """The plain text message carries only printable ASCII."""
    handler = _Collect()
    logger = logging.getLogger("test.audit.message")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        AuditLog(logger=logger).emit(_event(consumer=value, route=value))
    finally:
        logger.removeHandler(handler)

    message = handler.records[0].getMessage()
    assert message.isascii()
    assert message.isprintable()


def test_short_value_round_trips_exactly(stream: io.StringIO) -> None:
    """A value under the length cap reads back unchanged from the JSON line."""
    value = 'q"\n\x00\udc80'
    AuditLog().emit(_event(jti=value))

    assert _lines(stream)[0]["jti"] == value


def test_formatter_handles_ordinary_records() -> None:
    """A record without audit fields still renders as one JSON object."""
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "a %s", ("b",), None)

    assert json.loads(JsonFormatter().format(record))["message"] == "a b"
