"""The thin SQS adapter `ingest watch` reads S3 events through: long polls, batch deletes,
visibility extensions, and the dead-letter queue's depth. Nothing here decides anything."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ingest.errors import UserError

# SQS's own limits: 20 s is the longest long poll, 10 messages per receive or delete call.
LONG_POLL_SECONDS = 20
MAX_MESSAGES = 10


@dataclass(frozen=True)
class Message:
    message_id: str
    receipt_handle: str
    body: str
    receive_count: int  # 1 the first time; the queue's redrive moves it on after maxReceiveCount
    received_at: float = 0.0  # time.monotonic() when received: its visibility runs from then


class EventQueue:
    def __init__(self, sqs: Any, url: str, dead_letter_url: str | None = None) -> None:
        self._sqs = sqs
        self.url = url
        self.dead_letter_url = dead_letter_url

    def receive(self, wait_seconds: int, max_messages: int = MAX_MESSAGES) -> list[Message]:
        """Up to `max_messages` (≤ 10), waiting up to `wait_seconds` (≤ 20) for the first."""
        with _sqs_errors(self.url):
            received_at = time.monotonic()  # before the call: the visibility may start earlier
            answer = self._sqs.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=max(1, min(MAX_MESSAGES, max_messages)),
                WaitTimeSeconds=max(0, min(LONG_POLL_SECONDS, wait_seconds)),
                MessageSystemAttributeNames=["ApproximateReceiveCount"],
            )
        return [
            Message(
                message["MessageId"],
                message["ReceiptHandle"],
                message.get("Body", ""),
                int(message.get("Attributes", {}).get("ApproximateReceiveCount", 1)),
                received_at,
            )
            for message in answer.get("Messages", [])
        ]

    def visibility_timeout(self) -> int:
        """The queue's VisibilityTimeout: how long a received message stays hidden."""
        with _sqs_errors(self.url):
            attributes = self._sqs.get_queue_attributes(
                QueueUrl=self.url, AttributeNames=["VisibilityTimeout"]
            )["Attributes"]
        return int(attributes["VisibilityTimeout"])

    def extend(self, messages: Sequence[Message], seconds: int) -> int:
        """Hide `messages` for `seconds` more from now; return how many SQS refused (one whose
        receipt handle is no longer current: it was received again, and that delivery counts)."""
        refused = 0
        for start in range(0, len(messages), MAX_MESSAGES):
            chunk = messages[start : start + MAX_MESSAGES]
            with _sqs_errors(self.url):
                answer = self._sqs.change_message_visibility_batch(
                    QueueUrl=self.url,
                    Entries=[
                        {
                            "Id": str(index),
                            "ReceiptHandle": message.receipt_handle,
                            "VisibilityTimeout": seconds,
                        }
                        for index, message in enumerate(chunk)
                    ],
                )
            refused += len(answer.get("Failed", []))
        return refused

    def delete(self, messages: Sequence[Message]) -> int:
        """Delete `messages` (their outcome is committed); return how many SQS refused. A
        refused one comes back and is processed again, which changes nothing."""
        refused = 0
        for start in range(0, len(messages), MAX_MESSAGES):
            chunk = messages[start : start + MAX_MESSAGES]
            with _sqs_errors(self.url):
                answer = self._sqs.delete_message_batch(
                    QueueUrl=self.url,
                    Entries=[
                        {"Id": str(index), "ReceiptHandle": message.receipt_handle}
                        for index, message in enumerate(chunk)
                    ],
                )
            refused += len(answer.get("Failed", []))
        return refused

    def dead_letters(self) -> int | None:
        """Messages in the dead-letter queue (approximate, as SQS counts), if it is known."""
        if self.dead_letter_url is None:
            return None
        with _sqs_errors(self.dead_letter_url):
            attributes = self._sqs.get_queue_attributes(
                QueueUrl=self.dead_letter_url, AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"])


@contextmanager
def _sqs_errors(url: str) -> Iterator[None]:
    try:
        yield
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if "NonExistentQueue" in code:
            raise UserError(
                f"SQS queue {url} does not exist: enable `encord-s3:events` and run `pulumi up`, "
                "or pass the stack's eventsQueueUrl with --queue-url"
            ) from None
        if code in ("AccessDenied", "AccessDeniedException", "InvalidClientTokenId"):
            raise UserError(
                f"SQS refused access to {url} ({code}): the credentials need sqs:ReceiveMessage, "
                "sqs:DeleteMessage, sqs:ChangeMessageVisibility and sqs:GetQueueAttributes on it"
            ) from None
        raise
    except BotoCoreError as error:
        raise UserError(f"cannot reach SQS at {url}: {error}") from None
