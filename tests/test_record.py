from __future__ import annotations

from pathlib import Path

from maskinporten_guard.record import Recorder


def test_from_env_without_store_keeps_no_ledger() -> None:
    """Without MASKINPORTEN_GRANTS_STORE there is an audit log and no ledger."""
    recorder = Recorder.from_env({})

    assert recorder.audit is not None
    assert recorder.ledger is None


def test_from_env_opens_the_named_store(tmp_path: Path) -> None:
    """MASKINPORTEN_GRANTS_STORE and MASKINPORTEN_LEDGER_FLUSH configure the ledger."""
    url = f"sqlite:///{tmp_path / 'grants.db'}"
    recorder = Recorder.from_env(
        {"MASKINPORTEN_GRANTS_STORE": url, "MASKINPORTEN_LEDGER_FLUSH": "0.5"}
    )
    try:
        assert recorder.ledger is not None
        assert recorder.ledger.flush_interval == 0.5
    finally:
        recorder.close()

    assert (tmp_path / "grants.db").exists()
