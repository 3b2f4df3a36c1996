"""`EncordS3Integration`: the bucket, Encord's role and policy, CORS and an optional MRAP."""

from __future__ import annotations

import json
import re

import pulumi
import pulumi_aws as aws

from infra import policies
from infra.config import IntegrationSettings

ALL_PUBLIC_ACCESS_BLOCKED = {
    "block_public_acls": True,
    "block_public_policy": True,
    "ignore_public_acls": True,
    "restrict_public_buckets": True,
}
ABORT_INCOMPLETE_UPLOADS_AFTER_DAYS = 7
MAX_SESSION_SECONDS = 3600


def _snake_case(api_shape: dict) -> dict:
    """`AllowedOrigins` → `allowed_origins`: the S3 API's document as Pulumi input arguments."""
    return {
        re.sub(r"(?<!^)(?=[A-Z][a-z])", "_", key).lower(): value for key, value in api_shape.items()
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
            bucket_name = pulumi.Output.from_input(settings.bucket_name)

        aws.s3.BucketCorsConfiguration(
            f"{name}-cors",
            bucket=bucket_name,
            cors_rules=[
                _snake_case(policies.cors_rule(settings.cors_origins, settings.allow_write))
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
            "integrationTitle": bucket_name.apply(lambda b: f"{settings.role_name} ({b})"),
            "externalId": external_id,
        }
        if mrap:
            self.stack_outputs |= {"mrapArn": mrap.arn, "mrapAlias": mrap.alias}
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
        public_access = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access", bucket=bucket.bucket, **ALL_PUBLIC_ACCESS_BLOCKED, opts=child
        )
        aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=bucket.bucket,
            rule={"object_ownership": "BucketOwnerEnforced"},  # ACLs off
            opts=child,
        )
        if settings.kms_key_arn:
            default_encryption = {
                "sse_algorithm": "aws:kms",
                "kms_master_key_id": settings.kms_key_arn,
            }
        else:
            default_encryption = {"sse_algorithm": "AES256"}
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket.bucket,
            rules=[
                {
                    "apply_server_side_encryption_by_default": default_encryption,
                    # A bucket key cuts KMS requests (and cost) for SSE-KMS.
                    "bucket_key_enabled": bool(settings.kms_key_arn),
                }
            ],
            opts=child,
        )
        aws.s3.BucketPolicy(
            f"{name}-tls-only",
            bucket=bucket.bucket,
            policy=bucket.bucket.apply(lambda b: json.dumps(policies.tls_only_bucket_policy(b))),
            # S3 rejects bucket policies while the public access block is being applied.
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(depends_on=[public_access])
            ),
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=bucket.bucket,
            rules=[
                {
                    "id": "abort-incomplete-multipart-uploads",
                    "status": "Enabled",
                    "filter": {"prefix": ""},
                    "abort_incomplete_multipart_upload": {
                        "days_after_initiation": ABORT_INCOMPLETE_UPLOADS_AFTER_DAYS
                    },
                }
            ],
            opts=child,
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

    def _multi_region_access_point(
        self, settings: IntegrationSettings, bucket_name: pulumi.Output[str]
    ) -> aws.s3control.MultiRegionAccessPoint | None:
        if not settings.multi_region_access_point:
            return None
        return aws.s3control.MultiRegionAccessPoint(
            f"{self._name}-mrap",
            details={
                "name": _access_point_name(settings.role_name),
                "regions": [{"bucket": bucket_name}],
                "public_access_block": ALL_PUBLIC_ACCESS_BLOCKED,
            },
            opts=self._child,
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
