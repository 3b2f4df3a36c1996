"""The events queue applied to moto through the bridge: S3 (or EventBridge) delivers the
bucket's object events under the stack's prefixes, and only those, to the queue.

moto delivers S3 notifications to SQS and EventBridge in server mode, synchronously with the
request that caused them, so a message is in the queue as soon as the put returns. It does
not evaluate the queue policy (checked on the document in test_events.py).
"""

from __future__ import annotations

import json
import uuid
from urllib.parse import unquote_plus

import pytest
from stack_harness import EXTERNAL_ID

from infra import events
from standins.local_aws import ANONYMOUS, LocalAws
from standins.moto_bridge import deploy

ON = {"enabled": True}


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def deploy_demo(aws: LocalAws, settings: dict) -> dict:
    overrides = {"bucketName": unique("events"), "roleName": unique("encord-events")} | settings
    return deploy(
        "demo", aws.endpoint_url, ANONYMOUS, overrides, {"externalId": EXTERNAL_ID}, quiet=True
    )


def receive(sqs, queue_url: str, wait: int = 1) -> list[dict]:
    """Every message waiting in the queue (deleted once read), bodies parsed."""
    bodies = []
    while True:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait
        ).get("Messages", [])
        if not messages:
            return bodies
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def s3_events(bodies: list[dict]) -> list[tuple[str, str]]:
    """(event name, key) of S3 notification messages; S3's test event is skipped."""
    return [
        (record["eventName"], unquote_plus(record["s3"]["object"]["key"]))
        for body in bodies
        if body.get("Event") != "s3:TestEvent"
        for record in body["Records"]
    ]


def attributes(sqs, queue_url: str) -> dict:
    return sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]


# A created bucket: S3 sends to the queue ------------------------------------------------


@pytest.fixture(scope="module")
def created(aws):
    settings = {"prefixes": ["images/", "videos/"], "versioning": False, "events": ON}
    outputs = deploy_demo(aws, settings)
    sqs = aws.client("sqs")
    receive(sqs, outputs["eventsQueueUrl"])  # S3's test event, sent when the config is put
    return outputs


def test_the_notification_configuration_filters_by_each_prefix(aws, created):
    stored = aws.client("s3").get_bucket_notification_configuration(Bucket=created["bucketName"])
    # AWS answers the rule's name as `Prefix`, moto as it was put (`prefix`).
    assert [
        (
            c["QueueArn"],
            sorted(c["Events"]),
            [(r["Name"].lower(), r["Value"]) for r in c["Filter"]["Key"]["FilterRules"]],
        )
        for c in stored["QueueConfigurations"]
    ] == [
        (
            created["eventsQueueArn"],
            ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"],
            [("prefix", prefix)],
        )
        for prefix in ("images/", "videos/")
    ]


def test_an_object_under_a_prefix_is_an_event_and_one_outside_is_not(aws, created):
    s3, sqs, bucket = aws.client("s3"), aws.client("sqs"), created["bucketName"]
    s3.put_object(Bucket=bucket, Key="images/cat 1.jpg", Body=b"pixels")
    s3.put_object(Bucket=bucket, Key="private/payroll.csv", Body=b"secret")
    s3.put_object(Bucket=bucket, Key="images-private/x.jpg", Body=b"pixels")
    s3.delete_object(Bucket=bucket, Key="images/cat 1.jpg")
    assert s3_events(receive(sqs, created["eventsQueueUrl"])) == [
        ("ObjectCreated:Put", "images/cat 1.jpg"),
        ("ObjectRemoved:Delete", "images/cat 1.jpg"),
    ]


def test_queues_are_encrypted_long_polled_and_redrive_to_the_dead_letter_queue(aws, created):
    sqs = aws.client("sqs")
    queue = attributes(sqs, created["eventsQueueUrl"])
    dlq = attributes(sqs, created["eventsDeadLetterQueueUrl"])
    assert queue["QueueArn"] == created["eventsQueueArn"]
    assert dlq["QueueArn"] == created["eventsDeadLetterQueueArn"]
    assert queue["SqsManagedSseEnabled"] == dlq["SqsManagedSseEnabled"] == "true"
    assert queue["ReceiveMessageWaitTimeSeconds"] == "20"
    assert queue["VisibilityTimeout"] == "300"
    assert queue["MessageRetentionPeriod"] == str(4 * 86400)
    assert dlq["MessageRetentionPeriod"] == str(14 * 86400)
    assert json.loads(queue["RedrivePolicy"]) == events.redrive_policy(dlq["QueueArn"], 5)


def test_the_queue_policy_is_the_documented_one(aws, created):
    stored = attributes(aws.client("sqs"), created["eventsQueueUrl"])["Policy"]
    account = created["roleArn"].split(":")[4]
    assert json.loads(stored) == events.s3_queue_policy(
        created["eventsQueueArn"], created["bucketName"], account
    )


def test_a_message_received_too_often_moves_to_the_dead_letter_queue(aws):
    outputs = deploy_demo(
        aws, {"versioning": False, "events": {"enabled": True, "maxReceiveCount": 2}}
    )
    s3, sqs, queue = aws.client("s3"), aws.client("sqs"), outputs["eventsQueueUrl"]
    receive(sqs, queue)
    s3.put_object(Bucket=outputs["bucketName"], Key="poison.jpg", Body=b"x")
    for _ in range(2):  # a consumer that fails: receives, never deletes
        assert len(sqs.receive_message(QueueUrl=queue, VisibilityTimeout=0)["Messages"]) == 1
    assert sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=0).get("Messages", []) == []
    assert s3_events(receive(sqs, outputs["eventsDeadLetterQueueUrl"])) == [
        ("ObjectCreated:Put", "poison.jpg")
    ]


# An adopted bucket: EventBridge forwards to the queue -------------------------------------


@pytest.fixture(scope="module")
def adopted(aws):
    """An existing bucket whose owner has their own notification and has turned EventBridge on."""
    s3, sqs, bucket = aws.client("s3"), aws.client("sqs"), unique("adopted")
    s3.create_bucket(Bucket=bucket)
    own_queue = sqs.create_queue(QueueName=unique("owners-queue"))["QueueUrl"]
    own_arn = attributes(sqs, own_queue)["QueueArn"]
    owners = {
        "QueueConfigurations": [
            {"Id": "owners", "QueueArn": own_arn, "Events": ["s3:ObjectCreated:*"]}
        ],
        "EventBridgeConfiguration": {},
    }
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=owners)
    before = s3.get_bucket_notification_configuration(Bucket=bucket)
    before.pop("ResponseMetadata")
    receive(sqs, own_queue)
    settings = {"createBucket": False, "bucketName": bucket, "versioning": False}
    events_on = ON | {"eventBridgeOnBucket": True}
    outputs = deploy_demo(aws, settings | {"prefixes": ["images/"], "events": events_on})
    return outputs, before, own_queue


def test_the_adopted_bucket_keeps_its_own_notification_configuration(aws, adopted):
    outputs, before, _ = adopted
    after = aws.client("s3").get_bucket_notification_configuration(Bucket=outputs["bucketName"])
    after.pop("ResponseMetadata")
    assert after == before
    assert outputs["eventsSource"] == "eventbridge"


def test_eventbridge_delivers_objects_under_the_prefixes_only(aws, adopted):
    outputs, _, own_queue = adopted
    s3, sqs, bucket = aws.client("s3"), aws.client("sqs"), outputs["bucketName"]
    s3.put_object(Bucket=bucket, Key="images/dog.jpg", Body=b"pixels")
    s3.put_object(Bucket=bucket, Key="private/payroll.csv", Body=b"secret")
    delivered = receive(sqs, outputs["eventsQueueUrl"])
    assert [(e["detail-type"], e["detail"]["object"]["key"]) for e in delivered] == [
        ("Object Created", "images/dog.jpg")
    ]
    assert all(e["detail"]["bucket"]["name"] == bucket for e in delivered)
    assert len(receive(sqs, own_queue)) == 2  # the owner's own notification still works


def test_the_rule_targets_the_queue_and_the_queue_policy_names_the_rule(aws, adopted):
    outputs, _, _ = adopted
    eventbridge, sqs = aws.client("events"), aws.client("sqs")
    rules = eventbridge.list_rule_names_by_target(TargetArn=outputs["eventsQueueArn"])
    (rule_name,) = rules["RuleNames"]
    rule = eventbridge.describe_rule(Name=rule_name)
    assert json.loads(rule["EventPattern"]) == events.event_pattern(
        outputs["bucketName"], ["images/"]
    )
    stored = json.loads(attributes(sqs, outputs["eventsQueueUrl"])["Policy"])
    account = outputs["roleArn"].split(":")[4]
    assert stored == events.eventbridge_queue_policy(
        outputs["eventsQueueArn"], rule["Arn"], account
    )
