"""`EncordS3Integration`: the bucket, Encord's role and policy, CORS, an optional MRAP, an
optional S3 Inventory and an optional queue of the bucket's events."""

from __future__ import annotations

import json
import re

import pulumi
import pulumi_aws as aws

from infra import policies
from infra.bucket_events import BucketEvents
from infra.config import IntegrationSettings

ALL_PUBLIC_ACCESS_BLOCKED: aws.s3control.MultiRegionAccessPointDetailsPublicAccessBlockArgsDict = {
    "block_public_acls": True,
    "block_public_policy": True,
    "ignore_public_acls": True,
    "restrict_public_buckets": True,
}
ABORT_INCOMPLETE_UPLOADS_AFTER_DAYS = 7
MAX_SESSION_SECONDS = 3600
# S3 writes reports under <prefix>/<source bucket>/<configuration id>/.
INVENTORY_PREFIX = "inventory"
INVENTORY_ID = "encord-ingest"
INVENTORY_FIELDS = ("Size", "LastModifiedDate", "ETag")


def _cors_rule_args(rule: dict) -> aws.s3.BucketCorsConfigurationCorsRuleArgsDict:
    """The S3 API's CORS rule (`policies.cors_rule`) as Pulumi's input arguments."""
    return {
        "id": rule["ID"],
        "allowed_origins": rule["AllowedOrigins"],
        "allowed_methods": rule["AllowedMethods"],
        "allowed_headers": rule["AllowedHeaders"],
        "expose_headers": rule["ExposeHeaders"],
        "max_age_seconds": rule["MaxAgeSeconds"],
    }


def _access_point_name(role_name: str) -> str:
    """MRAP names allow 3-50 lowercase letters, digits and hyphens."""
    return re.sub(r"[^a-z0-9-]+", "-", role_name.lower())[:50].strip("-")


class EncordS3Integration(pulumi.ComponentResource):
    """Everything Encord's "New integration → AWS S3" dialog needs, and nothing more.

    `stack_outputs` holds the values the user pastes into Encord and the ingest step reads.
    """

    def __init__(
        self, name: str, settings: IntegrationSettings, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("encord-s3:index:EncordS3Integration", name, None, opts)
        self._child = pulumi.ResourceOptions(parent=self)
        self._name = name

        if settings.create_bucket:
            bucket_name = self._create_bucket(settings)
        else:  # adopted: the bucket keeps its own settings; only CORS, policy and role are added
            assert settings.bucket_name is not None  # the config requires it when adopting
            bucket_name = pulumi.Output.from_input(settings.bucket_name)

        aws.s3.BucketCorsConfiguration(
            f"{name}-cors",
            bucket=bucket_name,
            cors_rules=[
                _cors_rule_args(policies.cors_rule(settings.cors_origins, settings.allow_write))
            ],
            opts=self._child,
        )

        mrap = self._multi_region_access_point(settings, bucket_name)
        mrap_arn = mrap.arn if mrap else None
        external_id = pulumi.Output.secret(settings.external_id.get_secret_value())
        role = self._role(settings, external_id, bucket_name, mrap_arn)

        self.stack_outputs: dict[str, pulumi.Input] = {
            "roleArn": role.arn,
            "roleName": role.name,
            "bucketName": bucket_name,
            "bucketArn": bucket_name.apply(policies.bucket_arn),
            "region": settings.region,
            "objectUrlPrefix": pulumi.Output.all(bucket_name, mrap_arn).apply(
                lambda args: policies.object_url_prefix(args[0], settings.region, args[1])
            ),
            "corsOrigins": list(settings.cors_origins),
            "prefixes": list(settings.prefixes),
            # The ingest creates image sequences (Encord writes their video) only if true.
            "allowWrite": settings.allow_write,
            "integrationTitle": bucket_name.apply(lambda b: f"{settings.role_name} ({b})"),
            "externalId": external_id,
        }
        if mrap:
            self.stack_outputs |= {"mrapArn": mrap.arn, "mrapAlias": mrap.alias}
        if settings.inventory.enabled:  # on an adopted bucket too
            self.stack_outputs["inventoryLocation"] = self._inventory(settings, bucket_name)
        if settings.events.enabled:
            bucket_events = BucketEvents(
                f"{name}-events",
                settings.events,
                bucket_name,
                settings.prefixes,
                created_bucket=settings.create_bucket,
                opts=self._child,
            )
            self.stack_outputs |= {
                "eventsQueueUrl": bucket_events.queue.url,
                "eventsQueueArn": bucket_events.queue.arn,
                "eventsDeadLetterQueueUrl": bucket_events.dead_letter_queue.url,
                "eventsDeadLetterQueueArn": bucket_events.dead_letter_queue.arn,
                # The messages' shape: S3 event notifications or EventBridge events.
                "eventsSource": bucket_events.source,
            }
        self.register_outputs(self.stack_outputs)

    def _create_bucket(self, settings: IntegrationSettings) -> pulumi.Output[str]:
        name = self._name
        # Unless forceDestroy, `pulumi destroy` leaves the bucket, its data and the settings
        # that protect it in place (it only forgets them), and removes Encord's access.
        child = pulumi.ResourceOptions(parent=self, retain_on_delete=not settings.force_destroy)
        bucket = aws.s3.Bucket(
            f"{name}-bucket",
            bucket=settings.bucket_name,  # None: Pulumi auto-names it
            force_destroy=settings.force_destroy,
            opts=child,
        )
        self._safe_defaults(
            name,
            bucket,
            child,
            settings.kms_key_arn,
            policy_name=f"{name}-tls-only",
            policy=bucket.bucket.apply(lambda b: json.dumps(policies.tls_only_bucket_policy(b))),
        )
        if settings.versioning:
            aws.s3.BucketVersioning(
                f"{name}-versioning",
                bucket=bucket.bucket,
                versioning_configuration={"status": "Enabled"},
                opts=child,
            )
        if settings.access_log_bucket:
            aws.s3.BucketLogging(
                f"{name}-access-logs",
                bucket=bucket.bucket,
                target_bucket=settings.access_log_bucket,
                target_prefix=settings.access_log_prefix,
                opts=child,
            )
        return bucket.bucket

    def _safe_defaults(
        self,
        prefix: str,
        bucket: aws.s3.Bucket,
        opts: pulumi.ResourceOptions,
        kms_key_arn: str | None,
        policy_name: str,
        policy: pulumi.Output[str],
        expiry_rules: list[aws.s3.BucketLifecycleConfigurationRuleArgsDict] | None = None,
    ) -> aws.s3.BucketPolicy:
        """A new bucket's safe defaults: no public access, no ACLs, default encryption (SSE-KMS
        with `kms_key_arn` and a bucket key, else SSE-S3), `policy` (which must deny requests
        without TLS), and a lifecycle that aborts incomplete uploads after any `expiry_rules`."""
        public_access = aws.s3.BucketPublicAccessBlock(
            f"{prefix}-public-access", bucket=bucket.bucket, **ALL_PUBLIC_ACCESS_BLOCKED, opts=opts
        )
        default_encryption: aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgsDict = (
            {"sse_algorithm": "aws:kms", "kms_master_key_id": kms_key_arn}
            if kms_key_arn
            else {"sse_algorithm": "AES256"}
        )
        aws.s3.BucketOwnershipControls(
            f"{prefix}-ownership",
            bucket=bucket.bucket,
            rule={"object_ownership": "BucketOwnerEnforced"},  # ACLs off
            opts=opts,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{prefix}-encryption",
            bucket=bucket.bucket,
            rules=[
                {
                    "apply_server_side_encryption_by_default": default_encryption,
                    # A bucket key cuts KMS requests (and cost) for SSE-KMS.
                    "bucket_key_enabled": kms_key_arn is not None,
                }
            ],
            opts=opts,
        )
        bucket_policy = aws.s3.BucketPolicy(
            policy_name,
            bucket=bucket.bucket,
            policy=policy,
            # S3 rejects bucket policies while the public access block is being applied.
            opts=pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(depends_on=[public_access])
            ),
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{prefix}-lifecycle",
            bucket=bucket.bucket,
            rules=[
                *(expiry_rules or []),
                {
                    "id": "abort-incomplete-multipart-uploads",
                    "status": "Enabled",
                    "filter": {"prefix": ""},
                    "abort_incomplete_multipart_upload": {
                        "days_after_initiation": ABORT_INCOMPLETE_UPLOADS_AFTER_DAYS
                    },
                },
            ],
            opts=opts,
        )
        return bucket_policy

    def _inventory(
        self, settings: IntegrationSettings, bucket_name: pulumi.Output[str]
    ) -> pulumi.Output[str]:
        """S3 Inventory of the data bucket, delivered to a bucket of its own; its location.

        The reports bucket gets the data bucket's safe defaults, except that it is always
        SSE-S3: reports hold keys, sizes and ETags, never object content, so the data
        bucket's KMS key (if any) is not involved, and S3 needs no grant on a key to write
        them. Encord's role is given nothing here; only the ingest, with the user's own
        credentials, reads the reports.
        """
        name, inventory, child = self._name, settings.inventory, self._child
        reports = aws.s3.Bucket(
            f"{name}-inventory-bucket",
            bucket=bucket_name.apply(policies.inventory_bucket_name),
            # Reports are derived, regenerated each period and expire anyway: unlike the
            # data bucket, `pulumi destroy` deletes them with their bucket.
            force_destroy=True,
            opts=child,
        )
        # The source bucket's account, for the delivery policy's confused-deputy condition.
        account_id = aws.get_caller_identity_output(
            opts=pulumi.InvokeOutputOptions(parent=self)
        ).account_id
        delivery_policy = self._safe_defaults(
            f"{name}-inventory",
            reports,
            child,
            None,  # SSE-S3
            policy_name=f"{name}-inventory-policy",
            policy=pulumi.Output.all(reports.bucket, bucket_name, account_id).apply(
                lambda args: json.dumps(
                    policies.inventory_bucket_policy(args[0], INVENTORY_PREFIX, args[1], args[2])
                )
            ),
            expiry_rules=[
                {
                    "id": "expire-inventory-reports",
                    "status": "Enabled",
                    "filter": {"prefix": ""},
                    "expiration": {"days": inventory.retention_days},
                }
            ],
        )
        # One inventory configuration filters on at most one prefix. With several prefixes
        # the whole bucket is listed (one report for the ingest to filter), rather than one
        # configuration, report and location per prefix.
        only_prefix = settings.prefixes[0] if len(settings.prefixes) == 1 else None
        aws.s3.Inventory(
            f"{name}-inventory",
            bucket=bucket_name,
            name=INVENTORY_ID,
            enabled=True,
            included_object_versions="Current",
            schedule={"frequency": inventory.frequency},
            filter={"prefix": only_prefix} if only_prefix else None,
            # What the ingest reads besides Key (and Bucket), which every report has.
            optional_fields=list(INVENTORY_FIELDS),
            destination={
                "bucket": {
                    "bucket_arn": reports.arn,
                    "account_id": account_id,
                    "format": inventory.format,
                    "prefix": INVENTORY_PREFIX,
                }
            },
            # S3 delivers only once the reports bucket lets it.
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(depends_on=[delivery_policy])
            ),
        )
        return pulumi.Output.all(reports.bucket, bucket_name).apply(
            lambda args: policies.inventory_location(
                args[0], INVENTORY_PREFIX, args[1], INVENTORY_ID
            )
        )

    def _multi_region_access_point(
        self, settings: IntegrationSettings, bucket_name: pulumi.Output[str]
    ) -> aws.s3control.MultiRegionAccessPoint | None:
        if not settings.multi_region_access_point:
            return None
        details: aws.s3control.MultiRegionAccessPointDetailsArgsDict = {
            "name": _access_point_name(settings.role_name),
            "regions": [{"bucket": bucket_name}],
            "public_access_block": ALL_PUBLIC_ACCESS_BLOCKED,
        }
        return aws.s3control.MultiRegionAccessPoint(
            f"{self._name}-mrap", details=details, opts=self._child
        )

    def _role(
        self,
        settings: IntegrationSettings,
        external_id: pulumi.Output[str],
        bucket_name: pulumi.Output[str],
        mrap_arn: pulumi.Output[str] | None,
    ) -> aws.iam.Role:
        name, child = self._name, self._child
        role = aws.iam.Role(
            f"{name}-role",
            name=settings.role_name,  # stable: users paste its ARN into Encord
            description="Assumed by Encord to read this stack's bucket",
            assume_role_policy=external_id.apply(
                lambda eid: json.dumps(policies.trust_policy(settings.encord_principal, eid))
            ),
            max_session_duration=MAX_SESSION_SECONDS,
            opts=child,
        )
        policy = aws.iam.Policy(
            f"{name}-access",
            name=f"{settings.role_name}-access",
            description="Least-privilege S3 access for Encord",
            policy=pulumi.Output.all(bucket_name, mrap_arn).apply(
                lambda args: json.dumps(
                    policies.permission_policy(
                        args[0],
                        prefixes=settings.prefixes,
                        allow_write=settings.allow_write,
                        kms_key_arn=settings.kms_key_arn,
                        mrap_arn=args[1],
                    )
                )
            ),
            opts=child,
        )
        aws.iam.RolePolicyAttachment(
            f"{name}-access", role=role.name, policy_arn=policy.arn, opts=child
        )
        return role
