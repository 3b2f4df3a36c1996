"""What every benchmark row reports about its own process (CPU time and peak RSS), and the
fresh interpreter a row runs in."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from typing import Any

_WHO = (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (user + system)."""
    return sum(usage.ru_utime + usage.ru_stime for usage in map(resource.getrusage, _WHO))


def process_cpu_seconds(pid: int) -> float:
    """CPU time so far of another running process (user + system, from `/proc`)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()  # after the command, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb() -> float:
    """Peak RSS of this process plus its finished children's (Linux reports KiB).

    For a process that renders in a child (`ingest.plan.rendering`) the sum is an upper
    bound: the child's `ru_maxrss` seems to count the parent's pages between fork and exec."""
    return sum(resource.getrusage(who).ru_maxrss / 1024 for who in _WHO)


def in_fresh_interpreter(module: str, *args: str) -> dict[str, Any]:
    """`python -m module args` in a fresh interpreter: the JSON it prints."""
    command = [sys.executable, "-m", module, *args]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout)
