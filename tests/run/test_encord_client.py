"""The adapter: our retry policy driven with callables that fail on cue, and what Encord
itself answers (refusals, name search) through the real SDK against the sandbox."""

from __future__ import annotations

import uuid

import pytest
from encord.exceptions import RateLimitExceededError, UnknownException

from ingest.encord import client as encord_client
from ingest.encord.client import EncordClient, EncordUnavailable, connect
from ingest.errors import UserError
from sandbox import KeyPair, Sandbox
from tests.run.support import sdk_client


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(encord_client.time, "sleep", slept.append)
    return slept


def failing(*failures: Exception):
    """A call that raises `failures` one by one, then answers "done"; counts its calls."""
    remaining = list(failures)

    def call() -> str:
        call.count += 1
        if remaining:
            raise remaining.pop(0)
        return "done"

    call.count = 0
    return call


# Retries are our own policy: no Encord behaviour is claimed here, so no Encord is needed.
policy = EncordClient(None, "http://encord.test", "key file k")


def test_transient_errors_are_retried_with_growing_delays(sleeps: list[float]) -> None:
    call = failing(UnknownException("503"), UnknownException("503"))
    assert policy._call("linking 1 items", call) == "done"
    assert call.count == 3
    assert sleeps == list(encord_client.RETRY_DELAYS_SECONDS[:2])


def test_a_rate_limit_is_waited_out(sleeps: list[float]) -> None:
    call = failing(RateLimitExceededError(retry_after=7))
    assert policy._call("linking 1 items", call) == "done"
    assert (call.count, sleeps) == (2, [7])


def test_retries_end_in_a_one_line_error(sleeps: list[float]) -> None:
    call = failing(*[UnknownException("503")] * (len(encord_client.RETRY_DELAYS_SECONDS) + 1))
    with pytest.raises(EncordUnavailable, match="failed while linking 1 items"):
        policy._call("linking 1 items", call)
    assert len(sleeps) == len(encord_client.RETRY_DELAYS_SECONDS)


def test_a_failed_create_looks_again_before_creating_again(sleeps: list[float]) -> None:
    """The create's answer was lost, but the folder was made: the next lookup finds it."""
    created: list[str] = []

    def create() -> str:
        created.append("imports")
        raise UnknownException("502 after the folder was created")

    found = policy._find_or_create(
        "Files folder 'imports'", lambda: next(iter(created), None), create
    )

    assert (found, created) == ("imports", ["imports"])
    assert len(sleeps) == 1


def test_access_denied_is_not_retried(
    sandbox: Sandbox, key_pair: KeyPair, sleeps: list[float]
) -> None:
    # Encord answers 403 for a folder the key's user cannot see (or that does not exist).
    client = connect(sandbox.url, key_pair.private_key_path)
    unknown = str(uuid.uuid4())

    with pytest.raises(
        UserError, match=f"access denied by Encord while opening Files folder {unknown}"
    ):
        client.folder_by_uuid(unknown)

    assert [exchange.status for exchange in sandbox.exchanges()] == [403]
    assert sleeps == []


def test_folders_match_by_exact_name(sandbox: Sandbox, key_pair: KeyPair) -> None:
    # Encord's folder search matches substrings: "imports" finds "imports-old" too.
    sdk_client(sandbox, key_pair).create_storage_folder("imports-old")
    client = connect(sandbox.url, key_pair.private_key_path)

    folder = client.folder("imports")

    assert folder.name == "imports"
    assert client.folder("imports").uuid == folder.uuid
    names = sorted(f.name for f in sdk_client(sandbox, key_pair).list_storage_folders())
    assert names == ["imports", "imports-old"]
