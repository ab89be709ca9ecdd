"""
The `maskinporten-guard` command line.

Commands (each has `--help`):

- `inspect`: decode a token without trusting it, then verify it and explain
  every check in plain words;
- `mint`: print a token from a development issuer;
- `serve-issuer`: run a development issuer on 127.0.0.1 with metadata, a key
  set and a jwt-bearer token endpoint;
- `report`: consumers per scope from the grant ledger, with the yearly price
  and, given the admin API's grant lists, unused and ungranted accesses;
- `demo`: an issuer, the FastAPI example behind the guard and a scripted day
  of calls, then the ledger report; it checks every answer itself.

Exit codes:

- 0: done; for `inspect`, the token is valid; for `demo`, every call got the
  answer the script expects;
- 1: the token is not valid (or is valid but refused by a consumer rule); for
  `demo`, a call got an unexpected answer;
- 2: usage or configuration error, including click not being installed;
- 3: the issuer's signing keys could not be had, so nothing was decided.

click is an optional dependency: `pip install 'maskinporten-guard[cli]'`. The
commands live in `maskinporten_guard._cli`, one small module each, and are
added to the group there.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]

_MISSING_CLICK = (
    "maskinporten-guard: the command line needs click, which is not installed.\n"
    "Install it with: pip install 'maskinporten-guard[cli]'\n"
)


def main(argv: Sequence[str] | None = None) -> None:
    """
    Run the command line; exits with one of the documented exit codes.

    Args:
        argv: the arguments after the program name; `sys.argv[1:]` when None.
    """
    try:
        import click  # noqa: F401 - only probing whether the extra is installed
    except ImportError:
        sys.stderr.write(_MISSING_CLICK)
        raise SystemExit(2) from None

    from ._cli import cli

    cli.main(
        args=list(argv) if argv is not None else None, prog_name="maskinporten-guard"
    )


if __name__ == "__main__":
    main()
