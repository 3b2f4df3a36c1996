"""The events queue (issue 14): its documents for any prefixes, and what the real program
registers under Pulumi's mocks for every stack file and each route (S3 or EventBridge)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stack_harness import (
    ACCOUNT_ID,
    BUCKET,
    EVENT_RULE,
    EVENT_TARGET,
    EVENTS_TYPES,
    NOTIFICATION,
    QUEUE,
    QUEUE_POLICY,
    REDRIVE_ALLOW_POLICY,
    STACKS,
    committed_config,
    document,
    run_stack,
)
from test_config import bad

from infra import events

BUCKET_NAME = "acme-data"
QUEUE_ARN = f"arn:aws:sqs:eu-west-2:{ACCOUNT_ID}:encord-events"
RULE_ARN = f"arn:aws:events:eu-west-2:{ACCOUNT_ID}:rule/encord-events"
ON = {"enabled": True}
ADOPTED = {"createBucket": False, "bucketName": "acme-existing", "versioning": False}

folder = st.text(st.sampled_from("abc-_."), min_size=1, max_size=3)
prefix = st.lists(folder, min_size=1, max_size=3).map(lambda parts: "/".join(parts) + "/")


# The pure documents ------------------------------------------------------------------------


@given(prefixes=st.lists(prefix, max_size=6))
def test_notification_prefixes_cover_every_prefix_and_never_overlap(prefixes):
    kept = events.notification_prefixes(prefixes)
    if not prefixes:
        assert kept == [""]  # the whole bucket, unfiltered
        return
    assert set(kept) <= set(prefixes) and len(kept) == len(set(kept))
    for configured in prefixes:  # every configured prefix's events are delivered...
        assert any(configured.startswith(k) for k in kept)
    for a in kept:  # ...by exactly one filter (S3 refuses overlapping ones)
        assert [b for b in kept if a.startswith(b)] == [a]


def test_notification_prefixes_keep_the_configured_order():
    assert events.notification_prefixes(["videos/", "images/cats/", "images/"]) == [
        "videos/",
        "images/",
    ]


@given(
    bucket=st.sampled_from([BUCKET_NAME, "a.b-c"]), account=st.from_regex(r"\d{12}", fullmatch=True)
)
def test_s3_queue_policy_lets_only_s3_send_for_this_bucket_and_account(bucket, account):
    (statement,) = events.s3_queue_policy(QUEUE_ARN, bucket, account)["Statement"]
    assert statement == {
        "Sid": "S3SendsBucketEvents",
        "Effect": "Allow",
        "Principal": {"Service": "s3.amazonaws.com"},  # never "*"
        "Action": "sqs:SendMessage",
        "Resource": QUEUE_ARN,
        "Condition": {
            "ArnLike": {"aws:SourceArn": f"arn:aws:s3:::{bucket}"},
            "StringEquals": {"aws:SourceAccount": account},
        },
    }


def test_eventbridge_queue_policy_lets_only_the_rule_send():
    (statement,) = events.eventbridge_queue_policy(QUEUE_ARN, RULE_ARN, ACCOUNT_ID)["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage" and statement["Resource"] == QUEUE_ARN
    assert statement["Condition"] == {
        "ArnLike": {"aws:SourceArn": RULE_ARN},
        "StringEquals": {"aws:SourceAccount": ACCOUNT_ID},
    }


@given(prefixes=st.lists(prefix, max_size=4))
def test_event_pattern_matches_this_bucket_under_the_prefixes(prefixes):
    pattern = events.event_pattern(BUCKET_NAME, prefixes)
    assert pattern["source"] == ["aws.s3"]
    assert pattern["detail-type"] == ["Object Created", "Object Deleted"]
    assert pattern["detail"]["bucket"] == {"name": [BUCKET_NAME]}
    if prefixes:
        keys = pattern["detail"]["object"]["key"]
        assert keys == [{"prefix": p} for p in events.notification_prefixes(prefixes)]
    else:
        assert "object" not in pattern["detail"]


def test_redrive_documents():
    assert events.redrive_policy("arn:dlq", 5) == {
        "deadLetterTargetArn": "arn:dlq",
        "maxReceiveCount": 5,
    }
    assert events.redrive_allow_policy(QUEUE_ARN) == {
        "redrivePermission": "byQueue",
        "sourceQueueArns": [QUEUE_ARN],
    }


# Config ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"events": {"enabled": True, "maxReceiveCount": 0}},
            "encord-s3:events.maxReceiveCount must be 1-1000 (receives before the DLQ). "
            "Fix: pulumi config set --path 'encord-s3:events.maxReceiveCount' <receives, e.g. 5>",
        ),
        (
            {"events": {"enabled": True, "visibilityTimeoutSeconds": 43201}},
            "encord-s3:events.visibilityTimeoutSeconds must be 1-43200 seconds (SQS's limit). "
            "Fix: pulumi config set --path 'encord-s3:events.visibilityTimeoutSeconds' <seconds, e.g. 300>",
        ),
        (
            {"events": {"enabled": True, "retentionDays": 15}},
            "encord-s3:events.retentionDays must be 1-14 days (SQS's limit). "
            "Fix: pulumi config set --path 'encord-s3:events.retentionDays' <days, e.g. 4>",
        ),
        (
            {"events": {"enabled": "yes"}},
            "encord-s3:events.enabled must be true or false. "
            "Fix: pulumi config set --path 'encord-s3:events.enabled' true|false",
        ),
        (
            {"events": "on"},
            "encord-s3:events must be a mapping of settings. "
            "Fix: pulumi config set --path 'encord-s3:events.enabled' true",
        ),
        (
            {"events": {"enabled": True, "deadLetter": True}},
            "encord-s3:events.deadLetter is not a setting of this program (known: enabled, "
            "eventBridgeOnBucket, maxReceiveCount, retentionDays, visibilityTimeoutSeconds). "
            "Fix: pulumi config rm --path 'encord-s3:events.deadLetter'",
        ),
        (
            {**ADOPTED, "events": ON},
            "encord-s3:events on an adopted bucket (createBucket is false) need its EventBridge "
            "notifications, which the bucket's owner turns on (README: Events): the stack never "
            "replaces a bucket's notification configuration. "
            "Fix: pulumi config set --path 'encord-s3:events.eventBridgeOnBucket' true",
        ),
        (
            {"events": {"enabled": True, "eventBridgeOnBucket": True}},
            "encord-s3:events.eventBridgeOnBucket only applies to an adopted bucket (createBucket "
            "is false): a created bucket sends its events to the queue itself. "
            "Fix: pulumi config rm --path 'encord-s3:events.eventBridgeOnBucket'",
        ),
    ],
    ids=lambda value: str(value)[:50] if isinstance(value, dict) else "",
)
def test_bad_events_setting_names_the_key_and_the_fix(settings, message):
    assert bad(**settings) == message


# Every committed stack ---------------------------------------------------------------------


@pytest.fixture(scope="module", params=STACKS)
def stack_run(request):
    return request.param, run_stack(request.param)


def events_config(stack: str) -> dict:
    return committed_config(stack).get("encord-s3:events", {})


def test_prod_is_the_committed_example_and_events_are_off_by_default():
    # prod: the committed example; demo: `make demo` shows an object arriving through events.
    assert events_config("prod")["enabled"] is True
    assert events_config("demo")["enabled"] is True
    assert not any(events_config(stack).get("enabled") for stack in set(STACKS) - {"prod", "demo"})


def test_events_resources_exist_only_when_enabled(stack_run):
    stack, run = stack_run
    registered = {r.type for r in run.resources if r.type in EVENTS_TYPES}
    if not events_config(stack).get("enabled"):
        assert registered == set()
        assert not any(name.startswith("events") for name in run.outputs)
        return
    adopted = committed_config(stack).get("encord-s3:createBucket") is False
    route = {EVENT_RULE, EVENT_TARGET} if adopted else {NOTIFICATION}
    assert registered == {QUEUE, QUEUE_POLICY, REDRIVE_ALLOW_POLICY} | route
    check_queues(run, events_config(stack))
    assert run.outputs["eventsSource"] == ("eventbridge" if adopted else "s3")


def queues(run):
    """The events queue and its dead-letter queue."""
    by_name = {q.name.rsplit("-", 1)[-1]: q for q in run.of_type(QUEUE)}
    return by_name["queue"], by_name["dlq"]


def check_queues(run, config: dict) -> None:
    queue, dlq = queues(run)
    assert queue.inputs["sqsManagedSseEnabled"] is True and dlq.inputs["sqsManagedSseEnabled"]
    assert "kmsMasterKeyId" not in queue.inputs  # SSE-SQS even with the bucket's KMS key
    assert queue.inputs["receiveWaitTimeSeconds"] == 20
    assert queue.inputs["visibilityTimeoutSeconds"] == config.get("visibilityTimeoutSeconds", 300)
    assert queue.inputs["messageRetentionSeconds"] == config.get("retentionDays", 4) * 86400
    assert dlq.inputs["messageRetentionSeconds"] == 14 * 86400
    assert json.loads(queue.inputs["redrivePolicy"]) == {
        "deadLetterTargetArn": dlq.state["arn"],
        "maxReceiveCount": config.get("maxReceiveCount", 5),
    }
    allow = run.one(REDRIVE_ALLOW_POLICY)
    assert allow.inputs["queueUrl"] == dlq.state["url"]
    assert json.loads(allow.inputs["redriveAllowPolicy"]) == events.redrive_allow_policy(
        queue.state["arn"]
    )
    assert run.outputs["eventsQueueUrl"] == queue.state["url"]
    assert run.outputs["eventsQueueArn"] == queue.state["arn"]
    assert run.outputs["eventsDeadLetterQueueUrl"] == dlq.state["url"]
    assert run.outputs["eventsDeadLetterQueueArn"] == dlq.state["arn"]


# A created bucket: S3 notifications ---------------------------------------------------------


def test_created_bucket_notifies_the_queue_for_each_prefix_after_the_queue_policy():
    run = run_stack("dev", {"events": ON, "prefixes": ["images/", "videos/", "images/cats/"]})
    queue, _ = queues(run)
    policy = run.one(QUEUE_POLICY)
    assert policy.inputs["queueUrl"] == queue.state["url"]
    assert document(policy, "policy") == events.s3_queue_policy(
        queue.state["arn"], run.outputs["bucketName"], ACCOUNT_ID
    )
    notification = run.one(NOTIFICATION)
    assert notification.inputs["bucket"] == run.outputs["bucketName"]
    assert notification.inputs["queues"] == [
        {
            "id": f"encord-events-{index}",
            "queueArn": queue.state["arn"],
            "events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"],
            "filterPrefix": prefix,
        }
        for index, prefix in enumerate(["images/", "videos/"])  # images/cats/ is covered
    ]
    assert "eventbridge" not in notification.inputs
    # S3 tests its permission to send when the configuration is put: the policy comes first.
    assert {urn.rsplit("::", 1)[-1] for urn in notification.depends_on} == {policy.name}
    assert run.outputs["eventsSource"] == "s3"
    assert not run.of_type(EVENT_RULE)


def test_created_bucket_without_prefixes_notifies_for_the_whole_bucket():
    run = run_stack("dev", {"events": ON})
    (entry,) = run.one(NOTIFICATION).inputs["queues"]
    assert "filterPrefix" not in entry
    check_queues(run, {})


def test_events_settings_reach_the_queues():
    config = {"enabled": True, "maxReceiveCount": 3, "visibilityTimeoutSeconds": 900}
    check_queues(
        run_stack("dev", {"events": config | {"retentionDays": 14}}), config | {"retentionDays": 14}
    )


def test_queues_are_deleted_with_the_stack_and_the_bucket_is_still_kept():
    run = run_stack("dev", {"events": ON})
    assert run.one(BUCKET).retain_on_delete
    assert not any(r.retain_on_delete for r in run.resources if r.type in EVENTS_TYPES)


# An adopted bucket: EventBridge ------------------------------------------------------------


def test_adopted_bucket_gets_a_rule_and_its_notification_configuration_is_left_alone():
    run = run_stack(
        "dev",
        {**ADOPTED, "prefixes": ["images/"], "events": ON | {"eventBridgeOnBucket": True}},
    )
    assert not run.of_type(NOTIFICATION)  # would replace the bucket's own configuration
    queue, _ = queues(run)
    rule = run.one(EVENT_RULE)
    assert json.loads(rule.inputs["eventPattern"]) == events.event_pattern(
        "acme-existing", ["images/"]
    )
    policy = run.one(QUEUE_POLICY)
    assert document(policy, "policy") == events.eventbridge_queue_policy(
        queue.state["arn"], rule.state["arn"], ACCOUNT_ID
    )
    target = run.one(EVENT_TARGET)
    assert target.inputs == {
        "rule": rule.state["name"],
        "arn": queue.state["arn"],
        "targetId": "encord-events-queue",
    }
    assert {urn.rsplit("::", 1)[-1] for urn in target.depends_on} == {policy.name}
    assert run.outputs["eventsSource"] == "eventbridge"
