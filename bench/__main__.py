"""`python -m bench` (or `make bench`): plan vs the naive baseline at 100k and 1M keys.

Each measurement runs in a fresh interpreter so its peak RSS is its own. The listing is the
in-memory `InMemoryS3` (no network, no moto); everything after it is the real code path of
`ingest plan`: the boto3-paginator adapter, classify, group, metadata stage, URL building,
and writing manifests, CSV files and the report.

    python -m bench                  # the table, for 100k and 1M keys
    python -m bench --keys 200000    # other sizes
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.listing import InMemoryS3
from bench.naive import naive_plan
from ingest.context import PlanContext
from ingest.outputs import StackOutputs
from ingest.plan import plan
from ingest.settings import IngestSettings

BUCKET = "bench-bucket"
URL_PREFIX = f"https://{BUCKET}.s3.eu-west-2.amazonaws.com/"
TARGET_KEYS_PER_SECOND = 200_000
TARGET_PEAK_MB = 300


def measure(implementation: str, keys: int) -> dict:
    """Run one implementation over `keys` synthetic keys in this process (imports untimed)."""
    run = _plan if implementation == "plan" else _naive
    with tempfile.TemporaryDirectory(prefix="bench-") as directory:
        out = Path(directory)
        s3 = InMemoryS3(keys)
        started, cpu_started = time.perf_counter(), _cpu_seconds()
        entries = run(s3, out)
        seconds = time.perf_counter() - started
        cpu_seconds = _cpu_seconds() - cpu_started
    # Plan renders its files in a child process (ingest.output_process): its CPU time is
    # counted, and its peak RSS added to this process's (an upper bound of the total).
    peak_mb = sum(
        resource.getrusage(who).ru_maxrss / 1024  # Linux: KiB
        for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    return {
        "implementation": implementation,
        "keys": keys,
        "entries": entries,
        "seconds": round(seconds, 2),
        "keys_per_second": round(keys / seconds),
        "cpu_seconds": round(cpu_seconds, 2),
        "keys_per_cpu_second": round(keys / cpu_seconds),
        "peak_rss_mb": round(peak_mb),
    }


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (user + system)."""
    own, children = (
        resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _plan(s3: InMemoryS3, out: Path) -> int:
    outputs = StackOutputs.model_validate(
        {
            "source": "benchmark",
            "bucketName": BUCKET,
            "region": "eu-west-2",
            "objectUrlPrefix": URL_PREFIX,
        }
    )
    settings = IngestSettings.model_validate(
        {"groups": [{"folders": "*/group", "as": "imageGroup"}], "outputDir": str(out)}
    )
    report = plan(PlanContext(outputs=outputs, settings=settings, s3=s3))
    return sum(report.entries.values())


def _naive(s3: InMemoryS3, out: Path) -> int:
    return naive_plan(s3, BUCKET, URL_PREFIX, out)


def _in_subprocess(implementation: str, keys: int) -> dict:
    command = [sys.executable, "-m", "bench", "--one", implementation, "--keys", str(keys)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, action="append", help="default: 100000 and 1000000")
    parser.add_argument("--one", choices=("plan", "naive"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = args.keys or [100_000, 1_000_000]
    if args.one:
        print(json.dumps(measure(args.one, sizes[0])))
        return 0
    print(
        "| keys | implementation | entries | wall s | keys/s (wall) | CPU s | keys/s (CPU) | peak RSS (MB) |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    failed = []
    for keys in sizes:
        for implementation in ("plan", "naive"):
            row = _in_subprocess(implementation, keys)
            print(
                f"| {keys:,} | {implementation} | {row['entries']:,} | {row['seconds']} "
                f"| {row['keys_per_second']:,} | {row['cpu_seconds']} "
                f"| {row['keys_per_cpu_second']:,} | {row['peak_rss_mb']} |",
                flush=True,
            )
            if implementation == "plan" and keys >= 1_000_000:
                if row["keys_per_second"] < TARGET_KEYS_PER_SECOND:
                    failed.append(f"{row['keys_per_second']:,} keys/s < {TARGET_KEYS_PER_SECOND:,}")
                if row["peak_rss_mb"] > TARGET_PEAK_MB:
                    failed.append(f"peak RSS {row['peak_rss_mb']} MB > {TARGET_PEAK_MB} MB")
    if failed:
        print(f"targets missed at 1M keys: {'; '.join(failed)}")
        return 1
    print(
        f"targets met: ≥ {TARGET_KEYS_PER_SECOND:,} keys/s and ≤ {TARGET_PEAK_MB} MB peak RSS at 1M keys"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
