"""Messages from the queue, gathered into batches: at most `size` messages, or what arrived
within `seconds` of the batch's first one, whichever comes first."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from ingest.watch.events import S3Event, UndecodableMessage, decode_message
from ingest.watch.queue import LONG_POLL_SECONDS, MAX_MESSAGES, Message


class Queue(Protocol):
    def receive(self, wait_seconds: int, max_messages: int = MAX_MESSAGES) -> list[Message]: ...


@dataclass
class Batch:
    messages: list[Message] = field(default_factory=list)  # every one received
    events: list[S3Event] = field(default_factory=list)  # of the decodable ones
    undecodable: dict[str, str] = field(default_factory=dict)  # message id → why

    @property
    def acknowledgeable(self) -> list[Message]:
        """What may be deleted once the batch's outcome is committed: every decoded message
        (S3's test event included). An undecodable one stays, to reach the dead-letter queue."""
        return [m for m in self.messages if m.message_id not in self.undecodable]

    def add(self, message: Message) -> None:
        self.messages.append(message)
        try:
            self.events += decode_message(message.body, arrival=len(self.events))
        except UndecodableMessage as error:
            self.undecodable[message.message_id] = str(error)


def collect(
    queue: Queue,
    size: int,
    seconds: float,
    wait_until: float,
    clock: Callable[[], float] = time.monotonic,
) -> Batch | None:
    """The next batch; None when nothing arrived by `wait_until` (a `clock` reading)."""
    batch = Batch()
    closes_at = math.inf
    while len(batch.messages) < size:
        deadline = min(closes_at, wait_until) if not batch.messages else closes_at
        remaining = deadline - clock()
        if remaining <= 0:
            break
        wait = min(LONG_POLL_SECONDS, math.ceil(remaining))
        received = queue.receive(wait, min(MAX_MESSAGES, size - len(batch.messages)))
        if received and not batch.messages:
            closes_at = clock() + seconds
        for message in received:
            batch.add(message)
    return batch if batch.messages else None
