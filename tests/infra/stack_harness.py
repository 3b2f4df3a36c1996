"""Run the real Pulumi program offline: stack config from the files, a fake AWS as mocks.

Imported by the test modules of this directory (pytest puts it on sys.path).
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
import yaml

from standins.pulumi_offline import (
    PROJECT_DIR,
    ProgramRun,
    RegisteredResource,
    load_stack_config,
    run_program,
)

ACCOUNT_ID = "111122223333"
# What Encord's "New integration → AWS S3" dialog shows; dev and prod do not commit them.
ENCORD_ROLE = "arn:aws:iam::999988887777:role/encord-integrations"
EXTERNAL_ID = "encord-ext-7f3a9c"

STACKS = sorted(
    p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in PROJECT_DIR.glob("Pulumi.*.yaml")
)

BUCKET = "aws:s3/bucket:Bucket"
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
OWNERSHIP = "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
ENCRYPTION = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
)
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
LOGGING = "aws:s3/bucketLogging:BucketLogging"
INVENTORY = "aws:s3/inventory:Inventory"
CORS = "aws:s3/bucketCorsConfiguration:BucketCorsConfiguration"
MRAP = "aws:s3control/multiRegionAccessPoint:MultiRegionAccessPoint"
ROLE = "aws:iam/role:Role"
POLICY = "aws:iam/policy:Policy"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
BUCKET_SETTINGS = (
    PUBLIC_ACCESS_BLOCK,
    OWNERSHIP,
    ENCRYPTION,
    BUCKET_POLICY,
    LIFECYCLE,
    VERSIONING,
    LOGGING,
)


QUEUE = "aws:sqs/queue:Queue"
QUEUE_POLICY = "aws:sqs/queuePolicy:QueuePolicy"
REDRIVE_ALLOW_POLICY = "aws:sqs/redriveAllowPolicy:RedriveAllowPolicy"
NOTIFICATION = "aws:s3/bucketNotification:BucketNotification"
EVENT_RULE = "aws:cloudwatch/eventRule:EventRule"
EVENT_TARGET = "aws:cloudwatch/eventTarget:EventTarget"
EVENTS_TYPES = (QUEUE, QUEUE_POLICY, REDRIVE_ALLOW_POLICY, NOTIFICATION, EVENT_RULE, EVENT_TARGET)

CALLER_IDENTITY = "aws:index/getCallerIdentity:getCallerIdentity"


class FakeAws(pulumi.runtime.Mocks):
    """Echoes inputs and fabricates what AWS computes (auto-names, ARNs, queue URLs, the MRAP
    alias) and the deploying account's identity."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        state = dict(args.inputs)
        if args.typ == BUCKET:
            state.setdefault("bucket", f"{args.name}-1a2b3c4")
            state["arn"] = f"arn:aws:s3:::{state['bucket']}"
        elif args.typ == ROLE:
            state["arn"] = f"arn:aws:iam::{ACCOUNT_ID}:role/{args.inputs['name']}"
        elif args.typ == POLICY:
            state["arn"] = f"arn:aws:iam::{ACCOUNT_ID}:policy/{args.inputs['name']}"
        elif args.typ == QUEUE:
            region = pulumi.Config("aws").require("region")
            state["name"] = f"{args.name}-5e6f7a8"
            state["arn"] = f"arn:aws:sqs:{region}:{ACCOUNT_ID}:{state['name']}"
            state["url"] = f"https://sqs.{region}.amazonaws.com/{ACCOUNT_ID}/{state['name']}"
        elif args.typ == EVENT_RULE:
            region = pulumi.Config("aws").require("region")
            state["name"] = f"{args.name}-9b0c1d2"
            state["arn"] = f"arn:aws:events:{region}:{ACCOUNT_ID}:rule/{state['name']}"
        elif args.typ == MRAP:
            state["alias"] = f"{args.inputs['details']['name']}-0a1b2c3d4e.mrap"
            state["arn"] = f"arn:aws:s3::{ACCOUNT_ID}:accesspoint/{state['alias']}"
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs):
        if args.token == CALLER_IDENTITY:
            return {
                "accountId": ACCOUNT_ID,
                "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/deployer",
                "id": ACCOUNT_ID,
                "userId": "AIDADEPLOYER",
            }
        raise NotImplementedError(f"the program calls no other invokes: {args.token}")


def dialog_values(stack: str) -> tuple[dict[str, str], dict[str, str]]:
    """The values from Encord's dialog a stack file leaves to `pulumi config set`, as overrides."""
    committed = committed_config(stack)
    overrides = {} if "encord-s3:encordPrincipal" in committed else {"encordPrincipal": ENCORD_ROLE}
    return overrides, {"externalId": EXTERNAL_ID}


def committed_config(stack: str) -> dict[str, Any]:
    return yaml.safe_load((PROJECT_DIR / f"Pulumi.{stack}.yaml").read_text())["config"]


def run_stack(stack: str = "dev", settings: dict[str, Any] | None = None) -> ProgramRun:
    """Run `__main__.py` with `stack`'s files plus `settings` (as `pulumi config set` would)."""
    overrides, secret_overrides = dialog_values(stack)
    return run_program(
        load_stack_config(stack, overrides | (settings or {}), secret_overrides), FakeAws()
    )


def document(resource: RegisteredResource, key: str) -> dict:
    """A JSON document input (policy, trust policy) of a registered resource."""
    return json.loads(resource.inputs[key])
