"""
`maskinporten-guard inspect`: decode a token, verify it, explain every check.

The explanation calls the same functions the verifier runs (`jws.parse_compact`
and the checks in `claims`), and the verdict is the verifier's own, so what is
explained cannot disagree with what an API would decide. The token itself is
never printed, not even in part; the header and claims are shown decoded and
labelled as unverified.
"""

from __future__ import annotations

import base64
import binascii
import json
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import click

from ..claims import (
    check_audience,
    check_issuer,
    check_pid,
    check_times,
    check_token_type,
    read_authorization_details,
    read_org,
    read_scopes,
)
from ..clock import system_clock
from ..errors import (
    AuthError,
    InvalidSignature,
    KeyFetchError,
    KeysUnavailable,
    MalformedToken,
    UnknownKey,
    UnsupportedAlgorithm,
)
from ..identity import Identity
from ..jws import ParsedToken, parse_compact
from ..keys import SyncKeySource, VerificationKey, parse_jwks
from ..settings import Settings
from ..verifier import SyncKeys, SyncVerifier
from .app import (
    EXIT_INVALID,
    EXIT_KEYS_UNAVAILABLE,
    EXIT_OK,
    UsageProblem,
    build_settings,
    format_time,
    logger,
    parse_time,
    settings_options,
)

__all__ = ["FileKeys", "Inspection", "inspect_command", "inspect_token"]

Outcome = Literal["pass", "fail", "skip", "note"]
_MAX_PEEK_BYTES = 64 * 1024
_LABELS = {"pass": "[pass]", "fail": "[FAIL]", "skip": "[skip]", "note": "[note]"}


@dataclass(frozen=True, slots=True)
class Check:
    """One step of verification and how it went, in plain words."""

    name: str
    outcome: Outcome
    detail: str


@dataclass(slots=True)
class Inspection:
    """Everything `inspect` found out about one token."""

    header: dict[str, Any] | None
    claims: dict[str, Any] | None
    issuer: str
    checks: list[Check] = field(default_factory=list)
    error: AuthError | None = None
    identity: Identity | None = None

    @property
    def shown_claims(self) -> dict[str, Any] | None:
        """The claims to print: a national id in `pid` is masked."""
        if self.claims is None or "pid" not in self.claims:
            return self.claims

        return {**self.claims, "pid": "(national id, not shown)"}

    @property
    def valid(self) -> bool:
        """Whether the verifier accepted the token."""
        return self.error is None and self.identity is not None

    def as_dict(self) -> dict[str, Any]:
        """The inspection as JSON-ready values."""
        verdict: dict[str, Any] = {"valid": self.valid}
        if self.error is not None:
            verdict.update(
                reason=self.error.reason,
                description=self.error.description,
                status=self.error.status,
            )

        return {
            "unverified_header": self.header,
            "unverified_claims": self.shown_claims,
            "issuer": self.issuer,
            "checks": [asdict(check) for check in self.checks],
            "verdict": verdict,
            "identity": self.identity.as_dict() if self.identity else None,
        }


class FileKeys:
    """
    Keys from a JWKS file, for verifying offline; implements `SyncKeys`.

    Args:
        path: the JWKS document, as an issuer's `/jwk` endpoint serves it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise UsageProblem(f"cannot read the JWKS file {path}: {exc}") from None
        try:
            self._keys = parse_jwks(data, fetched_at=0.0).keys
        except KeyFetchError as exc:
            raise UsageProblem(f"the JWKS file {path} is not usable: {exc}") from None

    def cached(self, kid: str) -> VerificationKey | None:
        """The key for `kid`, if the file has it."""
        return self._keys.get(kid)

    def get_key(self, kid: str) -> VerificationKey:
        """
        The key for `kid`.

        Raises:
            UnknownKey: the file has no key with this `kid`.
        """
        key = self._keys.get(kid)
        if key is None:
            raise UnknownKey("no key in the JWKS file has the token's kid")

        return key

    def prefetch(self) -> bool:
        """Nothing to fetch: the file was read when this was made."""
        return True

    def close(self) -> None:
        """Nothing to close."""


def peek(token: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """
    Decode header and payload leniently, for display only; never trusted.

    Answers None for a part that does not decode to a JSON object.
    """
    if len(token) > _MAX_PEEK_BYTES:
        return None, None
    parts = token.split(".")
    decoded = [_lenient_json(part) for part in parts[:2]]
    decoded += [None] * (2 - len(decoded))

    return decoded[0], decoded[1]


def _lenient_json(part: str) -> dict[str, Any] | None:
    try:
        raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        value = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
        return None

    return value if isinstance(value, dict) else None


def inspect_token(
    token: str, settings: Settings, keys: SyncKeys, now: float
) -> Inspection:
    """
    Explain each check on `token`, then let the real verifier decide.

    Args:
        token: the token to inspect.
        settings: the issuer and rules to verify against.
        keys: where the signing keys come from.
        now: the time to verify at.
    """
    header, claims = peek(token)
    report = Inspection(header, claims, settings.issuer)
    parsed = _check_format(token, settings, report)
    if parsed is not None:
        report.header, report.claims = dict(parsed.header), parsed.claims
        _check_kid(parsed, keys, report)

    verifier = SyncVerifier(settings, keys, clock=lambda: now)
    try:
        report.identity = verifier.verify(token)
    except AuthError as exc:
        report.error = exc

    if parsed is not None:
        report.checks.append(_signature_check(parsed, report.error))
        _check_claims(parsed.claims, settings, now, report)

    return report


def _check_format(
    token: str, settings: Settings, report: Inspection
) -> ParsedToken | None:
    try:
        parsed = parse_compact(
            token,
            algorithms=frozenset(settings.algorithms),
            max_bytes=settings.max_token_bytes,
        )
    except UnsupportedAlgorithm as exc:
        report.checks.append(Check("alg", "fail", _allowed(exc.description, settings)))
        return None
    except MalformedToken as exc:
        report.checks.append(Check("format", "fail", exc.description))
        return None

    report.checks.append(
        Check(
            "format",
            "pass",
            "a compact JWS: three canonical base64url parts, JSON objects without "
            "duplicate members, no header that would let the token pick its key",
        )
    )
    report.checks.append(
        Check("alg", "pass", _allowed(f"alg {parsed.alg} is accepted", settings))
    )

    return parsed


def _allowed(text: str, settings: Settings) -> str:
    return f"{text} (allowed: {', '.join(settings.algorithms)})"


def _check_kid(parsed: ParsedToken, keys: SyncKeys, report: Inspection) -> None:
    try:
        key = keys.cached(parsed.kid) or keys.get_key(parsed.kid)
    except UnknownKey as exc:
        report.checks.append(Check("kid", "fail", f"kid {parsed.kid}: {exc}"))
        return
    except KeysUnavailable as exc:
        report.checks.append(Check("kid", "skip", exc.description))
        return

    report.checks.append(
        Check("kid", "pass", f"kid {parsed.kid} names a {key.size}-bit RSA key")
    )


def _signature_check(parsed: ParsedToken, error: AuthError | None) -> Check:
    """How the verifier's signature step went, read from its verdict."""
    if isinstance(error, InvalidSignature | UnsupportedAlgorithm):
        return Check("signature", "fail", error.description)
    if isinstance(error, UnknownKey | KeysUnavailable | MalformedToken):
        return Check("signature", "skip", "not checked: no key to check it with")

    return Check("signature", "pass", f"the {parsed.alg} signature verifies")


def _check_claims(
    claims: dict[str, Any], settings: Settings, now: float, report: Inspection
) -> None:
    steps: list[tuple[str, Callable[[], Check]]] = [
        ("iss", lambda: _issuer(claims, settings)),
        ("exp/iat/nbf", lambda: _times(claims, settings, now)),
        ("token_type", lambda: _token_type(claims)),
        ("scope", lambda: _scope(claims)),
        ("consumer", lambda: _consumer(claims, settings)),
        ("supplier", lambda: _supplier(claims, settings)),
        ("aud", lambda: _audience(claims, settings)),
        ("pid", lambda: _pid(claims, settings)),
        ("system user", lambda: _system_user(claims, settings)),
    ]
    for name, step in steps:
        try:
            report.checks.append(step())
        except AuthError as exc:
            report.checks.append(Check(name, "fail", exc.description))


def _issuer(claims: dict[str, Any], settings: Settings) -> Check:
    issuer = check_issuer(claims, settings.issuer)

    return Check("iss", "pass", f"iss is exactly {issuer}")


def _times(claims: dict[str, Any], settings: Settings, now: float) -> Check:
    issued_at, expires_at = check_times(claims, now, settings.leeway)
    left = expires_at - now
    status = f"{left:.0f} s left" if left > 0 else f"{-left:.0f} s past, in leeway"

    return Check(
        "exp/iat/nbf",
        "pass",
        f"issued {format_time(issued_at)}, expires {format_time(expires_at)} "
        f"({status}; leeway {settings.leeway:g} s, checked at {format_time(now)})",
    )


def _token_type(claims: dict[str, Any]) -> Check:
    check_token_type(claims)

    return Check("token_type", "pass", "token_type is Bearer")


def _scope(claims: dict[str, Any]) -> Check:
    scopes = read_scopes(claims)

    return Check("scope", "pass", f"scopes: {', '.join(sorted(scopes))}")


def _consumer(claims: dict[str, Any], settings: Settings) -> Check:
    consumer = read_org(claims.get("consumer"), "consumer", settings)
    if (
        settings.allowed_consumers is not None
        and consumer.orgno not in settings.allowed_consumers
    ):
        return Check(
            "consumer", "fail", f"orgno {consumer.orgno} is not an allowed consumer"
        )

    return Check(
        "consumer", "pass", f"orgno {consumer.orgno} ({consumer.id}), check digit ok"
    )


def _supplier(claims: dict[str, Any], settings: Settings) -> Check:
    value = claims.get("supplier")
    if value is None:
        return Check("supplier", "note", "no supplier: the consumer called itself")
    supplier = read_org(value, "supplier", settings)
    source = claims.get("delegation_source")

    return Check(
        "supplier",
        "pass",
        f"supplier {supplier.orgno} acts for the consumer through a delegation "
        f"in {source if isinstance(source, str) else 'an unnamed source'}",
    )


def _audience(claims: dict[str, Any], settings: Settings) -> Check:
    audience = check_audience(claims, settings.audience)
    shown = ", ".join(audience) or "none"
    if not settings.audience:
        return Check("aud", "note", f"not required (no --audience); aud: {shown}")

    return Check("aud", "pass", f"aud {shown} includes an accepted audience")


def _pid(claims: dict[str, Any], settings: Settings) -> Check:
    pid = check_pid(claims, settings.require_pid)
    if pid is None:
        return Check("pid", "note", "no pid, and none is required")

    return Check("pid", "pass", "pid is an 11-digit national id (not shown)")


def _system_user(claims: dict[str, Any], settings: Settings) -> Check:
    system_user, consents = read_authorization_details(claims, settings)
    extra = f"; {len(consents)} consent(s)" if consents else ""
    if system_user is None:
        return Check("system user", "note", f"not a system user token{extra}")

    return Check(
        "system user",
        "pass",
        f"system user of {system_user.org.orgno}, system {system_user.system_id}"
        f"{extra}",
    )


def read_token(argument: str | None) -> str:
    """
    The token from the argument, or from stdin when it is absent or `-`.

    Surrounding whitespace and a leading `Bearer ` are dropped.

    Raises:
        UsageProblem: no token was given.
    """
    if argument is None or argument == "-":
        if sys.stdin.isatty():
            raise UsageProblem("give a token as an argument or pipe it on stdin")
        argument = sys.stdin.read()
    token = argument.strip()
    if token[:7].lower() == "bearer ":
        token = token[7:].strip()
    if not token:
        raise UsageProblem("the token is empty")

    return token


def render(report: Inspection) -> str:
    """The inspection as text for people."""
    lines = ["Decoded, NOT verified (do not trust these until the verdict):"]
    for title, part in (("header", report.header), ("claims", report.shown_claims)):
        shown = json.dumps(part, indent=2, sort_keys=True) if part else "(undecodable)"
        lines.append(f"  {title}: " + shown.replace("\n", "\n  "))
    lines.append(f"Checks against issuer {report.issuer}:")
    for check in report.checks:
        lines.append(f"  {_LABELS[check.outcome]} {check.name}: {check.detail}")
    if report.valid and report.identity is not None:
        lines.append(
            f"Verdict: VALID for consumer {report.identity.consumer_orgno}, "
            f"scopes {' '.join(sorted(report.identity.scopes))}"
        )
    elif report.error is not None:
        lines.append(
            f"Verdict: INVALID ({report.error.reason}): {report.error.description}"
        )

    return "\n".join(lines)


@click.command(name="inspect")
@click.argument("token", required=False)
@settings_options
@click.option(
    "--jwks",
    "jwks_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Verify offline against this JWKS file instead of fetching keys.",
)
@click.option(
    "--at",
    "at",
    help="Verify as of this time (epoch seconds or ISO 8601), for old tokens.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def inspect_command(
    token: str | None,
    env: str | None,
    issuer: str | None,
    jwks_uri: str | None,
    audience: tuple[str, ...],
    require_pid: bool,
    leeway: float | None,
    jwks_file: Path | None,
    at: str | None,
    as_json: bool,
) -> None:
    """
    Decode TOKEN (or stdin) without trusting it, then verify and explain it.

    The header and claims are shown as decoded, clearly unverified; then each
    check the verifier makes is explained, and the verifier's verdict decides
    the exit code: 0 valid, 1 invalid, 2 usage or configuration error, 3 keys
    unavailable. The token itself is never printed.
    """
    text = read_token(token)
    settings = build_settings(
        env=env,
        issuer=issuer,
        jwks_uri=jwks_uri,
        audience=audience,
        require_pid=require_pid,
        leeway=leeway,
    )
    now = parse_time(at) if at is not None else None
    clock_now = now if now is not None else system_clock()
    keys: SyncKeys = (
        FileKeys(jwks_file)
        if jwks_file is not None
        else SyncKeySource(settings, clock=lambda: clock_now)
    )
    try:
        report = inspect_token(text, settings, keys, clock_now)
    finally:
        keys.close()

    reason = report.error.reason if report.error else "valid"
    logger.info("inspected a token: %s", reason)
    click.echo(json.dumps(report.as_dict(), indent=2) if as_json else render(report))
    if isinstance(report.error, KeysUnavailable):
        raise SystemExit(EXIT_KEYS_UNAVAILABLE)
    raise SystemExit(EXIT_OK if report.valid else EXIT_INVALID)
