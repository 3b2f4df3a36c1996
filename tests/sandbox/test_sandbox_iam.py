"""With IAM enforced, the integration's external ID and permission policy decide each unit.

A local AWS of its own, with authorization on: the sandbox's identity ("Encord's account")
may only call sts:AssumeRole; the customer's role trusts that identity with one external
ID and may only read `allowed/` in its bucket.
"""

from __future__ import annotations

import json

import pytest
from encord.orm.dataset import LongPollingStatus
from sandbox_support import object_url

from demo import samples
from standins.local_aws import ACCOUNT_ID, local_aws

BUCKET = "guarded-bucket"
EXTERNAL_ID = "the-right-external-id"


@pytest.fixture(scope="module")
def guarded_aws():
    with local_aws() as aws:
        assume_any = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}],
        }
        encord_identity = aws.create_user("encord-sandbox", assume_any)
        stranger = aws.create_user("someone-else", assume_any)
        s3 = aws.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="allowed/a.png", Body=samples.png())
        s3.put_object(Bucket=BUCKET, Key="secret/b.png", Body=samples.png())
        for i in range(2):
            s3.put_object(Bucket=BUCKET, Key=f"allowed/seq/{i}.png", Body=samples.png(shade=i))
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:user/encord-sandbox"},
                    "Action": "sts:AssumeRole",
                    "Condition": {"StringEquals": {"sts:ExternalId": EXTERNAL_ID}},
                }
            ],
        }
        iam = aws.client("iam")
        role_arn = iam.create_role(
            RoleName="encord-access", AssumeRolePolicyDocument=json.dumps(trust)
        )["Role"]["Arn"]
        read_allowed = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "s3:GetObject",
                    "Resource": f"arn:aws:s3:::{BUCKET}/allowed/*",
                }
            ],
        }
        iam.put_role_policy(
            RoleName="encord-access", PolicyName="read", PolicyDocument=json.dumps(read_allowed)
        )
        writer_arn = iam.create_role(
            RoleName="encord-writer", AssumeRolePolicyDocument=json.dumps(trust)
        )["Role"]["Arn"]
        read_write = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["s3:GetObject", "s3:PutObject"],
                    "Resource": f"arn:aws:s3:::{BUCKET}/allowed/*",
                }
            ],
        }
        iam.put_role_policy(
            RoleName="encord-writer", PolicyName="rw", PolicyDocument=json.dumps(read_write)
        )
        admin = aws.bootstrap_admin()
        aws.enable_iam_auth()
        yield aws, role_arn, encord_identity, stranger, writer_arn, admin


@pytest.fixture
def guarded_sandbox(start_sandbox, guarded_aws):
    aws, _, encord_identity, *_ = guarded_aws
    return start_sandbox(aws_endpoint_url=aws.endpoint_url, aws_credentials=encord_identity)


def _upload(connect, sandbox, integration_id, key):
    folder = connect(sandbox, max_retries=0).create_storage_folder("guarded")
    spec = {"images": [{"objectUrl": object_url(BUCKET, key)}]}
    job = folder.add_private_data_to_folder_start(integration_id, spec, ignore_errors=True)
    return folder.add_private_data_to_folder_get_result(job)


def test_the_right_external_id_reads_what_the_policy_allows(guarded_sandbox, guarded_aws, connect):
    integration_id = guarded_sandbox.add_integration("guarded", guarded_aws[1], EXTERNAL_ID)
    result = _upload(connect, guarded_sandbox, integration_id, "allowed/a.png")
    assert (result.status, result.unit_errors) == (LongPollingStatus.DONE, [])
    assert [item.name for item in result.items_with_names] == ["a.png"]


def test_a_wrong_external_id_fails_the_unit(guarded_sandbox, guarded_aws, connect):
    integration_id = guarded_sandbox.add_integration(
        "guarded", guarded_aws[1], "a-wrong-external-id"
    )
    result = _upload(connect, guarded_sandbox, integration_id, "allowed/a.png")
    (error,) = result.unit_errors
    assert error.error.startswith(object_url(BUCKET, "allowed/a.png"))
    assert (
        "could not assume the integration's role" in error.error and "AccessDenied" in error.error
    )
    assert result.items_with_names == []


def test_an_object_outside_the_permission_policy_is_access_denied(
    guarded_sandbox, guarded_aws, connect
):
    integration_id = guarded_sandbox.add_integration("guarded", guarded_aws[1], EXTERNAL_ID)
    result = _upload(connect, guarded_sandbox, integration_id, "secret/b.png")
    (error,) = result.unit_errors
    assert "access denied reading s3://guarded-bucket/secret/b.png" in error.error


def test_a_role_that_does_not_trust_the_sandbox_identity_cannot_be_assumed(
    start_sandbox, guarded_aws, connect
):
    aws, role_arn, _, stranger, *_ = guarded_aws
    untrusted = start_sandbox(aws_endpoint_url=aws.endpoint_url, aws_credentials=stranger)
    integration_id = untrusted.add_integration("guarded", role_arn, EXTERNAL_ID)
    result = _upload(connect, untrusted, integration_id, "allowed/a.png")
    (error,) = result.unit_errors
    assert (
        "could not assume the integration's role" in error.error and "AccessDenied" in error.error
    )


def _sequence(connect, sandbox, integration_id):
    folder = connect(sandbox, max_retries=0).create_storage_folder("sequences")
    frames = {f"objectUrl_{i}": object_url(BUCKET, f"allowed/seq/{i}.png") for i in range(2)}
    spec = {"image_groups": [{"title": "drive", "createVideo": True, **frames}]}
    job = folder.add_private_data_to_folder_start(integration_id, spec, ignore_errors=True)
    return folder, folder.add_private_data_to_folder_get_result(job)


def test_an_image_sequence_needs_write_permission(guarded_sandbox, guarded_aws, connect):
    integration_id = guarded_sandbox.add_integration("read only", guarded_aws[1], EXTERNAL_ID)
    folder, result = _sequence(connect, guarded_sandbox, integration_id)
    (error,) = result.unit_errors
    assert "access denied writing the image sequence's video" in error.error
    assert "s3:PutObject" in error.error and EXTERNAL_ID not in error.error
    assert list(folder.list_items()) == []


def test_an_image_sequence_is_written_with_write_permission(guarded_sandbox, guarded_aws, connect):
    aws, writer_arn, admin = guarded_aws[0], guarded_aws[4], guarded_aws[5]
    integration_id = guarded_sandbox.add_integration("read write", writer_arn, EXTERNAL_ID)
    folder, result = _sequence(connect, guarded_sandbox, integration_id)
    assert (result.status, result.unit_errors) == (LongPollingStatus.DONE, [])
    (item,) = folder.list_items()
    video_key = f"allowed/seq/{item.uuid}.mp4"
    head = aws.client("s3", credentials=admin).head_object(Bucket=BUCKET, Key=video_key)
    assert head["ContentLength"] > 0
