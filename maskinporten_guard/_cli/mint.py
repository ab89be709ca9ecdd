"""
`maskinporten-guard mint`: print a token from a development issuer.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..orgno import is_valid_orgno
from ..testing import FakeMaskinporten
from .app import UsageProblem, logger
from .keyfile import load_or_create_signing_key

__all__ = ["mint_command"]


def _orgno(
    context: click.Context, parameter: click.Parameter, value: str | None
) -> str | None:
    if value is not None and not is_valid_orgno(value):
        raise click.BadParameter(
            f"{value!r} is not a nine-digit organisation number with a valid "
            "check digit (991825827 is one)"
        )

    return value


@click.command(name="mint")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    help="A scope, or several separated by spaces; repeatable.",
)
@click.option(
    "--consumer",
    default="991825827",
    show_default=True,
    callback=_orgno,
    help="The consumer orgno.",
)
@click.option("--supplier", callback=_orgno, help="A supplier orgno (delegation).")
@click.option(
    "--system-user", callback=_orgno, help="The customer orgno of a system user."
)
@click.option("--audience", multiple=True, help="The aud claim; repeatable.")
@click.option("--pid", help="An 11-digit national id, for pid-restricted tokens.")
@click.option(
    "--lifetime",
    type=click.IntRange(1, 86400),
    default=120,
    show_default=True,
    help="Seconds from iat to exp.",
)
@click.option(
    "--issuer",
    default="https://test.maskinporten.no/",
    show_default=True,
    help="The iss claim; use serve-issuer's URL to have tokens it vouches for.",
)
@click.option(
    "--key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Sign with the PEM private key here (made if absent), as serve-issuer.",
)
@click.option(
    "--jwks-out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the public key set here, for `inspect --jwks`.",
)
def mint_command(
    scopes: tuple[str, ...],
    consumer: str,
    supplier: str | None,
    system_user: str | None,
    audience: tuple[str, ...],
    pid: str | None,
    lifetime: int,
    issuer: str,
    key_file: Path | None,
    jwks_out: Path | None,
) -> None:
    """
    Print a token shaped like Maskinporten's, for development and tests.

    Without --key-file the token is signed with a fresh key that nothing
    publishes; with it, the key (and its RFC 7638 thumbprint as kid) is the
    one `serve-issuer --key-file` publishes.
    """
    scope = " ".join(part for text in scopes for part in text.split())
    if not scope:
        raise UsageProblem("--scope is empty")
    key = load_or_create_signing_key(key_file) if key_file is not None else None
    fake = FakeMaskinporten(issuer, key=key)
    token = fake.mint(
        scope,
        consumer,
        supplier=supplier,
        system_user=system_user,
        audience=_audience(audience),
        pid=pid,
        lifetime=lifetime,
    )
    if jwks_out is not None:
        jwks_out.write_text(json.dumps(fake.jwks(), indent=2) + "\n")
    logger.info("minted a token for consumer %s, scope %s", consumer, scope)
    click.echo(token)


def _audience(values: tuple[str, ...]) -> str | list[str] | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]

    return list(values)
