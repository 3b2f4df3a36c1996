"""What the `ingest watch` tests share: the bucket's event queue in moto, and `watch` as a
child process whose JSON lines the test reads as they come."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.events import event_pattern
from sandbox import KeyPair, Sandbox
from standins.local_aws import LocalAws
from tests.run.support import Bucket, run_arguments

REPO = Path(__file__).resolve().parents[2]
VISIBILITY_SECONDS = 2
MAX_RECEIVE_COUNT = 2


@dataclass(frozen=True)
class EventQueues:
    url: str
    dead_letter_url: str

    def depth(self, aws: LocalAws, url: str | None = None) -> int:
        attributes = aws.client("sqs").get_queue_attributes(
            QueueUrl=url or self.url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )


def connect_events(
    bucket: Bucket, visibility_seconds: int = VISIBILITY_SECONDS, eventbridge: bool = False
) -> EventQueues:
    """What the stack builds with `encord-s3:events.enabled`: a queue with a dead-letter
    queue (maxReceiveCount 2, short visibility), the bucket's notifications to it (or, with
    `eventbridge`, as for an adopted bucket: its EventBridge notifications and a rule
    forwarding them), and the stack outputs naming both."""
    sqs = bucket.aws.client("sqs")
    dead = sqs.create_queue(QueueName=f"{bucket.name}-dlq")["QueueUrl"]
    dead_arn = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    url = sqs.create_queue(
        QueueName=f"{bucket.name}-events",
        Attributes={
            "VisibilityTimeout": str(visibility_seconds),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dead_arn, "maxReceiveCount": str(MAX_RECEIVE_COUNT)}
            ),
        },
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    if eventbridge:
        events = bucket.aws.client("events")
        events.put_rule(
            Name=f"{bucket.name}-objects", EventPattern=json.dumps(event_pattern(bucket.name, []))
        )
        events.put_targets(Rule=f"{bucket.name}-objects", Targets=[{"Id": "queue", "Arn": arn}])
        configuration: dict[str, Any] = {"EventBridgeConfiguration": {}}
    else:
        configuration = {
            "QueueConfigurations": [
                {"QueueArn": arn, "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]}
            ]
        }
    bucket.aws.client("s3").put_bucket_notification_configuration(
        Bucket=bucket.name, NotificationConfiguration=configuration
    )
    outputs = json.loads(bucket.outputs.read_text())
    outputs.update(
        eventsQueueUrl=url,
        eventsDeadLetterQueueUrl=dead,
        eventsSource="eventbridge" if eventbridge else "s3",
    )
    bucket.outputs.write_text(json.dumps(outputs))
    return EventQueues(url, dead)


@dataclass
class WatchProcess:
    """`python -m ingest watch --json ...` in a child process; its JSON lines in `lines`."""

    process: subprocess.Popen
    lines: list[dict[str, Any]] = field(default_factory=list)
    _arrived: queue.Queue = field(default_factory=queue.Queue)
    stderr: str = ""

    def __post_init__(self) -> None:
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._arrived.put(json.loads(line))

    def wait_for(self, matches: Callable[[dict[str, Any]], bool], timeout: float = 60) -> dict:
        """The first line (from now on, or already read) that `matches`."""
        for line in self.lines:
            if matches(line):
                return line
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._arrived.get(timeout=0.2)
            except queue.Empty:
                if self.process.poll() is not None and self._arrived.empty():
                    break
                continue
            self.lines.append(line)
            if matches(line):
                return line
        raise AssertionError(f"no such line; seen {self.lines}; stderr: {self._stderr()}")

    def finish(self, timeout: float = 120) -> int:
        code = self.process.wait(timeout)
        while not self._arrived.empty() or (self.process.stdout and not self.process.stdout.closed):
            try:
                self.lines.append(self._arrived.get(timeout=0.5))
            except queue.Empty:
                break
        self._stderr()
        return code

    def signal(self, number: int) -> None:
        self.process.send_signal(number)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def batches(self) -> list[dict[str, Any]]:
        return [line for line in self.lines if line["event"] == "batch"]

    def _stderr(self) -> str:
        if self.process.poll() is not None and self.process.stderr and not self.stderr:
            self.stderr = self.process.stderr.read()
        return self.stderr


def start_watch(
    bucket: Bucket, out: Path, sandbox: Sandbox, key_pair: KeyPair, *args: str
) -> WatchProcess:
    command = [
        sys.executable,
        "-m",
        "ingest",
        *run_arguments("watch", bucket, out),
        "--encord-domain",
        sandbox.url,
        "--ssh-key-file",
        str(key_pair.private_key_path),
        "--json",
        "--watch-batch-seconds",
        "1",
        *args,
    ]
    process = subprocess.Popen(
        command,
        cwd=REPO,
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return WatchProcess(process)


def reconciled(line: dict[str, Any]) -> bool:
    return line["event"] == "reconcile"
