"""The JSON documents of the integration, as pure functions of plain values.

Tests call these directly; the component feeds them resolved outputs. Only the commercial
`aws` partition is supported (Encord runs there).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

IAM_VERSION = "2012-10-17"
MAX_BUCKET_NAME_LENGTH = 63
INVENTORY_BUCKET_SUFFIX = "-inventory"
# Long enough to let a browser cache the preflight for a labelling session, short enough
# that a CORS change takes effect the same hour.
CORS_MAX_AGE_SECONDS = 3600


def account_principal_arn(principal: str) -> str:
    """An account id as the ARN AWS stores it as (`arn:aws:iam::<id>:root`); ARNs unchanged."""
    return principal if principal.startswith("arn:") else f"arn:aws:iam::{principal}:root"


def bucket_arn(bucket: str) -> str:
    return f"arn:aws:s3:::{bucket}"


def object_url_prefix(bucket: str, region: str, mrap_arn: str | None = None) -> str:
    """What every object URL in Encord's import manifest starts with."""
    if mrap_arn:  # Encord: "the ARN of the Multi-Region Access Point followed by the object name"
        return f"{mrap_arn}/"
    return f"https://{bucket}.s3.{region}.amazonaws.com/"


def trust_policy(principal: str, external_id: str) -> dict:
    """Only Encord's principal may assume the role, and only with this integration's external ID."""
    return {
        "Version": IAM_VERSION,
        "Statement": [
            {
                "Sid": "EncordAssumesWithExternalId",
                "Effect": "Allow",
                "Principal": {"AWS": account_principal_arn(principal)},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": external_id}},
            }
        ],
    }


def _object_arns(container_arns: Sequence[str], prefixes: Sequence[str]) -> list[str]:
    return [f"{arn}/{prefix}*" for arn in container_arns for prefix in (prefixes or [""])]


def permission_policy(
    bucket: str,
    prefixes: Sequence[str] = (),
    allow_write: bool = False,
    kms_key_arn: str | None = None,
    mrap_arn: str | None = None,
) -> dict:
    """Least privilege for Encord: list and read (optionally write) the bucket, or only its prefixes.

    Through a Multi-Region Access Point, IAM checks the access point's ARN (objects under
    `<mrap arn>/object/`), so each grant names both the bucket and the access point.
    """
    listable = [bucket_arn(bucket)] + ([mrap_arn] if mrap_arn else [])
    objects = _object_arns(
        [bucket_arn(bucket)] + ([f"{mrap_arn}/object"] if mrap_arn else []), prefixes
    )
    list_statement: dict = {
        "Sid": "ListObjects",
        "Effect": "Allow",
        "Action": "s3:ListBucket",
        "Resource": listable,
    }
    if prefixes:
        list_statement["Condition"] = {"StringLike": {"s3:prefix": [f"{p}*" for p in prefixes]}}
    statements = [
        list_statement,
        {
            "Sid": "LocateBucket",
            "Effect": "Allow",
            "Action": "s3:GetBucketLocation",
            "Resource": bucket_arn(bucket),
        },
        {"Sid": "ReadObjects", "Effect": "Allow", "Action": "s3:GetObject", "Resource": objects},
    ]
    if allow_write:  # image sequences and re-encoded videos are written back by Encord
        statements.append(
            {
                "Sid": "WriteObjects",
                "Effect": "Allow",
                "Action": "s3:PutObject",
                "Resource": objects,
            }
        )
    if kms_key_arn:
        # Reading SSE-KMS objects needs Decrypt; writing them needs a data key as well.
        kms_actions = ["kms:Decrypt"] + (["kms:GenerateDataKey"] if allow_write else [])
        statements.append(
            {
                "Sid": "UseBucketKey",
                "Effect": "Allow",
                "Action": kms_actions,
                "Resource": kms_key_arn,
            }
        )
    return {"Version": IAM_VERSION, "Statement": statements}


def tls_only_bucket_policy(bucket: str) -> dict:
    """Deny every request to the bucket and its objects that does not arrive over TLS."""
    return {
        "Version": IAM_VERSION,
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [bucket_arn(bucket), f"{bucket_arn(bucket)}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }


def cors_rule(origins: Sequence[str], allow_write: bool = False) -> dict:
    """The CORS rule Encord's web app needs, in the S3 API's shape (`CORSRules` item)."""
    return {
        "ID": "encord",
        "AllowedOrigins": list(origins),
        "AllowedMethods": ["GET", "HEAD"] + (["PUT", "POST"] if allow_write else []),
        # Range for media seeking; Content-Type and x-amz-* for signed uploads.
        "AllowedHeaders": ["Content-Type", "Range", "x-amz-*"],
        "ExposeHeaders": ["Accept-Ranges", "Content-Length", "Content-Range", "ETag"],
        "MaxAgeSeconds": CORS_MAX_AGE_SECONDS,
    }


def inventory_bucket_name(bucket: str) -> str:
    """The bucket the data bucket's inventory reports go to: `<bucket>-inventory`.

    A data bucket name too long for the suffix is shortened, and a hash of the full name keeps
    two such buckets apart; the result is always a valid bucket name of at most 63 characters.
    """
    name = f"{bucket}{INVENTORY_BUCKET_SUFFIX}"
    if len(name) <= MAX_BUCKET_NAME_LENGTH:
        return name
    digest = hashlib.sha256(bucket.encode()).hexdigest()[:8]
    keep = MAX_BUCKET_NAME_LENGTH - len(INVENTORY_BUCKET_SUFFIX) - len(digest) - 1
    # No dot or hyphen where it was cut, next to the hyphen that follows.
    return f"{bucket[:keep].rstrip('.-')}-{digest}{INVENTORY_BUCKET_SUFFIX}"


def inventory_location(
    destination_bucket: str, prefix: str, source_bucket: str, config_id: str
) -> str:
    """The folder S3 writes each report into, as `<YYYY-MM-DDTHH-MMZ>/manifest.json`."""
    return f"s3://{destination_bucket}/{prefix}/{source_bucket}/{config_id}/"


def inventory_bucket_policy(
    destination_bucket: str, prefix: str, source_bucket: str, account_id: str
) -> dict:
    """TLS only, and S3 may deliver this source bucket's inventory reports under `prefix`.

    The delivery statement is AWS's documented one: S3's service principal may only put
    objects under the prefix, only on behalf of the source bucket in this account (no
    confused deputy), and only handing the bucket owner full control.
    """
    delivery = {
        "Sid": "S3InventoryDelivery",
        "Effect": "Allow",
        "Principal": {"Service": "s3.amazonaws.com"},
        "Action": "s3:PutObject",
        "Resource": f"{bucket_arn(destination_bucket)}/{prefix}/*",
        "Condition": {
            "ArnLike": {"aws:SourceArn": bucket_arn(source_bucket)},
            "StringEquals": {
                "aws:SourceAccount": account_id,
                "s3:x-amz-acl": "bucket-owner-full-control",
            },
        },
    }
    tls_only = tls_only_bucket_policy(destination_bucket)
    return tls_only | {"Statement": [*tls_only["Statement"], delivery]}
