"""The simple listing source: boto3's ListObjectsV2 paginator, one prefix per thread.

Correct everywhere boto3 is, but botocore's parser caps the keys listed per second per
process whatever the parallelism (see `ingest.listing.fast` for the fast lister, and
`bench/README.md`); kept as the fallback (`listing: paginator`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ingest.listing.scan import ListedObject, Page, listing_errors, nothing_under


class S3Lister:
    """ListObjectsV2 pages of one prefix, as `ListedObject` lists. Errors become `UserError`."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self._s3 = s3
        self._bucket = bucket

    def __call__(self, prefix: str) -> Iterator[Page]:
        where = f"s3://{self._bucket}/{prefix}"
        paginator = self._s3.get_paginator("list_objects_v2")
        listed = 0
        new = tuple.__new__  # a NamedTuple's own constructor is a Python-level call per key
        with listing_errors(where):
            for response in paginator.paginate(Bucket=self._bucket, Prefix=prefix):
                page = [
                    new(
                        ListedObject,
                        (
                            item["Key"],
                            item["Size"],
                            item.get("ETag", "").strip('"'),
                            item.get("LastModified"),
                        ),
                    )
                    for item in response.get("Contents", ())
                ]
                listed += len(page)
                yield page
        if listed == 0:
            raise nothing_under(where)
