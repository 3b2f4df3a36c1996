"""Fixtures shared by every test package: a local AWS (moto in server mode)."""

from __future__ import annotations

import pytest

from standins.local_aws import ANONYMOUS, REGION, LocalAws, local_aws


@pytest.fixture(scope="session")
def aws() -> LocalAws:
    """One moto server for the session, IAM authorization off. Give each test its own bucket."""
    with local_aws() as server:
        yield server


@pytest.fixture
def aws_env(aws: LocalAws, monkeypatch: pytest.MonkeyPatch) -> LocalAws:
    """Point boto3's default configuration (as `python -m ingest` uses it) at the local AWS."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws.endpoint_url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for name, value in ANONYMOUS.env().items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return aws
