"""Stage 1 source: a bucket's objects read from its newest S3 Inventory report, in key order.

S3 Inventory delivers, daily or weekly, a listing of the source bucket as data files (CSV
gzip, ORC or Parquet) in a destination bucket, laid out as

    DEST-PREFIX/SOURCE-BUCKET/CONFIG-ID/YYYY-MM-DDTHH-MMZ/manifest.json   (+ manifest.checksum)
    DEST-PREFIX/SOURCE-BUCKET/CONFIG-ID/data/<uuid>.csv.gz|.orc|.parquet

`inventory_objects(s3, "s3://DEST/DEST-PREFIX/SOURCE-BUCKET/CONFIG-ID/", ...)` picks the
newest complete report (manifest.checksum present and equal to the MD5 of manifest.json; a
report without one is still being delivered, one whose checksum does not match is being
rewritten or damaged: both are skipped with a warning), validates the manifest, and yields
the report's current objects as `ListedObject`s in ascending key order, each key once.

The rest of the pipeline needs S3 ListObjectsV2 order, and AWS documents no order for the
rows of an inventory, so the data is sorted here, in bounded memory (an external sort):

1. Each data file is downloaded to a local temporary file (streamed; the next file downloads
   while this one is read) and its MD5 checked against the manifest.
2. It is read in Arrow record batches (Parquet `iter_batches`, ORC through `pyarrow.dataset`,
   streaming CSV), projected to the four fields a `ListedObject` needs and filtered (delete
   markers and non-latest versions of an "All versions" inventory, keys outside `prefixes`).
3. Batches become runs: Arrow IPC files on local disk, each in strictly ascending key order.
   A batch in ascending order is appended to the open run if it carries on from the run's
   last key, else starts a new run. Batches out of order inside are gathered, up to
   `_RUN_ROWS` rows, sorted by key in Arrow (UTF-8 byte order, which is Python's str order
   and S3's listing order), stripped of duplicate keys and written as a run of their own.
   Memory holds one batch, and at most one unsorted run, at a time.
4. Runs are grouped by overlapping key ranges. A group of one run (every group when each
   file's rows come in key order, whatever order the files are in) is read back as is; a
   larger group is k-way merged (`heapq.merge`, one small batch per run in memory), each key
   kept once.

CSV keys are URL-encoded the way HTML forms encode (a space is `+`, a literal `+` is
`%2B`), so they are decoded with `unquote_plus`; ORC and Parquet keys are stored as is.
Everything a user can fix (no report yet, wrong location or bucket, missing fields, a
corrupt file) is a one-line `UserError` naming the s3:// object and the fix.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import re
import tempfile
import threading
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import reduce
from itertools import count, repeat
from operator import itemgetter
from pathlib import Path
from typing import Any, Literal, NamedTuple
from urllib.parse import unquote_plus

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.dataset as pads
import pyarrow.parquet as pq
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ValidationError

from ingest.errors import UserError, first_line
from ingest.listing.s3_errors import explain, missing_object
from ingest.listing.scan import ListedObject, normalise_prefixes

MANIFEST_VERSION = "2016-11-30"  # the only manifest version AWS documents
REPORT_FOLDER = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}-\d{2}Z")
LOCATION_FORM = "s3://DESTINATION-BUCKET/[PREFIX/]SOURCE-BUCKET/CONFIG-ID/"

_RUN_ROWS = 250_000  # unsorted rows sorted at once: bounds a sort's memory (bench/README.md)
_BATCH_ROWS = 2_048  # rows per spilled batch: what a merge holds in Python objects per run
_CHUNK = 1 << 20  # download chunk

# Our field names are ORC/Parquet's column names; CSV files name them as in `fileSchema`,
# which are also the names of the inventory configuration's optional fields.
_CSV_NAMES = {
    "key": "Key",
    "size": "Size",
    "e_tag": "ETag",
    "last_modified_date": "LastModifiedDate",
    "is_latest": "IsLatest",
    "is_delete_marker": "IsDeleteMarker",
}
_FROM_CSV = {csv_name: name for name, csv_name in _CSV_NAMES.items()}
_REQUIRED = ("key", "size", "e_tag", "last_modified_date")
_VERSIONS = ("is_latest", "is_delete_marker")  # only in "All versions" inventories
_CSV_TYPES = {
    "key": pa.string(),
    "size": pa.int64(),
    "e_tag": pa.string(),
    "last_modified_date": pa.timestamp("ms", tz="UTC"),  # e.g. 2022-12-12T13:20:39.000Z
    "is_latest": pa.bool_(),
    "is_delete_marker": pa.bool_(),
}
# What a run holds: the four fields of a ListedObject, the time as epoch milliseconds.
_RUN_SCHEMA = pa.schema(
    [("key", pa.string()), ("size", pa.int64()), ("etag", pa.string()), ("ms", pa.int64())]
)
_READ_ERRORS = (pa.ArrowException, OSError, ValueError, KeyError, EOFError)


class DataFile(BaseModel):
    key: str
    size: int
    MD5checksum: str


class Manifest(BaseModel):
    """The fields of `manifest.json` used here (AWS's names; others are ignored)."""

    sourceBucket: str
    version: str
    creationTimestamp: int  # epoch milliseconds, written as a string
    fileFormat: Literal["CSV", "ORC", "Parquet"]
    fileSchema: str
    files: list[DataFile]


@dataclass(frozen=True)
class Report:
    """A complete report: its dated folder and validated manifest."""

    bucket: str
    folder: str  # key prefix of the dated folder, ending in "/"
    name: str  # the folder's name, YYYY-MM-DDTHH-MMZ
    manifest: Manifest

    @property
    def where(self) -> str:
        return f"s3://{self.bucket}/{self.folder}manifest.json"


class _Run(NamedTuple):
    path: Path
    first: str
    last: str


def inventory_objects(
    s3: Any,
    location: str,
    *,
    source_bucket: str,
    prefixes: list[str],
    max_age: timedelta,
    warn: Callable[[str], None],
    now: datetime | None = None,
) -> Iterator[ListedObject]:
    """The current objects under `prefixes` in the newest complete report at `location`.

    The report is found and its manifest validated now (errors raise here); the data files
    are read when the iterator is first advanced. A report older than `max_age` is used,
    with a warning. Temporary files are removed when the iterator is exhausted or closed.
    """
    bucket, folder = parse_location(location)
    report = newest_complete_report(s3, bucket, folder, warn)
    manifest = report.manifest
    if manifest.sourceBucket != source_bucket:
        raise UserError(
            f"inventory report {report.where} lists bucket {manifest.sourceBucket!r}, not "
            f"{source_bucket!r}: point `inventoryLocation` (or --inventory-location) at an "
            f"inventory of {source_bucket}"
        )
    columns = file_columns(report)
    created = datetime.fromtimestamp(manifest.creationTimestamp / 1000, UTC)
    age = (now or datetime.now(UTC)) - created
    if age > max_age:
        warn(
            f"inventory report {report.name} is {_days(age)} old (more than {_days(max_age)}): "
            "objects added or changed since it was made are missing or out of date"
        )
    return _objects(s3, report, columns, normalise_prefixes(prefixes))


def parse_location(location: str) -> tuple[str, str]:
    """(bucket, key prefix ending in "/") of an inventory location `LOCATION_FORM`."""
    match = re.fullmatch(r"s3://([^/]+)/(.*?)/?", location.strip())
    parts = match.group(2).split("/") if match else []
    if match is None or sum(1 for part in parts if part) < 2:
        raise UserError(
            f"inventory location {location!r} is not a folder {LOCATION_FORM}: the folder "
            "holding the dated report folders (YYYY-MM-DDTHH-MMZ/)"
        )
    bucket = match.group(1)
    # A report folder or manifest given instead of their parent: name the parent.
    up = 2 if parts[-1] == "manifest.json" else 1 if REPORT_FOLDER.fullmatch(parts[-1]) else 0
    if up:
        parent = "/".join(parts[:-up])
        raise UserError(
            f"inventory location {location!r} names one report: give the folder above it, "
            f"s3://{bucket}/{parent}/ (the newest complete report there is used)"
        )
    return bucket, "/".join(parts) + "/"


def newest_complete_report(
    s3: Any, bucket: str, folder: str, warn: Callable[[str], None]
) -> Report:
    """The newest report under `folder` whose manifest.checksum matches its manifest.json."""
    where = f"s3://{bucket}/{folder}"
    skipped = 0
    for name in _report_names(s3, bucket, folder):
        prefix = f"{folder}{name}/"
        checksum = _get(s3, bucket, prefix + "manifest.checksum")
        body = _get(s3, bucket, prefix + "manifest.json") if checksum is not None else None
        if checksum is None or body is None:
            problem = "incomplete (no manifest.checksum yet: still being delivered)"
        elif _md5(body) != checksum.decode(errors="replace").strip().lower():
            problem = "manifest.json does not match manifest.checksum (being rewritten, or damaged)"
        else:
            return Report(bucket, prefix, name, _manifest(body, f"s3://{bucket}/{prefix}"))
        skipped += 1
        warn(f"skipping inventory report {name} at s3://{bucket}/{prefix}: {problem}")
    found = f" ({skipped} incomplete ones skipped)" if skipped else ""
    raise UserError(
        f"no complete S3 Inventory report under {where}{found}: the first report arrives up "
        "to 48 hours after the inventory configuration is created, so wait for it; otherwise "
        f"check `inventoryLocation` (or --inventory-location) is the configuration's "
        f"destination, {LOCATION_FORM}"
    )


def file_columns(report: Report) -> list[str]:
    """The data files' column names from `fileSchema` (CSV's known ones renamed to ours).

    Raises if a field a `ListedObject` needs was left out of the inventory configuration.
    """
    manifest = report.manifest
    schema = manifest.fileSchema.strip()
    if manifest.fileFormat == "CSV":  # "Bucket, Key, Size, ..."
        columns = [_FROM_CSV.get(name.strip(), name.strip()) for name in schema.split(",")]
    elif manifest.fileFormat == "ORC":  # "struct<bucket:string,key:string,...>"
        inner = re.fullmatch(r"struct<(.*)>", schema, re.DOTALL)
        fields = inner.group(1).split(",") if inner else []
        columns = [field.split(":", 1)[0].strip() for field in fields]
    else:  # "message s3.inventory { required binary key (UTF8); optional int64 size; ... }"
        columns = re.findall(r"(?:required|optional|repeated)\s+\w+\s+(\w+)", schema)
    if "key" not in columns:
        raise UserError(
            f"inventory report {report.where}: unreadable fileSchema {schema[:80]!r}; "
            "wait for the next report or delete that report folder"
        )
    missing = [_CSV_NAMES[field] for field in _REQUIRED if field not in columns]
    if missing:
        raise UserError(
            f"inventory report {report.where} lacks the field(s) {', '.join(missing)}: add "
            "the optional fields Size, LastModifiedDate and ETag to the inventory "
            "configuration, then wait for its next report"
        )
    return columns


def _objects(
    s3: Any, report: Report, columns: list[str], prefixes: list[str]
) -> Iterator[ListedObject]:
    with tempfile.TemporaryDirectory(prefix="ingest-inventory-") as scratch:
        yield from _in_key_order(_spill(s3, report, columns, prefixes, Path(scratch)))


def _spill(
    s3: Any, report: Report, columns: list[str], prefixes: list[str], scratch: Path
) -> list[_Run]:
    """Every data file read, filtered and spilled as sorted runs; raises if a prefix is empty."""
    fmt = report.manifest.fileFormat
    wanted = [name for name in (*_REQUIRED, *_VERSIONS) if name in columns]
    matched = dict.fromkeys(prefixes, 0)
    runs = _Runs(scratch)
    downloads = _downloads(s3, report.bucket, report.manifest.files, scratch)
    with closing(downloads):
        for file, path in downloads:
            try:
                for raw in _read(path, fmt, columns, wanted):
                    runs.add(_filtered(raw, fmt == "CSV", prefixes, matched))
            except _READ_ERRORS as error:
                raise UserError(
                    f"unreadable inventory file s3://{report.bucket}/{file.key} ({fmt}: "
                    f"{first_line(error)}); wait for the next report or delete that report folder"
                ) from None
            path.unlink()
    for prefix, rows in matched.items():
        if not rows:
            raise UserError(
                f"inventory report {report.name} lists no objects under "
                f"s3://{report.manifest.sourceBucket}/{prefix}: upload data first, fix the "
                "prefix (settings `prefixes` or --prefix), or wait for the next report if "
                "the objects are newer than this one"
            )
    return runs.finish()


def _read(path: Path, fmt: str, columns: list[str], wanted: list[str]) -> Iterator[pa.RecordBatch]:
    """A data file's `wanted` columns, batch by batch."""
    if fmt == "Parquet":
        with pq.ParquetFile(path) as parquet:
            yield from parquet.iter_batches(batch_size=32_768, columns=wanted, use_threads=False)
    elif fmt == "ORC":  # the dataset reader streams inside a stripe; ORCFile reads it whole
        orc = pads.dataset(str(path), format="orc")
        yield from orc.to_batches(columns=wanted, batch_size=32_768, use_threads=False)
    else:  # gzip, no header row, columns in fileSchema order
        yield from pacsv.open_csv(
            pa.input_stream(str(path), compression="gzip"),
            read_options=pacsv.ReadOptions(column_names=columns),
            convert_options=pacsv.ConvertOptions(
                include_columns=wanted, column_types={name: _CSV_TYPES[name] for name in wanted}
            ),
        )


def _filtered(
    raw: pa.RecordBatch, csv: bool, prefixes: list[str], matched: dict[str, int]
) -> pa.RecordBatch:
    """A batch as `_RUN_SCHEMA`: current objects only, keys decoded, under `prefixes`."""
    names = raw.schema.names
    keep = []
    if "is_delete_marker" in names:
        keep.append(pc.invert(pc.fill_null(raw.column("is_delete_marker"), False)))
    if "is_latest" in names:
        keep.append(pc.fill_null(raw.column("is_latest"), True))
    if keep:
        raw = raw.filter(reduce(pc.and_, keep))
    keys = raw.column("key").cast(pa.string())
    if csv:
        keys = _url_decoded(keys)
    batch = pa.RecordBatch.from_arrays(
        [
            keys,
            pc.fill_null(raw.column("size").cast(pa.int64()), 0),
            pc.fill_null(pc.utf8_trim(raw.column("e_tag").cast(pa.string()), '"'), ""),
            _epoch_ms(raw.column("last_modified_date")),
        ],
        schema=_RUN_SCHEMA,
    )
    if prefixes == [""]:
        matched[""] += batch.num_rows
        return batch
    masks = []
    for prefix in prefixes:
        mask = pc.starts_with(keys, pattern=prefix)
        matched[prefix] += pc.sum(mask).as_py() or 0
        masks.append(mask)
    return batch.filter(reduce(pc.or_, masks))


def _url_decoded(keys: pa.Array) -> pa.Array:
    """CSV keys decoded (`+` is a space, `%XX` a UTF-8 byte); only encoded ones go via Python."""
    encoded = pc.match_substring_regex(keys, r"[%+]")
    if not pc.any(encoded).as_py():
        return keys
    decoded = [unquote_plus(key, errors="strict") for key in keys.filter(encoded).to_pylist()]
    return pc.replace_with_mask(keys, encoded, pa.array(decoded, pa.string()))


def _epoch_ms(column: pa.Array) -> pa.Array:
    """Last-modified times as epoch milliseconds (a timestamp without zone is taken as UTC)."""
    if pa.types.is_timestamp(column.type):
        # Truncate ns/us to ms; the integer under a timestamp is UTC whatever its zone.
        column = column.cast(pa.timestamp("ms", tz=column.type.tz), safe=False)
    return column.cast(pa.int64())  # an integer: epoch ms, as Athena's inventory tables read it


class _Runs:
    """Batches cut into runs on disk, each in strictly ascending key order.

    A batch in ascending order (the usual case) is appended to the open run if it carries
    on from the run's last key, else starts a new one: nothing is held. Batches out of order
    inside are gathered, up to `_RUN_ROWS` rows, and written sorted, as a run of their own.
    """

    def __init__(self, scratch: Path) -> None:
        self._scratch = scratch
        self._names = count()
        self._done: list[_Run] = []
        self._writer: pa.ipc.RecordBatchFileWriter | None = None
        self._open = _Run(Path(), "", "")  # the run `_writer` writes
        self._unsorted: list[pa.RecordBatch] = []
        self._unsorted_rows = 0

    def add(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        keys = batch.column(0)
        if not _ascending(keys):
            self._unsorted.append(batch)
            self._unsorted_rows += batch.num_rows
            if self._unsorted_rows >= _RUN_ROWS:
                self._sort()
            return
        first = keys[0].as_py()
        if self._writer is not None and first <= self._open.last:
            self._end()
        if self._writer is None:
            path = self._path()
            self._writer = pa.ipc.new_file(str(path), _RUN_SCHEMA)
            self._open = _Run(path, first, first)
        # Small batches on disk: a merge holds one per run, as Python objects.
        self._writer.write_table(pa.Table.from_batches([batch]), max_chunksize=_BATCH_ROWS)
        self._open = self._open._replace(last=keys[-1].as_py())

    def finish(self) -> list[_Run]:
        self._end()
        self._sort()
        return self._done

    def _end(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            self._done.append(self._open)

    def _sort(self) -> None:
        if not self._unsorted:
            return
        table = pa.Table.from_batches(self._unsorted)
        self._unsorted, self._unsorted_rows = [], 0
        table = table.take(pc.sort_indices(table, sort_keys=[("key", "ascending")]))
        keys = table.column("key").combine_chunks()
        table = table.filter(
            pa.concat_arrays([pa.array([True]), pc.not_equal(keys[1:], keys[:-1])])
        )
        path = self._path()
        with pa.ipc.new_file(str(path), _RUN_SCHEMA) as writer:
            writer.write_table(table, max_chunksize=_BATCH_ROWS)
        keys = table.column("key")
        self._done.append(_Run(path, keys[0].as_py(), keys[-1].as_py()))

    def _path(self) -> Path:
        return self._scratch / f"run-{next(self._names)}"


def _ascending(keys: pa.Array) -> bool:
    """Strictly ascending: sorted, and no key twice."""
    return bool(pc.all(pc.greater(keys[1:], keys[:-1]), min_count=0).as_py())


def _in_key_order(runs: list[_Run]) -> Iterator[ListedObject]:
    """The runs' objects in key order, each key once."""
    for group in _overlapping(runs):
        if len(group) == 1:
            yield from _read_run(group[0])
            continue
        previous = None
        for listed in heapq.merge(*map(_read_run, group), key=itemgetter(0)):
            if listed[0] != previous:  # runs are unique inside, not across
                previous = listed[0]
                yield listed


def _overlapping(runs: list[_Run]) -> Iterator[list[_Run]]:
    """Runs grouped so that the groups span disjoint, ascending key ranges."""
    group: list[_Run] = []
    last = ""
    for run in sorted(runs, key=lambda run: run.first):
        if group and run.first > last:
            yield group
            group = []
        last = max(last, run.last) if group else run.last
        group.append(run)
    if group:
        yield group


def _read_run(run: _Run) -> Iterator[ListedObject]:
    with pa.OSFile(str(run.path)) as source:  # read, not mapped: mapped pages count as RSS
        reader = pa.ipc.open_file(source)
        for index in range(reader.num_record_batches):
            yield from _listed(reader.get_batch(index))
    run.path.unlink()


def _listed(batch: pa.RecordBatch) -> list[ListedObject]:
    """A run batch as ListedObjects: whole columns to Python, tuples built in C."""
    keys, sizes, etags, ms = batch.columns
    seconds = pc.divide(ms.cast(pa.float64()), 1000.0).to_pylist()
    if ms.null_count:
        times = [None if s is None else datetime.fromtimestamp(s, UTC) for s in seconds]
    else:
        times = list(map(datetime.fromtimestamp, seconds, repeat(UTC)))
    rows = zip(keys.to_pylist(), sizes.to_pylist(), etags.to_pylist(), times, strict=True)
    return list(map(tuple.__new__, repeat(ListedObject), rows))


def _downloads(
    s3: Any, bucket: str, files: list[DataFile], scratch: Path
) -> Generator[tuple[DataFile, Path], None, None]:
    """Each data file downloaded and checked, in manifest order; the next one downloads
    while the caller reads this one."""
    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="inventory-download") as pool:

        def fetch(index: int) -> Future[Path] | None:
            if index == len(files):
                return None
            target = scratch / f"file-{index}"
            return pool.submit(_download, s3, bucket, files[index], target, stop)

        try:
            ahead = fetch(0)
            for index, file in enumerate(files):
                assert ahead is not None
                path = ahead.result()
                ahead = fetch(index + 1)
                yield file, path
        finally:
            stop.set()  # an abandoned download stops at its next chunk


def _download(s3: Any, bucket: str, file: DataFile, path: Path, stop: threading.Event) -> Path:
    where = f"s3://{bucket}/{file.key}"
    digest = hashlib.md5(usedforsecurity=False)
    try:
        body = s3.get_object(Bucket=bucket, Key=file.key)["Body"]
        with path.open("wb") as out:
            for chunk in body.iter_chunks(_CHUNK):
                if stop.is_set():
                    return path
                digest.update(chunk)
                out.write(chunk)
    except (BotoCoreError, ClientError) as error:
        if missing_object(error):
            raise UserError(
                f"inventory file {where} listed in the manifest does not exist; wait for the "
                "next report or delete that report folder"
            ) from None
        raise _explain(error, "reading", where) from None
    if digest.hexdigest() != file.MD5checksum.strip().lower():
        raise UserError(
            f"corrupt inventory file {where}: checksum mismatch; wait for the next report "
            "or delete that report folder"
        )
    return path


def _report_names(s3: Any, bucket: str, folder: str) -> list[str]:
    """The dated report folders under `folder`, newest first."""
    names = []
    try:
        pages = s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=folder, Delimiter="/"
        )
        for page in pages:
            for common in page.get("CommonPrefixes", ()):
                name = common["Prefix"][len(folder) :].rstrip("/")
                if REPORT_FOLDER.fullmatch(name):
                    names.append(name)
    except (BotoCoreError, ClientError) as error:
        raise _explain(error, "listing", f"s3://{bucket}/{folder}") from None
    return sorted(names, reverse=True)  # this timestamp form sorts chronologically


def _get(s3: Any, bucket: str, key: str) -> bytes | None:
    """An object's body, or None if it does not exist."""
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except (BotoCoreError, ClientError) as error:
        if missing_object(error):
            return None
        raise _explain(error, "reading", f"s3://{bucket}/{key}") from None


def _manifest(body: bytes, folder: str) -> Manifest:
    where = f"{folder}manifest.json"
    try:
        manifest = Manifest.model_validate(json.loads(body))
    except (ValueError, ValidationError) as error:
        if isinstance(error, ValidationError):
            first = error.errors()[0]
            detail = f"{'.'.join(map(str, first['loc'])) or 'manifest'}: {first['msg']}"
        else:
            detail = f"not JSON ({error})"
        raise UserError(
            f"inventory manifest {where} is not a valid S3 Inventory manifest ({detail}); "
            "wait for the next report or delete that report folder"
        ) from None
    if manifest.version != MANIFEST_VERSION:
        raise UserError(
            f"inventory manifest {where} has version {manifest.version!r}; only "
            f"{MANIFEST_VERSION} is supported"
        )
    return manifest


def _md5(body: bytes) -> str:
    return hashlib.md5(body, usedforsecurity=False).hexdigest()


def _explain(error: BaseException, doing: str, where: str) -> UserError:
    return explain(
        error,
        doing,
        where,
        needs="s3:ListBucket and s3:GetObject on the inventory's destination bucket",
        bucket_hint="check `inventoryLocation`",
    )


def _days(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 86_400:.1f} days"
