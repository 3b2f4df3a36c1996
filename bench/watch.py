"""Continuous sync: `ingest watch` against moto (S3 → SQS) and the Encord sandbox.

Latency = from `put_object` returning to the item's link being recorded in the run state
(recorded right after Encord's `link_items` answers), at 1, 10 and 100 objects per second
for a few seconds each; throughput = objects linked per second at the highest rate; and the
reconcile's cost over the unchanged bucket (the watch's own start-up reconcile, then one
more with nothing new).
"""

from __future__ import annotations

import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from demo.samples import png
from sandbox import generate_key_pair, running_sandbox
from standins.local_aws import ANONYMOUS, REGION, local_aws

REPO = Path(__file__).resolve().parents[1]
RATES = (1, 10, 100)
SECONDS_PER_RATE = float(os.environ.get("BENCH_WATCH_SECONDS", 12))
INTEGRATION, ROLE_ARN, EXTERNAL_ID = "bench", "arn:aws:iam::123456789012:role/bench", "bench-id"


def run(seconds_per_rate: float = SECONDS_PER_RATE) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-watch-") as directory, local_aws() as aws:
        root = Path(directory)
        keys = generate_key_pair(root / "keys")
        os.environ.update(
            AWS_ENDPOINT_URL=aws.endpoint_url, AWS_DEFAULT_REGION=REGION, **ANONYMOUS.env()
        )
        os.environ["NO_PROXY"] = "127.0.0.1,localhost"
        with running_sandbox(
            aws_endpoint_url=aws.endpoint_url,
            aws_credentials=ANONYMOUS,
            authorized_keys_path=keys.write_authorized_keys(root / "authorized_keys"),
            long_poll_cap_seconds=1,
            record_exchanges=False,
        ) as sandbox:
            sandbox.add_integration(INTEGRATION, ROLE_ARN, EXTERNAL_ID)
            s3, outputs = _bucket_with_events(aws, root)
            out = root / "out"
            command = [
                sys.executable, "-m", "ingest", "watch", "--outputs", str(outputs),
                "--out", str(out), "--folder", "bench", "--dataset", "Bench",
                "--encord-domain", sandbox.url, "--ssh-key-file", str(keys.private_key_path),
                "--json", "--watch-batch-seconds", "1", "--reconcile-every", "off",
            ]  # fmt: skip
            watch = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True)
            lines: list[dict] = []

            def read() -> None:
                for line in watch.stdout or ():
                    lines.append(json.loads(line))

            reader = threading.Thread(target=read, daemon=True)
            reader.start()
            _wait(lambda: any(line["event"] == "reconcile" for line in lines), 60)
            for rate in RATES:
                rows.append(_level(s3, out, rate, seconds_per_rate))
            watch.terminate()
            watch.wait(60)
            batches = [line for line in lines if line["event"] == "batch"]
            rows.append(
                {"batches": len(batches), "jobs": sum(len(b["jobsStarted"]) for b in batches)}
            )
            # The reconcile's cost over the bucket as it now is (nothing new): a plain `ingest run`.
            run_command = [*command[:3], "run", *command[4:-5], "--json"]
            started = time.perf_counter()
            subprocess.run(run_command, cwd=REPO, check=True, capture_output=True)
            objects = sum(r.get("objects", 0) for r in rows)
            rows.append(
                {"reconcile_seconds": round(time.perf_counter() - started, 2), "objects": objects}
            )
    return rows


def _bucket_with_events(aws, root: Path):
    s3, sqs = aws.client("s3"), aws.client("sqs")
    s3.create_bucket(Bucket="bench-watch")
    url = sqs.create_queue(QueueName="bench-events", Attributes={"VisibilityTimeout": "300"})[
        "QueueUrl"
    ]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    s3.put_object(Bucket="bench-watch", Key="seed/0.png", Body=png(4, 4))
    s3.put_bucket_notification_configuration(
        Bucket="bench-watch",
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    outputs = root / "outputs.json"
    outputs.write_text(
        json.dumps(
            {
                "bucketName": "bench-watch",
                "region": REGION,
                "objectUrlPrefix": f"https://bench-watch.s3.{REGION}.amazonaws.com/",
                "roleArn": ROLE_ARN,
                "integrationTitle": INTEGRATION,
                "externalId": EXTERNAL_ID,
                "eventsQueueUrl": url,
            }
        )
    )
    return s3, outputs


def _level(s3, out: Path, rate: int, seconds: float) -> dict:
    body = png(4, 4)
    put_at: dict[str, float] = {}
    count = int(rate * seconds)
    started = time.perf_counter()
    for i in range(count):
        key = f"rate-{rate}/obj-{i:05d}.png"
        due = started + i / rate
        time.sleep(max(0.0, due - time.perf_counter()))
        s3.put_object(Bucket="bench-watch", Key=key, Body=body)
        put_at[key] = time.perf_counter()
    linked_at = _linked_times(out, set(put_at), timeout=120 + seconds)
    latencies = sorted(linked_at[key] - put_at[key] for key in put_at if key in linked_at)
    span = max(linked_at.values()) - started if linked_at else float("nan")
    return {
        "rate": rate,
        "objects": count,
        "linked": len(linked_at),
        "p50_s": round(statistics.median(latencies), 2),
        "p95_s": round(latencies[int(0.95 * (len(latencies) - 1))], 2),
        "linked_per_s": round(len(linked_at) / span, 1),
    }


def _linked_times(out: Path, keys: set[str], timeout: float) -> dict[str, float]:
    """When each key's item first shows as linked in the run state (polled every 50 ms)."""
    seen: dict[str, float] = {}
    deadline = time.perf_counter() + timeout
    db = sqlite3.connect(f"file:{out / 'state.sqlite'}?mode=ro", uri=True)
    while len(seen) < len(keys) and time.perf_counter() < deadline:
        rows = db.execute(
            "SELECT e.title FROM entries e JOIN links l ON l.item_uuid = e.item_uuid"
        ).fetchall()
        now = time.perf_counter()
        for (title,) in rows:
            if title in keys and title not in seen:
                seen[title] = now
        time.sleep(0.05)
    db.close()
    return seen


def _wait(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the watch did not start")
        time.sleep(0.1)


def table(seconds_per_rate: float = SECONDS_PER_RATE) -> list[str]:
    rows = run(seconds_per_rate)
    print("| rate (objects/s) | objects | linked | latency p50 s | latency p95 s | linked/s |")
    print("|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        if "rate" in row:
            print(
                f"| {row['rate']} | {row['objects']} | {row['linked']} | {row['p50_s']} "
                f"| {row['p95_s']} | {row['linked_per_s']} |"
            )
    jobs = next(row for row in rows if "jobs" in row)
    cost = rows[-1]
    print(f"batches: {jobs['batches']}, upload jobs: {jobs['jobs']}")
    print(
        f"reconcile over the unchanged bucket ({cost['objects'] + 1} objects): {cost['reconcile_seconds']} s"
    )
    return [
        f"rate {r['rate']}: {r['linked']}/{r['objects']} linked"
        for r in rows
        if "rate" in r and r["linked"] < r["objects"]
    ]
