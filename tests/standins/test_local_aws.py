"""The local AWS stand-in enforces what the end-to-end security tests rely on."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from standins.local_aws import ACCOUNT_ID, local_aws

TRUSTED = f"arn:aws:iam::{ACCOUNT_ID}:user/vendor"
ASSUME_ANY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}],
}


@pytest.fixture(scope="module")
def guarded_role():
    with local_aws() as aws:
        vendor = aws.create_user("vendor", ASSUME_ANY)
        stranger = aws.create_user("stranger", ASSUME_ANY)
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": TRUSTED},
                    "Action": "sts:AssumeRole",
                    "Condition": {"StringEquals": {"sts:ExternalId": "ext-123"}},
                }
            ],
        }
        role_arn = aws.client("iam").create_role(
            RoleName="guarded", AssumeRolePolicyDocument=json.dumps(trust)
        )["Role"]["Arn"]
        aws.enable_iam_auth()
        yield aws, role_arn, vendor, stranger


def _assume(aws, credentials, role_arn, **extra):
    return aws.client("sts", credentials).assume_role(
        RoleArn=role_arn, RoleSessionName="test", **extra
    )


def test_trusted_principal_with_external_id_assumes(guarded_role):
    aws, role_arn, vendor, _ = guarded_role
    assert _assume(aws, vendor, role_arn, ExternalId="ext-123")["Credentials"]["AccessKeyId"]


@pytest.mark.parametrize("extra", [{}, {"ExternalId": "wrong"}], ids=["missing", "wrong"])
def test_external_id_missing_or_wrong_is_denied(guarded_role, extra):
    aws, role_arn, vendor, _ = guarded_role
    with pytest.raises(ClientError, match="AccessDenied"):
        _assume(aws, vendor, role_arn, **extra)


def test_untrusted_principal_is_denied(guarded_role):
    aws, role_arn, _, stranger = guarded_role
    with pytest.raises(ClientError, match="AccessDenied"):
        _assume(aws, stranger, role_arn, ExternalId="ext-123")
