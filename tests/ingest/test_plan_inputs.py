"""Stack outputs and settings: where they come from, and one-line errors when they're wrong."""

from __future__ import annotations

import argparse
import json
import os
import stat
from pathlib import Path

import botocore.session
import pytest

from ingest.cli.main import main
from ingest.context import check_context, load_context
from ingest.errors import UserError
from ingest.outputs import load_outputs
from ingest.settings import load_settings

OUTPUTS = {
    "bucketName": "media-bucket",
    "region": "eu-west-2",
    "objectUrlPrefix": "https://media-bucket.s3.eu-west-2.amazonaws.com/",
    "prefixes": ["images/"],
    "externalId": "s3cr3t-external-id",
}


def fake_pulumi(directory: Path, stdout: str, exit_code: int = 0, stderr: str = "") -> Path:
    """A `pulumi` executable on PATH that records its arguments and prints `stdout`."""
    script = directory / "pulumi"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$@" > "{directory}/args"\n'
        f"cat <<'JSON'\n{stdout}\nJSON\n"
        f"echo '{stderr}' >&2\n"
        f"exit {exit_code}\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def test_outputs_come_from_the_pulumi_cli_for_a_stack(tmp_path, monkeypatch) -> None:
    fake_pulumi(tmp_path, json.dumps(OUTPUTS))
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    outputs = load_outputs("acme/encord-s3/dev", None)
    args = (tmp_path / "args").read_text().split()
    assert args == ["stack", "output", "--json", "--show-secrets", "--stack", "acme/encord-s3/dev"]
    assert (outputs.bucket_name, outputs.prefixes) == ("media-bucket", ["images/"])
    assert outputs.require("externalId") == "s3cr3t-external-id"
    assert "s3cr3t" not in repr(outputs) and "s3cr3t" not in str(outputs)


def test_a_failing_pulumi_cli_is_one_line(tmp_path, monkeypatch) -> None:
    fake_pulumi(tmp_path, "", exit_code=255, stderr="error: no stack named nope found")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(UserError, match="failed: error: no stack named nope found"):
        load_outputs("nope", None)


def test_a_missing_output_names_the_output_and_the_stack(tmp_path, monkeypatch) -> None:
    fake_pulumi(tmp_path, json.dumps({k: v for k, v in OUTPUTS.items() if k != "objectUrlPrefix"}))
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(UserError, match="'objectUrlPrefix' is missing from stack 'dev'"):
        load_outputs("dev", None)
    outputs_file = tmp_path / "outputs.json"
    outputs_file.write_text(json.dumps(OUTPUTS))
    with pytest.raises(UserError, match=f"'roleArn' is missing from outputs file {outputs_file}"):
        load_outputs(None, outputs_file).require("roleArn")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not JSON"),
        ("[1, 2]", "must be a JSON object"),
        (json.dumps({**OUTPUTS, "prefixes": "images/"}), "'prefixes'.*valid list"),
    ],
)
def test_bad_outputs_files_are_one_line(tmp_path, content, message) -> None:
    path = tmp_path / "outputs.json"
    path.write_text(content)
    with pytest.raises(UserError, match=message):
        load_outputs(None, path)


def test_settings_come_from_the_stack_config_then_flags(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("Pulumi.dev.yaml").write_text(
        "config:\n"
        "  aws:region: eu-west-2\n"
        "  encord-s3:ingest:\n"
        "    prefixes: [images/]\n"
        "    chunkSize: 5000\n"
        "    metadataFiles: [meta/extra.csv]\n"
        "    groups: [{folders: 'scans/*', as: imageSequence}]\n"
        "    dataset: Street scenes\n"
    )
    settings = load_settings("acme/encord-s3/dev", None, {"chunkSize": 7})
    assert settings.prefixes == ["images/"]
    assert settings.chunk_size == 7
    assert settings.metadata_files == [Path("meta/extra.csv")]
    assert settings.groups[0].as_ == "imageSequence"
    assert settings.dataset == "Street scenes"
    assert load_settings("prod", None, {}).chunk_size == 100_000  # no Pulumi.prod.yaml: defaults


def test_a_config_file_resolves_metadata_paths_beside_itself(tmp_path) -> None:
    config = tmp_path / "conf" / "ingest.json"
    config.parent.mkdir()
    config.write_text(json.dumps({"metadataSchema": "schema.yaml", "outputDir": "out/x"}))
    settings = load_settings(None, config, {})
    assert settings.metadata_schema == tmp_path / "conf" / "schema.yaml"
    assert settings.output_dir == Path("out/x")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("chunksize: 10\n", r"unknown key 'chunksize'; known keys: .*chunkSize"),
        ("chunkSize: 600000\n", r"chunkSize: Input should be less than or equal to 500000"),
        ("groups: [{folders: 'a/*', as: video}]\n", r"groups\.0\.as: Input should be"),
        ("prefixes: images/\n", r"prefixes: Input should be a valid list"),
        ("- a\n- b\n", "must hold a mapping"),
        ("a: [\n", "not valid YAML"),
    ],
)
def test_bad_config_values_name_the_file_and_key(tmp_path, text, message) -> None:
    path = tmp_path / "ingest.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=message) as caught:
        load_settings(None, path, {})
    assert str(path) in str(caught.value)


def test_cli_errors_are_one_line_and_exit_2(tmp_path, capsys) -> None:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps({"bucketName": "media-bucket"}))
    assert main(["plan", "--outputs", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "'region' is missing" in err
    assert main(["plan", "--outputs", str(path), "--group", "nonsense"]) == 2
    assert "--group 'nonsense'" in capsys.readouterr().err


def test_the_bucket_check_makes_its_client_in_the_contexts_session(
    aws_env, tmp_path, monkeypatch
) -> None:
    # A second session would load S3's model a second time, for one `MaxKeys=1` call.
    aws_env.client("s3").create_bucket(Bucket="session-check")
    outputs_file = tmp_path / "outputs.json"
    outputs_file.write_text(json.dumps({**OUTPUTS, "bucketName": "session-check", "prefixes": []}))
    args = argparse.Namespace(stack=None, config=None, outputs=outputs_file)
    monkeypatch.setattr(
        "ingest.context.settings_overrides", lambda args: {"outputDir": str(tmp_path / "out")}
    )
    context = load_context(args)

    def no_new_session(*args, **kwargs):
        raise AssertionError("check_context made a botocore session of its own")

    monkeypatch.setattr(botocore.session, "Session", no_new_session)
    check_context(context)  # the bucket answers, through a client of the context's session
