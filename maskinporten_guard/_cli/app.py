"""
The command group, the exit codes and the options several commands share.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import click

from .. import __version__
from ..errors import ConfigurationError
from ..settings import ENVIRONMENTS, Settings

__all__ = [
    "EXIT_INVALID",
    "EXIT_KEYS_UNAVAILABLE",
    "EXIT_OK",
    "EXIT_USAGE",
    "UsageProblem",
    "build_settings",
    "cli",
    "format_time",
    "parse_time",
    "settings_options",
]

logger = logging.getLogger("maskinporten_guard.cli")

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2
EXIT_KEYS_UNAVAILABLE = 3

F = TypeVar("F", bound=Callable[..., Any])


class UsageProblem(click.ClickException):
    """A usage or configuration error: printed as one line, exit code 2."""

    exit_code = EXIT_USAGE


@click.group(
    context_settings={"help_option_names": ["-h", "--help"]},
    help="""Verify, inspect and mint Maskinporten access tokens, report who
used which scope, and run a demo of the guard.

\b
Exit codes:
  0  done; for inspect, the token is valid; for demo, all went as scripted
  1  the token is not valid; for demo, a call got an unexpected answer
  2  usage or configuration error
  3  the issuer's signing keys could not be had
""",
)
@click.version_option(__version__, prog_name="maskinporten-guard")
def cli() -> None:
    """The `maskinporten-guard` command group."""


def settings_options(command: F) -> F:
    """Add the options that say which issuer to trust and how strictly."""
    options = [
        click.option(
            "--env",
            type=click.Choice(sorted(ENVIRONMENTS)),
            help="A Maskinporten environment; else MASKINPORTEN_* variables.",
        ),
        click.option("--issuer", help="The exact issuer to trust, trailing slash."),
        click.option("--jwks-uri", help="Where the issuer's keys are."),
        click.option(
            "--audience",
            multiple=True,
            help="Require this audience in aud (repeatable).",
        ),
        click.option(
            "--require-pid", is_flag=True, help="Refuse tokens without a pid."
        ),
        click.option(
            "--leeway",
            type=click.FloatRange(0, 300),
            help="Seconds of clock skew allowed (default 30).",
        ),
    ]
    for option in reversed(options):
        command = option(command)

    return command


def build_settings(
    *,
    env: str | None,
    issuer: str | None,
    jwks_uri: str | None,
    audience: tuple[str, ...],
    require_pid: bool,
    leeway: float | None,
) -> Settings:
    """
    Settings from the command's options, else from `MASKINPORTEN_*` variables.

    Raises:
        UsageProblem: the options or variables do not make valid settings.
    """
    options: dict[str, Any] = {"token_cache_size": 0}
    if audience:
        options["audience"] = audience
    if require_pid:
        options["require_pid"] = True
    if leeway is not None:
        options["leeway"] = leeway
    if jwks_uri:
        options["jwks_uri"] = jwks_uri
    try:
        if env and issuer:
            raise ConfigurationError("give --env or --issuer, not both")
        if env:
            return Settings.for_environment(env, **options)
        if issuer:
            return Settings.custom(issuer, **options)
        return Settings.from_env().with_options(**options)
    except ConfigurationError as exc:
        hint = "" if env or issuer else ", or pass --env or --issuer"
        raise UsageProblem(f"{exc}{hint}") from None


def parse_time(value: str) -> float:
    """
    Read a point in time: seconds since the epoch, or ISO 8601.

    A time without a zone is taken as UTC.

    Raises:
        UsageProblem: the text is neither.
    """
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise UsageProblem(
                f"--at {value!r} is neither seconds since the epoch nor ISO 8601"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()
    if not math.isfinite(seconds) or seconds < 0:
        raise UsageProblem(f"--at {value!r} is not a point in time")

    return seconds


def format_time(seconds: float) -> str:
    """A timestamp as UTC ISO 8601, for people."""
    moment = datetime.fromtimestamp(seconds, UTC)

    return moment.isoformat().replace("+00:00", "Z")
