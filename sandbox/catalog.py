"""The organisation's records and the rules on them, shared by both API families and the jobs.

Records are snake_case documents in the store; `routes_v2` and `routes_v1` render them in
each family's wire shape. All users of the sandbox are administrators of one organisation,
so every record is visible to every authorized key.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sandbox.errors import ApiError, ErrorKind, invalid, not_found
from sandbox.state import Cursor, Document, Store

INTEGRATION, FOLDER, ITEM, DATASET, DATA_ROW, SETTING = (
    "integration",
    "folder",
    "item",
    "dataset",
    "data_row",
    "setting",
)
METADATA_SCHEMA_SETTING = "metadata_schema"
SUPPORTED_PROVIDERS = ("AWS",)
# What sts:AssumeRole accepts, checked up front as Encord's web app does.
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
_EXTERNAL_ID = re.compile(r"^[\w+=,.@:/-]{2,1224}$")


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


class Catalog:
    def __init__(self, store: Store):
        self.store = store

    # Integrations (created in Encord's web app; here through /sandbox/integrations)

    def add_integration(
        self, title: str, provider: str, role_arn: str, external_id: str
    ) -> Document:
        if provider not in SUPPORTED_PROVIDERS:
            raise invalid(
                f"Unsupported provider {provider!r}; the sandbox supports {SUPPORTED_PROVIDERS}."
            )
        if not (title and role_arn and external_id):
            raise invalid("An integration needs a title, a roleArn and an externalId.")
        if not _ROLE_ARN.match(role_arn):
            raise invalid(
                f"{role_arn!r} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)."
            )
        if not _EXTERNAL_ID.match(external_id):
            raise invalid(
                "An external ID is 2 to 1224 characters of letters, digits and +=,.@:/-_."
            )
        integration = {
            "uuid": new_id(),
            "title": title,
            "provider": provider,
            "role_arn": role_arn,
            "external_id": external_id,
            "created_at": now(),
        }
        self.store.put(INTEGRATION, integration["uuid"], integration)
        return integration

    def integrations(self) -> list[Document]:
        return self.store.all(INTEGRATION)

    def integration(self, integration_uuid: str) -> Document:
        integration = self.store.get(INTEGRATION, integration_uuid)
        if integration is None:
            raise not_found(f"Cloud integration {integration_uuid} does not exist.")
        return integration

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
        name: str,
        description: str | None = None,
        parent: str | None = None,
        client_metadata: dict | None = None,
        synced_dataset_hash: str | None = None,
    ) -> Document:
        if not name or not name.strip():
            raise invalid("A folder needs a name.")
        if parent is not None:
            self.folder(parent)
        stamp = now()
        folder = {
            "uuid": new_id(),
            "parent": parent,
            "name": name,
            "description": description or "",
            "client_metadata": client_metadata,
            "owner": owner,
            "created_at": stamp,
            "last_edited_at": stamp,
            "synced_dataset_hash": synced_dataset_hash,
        }
        self._put_folder(folder)
        return folder

    def folder(self, folder_uuid: str) -> Document:
        folder = self.store.get(FOLDER, folder_uuid)
        if folder is None:
            # The SDK documents AuthorisationError for a folder that is missing or not yours.
            raise ApiError(
                ErrorKind.FORBIDDEN, f"Folder {folder_uuid} does not exist or is not accessible."
            )
        return folder

    def update_folder(self, folder_uuid: str, changes: dict[str, Any]) -> Document:
        with self.store.transaction():  # read-modify-write: no concurrent update in between
            folder = self.folder(folder_uuid)
            for field in ("name", "description", "client_metadata"):
                if changes.get(field) is not None:
                    folder[field] = changes[field]
            if not folder["name"].strip():
                raise invalid("A folder needs a name.")
            folder["last_edited_at"] = now()
            self._put_folder(folder)
            return folder

    def path_to_root(self, folder: Document) -> list[Document]:
        path, current = [], folder
        while current is not None:
            path.append(current)
            current = self.store.get(FOLDER, current["parent"]) if current["parent"] else None
        return list(reversed(path))

    def scan_folders(
        self, *, top_level_only: bool, by_name: bool, descending: bool, after: Cursor | None
    ) -> Iterable[tuple[Cursor, Document]]:
        for cursor, folder in self.store.scan(
            FOLDER, by_sort=by_name, descending=descending, after=after
        ):
            if not top_level_only or folder["parent"] is None:
                yield cursor, folder

    def _put_folder(self, folder: Document) -> None:
        self.store.put(FOLDER, folder["uuid"], folder, sort=folder["name"].lower())

    # Storage items

    def put_item(self, item: Document) -> None:
        self.store.put(
            ITEM,
            item["uuid"],
            item,
            parent=item["parent"],
            key=duplicate_key(item["urls"]),
            sort=item["name"].lower(),
        )

    def item(self, item_uuid: str) -> Document:
        item = self.store.get(ITEM, item_uuid)
        if item is None:
            raise ApiError(
                ErrorKind.FORBIDDEN, f"Item {item_uuid} does not exist or is not accessible."
            )
        return item

    def items_with_urls(self, folder_uuid: str, urls: list[str]) -> list[Document]:
        return self.store.find(ITEM, parent=folder_uuid, key=duplicate_key(urls))

    def scan_items(
        self, folder_uuid: str, *, by_name: bool, descending: bool, after: Cursor | None
    ) -> Iterable[tuple[Cursor, Document]]:
        return self.store.scan(
            ITEM, parent=folder_uuid, by_sort=by_name, descending=descending, after=after
        )

    def is_in_any_dataset(self, item_uuid: str) -> bool:
        return bool(self.store.find(DATA_ROW, key=item_uuid))

    # Datasets and their rows

    def create_dataset(
        self, owner: str, title: str, description: str | None, with_backing_folder: bool
    ) -> Document:
        if not title or not title.strip():
            raise invalid("A dataset needs a title.")
        stamp = now()
        dataset = {
            "uuid": new_id(),
            "title": title,
            "description": description or "",
            "owner": owner,
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

    def dataset(self, dataset_hash: str) -> Document:
        dataset = self.store.get(DATASET, dataset_hash)
        if dataset is None:
            raise not_found(f"Dataset {dataset_hash} does not exist.")
        return dataset

    def datasets(self) -> list[Document]:
        return self.store.all(DATASET)

    def data_rows(self, dataset_hash: str) -> list[Document]:
        return self.store.all(DATA_ROW, parent=dataset_hash)

    def link_items(
        self, dataset_hash: str, item_uuids: list[str], duplicates: str
    ) -> list[Document]:
        """New rows for the items; SKIP leaves already-linked items out of the result."""
        if duplicates not in ("SKIP", "FAIL", "DUPLICATE"):
            raise invalid(f"Unknown duplicates_behavior {duplicates!r}.")
        with self.store.transaction():  # two concurrent SKIP links must not both add a row
            return self._link_items(dataset_hash, item_uuids, duplicates)

    def _link_items(
        self, dataset_hash: str, item_uuids: list[str], duplicates: str
    ) -> list[Document]:
        self.dataset(dataset_hash)
        items = []
        for item_uuid in item_uuids:
            item = self.store.get(ITEM, item_uuid)
            if item is None:
                raise not_found(f"Storage item {item_uuid} does not exist.")
            items.append(item)
        linked = {row["item_uuid"] for row in self.data_rows(dataset_hash)}
        already = [item["uuid"] for item in items if item["uuid"] in linked]
        if already and duplicates == "FAIL":
            raise ApiError(
                ErrorKind.EXISTS,
                f"Items already linked to dataset {dataset_hash}: {', '.join(already)}",
            )
        rows = []
        for item in items:
            if item["uuid"] in linked and duplicates == "SKIP":
                continue
            linked.add(item["uuid"])
            rows.append(self._add_row(dataset_hash, item))
        return rows

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
