"""The real `__main__.py`, run for every stack file and for each variant, registers a secure stack."""

from __future__ import annotations

import logging

import pytest
from stack_harness import (
    ACCOUNT_ID,
    ATTACHMENT,
    BUCKET,
    BUCKET_POLICY,
    BUCKET_SETTINGS,
    CORS,
    ENCORD_ROLE,
    ENCRYPTION,
    EXTERNAL_ID,
    LIFECYCLE,
    LOGGING,
    MRAP,
    OWNERSHIP,
    POLICY,
    PUBLIC_ACCESS_BLOCK,
    ROLE,
    STACKS,
    VERSIONING,
    committed_config,
    document,
    run_stack,
)

KMS_KEY = f"arn:aws:kms:eu-west-2:{ACCOUNT_ID}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
READ_ACTIONS = {"s3:ListBucket", "s3:GetBucketLocation", "s3:GetObject"}
ALWAYS_EXPORTED = {
    "roleArn",
    "roleName",
    "bucketName",
    "bucketArn",
    "region",
    "objectUrlPrefix",
    "corsOrigins",
    "prefixes",
    "allowWrite",
    "integrationTitle",
    "externalId",
}
EVENTS_OUTPUTS = {
    "eventsQueueUrl",
    "eventsQueueArn",
    "eventsDeadLetterQueueUrl",
    "eventsDeadLetterQueueArn",
    "eventsSource",
}


def as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def actions(policy: dict) -> set[str]:
    return {action for s in policy["Statement"] for action in as_list(s["Action"])}


def resources_of(policy: dict, action: str) -> list[str]:
    (statement,) = [s for s in policy["Statement"] if action in as_list(s["Action"])]
    return as_list(statement["Resource"])


def permission_policy(run) -> dict:
    return document(run.one(POLICY), "policy")


# Every committed stack ------------------------------------------------------------------


@pytest.fixture(scope="module", params=STACKS)
def stack_run(request):
    return request.param, run_stack(request.param)


def test_the_repository_has_the_three_stacks():
    assert {"dev", "prod", "demo"} <= set(STACKS)


def test_trust_policy_admits_only_encord_with_the_external_id(stack_run):
    stack, run = stack_run
    principal = committed_config(stack).get("encord-s3:encordPrincipal", ENCORD_ROLE)
    role = run.one(ROLE)
    assert document(role, "assumeRolePolicy")["Statement"] == [
        {
            "Sid": "EncordAssumesWithExternalId",
            "Effect": "Allow",
            "Principal": {"AWS": principal},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": EXTERNAL_ID}},
        }
    ]
    assert "assumeRolePolicy" in role.secret_inputs  # holds the external ID
    assert role.inputs["maxSessionDuration"] == 3600
    assert role.inputs["name"] == f"encord-s3-{stack}"


def test_permission_policy_is_least_privilege(stack_run):
    stack, run = stack_run
    policy = permission_policy(run)
    write = {"s3:PutObject"} if committed_config(stack).get("encord-s3:allowWrite") else set()
    kms = {"kms:Decrypt"} if committed_config(stack).get("encord-s3:kmsKeyArn") else set()
    kms |= {"kms:GenerateDataKey"} if kms and write else set()
    assert actions(policy) == READ_ACTIONS | write | kms
    assert all(s["Effect"] == "Allow" for s in policy["Statement"])
    bucket_arn, kms_key = (
        run.outputs["bucketArn"],
        committed_config(stack).get("encord-s3:kmsKeyArn"),
    )
    for statement in policy["Statement"]:  # this bucket's ARN, its objects, or the bucket's key
        for resource in as_list(statement["Resource"]):
            assert resource in (bucket_arn, kms_key) or resource.startswith(f"{bucket_arn}/")
    attachment = run.one(ATTACHMENT)
    assert attachment.inputs == {
        "role": run.outputs["roleName"],
        "policyArn": run.one(POLICY).state["arn"],
    }


def test_cors_allows_only_the_configured_encord_origins(stack_run):
    stack, run = stack_run
    origins = committed_config(stack).get("encord-s3:corsOrigins", ["https://app.encord.com"])
    (rule,) = run.one(CORS).inputs["corsRules"]
    assert rule["allowedOrigins"] == origins
    write = bool(committed_config(stack).get("encord-s3:allowWrite"))
    assert rule["allowedMethods"] == ["GET", "HEAD"] + (["PUT", "POST"] if write else [])
    assert rule["maxAgeSeconds"] > 0 and "Range" in rule["allowedHeaders"]


def test_outputs_are_named_for_the_next_step(stack_run):
    stack, run = stack_run
    inventory = committed_config(stack).get("encord-s3:inventory", {}).get("enabled", False)
    events = committed_config(stack).get("encord-s3:events", {}).get("enabled", False)
    assert set(run.outputs) == (
        ALWAYS_EXPORTED
        | ({"inventoryLocation"} if inventory else set())
        | (EVENTS_OUTPUTS if events else set())
    )
    assert run.secret_outputs == {"externalId"}
    assert run.outputs["externalId"] == EXTERNAL_ID
    bucket, region = run.outputs["bucketName"], run.outputs["region"]
    assert region == committed_config(stack)["aws:region"]
    assert run.outputs["bucketArn"] == f"arn:aws:s3:::{bucket}"
    assert run.outputs["objectUrlPrefix"] == f"https://{bucket}.s3.{region}.amazonaws.com/"
    assert run.outputs["roleArn"] == f"arn:aws:iam::{ACCOUNT_ID}:role/encord-s3-{stack}"
    assert bucket in run.outputs["integrationTitle"]
    assert run.outputs["allowWrite"] is bool(committed_config(stack).get("encord-s3:allowWrite"))


# A bucket the stack creates -------------------------------------------------------------


@pytest.fixture(scope="module")
def created():
    return run_stack("dev", {"allowWrite": False})


def test_new_bucket_blocks_all_public_access(created):
    flags = created.one(PUBLIC_ACCESS_BLOCK).inputs
    assert flags == {
        "bucket": created.outputs["bucketName"],
        "blockPublicAcls": True,
        "blockPublicPolicy": True,
        "ignorePublicAcls": True,
        "restrictPublicBuckets": True,
    }


def test_new_bucket_disables_acls(created):
    assert created.one(OWNERSHIP).inputs["rule"] == {"objectOwnership": "BucketOwnerEnforced"}


def test_new_bucket_is_encrypted_with_sse_s3_by_default(created):
    (rule,) = created.one(ENCRYPTION).inputs["rules"]
    assert rule["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "AES256"}


def test_new_bucket_denies_requests_without_tls(created):
    bucket_arn = created.outputs["bucketArn"]
    policy = document(created.one(BUCKET_POLICY), "policy")
    assert {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn, f"{bucket_arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    } in policy["Statement"]


def test_new_bucket_aborts_incomplete_multipart_uploads(created):
    (rule,) = created.one(LIFECYCLE).inputs["rules"]
    assert rule["status"] == "Enabled" and rule["filter"] == {"prefix": ""}
    assert rule["abortIncompleteMultipartUpload"]["daysAfterInitiation"] > 0


def test_destroy_keeps_the_bucket_and_its_protections_but_revokes_encord(created):
    assert created.one(BUCKET).inputs["forceDestroy"] is False
    retained = {r.type for r in created.resources if r.retain_on_delete}
    assert retained == {
        BUCKET,
        PUBLIC_ACCESS_BLOCK,
        OWNERSHIP,
        ENCRYPTION,
        BUCKET_POLICY,
        LIFECYCLE,
        VERSIONING,
    }
    assert not {ROLE, POLICY, ATTACHMENT, CORS} & retained


def test_force_destroy_lets_destroy_delete_the_bucket():
    run = run_stack("dev", {"forceDestroy": True})
    assert run.one(BUCKET).inputs["forceDestroy"] is True
    assert not any(r.retain_on_delete for r in run.resources)


def test_read_only_by_default(created):
    policy = permission_policy(created)
    assert actions(policy) == READ_ACTIONS
    assert resources_of(policy, "s3:GetObject") == [f"{created.outputs['bucketArn']}/*"]
    assert resources_of(policy, "s3:ListBucket") == [created.outputs["bucketArn"]]
    assert "Condition" not in policy["Statement"][0]
    assert created.one(CORS).inputs["corsRules"][0]["allowedMethods"] == ["GET", "HEAD"]


def test_versioning_and_access_logging_are_options():
    plain = run_stack("dev", {"versioning": False})
    assert plain.of_type(VERSIONING) == [] and plain.of_type(LOGGING) == []
    logged = run_stack("dev", {"accessLogBucket": "acme-logs", "accessLogPrefix": "encord/"})
    assert logged.one(VERSIONING).inputs["versioningConfiguration"] == {"status": "Enabled"}
    assert logged.one(LOGGING).inputs == {
        "bucket": logged.outputs["bucketName"],
        "targetBucket": "acme-logs",
        "targetPrefix": "encord/",
    }


def test_bucket_name_is_configurable():
    run = run_stack("dev", {"bucketName": "acme-encord-dev"})
    assert run.one(BUCKET).inputs == {"bucket": "acme-encord-dev", "forceDestroy": False}
    assert run.outputs["bucketName"] == "acme-encord-dev"


# Variants ------------------------------------------------------------------------------


def test_adopted_bucket_gets_only_cors_policy_and_role():
    run = run_stack(
        "dev", {"createBucket": False, "bucketName": "acme-existing", "versioning": False}
    )
    created_types = {r.type for r in run.resources if r.custom}
    assert created_types == {CORS, ROLE, POLICY, ATTACHMENT}
    assert not set(BUCKET_SETTINGS) & created_types and BUCKET not in created_types
    assert run.one(CORS).inputs["bucket"] == "acme-existing"
    assert resources_of(permission_policy(run), "s3:GetObject") == ["arn:aws:s3:::acme-existing/*"]
    assert run.outputs["bucketName"] == "acme-existing"


def test_kms_key_encrypts_with_a_bucket_key_and_only_that_key_is_granted():
    run = run_stack("dev", {"kmsKeyArn": KMS_KEY, "allowWrite": False})
    (rule,) = run.one(ENCRYPTION).inputs["rules"]
    assert rule == {
        "applyServerSideEncryptionByDefault": {
            "sseAlgorithm": "aws:kms",
            "kmsMasterKeyId": KMS_KEY,
        },
        "bucketKeyEnabled": True,
    }
    policy = permission_policy(run)
    assert actions(policy) == READ_ACTIONS | {"kms:Decrypt"}
    assert resources_of(policy, "kms:Decrypt") == [KMS_KEY]


def test_kms_with_write_also_grants_data_keys_for_that_key_only():
    policy = permission_policy(run_stack("dev", {"kmsKeyArn": KMS_KEY, "allowWrite": True}))
    assert resources_of(policy, "kms:GenerateDataKey") == [KMS_KEY]


def test_prefixes_scope_reads_and_listing():
    run = run_stack("dev", {"prefixes": ["images/", "videos/"], "allowWrite": False})
    bucket_arn = run.outputs["bucketArn"]
    policy = permission_policy(run)
    assert resources_of(policy, "s3:GetObject") == [
        f"{bucket_arn}/images/*",
        f"{bucket_arn}/videos/*",
    ]
    (listing,) = [s for s in policy["Statement"] if s["Action"] == "s3:ListBucket"]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["images/*", "videos/*"]}}
    assert run.outputs["prefixes"] == ["images/", "videos/"]


def test_allow_write_adds_put_object_and_cors_write_methods():
    run = run_stack("dev", {"allowWrite": True, "prefixes": ["images/"]})
    policy = permission_policy(run)
    assert actions(policy) == READ_ACTIONS | {"s3:PutObject"}
    assert resources_of(policy, "s3:PutObject") == [f"{run.outputs['bucketArn']}/images/*"]
    assert run.one(CORS).inputs["corsRules"][0]["allowedMethods"] == ["GET", "HEAD", "PUT", "POST"]
    assert run.outputs["allowWrite"] is True


def test_multi_region_access_point_blocks_public_access_and_extends_the_policy():
    run = run_stack("dev", {"multiRegionAccessPoint": True, "allowWrite": False})
    details = run.one(MRAP).inputs["details"]
    assert details["regions"] == [{"bucket": run.outputs["bucketName"]}]
    assert details["publicAccessBlock"] == {
        "blockPublicAcls": True,
        "blockPublicPolicy": True,
        "ignorePublicAcls": True,
        "restrictPublicBuckets": True,
    }
    mrap_arn = run.one(MRAP).state["arn"]
    policy = permission_policy(run)
    assert f"{mrap_arn}/object/*" in resources_of(policy, "s3:GetObject")
    assert mrap_arn in resources_of(policy, "s3:ListBucket")
    assert run.outputs["mrapArn"] == mrap_arn
    assert run.outputs["mrapAlias"] == run.one(MRAP).state["alias"]
    assert run.outputs["objectUrlPrefix"] == f"{mrap_arn}/"
    assert set(run.outputs) == ALWAYS_EXPORTED | {"mrapArn", "mrapAlias"}


def test_us_platform_origin_is_configurable():
    run = run_stack("dev", {"corsOrigins": ["https://app.us.encord.com"]})
    assert run.one(CORS).inputs["corsRules"][0]["allowedOrigins"] == ["https://app.us.encord.com"]
    assert run.outputs["corsOrigins"] == ["https://app.us.encord.com"]


def test_role_name_is_stable_and_configurable():
    assert run_stack("dev").one(ROLE).inputs["name"] == "encord-s3-dev"
    assert run_stack("dev", {"roleName": "EncordAccess"}).outputs["roleName"] == "EncordAccess"


def test_account_principal_is_trusted_as_its_root_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING):
        run = run_stack("dev", {"encordPrincipal": "999988887777"})
    trust = document(run.one(ROLE), "assumeRolePolicy")["Statement"][0]
    assert trust["Principal"] == {"AWS": "arn:aws:iam::999988887777:root"}
    assert trust["Condition"] == {"StringEquals": {"sts:ExternalId": EXTERNAL_ID}}
    assert "role ARN is safer" in caplog.text


def test_role_principal_logs_no_warning(caplog):
    with caplog.at_level(logging.WARNING):
        run_stack("dev")
    assert "safer" not in caplog.text


def test_the_ingest_section_belongs_to_another_program():
    run = run_stack("dev", {"ingest": {"datasetTitle": "x"}})
    assert run.outputs["roleName"] == "encord-s3-dev"
