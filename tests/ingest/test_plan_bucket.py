"""`ingest plan` against a bucket in the local AWS: the exact manifest, CSV and report."""

from __future__ import annotations

import csv
import gc
import json
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from ingest_support import url_prefix

from demo.samples import png, sample_corpus
from ingest.cli.main import main
from ingest.context import PlanContext
from ingest.errors import UserError
from ingest.outputs import StackOutputs
from ingest.plan.pipeline import iter_entries, plan
from ingest.plan.report import PlanReport
from ingest.plan.validate import validate_file
from ingest.settings import IngestSettings

SCHEMA = """\
camera: {type: enum, values: [front, rear]}
captured_at: datetime
ward: varchar
"""
CONFIG = """\
exclude: ["tmp/**"]
groups:
  - {folders: "groups/*", as: imageGroup}
  - {folders: "sequences/*", as: imageSequence}
metadataSchema: schema.yaml
metadataFiles: [metadata.csv]
"""


def corpus() -> dict[str, bytes | tuple[bytes, str]]:
    objects: dict[str, bytes | tuple[bytes, str]] = {
        sample.key: (sample.body, sample.content_type) for sample in sample_corpus()
    }
    objects.update(
        {
            # Sorts between the group's frames, in a subfolder no rule matches.
            "groups/ward-a/frame-1/extra.png": png(),
            "nested/a/b/c/deep photo #1.JPG": png(),
            "noext/picture": (png(), "image/png"),
            "noext/blob": (b"\x00", "application/octet-stream"),
            "empty-folder/": b"",
            "orphan.png.metadata.json": b"{}",
            "tmp/scratch.png": png(),
        }
    )
    return objects


@pytest.fixture
def planned(make_bucket, write_outputs, tmp_path: Path):
    bucket = make_bucket(corpus())
    (tmp_path / "schema.yaml").write_text(SCHEMA)
    (tmp_path / "metadata.csv").write_text("key,ward\ngroups/ward-a/,A\n")
    (tmp_path / "ingest.yaml").write_text(CONFIG)
    out = tmp_path / "out"
    assert main(plan_argv(write_outputs(bucket), tmp_path, "--json")) == 0
    return bucket, out


def plan_argv(outputs: Path, tmp_path: Path, *extra: str) -> list[str]:
    config = str(tmp_path / "ingest.yaml")
    return [
        "plan",
        "--outputs",
        str(outputs),
        "--config",
        config,
        "--out",
        str(tmp_path / "out"),
        *extra,
    ]


def test_the_manifest_is_exactly_what_encord_expects(planned) -> None:
    bucket, out = planned
    base = url_prefix(bucket)
    assert sorted(path.name for path in out.glob("manifest-*.json")) == ["manifest-00001.json"]
    manifest = json.loads((out / "manifest-00001.json").read_text(encoding="utf-8"))
    assert manifest == {
        "videos": [
            {"objectUrl": base + "videos/intersection.mp4", "title": "videos/intersection.mp4"}
        ],
        "images": [
            {
                "objectUrl": base + "groups/ward-a/frame-1/extra.png",
                "title": "groups/ward-a/frame-1/extra.png",
            },
            {"objectUrl": base + "images/cats/cat-1.png", "title": "images/cats/cat-1.png"},
            {"objectUrl": base + "images/cats/cat-2.png", "title": "images/cats/cat-2.png"},
            {"objectUrl": base + "images/cats/cat-3.png", "title": "images/cats/cat-3.png"},
            {
                "objectUrl": base + "images/dogs/chien-%C3%A9t%C3%A9.png",
                "title": "images/dogs/chien-été.png",
            },
            {
                "objectUrl": base + "images/dogs/dog%201.jpg",
                "title": "images/dogs/dog 1.jpg",
                "clientMetadata": {"camera": "front", "captured_at": "2026-01-02T03:04:05Z"},
            },
            {
                "objectUrl": base + "nested/a/b/c/deep%20photo%20%231.JPG",
                "title": "nested/a/b/c/deep photo #1.JPG",
            },
            {"objectUrl": base + "noext/picture", "title": "noext/picture"},
        ],
        "audio": [{"objectUrl": base + "audio/call-001.wav", "title": "audio/call-001.wav"}],
        "text": [{"objectUrl": base + "docs/notes/readme.txt", "title": "docs/notes/readme.txt"}],
        "pdf": [
            {"objectUrl": base + "docs/reports/report.pdf", "title": "docs/reports/report.pdf"}
        ],
        "nifti": [{"objectUrl": base + "scans/brain.nii", "title": "scans/brain.nii"}],
        "image_groups": [
            {
                "title": "groups/ward-a/",
                "createVideo": False,
                "objectUrl_0": base + "groups/ward-a/frame-1.png",
                "objectUrl_1": base + "groups/ward-a/frame-2.png",
                "objectUrl_2": base + "groups/ward-a/frame-10.png",
                "clientMetadata": {"ward": "A"},
            },
            {
                "title": "sequences/drive-1/",
                "createVideo": True,
                "objectUrl_0": base + "sequences/drive-1/0001.png",
                "objectUrl_1": base + "sequences/drive-1/0002.png",
                "objectUrl_2": base + "sequences/drive-1/0003.png",
            },
        ],
        "dicom_series": [
            {
                "title": "dicom/study-1/series-1/",
                "objectUrl_0": base + "dicom/study-1/series-1/slice-1.dcm",
                "objectUrl_1": base + "dicom/study-1/series-1/slice-2.dcm",
                "objectUrl_2": base + "dicom/study-1/series-1/slice-10.dcm",
            }
        ],
        "skip_duplicate_urls": True,
        "upsert_metadata": True,
    }
    assert validate_file(out / "manifest-00001.json") == ([], 16, 22)


def test_the_report_counts_everything_and_lists_what_was_not_imported(planned) -> None:
    _, out = planned
    report = json.loads((out / "report.json").read_text())
    assert report["objects"] == len(corpus())
    assert report["excluded"] == 1
    assert (report["sidecars"], report["orphanSidecars"]) == (2, 1)
    assert report["entries"] == {
        "audio": 1,
        "dicom_series": 1,
        "image_groups": 2,
        "images": 8,
        "nifti": 1,
        "pdf": 1,
        "text": 1,
        "videos": 1,
    }
    assert report["files"]["image_groups"] == 6
    assert report["unsupported"] == {
        "count": 3,
        "sample": [
            {"key": "empty-folder/", "reason": "folder marker (a key ending in '/'), not a file"},
            {"key": "misc/archive.zip", "reason": "extension .zip is not a type Encord imports"},
            {
                "key": "noext/blob",
                "reason": "no extension, and content type 'application/octet-stream' is not a type Encord imports",
            },
        ],
    }
    assert report["metadataErrors"] == {"count": 0, "sample": []}


def test_the_csv_has_one_row_per_url_and_the_type_in_the_header(planned) -> None:
    bucket, out = planned
    [path] = sorted((out / "csv").glob("import-*.csv"))
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 22
    dog = next(row for row in rows if row["Image title"] == "images/dogs/dog 1.jpg")
    assert dog["ObjectUrl"] == url_prefix(bucket) + "images/dogs/dog%201.jpg"
    assert json.loads(dog["Client metadata"])["camera"] == "front"
    frames = [row for row in rows if row["Image group title"] == "sequences/drive-1/"]
    assert [row["Create video"] for row in frames] == ["true"] * 3
    assert not any(" " in row["ObjectUrl"] for row in rows)


def test_a_rerun_writes_the_same_bytes(planned, write_outputs, tmp_path: Path) -> None:
    bucket, out = planned
    first = (out / "manifest-00001.json").read_bytes()
    assert main(plan_argv(write_outputs(bucket), tmp_path)) == 0
    assert (out / "manifest-00001.json").read_bytes() == first


def test_small_chunks_split_manifests_without_splitting_groups(
    make_bucket, write_outputs, tmp_path: Path
) -> None:
    bucket = make_bucket(
        {f"g/{i}.png": png() for i in range(3)} | {f"single-{i}.png": png() for i in range(4)}
    )
    out = tmp_path / "out"
    (out).mkdir()
    (out / "manifest-00009.json").write_text("{}")  # left over from an earlier, larger plan
    argv = ["plan", "--outputs", str(write_outputs(bucket)), "--group", "g=imageGroup"]
    assert main([*argv, "--chunk-size", "3", "--out", str(out)]) == 0
    files = sorted(out.glob("manifest-*.json"))
    assert [path.name for path in files] == [
        "manifest-00001.json",
        "manifest-00002.json",
        "manifest-00003.json",
    ]
    urls = [validate_file(path)[2] for path in files]
    assert urls == [3, 3, 1]  # the group's 3 frames stay together
    assert all(validate_file(path)[0] == [] for path in files)


def test_mrap_outputs_give_arn_urls(make_bucket, write_outputs, tmp_path: Path) -> None:
    bucket = make_bucket({"a b/c.png": png()})
    arn = "arn:aws:s3::123456789012:accesspoint/mfzwi23gnjvgw.mrap/"
    outputs = write_outputs(bucket, objectUrlPrefix=arn, mrapArn=arn.rstrip("/"))
    assert main(["plan", "--outputs", str(outputs), "--out", str(tmp_path / "o")]) == 0
    manifest = json.loads((tmp_path / "o" / "manifest-00001.json").read_text())
    assert manifest["images"] == [{"objectUrl": arn + "a%20b/c.png", "title": "a b/c.png"}]


class FlakyS3:
    """A paginator whose listing fails after `pages_before_error` pages (None: never)."""

    def __init__(self, pages: list[list[str]], pages_before_error: int | None) -> None:
        self.pages, self.pages_before_error = pages, pages_before_error

    def get_paginator(self, operation: str):
        return self

    def paginate(self, Bucket: str, Prefix: str):
        for number, keys in enumerate(self.pages):
            if number == self.pages_before_error:
                error = {"Error": {"Code": "AccessDenied", "Message": "denied"}}
                raise ClientError(error, "ListObjectsV2")
            yield {"Contents": [{"Key": key, "Size": 1, "ETag": '"e"'} for key in keys]}


def _media_outputs() -> StackOutputs:
    """The outputs of a stack whose bucket `FlakyS3` lists."""
    return StackOutputs.model_validate(
        {
            "source": "test",
            "bucketName": "media",
            "region": "us-east-1",
            "objectUrlPrefix": "s3://media/",
        }
    )


def test_a_failed_plan_leaves_the_previous_plan_whole(tmp_path: Path) -> None:
    outputs = _media_outputs()
    settings = IngestSettings.model_validate(
        {"outputDir": str(tmp_path), "chunkSize": 2, "listing": "paginator"}
    )
    pages = [["a/1.png", "a/2.png"], ["b/1.png", "b/2.png"], ["c/1.png"]]
    plan(PlanContext(outputs, settings, FlakyS3(pages, None)))
    before = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    assert len([path for path in before if path.name.startswith("manifest-")]) == 3

    with pytest.raises(UserError, match="access denied listing s3://media/"):
        plan(PlanContext(outputs, settings.model_copy(update={"chunk_size": 1}), FlakyS3(pages, 2)))
    after = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    assert after == before
    assert [path.name for path in tmp_path.iterdir() if path.name.startswith(".plan-")] == []


def test_an_output_directory_that_cannot_be_created_is_one_line(tmp_path: Path) -> None:
    outputs = _media_outputs()
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    settings = IngestSettings.model_validate(
        {"outputDir": str(blocker / "out"), "listing": "paginator"}
    )
    with pytest.raises(UserError, match=rf"^cannot write to {blocker / 'out'} \(Not a directory"):
        plan(PlanContext(outputs, settings, FlakyS3([["a/1.png"]], None)))


def test_the_collector_is_tuned_while_entries_stream_and_restored_after(tmp_path: Path) -> None:
    # `ingest run` scans through `iter_entries` too, not only `plan`: both stream millions
    # of short-lived objects.
    outputs = _media_outputs()
    settings = IngestSettings.model_validate({"outputDir": str(tmp_path), "listing": "paginator"})
    context = PlanContext(outputs, settings, FlakyS3([["a/1.png", "a/2.png"]], None))
    before = gc.get_threshold()

    entries = iter_entries(context, PlanReport())
    next(entries)
    during = gc.get_threshold()
    list(entries)

    assert during[0] > before[0] and during[1:] == before[1:]
    assert gc.get_threshold() == before
