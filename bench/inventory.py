"""A synthetic S3 Inventory report for the benchmark: Parquet, laid out as S3 delivers it.

`write_synthetic_inventory` writes the report's objects as files under a local directory,
their paths being the S3 keys (`inventory/SOURCE/bench-config/data/part-00000.parquet`,
`…/YYYY-MM-DDTHH-MMZ/manifest.json`, `manifest.checksum`), so the benchmark can serve the
directory as the destination bucket. Rows are streamed from `keys` into one
`ParquetWriter` per data file, a batch at a time, so 10M keys never sit in memory.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import datetime
from itertools import islice
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

CONFIG_ID = "bench-config"
DESTINATION_PREFIX = "inventory"
_BATCH = 65_536
_MONTH_MS = 30 * 86_400_000
# The columns S3 writes for the optional fields Size, LastModifiedDate, ETag, StorageClass.
SCHEMA = pa.schema(
    [
        ("bucket", pa.string()),
        ("key", pa.string()),
        ("size", pa.int64()),
        ("last_modified_date", pa.timestamp("ms", tz="UTC")),
        ("e_tag", pa.string()),
        ("storage_class", pa.string()),
    ]
)
FILE_SCHEMA = (
    "message s3.inventory { required binary bucket (UTF8); required binary key (UTF8); "
    "optional int64 size; optional int64 last_modified_date (TIMESTAMP_MILLIS); "
    "optional binary e_tag (UTF8); optional binary storage_class (UTF8); }"
)


def write_synthetic_inventory(
    directory: Path,
    keys: Iterable[str],
    *,
    source_bucket: str,
    rows_per_file: int = 1_000_000,
    now: datetime,
) -> str:
    """A complete report of `keys` (in the order given) under `directory`; its location folder.

    The returned path, relative to `directory`, is what `inventory_objects` takes as the
    location's key prefix (`s3://SERVED-BUCKET/<returned>`).
    """
    location = f"{DESTINATION_PREFIX}/{source_bucket}/{CONFIG_ID}/"
    now_ms = int(now.timestamp() * 1000)
    remaining = iter(keys)
    files: list[dict[str, object]] = []
    row = 0
    while chunk := list(islice(remaining, min(_BATCH, rows_per_file))):
        key = f"{location}data/part-{len(files):05d}.parquet"
        path = directory / key
        path.parent.mkdir(parents=True, exist_ok=True)
        in_file = 0
        with pq.ParquetWriter(path, SCHEMA, compression="snappy") as writer:
            while chunk:
                writer.write_batch(_batch(chunk, row, source_bucket, now_ms))
                row += len(chunk)
                in_file += len(chunk)
                chunk = list(islice(remaining, min(_BATCH, rows_per_file - in_file)))
        files.append({"key": key, "size": path.stat().st_size, "MD5checksum": _md5(path)})
    manifest = {
        "sourceBucket": source_bucket,
        "destinationBucket": "arn:aws:s3:::bench-inventory",  # not read by ingest
        "version": "2016-11-30",
        "creationTimestamp": str(now_ms),
        "fileFormat": "Parquet",
        "fileSchema": FILE_SCHEMA,
        "files": files,
    }
    report = directory / location / now.strftime("%Y-%m-%dT%H-%MZ")
    report.mkdir(parents=True, exist_ok=True)
    body = json.dumps(manifest, indent=2).encode()
    (report / "manifest.json").write_bytes(body)
    (report / "manifest.checksum").write_text(hashlib.md5(body, usedforsecurity=False).hexdigest())
    return location


def _batch(keys: list[str], first: int, bucket: str, now_ms: int) -> pa.RecordBatch:
    """Rows for `keys`, numbered from `first`: varied sizes, times within a month, MD5-like ETags."""
    numbers = range(first, first + len(keys))
    return pa.RecordBatch.from_arrays(
        [
            pa.repeat(bucket, len(keys)),
            pa.array(keys, pa.string()),
            pa.array([1_024 + (n * 7_919) % 5_000_000 for n in numbers], pa.int64()),
            pa.array([now_ms - (n * 61_000) % _MONTH_MS for n in numbers], pa.int64()).cast(
                SCHEMA.field("last_modified_date").type
            ),
            pa.array([f"{n * 2_654_435_761:032x}"[-32:] for n in numbers], pa.string()),
            pa.repeat("STANDARD", len(keys)),
        ],
        schema=SCHEMA,
    )


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()
