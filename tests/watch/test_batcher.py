"""Batching: at most N messages, or what arrives within T seconds of the first. A fake queue
and a fake clock, so nothing waits."""

from __future__ import annotations

import json
import math

from ingest.watch.batcher import collect
from ingest.watch.queue import Message


class FakeQueue:
    """Delivers `arrivals` (time → bodies) as a long poll would; advances the clock."""

    def __init__(self, arrivals: dict[float, list[str]]) -> None:
        self.now = 0.0
        self.arrivals = arrivals
        self.waits: list[tuple[int, int]] = []
        self._ids = 0

    def clock(self) -> float:
        return self.now

    def receive(self, wait_seconds: int, max_messages: int = 10) -> list[Message]:
        self.waits.append((wait_seconds, max_messages))
        ready = sorted(t for t, bodies in self.arrivals.items() if bodies)
        due = [t for t in ready if t <= self.now + wait_seconds]
        if not due:
            self.now += wait_seconds
            return []
        self.now = max(self.now, due[0])
        bodies = self.arrivals[due[0]]
        taken, self.arrivals[due[0]] = bodies[:max_messages], bodies[max_messages:]
        messages = []
        for body in taken:
            self._ids += 1
            messages.append(Message(str(self._ids), f"receipt-{self._ids}", body, 1))
        return messages


def put(key: str) -> str:
    record = {
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "b"}, "object": {"key": key}},
    }
    return json.dumps({"Records": [record]})


def test_a_burst_is_cut_at_the_batch_size() -> None:
    queue = FakeQueue({1.0: [put(f"k{i}") for i in range(25)]})
    batch = collect(queue, size=12, seconds=5, wait_until=100, clock=queue.clock)
    assert batch is not None and len(batch.messages) == 12
    assert [maximum for _, maximum in queue.waits] == [10, 2]  # never more than the size


def test_a_batch_closes_seconds_after_its_first_message() -> None:
    queue = FakeQueue({1.0: [put("a")], 3.0: [put("b")], 9.0: [put("c")]})
    batch = collect(queue, size=100, seconds=4, wait_until=100, clock=queue.clock)
    assert batch is not None and [e.key for e in batch.all_events()] == ["a", "b"]
    assert queue.now <= 1.0 + 4 + 1  # long polls shortened to the batch's remaining time


def test_without_a_deadline_the_poll_waits_the_longest_sqs_allows() -> None:
    queue = FakeQueue({45.0: [put("late")]})
    batch = collect(queue, size=1, seconds=1, wait_until=math.inf, clock=queue.clock)
    assert batch is not None and queue.waits[0] == (20, 1)


def test_nothing_by_the_deadline_is_no_batch() -> None:
    queue = FakeQueue({50.0: [put("late")]})
    assert collect(queue, size=10, seconds=1, wait_until=30, clock=queue.clock) is None
    assert all(wait <= 20 for wait, _ in queue.waits)


def test_only_settled_keys_acknowledge_their_events_and_never_an_undecodable_one() -> None:
    test_event = json.dumps({"Event": "s3:TestEvent"})
    queue = FakeQueue({0.0: [put("a"), "{broken", test_event]})
    batch = collect(queue, size=10, seconds=1, wait_until=10, clock=queue.clock)
    assert batch is not None
    assert [m.body for m in batch.acknowledgeable("b", lambda key: True)] == [put("a"), test_event]
    assert [m.body for m in batch.acknowledgeable("b", None)] == [test_event]
    assert len(batch.acknowledgeable("other-bucket", None)) == 2
    assert list(batch.undecodable.values()) == [
        "not JSON (Expecting property name enclosed in double quotes)"
    ]


def test_a_message_goes_only_once_every_key_it_carries_is_settled() -> None:
    two_keys = json.loads(put("good"))
    two_keys["Records"] += json.loads(put("poison"))["Records"]
    queue = FakeQueue({0.0: [put("good"), json.dumps(two_keys), put("poison")]})
    batch = collect(queue, size=10, seconds=1, wait_until=10, clock=queue.clock)
    assert batch is not None
    kept = batch.acknowledgeable("b", lambda key: key != "poison")
    assert [m.body for m in kept] == [put("good")]


def test_a_message_received_twice_in_one_batch_counts_once_with_its_newest_receipt() -> None:
    queue = FakeQueue({0.0: [put("a")]})
    batch = collect(queue, size=10, seconds=1, wait_until=10, clock=queue.clock)
    assert batch is not None
    batch.add(Message("1", "receipt-newer", put("a"), 2))
    assert [m.receipt_handle for m in batch.messages] == ["receipt-newer"]
    assert len(batch.all_events()) == 1
