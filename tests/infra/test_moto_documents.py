"""The program's documents and settings are accepted by AWS's validation as moto implements it.

Each variant is applied to the session's moto through the bridge (IAM auth off), then read
back with boto3 and compared with what the pure functions in infra/policies.py build.
"""

from __future__ import annotations

import json
import uuid

import pytest
from botocore.exceptions import ClientError
from moto.iam.exceptions import MalformedPolicyDocument
from moto.iam.policy_validation import IAMPolicyDocumentValidator
from stack_harness import ENCORD_ROLE, EXTERNAL_ID

from infra import policies
from standins.local_aws import ACCOUNT_ID, ANONYMOUS
from standins.moto_bridge import deploy

KMS_KEY = f"arn:aws:kms:us-east-1:{ACCOUNT_ID}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
FOUR_FLAGS = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}


def unique(name: str) -> str:
    """Buckets and roles are shared across the session's moto: give each test its own."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


def deploy_demo(aws, settings: dict) -> dict:
    overrides = {"bucketName": unique("docs"), "roleName": unique("encord-docs")} | settings
    return deploy(
        "demo", aws.endpoint_url, ANONYMOUS, overrides, {"externalId": EXTERNAL_ID}, quiet=True
    )


def attached_policy(iam, role_name: str) -> dict:
    (attached,) = iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"]
    policy = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]
    version = iam.get_policy_version(PolicyArn=policy["Arn"], VersionId=policy["DefaultVersionId"])
    return version["PolicyVersion"]["Document"]


@pytest.fixture(scope="module")
def full(aws):
    """Every option of a created bucket at once."""
    log_bucket = unique("access-logs")
    aws.client("s3").create_bucket(Bucket=log_bucket)
    # The log bucket is the user's: it must let S3's logging service write to it.
    log_delivery = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "logging.s3.amazonaws.com"},
                "Action": "s3:PutObject",
                "Resource": f"arn:aws:s3:::{log_bucket}/*",
            }
        ],
    }
    aws.client("s3").put_bucket_policy(Bucket=log_bucket, Policy=json.dumps(log_delivery))
    settings = {
        "encordPrincipal": ENCORD_ROLE,
        "prefixes": ["images/", "videos/"],
        "allowWrite": True,
        "kmsKeyArn": KMS_KEY,
        "accessLogBucket": log_bucket,
        "multiRegionAccessPoint": True,
        "corsOrigins": ["https://app.encord.com", "https://app.us.encord.com"],
    }
    return settings, deploy_demo(aws, settings)


def test_bucket_security_settings_are_stored(aws, full):
    settings, outputs = full
    s3, bucket = aws.client("s3"), outputs["bucketName"]
    assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"] == FOUR_FLAGS
    ownership = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"]
    assert ownership == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    (sse,) = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert sse["ApplyServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": KMS_KEY,
    }
    assert sse["BucketKeyEnabled"] is True
    with pytest.raises(ClientError, match="NoSuchBucketPolicy"):  # kept out of moto by the bridge
        s3.get_bucket_policy(Bucket=bucket)
    (lifecycle,) = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert lifecycle["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    logging = s3.get_bucket_logging(Bucket=bucket)["LoggingEnabled"]
    assert logging["TargetBucket"] == settings["accessLogBucket"]


def test_tls_only_bucket_policy_is_accepted(aws):
    s3, bucket = aws.client("s3"), unique("tls-only")
    s3.create_bucket(Bucket=bucket)
    policy = policies.tls_only_bucket_policy(bucket)
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    assert json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]) == policy


def test_cors_rules_are_stored(aws, full):
    settings, outputs = full
    rules = aws.client("s3").get_bucket_cors(Bucket=outputs["bucketName"])["CORSRules"]
    assert rules == [policies.cors_rule(settings["corsOrigins"], allow_write=True)]


def test_role_trust_and_permission_policies_are_accepted(aws, full):
    settings, outputs = full
    iam = aws.client("iam")
    role = iam.get_role(RoleName=outputs["roleName"])["Role"]
    assert role["Arn"] == outputs["roleArn"]
    assert role["MaxSessionDuration"] == 3600
    assert role["AssumeRolePolicyDocument"] == policies.trust_policy(ENCORD_ROLE, EXTERNAL_ID)
    assert attached_policy(iam, outputs["roleName"]) == policies.permission_policy(
        outputs["bucketName"],
        prefixes=settings["prefixes"],
        allow_write=True,
        kms_key_arn=KMS_KEY,
        mrap_arn=outputs["mrapArn"],
    )


def test_multi_region_access_point_is_created_private(aws, full):
    _, outputs = full
    control = aws.client("s3control")
    control.meta.events.register(  # as in the bridge: no <account>.<host> for a local endpoint
        "before-sign.s3-control.*",
        lambda request, **_: setattr(request, "url", request.url.replace(f"{ACCOUNT_ID}.", "", 1)),
    )
    points = control.list_multi_region_access_points(AccountId=ACCOUNT_ID)["AccessPoints"]
    (point,) = [p for p in points if p["Alias"] == outputs["mrapAlias"]]
    assert point["PublicAccessBlock"] == FOUR_FLAGS
    assert point["Regions"][0]["Bucket"] == outputs["bucketName"]
    assert outputs["mrapArn"] == f"arn:aws:s3::{ACCOUNT_ID}:accesspoint/{outputs['mrapAlias']}"
    assert outputs["objectUrlPrefix"] == f"{outputs['mrapArn']}/"


def test_adopted_bucket_keeps_its_own_settings(aws):
    s3, bucket = aws.client("s3"), unique("existing")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policies.tls_only_bucket_policy(bucket)))
    before = s3.get_bucket_policy(Bucket=bucket)["Policy"]
    outputs = deploy_demo(
        aws,
        {
            "createBucket": False,
            "bucketName": bucket,
            "versioning": False,
            "events": {"enabled": False},
            "allowWrite": False,
        },
    )
    assert s3.get_bucket_policy(Bucket=bucket)["Policy"] == before
    assert s3.get_bucket_cors(Bucket=bucket)["CORSRules"] == [
        policies.cors_rule(["https://app.encord.com"])
    ]
    assert outputs["objectUrlPrefix"] == f"https://{bucket}.s3.us-east-1.amazonaws.com/"
    assert attached_policy(aws.client("iam"), outputs["roleName"]) == policies.permission_policy(
        bucket
    )


def test_moto_does_reject_malformed_documents(aws, full):
    """The acceptance checks above can fail: moto validates IAM documents."""
    iam = aws.client("iam")
    broken_policy = policies.permission_policy("some-bucket")
    broken_policy["Statement"][0]["Action"] = "s3ListBucket"
    with pytest.raises(ClientError, match="MalformedPolicyDocument"):
        iam.create_policy(PolicyName=unique("broken"), PolicyDocument=json.dumps(broken_policy))
    broken_trust = policies.trust_policy(ENCORD_ROLE, EXTERNAL_ID)
    broken_trust["Statement"][0]["Action"] = "s3:GetObject"
    with pytest.raises(ClientError, match="MalformedPolicyDocument"):  # checked as the bridge does
        iam.update_assume_role_policy(
            RoleName=full[1]["roleName"], PolicyDocument=json.dumps(broken_trust)
        )


@pytest.fixture(scope="module")
def inventoried(aws):
    """An adopted bucket (as in prod) with a weekly CSV inventory of its one prefix."""
    bucket = unique("inventoried")
    aws.client("s3").create_bucket(Bucket=bucket)
    inventory = {"enabled": True, "frequency": "Weekly", "format": "CSV", "retentionDays": 21}
    settings = {
        "createBucket": False,
        "bucketName": bucket,
        "versioning": False,
        "events": {"enabled": False},
    }
    return deploy_demo(aws, settings | {"prefixes": ["images/"], "inventory": inventory})


def test_inventory_configuration_is_stored_on_the_data_bucket(aws, inventoried):
    bucket = inventoried["bucketName"]
    reports = f"{bucket}-inventory"
    stored = aws.client("s3").get_bucket_inventory_configuration(Bucket=bucket, Id="encord-ingest")
    configuration = stored["InventoryConfiguration"]
    # moto 5.2.5 answers "All" whatever was put; the program's "Current" is checked on its
    # inputs (test_inventory.py).
    del configuration["IncludedObjectVersions"]
    assert configuration == {
        "Id": "encord-ingest",
        "IsEnabled": True,
        "Filter": {"Prefix": "images/"},
        "OptionalFields": ["Size", "LastModifiedDate", "ETag"],
        "Schedule": {"Frequency": "Weekly"},
        "Destination": {
            "S3BucketDestination": {
                "AccountId": ACCOUNT_ID,
                "Bucket": f"arn:aws:s3:::{reports}",
                "Format": "CSV",
                "Prefix": "inventory",
            }
        },
    }
    assert inventoried["inventoryLocation"] == f"s3://{reports}/inventory/{bucket}/encord-ingest/"


def test_reports_bucket_is_private_encrypted_and_expires_reports(aws, inventoried):
    s3, reports = aws.client("s3"), f"{inventoried['bucketName']}-inventory"
    assert (
        s3.get_public_access_block(Bucket=reports)["PublicAccessBlockConfiguration"] == FOUR_FLAGS
    )
    ownership = s3.get_bucket_ownership_controls(Bucket=reports)["OwnershipControls"]["Rules"]
    assert ownership == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    (sse,) = s3.get_bucket_encryption(Bucket=reports)["ServerSideEncryptionConfiguration"]["Rules"]
    assert sse["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    expire, abort = s3.get_bucket_lifecycle_configuration(Bucket=reports)["Rules"]
    assert expire["Expiration"] == {"Days": 21} and expire["Status"] == "Enabled"
    assert abort["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
    # Both statements are kept out of moto by the bridge (see standins/moto_bridge.py), so it can be
    # written to locally; the document itself is validated below.
    with pytest.raises(ClientError, match="NoSuchBucketPolicy"):
        s3.get_bucket_policy(Bucket=reports)


def test_inventory_bucket_policy_passes_iam_document_validation():
    """moto stores bucket policies unchecked; its IAM validator (CreatePolicy's) checks syntax,
    actions and condition blocks, and does reject a malformed delivery statement."""
    policy = policies.inventory_bucket_policy("reports", "inventory", "source", ACCOUNT_ID)
    IAMPolicyDocumentValidator(json.dumps(policy)).validate()
    policy["Statement"][1]["Condition"] = {"ArnLike": "arn:aws:s3:::source"}
    with pytest.raises(MalformedPolicyDocument):
        IAMPolicyDocumentValidator(json.dumps(policy)).validate()
