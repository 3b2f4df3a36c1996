"""Fixtures for `ingest run` tests: a bucket of every data type in the local AWS, the stack
outputs file pointing at it, and a helper that runs the CLI in-process."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from demo.local_aws import REGION, LocalAws
from demo.samples import sample_corpus
from ingest import encord_client
from ingest.cli import main
from sandbox.keys import generate_key_pair
from tests.run.support import EXTERNAL_ID, INTEGRATION, ROLE_ARN, Bucket, Ingest, Outcome


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
        code = main(
            [
                command,
                "--outputs",
                str(bucket.outputs),
                "--out",
                str(tmp_path / "out"),
                "--folder",
                "imports",
                "--dataset",
                "Imported",
                *args,
            ]
        )
        captured = capsys.readouterr()
        return Outcome(code, captured.out, captured.err)

    return run
