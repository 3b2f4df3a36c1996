"""`ingest plan` end to end against the S3 stand-in, next to the listing alone.

One stand-in (`standins.s3_listing`, 16 prefixes, `delay_ms` per request) serves both rows:

- plan: `python -m ingest plan --outputs FILE --out DIR`, the command as a user runs it,
  timed around it: interpreter start-up and imports included, the listing in its
  child process (`ingest.listing.process`), the rendering in another
  (`ingest.plan.rendering`).
- listing alone: `bench.listers`' fast row (the fast lister in one process, counting).

Wall time, CPU and peak RSS are the command's process tree's, measured by a fresh
interpreter around it (`bench.measure.timed_command`). The stand-in's own CPU during each
row is measured too: it shares the machine's cores with the command, as S3 would not. The
two rows take turns, `ROUNDS` times each, and each reports its median run by wall time
(with one run each, the second row ran against a stand-in the first had warmed, and each
against whatever else the machine did at that moment).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench import listers
from bench.measure import alternated, timed_command, with_cpu_of
from standins.s3_listing import BUCKET, start_standin

ROUNDS = 3  # of the plan and the listing alone, taking turns


def plan_command(endpoint_url: str, workdir: Path) -> dict[str, Any]:
    outputs = workdir / "outputs.json"
    outputs.write_text(
        json.dumps(
            {
                "source": "benchmark",
                "bucketName": BUCKET,
                "region": listers.REGION,
                "objectUrlPrefix": f"https://{BUCKET}.s3.{listers.REGION}.amazonaws.com/",
            }
        )
    )
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
    }
    command = [
        *(sys.executable, "-m", "ingest", "plan", "--quiet", "--no-sidecars"),
        # The stand-in's objects are listed only: `uid` (the default) would GET each .dcm.
        *("--dicom-grouping", "folder"),
        *("--outputs", str(outputs), "--out", str(workdir / "out")),
    ]
    timed = timed_command(command, env)
    if timed["exit"] != 0:
        raise RuntimeError(f"ingest plan exited with {timed['exit']}")
    keys = json.loads((workdir / "out" / "report.json").read_text())["objects"]
    return {
        "keys": keys,
        "seconds": timed["seconds"],
        "keys_per_second": round(keys / timed["seconds"]),
        "cpu_seconds": timed["cpu_s"],
        "peak_rss_mb": timed["peak_rss_mb"],
    }


def measure(keys: int, delay_ms: int) -> dict[str, Any]:
    """Both rows `ROUNDS` times, taking turns against one stand-in: the median of each."""
    with start_standin(keys, prefixes=16, delay_ms=delay_ms) as standin:

        def plan() -> dict[str, Any]:
            with tempfile.TemporaryDirectory(prefix="bench-e2e-") as name:
                return plan_command(standin.endpoint_url, Path(name))

        def listing() -> dict[str, Any]:
            return listers.in_subprocess("fast", standin.endpoint_url)

        pid = standin.process.pid
        return alternated(
            {"plan": with_cpu_of(pid, plan), "listing": with_cpu_of(pid, listing)}, ROUNDS
        )


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]), int(sys.argv[2]))))
