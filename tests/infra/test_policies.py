"""The pure document builders, called directly, for any prefixes and options."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given
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


# A bucket name as AWS allows it: dot-separated labels of lowercase letters, digits and
# hyphens, of any length from 3 to 63 (labels repeat to reach it).
label = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,28}[a-z0-9])?", fullmatch=True)
bucket_name = (
    st.tuples(
        st.lists(label, min_size=1, max_size=4),
        st.one_of(st.integers(3, 53), st.integers(54, 63)),  # often too long for "-inventory"
    )
    .map(lambda drawn: ".".join(drawn[0] * 63)[: drawn[1]].rstrip(".-"))
    .filter(lambda name: len(name) >= 3 and not re.fullmatch(r"[\d.]+", name))
)
VALID_BUCKET_NAME = re.compile(r"(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


@given(bucket=bucket_name)
@example(bucket="a" * 43 + "." + "b" * 19)  # cut right after a dot
def test_inventory_bucket_name_is_always_a_valid_bucket_name(bucket):
    name = policies.inventory_bucket_name(bucket)
    assert VALID_BUCKET_NAME.fullmatch(name) and len(name) <= 63
    assert ".-" not in name  # the labels have none, so none may appear where a name was cut
    if len(bucket) <= 53:
        assert name == f"{bucket}-inventory"


def test_long_names_that_share_their_start_get_different_inventory_buckets():
    first, second = "a" * 60 + "one", "a" * 60 + "two"
    assert policies.inventory_bucket_name(first) != policies.inventory_bucket_name(second)
    assert policies.inventory_bucket_name(first) == policies.inventory_bucket_name(first)


def test_inventory_location_is_the_folder_of_the_dated_reports():
    assert (
        policies.inventory_location(f"{BUCKET}-inventory", "inventory", BUCKET, "encord-ingest")
        == f"s3://{BUCKET}-inventory/inventory/{BUCKET}/encord-ingest/"
    )


@pytest.mark.parametrize("prefix", ["inventory", "reports/s3"])
def test_inventory_bucket_policy_lets_only_s3_write_only_reports(prefix):
    policy = policies.inventory_bucket_policy(f"{BUCKET}-inventory", prefix, BUCKET, "111122223333")
    deny, delivery = policy["Statement"]
    assert deny == policies.tls_only_bucket_policy(f"{BUCKET}-inventory")["Statement"][0]
    assert delivery["Principal"] == {"Service": "s3.amazonaws.com"}
    assert delivery["Action"] == "s3:PutObject"
    assert delivery["Resource"] == f"arn:aws:s3:::{BUCKET}-inventory/{prefix}/*"
    assert delivery["Condition"] == {
        "ArnLike": {"aws:SourceArn": f"arn:aws:s3:::{BUCKET}"},
        "StringEquals": {
            "aws:SourceAccount": "111122223333",
            "s3:x-amz-acl": "bucket-owner-full-control",
        },
    }
