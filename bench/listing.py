"""A synthetic bucket, generated page by page behind boto3's paginator interface.

Nothing is stored: each ListObjectsV2-shaped page (1,000 keys, like S3) is made when asked
for, so the benchmark measures the planner's memory, not the fixture's. The mix: single
images and videos in dated camera folders, image-group folders, DICOM series, PDFs and a
few unsupported files, in key order as S3 lists them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

PAGE = 1000
_ETAG = '"d41d8cd98f00b204e9800998ecf8427e"'


def synthetic_keys(count: int) -> Iterator[str]:
    """`count` keys in ascending order (zero-padded numbers), in blocks of 100 per folder."""
    for block in range(0, count, 100):
        size = min(100, count - block)
        yield from _block_keys(block // 100, size)


def _block_keys(folder: int, size: int) -> list[str]:
    # A zero-padded folder number first, so blocks sort in generation order.
    kind = folder % 20
    if kind == 0:
        return [f"{folder:07d}/dicom/slice-{i:03d}.dcm" for i in range(size)]
    if kind == 1:
        return [f"{folder:07d}/group/view {i:03d}.png" for i in range(size)]
    if kind == 2:
        return [
            f"{folder:07d}/videos/clip-{i:03d}.{'mp4' if i % 25 else 'zip'}" for i in range(size)
        ]
    base = f"{folder:07d}/cam-{folder % 7}/"
    return [f"{base}shot-{i:04d}.{'jpg' if i % 50 else 'pdf'}" for i in range(size)]


class InMemoryS3:
    """The slice of a boto3 S3 client that listing uses."""

    def __init__(self, count: int) -> None:
        self.count = count

    def get_paginator(self, operation: str) -> _Paginator:
        assert operation == "list_objects_v2"
        return _Paginator(self.count)


class _Paginator:
    def __init__(self, count: int) -> None:
        self.count = count

    def paginate(self, Bucket: str, Prefix: str = "") -> Iterator[dict[str, Any]]:
        page: list[dict[str, Any]] = []
        for key in synthetic_keys(self.count):
            if not key.startswith(Prefix):
                continue
            page.append({"Key": key, "Size": 1024, "ETag": _ETAG, "StorageClass": "STANDARD"})
            if len(page) == PAGE:
                yield {"Contents": page, "KeyCount": PAGE, "IsTruncated": True}
                page = []
        yield {"Contents": page, "KeyCount": len(page), "IsTruncated": False}
