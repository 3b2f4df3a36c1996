"""Constants and helpers shared by the sandbox tests."""

from __future__ import annotations

from urllib.parse import quote

from standins.local_aws import ACCOUNT_ID, REGION

# Small, so that a test waiting on a long poll that cannot finish costs little.
TEST_LONG_POLL_CAP_SECONDS = 1.0
ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/encord-access"
EXTERNAL_ID = "encord-external-id-for-tests"


def object_url(bucket: str, key: str) -> str:
    """The virtual-hosted form our manifests use, key percent-encoded."""
    return f"https://{bucket}.s3.{REGION}.amazonaws.com/{quote(key)}"
