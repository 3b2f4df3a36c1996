"""The adapter's retry policy, with the SDK objects replaced by stubs that fail on cue."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import pytest
from encord.exceptions import (
    AuthorisationError,
    RateLimitExceededError,
    UnknownException,
)

from ingest import encord_client
from ingest.encord_client import EncordClient, EncordUnavailable
from ingest.errors import UserError


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(encord_client.time, "sleep", slept.append)
    return slept


class FlakyDataset:
    title = "Imported"

    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.calls = 0

    def link_items(self, item_uuids, duplicates_behavior):
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return []


def client(user_client=None) -> EncordClient:
    return EncordClient(user_client, "http://encord.test", "key file k")


def test_transient_errors_are_retried_with_growing_delays(sleeps: list[float]) -> None:
    dataset = FlakyDataset(UnknownException("503"), UnknownException("503"))
    client().link(dataset, [str(uuid.uuid4())])
    assert dataset.calls == 3
    assert sleeps == list(encord_client.RETRY_DELAYS_SECONDS[:2])


def test_a_rate_limit_is_waited_out(sleeps: list[float]) -> None:
    dataset = FlakyDataset(RateLimitExceededError(retry_after=7))
    client().link(dataset, [str(uuid.uuid4())])
    assert (dataset.calls, sleeps) == (2, [7])


def test_retries_end_in_a_one_line_error(sleeps: list[float]) -> None:
    failures = [UnknownException("503")] * (len(encord_client.RETRY_DELAYS_SECONDS) + 1)
    with pytest.raises(EncordUnavailable, match="failed while linking 1 items"):
        client().link(FlakyDataset(*failures), [str(uuid.uuid4())])
    assert len(sleeps) == len(encord_client.RETRY_DELAYS_SECONDS)


def test_access_denied_is_not_retried(sleeps: list[float]) -> None:
    dataset = FlakyDataset(AuthorisationError("403"))
    with pytest.raises(UserError, match="access denied by Encord while linking"):
        client().link(dataset, [str(uuid.uuid4())])
    assert (dataset.calls, sleeps) == (1, [])


def test_a_failed_create_looks_again_before_creating_again(sleeps: list[float]) -> None:
    """The create's answer was lost, but the folder was made: the next lookup finds it."""
    folders: list = []

    def create_storage_folder(name, description):
        folders.append(SimpleNamespace(name=name))
        raise UnknownException("502 after the folder was created")

    user_client = SimpleNamespace(
        list_storage_folders=lambda search: [f for f in folders if search in f.name],
        create_storage_folder=create_storage_folder,
    )

    folder = client(user_client).folder("imports")

    assert folder is folders[0] and len(folders) == 1
    assert len(sleeps) == 1


def test_folders_match_by_exact_name(sleeps: list[float]) -> None:
    existing = [SimpleNamespace(name="imports-old"), SimpleNamespace(name="imports")]
    user_client = SimpleNamespace(list_storage_folders=lambda search: existing)
    assert client(user_client).folder("imports") is existing[1]
