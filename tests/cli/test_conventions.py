"""The command line's conventions: every file validated and reported, JSON results, the exit
codes (3 with a log, 130 on SIGTERM), settings never dropped silently, --verbose/--quiet."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import yaml

from ingest.cli.main import ERROR_LOG, main
from ingest.errors import UserError
from ingest.settings import PROJECT_ROOT, load_settings, stack_file
from sandbox import KeyPair, Sandbox, generate_key_pair
from tests.run.support import Bucket, Ingest, Outcome, sdk_client


def call(capsys: pytest.CaptureFixture, *argv: str) -> Outcome:
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    return Outcome(code, captured.out, captured.err)


def plan_arguments(bucket: Bucket, out: Path) -> list[str]:
    return ["plan", "--outputs", str(bucket.outputs), "--out", str(out)]


def test_validate_checks_and_reports_every_file(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    good, bad, broken = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "c.json"
    good.write_text(json.dumps({"images": [{"objectUrl": "https://b/x.png", "title": "x"}]}))
    bad.write_text(json.dumps({"images": [{"objectUrl": "ftp://b/x.png"}]}))
    broken.write_text("{")

    human = call(capsys, "validate", str(good), str(bad), str(broken))
    as_json = call(capsys, "validate", str(good), str(bad), str(broken), "--json")

    assert human.code == as_json.code == 2
    assert human.stdout == f"{good}: valid (1 entries, 1 URLs)\n"
    assert f"{bad} $.images[0].objectUrl: not a URL" in human.stderr
    assert f"manifest {broken} is not JSON" in human.stderr
    assert human.stderr.splitlines()[-1].startswith("error: invalid manifest(s): ")
    *results, error = as_json.stdout.splitlines(keepends=True)
    files = json.loads("".join(results))["files"]
    assert [(result["file"], result["valid"]) for result in files] == [
        (str(good), True),
        (str(bad), False),
        (str(broken), False),
    ]
    assert files[1]["problems"][0]["path"] == "$.images[0].objectUrl"
    assert json.loads(error)["exit"] == 2


def test_schema_check_has_a_json_result(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    schema = tmp_path / "schema.yaml"
    schema.write_text("camera: {type: enum, values: [front, rear]}\ncaptured_at: datetime\n")

    outcome = call(capsys, "schema", "check", str(schema), "--json")

    assert outcome.code == 0
    assert outcome.json() == {
        "file": str(schema),
        "valid": True,
        "keys": {"camera": "enum", "captured_at": "datetime"},
    }


def test_an_excel_csv_with_a_bom_is_read_and_unmatched_rows_are_counted(
    aws_env: object, bucket: Bucket, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    table = tmp_path / "meta.csv"
    table.write_bytes(
        "key,note\nimages/cats/cat-1.png,été\nimages/typo.png,x\nnowhere/y.png,z\n".encode(
            "utf-8-sig"
        )
    )
    out = tmp_path / "out"

    outcome = call(capsys, *plan_arguments(bucket, out), "--metadata", str(table), "--json")

    assert outcome.code == 0, outcome.stderr
    assert outcome.json()["unmatchedMetadataRows"] == {
        "count": 2,
        "sample": ["images/typo.png", "nowhere/y.png"],
    }
    manifest = json.loads((out / "manifest-00001.json").read_text())
    [cat] = [image for image in manifest["images"] if image["title"] == "images/cats/cat-1.png"]
    assert cat["clientMetadata"] == {"note": "été"}
    human = call(capsys, *plan_arguments(bucket, out), "--metadata", str(table))
    assert "metadata rows matching no object: 2 (images/typo.png, nowhere/y.png)" in human.stdout


def test_an_internal_error_exits_3_with_one_line_and_a_redacted_log(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = generate_key_pair(tmp_path / "keys").private_key_path.read_text().strip()
    body = secret.splitlines()[1]  # a line of the key itself

    def broken(args: object) -> int:
        raise RuntimeError(f"a bug near {secret}")

    monkeypatch.setattr("ingest.cli.plan.plan_command", broken)
    out = tmp_path / "out"
    out.mkdir()

    outcome = call(capsys, "plan", "--out", str(out), "--json")

    assert outcome.code == 3
    assert outcome.stderr.count("\n") == 1 and "internal error (RuntimeError" in outcome.stderr
    assert str(out / ERROR_LOG) in outcome.stderr
    assert json.loads(outcome.stdout)["exit"] == 3
    log = (out / ERROR_LOG).read_text()
    assert "Traceback" in log and "RuntimeError: a bug near [private key removed]" in log
    assert body not in log + outcome.stderr + outcome.stdout


def test_sigterm_during_a_plan_exits_130_and_leaves_no_staging(
    aws_env: object, bucket: Bucket, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "out"
    assert call(capsys, *plan_arguments(bucket, out)).code == 0
    before = sorted(path.name for path in out.iterdir())

    def terminated(objects):
        for number, obj in enumerate(objects):
            if number == 3:
                os.kill(os.getpid(), signal.SIGTERM)
            yield obj

    from ingest.cli import progress

    original = progress.Feedback.counted

    def counted(self, items, label, unit):
        return terminated(items) if label == "listing" else original(self, items, label, unit)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(progress.Feedback, "counted", counted)
        outcome = call(capsys, *plan_arguments(bucket, out))

    assert outcome.code == 130
    assert outcome.stderr.startswith("error: interrupted") and outcome.stderr.count("\n") == 1
    assert sorted(path.name for path in out.iterdir()) == before  # no .plan-* left behind
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # restored after the command


def test_the_stack_file_is_found_next_to_pulumi_yaml_from_any_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "somewhere/else"
    elsewhere.mkdir(parents=True)
    monkeypatch.chdir(elsewhere)
    declared = yaml.safe_load((PROJECT_ROOT / "Pulumi.demo.yaml").read_text())["config"][
        "encord-s3:ingest"
    ]

    assert stack_file("demo") == PROJECT_ROOT / "Pulumi.demo.yaml"
    assert load_settings("demo", None, {}).dataset == declared.get("dataset")
    with pytest.raises(UserError, match=r"stack 'demoo' has no Pulumi.demoo.yaml .*demo, dev"):
        load_settings("demoo", None, {})

    project = tmp_path / "project"
    (project / "deep/down").mkdir(parents=True)
    (project / "Pulumi.yaml").write_text("name: other\n")
    (project / "Pulumi.qa.yaml").write_text("config:\n  encord-s3:ingest:\n    chunkSize: 9\n")
    monkeypatch.chdir(project / "deep/down")
    assert load_settings("qa", None, {}).chunk_size == 9


def test_a_setting_the_listing_ignores_is_a_warning(
    aws_env: object, bucket: Bucket, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    argv = [*plan_arguments(bucket, tmp_path / "out"), "--inventory-location", "s3://inv/x/"]

    outcome = call(capsys, *argv)
    quiet = call(capsys, *argv, "--quiet")

    assert outcome.code == 0
    assert outcome.stderr == (
        "warning: inventoryLocation is ignored with listing 'fast': it applies only to "
        "listing 'inventory' (--listing inventory)\n"
    )
    assert (quiet.code, quiet.stdout, quiet.stderr) == (0, "", "")


def test_verbose_says_what_it_does_and_quiet_says_nothing(
    aws_env: object, bucket: Bucket, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    verbose = call(capsys, *plan_arguments(bucket, tmp_path / "out"), "--verbose")
    quiet = call(capsys, *plan_arguments(bucket, tmp_path / "out"), "--quiet")

    assert verbose.code == quiet.code == 0
    assert f"planning s3://{bucket.name} (fast listing)" in verbose.stderr
    assert (quiet.stdout, quiet.stderr) == ("", "")


def test_run_with_nothing_importable_creates_nothing_and_writes_its_report(
    encord_ingest: Ingest, sandbox: Sandbox, key_pair: KeyPair, tmp_path: Path
) -> None:
    outcome = encord_ingest("run", "--prefix", "misc/", "--json")  # only an unsupported .zip

    assert outcome.code == 0, outcome.stderr
    assert outcome.json()["verify"]["rows"] == 0
    client = sdk_client(sandbox, key_pair)
    assert list(client.list_storage_folders()) == [] and list(client.get_datasets()) == []
    report = json.loads((tmp_path / "out/report.json").read_text())
    assert report["unsupported"]["count"] == 1


def test_plan_validates_what_it_writes(
    aws_env: object,
    bucket: Bucket,
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # URLs built without percent-encoding: 'images/dogs/dog 1.jpg' would keep its space.
    monkeypatch.setattr("ingest.plan.pipeline.object_urls", lambda prefix: prefix.__add__)
    out = tmp_path / "out"

    outcome = call(capsys, *plan_arguments(bucket, out))

    assert outcome.code == 2 and outcome.stderr.count("\n") == 1, outcome
    assert "entry 'images/dogs/dog 1.jpg' would be an invalid manifest entry" in outcome.stderr
    assert "contains whitespace" in outcome.stderr
    assert list(out.iterdir()) == []  # nothing published, no staging left


@pytest.mark.parametrize(
    ("command_module", "left_out"),
    [
        ("ingest.cli.validate", ("boto3", "encord", "pyarrow", "rich", "pydicom")),
        ("ingest.cli.schema", ("boto3", "encord", "pyarrow", "rich", "pydicom")),
        # A plan talks to S3 only, through botocore's client: boto3 (and its s3transfer), the
        # Encord SDK and pydicom (a folder without .dcm files never needs it) stay out of its
        # start-up; as they do out of `run`'s until its steps need the SDK.
        ("ingest.cli.plan", ("boto3", "s3transfer", "encord", "pydicom", "pyarrow")),
        ("ingest.cli.run", ("boto3", "s3transfer", "encord", "pydicom", "pyarrow")),
    ],
)
def test_a_command_imports_only_what_it_uses(
    command_module: str, left_out: tuple[str, ...]
) -> None:
    import subprocess
    import sys

    probe = (
        f"import sys, {command_module}; "
        "print(' '.join(sorted({name.split('.')[0] for name in sys.modules})))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()
    assert [package for package in left_out if package in loaded] == []
