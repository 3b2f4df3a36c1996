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
    events: dict[str, list[S3Event]] = field(default_factory=dict)  # message id → its events
    undecodable: dict[str, str] = field(default_factory=dict)  # message id → why

    def add(self, message: Message) -> None:
        if message.message_id in self.events or message.message_id in self.undecodable:
            # Received again within the batch (its visibility ran out): the newest receipt
            # handle is the one that deletes it.
            self.messages = [m for m in self.messages if m.message_id != message.message_id]
            self.messages.append(message)
            return
        self.messages.append(message)
        try:
            arrival = sum(len(events) for events in self.events.values())
            self.events[message.message_id] = decode_message(message.body, arrival)
        except UndecodableMessage as error:
            self.undecodable[message.message_id] = str(error)

    def all_events(self) -> list[S3Event]:
        return [event for events in self.events.values() for event in events]

    def acknowledgeable(self, bucket: str, settled: Callable[[str], bool] | None) -> list[Message]:
        """The messages that may be deleted: those whose every key about `bucket` is
        `settled` (None: the batch failed, no key is), and those carrying nothing for it (S3's
        test event, another bucket) at once. An undecodable one never is: it reaches the
        dead-letter queue, as does one whose key keeps failing."""
        return [
            message
            for message in self.messages
            if message.message_id in self.events
            and all(
                event.bucket != bucket or (settled is not None and settled(event.key))
                for event in self.events[message.message_id]
            )
        ]


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
        wait = LONG_POLL_SECONDS if remaining >= LONG_POLL_SECONDS else math.ceil(remaining)
        received = queue.receive(wait, min(MAX_MESSAGES, size - len(batch.messages)))
        if received and not batch.messages:
            closes_at = clock() + seconds
        for message in received:
            batch.add(message)
    return batch if batch.messages else None
