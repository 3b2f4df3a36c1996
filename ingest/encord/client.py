"""The one place that talks to Encord: a thin adapter over the encord SDK.

Every Encord call goes through the SDK. This module adds only what an unattended, rerunnable
import needs on top of it: loading the key without ever echoing it, exact-name
find-or-create, bounded retries for the SDK calls that never retry by themselves, and
one-line `UserError`s for everything a user has to fix.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from uuid import UUID

import requests
from encord import EncordUserClient
from encord.dataset import Dataset
from encord.exceptions import (
    AuthenticationError,
    AuthorisationError,
    EncordException,
    GenericServerError,
    PayloadTooLargeError,
    RateLimitExceededError,
    RequestException,
    ResourceExistsError,
    UnknownException,
)
from encord.http.bundle import Bundle
from encord.http.constants import RequestsSettings
from encord.metadata_schema import MetadataSchema as EncordSchema
from encord.orm.dataset import DataLinkDuplicatesBehavior, StorageLocation
from encord.orm.storage import DataUploadItems, UploadLongPollingState
from encord.storage import StorageFolder, StorageItem
from encord.utilities.storage.cloud_data_migration import update_storage_item_cloud_info
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from ingest.errors import UserError, first_line

DEFAULT_DOMAIN = "https://api.encord.com"
US_DOMAIN = "https://api.us.encord.com"

# Our own retries, for the calls the SDK sends once (upload start, folder and dataset
# creation, linking) and for transient errors that outlast the SDK's own retries.
RETRY_DELAYS_SECONDS = (1.0, 2.0, 4.0, 8.0, 16.0)
# A connection Encord refuses, or a host that doesn't resolve or answer, is retried this
# often, quickly: it is a wrong domain or a down network far more often than a blip.
UNREACHABLE_RETRY_DELAYS_SECONDS = (0.5, 1.0)
# The SDK's transport settings (one connection retry of its own); tests shorten its backoff.
REQUESTS_SETTINGS = RequestsSettings(connection_retries=1, connect_timeout=10)

TRANSIENT = (
    RequestException,
    RateLimitExceededError,
    UnknownException,
    GenericServerError,
    PayloadTooLargeError,
    requests.exceptions.RequestException,
)

T = TypeVar("T")
# One item of a Files folder: (uuid, name, URL for a single file else None, created at as
# epoch seconds).
FolderItem = tuple[str, str, str | None, float]


class EncordUnavailable(UserError):
    """Encord kept failing (unreachable, 5xx, rate-limited) after every retry."""


@dataclass(frozen=True)
class PrivateKey:
    """The Ed25519 key the SDK signs with. `source` names where it came from, never the text."""

    text: str = field(repr=False)
    source: str


def encord_domain(configured: str | None) -> str:
    """The API to talk to: the settings' encordDomain, else $ENCORD_DOMAIN, else Encord's EU one."""
    domain = configured or os.environ.get("ENCORD_DOMAIN") or DEFAULT_DOMAIN
    if not domain.startswith(("https://", "http://")):
        raise UserError(
            f"Encord domain {domain!r} is not a URL: use {DEFAULT_DOMAIN}, "
            f"{US_DOMAIN} (US platform) or your private deployment's URL"
        )
    return domain


def read_private_key(ssh_key_file: Path | None) -> PrivateKey:
    """The key as the SDK would find it: --ssh-key-file, then ENCORD_SSH_KEY_FILE, then ENCORD_SSH_KEY."""
    env_file = os.environ.get("ENCORD_SSH_KEY_FILE")
    path = ssh_key_file or (Path(env_file) if env_file else None)
    if path is not None:
        path = path.expanduser()
        try:
            return PrivateKey(path.read_text(encoding="ascii"), f"key file {path}")
        except (OSError, UnicodeDecodeError) as error:
            reason = getattr(error, "strerror", None) or "not an ASCII (OpenSSH) key file"
            raise UserError(f"cannot read the Encord key file {path}: {reason}") from None
    if os.environ.get("ENCORD_SSH_KEY"):
        return PrivateKey(os.environ["ENCORD_SSH_KEY"], "ENCORD_SSH_KEY")
    raise UserError(
        "no Encord key: pass --ssh-key-file FILE or set ENCORD_SSH_KEY_FILE "
        "(an Ed25519 key whose public half is registered in Encord under Settings → Public keys)"
    )


def connect(configured_domain: str | None, ssh_key_file: Path | None) -> EncordClient:
    """The one way `ingest` signs in to Encord: `configured_domain` as `encord_domain` resolves
    it, the key as `read_private_key` finds it."""
    domain = encord_domain(configured_domain)
    key = read_private_key(ssh_key_file)
    try:
        user_client = EncordUserClient.create_with_ssh_private_key(
            ssh_private_key=key.text, domain=domain, requests_settings=REQUESTS_SETTINGS
        )
    except (ValueError, TypeError, EncordException):
        # The SDK's own message for a non-Ed25519 key contains the whole private key: drop it.
        raise UserError(
            f"the Encord key in {key.source} is not an unencrypted Ed25519 private key in "
            "OpenSSH format: create one with `ssh-keygen -t ed25519 -N '' -f encord-key` and "
            "register encord-key.pub in Encord under Settings → Public keys"
        ) from None
    return EncordClient(user_client, domain, key.source)


class EncordClient:
    """The handful of Encord operations `ingest` performs, each idempotent or find-before-create."""

    def __init__(self, user_client: EncordUserClient, domain: str, key_source: str) -> None:
        self._user_client = user_client
        self._domain = domain
        self._key_source = key_source

    def integration_id(self, title: str, role_arn: str | None) -> str:
        """The id of the integration titled exactly `title` that the key's user may use."""

        def titled(integrations: Iterable) -> str | None:
            return next((i.id for i in integrations if i.title == title), None)

        found = self._call(
            f"looking up integration {title!r}",
            lambda: titled(
                self._user_client.get_cloud_integrations(filter_integration_titles=[title])
            ),
        )
        if found is not None:
            return found
        org_wide = self._org_visible(
            f"looking up integration {title!r} organisation-wide",
            lambda: titled(
                self._user_client.get_cloud_integrations(
                    filter_integration_titles=[title], include_org_access=True
                )
            ),
        )
        if org_wide is not None:
            raise UserError(
                f"integration {title!r} exists in the organisation but is not shared with "
                f"this key's user ({self._key_user}): ask its owner to share it with that "
                "user in Encord (Integrations → the integration → Share), then rerun"
            )
        raise UserError(
            f"no integration titled {title!r} visible to this key's user ({self._key_user}): "
            f"create it — in Encord's web app open Integrations → +New integration → AWS S3, "
            f"title it {title!r}, enter role ARN {role_arn or '(the stack output roleArn)'}, "
            "check that the dialog's external ID is the stack's (`pulumi config get "
            "encord-s3:externalId`), save — or, if it exists, ask its owner to share it with "
            "that user; then rerun"
        )

    def find_folder(self, name: str) -> StorageFolder | None:
        """The top-level Files folder called exactly `name` that this user can see, if any
        (one that exists but is not shared with the user is an error)."""
        return self._call(f"looking up Files folder {name!r}", lambda: self._folder_named(name))

    def folder(
        self, name: str, created: Callable[[StorageFolder], None] = lambda folder: None
    ) -> StorageFolder:
        """The top-level Files folder called exactly `name`, created if the organisation has
        none (then told to `created`); one that exists but is not shared with the key's user
        is an error, not a reason to create a second."""

        def create() -> StorageFolder:
            folder = self._user_client.create_storage_folder(
                name, description="Imported from S3 by `python -m ingest`"
            )
            created(folder)
            return folder

        return self._find_or_create(
            f"Files folder {name!r}", lambda: self._folder_named(name), create
        )

    def folder_by_uuid(self, folder_uuid: str) -> StorageFolder:
        return self._call(
            f"opening Files folder {folder_uuid}",
            lambda: self._user_client.get_storage_folder(folder_uuid),
        )

    def _folder_named(self, name: str) -> StorageFolder | None:
        found = _named(self._user_client.list_storage_folders(search=name), name)
        if found is None:
            self._refuse_invisible(
                f"Files folder {name!r}",
                lambda: _named(
                    self._user_client.list_storage_folders(search=name, org_access=True), name
                ),
                "Files → the folder → Share",
            )
        return found

    def find_dataset(self, title: str) -> Dataset | None:
        """The Dataset titled exactly `title` that this user can see, if any."""
        dataset_hash = self.find_dataset_hash(title)
        return None if dataset_hash is None else self._open_dataset(title, dataset_hash)

    def find_dataset_hash(self, title: str) -> str | None:
        """The hash of the Dataset `find_dataset` would open, without opening it."""
        return self._call(f"looking up Dataset {title!r}", lambda: self._dataset_hash(title))

    def dataset(self, title: str) -> Dataset:
        """The Dataset titled exactly `title`, created without a backing folder if the
        organisation has none (one not shared with the key's user is an error)."""
        dataset_hash = self._find_or_create(
            f"Dataset {title!r}",
            lambda: self._dataset_hash(title),
            lambda: (
                self._user_client.create_dataset(
                    title, StorageLocation.AWS, create_backing_folder=False
                ).dataset_hash
            ),
        )
        return self._open_dataset(title, dataset_hash)

    def _dataset_hash(self, title: str) -> str | None:
        rows = self._user_client.get_datasets(title_eq=title, include_org_access=True)
        rows = [row for row in rows if row["dataset"].title == title]
        usable = [row for row in rows if row.get("user_role") is not None]
        if rows and not usable:
            raise self._invisible(f"Dataset {title!r}", "the Dataset → Settings → Share")
        return usable[0]["dataset"].dataset_hash if usable else None

    def _open_dataset(self, title: str, dataset_hash: str) -> Dataset:
        return self._call(
            f"opening Dataset {title!r}",
            lambda: self._user_client.get_dataset(dataset_hash, include_data_rows=False),
        )

    def start_upload(
        self, folder: StorageFolder, integration_id: str, items: DataUploadItems, what: str
    ) -> str:
        """Start one upload job; individual unit failures don't fail the job.

        A request too large for Encord raises `PayloadTooLargeError` (the caller splits it).
        The start is never retried blindly here: a lost answer may hide a created job, which
        the caller's intent record finds again (`ingest.encord.upload`)."""
        return str(
            self._call(
                f"starting the upload of {what}",
                lambda: folder.add_private_data_to_folder_start(
                    integration_id, items, ignore_errors=True
                ),
                retries=(),
            )
        )

    def poll_upload(
        self, folder: StorageFolder, job_id: str, wait_seconds: int
    ) -> UploadLongPollingState:
        """The job's state after at most about `wait_seconds` (PENDING if still running)."""
        return self._call(
            f"polling upload job {job_id}",
            lambda: folder.add_private_data_to_folder_get_result(
                UUID(job_id), timeout_seconds=wait_seconds
            ),
        )

    def index_folder(
        self, folder: StorageFolder, store: Callable[[Iterator[FolderItem]], int]
    ) -> int:
        """Page through the folder's items (1,000 a page, no metadata) into `store`; a
        transient failure restarts the listing. Returns what `store` returns."""

        def listing() -> Iterator[FolderItem]:
            for item in folder.list_items(page_size=1000, include_client_metadata=False):
                yield str(item.uuid), item.name, item.url, item.created_at.timestamp()

        return self._call(f"listing Files folder {folder.name!r}", lambda: store(listing()))

    def delete_items(self, folder: StorageFolder, item_uuids: list[str]) -> None:
        """Delete items of `folder` (and their frames no other item uses); deleting one
        already gone is what a retry after a lost answer does, so it is retried."""
        if not item_uuids:
            return
        self._call(
            f"deleting {len(item_uuids)} item(s) from Files folder {folder.name!r}",
            lambda: folder.delete_storage_items([UUID(item) for item in item_uuids]),
        )

    def link(self, dataset: Dataset, item_uuids: Iterable[str]) -> None:
        """Link items to the Dataset; already linked ones are skipped, so retrying is safe."""
        uuids = [UUID(item) for item in item_uuids]
        self._call(
            f"linking {len(uuids)} items to Dataset {dataset.title!r}",
            lambda: dataset.link_items(uuids, duplicates_behavior=DataLinkDuplicatesBehavior.SKIP),
        )

    def metadata_schema(self) -> EncordSchema:
        """The organisation's custom-metadata schema, as the SDK edits it."""
        return self._call(
            "reading the organisation's metadata schema", self._user_client.metadata_schema
        )

    def save_metadata_schema(self, schema: EncordSchema, source: str) -> None:
        """Save the whole schema (the SDK's replace semantics), once: see `schema_sync.apply`."""
        self._call(f"saving the metadata schema from {source}", schema.save, retries=())

    @property
    def _key_user(self) -> str:
        return f"the user whose public key matches {self._key_source}"

    def _invisible(self, what: str, where_to_share: str) -> UserError:
        return UserError(
            f"{what} exists in the organisation but is not shared with this key's user "
            f"({self._key_user}), so it cannot be used and no second one is created: ask its "
            f"owner to share it with that user ({where_to_share}), or choose another name"
        )

    def _refuse_invisible(
        self, what: str, find_org_wide: Callable[[], object | None], where_to_share: str
    ) -> None:
        if self._org_visible(f"looking up {what} organisation-wide", find_org_wide) is not None:
            raise self._invisible(what, where_to_share)

    def _org_visible(self, what: str, find: Callable[[], T | None]) -> T | None:
        """`find` with organisation-wide access, None where the key's user lacks it (only
        organisation admins have it)."""

        def attempt() -> T | None:
            try:
                return find()
            except AuthorisationError:
                return None

        return self._call(what, attempt)

    # -- mirroring (ingest/mirror): listing, unlinking, deleting and re-pointing items ----

    def unlink(self, dataset: Dataset, data_hashes: list[str]) -> None:
        """Remove data rows from the Dataset (the storage items stay in their folder)."""
        if data_hashes:
            self._call(
                f"removing {len(data_hashes)} data rows from Dataset {dataset.title!r}",
                lambda: dataset.delete_data(data_hashes),
            )

    def storage_item(self, item_uuid: str) -> StorageItem | None:
        """The item, or None if it no longer exists (Encord answers 403 for a missing item)."""
        try:
            return self._user_client.get_storage_item(item_uuid)
        except AuthorisationError:
            return None
        except TRANSIENT:
            return self._call(
                f"opening storage item {item_uuid}",
                lambda: self._user_client.get_storage_item(item_uuid),
            )

    def datasets_using(self, item: StorageItem) -> int:
        """How many Datasets have a data row backed by the item."""
        summary = self._call(f"summarising storage item {item.uuid}", item.get_summary)
        return summary.used_in_datasets

    def rows_backed_by(self, dataset: Dataset, item_uuid: str, title: str) -> list[str]:
        """The data hashes of the Dataset's rows backed by the item, found by its title."""
        rows = self._call(
            f"looking up the rows of {title!r} in Dataset {dataset.title!r}",
            lambda: dataset.list_data_rows(title_eq=title),
        )
        return [row.uid for row in rows if str(row.backing_item_uuid) == item_uuid]

    def repoint(
        self,
        item_uuid: str,
        old_urls: tuple[str, ...],
        new_urls: tuple[str, ...],
        name: str,
        client_metadata: dict | None,
    ) -> None:
        """Point an item at the new URL(s) of its moved object(s), keeping the item (its uuid,
        labels and data rows), then give it the new title. A single file is re-pointed by
        uuid; a group's or series' frames (storage items of their own in Encord) by their old
        URL, skipping a frame already re-pointed, so repeating the call changes nothing."""
        user_client = self._user_client

        def migrate() -> None:
            with Bundle() as bundle:
                if len(new_urls) == 1 and len(old_urls) == 1:
                    update_storage_item_cloud_info(
                        user_client, UUID(item_uuid), new_url=new_urls[0], bundle=bundle
                    )
                    return
                for old, new in zip(old_urls, new_urls, strict=True):
                    if old != new:
                        update_storage_item_cloud_info(
                            user_client, old, new_url=new, skip_missing=True, bundle=bundle
                        )

        self._call(f"re-pointing storage item {item_uuid} to {new_urls[0]}", migrate)
        item = self._call(
            f"opening storage item {item_uuid}", lambda: user_client.get_storage_item(item_uuid)
        )
        self._call(
            f"renaming storage item {item_uuid} to {name!r}",
            lambda: item.update(name=name, client_metadata=client_metadata),
        )

    def _unavailable(self, what: str, error: Exception) -> EncordUnavailable:
        return EncordUnavailable(
            f"Encord at {self._domain} failed while {what} "
            f"({type(error).__name__}): check --encord-domain, then rerun to resume"
        )

    def _find_or_create(
        self, what: str, find: Callable[[], T | None], create: Callable[[], T]
    ) -> T:
        # Creation is never retried blindly: after a failed create, look again first, since
        # the create may have succeeded with its answer lost.
        for delay in (*RETRY_DELAYS_SECONDS, None):
            existing = self._call(f"looking up {what}", find)
            if existing is not None:
                return existing
            try:
                return self._call(f"creating {what}", create, retries=())
            except ResourceExistsError:
                pass  # created concurrently: the next lookup finds it
            except EncordUnavailable:
                if delay is None:
                    raise
            if delay is not None:
                time.sleep(delay)
        raise UserError(f"could not find or create {what} in Encord at {self._domain}")

    def _call(
        self,
        what: str,
        call: Callable[[], T],
        retries: Iterable[float] | None = None,
    ) -> T:
        """Run one SDK call, retrying transient errors (by default after each of
        RETRY_DELAYS_SECONDS); a lasting failure becomes a UserError."""
        delays = iter(RETRY_DELAYS_SECONDS if retries is None else retries)
        unreachable_delays = iter(UNREACHABLE_RETRY_DELAYS_SECONDS)
        while True:
            try:
                return call()
            except AuthenticationError:
                raise UserError(
                    f"Encord at {self._domain} rejected the key in {self._key_source} while "
                    f"{what}: register its public key in Encord (Settings → Public keys), or "
                    f"use the right --encord-domain (EU {DEFAULT_DOMAIN}, US {US_DOMAIN})"
                ) from None
            except AuthorisationError:
                raise UserError(
                    f"access denied by Encord while {what}: the key's user needs access to it"
                ) from None
            except (ResourceExistsError, PayloadTooLargeError):
                raise
            except TRANSIENT as error:
                if _unreachable(error):
                    delay = next(unreachable_delays, None)
                    if delay is None:
                        raise EncordUnavailable(
                            f"Encord at {self._domain} is unreachable while {what} (the "
                            "connection was refused or timed out, or the host is unknown): "
                            "check --encord-domain and the network"
                        ) from None
                    time.sleep(delay)
                    continue
                delay = next(delays, None)
                if delay is None:
                    raise self._unavailable(what, error) from None
                # A rate limit says how long to wait; never retry sooner than that.
                time.sleep(max(delay, getattr(error, "retry_after", None) or 0))
            except EncordException as error:
                raise UserError(
                    f"Encord refused {what} ({type(error).__name__}): {first_line(error)}"
                ) from None


def _named(folders: Iterable[StorageFolder], name: str) -> StorageFolder | None:
    return next((folder for folder in folders if folder.name == name), None)


def _unreachable(error: BaseException) -> bool:
    """No connection could be made at all (refused, unknown host, connect timeout), as
    opposed to one that broke mid-request. The SDK wraps the transport's error: look
    through its causes."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(
            seen, NewConnectionError | ConnectTimeoutError | requests.exceptions.ConnectTimeout
        ):
            return True
        reason = getattr(seen.args[0] if seen.args else None, "reason", None)
        if isinstance(reason, NewConnectionError | ConnectTimeoutError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
