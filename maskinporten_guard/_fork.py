"""
Process-local state, reset in the child after `os.fork()`.

A pre-fork server (gunicorn with several workers) forks the master after it
imported the application. Whatever the master had then is copied into each
worker: a lock another thread was holding stays held forever, a thread that
was fetching keys does not exist in the child, and an HTTP connection in a
pool would be shared by two processes. Objects that own such things register
here, and each forked child calls their `_after_fork()` before it runs
anything else, so every worker builds its own.
"""

from __future__ import annotations

import logging
import os
import weakref
from typing import Protocol

__all__ = ["reset_in_child"]

logger = logging.getLogger("maskinporten_guard.fork")


class _ProcessLocal(Protocol):
    def _after_fork(self) -> None: ...


_registered: weakref.WeakSet[_ProcessLocal] = weakref.WeakSet()


def reset_in_child(obj: _ProcessLocal) -> None:
    """Call `obj._after_fork()` in every child forked while `obj` is alive."""
    _registered.add(obj)


def _after_fork_in_child() -> None:
    for obj in list(_registered):
        try:
            obj._after_fork()
        except Exception:
            logger.exception("resetting %s after a fork failed", type(obj).__name__)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
