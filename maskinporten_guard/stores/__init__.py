"""
Grant stores: where the ledger's counts are kept, chosen by URL.

    memory://                           in this process only (tests)
    sqlite:///relative/grants.db        an SQLite file (the default)
    sqlite:////var/lib/app/grants.db    an absolute path takes a fourth slash
    postgresql://user@host/db?schema=s  PostgreSQL; `schema` defaults to public,
                                        `pool_timeout` (seconds) to 5

`open_store` builds the store and creates or checks its schema;
`store_from_env` reads the URL from `MASKINPORTEN_GRANTS_STORE`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..errors import ConfigurationError
from ._memory import MemoryStore
from ._model import (
    SCHEMA_VERSION,
    Batch,
    GrantStore,
    RefusalKey,
    RefusalRow,
    Usage,
    UsageKey,
    UsageRow,
    storable,
)
from ._postgres import PostgresStore
from ._sqlite import SqliteStore

__all__ = [
    "DEFAULT_STORE_URL",
    "SCHEMA_VERSION",
    "STORE_ENV_VAR",
    "Batch",
    "GrantStore",
    "MemoryStore",
    "PostgresStore",
    "RefusalKey",
    "RefusalRow",
    "SqliteStore",
    "Usage",
    "UsageKey",
    "UsageRow",
    "open_store",
    "storable",
    "store_from_env",
]

STORE_ENV_VAR = "MASKINPORTEN_GRANTS_STORE"
DEFAULT_STORE_URL = "sqlite:///maskinporten-grants.db"


def _postgres(url: str) -> PostgresStore:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    ours = {name: value for name, value in query if name in ("schema", "pool_timeout")}
    rest = urlencode([(name, value) for name, value in query if name not in ours])
    try:
        timeout = float(ours.get("pool_timeout", "5"))
    except ValueError:
        raise ConfigurationError(
            f"{STORE_ENV_VAR}: pool_timeout must be a number of seconds"
        ) from None

    return PostgresStore(
        urlunsplit(parts._replace(query=rest)),
        schema=ours.get("schema", "public"),
        timeout=timeout,
    )


def open_store(url: str) -> GrantStore:
    """
    Open the grant store a URL names, with its schema created or checked.

    Args:
        url: `memory://`, `sqlite:///path` or `postgresql://...` (see the
            module docstring).

    Raises:
        ConfigurationError: the URL's scheme is unknown, or the PostgreSQL
            extra is not installed.
        StoreError: the store cannot be reached or holds a newer schema.
    """
    scheme = url.partition(":")[0].lower()
    store: GrantStore
    if scheme == "memory":
        store = MemoryStore()
    elif scheme == "sqlite":
        path = url.removeprefix("sqlite:///")
        if path == url or not path:
            raise ConfigurationError(
                f"{STORE_ENV_VAR}: write an SQLite store as sqlite:///relative.db "
                "or sqlite:////absolute/path.db"
            )
        store = SqliteStore(path)
    elif scheme in ("postgresql", "postgres"):
        store = _postgres(url)
    else:
        raise ConfigurationError(
            f"{STORE_ENV_VAR}: unknown store scheme {scheme!r}; use memory://, "
            "sqlite:///path or postgresql://..."
        )
    try:
        store.ensure_schema()
    except BaseException:
        store.close()
        raise

    return store


def store_from_env(environ: Mapping[str, str] | None = None) -> GrantStore:
    """
    Open the store named by `MASKINPORTEN_GRANTS_STORE`, or the SQLite default.

    Args:
        environ: the variables to read; `os.environ` by default.
    """
    environ = os.environ if environ is None else environ
    url = environ.get(STORE_ENV_VAR, "").strip() or DEFAULT_STORE_URL

    return open_store(url)
