"""
Who used which scope, what was refused, and what it means for the bill.

`build_report` reads a grant store for a window of UTC days; with the grant
lists from Maskinporten's admin API (`GET /scopes/access?scope=...`, saved as
JSON files) it also reconciles use with grants. `render_table`, `render_json`
and `render_csv` format a report; `run_report` does all of it from a store
URL, for the command line.

The price of the accesses seen counts distinct (scope, consumer) pairs, the
way Digdir counts consumers; what Digdir invoices is the price of the
accesses granted, which only the grant lists tell.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from .errors import ConfigurationError
from .pricing import yearly_price
from .stores import GrantStore, open_store

__all__ = [
    "Grant",
    "Reconciliation",
    "RefusalCount",
    "Report",
    "ScopeUsage",
    "build_report",
    "load_grants",
    "reconcile",
    "render_csv",
    "render_json",
    "render_table",
    "run_report",
]

Access = tuple[str, str]
"""A (scope, consumer orgno) pair: one counted consumer on the bill."""


@dataclass(frozen=True, slots=True)
class ScopeUsage:
    """
    How one scope was used in the window.

    Attributes:
        scope: the scope.
        consumers: distinct consumers that used it.
        suppliers: distinct suppliers that used it for a consumer.
        requests: allowed requests.
        first_use: the earliest request, UTC.
        last_use: the latest request, UTC.
    """

    scope: str
    consumers: int
    suppliers: int
    requests: int
    first_use: datetime
    last_use: datetime


@dataclass(frozen=True, slots=True)
class RefusalCount:
    """Refusals of verified consumers for one reason."""

    reason: str
    refusals: int


@dataclass(frozen=True, slots=True)
class Grant:
    """
    One entry of the admin API's grant list.

    Attributes:
        scope: the granted scope.
        consumer: the consumer's organisation number (`consumer_orgno`).
        state: `APPROVED`, or another state that does not count.
        owner: the provider's organisation number (`owner_orgno`).
    """

    scope: str
    consumer: str
    state: str
    owner: str | None = None


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """
    Use in the window set against what is granted.

    Attributes:
        granted: approved (scope, consumer) accesses.
        granted_price: the yearly price of `granted`: what Digdir invoices.
        unused: granted accesses with no request in the window.
        saving: what revoking `unused` would take off the yearly price.
        ungranted: accesses used without an approved grant (delegation, a
            scope open to all, or a misconfiguration).
    """

    granted: int
    granted_price: int
    unused: tuple[Access, ...]
    saving: int
    ungranted: tuple[Access, ...]


@dataclass(frozen=True, slots=True)
class Report:
    """
    A grant ledger's summary for a window of UTC days.

    Attributes:
        since: the first day included, or None for the beginning.
        until: the last day included, or None for the end.
        scopes: usage per scope, sorted by scope.
        refusals: refusals per reason, most frequent first.
        requests: allowed requests in total.
        refused: refusals in total.
        consumers: distinct consumer organisations.
        accesses: distinct (scope, consumer) pairs used.
        price: the yearly price of `accesses`.
        reconciliation: use against grants, when grants were given.
    """

    since: date | None
    until: date | None
    scopes: tuple[ScopeUsage, ...]
    refusals: tuple[RefusalCount, ...]
    requests: int
    refused: int
    consumers: int
    accesses: int
    price: int
    reconciliation: Reconciliation | None = None


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def reconcile(used: Iterable[Access], grants: Iterable[Grant]) -> Reconciliation:
    """
    Set the accesses used against the approved grants.

    Args:
        used: the (scope, consumer) pairs seen in the window.
        grants: every grant entry; only `APPROVED` ones count.
    """
    seen = set(used)
    granted = {(g.scope, g.consumer) for g in grants if g.state == "APPROVED"}
    unused = granted - seen
    price = yearly_price(len(granted))

    return Reconciliation(
        granted=len(granted),
        granted_price=price,
        unused=tuple(sorted(unused)),
        saving=price - yearly_price(len(granted) - len(unused)),
        ungranted=tuple(sorted(seen - granted)),
    )


def build_report(
    store: GrantStore,
    since: date | None = None,
    until: date | None = None,
    grants: Iterable[Grant] | None = None,
) -> Report:
    """
    Summarise a grant store for the days from `since` to `until`, both included.

    Args:
        store: the store to read.
        since: the first UTC day, or None for the beginning.
        until: the last UTC day, or None for the end.
        grants: the grant lists to reconcile with, or None to skip that.

    Raises:
        StoreError: the store could not be read.
    """
    consumers: dict[str, set[str]] = defaultdict(set)
    suppliers: dict[str, set[str]] = defaultdict(set)
    requests: dict[str, int] = defaultdict(int)
    first: dict[str, float] = {}
    last: dict[str, float] = {}
    for row in store.read_usage(since, until):
        scope = row.key.scope
        consumers[scope].add(row.key.consumer)
        if row.key.supplier is not None:
            suppliers[scope].add(row.key.supplier)
        requests[scope] += row.usage.requests
        first[scope] = min(first.get(scope, row.usage.first_seen), row.usage.first_seen)
        last[scope] = max(last.get(scope, row.usage.last_seen), row.usage.last_seen)

    refusals: dict[str, int] = defaultdict(int)
    for refusal in store.read_refusals(since, until):
        refusals[refusal.key.reason] += refusal.refusals

    used = {(scope, consumer) for scope, orgs in consumers.items() for consumer in orgs}
    scopes = tuple(
        ScopeUsage(
            scope,
            len(consumers[scope]),
            len(suppliers[scope]),
            requests[scope],
            _utc(first[scope]),
            _utc(last[scope]),
        )
        for scope in sorted(consumers)
    )

    return Report(
        since=since,
        until=until,
        scopes=scopes,
        refusals=tuple(
            RefusalCount(reason, count)
            for reason, count in sorted(refusals.items(), key=lambda i: (-i[1], i[0]))
        ),
        requests=sum(requests.values()),
        refused=sum(refusals.values()),
        consumers=len({consumer for _, consumer in used}),
        accesses=len(used),
        price=yearly_price(len(used)),
        reconciliation=None if grants is None else reconcile(used, grants),
    )


def load_grants(paths: Iterable[str | Path]) -> list[Grant]:
    """
    Read grant lists saved from `GET /scopes/access?scope=...`.

    Each file holds a JSON list of entries with `scope`, `state`,
    `consumer_orgno` and `owner_orgno` (other fields are ignored); one file
    per scope or one for all.

    Args:
        paths: the files to read.

    Raises:
        ConfigurationError: a file is not such a list.
    """
    grants: list[Grant] = []
    for path in paths:
        try:
            entries = json.loads(Path(path).read_text(encoding="utf-8"))
            if not isinstance(entries, list):
                raise TypeError("the top level is not a list")
            grants.extend(
                Grant(
                    scope=str(entry["scope"]),
                    consumer=str(entry["consumer_orgno"]),
                    state=str(entry.get("state", "")),
                    owner=entry.get("owner_orgno"),
                )
                for entry in entries
            )
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise ConfigurationError(
                f"grant file {str(path)!r} is not a grant list as "
                f"GET /scopes/access returns it ({type(exc).__name__}: {exc})"
            ) from exc

    return grants


def _report_document(report: Report) -> dict[str, Any]:
    document = asdict(report)
    document["since"] = report.since.isoformat() if report.since else None
    document["until"] = report.until.isoformat() if report.until else None
    for scope in document["scopes"]:
        scope["first_use"] = scope["first_use"].isoformat()
        scope["last_use"] = scope["last_use"].isoformat()

    return document


def render_json(report: Report) -> str:
    """The report as one JSON document (ASCII, so any terminal shows it)."""
    return json.dumps(_report_document(report), indent=2, ensure_ascii=True)


def _cell(value: object) -> str:
    # A leading =, +, - or @ makes spreadsheets run the cell as a formula.
    text = "" if value is None else str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text

    return text


def render_csv(report: Report) -> str:
    """
    The report as CSV: one row per scope, refusal reason and total.

    The `section` column says which: `scope`, `refusal`, `total`, `unused`
    or `ungranted`.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    header = "section name consumer consumers suppliers count first_use last_use"
    writer.writerow(header.split())
    for s in report.scopes:
        first, last = s.first_use.isoformat(), s.last_use.isoformat()
        writer.writerow(
            [
                "scope",
                _cell(s.scope),
                "",
                s.consumers,
                s.suppliers,
                s.requests,
                first,
                last,
            ]
        )
    for r in report.refusals:
        writer.writerow(["refusal", _cell(r.reason), "", "", "", r.refusals, "", ""])
    totals = [
        ("requests", report.requests),
        ("refused", report.refused),
        ("accesses", report.accesses),
        ("price_of_accesses_seen", report.price),
    ]
    rec = report.reconciliation
    if rec is not None:
        totals += [
            ("granted", rec.granted),
            ("granted_price", rec.granted_price),
            ("saving", rec.saving),
        ]
        for section, accesses in (("unused", rec.unused), ("ungranted", rec.ungranted)):
            for scope, consumer in accesses:
                writer.writerow(
                    [section, _cell(scope), _cell(consumer), "", "", "", "", ""]
                )
    for name, value in totals:
        writer.writerow(["total", name, "", "", "", value, "", ""])

    return out.getvalue()


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    cells = [[str(c) for c in header], *([str(c) for c in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    return [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells
    ]


def _nok(amount: int) -> str:
    return f"{amount:,}".replace(",", " ") + " NOK"


def render_table(report: Report) -> str:
    """The report as aligned text tables for a terminal."""
    window = f"{report.since or 'beginning'} .. {report.until or 'now'}"
    lines = [f"Grant ledger report, UTC days {window}", ""]
    lines += _table(
        ["scope", "consumers", "suppliers", "requests", "first use", "last use"],
        [
            [
                s.scope.encode("ascii", "backslashreplace").decode(),
                s.consumers,
                s.suppliers,
                s.requests,
                s.first_use.strftime("%Y-%m-%d %H:%M"),
                s.last_use.strftime("%Y-%m-%d %H:%M"),
            ]
            for s in report.scopes
        ],
    )
    if report.refusals:
        lines += [
            "",
            *_table(
                ["refused for", "count"],
                [
                    [r.reason.encode("ascii", "backslashreplace").decode(), r.refusals]
                    for r in report.refusals
                ],
            ),
        ]
    lines += [
        "",
        f"requests {report.requests}, refused {report.refused}, "
        f"consumers {report.consumers}, accesses (scope, consumer) {report.accesses}",
        f"yearly price of the accesses seen: {_nok(report.price)}",
    ]
    rec = report.reconciliation
    if rec is not None:
        lines += [
            f"yearly price of the accesses granted (invoiced): "
            f"{_nok(rec.granted_price)} for {rec.granted}",
            f"granted but unused: {len(rec.unused)}; revoking them saves "
            f"{_nok(rec.saving)} a year",
            *(f"  unused     {scope}  {consumer}" for scope, consumer in rec.unused),
            f"used without an approved grant: {len(rec.ungranted)}",
            *(f"  ungranted  {s}  {c}" for s, c in rec.ungranted),
        ]

    return "\n".join(lines) + "\n"


_RENDERERS = {"table": render_table, "json": render_json, "csv": render_csv}


def run_report(
    store_url: str,
    since: date | None = None,
    until: date | None = None,
    fmt: str = "table",
    grants_paths: Iterable[str | Path] = (),
) -> str:
    """
    Open a store by URL, build its report and render it: the CLI's entry point.

    Args:
        store_url: the store, as `open_store` takes it.
        since: the first UTC day, or None.
        until: the last UTC day, or None.
        fmt: `table`, `json` or `csv`.
        grants_paths: grant list files; none skips the reconciliation.

    Raises:
        ConfigurationError: the format, URL or a grant file is wrong.
        StoreError: the store could not be read.
    """
    render = _RENDERERS.get(fmt)
    if render is None:
        raise ConfigurationError(
            f"report format {fmt!r} is unknown; use table, json or csv"
        )
    paths = list(grants_paths)
    grants = load_grants(paths) if paths else None
    store = open_store(store_url)
    try:
        report = build_report(store, since, until, grants)
    finally:
        store.close()

    return render(report)
