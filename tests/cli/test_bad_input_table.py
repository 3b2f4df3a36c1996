"""Bad input, across every command: exit 2, one line on stderr, no traceback, no secret, and
nothing created in Encord (counted through the SDK against the sandbox).

Most cases run in-process (`ingest.cli.main.main`); `test_bad_input_in_a_subprocess` runs a
few as a user would, through `python -m ingest`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ingest.cli.main import main
from sandbox import KeyPair, Sandbox
from tests.run.support import EXTERNAL_ID, Bucket, Outcome, sdk_client

REPO = Path(__file__).resolve().parents[2]
SOURCE = [
    "--outputs",
    "{outputs}",
    "--out",
    "{out}",
    "--folder",
    "imports",
    "--dataset",
    "Imported",
]
ENCORD = ["--encord-domain", "{sandbox}", "--ssh-key-file", "{key}"]
UNWRITABLE = "/proc/ingest-out"  # not even root can write there


@dataclass(frozen=True)
class Case:
    id: str
    argv: list[str]
    says: str  # a fragment of the one error line
    env: dict[str, str | None] = field(default_factory=dict)  # None: unset
    after_a_run: bool = False  # needs the run state (and Encord objects) of a good run first


def source(command: str, *more: str, encord: bool = True) -> list[str]:
    """`command` on the test bucket (plan takes no Encord names)."""
    names = SOURCE[:4] if command == "plan" else SOURCE
    return [command, *names, *(ENCORD if encord else []), *more]


CASES = [
    # Inputs every bucket-reading command shares, through `plan` and `run`.
    Case("plan-no-stack", ["plan"], "say which stack"),
    Case("plan-outputs-missing", ["plan", "--outputs", "{tmp}/nowhere.json"], "cannot read"),
    Case("plan-outputs-not-json", ["plan", "--outputs", "{tmp}/notjson.json"], "is not JSON"),
    Case("plan-outputs-no-region", ["plan", "--outputs", "{tmp}/noregion.json"], "'region'"),
    Case(
        "plan-prefix-without-slash",
        ["plan", "--outputs", "{tmp}/noslash.json"],
        "must end with '/'",
    ),
    Case("plan-prefix-not-a-url", ["plan", "--outputs", "{tmp}/nourl.json"], "https:// URL"),
    Case("plan-out-is-a-file", source("plan", "--out", "{tmp}/a-file", encord=False), "a file"),
    Case("plan-out-unwritable", source("plan", "--out", UNWRITABLE, encord=False), "cannot write"),
    Case("plan-bad-glob", source("plan", "--exclude", "a[z-a]b", encord=False), "a[z-a]b"),
    Case(
        "plan-latin1-csv",
        source("plan", "--metadata", "{tmp}/latin1.csv", encord=False),
        "save it as UTF-8",
    ),
    Case(
        "plan-csv-without-key",
        source("plan", "--metadata", "{tmp}/nokey.csv", encord=False),
        "'key' column",
    ),
    Case(
        "plan-csv-missing",
        source("plan", "--metadata", "{tmp}/nowhere.csv", encord=False),
        "No such file",
    ),
    Case(
        "plan-metadata-txt",
        source("plan", "--metadata", "{tmp}/notes.txt", encord=False),
        ".csv or .jsonl",
    ),
    Case(
        "plan-duplicate-yaml-key",
        source("plan", "--config", "{tmp}/dup.yaml", encord=False),
        "appears twice",
    ),
    Case(
        "plan-duplicate-json-key",
        source("plan", "--config", "{tmp}/dup.json", encord=False),
        "appears twice",
    ),
    Case(
        "plan-unknown-setting",
        source("plan", "--config", "{tmp}/unknown.yaml", encord=False),
        "unknown key",
    ),
    Case(
        "plan-config-missing",
        source("plan", "--config", "{tmp}/nowhere.yaml", encord=False),
        "cannot read",
    ),
    Case("plan-stack-typo", source("plan", "--stack", "demoo", encord=False), "Pulumi.demoo.yaml"),
    Case(
        "plan-bad-group", source("plan", "--group", "nonsense", encord=False), "--group 'nonsense'"
    ),
    Case("plan-chunk-size-0", source("plan", "--chunk-size", "0", encord=False), "chunkSize"),
    Case(
        "plan-empty-prefix",
        source("plan", "--prefix", "nothing-here/", encord=False),
        "holds no objects",
    ),
    Case(
        "plan-paginator-empty",
        source("plan", "--prefix", "nothing-here/", "--listing", "paginator", encord=False),
        "holds no objects",
    ),
    Case(
        "plan-inventory-no-location",
        source("plan", "--listing", "inventory", encord=False),
        "inventoryLocation",
    ),
    Case(
        "plan-aws-profile", source("plan", encord=False), "AWS_PROFILE", env={"AWS_PROFILE": "nope"}
    ),
    Case(
        "plan-schema-missing",
        source("plan", "--metadata-schema", "{tmp}/nowhere.yaml", encord=False),
        "nowhere.yaml",
    ),
    Case(
        "plan-s3-unreachable",
        source("plan", encord=False),
        "is unreachable",
        env={"AWS_ENDPOINT_URL": "{refused}"},
    ),
    Case("plan-unknown-flag", ["plan", "--bogus"], "unrecognized arguments: --bogus"),
    # `run`: everything checked before the Files folder, the Dataset or the schema is touched.
    Case("run-empty-prefix", source("run", "--prefix", "nothing-here/"), "holds no objects"),
    Case("run-out-is-a-file", source("run", "--out", "{tmp}/a-file"), "a file"),
    Case("run-out-unwritable", source("run", "--out", UNWRITABLE), "cannot write"),
    Case(
        "run-unknown-integration",
        source("run", "--integration", "Nope"),
        "no integration titled 'Nope'",
    ),
    Case(
        "run-no-key",
        [*source("run", encord=False), "--encord-domain", "{sandbox}"],
        "no Encord key",
        env={"ENCORD_SSH_KEY_FILE": None, "ENCORD_SSH_KEY": None},
    ),
    Case(
        "run-key-file-missing",
        [
            *source("run", encord=False),
            "--encord-domain",
            "{sandbox}",
            "--ssh-key-file",
            "{tmp}/nokey",
        ],
        "No such file",
    ),
    Case(
        "run-rsa-key",
        [
            *source("run", encord=False),
            "--encord-domain",
            "{sandbox}",
            "--ssh-key-file",
            "{tmp}/id_rsa",
        ],
        "ssh-keygen -t ed25519",
    ),
    Case(
        "run-unknown-key",
        [
            *source("run", encord=False),
            "--encord-domain",
            "{sandbox}",
            "--ssh-key-file",
            "{tmp}/stranger",
        ],
        "rejected the key",
    ),
    Case(
        "run-domain-not-a-url", source("run", "--encord-domain", "api.encord.com"), "is not a URL"
    ),
    Case("run-domain-refused", source("run", "--encord-domain", "{refused}"), "unreachable"),
    Case(
        "run-no-folder-or-dataset",
        source("run", "--folder", "", "--dataset", ""),
        "--folder NAME and --dataset TITLE",
    ),
    Case("run-bad-glob", source("run", "--exclude", "[!]x]"), "[!]x]"),
    Case("run-latin1-csv", source("run", "--metadata", "{tmp}/latin1.csv"), "save it as UTF-8"),
    Case("run-aws-profile", source("run"), "AWS_PROFILE", env={"AWS_PROFILE": "nope"}),
    Case(
        "run-prefix-without-slash",
        ["run", *SOURCE[2:], *ENCORD, "--outputs", "{tmp}/noslash.json"],
        "must end with '/'",
    ),
    Case(
        "run-schema-bad-type",
        source("run", "--metadata-schema", "{tmp}/badschema.yaml"),
        "badschema.yaml",
    ),
    Case(
        "run-s3-unreachable",
        source("run"),
        "is unreachable",
        env={"AWS_ENDPOINT_URL": "{refused}"},
    ),
    # `retry`, `verify`, `status`: read the run state first, create nothing.
    Case("retry-no-state", source("retry"), "no run state"),
    Case("verify-no-state", source("verify"), "no run state"),
    Case(
        "verify-dataset-typo",
        source("verify", "--dataset", "Typo Dataset"),
        "share it",
        after_a_run=True,
    ),
    Case("status-no-state", ["status", "0000", *SOURCE, *ENCORD], "no run state"),
    Case(
        "status-unknown-job",
        ["status", "0000", *SOURCE, *ENCORD],
        "upload job 0000 is not in",
        after_a_run=True,
    ),
    # The offline commands.
    Case("validate-missing", ["validate", "{tmp}/nowhere.json"], "cannot read manifest"),
    Case("validate-not-json", ["validate", "{tmp}/notjson.json"], "is not JSON"),
    Case("schema-check-missing", ["schema", "check", "{tmp}/nowhere.yaml"], "nowhere.yaml"),
    Case("schema-check-bad-type", ["schema", "check", "{tmp}/badschema.yaml"], "badschema.yaml"),
    Case(
        "schema-apply-no-key",
        ["schema", "apply", "{tmp}/goodschema.yaml"],
        "no Encord key",
        env={"ENCORD_SSH_KEY_FILE": None, "ENCORD_SSH_KEY": None},
    ),
    # The command line itself.
    Case("no-command", ["--stack", "dev"], "plan"),
    Case("flags-only", ["--verbose", "--quiet"], "say which command"),
    Case("unknown-command", ["upload"], "say which command to run, one of: plan"),
]


@pytest.fixture
def inputs(tmp_path: Path, bucket: Bucket) -> Path:
    """Every bad file the cases name, in tmp_path."""
    good = json.loads(bucket.outputs.read_text())

    def outputs(name: str, **changes: object) -> None:
        (tmp_path / name).write_text(json.dumps({**good, **changes}))

    outputs("noslash.json", objectUrlPrefix=good["objectUrlPrefix"].rstrip("/"))
    outputs("nourl.json", objectUrlPrefix=f"{bucket.name}.s3.amazonaws.com/")
    (tmp_path / "noregion.json").write_text(json.dumps({"bucketName": bucket.name}))
    (tmp_path / "notjson.json").write_text("{")
    (tmp_path / "a-file").write_text("not a directory")
    (tmp_path / "latin1.csv").write_bytes(
        "key,note\nimages/cats/cat-1.png,café\n".encode("latin-1")
    )
    (tmp_path / "nokey.csv").write_text("name,note\na,b\n")
    (tmp_path / "notes.txt").write_text("key\n")
    (tmp_path / "dup.yaml").write_text("chunkSize: 10\nchunkSize: 20\n")
    (tmp_path / "dup.json").write_text('{"chunkSize": 10, "chunkSize": 20}')
    (tmp_path / "unknown.yaml").write_text("chunksize: 10\n")
    (tmp_path / "badschema.yaml").write_text("camera: colour\n")
    (tmp_path / "goodschema.yaml").write_text("camera: varchar\n")
    (tmp_path / "invalid-manifest.json").write_text(
        json.dumps({"images": [{"objectUrl": "not a url", "title": "x"}]})
    )
    from tests.run.test_bad_input import rsa_key_text  # the same RSA key maker

    (tmp_path / "id_rsa").write_text(rsa_key_text())
    from sandbox import generate_key_pair

    stranger = generate_key_pair(tmp_path / "stranger-keys").private_key_path
    (tmp_path / "stranger").write_text(stranger.read_text())
    return tmp_path


def refused_url() -> str:
    import socket

    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{unused.getsockname()[1]}"


def encord_objects(sandbox: Sandbox, key_pair: KeyPair) -> tuple[list[str], list[str]]:
    """(Files folder names, Dataset titles) the key's user sees, through the SDK."""
    client = sdk_client(sandbox, key_pair)
    return (
        sorted(folder.name for folder in client.list_storage_folders()),
        sorted(row["dataset"].title for row in client.get_datasets()),
    )


def assert_one_clean_line(outcome: Outcome, says: str, key_pair: KeyPair) -> None:
    assert outcome.code == 2, outcome
    assert outcome.stdout == "", outcome
    assert outcome.stderr.count("\n") == 1 and outcome.stderr.startswith("error: "), outcome
    assert says in outcome.stderr, outcome
    everything = outcome.stdout + outcome.stderr
    assert "Traceback" not in everything
    assert EXTERNAL_ID not in everything
    assert "PRIVATE KEY" not in everything
    key_body = "".join(key_pair.private_key_path.read_text().strip().splitlines()[1:-1])
    assert key_body[:40] not in everything


def substitute(argv: list[str], values: dict[str, str]) -> list[str]:
    return [arg.format(**values) for arg in argv]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input(
    case: Case,
    inputs: Path,
    bucket: Bucket,
    sandbox: Sandbox,
    key_pair: KeyPair,
    capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    fast_retries: None,
) -> None:
    values = {
        "tmp": str(inputs),
        "outputs": str(bucket.outputs),
        "out": str(inputs / "out"),
        "sandbox": sandbox.url,
        "key": str(key_pair.private_key_path),
        "refused": refused_url(),
    }
    if case.after_a_run:
        good = main(["run", *substitute([*SOURCE, *ENCORD], values)])
        assert good == 0, capsys.readouterr()
    before = encord_objects(sandbox, key_pair)
    for name, value in case.env.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value.format(**values))
    capsys.readouterr()

    started = time.monotonic()
    code = main(substitute(case.argv, values))
    seconds = time.monotonic() - started

    captured = capsys.readouterr()
    monkeypatch.undo()
    assert_one_clean_line(Outcome(code, captured.out, captured.err), case.says, key_pair)
    assert encord_objects(sandbox, key_pair) == before
    if not case.after_a_run:
        assert before == ([], [])
    if "unreachable" in case.says:  # a refused endpoint is named in seconds, not minutes
        assert seconds < 10


def test_with_json_an_error_is_also_a_json_object_on_stdout(
    inputs: Path, bucket: Bucket, capsys: pytest.CaptureFixture
) -> None:
    for argv in (
        ["validate", str(inputs / "notjson.json"), "--json"],
        ["schema", "check", str(inputs / "badschema.yaml"), "--json"],
        ["plan", "--outputs", str(inputs / "noslash.json"), "--json"],
        ["plan", "--json", "--bogus"],
    ):
        assert main(argv) == 2
        captured = capsys.readouterr()
        answer = json.loads(captured.out)
        assert answer["exit"] == 2 and answer["error"] in captured.err, argv


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--stack", "dev"], "say which command to run, one of: plan, validate"),
        (["plan", "--outputs", "{tmp}/noslash.json"], "must end with '/'"),
        (["validate", "{tmp}/nowhere.json"], "cannot read manifest"),
        (["schema", "check", "{tmp}/badschema.yaml"], "badschema.yaml"),
    ],
)
def test_bad_input_in_a_subprocess(inputs: Path, argv: list[str], says: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ingest", *substitute(argv, {"tmp": str(inputs)})],
        capture_output=True,
        text=True,
        cwd=inputs,
        env={**os.environ, "ENCORD_SSH_KEY": "", "PYTHONPATH": str(REPO)},
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and says in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
