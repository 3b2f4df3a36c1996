"""Listing sources side by side, against the local S3 stand-in (`standins.s3_listing`).

Each row runs in a fresh interpreter (its CPU time and peak RSS are its own) and reads the
stand-in's synthetic bucket of 16 top-level prefixes, with 0 ms and then 50 ms of latency
added to every LIST request. What each row does:

- fast: `FastLister.objects([""])`, exactly as `ingest plan` runs it with no prefixes
  configured: the top-level discovery, 16 prefixes in threads, pages parsed by the
  consumer, handed over through the spools, records in key order.
- paginator: `scan(S3Lister)` over the 16 prefixes (it does not discover them), threads,
  key order; the keys at the top (3 of them) are not listed.
- obstore: the Rust-backed client the issue names, 16 threads each listing one prefix and
  building the same records, unordered; a reference, not a source (see `ingest.listing.fast`).

The consumer only counts: this measures listing, not planning.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any

import boto3
from botocore.config import Config

from bench.measure import cpu_seconds, in_fresh_interpreter, peak_rss_mb
from ingest.listing.fast import FastLister
from ingest.listing.paginator import S3Lister
from ingest.listing.scan import ListedObject, scan
from standins.s3_listing import BUCKET

SOURCES = ("fast", "paginator", "obstore")
PREFIXES = [f"p{number:02d}/" for number in range(16)]
REGION = "eu-west-2"
WORKERS = 16


def measure(source: str, endpoint_url: str) -> dict[str, Any]:
    """List the stand-in's bucket with `source` in this process; imports are untimed."""
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench")
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=REGION,
        config=Config(max_pool_connections=WORKERS * 2, retries={"mode": "standard"}),
    )
    started, cpu_started = time.perf_counter(), cpu_seconds()
    if source == "fast":
        listed = _count(FastLister(s3, BUCKET, WORKERS).objects([""]))
    elif source == "paginator":
        listed = _count(scan(S3Lister(s3, BUCKET), PREFIXES, WORKERS))
    else:
        listed = _obstore(endpoint_url)
    seconds = time.perf_counter() - started
    return {
        "source": source,
        "keys": listed,
        "seconds": round(seconds, 2),
        "keys_per_second": round(listed / seconds),
        "cpu_seconds": round(cpu_seconds() - cpu_started, 2),
        "peak_rss_mb": round(peak_rss_mb()),
    }


def _count(objects: Any) -> int:
    count = 0
    for _ in objects:
        count += 1
    return count


def _obstore(endpoint_url: str) -> int:
    import obstore
    from obstore.store import S3Store

    store = S3Store(
        BUCKET,
        endpoint=endpoint_url,
        region=REGION,
        access_key_id="bench",
        secret_access_key="bench",
        client_options={"allow_http": True},
    )
    counts = [0] * len(PREFIXES)
    new = tuple.__new__

    def list_prefix(index: int) -> None:
        for batch in obstore.list(store, PREFIXES[index], chunk_size=1000):
            records = [
                new(
                    ListedObject,
                    (meta["path"], meta["size"], meta["e_tag"], meta["last_modified"]),
                )
                for meta in batch
            ]
            counts[index] += len(records)

    threads = [threading.Thread(target=list_prefix, args=(i,)) for i in range(len(PREFIXES))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts)


def in_subprocess(source: str, endpoint_url: str) -> dict[str, Any]:
    return in_fresh_interpreter("bench.listers", source, endpoint_url)


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1], sys.argv[2])))
