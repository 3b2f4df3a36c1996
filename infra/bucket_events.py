"""`BucketEvents`: the bucket's object events in an SQS queue, with a dead-letter queue.

Both queues are encrypted with SSE-SQS (SQS-owned keys), even when the stack has a KMS key
for the bucket: a customer-managed key on the queue would need S3 (or EventBridge) granted
`kms:GenerateDataKey` and `kms:Decrypt` in that key's policy, which this stack does not own,
and the messages hold keys, sizes and ETags, never object content. Encord's role gets
nothing here: the consumer reads the queue with the deploying account's credentials.
"""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from infra import events
from infra.config import EventsSettings

# The longest long-poll SQS allows: fewer empty receives.
RECEIVE_WAIT_SECONDS = 20
SECONDS_PER_DAY = 24 * 60 * 60
# SQS's maximum. A standard queue's message keeps its first enqueue time in the DLQ, so the
# DLQ keeps messages as long as SQS allows, past the events queue's own retention.
DEAD_LETTER_RETENTION_SECONDS = 14 * SECONDS_PER_DAY
EVENTBRIDGE_TARGET_ID = "encord-events-queue"


class BucketEvents(pulumi.ComponentResource):
    """Object created/removed events of `bucket_name` under `prefixes` delivered to a queue.

    `created_bucket`: the stack owns the bucket's notification configuration, and S3 sends
    to the queue itself. Otherwise (an adopted bucket, whose owner has turned on its
    EventBridge notifications) an EventBridge rule forwards the bucket's events.
    """

    def __init__(
        self,
        name: str,
        settings: EventsSettings,
        bucket_name: pulumi.Output[str],
        prefixes: tuple[str, ...],
        created_bucket: bool,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("encord-s3:index:BucketEvents", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        account_id = aws.get_caller_identity_output(
            opts=pulumi.InvokeOutputOptions(parent=self)
        ).account_id

        self.dead_letter_queue = aws.sqs.Queue(
            f"{name}-dlq",
            message_retention_seconds=DEAD_LETTER_RETENTION_SECONDS,
            sqs_managed_sse_enabled=True,
            opts=child,
        )
        self.queue = aws.sqs.Queue(
            f"{name}-queue",
            message_retention_seconds=settings.retention_days * SECONDS_PER_DAY,
            visibility_timeout_seconds=settings.visibility_timeout_seconds,
            receive_wait_time_seconds=RECEIVE_WAIT_SECONDS,
            sqs_managed_sse_enabled=True,
            redrive_policy=self.dead_letter_queue.arn.apply(
                lambda dlq: json.dumps(events.redrive_policy(dlq, settings.max_receive_count))
            ),
            opts=child,
        )
        aws.sqs.RedriveAllowPolicy(
            f"{name}-dlq-sources",
            queue_url=self.dead_letter_queue.url,
            redrive_allow_policy=self.queue.arn.apply(
                lambda arn: json.dumps(events.redrive_allow_policy(arn))
            ),
            opts=child,
        )
        if created_bucket:
            self.source = events.SOURCE_S3
            self._s3_notifications(name, bucket_name, prefixes, account_id, child)
        else:
            self.source = events.SOURCE_EVENTBRIDGE
            self._eventbridge_rule(name, bucket_name, prefixes, account_id, child)
        self.register_outputs(
            {"queueArn": self.queue.arn, "deadLetterQueueArn": self.dead_letter_queue.arn}
        )

    def _s3_notifications(
        self,
        name: str,
        bucket_name: pulumi.Output[str],
        prefixes: tuple[str, ...],
        account_id: pulumi.Output[str],
        child: pulumi.ResourceOptions,
    ) -> None:
        policy = aws.sqs.QueuePolicy(
            f"{name}-queue-policy",
            queue_url=self.queue.url,
            policy=pulumi.Output.all(self.queue.arn, bucket_name, account_id).apply(
                lambda args: json.dumps(events.s3_queue_policy(args[0], args[1], args[2]))
            ),
            opts=child,
        )
        queues: list[aws.s3.BucketNotificationQueueArgsDict] = []
        for index, prefix in enumerate(events.notification_prefixes(prefixes)):
            queue: aws.s3.BucketNotificationQueueArgsDict = {
                "id": f"encord-events-{index}",
                "queue_arn": self.queue.arn,
                "events": list(events.S3_EVENT_TYPES),
            }
            if prefix:
                queue["filter_prefix"] = prefix
            queues.append(queue)
        aws.s3.BucketNotification(
            f"{name}-notification",
            bucket=bucket_name,
            queues=queues,
            # S3 checks that it may send to the queue when the configuration is put.
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[policy])),
        )

    def _eventbridge_rule(
        self,
        name: str,
        bucket_name: pulumi.Output[str],
        prefixes: tuple[str, ...],
        account_id: pulumi.Output[str],
        child: pulumi.ResourceOptions,
    ) -> None:
        rule = aws.cloudwatch.EventRule(
            f"{name}-rule",
            description="Forwards the bucket's object events to the Encord sync queue",
            event_pattern=bucket_name.apply(
                lambda bucket: json.dumps(events.event_pattern(bucket, prefixes))
            ),
            opts=child,
        )
        policy = aws.sqs.QueuePolicy(
            f"{name}-queue-policy",
            queue_url=self.queue.url,
            policy=pulumi.Output.all(self.queue.arn, rule.arn, account_id).apply(
                lambda args: json.dumps(events.eventbridge_queue_policy(args[0], args[1], args[2]))
            ),
            opts=child,
        )
        aws.cloudwatch.EventTarget(
            f"{name}-target",
            rule=rule.name,
            arn=self.queue.arn,
            target_id=EVENTBRIDGE_TARGET_ID,
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[policy])),
        )
