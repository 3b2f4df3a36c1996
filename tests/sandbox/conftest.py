"""Fixtures: a sandbox per test on the session's local AWS, a signed-in SDK client, buckets."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from encord import EncordUserClient
from encord.http.constants import RequestsSettings
from sandbox_support import EXTERNAL_ID, ROLE_ARN, TEST_LONG_POLL_CAP_SECONDS
from sdk_responses import check_exchange

from sandbox import KeyPair, Sandbox, generate_key_pair, running_sandbox, write_authorized_keys
from standins.local_aws import LocalAws

_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def user_key(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    return generate_key_pair(tmp_path_factory.mktemp("keys"), "tester@example.com")


@pytest.fixture(scope="session")
def other_key(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    """A second user of the organisation (listed after `user_key`)."""
    return generate_key_pair(tmp_path_factory.mktemp("keys"), "colleague@example.com")


@pytest.fixture(scope="session")
def authorized_keys(
    tmp_path_factory: pytest.TempPathFactory, user_key: KeyPair, other_key: KeyPair
) -> Path:
    """Both users; `user_key` comes first, so integrations made for the tests are its own."""
    return write_authorized_keys(
        tmp_path_factory.mktemp("sshd") / "authorized_keys", [user_key, other_key]
    )


@pytest.fixture
def start_sandbox(aws: LocalAws, authorized_keys: Path) -> Iterator[Callable[..., Sandbox]]:
    """Start sandboxes (on the session's AWS unless told otherwise); all stop after the test.

    Every response each of them sent is then parsed with the SDK's own models.
    """
    with ExitStack() as stack:
        started: list[Sandbox] = []

        def start(**overrides) -> Sandbox:
            options = {
                "aws_endpoint_url": aws.endpoint_url,
                "aws_credentials": ("testing", "testing"),
                "authorized_keys_path": authorized_keys,
                "long_poll_cap_seconds": TEST_LONG_POLL_CAP_SECONDS,
                **overrides,
            }
            started.append(stack.enter_context(running_sandbox(**options)))
            return started[-1]

        yield start
        for running in started:
            for exchange in running.exchanges():
                check_exchange(exchange)


@pytest.fixture
def sandbox(start_sandbox: Callable[..., Sandbox]) -> Sandbox:
    """A fresh sandbox, state in memory."""
    return start_sandbox()


@pytest.fixture
def connect(user_key: KeyPair) -> Callable[..., EncordUserClient]:
    def connect(sandbox: Sandbox, max_retries: int | None = None, key: KeyPair | None = None):
        settings = (
            RequestsSettings() if max_retries is None else RequestsSettings(max_retries=max_retries)
        )
        return EncordUserClient.create_with_ssh_private_key(
            ssh_private_key_path=str((key or user_key).private_key_path),
            domain=sandbox.url,
            requests_settings=settings,
        )

    return connect


@pytest.fixture
def encord(sandbox: Sandbox, connect) -> EncordUserClient:
    return connect(sandbox, max_retries=0)


@pytest.fixture
def integration_id(sandbox: Sandbox) -> str:
    """An AWS integration (moto's IAM auth is off here, so any role can be assumed)."""
    return sandbox.add_integration("test bucket", ROLE_ARN, EXTERNAL_ID)


@pytest.fixture
def bucket(aws: LocalAws) -> Callable[[dict[str, bytes]], str]:
    """A fresh bucket holding the given objects; returns its name."""

    def make(objects: dict[str, bytes]) -> str:
        name = f"sandbox-test-{next(_numbers)}"
        s3 = aws.client("s3")
        s3.create_bucket(Bucket=name)
        for key, body in objects.items():
            s3.put_object(Bucket=name, Key=key, Body=body)
        return name

    return make
