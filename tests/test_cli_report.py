from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from maskinporten_guard._cli import cli
from maskinporten_guard.ledger import GrantLedger
from maskinporten_guard.stores import open_store

FIXTURES = Path(__file__).parent / "fixtures"
DAY = 1_760_000_000.0  # 2025-10-09 UTC


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    """A SQLite ledger holding two scopes used by three consumers."""
    url = f"sqlite:///{tmp_path / 'grants.db'}"
    ledger = GrantLedger(open_store(url))
    ledger.record_allowed("889640782", None, ["difi:api3"], at=DAY)
    ledger.record_allowed("889640782", None, ["difi:api3"], at=DAY + 60)
    ledger.record_allowed("910753614", "991825827", ["difi:api3"], at=DAY)
    ledger.record_allowed("889640782", None, ["difi:api4"], at=DAY)
    ledger.record_refused("974761076", None, "insufficient_scope", "difi:api4", DAY)
    ledger.close()
    return url


def run(*args: str) -> Result:
    return CliRunner().invoke(
        cli, ["report", *args], env={"MASKINPORTEN_GRANTS_STORE": None}
    )


def test_table_lists_scopes_and_price(store_url: str) -> None:
    """The table shows each scope and the yearly price of the accesses seen."""
    result = run("--store", store_url)

    assert result.exit_code == 0, result.output
    assert "difi:api3" in result.output
    assert "difi:api4" in result.output
    # Three accesses (scope, consumer): 50 000 + 3 x 5 000.
    assert "yearly price of the accesses seen: 65 000 NOK" in result.output


def test_json_counts_requests(store_url: str) -> None:
    """JSON output carries the request counts per scope."""
    result = run("--store", store_url, "--format", "json")
    report = json.loads(result.output)

    assert result.exit_code == 0
    text = json.dumps(report)
    assert "difi:api3" in text
    assert "insufficient_scope" in text


def test_csv_is_parseable(store_url: str) -> None:
    """CSV output parses as CSV with a header row."""
    result = run("--store", store_url, "--format", "csv")
    rows = list(csv.reader(io.StringIO(result.output)))

    assert result.exit_code == 0
    assert len(rows) > 2


def test_reconciliation_with_grant_files(store_url: str) -> None:
    """Grant files add unused grants and accesses used without a grant."""
    result = run(
        "--store",
        store_url,
        "--grants",
        str(FIXTURES / "grants_api3.json"),
    )

    assert result.exit_code == 0, result.output
    assert "unused     difi:api3  974761076" in result.output
    assert "ungranted  difi:api3  910753614" in result.output
    assert "revoking them saves 5 000 NOK a year" in result.output


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(("--store", "mysql://x/y"), id="unknown-store"),
        pytest.param(("--since", "2025-02-01", "--until", "2025-01-01"), id="window"),
        pytest.param(("--since", "yesterday"), id="bad-date"),
    ],
)
def test_usage_errors_exit_two(args: tuple[str, ...], store_url: str) -> None:
    """A bad store URL or window is a usage error (exit 2)."""
    result = run(*args) if args[0] == "--store" else run("--store", store_url, *args)

    assert result.exit_code == 2
