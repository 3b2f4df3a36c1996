"""The one place that talks to Encord: a thin adapter over the encord SDK.

Every Encord call goes through the SDK. This module adds only what an unattended, rerunnable
import needs on top of it: loading the key without ever echoing it, exact-name
find-or-create, bounded retries for the SDK calls that never retry by themselves, and
one-line `UserError`s for everything a user has to fix.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
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
    RateLimitExceededError,
    RequestException,
    ResourceExistsError,
    UnknownException,
)
from encord.http.constants import RequestsSettings
from encord.metadata_schema import MetadataSchema as EncordSchema
from encord.orm.dataset import DataLinkDuplicatesBehavior, DataRow, StorageLocation
from encord.orm.storage import UploadLongPollingState
from encord.storage import StorageFolder
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
    requests.exceptions.RequestException,
)

T = TypeVar("T")


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
        found = self._call(
            f"looking up integration {title!r}",
            lambda: self._user_client.get_cloud_integrations(filter_integration_titles=[title]),
        )
        for integration in found:
            if integration.title == title:
                return integration.id
        raise UserError(
            f"Encord has no cloud integration titled {title!r}: in Encord's web app open "
            f"Integrations → +New integration → AWS S3, title it {title!r}, enter role ARN "
            f"{role_arn or '(the stack output roleArn)'}, check that the dialog's external ID "
            "is the stack's (`pulumi config get encord-s3:externalId`), save, then rerun"
        )

    def find_folder(self, name: str) -> StorageFolder | None:
        """The top-level Files folder called exactly `name` that this user can see, if any."""
        return self._call(f"looking up Files folder {name!r}", lambda: self._folder_named(name))

    def folder(self, name: str) -> StorageFolder:
        """The top-level Files folder called exactly `name`, created if there is none."""
        return self._find_or_create(
            f"Files folder {name!r}",
            lambda: self._folder_named(name),
            lambda: self._user_client.create_storage_folder(
                name, description="Imported from S3 by `python -m ingest`"
            ),
        )

    def folder_by_uuid(self, folder_uuid: str) -> StorageFolder:
        return self._call(
            f"opening Files folder {folder_uuid}",
            lambda: self._user_client.get_storage_folder(folder_uuid),
        )

    def _folder_named(self, name: str) -> StorageFolder | None:
        folders = self._user_client.list_storage_folders(search=name)
        return next((folder for folder in folders if folder.name == name), None)

    def find_dataset(self, title: str) -> Dataset | None:
        """The Dataset titled exactly `title` that this user can see, if any."""
        dataset_hash = self._call(
            f"looking up Dataset {title!r}", lambda: self._dataset_hash(title)
        )
        return None if dataset_hash is None else self._open_dataset(title, dataset_hash)

    def dataset(self, title: str) -> Dataset:
        """The Dataset titled exactly `title`, created without a backing folder if there is none."""
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
        rows = self._user_client.get_datasets(title_eq=title)
        return next(
            (row["dataset"].dataset_hash for row in rows if row["dataset"].title == title), None
        )

    def _open_dataset(self, title: str, dataset_hash: str) -> Dataset:
        return self._call(
            f"opening Dataset {title!r}",
            lambda: self._user_client.get_dataset(dataset_hash, include_data_rows=False),
        )

    def start_upload(self, folder: StorageFolder, integration_id: str, manifest: Path) -> str:
        """Start one upload job for a manifest file; individual unit failures don't fail the job.

        Retrying a start whose answer was lost may start a second job for the same manifest;
        that is harmless because manifests set `skip_duplicate_urls`, so it imports nothing twice.
        """
        return str(
            self._call(
                f"starting the upload of {manifest.name}",
                lambda: folder.add_private_data_to_folder_start(
                    integration_id, manifest, ignore_errors=True
                ),
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

    def find_item_uuid(self, folder: StorageFolder, name: str) -> str | None:
        """The uuid of the item called exactly `name` in `folder`, for items a job skipped."""
        items = self._call(
            f"looking up item {name!r}",
            lambda: [item for item in folder.list_items(search=name) if item.name == name],
        )
        return str(items[0].uuid) if items else None

    def link(self, dataset: Dataset, item_uuids: Iterable[str]) -> None:
        """Link items to the Dataset; already linked ones are skipped, so retrying is safe."""
        uuids = [UUID(item) for item in item_uuids]
        self._call(
            f"linking {len(uuids)} items to Dataset {dataset.title!r}",
            lambda: dataset.link_items(uuids, duplicates_behavior=DataLinkDuplicatesBehavior.SKIP),
        )

    def data_rows(self, dataset: Dataset) -> list[DataRow]:
        return self._call(
            f"listing the data rows of Dataset {dataset.title!r}", dataset.list_data_rows
        )

    def metadata_schema(self) -> EncordSchema:
        """The organisation's custom-metadata schema, as the SDK edits it."""
        return self._call(
            "reading the organisation's metadata schema", self._user_client.metadata_schema
        )

    def save_metadata_schema(self, schema: EncordSchema, source: str) -> None:
        """Save the whole schema (the SDK's replace semantics), once: see `schema_sync.apply`."""
        self._call(f"saving the metadata schema from {source}", schema.save, retries=())

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
            except ResourceExistsError:
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
