"""Helpers shared by tests/ingest (a module, not conftest: test modules import it by name)."""

from standins.local_aws import REGION


def url_prefix(bucket: str) -> str:
    """The stack output `objectUrlPrefix` of a bucket in the local AWS's region."""
    return f"https://{bucket}.s3.{REGION}.amazonaws.com/"
