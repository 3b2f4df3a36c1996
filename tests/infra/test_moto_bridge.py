"""standins/moto_bridge.py fails loudly on what it cannot apply, and never prints secrets."""

from __future__ import annotations

import json
import uuid

import pulumi
import pytest
from stack_harness import EXTERNAL_ID

from standins.local_aws import ACCOUNT_ID, ANONYMOUS
from standins.moto_bridge import (
    STAND_IN_NOTICE,
    MotoBridge,
    UnsupportedResourceError,
    apply,
    main,
)


@pytest.fixture(scope="module")
def bridge(aws):
    return MotoBridge(aws.endpoint_url, ANONYMOUS, "us-east-1")


def resource(typ: str, inputs: dict) -> pulumi.runtime.MockResourceArgs:
    return pulumi.runtime.MockResourceArgs(typ=typ, name="x", inputs=inputs, custom=True)


def test_unknown_resource_type_is_refused(bridge):
    with pytest.raises(UnsupportedResourceError, match="cannot create aws:sns/topic:Topic"):
        bridge.new_resource(resource("aws:sns/topic:Topic", {}))


def test_input_the_bridge_would_not_apply_is_refused(bridge):
    with pytest.raises(
        UnsupportedResourceError, match="does not apply input\\(s\\) objectLockEnabled"
    ):
        bridge.new_resource(resource("aws:s3/bucket:Bucket", {"objectLockEnabled": True}))


def test_invokes_other_than_the_caller_identity_are_refused(bridge):
    call = pulumi.runtime.MockCallArgs("aws:iam/getPolicyDocument:getPolicyDocument", {}, "")
    with pytest.raises(UnsupportedResourceError, match="getPolicyDocument"):
        bridge.call(call)


def test_caller_identity_is_moto_s(bridge):
    call = pulumi.runtime.MockCallArgs("aws:index/getCallerIdentity:getCallerIdentity", {}, "")
    identity, failures = bridge.call(call)
    assert identity["accountId"] == ACCOUNT_ID and failures == []


def test_an_inventory_input_the_bridge_would_not_apply_is_refused(bridge):
    with pytest.raises(UnsupportedResourceError, match="does not apply input\\(s\\) region"):
        bridge.new_resource(resource("aws:s3/inventory:Inventory", {"region": "eu-west-1"}))


def test_cli_says_it_is_a_stand_in_and_masks_secrets(aws, monkeypatch, capsys):
    monkeypatch.setenv("TEST_EXTERNAL_ID", EXTERNAL_ID)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ANONYMOUS.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", ANONYMOUS.secret_access_key)
    suffix = uuid.uuid4().hex[:8]
    status = main(
        [
            "--endpoint-url",
            aws.endpoint_url,
            "--set",
            f"bucketName=cli-{suffix}",
            "--set",
            f"roleName=encord-cli-{suffix}",
            "--secret-env",
            "externalId=TEST_EXTERNAL_ID",
        ]
    )
    out, err = capsys.readouterr()
    assert status == 0
    assert STAND_IN_NOTICE in err
    outputs = json.loads(out)
    assert outputs["bucketName"] == f"cli-{suffix}" and outputs["externalId"] == "[secret]"
    assert EXTERNAL_ID not in out + err


def test_an_sqs_queue_input_the_bridge_would_not_apply_is_refused(bridge):
    with pytest.raises(
        UnsupportedResourceError, match="does not apply input\\(s\\) kmsMasterKeyId"
    ):
        bridge.new_resource(resource("aws:sqs/queue:Queue", {"kmsMasterKeyId": "alias/x"}))


def test_what_moto_cannot_enforce_about_the_events_queue_is_announced(aws, capsys):
    suffix = uuid.uuid4().hex[:8]
    settings = {"bucketName": f"ev-{suffix}", "roleName": f"encord-ev-{suffix}"}
    settings |= {"versioning": False, "events": {"enabled": True}}
    apply("demo", aws.endpoint_url, ANONYMOUS, settings, {"externalId": EXTERNAL_ID})
    _, err = capsys.readouterr()
    assert (
        "QueuePolicy" in err and "not enforced locally (moto evaluates no SQS queue policy)" in err
    )
    assert "RedriveAllowPolicy" in err and "not stored locally" in err
    assert EXTERNAL_ID not in err


def test_cli_reports_a_config_error_in_one_line(aws, monkeypatch, capsys):
    monkeypatch.setenv("TEST_EXTERNAL_ID", "x")
    status = main(
        ["--endpoint-url", aws.endpoint_url, "--secret-env", "externalId=TEST_EXTERNAL_ID"]
    )
    _, err = capsys.readouterr()
    assert status == 1
    assert err.splitlines()[-1].startswith("error: encord-s3:externalId must be 2-1224 characters")
    assert "Traceback" not in err
