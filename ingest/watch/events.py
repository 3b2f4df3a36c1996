"""S3 event notifications as SQS delivers them: decoded, filtered, and ordered per key. Pure.

S3 sends each object's key URL-encoded with '+' for a space, at least once and in no
particular order; of two events for one key, the one with the greater `sequencer` (a hex
string; compare after left-padding the shorter with zeros) happened later. moto sends no
`sequencer`: then the event time, then the order of arrival, decide.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import unquote_plus

TEST_EVENT = "s3:TestEvent"
REMOVED = "ObjectRemoved"
_NO_TIME = datetime.min.replace(tzinfo=UTC)


class UndecodableMessage(ValueError):
    """A message body that is not an S3 event notification: it is left on the queue, so it
    lands in the dead-letter queue after the queue's maxReceiveCount."""


@dataclass(frozen=True)
class S3Event:
    """One record of a notification: what happened to which key, and when."""

    bucket: str
    key: str  # decoded
    name: str  # e.g. 'ObjectCreated:Put', 'ObjectRemoved:Delete'
    sequencer: str  # '' when the sender gave none
    time: datetime | None
    arrival: int  # position in the batch, the last tie-breaker

    @property
    def removed(self) -> bool:
        return self.name.startswith(REMOVED)

    def order(self, width: int) -> tuple[str, datetime, int]:
        """Sort key among events for the same key; `width` ≥ every sequencer's length."""
        return (self.sequencer.zfill(width), self.time or _NO_TIME, self.arrival)


def decode_key(encoded: str) -> str:
    """The key as S3 stores it: S3 URL-encodes keys in notifications, with '+' for ' '."""
    return unquote_plus(encoded)


def decode_message(body: str, arrival: int = 0) -> list[S3Event]:
    """The S3 events in one SQS message body; [] for S3's test event. Raises
    `UndecodableMessage` for anything that is not an S3 notification."""
    try:
        document = json.loads(body)
    except json.JSONDecodeError as error:
        raise UndecodableMessage(f"not JSON ({error.msg})") from None
    if not isinstance(document, dict):
        raise UndecodableMessage("not a JSON object")
    if document.get("Event") == TEST_EVENT:
        return []
    records = document.get("Records")
    if not isinstance(records, list):
        raise UndecodableMessage("no 'Records' list: not an S3 event notification")
    events = []
    for index, record in enumerate(records):
        try:
            s3 = record["s3"]
            events.append(
                S3Event(
                    bucket=s3["bucket"]["name"],
                    key=decode_key(s3["object"]["key"]),
                    name=record["eventName"],
                    sequencer=s3["object"].get("sequencer") or "",
                    time=_time(record.get("eventTime")),
                    arrival=arrival + index,
                )
            )
        except (KeyError, TypeError, ValueError) as error:
            raise UndecodableMessage(f"record {index} is not an S3 event ({error!r})") from None
    return events


def latest_per_key(events: Iterable[S3Event]) -> dict[str, S3Event]:
    """Each key's last event: a delete then a re-create of one key ends re-created."""
    by_key: dict[str, list[S3Event]] = {}
    for event in events:
        by_key.setdefault(event.key, []).append(event)
    latest = {}
    for key, candidates in by_key.items():
        width = max(len(event.sequencer) for event in candidates)
        latest[key] = max(candidates, key=lambda event: event.order(width))
    return latest


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
