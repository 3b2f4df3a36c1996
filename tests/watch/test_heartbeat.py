"""The visibility heartbeat's timing, with a fake clock and a fake queue: nothing waits."""

from __future__ import annotations

from collections.abc import Sequence

from ingest.watch.heartbeat import Heartbeat
from ingest.watch.queue import Message


class FakeQueue:
    def __init__(self) -> None:
        self.extensions: list[tuple[list[str], int]] = []
        self.refuse = 0

    def extend(self, messages: Sequence[Message], seconds: int) -> int:
        self.extensions.append(([m.message_id for m in messages], seconds))
        return self.refuse


def message(message_id: str, received_at: float) -> Message:
    return Message(message_id, f"receipt-{message_id}", "{}", 1, received_at)


def test_each_message_is_extended_from_half_its_timeout_on_for_a_whole_timeout() -> None:
    now = [100.0]
    queue = FakeQueue()
    heartbeat = Heartbeat(queue, timeout=10, clock=lambda: now[0])
    batch = [message("early", 100.0), message("late", 104.0)]
    heartbeat.beat(batch)
    assert queue.extensions == []  # neither has used half of its visibility
    now[0] = 105.0
    heartbeat.beat(batch)
    assert queue.extensions == [(["early"], 10)]
    now[0] = 109.0
    heartbeat.beat(batch)  # 'early' was extended at 105: not due before 110
    assert queue.extensions[-1] == (["late"], 10)
    now[0] = 110.0
    heartbeat.beat(batch)
    assert queue.extensions[-1] == (["early"], 10) and heartbeat.extended == 3


def test_a_failed_extension_is_reported_and_the_batch_goes_on() -> None:
    class Broken(FakeQueue):
        def extend(self, messages: Sequence[Message], seconds: int) -> int:
            raise RuntimeError("SQS is away")

    heartbeat = Heartbeat(Broken(), timeout=2, clock=lambda: 50.0)
    heartbeat.beat([message("a", 0.0)])
    assert heartbeat.failure == "RuntimeError: SQS is away" and heartbeat.extended == 0


def test_keeping_beats_at_once_then_stops_with_the_block() -> None:
    queue = FakeQueue()
    heartbeat = Heartbeat(queue, timeout=1000)
    with heartbeat.keeping([message("stale", 0.0)]):  # received long ago (monotonic 0)
        pass
    assert queue.extensions == [(["stale"], 1000)]
