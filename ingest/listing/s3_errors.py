"""boto3's errors, as the one line a user needs to fix them: the one mapping every S3 call uses.

`s3_errors(doing, where, needs=..., bucket_hint=...)` wraps a call: credentials missing or
unknown profile, access denied (naming the permission needed), a missing bucket, an
unreachable endpoint (naming the host) and anything else botocore raises become `UserError`s.
`missing_object(error)` tells a missing key apart for callers that expect one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    ProfileNotFound,
)

from ingest.errors import UserError, first_line

ACCESS_DENIED = frozenset(
    {"AccessDenied", "AllAccessDisabled", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"}
)
MISSING_OBJECT = frozenset({"NoSuchKey", "404", "NotFound"})
# What the listing calls need, and where to look when the bucket is missing: the defaults.
_NEEDS = "s3:ListBucket on the bucket"
_BUCKET_HINT = "check the stack outputs (`bucketName`) and region"


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def missing_object(error: BaseException) -> bool:
    return isinstance(error, ClientError) and error_code(error) in MISSING_OBJECT


def explain(
    error: BaseException,
    doing: str,
    where: str,
    needs: str = _NEEDS,
    bucket_hint: str = _BUCKET_HINT,
) -> UserError:
    """The `UserError` for `error`, raised while `doing` ('listing', 'reading') `where`."""
    if isinstance(error, NoCredentialsError):
        return UserError(
            f"no AWS credentials for {doing} {where}: set AWS_PROFILE or "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
        )
    if isinstance(error, ProfileNotFound):
        return UserError(
            f"{doing} {where} failed: {first_line(error)}; fix AWS_PROFILE (see `aws configure list-profiles`)"
        )
    if isinstance(error, EndpointConnectionError):
        return UserError(
            f"{doing} {where} failed: S3 endpoint {error.kwargs.get('endpoint_url', '')} is "
            "unreachable; check the network, the region and AWS_ENDPOINT_URL"
        )
    if isinstance(error, ClientError):
        code = error_code(error)
        if code in ACCESS_DENIED:
            return UserError(
                f"access denied {doing} {where} ({code}): your AWS identity needs "
                f"{needs}; check AWS_PROFILE or the credentials in the environment"
            )
        if code == "NoSuchBucket":
            return UserError(f"the bucket of {where} does not exist: {bucket_hint}")
        message = error.response.get("Error", {}).get("Message", "")
        return UserError(f"{doing} {where} failed: {code} {message}".strip())
    return UserError(f"{doing} {where} failed: {first_line(error)}")


@contextmanager
def s3_errors(
    doing: str, where: str, needs: str = _NEEDS, bucket_hint: str = _BUCKET_HINT
) -> Iterator[None]:
    """Raise boto3's errors inside as `explain`'s `UserError`s."""
    try:
        yield
    except (BotoCoreError, ClientError) as error:
        raise explain(error, doing, where, needs, bucket_hint) from None
