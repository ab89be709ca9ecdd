from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path

import pytest

from maskinporten_guard.errors import ConfigurationError
from maskinporten_guard.ledger import GrantLedger
from maskinporten_guard.report import (
    Grant,
    build_report,
    load_grants,
    reconcile,
    render_csv,
    render_json,
    render_table,
    run_report,
)
from maskinporten_guard.stores import GrantStore, open_store

FIXTURES = Path(__file__).parent / "fixtures"
GRANT_FILES = [FIXTURES / "grants_api3.json", FIXTURES / "grants_api4.json"]
DAY1 = 1_760_000_000.0  # 2025-10-09 UTC
DAY2 = DAY1 + 86_400


def _fill(store: GrantStore) -> GrantStore:
    ledger = GrantLedger(store)
    ledger.record_allowed("889640782", None, ["difi:api3"], at=DAY1)
    ledger.record_allowed("889640782", "991825827", ["difi:api3"], at=DAY2)
    ledger.record_allowed("910753614", None, ["difi:api3", "difi:open"], at=DAY2)
    ledger.record_refused("889640782", None, "insufficient_scope", "x:y", at=DAY1)
    ledger.record_refused("889640782", None, "consumer", at=DAY2)
    ledger.record_refused("910753614", None, "consumer", at=DAY2)
    ledger.flush()

    return store


@pytest.fixture
def store() -> GrantStore:
    """A memory store holding two days of traffic."""
    return _fill(open_store("memory://"))


def test_usage_per_scope(store: GrantStore) -> None:
    """Each scope shows its consumers, suppliers, requests, first and last use."""
    report = build_report(store)
    api3 = report.scopes[0]

    assert [s.scope for s in report.scopes] == ["difi:api3", "difi:open"]
    assert (api3.consumers, api3.suppliers, api3.requests) == (2, 1, 3)
    assert api3.first_use.date() == date(2025, 10, 9)
    assert api3.last_use.date() == date(2025, 10, 10)


def test_totals_and_price_of_accesses_seen(store: GrantStore) -> None:
    """Three (scope, consumer) accesses seen are priced as three consumers."""
    report = build_report(store)

    assert (report.requests, report.refused) == (4, 3)
    assert (report.consumers, report.accesses, report.price) == (2, 3, 65_000)


def test_refusals_by_reason_most_frequent_first(store: GrantStore) -> None:
    """Refusals are summed per reason and sorted by count."""
    report = build_report(store)

    assert [(r.reason, r.refusals) for r in report.refusals] == [
        ("consumer", 2),
        ("insufficient_scope", 1),
    ]


def test_window_selects_days(store: GrantStore) -> None:
    """since and until restrict the report to whole UTC days."""
    report = build_report(store, since=date(2025, 10, 9), until=date(2025, 10, 9))

    assert (report.requests, report.accesses, report.refused) == (1, 1, 1)


def test_grant_files_load_and_only_approved_count() -> None:
    """Grant lists load from files; a denied entry is not a grant."""
    grants = load_grants(GRANT_FILES)
    result = reconcile([], grants)

    assert len(grants) == 4
    assert result.granted == 3


def test_reconciliation(store: GrantStore) -> None:
    """Unused grants, their saving, ungranted use and the invoiced price."""
    report = build_report(store, grants=load_grants(GRANT_FILES))
    rec = report.reconciliation

    assert rec is not None
    assert rec.granted_price == 65_000
    assert rec.unused == (("difi:api3", "974761076"), ("difi:api4", "889640782"))
    assert rec.saving == 10_000
    assert rec.ungranted == (("difi:api3", "910753614"), ("difi:open", "910753614"))


def test_saving_follows_the_tiers() -> None:
    """Revoking 3 of 18 grants saves the 16+ band first: 3 000 NOK."""
    grants = [Grant(f"s:{n}", "889640782", "APPROVED") for n in range(18)]
    used = [(f"s:{n}", "889640782") for n in range(15)]

    assert reconcile(used, grants).saving == 3_000


@pytest.mark.parametrize(
    "content",
    [
        pytest.param('{"scope": "a"}', id="not-a-list"),
        pytest.param('[{"scope": "a"}]', id="no-consumer"),
        pytest.param("[", id="not-json"),
    ],
)
def test_bad_grant_file_is_a_configuration_error(tmp_path: Path, content: str) -> None:
    """A file that is not a grant list is refused with its name."""
    path = tmp_path / "grants.json"
    path.write_text(content)

    with pytest.raises(ConfigurationError, match=r"grants\.json"):
        load_grants([path])


def test_json_rendering(store: GrantStore) -> None:
    """The JSON rendering parses back with the same figures."""
    document = json.loads(render_json(build_report(store)))

    assert document["price"] == 65_000
    assert document["scopes"][0]["first_use"].startswith("2025-10-09")


def test_csv_rendering(store: GrantStore) -> None:
    """The CSV rendering has a row per scope, refusal reason and total."""
    rows = list(csv.reader(io.StringIO(render_csv(build_report(store)))))
    sections = [row[0] for row in rows[1:]]

    assert sections.count("scope") == 2
    assert sections.count("refusal") == 2
    assert ["total", "price_of_accesses_seen", "", "", "", "65000", "", ""] in rows


def test_csv_neutralises_formulas() -> None:
    """A scope that looks like a spreadsheet formula is written as text."""
    store = open_store("memory://")
    ledger = GrantLedger(store)
    ledger.record_allowed("1", None, ["=HYPERLINK()"], at=DAY1)
    ledger.flush()

    assert "'=HYPERLINK()" in render_csv(build_report(store))


def test_table_rendering(store: GrantStore) -> None:
    """The text table names scopes and the prices."""
    text = render_table(build_report(store, grants=load_grants(GRANT_FILES)))

    assert "difi:api3" in text
    assert "65 000 NOK" in text
    assert "saves 10 000 NOK" in text


def test_run_report_from_a_sqlite_url(tmp_path: Path) -> None:
    """run_report opens a store by URL and renders the chosen format."""
    url = f"sqlite:///{tmp_path / 'grants.db'}"
    _fill(open_store(url)).close()

    output = run_report(url, None, None, "json", GRANT_FILES)

    assert json.loads(output)["reconciliation"]["granted"] == 3


def test_run_report_refuses_unknown_format() -> None:
    """An unknown output format is a configuration error."""
    with pytest.raises(ConfigurationError, match="table, json or csv"):
        run_report("memory://", None, None, "xml", [])
