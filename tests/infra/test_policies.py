"""The pure document builders, called directly, for any prefixes and options."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from infra import policies

BUCKET = "acme-data"
MRAP_ARN = "arn:aws:s3::111122223333:accesspoint/mfzwi23gnjvgw.mrap"
KMS_KEY = "arn:aws:kms:eu-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"

prefix = st.text(
    alphabet=st.characters(codec="ascii", exclude_characters="*?/", min_codepoint=33), min_size=1
).map(lambda name: f"{name}/")


def as_list(value):
    return [value] if isinstance(value, str) else value


@given(
    prefixes=st.lists(prefix, max_size=4, unique=True),
    allow_write=st.booleans(),
    kms_key_arn=st.sampled_from([None, KMS_KEY]),
    mrap_arn=st.sampled_from([None, MRAP_ARN]),
)
def test_permission_policy_never_reaches_beyond_the_bucket(
    prefixes, allow_write, kms_key_arn, mrap_arn
):
    policy = policies.permission_policy(BUCKET, prefixes, allow_write, kms_key_arn, mrap_arn)
    granted = set()
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        granted |= set(as_list(statement["Action"]))
        for resource in as_list(statement["Resource"]):
            inside = resource in (
                f"arn:aws:s3:::{BUCKET}",
                MRAP_ARN,
                kms_key_arn,
            ) or resource.startswith((f"arn:aws:s3:::{BUCKET}/", f"{MRAP_ARN}/object/"))
            assert inside, resource
            if {"s3:GetObject", "s3:PutObject"} & set(as_list(statement["Action"])):
                assert resource.endswith(tuple(f"/{p}*" for p in prefixes or [""]))
    assert ("s3:PutObject" in granted) == allow_write
    assert ("kms:Decrypt" in granted) == bool(kms_key_arn)
    assert not {"s3:DeleteObject", "s3:*", "*"} & granted


@given(
    principal=st.sampled_from(["999988887777", "arn:aws:iam::999988887777:role/encord"]),
    external_id=st.from_regex(r"[\w+=,.@:/-]{2,64}", fullmatch=True),
)
def test_trust_policy_always_requires_the_external_id(principal, external_id):
    (statement,) = policies.trust_policy(principal, external_id)["Statement"]
    assert statement["Action"] == "sts:AssumeRole"
    assert statement["Principal"]["AWS"].startswith("arn:aws:iam::999988887777:")
    assert statement["Condition"] == {"StringEquals": {"sts:ExternalId": external_id}}


def test_account_id_becomes_its_root_arn():
    assert policies.account_principal_arn("999988887777") == "arn:aws:iam::999988887777:root"


def test_object_url_prefix_for_a_bucket_and_for_an_access_point():
    assert (
        policies.object_url_prefix(BUCKET, "eu-west-2")
        == f"https://{BUCKET}.s3.eu-west-2.amazonaws.com/"
    )
    assert policies.object_url_prefix(BUCKET, "eu-west-2", MRAP_ARN) == f"{MRAP_ARN}/"


def test_cors_rule_reads_unless_writing():
    assert policies.cors_rule(["https://app.encord.com"])["AllowedMethods"] == ["GET", "HEAD"]
    assert policies.cors_rule(["https://app.encord.com"], allow_write=True)["AllowedMethods"] == [
        "GET",
        "HEAD",
        "PUT",
        "POST",
    ]
