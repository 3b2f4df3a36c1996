"""S3 Inventory reports written into a bucket as AWS documents them (moto generates none).

The layout, manifest fields and `fileSchema` strings follow the S3 User Guide
(storage-inventory-location): `PREFIX/SOURCE/CONFIG/YYYY-MM-DDTHH-MMZ/manifest.json` and
`manifest.checksum` (MD5 hex of manifest.json), data files under `PREFIX/SOURCE/CONFIG/data/`.
CSV is gzip without a header, every field quoted, keys URL-encoded as HTML forms do (space
as `+`); ORC (zlib) and Parquet (snappy) use the snake_case column names and store keys as is.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote_plus

import pyarrow as pa
import pyarrow.orc as paorc
import pyarrow.parquet as pq

Format = Literal["CSV", "ORC", "Parquet"]
CREATED = datetime(2024, 5, 1, 0, 0, tzinfo=UTC)
MODIFIED = datetime(2024, 4, 30, 12, 30, 15, 123000, tzinfo=UTC)
EMPTY_ETAG = "d41d8cd98f00b204e9800998ecf8427e"
# The fields this tool asks for, as the inventory configuration names them.
OPTIONAL_FIELDS = ("Size", "LastModifiedDate", "ETag", "StorageClass")

# CSV name (AWS's order) → (ORC/Parquet column, Arrow type, ORC type, Parquet field).
_FIELDS: dict[str, tuple[str, pa.DataType, str, str]] = {
    "Bucket": ("bucket", pa.string(), "string", "required binary bucket (UTF8)"),
    "Key": ("key", pa.string(), "string", "required binary key (UTF8)"),
    "VersionId": ("version_id", pa.string(), "string", "optional binary version_id (UTF8)"),
    "IsLatest": ("is_latest", pa.bool_(), "boolean", "optional boolean is_latest"),
    "IsDeleteMarker": (
        "is_delete_marker",
        pa.bool_(),
        "boolean",
        "optional boolean is_delete_marker",
    ),
    "Size": ("size", pa.int64(), "bigint", "optional int64 size"),
    "LastModifiedDate": (
        "last_modified_date",
        pa.timestamp("ms", tz="UTC"),
        "timestamp",
        "optional int64 last_modified_date (TIMESTAMP_MILLIS)",
    ),
    "ETag": ("e_tag", pa.string(), "string", "optional binary e_tag (UTF8)"),
    "StorageClass": (
        "storage_class",
        pa.string(),
        "string",
        "optional binary storage_class (UTF8)",
    ),
}
_VERSION_FIELDS = ("VersionId", "IsLatest", "IsDeleteMarker")
_EXTENSIONS = {"CSV": "csv.gz", "ORC": "orc", "Parquet": "parquet"}


@dataclass(frozen=True)
class Row:
    """One inventory row: an object version (or a delete marker, which has no size or ETag)."""

    key: str
    size: int = 1024
    etag: str = EMPTY_ETAG
    last_modified: datetime = MODIFIED
    version_id: str = "3HL4kqtJlcpXroDTDmjVBH40Nrjfkd"
    is_latest: bool = True
    is_delete_marker: bool = False


@dataclass(frozen=True)
class Written:
    name: str  # the dated folder, YYYY-MM-DDTHH-MMZ
    folder: str  # its key prefix, ending in "/"
    data_keys: list[str]


def location(bucket: str, prefix: str) -> str:
    return f"s3://{bucket}/{prefix}"


def write_report(
    s3: Any,
    bucket: str,
    prefix: str,
    files: Sequence[Sequence[Row]],
    *,
    source_bucket: str,
    fmt: Format = "CSV",
    created: datetime = CREATED,
    versioned: bool = False,
    optional_fields: Sequence[str] = OPTIONAL_FIELDS,
    checksum: Literal["valid", "missing", "wrong"] = "valid",
    damage: Callable[[bytes], bytes] | None = None,
) -> Written:
    """A report of `files` (rows as given, in that order) under `prefix` ("…/SOURCE/CONFIG/").

    `versioned` makes an "All versions" inventory (VersionId, IsLatest, IsDeleteMarker);
    `damage` alters each data file before its MD5 is taken, as if AWS had written it so.
    """
    chosen = {"Bucket", "Key", *optional_fields, *(_VERSION_FIELDS if versioned else ())}
    fields = [name for name in _FIELDS if name in chosen]
    entries, data_keys = [], []
    for rows in files:
        body = _data_file(fmt, fields, rows, source_bucket)
        if damage is not None:
            body = damage(body)
        key = f"{prefix}data/{uuid.uuid4()}.{_EXTENSIONS[fmt]}"
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        data_keys.append(key)
        entries.append({"key": key, "size": len(body), "MD5checksum": _md5(body)})
    manifest = {
        "sourceBucket": source_bucket,
        "destinationBucket": f"arn:aws:s3:::{bucket}",
        "version": "2016-11-30",
        "creationTimestamp": str(int(created.timestamp() * 1000)),
        "fileFormat": fmt,
        "fileSchema": file_schema(fmt, fields),
        "files": entries,
    }
    name = created.strftime("%Y-%m-%dT%H-%MZ")
    folder = f"{prefix}{name}/"
    body = json.dumps(manifest, indent=4).encode()
    s3.put_object(Bucket=bucket, Key=f"{folder}manifest.json", Body=body)
    if checksum != "missing":
        digest = _md5(body) if checksum == "valid" else _md5(b"something else")
        s3.put_object(Bucket=bucket, Key=f"{folder}manifest.checksum", Body=digest.encode())
    return Written(name, folder, data_keys)


def file_schema(fmt: Format, fields: Sequence[str]) -> str:
    if fmt == "CSV":
        return ", ".join(fields)
    if fmt == "ORC":
        return "struct<" + ",".join(f"{_FIELDS[f][0]}:{_FIELDS[f][2]}" for f in fields) + ">"
    return "message s3.inventory { " + " ".join(f"{_FIELDS[f][3]};" for f in fields) + " }"


def _data_file(fmt: Format, fields: Sequence[str], rows: Sequence[Row], bucket: str) -> bytes:
    columns = {name: [_value(name, row, bucket) for row in rows] for name in fields}
    if fmt == "CSV":
        lines = (
            ",".join(f'"{_csv(name, value)}"' for name, value in zip(fields, values, strict=True))
            + "\n"
            for values in zip(*columns.values(), strict=True)
        )
        return gzip.compress("".join(lines).encode())
    table = pa.table(
        {_FIELDS[name][0]: pa.array(columns[name], _FIELDS[name][1]) for name in fields}
    )
    sink = pa.BufferOutputStream()
    if fmt == "ORC":
        paorc.write_table(table, sink, compression="zlib")
    else:
        pq.write_table(table, sink, compression="snappy")
    return sink.getvalue().to_pybytes()


def _value(name: str, row: Row, bucket: str) -> Any:
    gone = row.is_delete_marker  # a delete marker has no size, ETag or storage class
    return {
        "Bucket": bucket,
        "Key": row.key,
        "VersionId": row.version_id,
        "IsLatest": row.is_latest,
        "IsDeleteMarker": row.is_delete_marker,
        "Size": None if gone else row.size,
        "LastModifiedDate": row.last_modified,
        "ETag": None if gone else row.etag,
        "StorageClass": None if gone else "STANDARD",
    }[name]


def _csv(name: str, value: Any) -> str:
    if value is None:
        return ""
    if name == "Key":
        return quote_plus(value, safe="/")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    return str(value)


def _md5(body: bytes) -> str:
    return hashlib.md5(body, usedforsecurity=False).hexdigest()
