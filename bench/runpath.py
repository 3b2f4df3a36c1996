"""The whole run path: `ingest run` twice (a first import, an unchanged rerun), `ingest
plan` and `ingest verify` (which always lists the Files folder, a page of 1,000 items at a
time, and compares), as a user runs them, against the S3 stand-in (`standins.s3_listing`,
an `ImageBucket`: listing, GET and HEAD of tiny PNGs computed, not stored), moto for STS
alone (the sandbox assumes the integration's role there) and the Encord sandbox
(`sandbox`), which reads each object from the stand-in with the role's credentials as
Encord would from S3.

Each command is a child process of a fresh interpreter that times it (start-up included)
and reports its own peak RSS and CPU (`bench.measure.timed_command`). Encord requests are the
sandbox's exchange log, broken down by route; polls of upload jobs are counted apart. State
bytes per entry: the run state's file and WAL after the first run. The sandbox runs on
threads of this process: its CPU time during a command is this process's.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.measure import alternated, timed_command, with_cpu_of
from sandbox import generate_key_pair, running_sandbox
from standins.local_aws import ANONYMOUS, REGION, local_aws
from standins.s3_listing import start_standin

ROLE_ARN = "arn:aws:iam::123456789012:role/encord-access"
INTEGRATION = "bench imports"
EXTERNAL_ID = "bench-external-id"
BUCKET = "bench-runpath"
_ID = re.compile(r"[0-9a-fA-F-]{32,36}")
ROUNDS = 3  # of the unchanged rerun and the plan, taking turns


def _route(method: str, path: str, query_type: str | None) -> str:
    """An exchange's route with its ids left out, e.g. `POST storage/folders/{}/data-upload-jobs`."""
    parts = [
        "{}" if _ID.fullmatch(part) else part
        for part in path.split("?")[0].removeprefix("/v2/public/").strip("/").split("/")
    ]
    return f"{method} {'/'.join(parts)}" + (f" {query_type}" if query_type else "")


def _is_poll(method: str, path: str) -> bool:
    return method == "GET" and "data-upload-jobs/" in path


def measure(count: int) -> dict[str, Any]:
    with (
        local_aws() as aws,
        start_standin(3, images=count, images_bucket=BUCKET, region=REGION) as standin,
        tempfile.TemporaryDirectory(prefix="bench-runpath-") as name,
    ):
        work = Path(name)
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
            "AWS_ENDPOINT_URL_S3": standin.endpoint_url,
            "AWS_DEFAULT_REGION": REGION,
            "NO_PROXY": "127.0.0.1,localhost",
        }
        env.pop("AWS_PROFILE", None)
        with running_sandbox(
            aws_endpoint_url=aws.endpoint_url,
            aws_s3_endpoint_url=standin.endpoint_url,
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
            verify = [*run[:3], "verify", *run[4:]]  # the same inputs and output directory

            def counted(command: list[str]) -> dict[str, Any]:
                """`timed_command(command)` with the sandbox's CPU meanwhile and its requests."""
                before = len(sandbox.exchanges())
                cpu = time.process_time()
                row = timed_command(command, env)
                row["sandbox_cpu_s"] = round(time.process_time() - cpu, 1)
                exchanges = sandbox.exchanges()[before:]
                routes = Counter(
                    _route(e.method, e.path, e.query_type)
                    for e in exchanges
                    if not _is_poll(e.method, e.path)
                )
                row["requests"] = sum(routes.values())
                row["polls"] = sum(_is_poll(e.method, e.path) for e in exchanges)
                row["routes"] = dict(routes.most_common())
                return row

            rows: dict[str, Any] = {}
            for label in ("first run", "unchanged rerun"):
                rows[label] = counted(run)
                if label == "first run":
                    state = sum(
                        path.stat().st_size for path in (work / "out").glob("state.sqlite*")
                    )
                    rows[label]["state_bytes_per_entry"] = round(state / count)
            rows["verify"] = counted(verify)
            for label, row in rows.items():  # the breakdown behind the table's figures
                print(f"runpath {count:,} {label}: {json.dumps(row)}", file=sys.stderr)
            plan = [*ingest, "plan", "--outputs", str(outputs), "--out", str(work / "plan")]
            pid = standin.process.pid
            timed = alternated(
                {
                    "unchanged rerun": with_cpu_of(pid, lambda: timed_command(run, env)),
                    "plan": with_cpu_of(pid, lambda: timed_command([*plan, "--quiet"], env)),
                },
                ROUNDS,
            )
            rows["unchanged rerun"].update(timed["unchanged rerun"])  # its requests: above
            rows["plan"] = timed["plan"]
            for label in ("unchanged rerun", "plan"):
                print(
                    f"runpath {count:,} {label} timed: {json.dumps(timed[label])}", file=sys.stderr
                )
    return {"objects": count, **rows}


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]))))
