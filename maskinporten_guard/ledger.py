"""
The grant ledger: who used which scope, counted in memory, flushed in batches.

`GrantLedger.record_allowed` and `record_refused` run on the request path: a
lock, a dict lookup and an addition, never the database. A background flush
(`start_thread` for WSGI, `start`/`aclose` in an ASGI lifespan) writes what
was counted to a `GrantStore` in one transaction per batch.

When a write fails, the batch is kept as it was, with its id, and written
again later with exponential backoff; the store applies a batch id at most
once, so a commit whose acknowledgement was lost is not counted twice. While
the store is down, new counts keep accumulating up to `max_pending` distinct
keys; requests for further new keys are dropped, counted in `dropped` and
logged.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Iterable
from datetime import date, timedelta

import anyio.to_thread

from . import _fork
from .clock import Clock, system_clock
from .metrics import Metrics, NullMetrics
from .stores import Batch, GrantStore, RefusalKey, Usage, UsageKey

__all__ = ["GrantLedger"]

logger = logging.getLogger("maskinporten_guard.ledger")

_EPOCH = date(1970, 1, 1)
_DAY = 86_400

# Keys carry the UTC day as days since the epoch: cheaper than a date per call.
_UsageKey = tuple[str, str, str | None, int]
_RefusalKey = tuple[str, str, str | None, str | None, int]


class GrantLedger:
    """
    Counts allowed and refused requests per grant and flushes them to a store.

    Thread-safe. Memory is bounded by `max_pending` distinct keys, counting
    both the new counts and a batch waiting to be retried. After `close`,
    every new count is dropped (and counted in `dropped`).
    """

    def __init__(
        self,
        store: GrantStore,
        *,
        flush_interval: float = 5.0,
        max_pending: int = 100_000,
        max_backoff: float = 300.0,
        clock: Clock = system_clock,
        metrics: Metrics | None = None,
    ) -> None:
        """
        Args:
            store: where batches are written.
            flush_interval: seconds between background flushes.
            max_pending: the most distinct keys held in memory.
            max_backoff: the longest wait between retries of a failed write.
            clock: the time source for request times and backoff.
            metrics: where to report `ledger_pending`, `ledger_flush_seconds`,
                `ledger_dropped` and `ledger_flush_errors`.
        """
        if flush_interval <= 0 or max_pending <= 0 or max_backoff <= 0:
            raise ValueError(
                "flush_interval, max_pending and max_backoff must be positive"
            )
        self.store = store
        self.flush_interval = flush_interval
        self.max_pending = max_pending
        self.max_backoff = max_backoff
        self._clock = clock
        self._metrics = metrics or NullMetrics()

        self._lock = threading.Lock()
        self._usage: dict[_UsageKey, list[float]] = {}
        self._refusals: dict[_RefusalKey, int] = {}
        self._retry: Batch | None = None
        self._retry_size = 0
        self.dropped = 0
        self._dropped_logged_at = -float("inf")

        self._flush_lock = threading.Lock()
        self._failures = 0
        self._next_attempt = -float("inf")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        _fork.reset_in_child(self)

    def _after_fork(self) -> None:
        """
        Start the child with empty counts, fresh locks and no flush thread.

        The counts pending at the fork are the parent's to write; keeping
        them here as well would count those requests twice.
        """
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._usage = {}
        self._refusals = {}
        self._retry = None
        self._retry_size = 0
        self._stop = threading.Event()
        if self._thread is not None:
            atexit.unregister(self.close)
        self._thread = None
        self._task = None

    @property
    def pending(self) -> int:
        """Distinct keys held in memory, including a batch waiting for a retry."""
        with self._lock:
            return len(self._usage) + len(self._refusals) + self._retry_size

    def record_allowed(
        self,
        consumer: str,
        supplier: str | None,
        scopes: Iterable[str],
        at: float | None = None,
    ) -> None:
        """
        Count one allowed request against each scope that authorised it.

        Args:
            consumer: the consumer's organisation number.
            supplier: the supplier's organisation number, when delegated.
            scopes: the scopes that authorised the request.
            at: when, in seconds since the epoch; now by default.
        """
        now = self._clock() if at is None else at
        day = int(now // _DAY)
        with self._lock:
            for scope in scopes:
                key = (scope, consumer, supplier, day)
                counts = self._usage.get(key)
                if counts is not None:
                    counts[0] += 1
                    if now < counts[1]:
                        counts[1] = now
                    elif now > counts[2]:
                        counts[2] = now
                elif self._has_room():
                    self._usage[key] = [1, now, now]
                else:
                    self._drop(now)

    def record_refused(
        self,
        consumer: str,
        supplier: str | None,
        reason: str,
        scope: str | None = None,
        at: float | None = None,
    ) -> None:
        """
        Count one refusal of a verified consumer.

        Args:
            consumer: the consumer's organisation number.
            supplier: the supplier's organisation number, when delegated.
            reason: the refusal's short code, such as `insufficient_scope`.
            scope: the scope the route required, when there was one.
            at: when, in seconds since the epoch; now by default.
        """
        now = self._clock() if at is None else at
        key = (reason, consumer, supplier, scope, int(now // _DAY))
        with self._lock:
            if key in self._refusals:
                self._refusals[key] += 1
            elif self._has_room():
                self._refusals[key] = 1
            else:
                self._drop(now)

    def _has_room(self) -> bool:
        held = len(self._usage) + len(self._refusals) + self._retry_size

        return held < self.max_pending and not self._closed

    def _drop(self, now: float) -> None:
        # A closed ledger drops too: nothing would ever write the count.
        self.dropped += 1
        self._metrics.increment("ledger_dropped")
        if now - self._dropped_logged_at >= 60.0:
            self._dropped_logged_at = now
            logger.warning(
                "grant ledger full (%d keys); %d counts dropped so far; "
                "is the grant store reachable?",
                self.max_pending,
                self.dropped,
            )

    def flush(self) -> int:
        """
        Write what is pending now, ignoring any backoff.

        A batch kept from a failed write goes first, unchanged and with its
        id. A failure is logged and counted, never raised: the counts stay in
        memory for the next attempt.

        Returns:
            how many keys were written.
        """
        with self._flush_lock:
            written = 0
            started = time.perf_counter()
            try:
                if self._retry is not None:
                    written += self._write(self._retry)
                    with self._lock:
                        self._retry, self._retry_size = None, 0
                batch = self._take()
                if batch is not None:
                    try:
                        written += self._write(batch)
                    except BaseException:
                        with self._lock:
                            self._retry = batch
                            self._retry_size = len(batch.usage) + len(batch.refusals)
                        raise
            except Exception as exc:
                self._failed(exc)
            else:
                self._failures = 0
                self._next_attempt = -float("inf")
                if written:
                    self._metrics.observe(
                        "ledger_flush_seconds", time.perf_counter() - started
                    )
            self._metrics.set("ledger_pending", self.pending)

        return written

    def _write(self, batch: Batch) -> int:
        self.store.write(batch)

        return len(batch.usage) + len(batch.refusals)

    def _take(self) -> Batch | None:
        with self._lock:
            if not self._usage and not self._refusals:
                return None
            usage, self._usage = self._usage, {}
            refusals, self._refusals = self._refusals, {}

        dates: dict[int, date] = {}

        def as_date(day: int) -> date:
            known = dates.get(day)
            if known is None:
                known = dates[day] = _EPOCH + timedelta(days=day)
            return known

        return Batch(
            uuid.uuid4().hex,
            {
                UsageKey(scope, consumer, supplier, as_date(day)): Usage(
                    int(count), first, last
                )
                for (scope, consumer, supplier, day), (count, first, last) in (
                    usage.items()
                )
            },
            {
                RefusalKey(reason, consumer, supplier, scope, as_date(day)): count
                for (reason, consumer, supplier, scope, day), count in refusals.items()
            },
        )

    def _failed(self, exc: Exception) -> None:
        self._failures += 1
        delay = min(self.max_backoff, self.flush_interval * 2 ** (self._failures - 1))
        self._next_attempt = self._clock() + delay
        self._metrics.increment("ledger_flush_errors")
        logger.warning(
            "ledger flush failed (%d in a row); %d keys kept, retry in %.0f s: %s",
            self._failures,
            self.pending,
            delay,
            exc,
        )

    def flush_if_due(self) -> int:
        """
        Flush unless a failed write's backoff is still running.

        Returns:
            how many keys were written.
        """
        if self._clock() < self._next_attempt:
            return 0

        return self.flush()

    def start_thread(self) -> None:
        """
        Flush every `flush_interval` seconds from a daemon thread.

        Also registers `close` with `atexit`, so a WSGI process that exits
        normally writes its last counts.
        """
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._run, name="maskinporten-guard-ledger", daemon=True
        )
        self._thread.start()
        atexit.register(self.close)

    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval):
            self.flush_if_due()

    async def start(self) -> None:
        """
        Flush every `flush_interval` seconds from the running asyncio loop.

        For an ASGI lifespan's startup; pair it with `aclose` at shutdown. The
        store is written from a worker thread, so the loop never blocks.
        """
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval)
            await anyio.to_thread.run_sync(self.flush_if_due)

    async def aclose(self) -> None:
        """Stop the asyncio flush and write the last counts (in a worker thread)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await anyio.to_thread.run_sync(self.close)

    def close(self) -> None:
        """
        Stop the background thread, flush, and close the store.

        Counts that still cannot be written are logged as lost. Safe to call
        more than once.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            atexit.unregister(self.close)
        self.flush()
        if self.pending:
            logger.error(
                "grant ledger closed with %d keys unwritten; the store is failing",
                self.pending,
            )
        self.store.close()
