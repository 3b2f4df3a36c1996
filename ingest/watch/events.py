"""Bucket events as SQS delivers them: decoded, filtered, and ordered per key. Pure.

Two shapes, told apart per message (a queue may carry both while a stack moves from one to
the other; the stack output `eventsSource` says which to expect):

- S3 event notifications (`eventsSource: s3`): `{"Records": [...]}`, each record's key
  URL-encoded with '+' for a space; `s3:TestEvent` when the configuration is set.
- EventBridge events (`eventsSource: eventbridge`, an adopted bucket): one event per
  message, `{"detail-type": "Object Created" | "Object Deleted", "source": "aws.s3", "time":
  ISO 8601, "detail": {"bucket": {"name"}, "object": {"key", "sequencer"}, "reason"}}`. The
  key is the key itself, not URL-encoded (AWS's EventBridge event examples; moto 5.2.5
  sends it so, with a numeric `time` and one constant `sequencer`). Other S3 detail types
  (tags, ACLs, restores, storage classes) change nothing the Dataset mirrors: no event.

Both are delivered at least once and in no particular order; of two events for one key,
the one with the greater `sequencer` (a hex string; compare after left-padding the shorter
with zeros) happened later. Without a `sequencer` (moto's notifications) or with equal ones,
the event time, then the order of arrival, decide.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

TEST_EVENT = "s3:TestEvent"
CREATED, REMOVED = "ObjectCreated", "ObjectRemoved"
# EventBridge's detail types, as the S3 event names' families.
_EVENTBRIDGE_NAMES = {"Object Created": CREATED, "Object Deleted": REMOVED}
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
    """The bucket events in one SQS message body, in either shape; [] for S3's test event
    and for EventBridge events of other kinds. Raises `UndecodableMessage` for anything else."""
    try:
        document = json.loads(body)
    except json.JSONDecodeError as error:
        raise UndecodableMessage(f"not JSON ({error.msg})") from None
    if not isinstance(document, dict):
        raise UndecodableMessage("not a JSON object")
    if document.get("Event") == TEST_EVENT:
        return []
    if "detail-type" in document:
        return _eventbridge(document, arrival)
    records = document.get("Records")
    if not isinstance(records, list):
        raise UndecodableMessage(
            "neither an S3 event notification ('Records') nor an EventBridge event ('detail-type')"
        )
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


def _eventbridge(document: dict[str, Any], arrival: int) -> list[S3Event]:
    if document.get("source") != "aws.s3":
        raise UndecodableMessage(f"an EventBridge event from {document.get('source')!r}, not S3")
    family = _EVENTBRIDGE_NAMES.get(document["detail-type"])
    if family is None:
        return []
    try:
        detail = document["detail"]
        key = detail["object"]["key"]
        if not isinstance(key, str):
            raise TypeError("a string key")
        return [
            S3Event(
                bucket=detail["bucket"]["name"],
                key=key,  # as stored: EventBridge does not URL-encode it
                name=f"{family}:{detail.get('reason') or ''}",
                sequencer=detail["object"].get("sequencer") or "",
                time=_time(document.get("time")),
                arrival=arrival,
            )
        ]
    except (KeyError, TypeError, ValueError) as error:
        raise UndecodableMessage(f"an EventBridge S3 event without {error!r}") from None


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


def _time(value: str | float | None) -> datetime | None:
    """ISO 8601 as AWS writes it; seconds since the epoch as moto's EventBridge writes it."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
