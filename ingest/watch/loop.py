"""The watch loop: reconcile, then batches of S3 events until stopped, idle, or killed.

A message is deleted only once the outcome of every key it carries is committed to the run
state and the Dataset (linked, removed under the `deletions` policy, or left out for a
reason the batch reports), so delivery is at least once and the result exactly once: after
a kill, the unacknowledged messages come back when their visibility times out and are
processed again, which the run state turns into no new upload and no duplicate link. A
message with a key that keeps failing is never deleted; the queue's redrive policy moves it
to the dead-letter queue, while the messages that shared its batch are deleted.

SIGTERM or SIGINT: an idle long poll stops at once; a batch in progress is finished first.
A second signal abandons it (its messages reappear, nothing is lost).
"""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from types import FrameType
from typing import Any, TextIO

from ingest.errors import UserError, first_line
from ingest.listing.touched import TouchedListing
from ingest.watch.batcher import Batch, collect
from ingest.watch.events import latest_per_key
from ingest.watch.heartbeat import Heartbeat
from ingest.watch.queue import MAX_MESSAGES, Message
from ingest.watch.sync import BatchOutcome

Reconcile = Callable[[], dict[str, Any]]
ListTouched = Callable[[list[str]], TouchedListing]
SyncTouched = Callable[[TouchedListing], BatchOutcome]


class _Stop(BaseException):
    """Raised out of an idle long poll by the first SIGTERM/SIGINT (not an Exception, so no
    library's error handling swallows it)."""


@dataclass
class Totals:
    events: int = 0
    batches: int = 0
    added: int = 0
    removed: int = 0  # keys the bucket no longer holds
    deleted: int = 0  # their items, under the `deletions` policy
    unlinked: int = 0
    kept: int = 0
    failed_batches: int = 0
    undecodable: int = 0
    lag_seconds: float | None = None
    dead_letters: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "batches": self.batches,
            "failedBatches": self.failed_batches,
            "added": self.added,
            "removed": self.removed,
            "deleted": self.deleted,
            "unlinked": self.unlinked,
            "kept": self.kept,
            "undecodable": self.undecodable,
            "lagSeconds": None if self.lag_seconds is None else round(self.lag_seconds, 3),
            "deadLetters": self.dead_letters,
        }

    def line(self) -> str:
        lag = "-" if self.lag_seconds is None else f"{self.lag_seconds:.1f} s"
        dead = (
            "" if self.dead_letters is None else f", {self.dead_letters} in the dead-letter queue"
        )
        return (
            f"watch: {self.events} events, {self.batches} batches ({self.failed_batches} failed), "
            f"{self.added} items added, {self.removed} keys removed (items deleted "
            f"{self.deleted}, unlinked {self.unlinked}, kept {self.kept}), lag {lag}, "
            f"{self.undecodable} undecodable{dead}"
        )


@dataclass
class Watcher:
    queue: Any  # an EventQueue
    bucket: str
    batch_size: int
    batch_seconds: float
    visibility_timeout: int  # the queue's, seconds: a longer batch extends its messages'
    reconcile: Reconcile
    list_touched: ListTouched
    sync: SyncTouched
    reconcile_every: float | None  # seconds; None: only at start-up
    exit_when_idle: float | None
    json_lines: bool
    quiet: bool
    stream: TextIO = field(default_factory=lambda: sys.stdout)
    status: TextIO = field(default_factory=lambda: sys.stderr)
    totals: Totals = field(default_factory=Totals)
    _stopping: bool = False
    _idle: bool = False

    def run(self) -> int:
        with self._signals():
            self._reconcile()
            next_reconcile = self._next_reconcile()
            idle_since = time.monotonic()
            while not self._stopping:
                if time.monotonic() >= next_reconcile:
                    self._reconcile()
                    next_reconcile = self._next_reconcile()
                wait_until = next_reconcile
                if self.exit_when_idle is not None:
                    wait_until = min(wait_until, idle_since + self.exit_when_idle)
                batch = self._collect(wait_until)
                if batch is None:
                    if self._stopping or (
                        self.exit_when_idle is not None
                        and time.monotonic() >= idle_since + self.exit_when_idle
                    ):
                        break
                    continue
                self._process(batch)
                idle_since = time.monotonic()
        self.totals.dead_letters = self.queue.dead_letters()
        self._emit({"event": "stopped", **self.totals.to_json()})
        return 0

    def _next_reconcile(self) -> float:
        if self.reconcile_every is None:
            return float("inf")
        return time.monotonic() + self.reconcile_every

    def _collect(self, wait_until: float) -> Batch | None:
        self._idle = True
        try:
            return collect(_Interruptible(self), self.batch_size, self.batch_seconds, wait_until)
        except _Stop:
            return None
        finally:
            self._idle = False

    def _process(self, batch: Batch) -> None:
        started = time.monotonic()
        received = batch.all_events()
        ours = [event for event in received if event.bucket == self.bucket]
        latest = latest_per_key(ours)
        record: dict[str, Any] = {
            "event": "batch",
            "messages": len(batch.messages),
            "events": len(received),
            "keys": len(latest),
            "undecodable": len(batch.undecodable),
            "retried": sum(1 for m in batch.messages if m.receive_count > 1),
        }
        outcome = None
        heartbeat = Heartbeat(self.queue, self.visibility_timeout)
        try:
            with heartbeat.keeping(batch.messages):
                listing = self.list_touched(sorted(latest))
                outcome = self.sync(listing)
            record.update(outcome.to_json())
        except UserError as error:
            record["error"] = str(error)
        except Exception as error:  # a daemon reports and carries on; the messages come back
            record["error"] = f"{type(error).__name__}: {first_line(error)}"
        record["visibilityExtended"] = heartbeat.extended
        if heartbeat.failure:
            record["visibilityError"] = heartbeat.failure
        committed = outcome is not None and outcome.committed
        settled = None
        if outcome is not None:
            settled = partial(outcome.settles, listing.scope)
        done = batch.acknowledgeable(self.bucket, settled)
        record["acknowledged"] = len(done) - self.queue.delete(done) if done else 0
        times = [event.time for event in ours if event.time is not None]
        lag = (datetime.now(UTC) - min(times)).total_seconds() if times else None
        totals = self.totals
        totals.events += len(received)
        totals.batches += 1
        totals.failed_batches += not committed
        totals.undecodable += len(batch.undecodable)
        if outcome is not None:
            totals.added += outcome.linked
            totals.removed += len(outcome.removed)
            totals.deleted += outcome.deleted
            totals.unlinked += outcome.unlinked
            totals.kept += outcome.kept
        totals.lag_seconds = lag
        totals.dead_letters = self.queue.dead_letters()
        record.update(
            committed=committed,
            lagSeconds=None if lag is None else round(lag, 3),
            seconds=round(time.monotonic() - started, 3),
            deadLetters=totals.dead_letters,
        )
        self._emit(record)

    def _reconcile(self) -> None:
        started = time.monotonic()
        result = self.reconcile()
        self._emit(
            {"event": "reconcile", "seconds": round(time.monotonic() - started, 3), **result}
        )

    def _emit(self, record: dict[str, Any]) -> None:
        if self.json_lines:
            self.stream.write(json.dumps(record, ensure_ascii=False) + "\n")
            self.stream.flush()
        elif not self.quiet:
            if record["event"] == "batch" and "error" in record:
                self.status.write(
                    f"watch: batch failed ({record['error']}): the messages of its unsettled"
                    " keys will come back\n"
                )
            self.status.write(self.totals.line() + "\n")
            self.status.flush()

    @contextmanager
    def _signals(self) -> Iterator[None]:
        def handle(signum: int, frame: FrameType | None) -> None:
            if self._stopping:
                raise KeyboardInterrupt  # the second signal: abandon the batch
            self._stopping = True
            if self._idle:
                raise _Stop

        previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


class _Interruptible:
    """The queue, with the loop's stop flag checked before each long poll."""

    def __init__(self, watcher: Watcher) -> None:
        self._watcher = watcher

    def receive(self, wait_seconds: int, max_messages: int = MAX_MESSAGES) -> list[Message]:
        if self._watcher._stopping:
            raise _Stop
        return self._watcher.queue.receive(wait_seconds, max_messages)
