"""
What happens after a decision: the audit line, the ledger count, the metrics.

`Recorder` is the one place a decision is written down, for every adapter.
It writes the audit event only when the audit logger would emit it, counts
allowed requests against the scopes that authorised them, counts refusals
only for consumers whose token verified (a forged token names no one), and
reports `decisions{outcome, reason}` to the metrics hook.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from .audit import AuditEvent, AuditLog
from .clock import Clock, system_clock
from .ledger import GrantLedger
from .metrics import Metrics, NullMetrics
from .stores import STORE_ENV_VAR, open_store

if TYPE_CHECKING:
    from .decision import Decision

__all__ = ["Recorder"]

logger = logging.getLogger("maskinporten_guard.record")


class Recorder:
    """
    Writes each decision to the audit log, the grant ledger and the metrics.

    Args:
        audit: the audit log; pass None to write no audit events.
        ledger: the grant ledger; None keeps no counts.
        metrics: where decision counters go.
        clock: the time stamped on audit events.
    """

    def __init__(
        self,
        *,
        audit: AuditLog | None = None,
        ledger: GrantLedger | None = None,
        metrics: Metrics | None = None,
        clock: Clock = system_clock,
    ) -> None:
        self.audit = audit
        self.ledger = ledger
        self.metrics = metrics or NullMetrics()
        self.clock = clock
        # Counting into NullMetrics is a call per request for nothing.
        self._counts_decisions = not isinstance(self.metrics, NullMetrics)

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        metrics: Metrics | None = None,
        clock: Clock = system_clock,
    ) -> Recorder:
        """
        An audit log always, and a grant ledger when the environment names one.

        `MASKINPORTEN_GRANTS_STORE` (`sqlite:///file.db`, `postgresql://...`)
        turns the ledger on; `MASKINPORTEN_LEDGER_FLUSH` sets its flush
        interval in seconds (default 5).

        Args:
            environ: the variables to read; `os.environ` by default.
            metrics: where the ledger and the decisions report.
            clock: the time source for records.
        """
        env = os.environ if environ is None else environ
        url = env.get(STORE_ENV_VAR, "").strip()
        ledger = None
        if url:
            interval = float(env.get("MASKINPORTEN_LEDGER_FLUSH", "") or 5.0)
            ledger = GrantLedger(
                open_store(url), flush_interval=interval, clock=clock, metrics=metrics
            )

        return cls(audit=AuditLog(), ledger=ledger, metrics=metrics, clock=clock)

    def record(self, decision: Decision, method: str) -> None:
        """Write one decision down; never raises into the request."""
        try:
            self._record(decision, method)
        except Exception:
            logger.exception("recording a decision failed; the request goes on")

    def _record(self, decision: Decision, method: str) -> None:
        identity = decision.identity
        reason = decision.reason
        if self._counts_decisions:
            self.metrics.increment(
                "decisions",
                outcome="allow" if decision.allowed else "deny",
                reason=reason,
            )

        ledger = self.ledger
        if ledger is not None and identity is not None:
            supplier = identity.supplier.orgno if identity.supplier else None
            if decision.allowed:
                if decision.scopes:
                    ledger.record_allowed(
                        identity.consumer.orgno, supplier, decision.scopes
                    )
            else:
                ledger.record_refused(
                    identity.consumer.orgno,
                    supplier,
                    reason,
                    decision.rule_scope or None,
                )

        audit = self.audit
        if audit is not None and audit.wants(decision.allowed):
            audit.emit(self._event(decision, method))

    def _event(self, decision: Decision, method: str) -> AuditEvent:
        identity = decision.identity
        system_user = identity.system_user if identity is not None else None

        return AuditEvent(
            time=self.clock(),
            outcome="allow" if decision.allowed else "deny",
            reason=decision.reason,
            method=method,
            route=decision.route,
            status=decision.status,
            consumer=identity.consumer.orgno if identity else None,
            supplier=identity.supplier_orgno if identity else None,
            delegation_source=identity.delegation_source if identity else None,
            client_id=identity.client_id if identity else None,
            jti=identity.jti if identity else None,
            scopes=decision.scopes,
            system_user_org=system_user.org.orgno if system_user else None,
            system_id=system_user.system_id if system_user else None,
        )

    async def start(self) -> None:
        """Start the ledger's background flush on the running event loop."""
        if self.ledger is not None:
            await self.ledger.start()

    async def aclose(self) -> None:
        """Flush the ledger and close its store."""
        if self.ledger is not None:
            await self.ledger.aclose()

    def start_thread(self) -> None:
        """Start the ledger's background flush in a thread (WSGI)."""
        if self.ledger is not None:
            self.ledger.start_thread()

    def close(self) -> None:
        """Flush the ledger and close its store."""
        if self.ledger is not None:
            self.ledger.close()
