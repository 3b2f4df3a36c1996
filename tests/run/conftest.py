"""Fixtures for `ingest run` tests: a bucket of every data type in the local AWS, the stack
outputs file pointing at it, the Encord sandbox, and helpers that run the CLI in-process."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from demo.samples import sample_corpus
from ingest.cli.main import main
from ingest.encord import client as encord_client
from sandbox import KeyPair, Sandbox, generate_key_pair, running_sandbox
from standins.local_aws import ANONYMOUS, REGION, LocalAws
from tests.run.support import (
    EXTERNAL_ID,
    INTEGRATION,
    ROLE_ARN,
    Bucket,
    Ingest,
    Outcome,
    run_arguments,
)


@pytest.fixture
def bucket(aws_env: LocalAws, tmp_path: Path) -> Bucket:
    """A bucket holding the demo corpus, and the stack outputs that describe it."""
    name = f"run-{uuid.uuid4().hex[:12]}"
    aws_env.client("s3").create_bucket(Bucket=name)
    outputs = tmp_path / "outputs.json"
    outputs.write_text(
        json.dumps(
            {
                "bucketName": name,
                "region": REGION,
                "objectUrlPrefix": f"https://{name}.s3.{REGION}.amazonaws.com/",
                "prefixes": [],
                "roleArn": ROLE_ARN,
                "integrationTitle": INTEGRATION,
                "externalId": EXTERNAL_ID,
                "allowWrite": True,  # the corpus's image-sequence tests need it
            }
        )
    )
    created = Bucket(name, aws_env, outputs)
    created.put(list(sample_corpus()))
    return created


@pytest.fixture
def ed25519_key(tmp_path: Path) -> Path:
    """A valid Encord key file that no server knows."""
    return generate_key_pair(tmp_path / "keys").private_key_path


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Our own backoff shortened so that fault tests stay fast; the policy is unchanged."""
    monkeypatch.setattr(encord_client, "RETRY_DELAYS_SECONDS", (0.05, 0.1, 0.2, 0.4, 0.8, 1.6))


@pytest.fixture
def ingest(
    bucket: Bucket, tmp_path: Path, capsys: pytest.CaptureFixture, fast_retries: None
) -> Ingest:
    """`python -m ingest COMMAND --outputs <bucket's> --out <tmp>/out ...`, in-process."""

    def run(command: str, *args: str) -> Outcome:
        capsys.readouterr()
        code = main([*run_arguments(command, bucket, tmp_path / "out"), *args])
        captured = capsys.readouterr()
        return Outcome(code, captured.out, captured.err)

    return run


@pytest.fixture
def key_pair(tmp_path: Path) -> KeyPair:
    return generate_key_pair(tmp_path / "keys")


@pytest.fixture
def sandbox(
    aws: LocalAws, key_pair: KeyPair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Sandbox]:
    """A fresh Encord sandbox that knows `key_pair` and the stack's integration."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")  # the SDK honours HTTP(S)_PROXY
    with running_sandbox(
        aws_endpoint_url=aws.endpoint_url,
        aws_credentials=ANONYMOUS,
        authorized_keys_path=key_pair.write_authorized_keys(tmp_path / "authorized_keys"),
        long_poll_cap_seconds=1,
    ) as running:
        running.add_integration(INTEGRATION, ROLE_ARN, EXTERNAL_ID)
        yield running


@pytest.fixture
def encord_ingest(ingest: Ingest, sandbox: Sandbox, key_pair: KeyPair) -> Ingest:
    """`ingest` pointed at the sandbox with the registered key."""

    def run(command: str, *args: str) -> Outcome:
        return ingest(
            command,
            "--encord-domain",
            sandbox.url,
            "--ssh-key-file",
            str(key_pair.private_key_path),
            *args,
        )

    return run
