"""The whole run path: `ingest run` twice (a first import, an unchanged rerun) and `ingest
plan`, as a user runs them, against moto (S3, STS; `standins.local_aws`) and the Encord
sandbox (`sandbox`), which reads the objects from moto as Encord would from S3.

Each command is a child process: wall time from the outside (start-up included), peak RSS
its own (`RUSAGE_CHILDREN` of a fresh interpreter around it). Encord requests are the
sandbox's exchange log; polls of upload jobs are counted apart. State bytes per entry: the
run state's file and WAL after the first run.

Moto holds every object in memory and lists ~1,500 keys/s, so the sizes it can serve in a
benchmark are small (see bench/README.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from demo.samples import png
from sandbox import generate_key_pair, running_sandbox
from standins.local_aws import ANONYMOUS, REGION, local_aws

ROLE_ARN = "arn:aws:iam::123456789012:role/encord-access"
INTEGRATION = "bench imports"
EXTERNAL_ID = "bench-external-id"
BUCKET = "bench-runpath"


def _timed(command: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run `command` in a fresh interpreter that reports the command's own peak RSS."""
    wrapper = (
        "import resource, subprocess, sys, json; "
        "code = subprocess.run(sys.argv[1:]).returncode; "
        "print(json.dumps([code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss]))"
    )
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", wrapper, *command], env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    code, peak_kib = json.loads(result.stdout.strip().splitlines()[-1])
    return {"exit": code, "seconds": round(seconds, 2), "peak_rss_mb": round(peak_kib / 1024)}


def measure(count: int) -> dict[str, Any]:
    with local_aws() as aws, tempfile.TemporaryDirectory(prefix="bench-runpath-") as name:
        work = Path(name)
        s3 = aws.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        body = png(4, 4)
        with ThreadPoolExecutor(16) as pool:
            list(
                pool.map(
                    lambda i: s3.put_object(
                        Bucket=BUCKET, Key=f"p{i % 16:02d}/img-{i:07d}.png", Body=body
                    ),
                    range(count),
                )
            )
        outputs = work / "outputs.json"
        outputs.write_text(
            json.dumps(
                {
                    "bucketName": BUCKET,
                    "region": REGION,
                    "objectUrlPrefix": f"https://{BUCKET}.s3.{REGION}.amazonaws.com/",
                    "prefixes": [],
                    "roleArn": ROLE_ARN,
                    "integrationTitle": INTEGRATION,
                    "externalId": EXTERNAL_ID,
                }
            )
        )
        keys = generate_key_pair(work / "keys")
        env = {
            **os.environ,
            **ANONYMOUS.env(),
            "AWS_ENDPOINT_URL": aws.endpoint_url,
            "AWS_DEFAULT_REGION": REGION,
            "NO_PROXY": "127.0.0.1,localhost",
        }
        env.pop("AWS_PROFILE", None)
        with running_sandbox(
            aws_endpoint_url=aws.endpoint_url,
            aws_credentials=ANONYMOUS,
            authorized_keys_path=keys.write_authorized_keys(work / "authorized_keys"),
            long_poll_cap_seconds=1,
        ) as sandbox:
            sandbox.add_integration(INTEGRATION, ROLE_ARN, EXTERNAL_ID)
            ingest = [sys.executable, "-m", "ingest"]
            run = [
                *ingest,
                *("run", "--outputs", str(outputs), "--out", str(work / "out")),
                *("--folder", "imports", "--dataset", "Imported", "--quiet"),
                *("--encord-domain", sandbox.url, "--ssh-key-file", str(keys.private_key_path)),
            ]
            rows: dict[str, Any] = {}
            for label in ("first run", "unchanged rerun"):
                before = len(sandbox.exchanges())
                rows[label] = _timed(run, env)
                exchanges = sandbox.exchanges()[before:]
                polls = sum(e.method == "GET" and "data-upload-jobs" in e.path for e in exchanges)
                rows[label]["requests"] = len(exchanges) - polls
                rows[label]["polls"] = polls
                if label == "first run":
                    state = sum(
                        path.stat().st_size for path in (work / "out").glob("state.sqlite*")
                    )
                    rows[label]["state_bytes_per_entry"] = round(state / count)
            plan = [*ingest, "plan", "--outputs", str(outputs), "--out", str(work / "plan")]
            rows["plan"] = _timed([*plan, "--quiet"], env)
    return {"objects": count, **rows}


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]))))
