"""`ingest plan` from an S3 Inventory report of 10M keys, through boto3, in one process.

The parent writes a synthetic Parquet report (`bench.inventory`) of `bench.listing`'s key
mix to a temporary directory and serves it with the S3 stand-in; a fresh interpreter then
runs the real `plan(context)` with `listing: inventory`: report discovery, download and MD5
checks, Parquet reading, key order, classify, group, URLs, manifests, CSV files and report.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

from bench.inventory import write_synthetic_inventory
from bench.listing import synthetic_keys
from bench.measure import cpu_seconds, peak_rss_mb
from ingest.context import PlanContext
from ingest.outputs import StackOutputs
from ingest.plan.pipeline import plan
from ingest.settings import IngestSettings
from standins.s3_listing import BUCKET, FILES_BUCKET, start_standin

REGION = "eu-west-2"


def measure(endpoint_url: str, location: str, out: Path) -> dict[str, Any]:
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench")
    outputs = StackOutputs.model_validate(
        {
            "source": "benchmark",
            "bucketName": BUCKET,
            "region": REGION,
            "objectUrlPrefix": f"https://{BUCKET}.s3.{REGION}.amazonaws.com/",
        }
    )
    settings = IngestSettings.model_validate(
        {
            "groups": [{"folders": "*/group", "as": "imageGroup"}],
            "outputDir": str(out),
            "listing": "inventory",
            "inventoryLocation": location,
            "dicomGrouping": "folder",  # the stand-in serves no DICOM headers
        }
    )
    s3 = boto3.client("s3", endpoint_url=endpoint_url, region_name=REGION)
    started, cpu_started = time.perf_counter(), cpu_seconds()
    report = plan(PlanContext(outputs=outputs, settings=settings, s3=s3))
    return {
        "keys": report.objects,
        "entries": sum(report.entries.values()),
        "seconds": round(time.perf_counter() - started, 1),
        "cpu_seconds": round(cpu_seconds() - cpu_started, 1),
        "peak_rss_mb": round(peak_rss_mb()),
        "warnings": report.warnings,
    }


def run(keys: int) -> dict[str, Any]:
    """Write the report, serve it, plan from it in a fresh interpreter; the row."""
    with tempfile.TemporaryDirectory(prefix="bench-inventory-") as directory:
        root = Path(directory)
        files, out = root / "files", root / "out"
        started = time.perf_counter()
        folder = write_synthetic_inventory(
            files, synthetic_keys(keys), source_bucket=BUCKET, now=datetime.now(UTC)
        )
        written = time.perf_counter() - started
        with start_standin(3, directory=files) as standin:
            command = [sys.executable, "-m", "bench.inventory_plan", standin.endpoint_url]
            command += [f"s3://{FILES_BUCKET}/{folder}", str(out)]
            result = subprocess.run(command, capture_output=True, text=True, check=True)
        return {**json.loads(result.stdout), "report_written_seconds": round(written, 1)}


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1], sys.argv[2], Path(sys.argv[3]))))
