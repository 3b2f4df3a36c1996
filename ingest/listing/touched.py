"""A listing source over just the keys a batch of S3 events touched (`ingest watch`).

The pipeline re-plans a unit from everything it is made of, so the scope of a touched key
is: a single object with its sidecar (a touched sidecar re-plans its object), or a whole
grouped folder (an image-group folder, or a DICOM series folder) listed with its direct
children, since one new or removed frame changes the group. Objects are looked up now, not
taken from the events: S3 delivers late and out of order, and the bucket as it is now is
what the Dataset must mirror. What a touched key no longer names is `absent`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ingest.listing.s3_errors import explain, missing_object
from ingest.listing.scan import ListedObject, listing_errors
from ingest.plan.classify import DICOM, SIDECAR_SUFFIX, classify, extension
from ingest.plan.group import FolderRules


@dataclass(frozen=True)
class Scope:
    """What a batch re-plans: single objects by key, grouped folders (ending in '/') whole.
    Deletion handling limits itself to this: an entry outside it was not looked at."""

    keys: frozenset[str]
    folders: frozenset[str]

    def covers(self, key: str) -> bool:
        return key in self.keys or key[: key.rfind("/") + 1] in self.folders

    def unit_of(self, key: str) -> str | None:
        """The unit a touched key re-plans (a single object's key, or a grouped folder);
        None for a key outside the scope."""
        unit_key = key.removesuffix(SIDECAR_SUFFIX)
        folder = unit_key[: unit_key.rfind("/") + 1]
        if folder in self.folders:
            return folder
        return unit_key if unit_key in self.keys else None


def scope_of(touched: Iterable[str], rules: FolderRules, prefixes: Iterable[str]) -> Scope:
    """The units `touched` keys belong to; keys outside `prefixes` are out of scope."""
    within = tuple(prefixes)
    keys, folders = set(), set()
    for key in touched:
        if not key.startswith(within):
            continue
        unit_key = key.removesuffix(SIDECAR_SUFFIX)
        folder = unit_key[: unit_key.rfind("/") + 1]
        kind, _ = classify(unit_key)
        # A key without an extension may be DICOM by its content type: its folder, to be safe.
        dicom = rules.dicom_series and (kind == DICOM or not extension(unit_key))
        if dicom or rules.image_mode(folder) is not None:
            folders.add(folder)
        else:
            keys.add(unit_key)
    return Scope(frozenset(keys), frozenset(folders))


@dataclass(frozen=True)
class TouchedListing:
    scope: Scope
    objects: list[ListedObject]  # in key order, as every listing source yields them
    absent: list[str]  # touched keys (sidecars aside) the bucket no longer holds

    def __iter__(self) -> Iterator[ListedObject]:
        return iter(self.objects)


def list_touched(
    s3: Any,
    bucket: str,
    touched: Iterable[str],
    rules: FolderRules,
    prefixes: Iterable[str],
    workers: int = 16,
) -> TouchedListing:
    """The objects in the scope of `touched`, looked up in the bucket now."""
    touched = sorted(set(touched))
    scope = scope_of(touched, rules, prefixes)
    found: dict[str, ListedObject] = {}
    for folder in sorted(scope.folders):
        for obj in _folder_children(s3, bucket, folder):
            found[obj.key] = obj
    singles = sorted({k for key in scope.keys for k in (key, key + SIDECAR_SUFFIX)})
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="touched") as pool:
        for head in pool.map(lambda key: _head(s3, bucket, key), singles):
            if head is not None:
                found[head.key] = head
    absent = [
        key
        for key in touched
        if not key.endswith(SIDECAR_SUFFIX) and scope.covers(key) and key not in found
    ]
    return TouchedListing(scope, [found[key] for key in sorted(found)], absent)


def _folder_children(s3: Any, bucket: str, folder: str) -> Iterator[ListedObject]:
    where = f"s3://{bucket}/{folder}"
    paginator = s3.get_paginator("list_objects_v2")
    with listing_errors(where):
        for page in paginator.paginate(Bucket=bucket, Prefix=folder, Delimiter="/"):
            for item in page.get("Contents", ()):
                yield ListedObject(
                    item["Key"],
                    item["Size"],
                    item.get("ETag", "").strip('"'),
                    item.get("LastModified"),
                )


def _head(s3: Any, bucket: str, key: str) -> ListedObject | None:
    try:
        answer = s3.head_object(Bucket=bucket, Key=key)
    except (BotoCoreError, ClientError) as error:
        if missing_object(error):
            return None
        raise explain(
            error, "inspecting", f"s3://{bucket}/{key}", needs="s3:GetObject on the bucket"
        ) from None
    return ListedObject(
        key, answer["ContentLength"], answer.get("ETag", "").strip('"'), answer.get("LastModified")
    )
