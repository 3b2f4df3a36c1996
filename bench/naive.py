"""The naive baseline: list everything into memory, build every dict, validate, json.dump.

It does less than `plan` (no grouping, no sidecar pairing, no CSV, no report) and splits
its single in-memory manifest into files of `CHUNK` entries only so that Encord's limits hold.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

from ingest.plan.classify import DICOM, EXTENSION_KINDS, extension
from ingest.plan.validate import validate_document
from ingest.settings import DEFAULT_CHUNK_SIZE

CHUNK = DEFAULT_CHUNK_SIZE


def naive_plan(s3, bucket: str, url_prefix: str, out: Path) -> int:
    objects = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=""):
        objects.extend(page.get("Contents", []))
    entries = []
    for obj in objects:
        kind = EXTENSION_KINDS.get(extension(obj["Key"]))
        if kind is None:
            continue
        url = url_prefix + quote(obj["Key"], safe="/")
        if kind == DICOM:
            entries.append(("dicom_series", {"title": obj["Key"], "objectUrl_0": url}))
        else:
            entries.append((kind, {"objectUrl": url, "title": obj["Key"]}))
    for number, start in enumerate(range(0, len(entries), CHUNK), start=1):
        manifest: dict = {"skip_duplicate_urls": True}
        for kind, entry in entries[start : start + CHUNK]:
            manifest.setdefault(kind, []).append(entry)
        problems, _, _ = validate_document(manifest)
        assert not problems, problems[:3]
        with (out / f"manifest-{number:05d}.json").open("w", encoding="utf-8") as handle:
            json.dump(manifest, handle, ensure_ascii=False)
    return len(entries)
