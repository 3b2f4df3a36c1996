"""Security proven end to end: the demo stack, deployed into moto with IAM authorization on.

A dedicated moto server: the admin deploys the real program through the bridge; the Encord
sandbox's identity (`encord-sandbox`, the demo stack's principal) and a stranger may call
sts:AssumeRole on anything, so only the role's trust policy decides. The role's sessions
then meet the permission policy on every S3 call, and browsers meet the CORS rules.
"""

from __future__ import annotations

from dataclasses import dataclass

import boto3
import pytest
import requests
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotocoreCredentials
from botocore.exceptions import ClientError

from standins.local_aws import REGION, Credentials, LocalAws, local_aws
from standins.moto_bridge import deploy

EXTERNAL_ID = "encord-demo-4be1f2"
KEY = "images/cat.jpg"
OUTSIDE_PREFIX_KEY = "private/payroll.csv"
REPORT = "2026-01-01T01-00Z/manifest.json"
ENCORD_APP = "https://app.encord.com"
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
    read_only: dict  # stack outputs
    writable: dict
    prefixed: dict
    inventoried: dict
    unrelated_bucket: str


def deploy_variant(aws: LocalAws, admin: Credentials, name: str, settings: dict) -> dict:
    overrides = {"bucketName": f"encord-s3-demo-{name}", "roleName": f"encord-s3-demo-{name}"}
    return deploy(
        "demo",
        aws.endpoint_url,
        admin,
        overrides | settings,
        {"externalId": EXTERNAL_ID},
        quiet=True,
    )


@pytest.fixture(scope="module")
def world():
    with local_aws() as aws:
        admin = aws.bootstrap_admin()
        encord = aws.create_user("encord-sandbox", ASSUME_ANY_ROLE)
        stranger = aws.create_user("stranger", ASSUME_ANY_ROLE)
        aws.enable_iam_auth()
        # The demo stack allows writes (for its image sequence): this one is read-only.
        read_only = deploy(
            "demo",
            aws.endpoint_url,
            admin,
            {"allowWrite": False},
            {"externalId": EXTERNAL_ID},
            quiet=True,
        )
        writable = deploy_variant(aws, admin, "writable", {"allowWrite": True})
        prefixed = deploy_variant(aws, admin, "prefixed", {"prefixes": ["images/"]})
        inventoried = deploy_variant(aws, admin, "inventoried", {"inventory": {"enabled": True}})
        s3 = aws.client("s3", admin)
        for outputs in (read_only, writable, prefixed, inventoried):
            for key in (KEY, OUTSIDE_PREFIX_KEY):
                s3.put_object(Bucket=outputs["bucketName"], Key=key, Body=b"pixels")
        # moto writes no reports: the admin puts one where S3 would.
        reports, folder = inventory_folder(inventoried)
        s3.put_object(Bucket=reports, Key=f"{folder}{REPORT}", Body=b"{}")
        s3.create_bucket(Bucket="someone-elses-bucket")
        s3.put_object(Bucket="someone-elses-bucket", Key=KEY, Body=b"secret")
        yield World(
            aws,
            admin,
            encord,
            stranger,
            read_only,
            writable,
            prefixed,
            inventoried,
            "someone-elses-bucket",
        )


def inventory_folder(outputs: dict) -> tuple[str, str]:
    """The reports bucket and the key prefix of the stack's `inventoryLocation`."""
    bucket, _, folder = outputs["inventoryLocation"].removeprefix("s3://").partition("/")
    return bucket, folder


def assume(world: World, caller: Credentials, outputs: dict, **external_id) -> dict:
    return world.aws.client("sts", caller).assume_role(
        RoleArn=outputs["roleArn"], RoleSessionName="encord", **external_id
    )["Credentials"]


def role_s3(world: World, outputs: dict):
    """An S3 client signed with a session of the stack's role, as Encord would hold one."""
    session = assume(world, world.encord, outputs, ExternalId=EXTERNAL_ID)
    return boto3.client(
        "s3",
        endpoint_url=world.aws.endpoint_url,
        region_name=REGION,
        aws_access_key_id=session["AccessKeyId"],
        aws_secret_access_key=session["SecretAccessKey"],
        aws_session_token=session["SessionToken"],
    )


def denied(call, *args, **kwargs) -> None:
    with pytest.raises(ClientError) as raised:
        call(*args, **kwargs)
    assert raised.value.response["Error"]["Code"] == "AccessDenied"


# Assuming the role ------------------------------------------------------------------------


def test_the_demo_stack_trusts_the_sandbox_identity(world):
    assert world.read_only["roleArn"].endswith(":role/encord-s3-demo")
    assert world.read_only["externalId"] == EXTERNAL_ID


def test_assume_without_external_id_is_denied(world):
    denied(assume, world, world.encord, world.read_only)


def test_assume_with_a_wrong_external_id_is_denied(world):
    denied(assume, world, world.encord, world.read_only, ExternalId="encord-demo-000000")


def test_assume_by_another_principal_is_denied_even_with_the_external_id(world):
    denied(assume, world, world.stranger, world.read_only, ExternalId=EXTERNAL_ID)


def test_assume_with_the_external_id_is_allowed(world):
    assert assume(world, world.encord, world.read_only, ExternalId=EXTERNAL_ID)["SessionToken"]


# What the role may do ---------------------------------------------------------------------


def test_role_lists_and_reads_objects(world):
    s3, bucket = role_s3(world, world.read_only), world.read_only["bucketName"]
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert KEY in listed
    assert s3.get_object(Bucket=bucket, Key=KEY)["Body"].read() == b"pixels"


def test_read_only_role_cannot_write_or_delete(world):
    s3, bucket = role_s3(world, world.read_only), world.read_only["bucketName"]
    denied(s3.put_object, Bucket=bucket, Key="images/new.jpg", Body=b"x")
    denied(s3.delete_object, Bucket=bucket, Key=KEY)


def test_role_cannot_touch_other_buckets(world):
    s3 = role_s3(world, world.read_only)
    denied(s3.get_object, Bucket=world.unrelated_bucket, Key=KEY)
    denied(s3.list_objects_v2, Bucket=world.unrelated_bucket)


def test_role_cannot_change_the_bucket_configuration(world):
    s3, bucket = role_s3(world, world.read_only), world.read_only["bucketName"]
    denied(s3.delete_bucket_policy, Bucket=bucket)
    denied(s3.delete_bucket_cors, Bucket=bucket)


def test_allow_write_lets_the_role_put_but_still_not_delete(world):
    assert (world.writable["allowWrite"], world.read_only["allowWrite"]) == (True, False)
    s3, bucket = role_s3(world, world.writable), world.writable["bucketName"]
    s3.put_object(Bucket=bucket, Key="images/sequence.mp4", Body=b"frames")
    assert s3.get_object(Bucket=bucket, Key="images/sequence.mp4")["Body"].read() == b"frames"
    denied(s3.delete_object, Bucket=bucket, Key=KEY)


def test_prefixes_limit_reads_to_those_prefixes(world):
    s3, bucket = role_s3(world, world.prefixed), world.prefixed["bucketName"]
    assert s3.get_object(Bucket=bucket, Key=KEY)["Body"].read() == b"pixels"
    denied(s3.get_object, Bucket=bucket, Key=OUTSIDE_PREFIX_KEY)


def test_role_cannot_read_or_list_the_inventory_reports(world):
    s3, (reports, folder) = role_s3(world, world.inventoried), inventory_folder(world.inventoried)
    assert s3.get_object(Bucket=world.inventoried["bucketName"], Key=KEY)  # its own bucket: yes
    denied(s3.get_object, Bucket=reports, Key=f"{folder}{REPORT}")
    denied(s3.list_objects_v2, Bucket=reports, Prefix=folder)
    denied(s3.put_object, Bucket=reports, Key=f"{folder}forged/manifest.json", Body=b"{}")


def test_the_deployer_reads_the_inventory_reports(world):
    s3, (reports, folder) = world.aws.client("s3", world.admin), inventory_folder(world.inventoried)
    listed = s3.list_objects_v2(Bucket=reports, Prefix=folder)["Contents"]
    assert [o["Key"] for o in listed] == [f"{folder}{REPORT}"]


# CORS --------------------------------------------------------------------------------------


def preflight(world: World, origin: str, method: str = "GET") -> requests.Response:
    """A browser's CORS preflight for an object.

    Browsers send it unsigned and AWS answers it from the CORS rules alone; moto with IAM
    authorization on rejects any unsigned request before it reaches the CORS rules, so the
    preflight is signed (by the admin) to get past that gap to the rules under test.
    """
    url = f"{world.aws.endpoint_url}/{world.read_only['bucketName']}/{KEY}"
    request = AWSRequest(
        "OPTIONS", url, headers={"Origin": origin, "Access-Control-Request-Method": method}
    )
    signer = BotocoreCredentials(world.admin.access_key_id, world.admin.secret_access_key)
    S3SigV4Auth(signer, "s3", REGION).add_auth(request)
    return requests.options(url, headers=dict(request.headers), timeout=10)


def test_cors_preflight_from_encord_is_allowed(world):
    response = preflight(world, ENCORD_APP)
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == ENCORD_APP
    # moto does not match the requested method; the rule it answers with lists the allowed ones.
    assert response.headers["Access-Control-Allow-Methods"] == "GET, HEAD"


# Not "https://app.encord.com.evil.example": moto matches allowed origins as a regex
# prefix (AWS matches the whole origin), so moto would let that one through.
@pytest.mark.parametrize(
    "origin", ["https://evil.example", "http://app.encord.com", "https://app.us.encord.com"]
)
def test_cors_preflight_from_any_other_origin_is_refused(world, origin):
    response = preflight(world, origin)
    assert response.status_code == 403
    assert "<Code>AccessForbidden</Code>" in response.text  # refused by the CORS rules
