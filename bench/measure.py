"""What every benchmark row reports about its own process (CPU time and peak RSS), the fresh
interpreter a row runs in, and what the tables share: a command timed by a fresh interpreter
around it, rows taking turns, and a server's CPU meanwhile."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from collections.abc import Callable
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


def timed_command(command: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run `command` from a fresh interpreter that reports its wall time, and its own peak RSS
    and CPU time (its child processes' included: each is waited for). This process's
    `RUSAGE_CHILDREN` would not do: its peak is the largest of every child so far."""
    wrapper = (
        "import json, resource, subprocess, sys, time; "
        "started = time.perf_counter(); "
        "code = subprocess.run(sys.argv[1:]).returncode; "
        "seconds = time.perf_counter() - started; "
        "used = resource.getrusage(resource.RUSAGE_CHILDREN); "
        "print(json.dumps([code, seconds, used.ru_maxrss, used.ru_utime + used.ru_stime]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", wrapper, *command], env=env, capture_output=True, text=True
    )
    code, seconds, peak_kib, cpu = json.loads(result.stdout.strip().splitlines()[-1])
    return {
        "exit": code,
        "seconds": round(seconds, 2),
        "cpu_s": round(cpu, 2),
        "peak_rss_mb": round(peak_kib / 1024),
    }


def in_fresh_interpreter(module: str, *args: str) -> dict[str, Any]:
    """`python -m module args` in a fresh interpreter: the JSON it prints."""
    command = [sys.executable, "-m", module, *args]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def alternated(runs: dict[str, Callable[[], dict[str, Any]]], rounds: int) -> dict[str, Any]:
    """Each run `rounds` times, taking turns (the machine is shared: its load changes from one
    run to the next, alike for each); per run, its median by wall time (`seconds`), with the
    sorted wall times of all its rounds (`walls`)."""
    measured: dict[str, list[dict[str, Any]]] = {label: [] for label in runs}
    for _ in range(rounds):
        for label, run in runs.items():
            measured[label].append(run())
    medians = {}
    for label, rows in measured.items():
        by_wall = sorted(rows, key=lambda row: row["seconds"])
        medians[label] = {
            **by_wall[len(by_wall) // 2],
            "walls": [row["seconds"] for row in by_wall],
        }
    return medians


def with_cpu_of(pid: int, run: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    """`run`, its row also reporting the CPU time process `pid` spent meanwhile
    (`standin_cpu_seconds`: the S3 stand-in, which shares the machine's cores as S3 would
    not)."""

    def measured() -> dict[str, Any]:
        before = process_cpu_seconds(pid)
        row = run()
        row["standin_cpu_seconds"] = round(process_cpu_seconds(pid) - before, 2)
        return row

    return measured
