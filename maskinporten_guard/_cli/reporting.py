"""
`maskinporten-guard report`: who used which scope, and what it costs.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from ..errors import ConfigurationError, StoreError
from ..report import run_report
from ..stores import DEFAULT_STORE_URL, STORE_ENV_VAR
from .app import UsageProblem

__all__ = ["report_command"]


@click.command(
    "report",
    help=f"""Report consumers per scope from the grant ledger, with the price.

Reads the ledger at --store (default: ${STORE_ENV_VAR}, else
{DEFAULT_STORE_URL}) for the days --since to --until (UTC, inclusive).
With --grants files as Maskinporten's admin API returns them
(GET /scopes/access?scope=...), it also shows grants never used, accesses
used without a grant, and the price of what was granted.
""",
)
@click.option(
    "--store",
    "store_url",
    envvar=STORE_ENV_VAR,
    default=DEFAULT_STORE_URL,
    show_default=True,
    help="The ledger: sqlite:///file.db, postgresql://..., memory://",
)
@click.option(
    "--since", type=click.DateTime(["%Y-%m-%d"]), help="First day (YYYY-MM-DD)."
)
@click.option(
    "--until", type=click.DateTime(["%Y-%m-%d"]), help="Last day (YYYY-MM-DD)."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
)
@click.option(
    "--grants",
    "grants_paths",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A grant list file from the admin API (repeatable).",
)
def report_command(
    store_url: str,
    since: datetime | None,
    until: datetime | None,
    fmt: str,
    grants_paths: tuple[Path, ...],
) -> None:
    """Print the report; exit 2 when the store or a grant file is unusable."""
    first = since.date() if since is not None else None
    last = until.date() if until is not None else None
    if first and last and first > last:
        raise UsageProblem("--since is after --until")
    try:
        text = run_report(store_url, first, last, fmt, grants_paths)
    except (ConfigurationError, StoreError) as exc:
        raise UsageProblem(str(exc)) from None
    click.echo(text, nl=not text.endswith("\n"))
