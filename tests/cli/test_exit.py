"""`python -m ingest` ends without Python's teardown (`ingest.exit.exit_now`): what it wrote
to a pipe must all arrive, and its exit code with it, buffered output included."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from standins.local_aws import LocalAws
from tests.run.support import Bucket

REPO = Path(__file__).resolve().parents[2]


def _ingest(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("PYTHONUNBUFFERED", None)  # stdout block-buffered, as on a user's machine
    return subprocess.run(
        [sys.executable, "-m", "ingest", *argv],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
        check=False,
    )


def test_a_piped_summary_arrives_whole_with_its_exit_code(
    aws_env: LocalAws, bucket: Bucket, tmp_path: Path
) -> None:
    argv = ["plan", "--outputs", str(bucket.outputs), "--out", str(tmp_path / "out")]

    done = _ingest([*argv, "--json"], tmp_path)

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["objects"] > 0


def test_a_users_error_arrives_as_one_line_with_exit_code_2(tmp_path: Path) -> None:
    done = _ingest(["plan", "--outputs", str(tmp_path / "missing.json")], tmp_path)

    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: ") and "missing.json" in line
