"""
`maskinporten-guard serve-issuer`: a development issuer on 127.0.0.1.

Clients that may use the token endpoint are registered with `--client`
(`CLIENT_ID:ORGNO:SCOPES:PEM_FILE`) or a JSON file (`--clients FILE`):

    {"clients": [{"client_id": "my-client", "consumer": "991825827",
                  "scopes": ["demo:read"], "public_key": "my-client.pem"}]}

`public_key` is a PEM file (public or private key; relative paths are read
from the JSON file's folder); a `jwk` member with the public JWK may be given
instead, and its `kid` then selects the client as Maskinporten does.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import click
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from ..orgno import is_valid_orgno
from ..testing import FakeMaskinporten, IssuerServer
from .app import UsageProblem, logger
from .keyfile import load_or_create_signing_key, load_public_key

__all__ = ["ClientSpec", "parse_client", "serve_issuer_command"]


@dataclass(frozen=True, slots=True)
class ClientSpec:
    """A client to register on the token endpoint."""

    client_id: str
    consumer: str
    scopes: tuple[str, ...]
    public_key: RSAPublicKey | dict[str, Any]


def parse_client(text: str) -> ClientSpec:
    """
    Read `CLIENT_ID:ORGNO:SCOPES:PEM_FILE`.

    Scopes contain colons themselves (`prefix:subscope`), so the client id and
    orgno are read up to the first two colons, the file after the last one, and
    the scopes (separated by spaces or commas) in between. A file path with a
    colon needs `--clients FILE` instead.

    Raises:
        UsageProblem: the text does not have that shape.
    """
    client_id, _, rest = text.partition(":")
    orgno, _, rest = rest.partition(":")
    scope_text, _, pem = rest.rpartition(":")
    scopes = tuple(scope_text.replace(",", " ").split())
    if not client_id or not scopes or not pem:
        raise UsageProblem(
            f"--client {text!r} is not CLIENT_ID:ORGNO:SCOPES:PEM_FILE, e.g. "
            "my-client:991825827:demo:read demo:write:client.pem"
        )

    return ClientSpec(
        client_id, _checked_orgno(orgno), scopes, load_public_key(Path(pem))
    )


def read_clients_file(path: Path) -> list[ClientSpec]:
    """
    The clients listed in a JSON file (see the module docstring).

    Raises:
        UsageProblem: the file cannot be read or has the wrong shape.
    """
    try:
        document = json.loads(path.read_text("utf-8"))
        entries = document["clients"]
        return [_client_entry(entry, path.parent) for entry in entries]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UsageProblem(
            f"{path} is not a clients file ({exc!r}); see serve-issuer --help"
        ) from None


def _client_entry(entry: dict[str, Any], folder: Path) -> ClientSpec:
    scopes = entry["scopes"]
    if isinstance(scopes, str):
        scopes = scopes.split()
    key: RSAPublicKey | dict[str, Any]
    if "jwk" in entry:
        key = dict(entry["jwk"])
    else:
        key = load_public_key(folder / entry["public_key"])

    return ClientSpec(
        str(entry["client_id"]),
        _checked_orgno(str(entry["consumer"])),
        tuple(str(s) for s in scopes),
        key,
    )


def _checked_orgno(orgno: str) -> str:
    if not is_valid_orgno(orgno):
        raise UsageProblem(
            f"{orgno!r} is not a nine-digit organisation number with a valid "
            "check digit"
        )

    return orgno


@contextlib.contextmanager
def _stop_signal() -> Iterator[threading.Event]:
    """
    An event set by SIGTERM, installed before anything is printed.

    A parent that reads the URLs and at once sends SIGTERM must find the
    handler in place, or the process would die without stopping the server.
    """
    stop = threading.Event()

    def on_term(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGTERM, previous)


def _wait(stop: threading.Event) -> None:
    """Block until SIGTERM sets `stop`, or Ctrl-C."""
    try:
        while not stop.wait(0.2):
            pass
    except KeyboardInterrupt:
        pass


@click.command(name="serve-issuer", epilog=__doc__.split("\n\n", 1)[1])
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="The port on 127.0.0.1; 0 picks a free one.",
)
@click.option(
    "--key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Sign with the PEM private key here (made if absent), as mint does.",
)
@click.option(
    "--client",
    "clients",
    multiple=True,
    help="Register CLIENT_ID:ORGNO:SCOPES:PEM_FILE on /token; repeatable.",
)
@click.option(
    "--clients",
    "clients_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Register the clients listed in this JSON file.",
)
@click.option(
    "--token-lifetime",
    type=click.IntRange(1, 86400),
    default=120,
    show_default=True,
    help="Seconds the tokens issued at /token live.",
)
def serve_issuer_command(
    port: int,
    key_file: Path | None,
    clients: tuple[str, ...],
    clients_file: Path | None,
    token_lifetime: int,
) -> None:
    """
    Run a development Maskinporten on 127.0.0.1 until Ctrl-C or SIGTERM.

    It serves the metadata document, the key set at /jwk and a token
    endpoint at /token that accepts the RFC 7523 jwt-bearer grant from the
    registered clients, checked as Maskinporten checks it: aud is the issuer
    URL, iss is the client id, at most 120 s from iat to exp, a jti never
    used before, and only granted scopes. The first lines printed are the
    URLs.
    """
    specs = [parse_client(text) for text in clients]
    if clients_file is not None:
        specs += read_clients_file(clients_file)
    key = load_or_create_signing_key(key_file) if key_file is not None else None
    server = IssuerServer(FakeMaskinporten(key=key), port=port)
    server.token_lifetime = token_lifetime
    for spec in specs:
        server.register_client(
            spec.client_id, spec.public_key, spec.consumer, spec.scopes
        )
    with _stop_signal() as stop:
        _serve(server, specs, stop)


def _serve(
    server: IssuerServer, specs: list[ClientSpec], stop: threading.Event
) -> None:
    try:
        server.start()
    except OSError as exc:
        raise UsageProblem(f"cannot listen on 127.0.0.1:{server.port}: {exc}") from None
    try:
        click.echo(f"issuer:   {server.url}")
        click.echo(f"metadata: {server.metadata_uri}")
        click.echo(f"jwks:     {server.jwks_uri}")
        click.echo(f"token:    {server.token_endpoint}")
        click.echo(f"kid:      {server.fake.current_key.kid}")
        click.echo(f"clients:  {', '.join(s.client_id for s in specs) or 'none'}")
        click.echo("Press Ctrl-C to stop.")
        sys.stdout.flush()
        logger.info("serving a development issuer at %s", server.url)
        _wait(stop)
    finally:
        server.stop()
