"""The plan pipeline: scan → classify → group → metadata → entries, streaming.

`iter_entries(context, report)` is what `ingest plan` and `ingest run` consume: Encord
entries in a deterministic order, while `report` accumulates counts and problems.
`plan(context)` also writes the manifests, CSV files and report.
"""

from __future__ import annotations

import gc
import json
import shutil
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from typing import Any

from ingest.context import PlanContext
from ingest.encord_format import KINDS
from ingest.errors import UserError
from ingest.files import cannot_write, os_reason, write_atomic
from ingest.listing.s3_errors import s3_errors
from ingest.listing.scan import ListedObject, normalise_prefixes
from ingest.listing.sources import listed_objects
from ingest.model import Entry, ReadObject
from ingest.plan.classify import FAST_KINDS, SIDECAR, SIDECAR_SUFFIX, classify, extension
from ingest.plan.dicom import ReadDicomHeader, s3_header_reader
from ingest.plan.globs import matcher
from ingest.plan.group import FolderRules, Item, group
from ingest.plan.manifest import REPORT_FILE, object_urls, publish
from ingest.plan.metadata import MetadataSource, MetadataTable, attach_metadata
from ingest.plan.rendering import OutputProcess
from ingest.plan.report import PlanReport
from ingest.plan.schema import load_schema
from ingest.plan.validate import entry_problems

ContentTypeOf = Callable[[str], str | None]


def items(
    objects: Iterable[ListedObject],
    excluded: Callable[[str], bool] | None,
    content_type_of: ContentTypeOf,
    report: PlanReport,
) -> Iterator[Item]:
    """Classified importable objects in key order, each paired with its sidecar if listed.

    A sidecar `<key>.metadata.json` sorts after `<key>`, and every key between the two starts
    with `<key>`; so an item waits only until the listing passes its sidecar's key.

    This runs once per listed key, so it is written as one tight loop: `fast_kind` inlined
    (one dictionary lookup for the usual extensions, `classify` for the rest), and items
    built with `tuple.__new__` (a NamedTuple's own `__new__` is a Python-level call).
    """
    waiting: deque[tuple[Item, str]] = deque()  # (item, its sidecar's key), in key order
    sidecars_seen: dict[str, str] = {}  # sidecar key → ETag, of waiting items' sidecars only
    listed = 0
    fast_kinds, new = FAST_KINDS, tuple.__new__
    release, wait = waiting.popleft, waiting.append
    try:
        for obj in objects:
            listed += 1
            key = obj[0]
            while waiting and key > waiting[0][1]:
                item, sidecar = release()
                if sidecars_seen and sidecar in sidecars_seen:
                    item = item._replace(sidecar=sidecar, sidecar_etag=sidecars_seen.pop(sidecar))
                yield item
            if excluded is not None and excluded(key):
                report.excluded += 1
                continue
            dot = key.rfind(".")
            kind = fast_kinds.get(key[dot:]) if dot > key.rfind("/") + 1 else None
            if kind is None:
                kind, reason = classify(key)
                if kind is None and not extension(key) and not key.endswith("/"):
                    # Listings carry no content type: ask S3, only for keys without an extension.
                    kind, reason = classify(key, content_type_of(key))
                if kind == SIDECAR:
                    report.sidecars += 1
                    if any(key == sidecar for _, sidecar in waiting):
                        sidecars_seen[key] = obj[2]
                    else:
                        report.orphan_sidecars += 1
                    continue
                if kind is None:
                    report.add_unsupported(key, reason)
                    continue
            wait((new(Item, (key, obj[2], kind, None, None, obj[1])), key + SIDECAR_SUFFIX))
        while waiting:
            item, sidecar = release()
            if sidecars_seen and sidecar in sidecars_seen:
                item = item._replace(sidecar=sidecar, sidecar_etag=sidecars_seen.pop(sidecar))
            yield item
    finally:
        report.objects += listed


def entries(
    objects: Iterable[ListedObject],
    *,
    url_prefix: str,
    rules: FolderRules,
    excluded: Callable[[str], bool] | None,
    content_type_of: ContentTypeOf,
    metadata: MetadataSource,
    report: PlanReport,
    read_header: ReadDicomHeader | None = None,
) -> Iterator[Entry]:
    """The pure pipeline over a listing; adapters for S3 are passed in."""
    grouped = group(
        items(objects, excluded, content_type_of, report),
        rules,
        object_urls(url_prefix),
        read_header,
        report.add_unsupported,
    )
    # Counted in plain dicts, added to the report's Counters at the end (as `items` counts
    # objects): `+=` on a Counter costs several times what it does on a dict.
    entries_per_kind, files_per_kind = dict.fromkeys(KINDS, 0), dict.fromkeys(KINDS, 0)
    try:
        for entry in attach_metadata(grouped, metadata, report):
            kind = entry.kind
            entries_per_kind[kind] += 1
            files_per_kind[kind] += len(entry.keys)
            yield entry
    finally:
        report.entries.update({kind: n for kind, n in entries_per_kind.items() if n})
        report.files.update({kind: n for kind, n in files_per_kind.items() if n})


def validated(entries: Iterable[Entry]) -> Iterator[Entry]:
    """`entries`, each checked as `ingest validate` checks a manifest's entries, so that
    nothing Encord would refuse is written or uploaded."""
    paths = {kind: f"$.{kind}[]" for kind in KINDS}
    for entry in entries:
        problems = entry_problems(paths[entry.kind], entry.kind, entry.title, entry.urls)
        if problems:
            problem = problems[0]
            raise UserError(
                f"entry {entry.title!r} would be an invalid manifest entry: {problem.path}: "
                f"{problem.message} (check the stack output objectUrlPrefix and the key)"
            )
        yield entry


def iter_entries(
    context: PlanContext,
    report: PlanReport,
    read_through: Callable[[ReadObject], ReadObject] | None = None,
    header_read_through: Callable[[ReadDicomHeader], ReadDicomHeader] | None = None,
    objects: Iterable[ListedObject] | None = None,
    listed: Callable[[Iterable[ListedObject]], Iterable[ListedObject]] | None = None,
) -> Iterator[Entry]:
    """Entries for the stack's bucket under the configured prefixes, in deterministic order,
    each `validated`.

    `read_through`, if given, wraps the sidecar reader (`ingest run` passes a cache in its
    run state: `RunState.cached_sidecars`); `ingest plan` reads every sidecar from S3.
    `header_read_through` does the same for DICOM headers (`RunState.cached_dicom_headers`).
    The garbage collector is tuned for streaming while the entries are planned.
    `objects`, if given, replaces the configured listing source (`ingest watch` passes just
    the keys a batch of S3 events touched, in key order). `listed`, if given, wraps the
    listing (the CLI counts it for its progress display)."""
    settings, bucket = context.settings, context.outputs.bucket_name
    report.bucket = bucket
    report.prefixes = normalise_prefixes(context.prefixes)
    schema = load_schema(settings.metadata_schema) if settings.metadata_schema else None
    with ExitStack() as cleanup:
        table = None
        if settings.metadata_files:
            table = MetadataTable(settings.metadata_files, schema)
            cleanup.callback(table.close)
        reader = _S3Objects(context.s3, bucket)
        read = None
        if settings.metadata_sidecars:
            read = reader.read if read_through is None else read_through(reader.read)
        source = MetadataSource(read, table, schema)
        read_header = s3_header_reader(context.s3, bucket)
        if header_read_through is not None:
            read_header = header_read_through(read_header)
        if objects is None:
            objects = listed_objects(context, report.warnings.append)
        cleanup.enter_context(_collector_tuned_for_streaming())
        yield from validated(
            entries(
                listed(objects) if listed else objects,
                url_prefix=context.outputs.object_url_prefix,
                rules=FolderRules(settings.groups, settings.dicom_series, settings.dicom_grouping),
                excluded=matcher(settings.exclude),
                content_type_of=reader.content_type,
                metadata=source,
                report=report,
                read_header=read_header,
            )
        )


class _S3Objects:
    """The S3 adapter for single objects: sidecar bodies and content types."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self._s3 = s3
        self._bucket = bucket

    def read(self, key: str, etag: str | None = None) -> bytes:
        """The object's body, always from S3 (`etag`, as listed, is for caching wrappers)."""
        del etag
        with self._errors("reading", key):
            return self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()

    def content_type(self, key: str) -> str | None:
        with self._errors("inspecting", key):
            return self._s3.head_object(Bucket=self._bucket, Key=key).get("ContentType")

    def _errors(self, doing: str, key: str) -> AbstractContextManager[None]:
        return s3_errors(
            doing,
            f"s3://{self._bucket}/{key}",
            needs="s3:GetObject on the bucket, and the object must still exist",
        )


@contextmanager
def _collector_tuned_for_streaming() -> Iterator[None]:
    """The garbage collector, set for a plan's millions of short-lived objects, then restored.

    - What exists before the plan (modules, clients, settings) is frozen out of full
      collections: the plan's own objects die young, yet the few in flight at each
      collection (a page, a batch) make full collections frequent, and each would traverse
      every imported module. Left as is when someone else already froze objects.
    - Young collections run every 20,000 allocations instead of 700: objects freed by
      reference counting never reach one, so a collection costs what is alive then (a page
      or two), and there are far fewer of them.

    What each saves per key is in `bench/README.md`.
    """
    thresholds = gc.get_threshold()
    freeze = not gc.get_freeze_count()
    if freeze:
        gc.freeze()
    gc.set_threshold(20_000, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        if freeze:
            gc.unfreeze()


def plan(
    context: PlanContext,
    listed: Callable[[Iterable[ListedObject]], Iterable[ListedObject]] | None = None,
    planned: Callable[[Iterable[Entry]], Iterable[Entry]] | None = None,
) -> PlanReport:
    """Write manifests, CSV files and `report.json` to the output directory; return the report.

    Everything is written to a staging directory inside the output directory first and
    published only when complete (see `manifest.publish`). The manifests and CSV files are
    rendered by a second process (`OutputProcess`) while this one plans. `listed` and
    `planned` (see `iter_entries`) wrap the listing and the entries on their way: the CLI
    counts them, the mirror preview of `ingest plan` looks at every entry.

    Any exception, a KeyboardInterrupt included (the CLI turns SIGTERM into one), removes
    the staging directory and leaves the previous plan as it was."""
    out = context.settings.output_dir
    try:
        out.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".plan-", dir=out))
    except OSError as error:
        raise cannot_write(out, os_reason(error)) from None
    report = PlanReport()
    writers = None
    try:
        writers = OutputProcess(staging, context.settings.chunk_size)
        planning = iter_entries(context, report, listed=listed)
        writers.write(planned(planning) if planned else planning)
        written, writers = writers.close(), None
        final = [out / path.relative_to(staging) for path in written]
        report.manifests = [str(path) for path in final if path.parent == out]
        report.csv_files = [str(path) for path in final if path.parent != out]
        document = json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n"
        write_atomic(staging / REPORT_FILE, document)
    except BaseException:
        if writers is not None:
            writers.kill()
        shutil.rmtree(staging, ignore_errors=True)
        raise
    publish(staging, out)
    return report
