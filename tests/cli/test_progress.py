"""Progress is drawn on stderr when it is a terminal (a pseudo-terminal here), never when it
is piped, and never with --quiet or --json."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from sandbox import KeyPair, Sandbox
from standins.local_aws import LocalAws
from tests.run.support import Bucket, run_arguments

REPO = Path(__file__).resolve().parents[2]


def run_ingest(argv: list[str], tty: bool, cwd: Path) -> tuple[int, str, str]:
    """`python -m ingest ARGV` with stderr on a pseudo-terminal (or a pipe); (code, out, err)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "120", "TERM": "xterm"}
    command = [sys.executable, "-m", "ingest", *argv]
    if not tty:
        done = subprocess.run(
            command, capture_output=True, text=True, env=env, cwd=cwd, timeout=120, check=False
        )
        return done.returncode, done.stdout, done.stderr
    controller, terminal = os.openpty()
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=terminal, env=env, cwd=cwd, text=True
    )
    os.close(terminal)
    chunks = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal's other end closed: the process has exited
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(controller)
    stdout = process.stdout.read() if process.stdout else ""
    return process.wait(timeout=30), stdout, b"".join(chunks).decode(errors="replace")


def test_plan_draws_progress_on_a_terminal_only(
    aws_env: LocalAws, bucket: Bucket, tmp_path: Path
) -> None:
    argv = ["plan", "--outputs", str(bucket.outputs), "--out", str(tmp_path / "out")]

    code, stdout, on_terminal = run_ingest(argv, tty=True, cwd=tmp_path)
    assert code == 0, on_terminal
    assert "listing" in on_terminal and "objects" in on_terminal
    assert "planning" in on_terminal and "entries" in on_terminal
    assert "scanned" in stdout

    code, _, piped = run_ingest(argv, tty=False, cwd=tmp_path)
    assert (code, piped) == (0, "")

    for quiet in ("--quiet", "--json"):
        code, _, silent = run_ingest([*argv, quiet], tty=True, cwd=tmp_path)
        assert code == 0 and "listing" not in silent, silent


def test_run_draws_upload_link_and_verify_progress_on_a_terminal(
    aws_env: LocalAws, bucket: Bucket, sandbox: Sandbox, key_pair: KeyPair, tmp_path: Path
) -> None:
    argv = [
        *run_arguments("run", bucket, tmp_path / "out"),
        "--encord-domain",
        sandbox.url,
        "--ssh-key-file",
        str(key_pair.private_key_path),
    ]
    code, stdout, on_terminal = run_ingest(argv, tty=True, cwd=tmp_path)
    assert code == 0, stdout + on_terminal
    for shown in ("listing", "uploading", "linking", "verifying"):
        assert shown in on_terminal, on_terminal
    assert "Traceback" not in on_terminal
