"""The organisation's records and the rules on them, shared by both API families and the jobs.

Records are snake_case documents in the store; the route modules render them in each
family's wire shape.

Visibility: a user sees the integrations, folders (with their items and sub-folders) and
datasets they own or that were shared with them (`share`). Organisation admins (a reading,
see `sandbox.readings`) may open any record by id, and list everything with
`include_org_access`. Methods taking a `viewer` check it; `viewer=None` is the sandbox itself
(the upload jobs), which sees everything.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sandbox.errors import ApiError, ErrorKind, invalid, not_found
from sandbox.readings import LinkedItemDeletion
from sandbox.state import Cursor, Document, Store

INTEGRATION, FOLDER, ITEM, DATASET, DATA_ROW, SETTING = (
    "integration",
    "folder",
    "item",
    "dataset",
    "data_row",
    "setting",
)
FRAME = "frame"  # a frame of a group item: {uuid, item_uuid}, keyed by its URL
METADATA_SCHEMA_SETTING = "metadata_schema"
SUPPORTED_PROVIDERS = ("AWS",)
# What sts:AssumeRole accepts, checked up front as Encord's web app does.
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
_EXTERNAL_ID = re.compile(r"^[\w+=,.@:/-]{2,1224}$")
GROUP_ITEM_TYPES = ("imageGroup", "imageSequence", "dicomSeries")


class Shareable(StrEnum):
    """The records a user can share with another user."""

    INTEGRATION = INTEGRATION
    FOLDER = FOLDER
    DATASET = DATASET


class Duplicates(StrEnum):
    """`link_items`' duplicates_behavior."""

    SKIP = "SKIP"
    FAIL = "FAIL"
    DUPLICATE = "DUPLICATE"


@dataclass(frozen=True)
class Viewer:
    """Who asks: a user by name (the key's comment), and whether they are an org admin."""

    name: str
    org_admin: bool = False


def now() -> str:
    return datetime.now(UTC).isoformat()


def new_id() -> str:
    return str(uuid.uuid4())


def sql_like(value: str, pattern: str) -> bool:
    """SQL LIKE (case-insensitive, as Postgres ILIKE): % any run, _ one character."""
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE | re.DOTALL) is not None


def duplicate_key(urls: Iterable[str]) -> str:
    """What `skip_duplicate_urls` compares: the URL, or all frame URLs of a group in order."""
    return "\n".join(urls)


def item_urls(item: Document) -> list[str]:
    """The object URL of a one-file item, or its frames' URLs in order."""
    if item.get("frames"):
        return [frame["url"] for frame in item["frames"]]
    return [item["url"]]


def _owns_or_shared(viewer: Viewer, record: Document) -> bool:
    return record.get("owner") == viewer.name or viewer.name in record.get("shared_with", ())


def _forbidden_folder(folder_uuid: str) -> ApiError:
    # The SDK documents AuthorisationError for a folder that is missing or not yours.
    return ApiError(
        ErrorKind.FORBIDDEN, f"Folder {folder_uuid} does not exist or is not accessible."
    )


def _forbidden_item(item_uuid: str) -> ApiError:
    return ApiError(ErrorKind.FORBIDDEN, f"Item {item_uuid} does not exist or is not accessible.")


class Catalog:
    def __init__(self, store: Store):
        self.store = store

    # Integrations (created in Encord's web app; here through /sandbox/integrations)

    def add_integration(
        self, owner: str, title: Any, provider: Any, role_arn: Any, external_id: Any
    ) -> Document:
        if provider not in SUPPORTED_PROVIDERS:
            raise invalid(
                f"Unsupported provider {provider!r}; the sandbox supports {SUPPORTED_PROVIDERS}."
            )
        if not (
            isinstance(title, str)
            and title
            and isinstance(role_arn, str)
            and isinstance(external_id, str)
        ):
            raise invalid("An integration needs a title, a roleArn and an externalId.")
        if not _ROLE_ARN.match(role_arn):
            raise invalid(
                f"{role_arn!r} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)."
            )
        if not _EXTERNAL_ID.match(external_id):
            raise invalid(
                "An external ID is 2 to 1224 characters of letters, digits and +=,.@:/-_."
            )
        integration: Document = {
            "uuid": new_id(),
            "title": title,
            "provider": provider,
            "role_arn": role_arn,
            "external_id": external_id,
            "owner": owner,
            "shared_with": [],
            "created_at": now(),
        }
        self.store.put(INTEGRATION, integration["uuid"], integration)
        return integration

    def integrations(self, viewer: Viewer | None, *, org_access: bool = False) -> list[Document]:
        return [
            x for x in self.store.all(INTEGRATION) if self._listed(viewer, x, org_access=org_access)
        ]

    def integration(self, integration_uuid: str, viewer: Viewer | None = None) -> Document:
        integration = self.store.get(INTEGRATION, integration_uuid)
        if integration is None or not self._may_open(viewer, integration):
            raise not_found(f"Cloud integration {integration_uuid} does not exist.")
        return integration

    def share(self, kind: Shareable, record_uuid: str, user: str) -> None:
        with self.store.transaction():
            record = self.store.get(kind, record_uuid)
            if record is None:
                raise not_found(f"No {kind} {record_uuid}.")
            if user not in record["shared_with"]:
                record["shared_with"].append(user)
            self.store.put(kind, record_uuid, record, sort=_sort_of(kind, record))

    def _may_open(self, viewer: Viewer | None, record: Document) -> bool:
        return viewer is None or viewer.org_admin or _owns_or_shared(viewer, record)

    def _listed(self, viewer: Viewer | None, record: Document, *, org_access: bool) -> bool:
        if viewer is None or (org_access and viewer.org_admin):
            return True
        return _owns_or_shared(viewer, record)

    # Organisation metadata schema

    def metadata_schema(self) -> dict[str, Any] | None:
        setting = self.store.get(SETTING, METADATA_SCHEMA_SETTING)
        return setting["value"] if setting else None

    def save_metadata_schema(self, schema: dict[str, Any]) -> None:
        self.store.put(SETTING, METADATA_SCHEMA_SETTING, {"value": schema, "updated_at": now()})

    def metadata_schema_updated_at(self) -> str | None:
        setting = self.store.get(SETTING, METADATA_SCHEMA_SETTING)
        return setting["updated_at"] if setting else None

    # Storage folders

    def create_folder(
        self,
        owner: str,
        name: Any,
        description: str | None = None,
        parent: str | None = None,
        client_metadata: dict | None = None,
        synced_dataset_hash: str | None = None,
    ) -> Document:
        if not isinstance(name, str) or not name.strip():
            raise invalid("A folder needs a name.")
        if parent is not None:
            self.folder(parent, Viewer(owner))
        stamp = now()
        folder: Document = {
            "uuid": new_id(),
            "parent": parent,
            "name": name,
            "description": description or "",
            "client_metadata": client_metadata,
            "owner": owner,
            "shared_with": [],
            "created_at": stamp,
            "last_edited_at": stamp,
            "synced_dataset_hash": synced_dataset_hash,
        }
        self._put_folder(folder)
        return folder

    def folder(self, folder_uuid: str, viewer: Viewer | None = None) -> Document:
        folder = self.store.get(FOLDER, folder_uuid)
        if folder is None or not self._may_open_folder(viewer, folder):
            raise _forbidden_folder(folder_uuid)
        return folder

    def _may_open_folder(self, viewer: Viewer | None, folder: Document) -> bool:
        """Owned or shared, or inside a folder that is."""
        if viewer is None or viewer.org_admin:
            return True
        return any(_owns_or_shared(viewer, f) for f in self.path_to_root(folder))

    def user_role(self, viewer: Viewer, record: Document) -> str:
        """`admin` for what the viewer owns (or administers), `user` for what was shared."""
        return "admin" if viewer.org_admin or record.get("owner") == viewer.name else "user"

    def update_folder(
        self, folder_uuid: str, changes: dict[str, Any], viewer: Viewer | None
    ) -> Document:
        with self.store.transaction():  # read-modify-write: no concurrent update in between
            folder = self.folder(folder_uuid, viewer)
            for field in ("name", "description", "client_metadata"):
                if changes.get(field) is not None:
                    folder[field] = changes[field]
            if not folder["name"].strip():
                raise invalid("A folder needs a name.")
            folder["last_edited_at"] = now()
            self._put_folder(folder)
            return folder

    def path_to_root(self, folder: Document) -> list[Document]:
        path: list[Document] = []
        current: Document | None = folder
        while current is not None:
            path.append(current)
            current = self.store.get(FOLDER, current["parent"]) if current["parent"] else None
        return list(reversed(path))

    def scan_folders(
        self,
        viewer: Viewer,
        *,
        top_level_only: bool,
        by_name: bool,
        descending: bool,
        after: Cursor | None,
        org_access: bool,
    ) -> Iterator[tuple[Cursor, Document]]:
        everything = org_access and viewer.org_admin
        for cursor, folder in self.store.scan(
            FOLDER, by_sort=by_name, descending=descending, after=after
        ):
            if top_level_only and folder["parent"] is not None:
                continue
            if everything or any(_owns_or_shared(viewer, f) for f in self.path_to_root(folder)):
                yield cursor, folder

    def _put_folder(self, folder: Document) -> None:
        self.store.put(FOLDER, folder["uuid"], folder, sort=_sort_of(FOLDER, folder))

    # Storage items

    def put_item(self, item: Document) -> None:
        self.store.put(
            ITEM,
            item["uuid"],
            item,
            parent=item["parent"],
            key=duplicate_key(item_urls(item)),
            sort=item["name"].lower(),
        )
        for frame in item.get("frames") or []:
            self.store.put(
                FRAME,
                frame["uuid"],
                {"uuid": frame["uuid"], "item_uuid": item["uuid"]},
                key=frame["url"],
            )

    def item(self, item_uuid: str, viewer: Viewer | None = None) -> Document:
        item = self.store.get(ITEM, item_uuid)
        if item is None:
            raise _forbidden_item(item_uuid)
        if viewer is not None:
            folder = self.store.get(FOLDER, item["parent"])
            if folder is None or not self._may_open_folder(viewer, folder):
                raise _forbidden_item(item_uuid)
        return item

    def items(self, item_uuids: list[str]) -> dict[str, Document]:
        return self.store.get_many(ITEM, item_uuids)

    def items_with_urls(self, folder_uuid: str, urls: list[str]) -> list[Document]:
        return self.store.find(ITEM, parent=folder_uuid, key=duplicate_key(urls))

    def scan_items(
        self, folder_uuid: str, *, by_name: bool, descending: bool, after: Cursor | None
    ) -> Iterator[tuple[Cursor, Document]]:
        return self.store.scan(
            ITEM, parent=folder_uuid, by_sort=by_name, descending=descending, after=after
        )

    def rows_of_item(self, item_uuid: str) -> list[Document]:
        return self.store.find(DATA_ROW, key=item_uuid)

    def row_count_of_item(self, item_uuid: str) -> int:
        return self.store.count(DATA_ROW, key=item_uuid)

    def delete_items(
        self,
        folder_uuid: str,
        item_uuids: list[str],
        viewer: Viewer,
        linked: LinkedItemDeletion,
    ) -> int:
        """Delete immediate children of the folder; all or nothing."""
        with self.store.transaction():
            self.folder(folder_uuid, viewer)
            items = []
            for item_uuid in item_uuids:
                item = self.item(item_uuid, viewer)
                if item["parent"] != folder_uuid:
                    raise invalid(f"Item {item_uuid} is not in folder {folder_uuid}.")
                items.append(item)
            rows = {item["uuid"]: self.rows_of_item(item["uuid"]) for item in items}
            used = [item_uuid for item_uuid, its_rows in rows.items() if its_rows]
            if used and linked is LinkedItemDeletion.REFUSE:
                raise invalid(
                    "Items are used in datasets; remove their data rows first: " + ", ".join(used)
                )
            for item in items:
                for row in rows[item["uuid"]]:
                    self.store.delete(DATA_ROW, row["data_hash"])
                for frame in item.get("frames") or []:
                    self.store.delete(FRAME, frame["uuid"])
                self.store.delete(ITEM, item["uuid"])
            return len({item["uuid"] for item in items})

    def update_item(
        self, item_uuid: str, changes: dict[str, Any], viewer: Viewer, folder_uuid: str | None
    ) -> Document:
        """Rename an item, or replace its description or `clientMetadata` (None: unchanged).
        Its data rows follow: a row's title is its item's name."""
        with self.store.transaction():  # read-modify-write: no concurrent update in between
            item = self.item(item_uuid, viewer)
            if folder_uuid is not None and item["parent"] != folder_uuid:
                raise invalid(f"Item {item_uuid} is not in folder {folder_uuid}.")
            for field in ("name", "description", "client_metadata"):
                if changes.get(field) is not None:
                    item[field] = changes[field]
            item["last_edited_at"] = now()
            self.put_item(item)
            return item

    # Re-pointing items (storage/items/migrate-storage)

    def migrate(
        self,
        viewer: Viewer,
        *,
        items_map: dict[str, str | None],
        urls_map: dict[str, str | None],
        from_integration: str | None,
        to_integration: str | None,
        skip_missing: bool,
    ) -> list[tuple[Document, list[str]]]:
        """Work out every change first; the caller checks access, then `commit_migration`.

        Returns (item, new URLs in frame order) per changed item. An item's uuid, rows and
        metadata are kept. A frame of a group is addressed by its frame uuid (as
        `get_child_items` shows it) or by its URL.
        """
        if to_integration is not None:
            self.integration(to_integration, viewer)
        changes: dict[str, tuple[Document, list[str]]] = {}

        def change(item: Document, index: int | None, new_url: str) -> None:
            if from_integration is not None and item["integration_hash"] != from_integration:
                raise invalid(
                    f"Item {item['uuid']} is not in integration {from_integration}; nothing was changed."
                )
            current = changes.get(item["uuid"], (item, item_urls(item)))
            urls = list(current[1])
            if index is None:
                urls = [new_url]
            else:
                urls[index] = new_url
            changes[item["uuid"]] = (item, urls)

        for item_uuid, new_url in items_map.items():
            found = self._item_or_frame(item_uuid, viewer)
            if found is None:
                if skip_missing:
                    continue
                raise not_found(f"Storage item {item_uuid} does not exist; nothing was changed.")
            item, index = found
            if index is None and item.get("frames"):
                raise invalid(
                    f"Item {item_uuid} is a {item['item_type']}: re-point its frames (their uuids "
                    "from get_child_items, or their URLs), not the group."
                )
            change(item, index, new_url or item_urls(item)[index or 0])
        for old_url, new_url in urls_map.items():
            matches = self._items_with_frame_url(old_url, viewer)
            if not matches:
                if skip_missing:
                    continue
                raise not_found(f"No storage item has the URL {old_url}; nothing was changed.")
            for item, index in matches:
                change(item, index, new_url or old_url)
        return list(changes.values())

    def commit_migration(
        self, changes: list[tuple[Document, list[str]]], to_integration: str | None
    ) -> None:
        with self.store.transaction():
            for item, urls in changes:
                fresh = self.store.get(ITEM, item["uuid"])
                if fresh is None:
                    continue
                if fresh.get("frames"):
                    for frame, url in zip(fresh["frames"], urls, strict=True):
                        frame["url"] = url
                else:
                    fresh["url"] = urls[0]
                if to_integration is not None:
                    fresh["integration_hash"] = to_integration
                fresh["last_edited_at"] = now()
                self.put_item(fresh)

    def _item_or_frame(self, some_uuid: str, viewer: Viewer) -> tuple[Document, int | None] | None:
        try:
            return self.item(some_uuid, viewer), None
        except ApiError:
            pass
        frame = self.store.get(FRAME, some_uuid)
        if frame is None:
            return None
        try:
            item = self.item(frame["item_uuid"], viewer)
        except ApiError:
            return None
        for index, candidate in enumerate(item.get("frames") or []):
            if candidate["uuid"] == some_uuid:
                return item, index
        return None

    def _items_with_frame_url(self, url: str, viewer: Viewer) -> list[tuple[Document, int | None]]:
        matches: list[tuple[Document, int | None]] = []
        for item in self.store.find(ITEM, key=url):
            if self._visible_item(item, viewer):
                matches.append((item, None))
        for frame in self.store.find(FRAME, key=url):
            item_doc = self.store.get(ITEM, frame["item_uuid"])
            if item_doc is None or not self._visible_item(item_doc, viewer):
                continue
            for index, candidate in enumerate(item_doc.get("frames") or []):
                if candidate["uuid"] == frame["uuid"]:
                    matches.append((item_doc, index))
        return matches

    def _visible_item(self, item: Document, viewer: Viewer) -> bool:
        folder = self.store.get(FOLDER, item["parent"])
        return folder is not None and self._may_open_folder(viewer, folder)

    # Datasets and their rows

    def create_dataset(
        self, owner: str, title: Any, description: str | None, with_backing_folder: bool
    ) -> Document:
        if not isinstance(title, str) or not title.strip():
            raise invalid("A dataset needs a title.")
        stamp = now()
        dataset: Document = {
            "uuid": new_id(),
            "title": title,
            "description": description or "",
            "owner": owner,
            "shared_with": [],
            "created_at": stamp,
            "last_edited_at": stamp,
            "backing_folder_uuid": None,
        }
        if with_backing_folder:
            folder = self.create_folder(
                owner, title, description, synced_dataset_hash=dataset["uuid"]
            )
            dataset["backing_folder_uuid"] = folder["uuid"]
        self.store.put(DATASET, dataset["uuid"], dataset)
        return dataset

    def dataset(self, dataset_hash: str, viewer: Viewer | None = None) -> Document:
        dataset = self.store.get(DATASET, dataset_hash)
        if dataset is None or not self._may_open(viewer, dataset):
            raise not_found(f"Dataset {dataset_hash} does not exist.")
        return dataset

    def datasets(self, viewer: Viewer, *, org_access: bool) -> list[Document]:
        return [
            d for d in self.store.all(DATASET) if self._listed(viewer, d, org_access=org_access)
        ]

    def data_rows(self, dataset_hash: str) -> list[Document]:
        return self.store.all(DATA_ROW, parent=dataset_hash)

    def link_items(
        self,
        dataset_hash: str,
        item_uuids: list[str],
        duplicates: str,
        viewer: Viewer | None = None,
    ) -> list[Document]:
        """New rows for the items; SKIP leaves already-linked items out of the result."""
        try:
            behaviour = Duplicates(duplicates)
        except ValueError as error:
            raise invalid(f"Unknown duplicates_behavior {duplicates!r}.") from error
        with self.store.transaction():  # two concurrent SKIP links must not both add a row
            return self._link_items(dataset_hash, item_uuids, behaviour, viewer)

    def _link_items(
        self,
        dataset_hash: str,
        item_uuids: list[str],
        duplicates: Duplicates,
        viewer: Viewer | None,
    ) -> list[Document]:
        self.dataset(dataset_hash, viewer)
        found = self.items(item_uuids)
        items = []
        for item_uuid in item_uuids:
            item = found.get(item_uuid)
            if item is None or (viewer is not None and not self._visible_item(item, viewer)):
                raise not_found(f"Storage item {item_uuid} does not exist.")
            items.append(item)
        # Only the rows of these items, never the whole dataset's.
        linked = {
            item["uuid"]
            for item in items
            if self.store.count(DATA_ROW, key=item["uuid"], parent=dataset_hash)
        }
        if linked and duplicates is Duplicates.FAIL:
            raise ApiError(
                ErrorKind.EXISTS,
                f"Items already linked to dataset {dataset_hash}: {', '.join(sorted(linked))}",
            )
        rows = []
        for item in items:
            if item["uuid"] in linked and duplicates is Duplicates.SKIP:
                continue
            linked.add(item["uuid"])
            rows.append(self._add_row(dataset_hash, item))
        return rows

    def delete_rows(self, dataset_hash: str, data_hashes: list[str], viewer: Viewer) -> None:
        """Unlink rows from a dataset (their storage items stay); all or nothing."""
        with self.store.transaction():
            self.dataset(dataset_hash, viewer)
            rows = self.store.get_many(DATA_ROW, data_hashes)
            for data_hash in data_hashes:
                row = rows.get(data_hash)
                if row is None or row["dataset_hash"] != dataset_hash:
                    raise not_found(f"Data row {data_hash} is not in dataset {dataset_hash}.")
            for data_hash in data_hashes:
                self.store.delete(DATA_ROW, data_hash)

    def _add_row(self, dataset_hash: str, item: Document) -> Document:
        stamp = now()
        row = {
            "data_hash": new_id(),
            "dataset_hash": dataset_hash,
            "item_uuid": item["uuid"],
            "created_at": stamp,
            "last_edited_at": stamp,
        }
        self.store.put(DATA_ROW, row["data_hash"], row, parent=dataset_hash, key=item["uuid"])
        return row


def _sort_of(kind: str, record: Document) -> str | None:
    return record["name"].lower() if kind == FOLDER else None
