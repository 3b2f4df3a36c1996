"""The documents of the bucket's event queue, as pure functions of plain values.

Two routes lead from the bucket to the queue:

- a bucket the stack creates gets an S3 event notification configuration (S3 sends to SQS);
- an adopted bucket keeps its own notification configuration, which S3 holds as one
  document the stack would replace wholesale; its events come through EventBridge (which
  the bucket's owner turns on) and a rule of the stack's that forwards them to the queue.

Either way only the one AWS service may send to the queue, and only on behalf of this
bucket (or this rule) in this account: AWS's confused-deputy guard.
"""

from __future__ import annotations

from collections.abc import Sequence

from infra.policies import IAM_VERSION, bucket_arn

# What a consumer syncs: objects added or overwritten, and objects deleted.
S3_EVENT_TYPES = ("s3:ObjectCreated:*", "s3:ObjectRemoved:*")
# The same events as EventBridge names them.
EVENTBRIDGE_DETAIL_TYPES = ("Object Created", "Object Deleted")
# Message shapes, exported as `eventsSource` for the consumer.
SOURCE_S3 = "s3"
SOURCE_EVENTBRIDGE = "eventbridge"


def notification_prefixes(prefixes: Sequence[str]) -> list[str]:
    """The prefixes to filter events by: those no other configured prefix already covers.

    S3 refuses a notification configuration whose filters overlap for the same event types
    (`images/` and `images/cats/`), and the shorter prefix delivers the longer one's events
    anyway. No prefixes means the whole bucket: one filter-less entry, `[""]`.
    """
    if not prefixes:
        return [""]
    kept: list[str] = []
    for prefix in sorted(set(prefixes), key=len):
        if not any(prefix.startswith(shorter) for shorter in kept):
            kept.append(prefix)
    return [p for p in dict.fromkeys(prefixes) if p in kept]  # in the configured order


def event_pattern(bucket: str, prefixes: Sequence[str]) -> dict:
    """The EventBridge pattern matching this bucket's object events under `prefixes`."""
    detail: dict = {"bucket": {"name": [bucket]}}
    if prefixes:
        detail["object"] = {"key": [{"prefix": p} for p in notification_prefixes(prefixes)]}
    return {"source": ["aws.s3"], "detail-type": list(EVENTBRIDGE_DETAIL_TYPES), "detail": detail}


def _only_service_sends(
    queue_arn: str, service: str, source_arn: str, account_id: str, sid: str
) -> dict:
    return {
        "Version": IAM_VERSION,
        "Statement": [
            {
                "Sid": sid,
                "Effect": "Allow",
                "Principal": {"Service": service},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {
                    "ArnLike": {"aws:SourceArn": source_arn},
                    "StringEquals": {"aws:SourceAccount": account_id},
                },
            }
        ],
    }


def s3_queue_policy(queue_arn: str, bucket: str, account_id: str) -> dict:
    """Only S3, and only for this bucket in this account, may send to the queue.

    AWS's documented statement (not the `Principal: *` example): the service principal,
    `sqs:SendMessage` only, `aws:SourceArn` the bucket and `aws:SourceAccount` its owner.
    The account's own principals (the consumer) are granted by their IAM policies.
    """
    return _only_service_sends(
        queue_arn, "s3.amazonaws.com", bucket_arn(bucket), account_id, "S3SendsBucketEvents"
    )


def eventbridge_queue_policy(queue_arn: str, rule_arn: str, account_id: str) -> dict:
    """Only EventBridge, and only for the stack's rule in this account, may send to the queue."""
    return _only_service_sends(
        queue_arn, "events.amazonaws.com", rule_arn, account_id, "EventBridgeForwardsBucketEvents"
    )


def redrive_policy(dead_letter_queue_arn: str, max_receive_count: int) -> dict:
    """A message received `max_receive_count` times without being deleted moves to the DLQ."""
    return {"deadLetterTargetArn": dead_letter_queue_arn, "maxReceiveCount": max_receive_count}


def redrive_allow_policy(source_queue_arn: str) -> dict:
    """The dead-letter queue takes failed messages from the events queue only."""
    return {"redrivePermission": "byQueue", "sourceQueueArns": [source_queue_arn]}
