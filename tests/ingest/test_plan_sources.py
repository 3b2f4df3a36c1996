"""`ingest plan` gives the same manifests whichever source lists the bucket."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from inventory_support import Row, location, write_report
from test_plan_bucket import CONFIG, SCHEMA, corpus, plan_argv

from ingest.cli.main import main


@pytest.fixture
def bucket_and_inventories(make_bucket, aws_env):
    bucket = make_bucket(corpus())
    s3 = aws_env.client("s3")
    listed = s3.list_objects_v2(Bucket=bucket)["Contents"]
    rows = [
        Row(obj["Key"], obj["Size"], obj["ETag"].strip('"'), obj["LastModified"]) for obj in listed
    ]
    reports = f"{bucket}-reports"
    s3.create_bucket(Bucket=reports)
    locations = {}
    for fmt in ("CSV", "Parquet"):
        prefix = f"{fmt.lower()}/{bucket}/daily/"
        # Two files, neither in key order: the reader must restore it.
        files = [rows[1::2][::-1], rows[::2]]
        write_report(
            s3, reports, prefix, files, source_bucket=bucket, fmt=fmt, created=datetime.now(UTC)
        )
        locations[fmt] = location(reports, prefix)
    return bucket, locations


def planned_files(out: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(out)): path.read_bytes() for path in out.rglob("*") if path.is_file()
    }


def test_every_source_plans_the_same_manifests(bucket_and_inventories, write_outputs, tmp_path):
    bucket, locations = bucket_and_inventories
    (tmp_path / "schema.yaml").write_text(SCHEMA)
    (tmp_path / "metadata.csv").write_text("key,ward\ngroups/ward-a/,A\n")
    (tmp_path / "ingest.yaml").write_text(CONFIG)
    outputs = write_outputs(bucket)
    runs = {
        "fast": ["--listing", "fast"],
        "paginator": ["--listing", "paginator"],
        **{
            f"inventory {fmt}": ["--listing", "inventory", "--inventory-location", where]
            for fmt, where in locations.items()
        },
    }
    planned = {}
    for name, flags in runs.items():
        assert main(plan_argv(outputs, tmp_path, *flags)) == 0, name
        planned[name] = planned_files(tmp_path / "out")
    fast = planned.pop("fast")
    assert any(name.startswith("manifest-") for name in fast)
    assert b'"warnings": []' in fast["report.json"]
    for name, files in planned.items():
        assert files == fast, name
