"""Fixtures for the plan/validate/schema tests: buckets in the local AWS, outputs files."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from ingest_support import url_prefix

from standins.local_aws import REGION, LocalAws

_numbers = itertools.count(1)


@pytest.fixture
def make_bucket(aws_env: LocalAws) -> Callable[[dict[str, bytes | tuple[bytes, str]]], str]:
    """A fresh bucket holding `objects` (key → body, or (body, content type))."""

    def make(objects: dict[str, bytes | tuple[bytes, str]]) -> str:
        name = f"plan-test-{next(_numbers)}"
        s3 = aws_env.client("s3")
        s3.create_bucket(Bucket=name)
        for key, value in objects.items():
            body, content_type = (
                value if isinstance(value, tuple) else (value, "binary/octet-stream")
            )
            s3.put_object(Bucket=name, Key=key, Body=body, ContentType=content_type)
        return name

    return make


@pytest.fixture
def write_outputs(tmp_path: Path) -> Callable[..., Path]:
    """An outputs file as `pulumi stack output --json --show-secrets` would write it."""

    def write(bucket: str, **overrides) -> Path:
        outputs = {
            "roleArn": "arn:aws:iam::123456789012:role/encord",
            "roleName": "encord",
            "bucketName": bucket,
            "bucketArn": f"arn:aws:s3:::{bucket}",
            "region": REGION,
            "objectUrlPrefix": url_prefix(bucket),
            "corsOrigins": ["https://app.encord.com"],
            "prefixes": [],
            "integrationTitle": f"{bucket}-integration",
            "externalId": "do-not-print-me",
            **overrides,
        }
        path = tmp_path / f"outputs-{bucket}.json"
        path.write_text(json.dumps({k: v for k, v in outputs.items() if v is not None}))
        return path

    return write
