"""The optional S3 Inventory: the real `__main__.py` with `inventory` on and off, for every
stack file, registers a private reports bucket that only S3 may write to, and the inventory."""

from __future__ import annotations

import copy
import re

import pytest
from stack_harness import (
    ACCOUNT_ID,
    BUCKET,
    BUCKET_POLICY,
    ENCRYPTION,
    INVENTORY,
    LIFECYCLE,
    OWNERSHIP,
    POLICY,
    PUBLIC_ACCESS_BLOCK,
    STACKS,
    committed_config,
    document,
    run_stack,
)

from infra import policies

ON = {"enabled": True}
OFF = {"enabled": False}
INVENTORY_TYPES = {BUCKET, PUBLIC_ACCESS_BLOCK, OWNERSHIP, ENCRYPTION, BUCKET_POLICY, LIFECYCLE}
# What AWS accepts as a bucket name (the program's own check is in infra/config.py).
VALID_BUCKET_NAME = re.compile(r"(?!.*\.\.)(?!.*\.-)(?!.*-\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def reports_resources(run) -> dict:
    """The reports bucket's resources, and the inventory configuration, by type."""
    return {r.type: r for r in run.resources if r.name.startswith("encord-inventory")}


def reports_bucket(run) -> str:
    return reports_resources(run)[BUCKET].inputs["bucket"]


def delivery_policy(run) -> dict:
    return document(reports_resources(run)[BUCKET_POLICY], "policy")


def assert_only_s3_delivers_over_tls(run) -> None:
    """The reports bucket's policy: TLS only, and S3 may put this bucket's reports under
    `inventory/`, on behalf of this bucket in this account, handing over full control."""
    reports, source = reports_bucket(run), run.outputs["bucketName"]
    assert delivery_policy(run) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [f"arn:aws:s3:::{reports}", f"arn:aws:s3:::{reports}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
            {
                "Sid": "S3InventoryDelivery",
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
                "Action": "s3:PutObject",
                "Resource": f"arn:aws:s3:::{reports}/inventory/*",
                "Condition": {
                    "ArnLike": {"aws:SourceArn": f"arn:aws:s3:::{source}"},
                    "StringEquals": {
                        "aws:SourceAccount": ACCOUNT_ID,
                        "s3:x-amz-acl": "bucket-owner-full-control",
                    },
                },
            },
        ],
    }


def committed_inventory(stack: str) -> bool:
    return bool(committed_config(stack).get("encord-s3:inventory", {}).get("enabled"))


@pytest.fixture(scope="module", params=STACKS)
def enabled(request):
    return request.param, run_stack(request.param, {"inventory": ON})


@pytest.fixture(scope="module", params=STACKS)
def disabled(request):
    return request.param, run_stack(request.param, {"inventory": OFF})


# Every stack file, inventory on ---------------------------------------------------------


def test_inventory_lists_current_versions_with_what_the_ingest_reads(enabled):
    _, run = enabled
    inventory = run.one(INVENTORY)
    assert inventory.inputs["bucket"] == run.outputs["bucketName"]  # adopted or created
    assert inventory.inputs["name"] == "encord-ingest"
    assert inventory.inputs["enabled"] is True
    assert inventory.inputs["includedObjectVersions"] == "Current"
    assert inventory.inputs["optionalFields"] == ["Size", "LastModifiedDate", "ETag"]
    assert inventory.inputs["destination"] == {
        "bucket": {
            "bucketArn": f"arn:aws:s3:::{reports_bucket(run)}",
            "accountId": ACCOUNT_ID,
            "format": "Parquet",
            "prefix": "inventory",
        }  # no `encryption`: the reports bucket's default encryption (SSE-S3) applies
    }


def test_reports_go_to_a_bucket_named_after_the_data_bucket(enabled):
    _, run = enabled
    assert reports_bucket(run) == f"{run.outputs['bucketName']}-inventory"


def test_reports_bucket_blocks_public_access_and_acls_and_is_encrypted(enabled):
    _, run = enabled
    found, reports = reports_resources(run), reports_bucket(run)
    assert set(found) == INVENTORY_TYPES | {INVENTORY}
    assert found[PUBLIC_ACCESS_BLOCK].inputs == {
        "bucket": reports,
        "blockPublicAcls": True,
        "blockPublicPolicy": True,
        "ignorePublicAcls": True,
        "restrictPublicBuckets": True,
    }
    assert found[OWNERSHIP].inputs["rule"] == {"objectOwnership": "BucketOwnerEnforced"}
    assert found[ENCRYPTION].inputs["rules"] == [
        {
            "applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"},
            "bucketKeyEnabled": False,
        }
    ]


def test_only_s3_may_deliver_and_only_over_tls(enabled):
    assert_only_s3_delivers_over_tls(enabled[1])


def test_reports_expire_and_incomplete_uploads_are_aborted(enabled):
    _, run = enabled
    expire, abort = reports_resources(run)[LIFECYCLE].inputs["rules"]
    assert expire == {
        "id": "expire-inventory-reports",
        "status": "Enabled",
        "filter": {"prefix": ""},
        "expiration": {"days": 14},
    }
    assert abort["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 7}
    assert abort["status"] == "Enabled" and abort["filter"] == {"prefix": ""}


def test_inventory_location_is_where_s3_writes_the_dated_reports(enabled):
    _, run = enabled
    bucket = run.outputs["bucketName"]
    assert run.outputs["inventoryLocation"] == (
        f"s3://{bucket}-inventory/inventory/{bucket}/encord-ingest/"
    )
    assert "inventoryLocation" not in run.secret_outputs


def test_encord_role_gets_nothing_of_the_reports_bucket(enabled):
    stack, run = enabled
    without = run_stack(stack, {"inventory": OFF})
    assert document(run.one(POLICY), "policy") == document(without.one(POLICY), "policy")
    assert reports_bucket(run) not in run.one(POLICY).inputs["policy"]


def test_reports_and_their_bucket_go_with_the_stack(enabled):
    _, run = enabled
    assert reports_resources(run)[BUCKET].inputs["forceDestroy"] is True
    assert not any(r.retain_on_delete for r in reports_resources(run).values())


# Every stack file, inventory off --------------------------------------------------------


def test_without_inventory_nothing_is_added(disabled):
    _, run = disabled
    assert reports_resources(run) == {}
    assert "inventoryLocation" not in run.outputs


def test_inventory_is_off_unless_the_stack_file_turns_it_on():
    assert committed_inventory("prod")
    assert not committed_inventory("demo")  # moto never generates reports
    for stack in STACKS:
        run = run_stack(stack)
        assert ("inventoryLocation" in run.outputs) == committed_inventory(stack)
        assert len(run.of_type(INVENTORY)) == committed_inventory(stack)


# Variants ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefixes", "inventory_filter"),
    [
        ([], None),
        (["images/"], {"prefix": "images/"}),
        (["images/", "videos/"], None),  # one configuration filters one prefix: the whole bucket
    ],
)
def test_only_a_single_prefix_narrows_the_inventory(prefixes, inventory_filter):
    run = run_stack("dev", {"inventory": ON, "prefixes": prefixes})
    assert run.one(INVENTORY).inputs.get("filter") == inventory_filter


def test_schedule_format_and_retention_are_configurable():
    settings = {"enabled": True, "frequency": "weekly", "format": "csv", "retentionDays": 30}
    run = run_stack("dev", {"inventory": settings})
    inventory = run.one(INVENTORY).inputs
    assert inventory["schedule"] == {"frequency": "Weekly"}
    assert inventory["destination"]["bucket"]["format"] == "CSV"  # as S3 spells them
    expire, _ = reports_resources(run)[LIFECYCLE].inputs["rules"]
    assert expire["expiration"] == {"days": 30}


def test_daily_parquet_for_two_weeks_by_default():
    run = run_stack("dev", {"inventory": ON})
    assert run.one(INVENTORY).inputs["schedule"] == {"frequency": "Daily"}
    assert run.one(INVENTORY).inputs["destination"]["bucket"]["format"] == "Parquet"
    expire, _ = reports_resources(run)[LIFECYCLE].inputs["rules"]
    assert expire["expiration"] == {"days": 14}


def test_a_kms_bucket_still_gets_sse_s3_reports():
    key = f"arn:aws:kms:eu-west-2:{ACCOUNT_ID}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    run = run_stack("dev", {"inventory": ON, "kmsKeyArn": key})
    (rule,) = reports_resources(run)[ENCRYPTION].inputs["rules"]
    assert rule["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "AES256"}
    assert "encryption" not in run.one(INVENTORY).inputs["destination"]["bucket"]


@pytest.mark.parametrize(
    "bucket",
    [
        "acme-" + "a" * 48,  # 53 characters: "-inventory" still fits
        "acme-" + "a" * 49,
        "a" * 43 + "." + "b" * 19,  # 63 characters, a dot where the name is cut
    ],
)
def test_a_long_bucket_name_still_gives_a_valid_reports_bucket(bucket):
    adopt = {"createBucket": False, "bucketName": bucket, "versioning": False}
    run = run_stack("dev", {"inventory": ON} | adopt)
    reports = reports_bucket(run)
    assert len(reports) <= 63 and VALID_BUCKET_NAME.fullmatch(reports), reports
    assert reports.endswith("-inventory")
    assert run.outputs["inventoryLocation"].startswith(f"s3://{reports}/inventory/{bucket}/")


def test_an_adopted_bucket_gets_the_inventory_and_a_new_reports_bucket():
    run = run_stack(
        "dev",
        {
            "inventory": ON,
            "createBucket": False,
            "bucketName": "acme-existing",
            "versioning": False,
        },
    )
    assert run.one(INVENTORY).inputs["bucket"] == "acme-existing"
    assert [r.inputs["bucket"] for r in run.of_type(BUCKET)] == ["acme-existing-inventory"]
    assert_only_s3_delivers_over_tls(run)


# Each security property of the delivery policy is what a test checks ----------------------


def _statement(policy: dict, sid: str) -> dict:
    (statement,) = [s for s in policy["Statement"] if s["Sid"] == sid]
    return statement


def _drop_condition(operator: str, key: str):
    def mutate(policy: dict) -> None:
        del _statement(policy, "S3InventoryDelivery")["Condition"][operator][key]

    return mutate


def _set(field: str, value):
    def mutate(policy: dict) -> None:
        _statement(policy, "S3InventoryDelivery")[field] = value

    return mutate


def _drop_tls_only(policy: dict) -> None:
    policy["Statement"].remove(_statement(policy, "DenyInsecureTransport"))


WEAKENED = {
    "any principal": _set("Principal", "*"),
    "another principal too": _set(
        "Principal", {"Service": "s3.amazonaws.com", "AWS": "arn:aws:iam::999988887777:root"}
    ),
    "more than PutObject": _set("Action", ["s3:PutObject", "s3:GetObject"]),
    "the whole bucket": _set("Resource", "arn:aws:s3:::acme-existing-inventory/*"),
    "no source bucket": _drop_condition("ArnLike", "aws:SourceArn"),
    "no source account": _drop_condition("StringEquals", "aws:SourceAccount"),
    "no full control for the owner": _drop_condition("StringEquals", "s3:x-amz-acl"),
    "no TLS-only Deny": _drop_tls_only,
}


@pytest.mark.parametrize("weakening", WEAKENED.values(), ids=WEAKENED.keys())
def test_weakening_the_delivery_policy_fails_the_policy_test(monkeypatch, weakening):
    build = policies.inventory_bucket_policy

    def weakened(*args, **kwargs) -> dict:
        policy = copy.deepcopy(build(*args, **kwargs))
        weakening(policy)
        return policy

    monkeypatch.setattr(policies, "inventory_bucket_policy", weakened)
    run = run_stack(
        "dev",
        {
            "inventory": ON,
            "createBucket": False,
            "bucketName": "acme-existing",
            "versioning": False,
        },
    )
    with pytest.raises(AssertionError):
        assert_only_s3_delivers_over_tls(run)
