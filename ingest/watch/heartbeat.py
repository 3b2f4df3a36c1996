"""Keeps a batch's messages hidden while the batch runs longer than the queue's visibility
timeout allows: from half the timeout after each one's receipt (or last extension) on, each
is hidden for a whole timeout more (`ChangeMessageVisibility`), so no other receive gets it
mid-batch and its receive count does not climb towards the dead-letter queue."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

from ingest.watch.queue import Message


class Extending(Protocol):
    def extend(self, messages: Sequence[Message], seconds: int) -> int: ...


@dataclass
class Heartbeat:
    """One batch's: `keeping(messages)` around the work, then its counts for the batch line."""

    queue: Extending
    timeout: int  # the queue's visibility timeout, seconds
    clock: Callable[[], float] = time.monotonic
    extended: int = 0  # messages × extensions
    refused: int = 0
    failure: str | None = None  # the last error: the batch goes on, its messages may reappear
    _hidden_since: dict[str, float] = field(default_factory=dict)

    def due(self, messages: Sequence[Message]) -> list[Message]:
        """The messages half or more of whose visibility has run out by now."""
        now = self.clock()
        return [
            message
            for message in messages
            if now - self._hidden_since.get(message.message_id, message.received_at)
            >= self.timeout / 2
        ]

    def beat(self, messages: Sequence[Message]) -> None:
        ready = self.due(messages)
        if not ready:
            return
        now = self.clock()
        try:
            self.refused += self.queue.extend(ready, self.timeout)
        except Exception as error:  # reported with the batch; the batch itself goes on
            self.failure = f"{type(error).__name__}: {error}"
            return
        self.extended += len(ready)
        for message in ready:
            self._hidden_since[message.message_id] = now

    @contextmanager
    def keeping(self, messages: Sequence[Message]) -> Iterator[None]:
        """While the block runs, extend `messages` whenever they are due: looked at now and
        every quarter timeout, so each is extended before three quarters of it have gone."""
        stop = threading.Event()

        def run() -> None:
            while True:
                self.beat(messages)
                if stop.wait(max(self.timeout / 4, 0.05)):
                    return

        beating = threading.Thread(target=run, name="watch-heartbeat", daemon=True)
        beating.start()
        try:
            yield
        finally:
            stop.set()
            beating.join()
