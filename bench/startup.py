"""Start-up time of the commands a user runs most often offline: `python -m ingest --help`,
`validate` and `schema check`, each a fresh interpreter, timed over a few runs (min and
median). Targets: well under half a second (they import neither boto3, the encord SDK nor
pyarrow)."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNS = 7
TARGET_SECONDS = 0.5  # the median of each


def startup_table(runs: int = RUNS) -> list[str]:
    """Print one row per command; return the targets missed."""
    with tempfile.TemporaryDirectory() as directory:
        manifest, schema = Path(directory, "manifest.json"), Path(directory, "schema.yaml")
        manifest.write_text(
            json.dumps({"images": [{"objectUrl": "https://b.s3.amazonaws.com/a.png"}]})
        )
        schema.write_text("camera: {type: enum, values: [front, rear]}\n")
        commands = {
            "--help": ["--help"],
            "validate": ["validate", str(manifest)],
            "schema check": ["schema", "check", str(schema)],
        }
        print(f"startup ({runs} runs each)      min s  median s")
        failed = []
        for name, argv in commands.items():
            seconds = [_seconds([sys.executable, "-m", "ingest", *argv]) for _ in range(runs)]
            median = statistics.median(seconds)
            print(f"  python -m ingest {name:<12} {min(seconds):6.3f}  {median:8.3f}")
            if median > TARGET_SECONDS:
                failed.append(f"startup {name}: median {median:.3f} s > {TARGET_SECONDS} s")
        return failed


def _seconds(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started
