"""A local stand-in for `pulumi up`: the real program, applied to moto instead of AWS.

`__main__.py` runs under Pulumi's mock runtime (standins/pulumi_offline.py) with `MotoBridge`
as the mocks: each resource the program registers is created in moto through boto3, and
the state handed back to the program (names, ARNs, the access point's alias) is moto's, so
the stack outputs come from moto. There is no Pulumi engine here: no state file, no diff,
no updates or deletes; run it once against a fresh moto.

The bridge covers exactly the resource types the program uses, with exactly the inputs it
sets; any other type, input or invoke stops the run, rather than being silently skipped.
Deliberate, announced deviations: two kinds of bucket-policy statement are not put into
moto, which would apply them to every request (see `_left_out_of_moto`): the TLS-only
Deny, and the grant that lets S3 deliver inventory reports. The events queue's policy is
stored but moto evaluates no SQS queue policy, and moto has no RedriveAllowPolicy
attribute, so the dead-letter queue's is not stored at all.

    python -m standins.moto_bridge --stack demo --endpoint-url http://127.0.0.1:5000 \\
        --secret-env externalId=ENCORD_EXTERNAL_ID
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import boto3
import pulumi

from standins.local_aws import Credentials
from standins.pulumi_offline import ProgramRun, StackConfigError, load_stack_config, run_program

STAND_IN_NOTICE = (
    "LOCAL STAND-IN for `pulumi up`: the Pulumi program runs under Pulumi's mock runtime and "
    "each resource is created in moto (local AWS) via boto3. Nothing is deployed to AWS."
)
US_EAST_1 = "us-east-1"  # the one region whose buckets take no LocationConstraint
# Where Pulumi's camelCase → S3's PascalCase is not just a capital first letter.
_API_NAMES = {"Id": "ID", "SseAlgorithm": "SSEAlgorithm", "KmsMasterKeyId": "KMSMasterKeyID"}


# Pulumi's Queue inputs → SQS's queue attributes.
_QUEUE_ATTRIBUTES = {
    "messageRetentionSeconds": "MessageRetentionPeriod",
    "visibilityTimeoutSeconds": "VisibilityTimeout",
    "receiveWaitTimeSeconds": "ReceiveMessageWaitTimeSeconds",
    "sqsManagedSseEnabled": "SqsManagedSseEnabled",
    "redrivePolicy": "RedrivePolicy",
}


def _attribute(value: Any) -> str:
    """A queue attribute as SQS takes it: text (`true`, `300`)."""
    if isinstance(value, bool):
        return str(value).lower()
    return str(_api_shape(value))


class UnsupportedResourceError(RuntimeError):
    """The program registered something the bridge cannot create faithfully in moto."""


def _api_shape(value: Any) -> Any:
    """Pulumi's inputs as the S3 API's: `allowedOrigins` → `AllowedOrigins`, and whole numbers
    as ints (the engine's wire format carries every number as a double)."""
    if isinstance(value, dict):
        return {
            _API_NAMES.get(k[:1].upper() + k[1:], k[:1].upper() + k[1:]): _api_shape(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_api_shape(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _is_tls_only(statement: dict) -> bool:
    """The `Deny ... aws:SecureTransport=false` statement.

    moto serves plain HTTP and evaluates bucket-policy conditions it does not implement
    (all but StringEquals) as matching, so in moto this statement denies every object
    request, the sandbox's included. It is checked on the program's inputs
    (tests/infra) and is what AWS enforces; the bridge leaves it out of moto.
    """
    return statement.get("Effect") == "Deny" and statement.get("Condition") == {
        "Bool": {"aws:SecureTransport": "false"}
    }


def _is_service_grant(statement: dict) -> bool:
    """An Allow for an AWS service principal (S3 delivering inventory reports).

    Its StringEquals conditions name keys no caller of moto sends (aws:SourceAccount); a
    condition on a missing key fails (standins/local_aws.py makes moto do so, as AWS does),
    and moto turns a failing condition, even an Allow's, into a Deny before it compares
    the resource: in moto the grant would deny every PutObject into the bucket, the
    admin's included. No AWS service writes to moto (it generates no inventory reports),
    so the grant has nothing to do there. It is checked on the program's inputs
    (tests/infra), and passes moto's IAM document validation (test_moto_documents.py).
    """
    principal = statement.get("Principal")
    return (
        statement.get("Effect") == "Allow"
        and isinstance(principal, dict)
        and set(principal) == {"Service"}
    )


def _left_out_of_moto(statement: dict) -> str | None:
    """Why the bridge keeps a bucket-policy statement out of moto, or None to put it in."""
    if _is_tls_only(statement):
        return "TLS-only Deny not enforced locally (moto is plain HTTP and ignores Bool conditions)"
    if _is_service_grant(statement):
        return (
            f"{statement['Principal']['Service']} grant not stored locally "
            "(moto would deny every PutObject on its conditions)"
        )
    return None


def _auto_name(name: str) -> str:
    """Pulumi's auto-naming: the logical name plus a random suffix."""
    return f"{name}-{secrets.token_hex(4)[:7]}"


Handler = Callable[[str, dict[str, Any]], tuple[str, dict[str, Any]]]


class MotoBridge(pulumi.runtime.Mocks):
    """Pulumi mocks that create each registered resource in moto and return its real state."""

    def __init__(
        self,
        endpoint_url: str,
        credentials: Credentials,
        region: str,
        echo: Callable[[str], None] = lambda line: None,
    ) -> None:
        session = boto3.Session(region_name=region, **credentials.client_kwargs())
        self._region = region
        self._echo = echo
        self._s3 = session.client("s3", endpoint_url=endpoint_url)
        self._iam = session.client("iam", endpoint_url=endpoint_url)
        self._s3control = session.client("s3control", endpoint_url=endpoint_url)
        self._sqs = session.client("sqs", endpoint_url=endpoint_url)
        self._events = session.client("events", endpoint_url=endpoint_url)
        # S3 Control addresses `<account>.<endpoint host>`; a local endpoint has no such host.
        endpoint_host = urlsplit(endpoint_url).netloc
        self._s3control.meta.events.register(
            "before-sign.s3-control.*",
            lambda request, **_: setattr(
                request, "url", urlunsplit(urlsplit(request.url)._replace(netloc=endpoint_host))
            ),
        )
        self._identity = session.client("sts", endpoint_url=endpoint_url).get_caller_identity()
        self._account_id = self._identity["Account"]
        # type token → (accepted inputs, creator)
        self._types: dict[str, tuple[frozenset[str], Handler]] = {
            "aws:s3/bucket:Bucket": (frozenset({"bucket", "forceDestroy"}), self._bucket),
            "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": (
                frozenset(
                    {
                        "bucket",
                        "blockPublicAcls",
                        "blockPublicPolicy",
                        "ignorePublicAcls",
                        "restrictPublicBuckets",
                    }
                ),
                self._public_access_block,
            ),
            "aws:s3/bucketOwnershipControls:BucketOwnershipControls": (
                frozenset({"bucket", "rule"}),
                self._ownership_controls,
            ),
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": (
                frozenset({"bucket", "rules"}),
                self._encryption,
            ),
            "aws:s3/bucketPolicy:BucketPolicy": (
                frozenset({"bucket", "policy"}),
                self._bucket_policy,
            ),
            "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": (
                frozenset({"bucket", "rules"}),
                self._lifecycle,
            ),
            "aws:s3/bucketVersioning:BucketVersioning": (
                frozenset({"bucket", "versioningConfiguration"}),
                self._versioning,
            ),
            "aws:s3/bucketLogging:BucketLogging": (
                frozenset({"bucket", "targetBucket", "targetPrefix"}),
                self._logging,
            ),
            "aws:s3/bucketCorsConfiguration:BucketCorsConfiguration": (
                frozenset({"bucket", "corsRules"}),
                self._cors,
            ),
            "aws:s3/inventory:Inventory": (
                frozenset(
                    {
                        "bucket",
                        "name",
                        "enabled",
                        "includedObjectVersions",
                        "schedule",
                        "filter",
                        "optionalFields",
                        "destination",
                    }
                ),
                self._inventory,
            ),
            "aws:s3/bucketNotification:BucketNotification": (
                frozenset({"bucket", "queues"}),
                self._notification,
            ),
            "aws:sqs/queue:Queue": (frozenset(_QUEUE_ATTRIBUTES), self._queue),
            "aws:sqs/queuePolicy:QueuePolicy": (
                frozenset({"queueUrl", "policy"}),
                self._queue_policy,
            ),
            "aws:sqs/redriveAllowPolicy:RedriveAllowPolicy": (
                frozenset({"queueUrl", "redriveAllowPolicy"}),
                self._redrive_allow_policy,
            ),
            "aws:cloudwatch/eventRule:EventRule": (
                frozenset({"description", "eventPattern"}),
                self._event_rule,
            ),
            "aws:cloudwatch/eventTarget:EventTarget": (
                frozenset({"rule", "arn", "targetId"}),
                self._event_target,
            ),
            "aws:s3control/multiRegionAccessPoint:MultiRegionAccessPoint": (
                frozenset({"details"}),
                self._multi_region_access_point,
            ),
            "aws:iam/role:Role": (
                frozenset({"name", "description", "assumeRolePolicy", "maxSessionDuration"}),
                self._role,
            ),
            "aws:iam/policy:Policy": (frozenset({"name", "description", "policy"}), self._policy),
            "aws:iam/rolePolicyAttachment:RolePolicyAttachment": (
                frozenset({"role", "policyArn"}),
                self._role_policy_attachment,
            ),
        }

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict]:
        if not args.custom:  # a component resource only groups its children
            return None, {}
        if args.typ not in self._types:
            raise UnsupportedResourceError(
                f"standins.moto_bridge cannot create {args.typ} ({args.name}) in moto; "
                f"supported: {', '.join(sorted(self._types))}"
            )
        accepted, create = self._types[args.typ]
        unexpected = sorted(set(args.inputs) - accepted)
        if unexpected:
            raise UnsupportedResourceError(
                f"standins.moto_bridge does not apply input(s) {', '.join(unexpected)} of {args.typ} ({args.name})"
            )
        resource_id, state = create(args.name, args.inputs)
        self._echo(f"  + {args.typ.rsplit(':', 1)[-1]:<42} {args.name:<24} {resource_id}")
        return resource_id, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list[tuple[str, str]] | None]:
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            identity = {
                "accountId": self._account_id,
                "arn": self._identity["Arn"],
                "id": self._account_id,
                "userId": self._identity["UserId"],
            }
            return identity, []  # no failures (the mock monitor iterates them)
        raise UnsupportedResourceError(
            f"standins.moto_bridge does not implement the invoke {args.token}"
        )

    # S3 ---------------------------------------------------------------------------------
    def _bucket(self, name: str, inputs: dict) -> tuple[str, dict]:
        bucket = inputs.get("bucket") or _auto_name(name)
        location = (
            {}
            if self._region == US_EAST_1
            else {"CreateBucketConfiguration": {"LocationConstraint": self._region}}
        )
        self._s3.create_bucket(Bucket=bucket, **location)
        # forceDestroy only matters when deleting, which the bridge never does.
        return bucket, {
            **inputs,
            "bucket": bucket,
            "arn": f"arn:aws:s3:::{bucket}",
            "region": self._region,
            "bucketDomainName": f"{bucket}.s3.amazonaws.com",
        }

    def _public_access_block(self, name: str, inputs: dict) -> tuple[str, dict]:
        flags = {k: bool(v) for k, v in inputs.items() if k != "bucket"}
        self._s3.put_public_access_block(
            Bucket=inputs["bucket"], PublicAccessBlockConfiguration=_api_shape(flags)
        )
        return inputs["bucket"], dict(inputs)

    def _ownership_controls(self, name: str, inputs: dict) -> tuple[str, dict]:
        self._s3.put_bucket_ownership_controls(
            Bucket=inputs["bucket"], OwnershipControls={"Rules": [_api_shape(inputs["rule"])]}
        )
        return inputs["bucket"], dict(inputs)

    def _encryption(self, name: str, inputs: dict) -> tuple[str, dict]:
        self._s3.put_bucket_encryption(
            Bucket=inputs["bucket"],
            ServerSideEncryptionConfiguration={"Rules": _api_shape(inputs["rules"])},
        )
        return inputs["bucket"], dict(inputs)

    def _bucket_policy(self, name: str, inputs: dict) -> tuple[str, dict]:
        """The policy minus what moto cannot evaluate (see `_left_out_of_moto`)."""
        policy = json.loads(inputs["policy"])
        kept = []
        for statement in policy["Statement"]:
            reason = _left_out_of_moto(statement)
            if reason:
                self._echo(f"  ! {'BucketPolicy':<42} {name:<24} {reason}")
            else:
                kept.append(statement)
        if any("Condition" in s for s in kept):
            raise UnsupportedResourceError(
                f"standins.moto_bridge cannot have moto evaluate the conditions in BucketPolicy {name}"
            )
        if kept:
            self._s3.put_bucket_policy(
                Bucket=inputs["bucket"], Policy=json.dumps(policy | {"Statement": kept})
            )
        return inputs["bucket"], dict(inputs)

    def _lifecycle(self, name: str, inputs: dict) -> tuple[str, dict]:
        self._s3.put_bucket_lifecycle_configuration(
            Bucket=inputs["bucket"], LifecycleConfiguration={"Rules": _api_shape(inputs["rules"])}
        )
        return inputs["bucket"], dict(inputs)

    def _versioning(self, name: str, inputs: dict) -> tuple[str, dict]:
        self._s3.put_bucket_versioning(
            Bucket=inputs["bucket"],
            VersioningConfiguration=_api_shape(inputs["versioningConfiguration"]),
        )
        return inputs["bucket"], dict(inputs)

    def _logging(self, name: str, inputs: dict) -> tuple[str, dict]:
        target = {k: v for k, v in inputs.items() if k != "bucket"}
        self._s3.put_bucket_logging(
            Bucket=inputs["bucket"], BucketLoggingStatus={"LoggingEnabled": _api_shape(target)}
        )
        return inputs["bucket"], dict(inputs)

    def _cors(self, name: str, inputs: dict) -> tuple[str, dict]:
        self._s3.put_bucket_cors(
            Bucket=inputs["bucket"],
            CORSConfiguration={"CORSRules": _api_shape(inputs["corsRules"])},
        )
        return inputs["bucket"], dict(inputs)

    def _inventory(self, name: str, inputs: dict) -> tuple[str, dict]:
        # The S3 API names the destination bucket by its ARN, under `Bucket`.
        destination = {
            "Bucket" if key == "BucketArn" else key: value
            for key, value in _api_shape(inputs["destination"]["bucket"]).items()
        }
        configuration = {
            "Id": inputs["name"],
            "IsEnabled": bool(inputs.get("enabled", True)),  # the provider's default
            "IncludedObjectVersions": inputs["includedObjectVersions"],
            "Schedule": _api_shape(inputs["schedule"]),
            "OptionalFields": inputs.get("optionalFields", []),
            "Destination": {"S3BucketDestination": destination},
        }
        if "filter" in inputs:
            configuration["Filter"] = _api_shape(inputs["filter"])
        self._s3.put_bucket_inventory_configuration(
            Bucket=inputs["bucket"], Id=inputs["name"], InventoryConfiguration=configuration
        )
        return f"{inputs['bucket']}:{inputs['name']}", dict(inputs)

    def _notification(self, name: str, inputs: dict) -> tuple[str, dict]:
        configurations = []
        for queue in inputs["queues"]:
            configuration = {
                "Id": queue["id"],
                "QueueArn": queue["queueArn"],
                "Events": queue["events"],
            }
            if queue.get("filterPrefix"):
                rule = {"Name": "prefix", "Value": queue["filterPrefix"]}
                configuration["Filter"] = {"Key": {"FilterRules": [rule]}}
            configurations.append(configuration)
        self._s3.put_bucket_notification_configuration(
            Bucket=inputs["bucket"],
            NotificationConfiguration={"QueueConfigurations": configurations},
        )
        return inputs["bucket"], dict(inputs)

    def _multi_region_access_point(self, name: str, inputs: dict) -> tuple[str, dict]:
        details = _api_shape(inputs["details"])
        self._s3control.create_multi_region_access_point(
            AccountId=self._account_id, ClientToken=str(uuid.uuid4()), Details=details
        )
        # AWS creates it asynchronously; moto is READY at once.
        access_point = self._s3control.get_multi_region_access_point(
            AccountId=self._account_id, Name=details["Name"]
        )["AccessPoint"]
        alias = access_point["Alias"]
        return f"{self._account_id}:{details['Name']}", {
            **inputs,
            "accountId": self._account_id,
            "alias": alias,
            "arn": f"arn:aws:s3::{self._account_id}:accesspoint/{alias}",
            "domainName": f"{alias}.accesspoint.s3-global.amazonaws.com",
            "status": access_point["Status"],
        }

    # SQS and EventBridge ----------------------------------------------------------------
    def _queue(self, name: str, inputs: dict) -> tuple[str, dict]:
        queue_name = _auto_name(name)
        attributes = {_QUEUE_ATTRIBUTES[k]: _attribute(v) for k, v in inputs.items()}
        url = self._sqs.create_queue(QueueName=queue_name, Attributes=attributes)["QueueUrl"]
        arn = self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        return url, {**inputs, "name": queue_name, "arn": arn, "url": url}

    def _queue_policy(self, name: str, inputs: dict) -> tuple[str, dict]:
        self._sqs.set_queue_attributes(
            QueueUrl=inputs["queueUrl"], Attributes={"Policy": inputs["policy"]}
        )
        self._echo(
            f"  ! {'QueuePolicy':<42} {name:<24} stored, not enforced locally "
            "(moto evaluates no SQS queue policy)"
        )
        return inputs["queueUrl"], dict(inputs)

    def _redrive_allow_policy(self, name: str, inputs: dict) -> tuple[str, dict]:
        self._echo(
            f"  ! {'RedriveAllowPolicy':<42} {name:<24} not stored locally "
            "(moto has no RedriveAllowPolicy attribute)"
        )
        return inputs["queueUrl"], dict(inputs)

    def _event_rule(self, name: str, inputs: dict) -> tuple[str, dict]:
        rule_name = _auto_name(name)
        arn = self._events.put_rule(
            Name=rule_name,
            EventPattern=inputs["eventPattern"],
            Description=inputs.get("description", ""),
            State="ENABLED",
        )["RuleArn"]
        return rule_name, {**inputs, "name": rule_name, "arn": arn}

    def _event_target(self, name: str, inputs: dict) -> tuple[str, dict]:
        response = self._events.put_targets(
            Rule=inputs["rule"], Targets=[{"Id": inputs["targetId"], "Arn": inputs["arn"]}]
        )
        if response["FailedEntryCount"]:
            raise UnsupportedResourceError(f"moto refused EventTarget {name}: {response}")
        return f"{inputs['rule']}-{inputs['targetId']}", dict(inputs)

    # IAM --------------------------------------------------------------------------------
    def _role(self, name: str, inputs: dict) -> tuple[str, dict]:
        role = self._iam.create_role(
            RoleName=inputs.get("name") or _auto_name(name),
            AssumeRolePolicyDocument=inputs["assumeRolePolicy"],
            Description=inputs.get("description", ""),
            MaxSessionDuration=int(inputs.get("maxSessionDuration", 3600)),
        )["Role"]
        # AWS validates the trust policy on CreateRole; moto only on UpdateAssumeRolePolicy.
        self._iam.update_assume_role_policy(
            RoleName=role["RoleName"], PolicyDocument=inputs["assumeRolePolicy"]
        )
        return role["RoleName"], {
            **inputs,
            "name": role["RoleName"],
            "arn": role["Arn"],
            "uniqueId": role["RoleId"],
        }

    def _policy(self, name: str, inputs: dict) -> tuple[str, dict]:
        policy = self._iam.create_policy(
            PolicyName=inputs.get("name") or _auto_name(name),
            PolicyDocument=inputs["policy"],
            Description=inputs.get("description", ""),
        )["Policy"]
        return policy["Arn"], {
            **inputs,
            "name": policy["PolicyName"],
            "arn": policy["Arn"],
            "policyId": policy["PolicyId"],
        }

    def _role_policy_attachment(self, name: str, inputs: dict) -> tuple[str, dict]:
        self._iam.attach_role_policy(RoleName=inputs["role"], PolicyArn=inputs["policyArn"])
        return f"{inputs['role']}/{inputs['policyArn']}", dict(inputs)


def apply(
    stack: str,
    endpoint_url: str,
    credentials: Credentials,
    overrides: dict[str, str] | None = None,
    secret_overrides: dict[str, str] | None = None,
    quiet: bool = False,
) -> ProgramRun:
    """Apply the program with `stack`'s config to moto: outputs, which are secret, resources.

    Progress (resource types, names and ids, never values) goes to stderr unless `quiet`.
    """
    config = load_stack_config(stack, overrides, secret_overrides)

    def echo(line: str) -> None:
        if not quiet:
            print(line, file=sys.stderr, flush=True)

    echo(STAND_IN_NOTICE)
    echo(f"Stack {config.project}/{stack} → {endpoint_url}")
    bridge = MotoBridge(endpoint_url, credentials, config.values["aws:region"], echo)
    return run_program(config, bridge)


def deploy(
    stack: str,
    endpoint_url: str,
    credentials: Credentials,
    overrides: dict[str, str] | None = None,
    secret_overrides: dict[str, str] | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    """`apply`, returning the plain stack outputs (secrets such as externalId included)."""
    return apply(stack, endpoint_url, credentials, overrides, secret_overrides, quiet).outputs


def _key_values(pairs: list[str]) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in pairs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m standins.moto_bridge", description=STAND_IN_NOTICE
    )
    parser.add_argument("--stack", default="demo")
    parser.add_argument(
        "--endpoint-url", required=True, help="moto server, e.g. http://127.0.0.1:5000"
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="config override"
    )
    parser.add_argument(
        "--secret-env",
        action="append",
        default=[],
        metavar="KEY=ENV_VAR",
        help="secret config override read from an environment variable (never on the command line)",
    )
    args = parser.parse_args(argv)
    secret_overrides = {key: os.environ[var] for key, var in _key_values(args.secret_env).items()}
    credentials = Credentials(
        os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
    )
    try:
        run = apply(
            args.stack, args.endpoint_url, credentials, _key_values(args.set), secret_overrides
        )
    except (pulumi.RunError, StackConfigError) as error:  # config problems: the message says it all
        print(f"error: {error}", file=sys.stderr)
        return 1
    shown = {k: "[secret]" if k in run.secret_outputs else v for k, v in run.outputs.items()}
    print(json.dumps(shown, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
