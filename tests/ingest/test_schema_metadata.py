"""The metadata schema file: offline checks, merge-safe apply through the SDK, and values."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from demo.samples import png
from ingest.cli.main import main
from ingest.plan.schema import load_schema

DECLARED = """\
captured_at: datetime
camera: {type: enum, values: [front, rear, side]}
clip: {type: embedding, size: 4}
score: number
"""


def schema_file(tmp_path: Path, text: str = DECLARED, name: str = "schema.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: colour\n", r"key 'a': type: Input should be 'boolean'"),
        ("a: {type: enum}\n", "`values` goes with, and only with, type enum"),
        ("a: {type: embedding, size: 5000}\n", r"size: Input should be less than or equal to 4096"),
        ("keyframes: text\n", "key 'keyframes' is not allowed"),
        ("a: {type: text, colour: red}\n", r"colour: Extra inputs are not permitted"),
        ("[]\n", "must be a mapping"),
    ],
)
def test_schema_check_rejects_bad_files_in_one_line(tmp_path, capsys, text, message) -> None:
    path = schema_file(tmp_path, text)
    assert main(["schema", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err
    assert re.search(message, err)


def test_schema_check_accepts_json_too(tmp_path, capsys) -> None:
    path = schema_file(tmp_path, json.dumps({"ok": "boolean"}), "schema.json")
    assert main(["schema", "check", str(path)]) == 0
    assert "valid (1 keys)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("ty", "good", "bad"),
    [
        ("boolean", True, "true"),
        ("datetime", "2026-01-02T03:04:05Z", "yesterday"),
        ("number", 1.5, True),
        ("uuid", "6f1c1d2e-1b5a-4f7e-9a51-1c2b3d4e5f60", "not-a-uuid"),
        ("varchar", "short", "x" * 8193),
        ("text", "x" * 9000, 3),
        ("{type: enum, values: [a, b]}", "a", "c"),
        ("{type: embedding, size: 2}", [0.1, 2], [0.1]),
    ],
)
def test_values_are_checked_against_their_declared_type(tmp_path, ty, good, bad) -> None:
    schema = load_schema(schema_file(tmp_path, f"k: {ty}\n"))
    assert schema.check({"k": good}) == []
    assert schema.check({"k": bad})[0].startswith("metadata key 'k': expected ")


def test_plan_reports_schema_violations_by_object_and_key(
    make_bucket, write_outputs, tmp_path, capsys
) -> None:
    bucket = make_bucket(
        {
            "a.png": png(),
            "a.png.metadata.json": json.dumps({"captured_at": "last tuesday"}).encode(),
            "b.png": png(),
            "c.png": png(),
        }
    )
    (tmp_path / "meta.jsonl").write_text(json.dumps({"key": "c.png", "score": 3}) + "\n")
    argv = ["plan", "--outputs", str(write_outputs(bucket)), "--out", str(tmp_path / "out")]
    argv += [
        "--metadata-schema",
        str(schema_file(tmp_path)),
        "--metadata",
        str(tmp_path / "meta.jsonl"),
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "error: 1 object(s) have metadata that doesn't match the schema, left out of the manifests; "
        "first: a.png: metadata key 'captured_at': expected an ISO 8601 datetime (datetime), "
        'got "last tuesday"'
    ]
    manifest = json.loads((tmp_path / "out" / "manifest-00001.json").read_text())
    assert [entry["title"] for entry in manifest["images"]] == ["b.png", "c.png"]
    assert manifest["images"][1]["clientMetadata"] == {"score": 3}


def test_a_csv_metadata_table_is_typed_by_the_schema(make_bucket, write_outputs, tmp_path) -> None:
    bucket = make_bucket({"x/1.png": png(), "x/2.png": png()})
    (tmp_path / "meta.csv").write_text(
        'key,score,clip,note\nx/1.png,2.5,"[1,2,3,4]",hi\nx/2.png,,,\n'
    )
    argv = ["plan", "--outputs", str(write_outputs(bucket)), "--out", str(tmp_path / "out")]
    argv += [
        "--metadata-schema",
        str(schema_file(tmp_path)),
        "--metadata",
        str(tmp_path / "meta.csv"),
    ]
    assert main(argv) == 0
    manifest = json.loads((tmp_path / "out" / "manifest-00001.json").read_text())
    assert manifest["images"][0]["clientMetadata"] == {
        "score": 2.5,
        "clip": [1, 2, 3, 4],
        "note": "hi",
    }
    assert "clientMetadata" not in manifest["images"][1]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("m.csv", "object,score\na,1\n", "add a 'key' column"),
        ("m.csv", "key,score\na,1\na,2\n", "key 'a' has more than one row"),
        ("m.jsonl", '{"key": "a"}\nnot json\n', "line 2: not JSON"),
        ("m.txt", "", "use a .csv or .jsonl file"),
    ],
)
def test_bad_metadata_tables_are_one_line(
    make_bucket, write_outputs, tmp_path, capsys, name, content, message
) -> None:
    bucket = make_bucket({"a": (png(), "image/png")})
    (tmp_path / name).write_text(content)
    argv = ["plan", "--outputs", str(write_outputs(bucket)), "--out", str(tmp_path / "out")]
    assert main([*argv, "--metadata", str(tmp_path / name)]) == 2
    err = capsys.readouterr().err
    assert message in err and str(tmp_path / name) in err and err.count("\n") == 1
