"""Each bad config value stops the program with one line naming the key and the fix."""

from __future__ import annotations

import json

import pulumi
import pytest
from stack_harness import ENCORD_ROLE, EXTERNAL_ID, FakeAws, run_stack

from infra.config import ConfigError, load_settings
from standins.pulumi_offline import StackConfigError, load_stack_config, run_program

SET_PRINCIPAL = (
    "pulumi config set encord-s3:encordPrincipal "
    "<role ARN or account id from Encord's 'New integration → AWS S3' dialog>"
)
BAD_PRINCIPAL = (
    "encord-s3:encordPrincipal must be an IAM role ARN (arn:aws:iam::<account>:role/<name>), "
    "an IAM user ARN (arn:aws:iam::<account>:user/<name>) or a 12-digit account id."
)
SET_EXTERNAL_ID = "pulumi config set --secret encord-s3:externalId <value from Encord's dialog>"


def config_error(overrides: dict, secret_overrides: dict | None = None) -> str:
    config = load_stack_config("dev", overrides, secret_overrides)
    with pytest.raises(ConfigError) as raised:
        run_program(config, FakeAws())
    return str(raised.value)


def bad(**settings) -> str:
    """The message for `settings` on top of an otherwise valid dev stack."""
    return config_error({"encordPrincipal": ENCORD_ROLE} | settings, {"externalId": EXTERNAL_ID})


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"encordPrincipal": "encord"},
            f"{BAD_PRINCIPAL} Fix: {SET_PRINCIPAL}",
        ),
        (
            {"encordPrincipal": "arn:aws:iam::99998888777:role/encord"},  # 11 digits
            f"{BAD_PRINCIPAL} Fix: {SET_PRINCIPAL}",
        ),
        (
            {"encordPrincipal": "arn:aws:iam::999988887777:group/encord"},  # not a principal
            f"{BAD_PRINCIPAL} Fix: {SET_PRINCIPAL}",
        ),
        (
            {"encordPrincipal": "arn:aws:sts::999988887777:assumed-role/encord/session"},
            f"{BAD_PRINCIPAL} Fix: {SET_PRINCIPAL}",
        ),
        (
            {"prefixes": ["images"]},
            "encord-s3:prefixes items must end with / (images would also grant images-private/). "
            "Fix: pulumi config set --path 'encord-s3:prefixes[0]' images/",
        ),
        (
            {"prefixes": ["images/", "scans 2024"]},  # the fix names the item and quotes it
            "encord-s3:prefixes items must end with / (scans 2024 would also grant scans 2024-private/). "
            "Fix: pulumi config set --path 'encord-s3:prefixes[1]' 'scans 2024/'",
        ),
        (
            {"corsOrigins": ["http://app.encord.com"]},
            "encord-s3:corsOrigins items must be https:// origins, e.g. https://app.us.encord.com. "
            "Fix: pulumi config set --path 'encord-s3:corsOrigins[0]' https://app.encord.com",
        ),
        (
            {"corsOrigins": ["https://app.encord.com/"]},
            "encord-s3:corsOrigins items must be bare origins, without a path or trailing slash. "
            "Fix: pulumi config set --path 'encord-s3:corsOrigins[0]' https://app.encord.com",
        ),
        (
            {"corsOrigins": "https://app.encord.com"},
            "encord-s3:corsOrigins must be a list (set items with `--path 'key[0]'`). "
            "Fix: pulumi config set --path 'encord-s3:corsOrigins[0]' https://app.encord.com",
        ),
        (
            {"aws:region": "eu-middle-7"},
            "aws:region is not an AWS region with S3 (e.g. eu-west-2, us-east-1). "
            "Fix: pulumi config set aws:region <region, e.g. eu-west-2>",
        ),
        (
            {"prefixes": ["/images/"]},
            "encord-s3:prefixes items must be non-empty key prefixes without a leading slash. "
            "Fix: pulumi config set --path 'encord-s3:prefixes[0]' <key prefix, e.g. images/>",
        ),
        (
            {"prefixes": ["images/*"]},
            "encord-s3:prefixes items must not contain * or ?. "
            "Fix: pulumi config set --path 'encord-s3:prefixes[0]' <key prefix, e.g. images/>",
        ),
        (
            {"allowWrite": "yes please"},
            "encord-s3:allowWrite must be true or false. Fix: pulumi config set encord-s3:allowWrite true|false",
        ),
        *(  # pydantic alone would read each of these as a boolean
            (
                {key: text},
                f"encord-s3:{key} must be true or false. Fix: pulumi config set encord-s3:{key} true|false",
            )
            for key, text in [
                ("allowWrite", "yes"),
                ("allowWrite", "1"),
                ("createBucket", "no"),
                ("versioning", "on"),
                ("multiRegionAccessPoint", "TRUE"),
                ("forceDestroy", "0"),
                ("forceDestroy", "f"),
            ]
        ),
        (
            {"createBucket": False, "versioning": False},
            "encord-s3:bucketName is required when createBucket is false (the bucket to adopt). "
            "Fix: pulumi config set encord-s3:bucketName <bucket name>",
        ),
        (
            {"createBucket": False, "bucketName": "acme-data"},
            "encord-s3:versioning only applies to a bucket the stack creates (createBucket is false). "
            "Fix: pulumi config rm encord-s3:versioning",
        ),
        (
            {"bucketName": "Acme_Data"},
            "encord-s3:bucketName must be an S3 bucket name: 3-63 lowercase letters, digits, dots "
            "and hyphens. Fix: pulumi config set encord-s3:bucketName <bucket name>",
        ),
        (
            {"kmsKeyArn": "alias/encord"},
            "encord-s3:kmsKeyArn must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>). "
            "Fix: pulumi config set encord-s3:kmsKeyArn arn:aws:kms:<region>:<account>:key/<key id>",
        ),
        (
            {"kmsKeyArn": "arn:aws:kms:us-east-1:111122223333:key/abcd"},  # dev is eu-west-2
            "encord-s3:kmsKeyArn must be a key in the stack's aws:region (S3 needs a same-region key). "
            "Fix: pulumi config set encord-s3:kmsKeyArn arn:aws:kms:<region>:<account>:key/<key id>",
        ),
        (
            {"roleName": "encord role"},
            "encord-s3:roleName must be 1-64 letters, digits and _+=,.@-. "
            "Fix: pulumi config set encord-s3:roleName <IAM role name>",
        ),
        (
            {"inventory": {"enabled": True, "frequency": "Hourly"}},
            "encord-s3:inventory.frequency must be Daily or Weekly. "
            "Fix: pulumi config set --path 'encord-s3:inventory.frequency' Daily|Weekly",
        ),
        (
            {"inventory": {"enabled": True, "format": "JSON"}},
            "encord-s3:inventory.format must be Parquet, CSV or ORC. "
            "Fix: pulumi config set --path 'encord-s3:inventory.format' Parquet|CSV|ORC",
        ),
        (
            {"inventory": {"enabled": True, "retentionDays": 0}},
            "encord-s3:inventory.retentionDays must be at least 1 (days a report is kept). "
            "Fix: pulumi config set --path 'encord-s3:inventory.retentionDays' <days, e.g. 14>",
        ),
        (
            {"inventory": {"enabled": True, "frequency": "Weekly", "retentionDays": 6}},
            "encord-s3:inventory.retentionDays must be at least 7 when frequency is Weekly. "
            "Fix: pulumi config set --path 'encord-s3:inventory.retentionDays' <days, e.g. 14>",
        ),
        (
            {"inventory": {"enabled": True, "retentionDays": "two weeks"}},
            "encord-s3:inventory.retentionDays must be a whole number. "
            "Fix: pulumi config set --path 'encord-s3:inventory.retentionDays' <days, e.g. 14>",
        ),
        (
            {"inventory": {"enabled": "sometimes"}},
            "encord-s3:inventory.enabled must be true or false. "
            "Fix: pulumi config set --path 'encord-s3:inventory.enabled' true|false",
        ),
        (
            {"inventory": {"enabled": 1}},
            "encord-s3:inventory.enabled must be true or false. "
            "Fix: pulumi config set --path 'encord-s3:inventory.enabled' true|false",
        ),
        (
            {"inventory": {"enabled": "yes"}},
            "encord-s3:inventory.enabled must be true or false. "
            "Fix: pulumi config set --path 'encord-s3:inventory.enabled' true|false",
        ),
        (
            {"inventory": True},  # `pulumi config set encord-s3:inventory true`
            "encord-s3:inventory must be a mapping of settings. "
            "Fix: pulumi config set --path 'encord-s3:inventory.enabled' true",
        ),
    ],
    ids=lambda value: str(value)[:40] if isinstance(value, dict) else "",
)
def test_bad_value_names_the_key_and_the_fix(settings, message):
    assert bad(**settings) == message


@pytest.mark.parametrize(
    ("text", "value"), [("true", True), ("True", True), ("false", False), ("False", False)]
)
def test_booleans_are_read_as_pulumi_reads_them(text, value):
    run = run_stack("dev", {"allowWrite": text})
    assert ("s3:PutObject" in run.one("aws:iam/policy:Policy").inputs["policy"]) is value


@pytest.mark.parametrize(
    "principal",
    [
        "arn:aws:iam::999988887777:role/encord",
        "arn:aws:iam::999988887777:role/service/encord-integrations",
        "arn:aws:iam::999988887777:user/encord-sandbox",  # the demo's local Encord is a user
        "arn:aws:iam::999988887777:root",
        "999988887777",
    ],
)
def test_documented_principals_are_accepted(principal):
    run = run_stack("dev", {"encordPrincipal": principal})
    assert run.outputs["roleName"] == "encord-s3-dev"


def test_misspelt_key_is_not_silently_ignored():
    message = bad(allowwrite=True)
    assert message.startswith("encord-s3:allowwrite is not a setting of this program (known: ")
    assert "allowWrite" in message
    assert message.endswith("Fix: pulumi config rm encord-s3:allowwrite")


def test_misspelt_inventory_key_names_the_inventory_keys():
    assert bad(inventory={"enabled": True, "retention": 7}) == (
        "encord-s3:inventory.retention is not a setting of this program "
        "(known: enabled, format, frequency, retentionDays). "
        "Fix: pulumi config rm --path 'encord-s3:inventory.retention'"
    )


def test_inventory_settings_are_read_whatever_their_case_and_as_the_cli_passes_them():
    config = {"enabled": "true", "frequency": "WEEKLY", "format": "orc", "retentionDays": "7"}
    run = run_stack("dev", {"inventory": config})  # --path values may arrive as strings
    (inventory,) = [r for r in run.resources if r.type == "aws:s3/inventory:Inventory"]
    assert inventory.inputs["schedule"] == {"frequency": "Weekly"}
    assert inventory.inputs["destination"]["bucket"]["format"] == "ORC"


@pytest.mark.parametrize(
    "external_id", ["x", "a" * 1225, "has space", "semi;colon", "ünïcode", "trailing-newline\n"]
)
def test_malformed_external_id_is_refused_without_echoing_it(external_id):
    message = config_error({"encordPrincipal": ENCORD_ROLE}, {"externalId": external_id})
    assert message == (  # exactly this: the value itself never appears
        "encord-s3:externalId must be 2-1224 characters of letters, digits and _+=,.@:/-. "
        f"Fix: {SET_EXTERNAL_ID}"
    )


@pytest.mark.parametrize("external_id", ["ab", "a" * 1224, "Encord+org=1,x.y@z:w/v-u_t"])
def test_external_ids_within_aws_limits_are_accepted(external_id):
    config = load_stack_config("dev", {"encordPrincipal": ENCORD_ROLE}, {"externalId": external_id})
    assert run_program(config, FakeAws()).outputs["externalId"] == external_id


def test_missing_external_id():
    assert (
        config_error({"encordPrincipal": ENCORD_ROLE})
        == f"encord-s3:externalId is not set. Fix: {SET_EXTERNAL_ID}"
    )


def test_missing_principal():
    assert (
        config_error({}, {"externalId": EXTERNAL_ID})
        == f"encord-s3:encordPrincipal is not set. Fix: {SET_PRINCIPAL}"
    )


def test_external_id_in_plain_text_is_refused():
    message = config_error({"encordPrincipal": ENCORD_ROLE, "externalId": EXTERNAL_ID})
    assert message == f"encord-s3:externalId must be stored as a secret. Fix: {SET_EXTERNAL_ID}"


def test_several_bad_keys_give_one_line_each():
    lines = config_error({"encordPrincipal": "encord", "aws:region": "mars-1"}).splitlines()
    assert [line.split(" ", 1)[0] for line in lines] == [
        "aws:region",
        "encord-s3:encordPrincipal",
        "encord-s3:externalId",
    ]


def test_config_error_is_a_run_error_so_the_cli_prints_it_without_a_traceback():
    # The Python language host catches pulumi.RunError, logs str(error) and exits non-zero.
    with pytest.raises(pulumi.RunError):
        run_stack("dev", {"encordPrincipal": "encord"})


def test_an_encrypted_value_without_an_override_is_reported(tmp_path):
    (tmp_path / "Pulumi.yaml").write_text("name: encord-s3\n")
    (tmp_path / "Pulumi.ci.yaml").write_text(
        "config:\n  encord-s3:externalId:\n    secure: AAABAJ==\n"
    )
    with pytest.raises(
        StackConfigError, match="encrypted encord-s3:externalId need a secret override"
    ):
        load_stack_config("ci", project_dir=tmp_path)


def test_settings_come_from_the_environment_the_cli_passes(monkeypatch):
    """Under the CLI, config arrives as PULUMI_CONFIG / PULUMI_CONFIG_SECRET_KEYS."""
    pulumi.runtime.set_mocks(FakeAws(), project="encord-s3", stack="ci")
    pulumi.runtime.set_all_config({}, [])
    cli_config = {
        "aws:region": "eu-west-2",
        "encord-s3:encordPrincipal": ENCORD_ROLE,
        "encord-s3:externalId": EXTERNAL_ID,
        "encord-s3:prefixes": '["images/"]',
        "encord-s3:allowWrite": "true",
    }
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps(cli_config))
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", json.dumps(["encord-s3:externalId"]))
    settings = load_settings()
    assert (settings.region, settings.prefixes, settings.allow_write) == (
        "eu-west-2",
        ("images/",),
        True,
    )
    assert settings.role_name == "encord-s3-ci"
    assert settings.external_id.get_secret_value() == EXTERNAL_ID
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", "[]")
    with pytest.raises(ConfigError, match="must be stored as a secret"):
        load_settings()
