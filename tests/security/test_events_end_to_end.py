"""The events queue deployed into moto with IAM authorization on (issue 14).

Proven here: S3 still delivers the bucket's events under the prefixes (and only those) with
authorization enforced, and principals without an SQS grant of their own (a stranger,
Encord's role) can neither send to the queue nor read it.

Not provable in moto: the queue policy itself. moto authorizes SQS calls on the caller's
identity policies only and evaluates no queue policy, so a queue policy that let anyone
send would pass here too; the policy document is checked in tests/infra/test_events.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import unquote_plus

import boto3
import pytest
from botocore.exceptions import ClientError

from standins.local_aws import REGION, Credentials, LocalAws, local_aws
from standins.moto_bridge import deploy

EXTERNAL_ID = "encord-demo-4be1f2"
ASSUME_ANY_ROLE = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}],
}


@dataclass(frozen=True)
class World:
    aws: LocalAws
    admin: Credentials
    encord: Credentials
    stranger: Credentials
    outputs: dict


@pytest.fixture(scope="module")
def world():
    with local_aws() as aws:
        admin = aws.bootstrap_admin()
        encord = aws.create_user("encord-sandbox", ASSUME_ANY_ROLE)
        stranger = aws.create_user("stranger", ASSUME_ANY_ROLE)
        aws.enable_iam_auth()
        settings = {
            "bucketName": "encord-s3-demo-events",
            "roleName": "encord-s3-demo-events",
            "versioning": False,
            "prefixes": ["images/"],
            "events": {"enabled": True},
        }
        outputs = deploy(
            "demo", aws.endpoint_url, admin, settings, {"externalId": EXTERNAL_ID}, quiet=True
        )
        yield World(aws, admin, encord, stranger, outputs)


def drain(sqs, queue_url: str) -> list[str]:
    """The keys of the object events waiting in the queue (deleted once read)."""
    keys = []
    while messages := sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
    ).get("Messages", []):
        for message in messages:
            body = json.loads(message["Body"])
            keys += [unquote_plus(r["s3"]["object"]["key"]) for r in body.get("Records", [])]
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return keys


def denied(call, action: str, **kwargs) -> None:
    """`call` is refused by IAM authorization, for `action`.

    moto answers SQS's JSON protocol with its XML error document, which botocore cannot
    parse: the code is then the HTTP status and the document is the message.
    """
    with pytest.raises(ClientError) as raised:
        call(**kwargs)
    error = raised.value.response["Error"]
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert "<Code>AccessDenied</Code>" in error["Message"] or error["Code"] == "AccessDenied"
    assert f"not authorized to perform: {action}" in error["Message"]


def role_sqs(world: World):
    """An SQS client signed with a session of Encord's role."""
    session = world.aws.client("sts", world.encord).assume_role(
        RoleArn=world.outputs["roleArn"], RoleSessionName="encord", ExternalId=EXTERNAL_ID
    )["Credentials"]
    return boto3.client(
        "sqs",
        endpoint_url=world.aws.endpoint_url,
        region_name=REGION,
        aws_access_key_id=session["AccessKeyId"],
        aws_secret_access_key=session["SecretAccessKey"],
        aws_session_token=session["SessionToken"],
    )


def test_s3_delivers_events_under_the_prefixes_with_authorization_on(world):
    s3, sqs = world.aws.client("s3", world.admin), world.aws.client("sqs", world.admin)
    queue, bucket = world.outputs["eventsQueueUrl"], world.outputs["bucketName"]
    drain(sqs, queue)  # S3's test event
    s3.put_object(Bucket=bucket, Key="images/cat.jpg", Body=b"pixels")
    s3.put_object(Bucket=bucket, Key="private/payroll.csv", Body=b"secret")
    assert drain(sqs, queue) == ["images/cat.jpg"]


def test_a_stranger_cannot_send_to_or_read_the_queue(world):
    sqs, queue = world.aws.client("sqs", world.stranger), world.outputs["eventsQueueUrl"]
    forged = {"Records": [{"s3": {"object": {"key": "images/forged.jpg"}}}]}
    denied(sqs.send_message, "sqs:SendMessage", QueueUrl=queue, MessageBody=json.dumps(forged))
    denied(sqs.receive_message, "sqs:ReceiveMessage", QueueUrl=queue)


def test_encords_role_has_no_access_to_the_queues(world):
    sqs = role_sqs(world)
    for queue in (world.outputs["eventsQueueUrl"], world.outputs["eventsDeadLetterQueueUrl"]):
        denied(sqs.receive_message, "sqs:ReceiveMessage", QueueUrl=queue)
        denied(sqs.send_message, "sqs:SendMessage", QueueUrl=queue, MessageBody="{}")
