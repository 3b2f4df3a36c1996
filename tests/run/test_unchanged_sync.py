"""A sync that the run state proves changes nothing (`ingest.cli.run_scan`): Encord is asked
only what a child process looks up meanwhile (`ingest.encord.ahead`), the SDK is never
imported, and the run reports exactly what the steps would have."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ingest.cli import run_scan
from ingest.encord import ahead
from ingest.errors import UserError
from sandbox import KeyPair, Sandbox
from tests.run.support import Bucket, Ingest, dataset_titles, jobs_started, run_arguments

# `python -m ingest …` in a fresh interpreter that says, on its last line, which encord
# modules it imported.
_IMPORTS_REPORTED = (
    "import sys\n"
    "from ingest.cli.main import main\n"
    "code = main(sys.argv[1:])\n"
    "print(sorted(m for m in sys.modules if m.split('.')[0] == 'encord'))\n"
    "raise SystemExit(code)\n"
)


def _summary(outcome_stdout: str) -> dict:
    return json.loads(outcome_stdout)


def test_an_unchanged_sync_reports_what_the_steps_report(
    encord_ingest: Ingest, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert encord_ingest("run").code == 0
    from ingest.cli import run_steps

    def refused(*args: object) -> int:
        raise AssertionError("the steps ran for an unchanged sync")

    with monkeypatch.context() as patched:
        patched.setattr(run_steps, "sync_changes", refused)
        unchanged = encord_ingest("run", "--json")
    # The same rerun with the child's answers lost: the steps look everything up again.
    monkeypatch.setattr(ahead.LookupsAhead, "answers", lambda self: None)
    stepped = encord_ingest("run", "--json")

    assert unchanged.code == stepped.code == 0, unchanged.stderr + stepped.stderr
    assert _summary(unchanged.stdout) == _summary(stepped.stdout)
    assert _summary(unchanged.stdout)["verify"]["compared"] is False


def test_an_unchanged_sync_imports_no_encord_module_and_asks_three_questions(
    encord_ingest: Ingest, sandbox: Sandbox, key_pair: KeyPair, bucket: Bucket, tmp_path: Path
) -> None:
    assert encord_ingest("run").code == 0
    command = [
        *run_arguments("run", bucket, tmp_path / "out"),
        *("--encord-domain", sandbox.url, "--ssh-key-file", str(key_pair.private_key_path)),
    ]
    before = len(sandbox.exchanges())

    rerun = subprocess.run(
        [sys.executable, "-c", _IMPORTS_REPORTED, *command], capture_output=True, text=True
    )

    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert rerun.stdout.splitlines()[-1] == "[]"  # this process never imported the SDK
    asked = [e.path.split("?")[0] for e in sandbox.exchanges()[before:]]
    # The child's look-ups (the integration, the folder, the Dataset's hash), nothing else.
    assert len(asked) == 3, asked
    assert sum("integrations" in path for path in asked) == 1, asked
    assert asked.count("/v2/public/storage/folders") == 1, asked
    assert sum(path.endswith("datasets/list") for path in asked) == 1, asked


def test_a_rerun_whose_integration_is_not_visible_fails_in_one_line_and_changes_nothing(
    encord_ingest: Ingest, sandbox: Sandbox, tmp_path: Path
) -> None:
    assert encord_ingest("run").code == 0
    latest = _latest_scan(tmp_path / "out")
    before = len(sandbox.exchanges())

    outcome = encord_ingest("run", "--integration", "Someone else's")

    assert outcome.code == 2
    [line] = outcome.stderr.strip().splitlines()
    assert "visible to this key's user" in line and "ask its owner to share it" in line
    assert not [e for e in sandbox.exchanges()[before:] if e.method != "GET"]
    assert _latest_scan(tmp_path / "out") == latest  # the scan it began never finished


def test_a_sync_into_a_dataset_that_does_not_exist_yet_goes_through_the_steps(
    encord_ingest: Ingest, sandbox: Sandbox, key_pair: KeyPair
) -> None:
    assert encord_ingest("run").code == 0
    imported = dataset_titles(sandbox, key_pair)
    jobs = len(jobs_started(sandbox))

    other = encord_ingest("run", "--dataset", "Another", "--json")

    assert other.code == 0, other.stdout + other.stderr
    assert other.json()["linked"] == len(imported)
    assert other.json()["verify"]["dataset"] == "Another"
    assert other.json()["verify"]["compared"] is True
    assert len(jobs_started(sandbox)) == jobs  # nothing uploaded again


def test_the_child_answers_or_says_the_users_error(
    sandbox: Sandbox, key_pair: KeyPair, encord_ingest: Ingest
) -> None:
    assert encord_ingest("run").code == 0
    request = {
        "domain": sandbox.url,
        "keyFile": str(key_pair.private_key_path),
        "integration": next(iter(sandbox_integration_titles(sandbox, key_pair))),
        "roleArn": None,
        "schema": None,
        "folder": "imports",
        "dataset": "Imported",
    }

    answered = ahead.serve(request)
    missing = ahead.serve({**request, "folder": "nowhere", "dataset": "none"})
    refused = ahead.serve({**request, "integration": "Someone else's"})

    assert answered["folderUuid"] and answered["datasetHash"] and answered["integrationId"]
    assert missing["folderUuid"] is None and missing["datasetHash"] is None
    assert "visible to this key's user" in refused["error"]


def sandbox_integration_titles(sandbox: Sandbox, key_pair: KeyPair) -> list[str]:
    from tests.run.support import sdk_client

    return [
        integration.title for integration in sdk_client(sandbox, key_pair).get_cloud_integrations()
    ]


def _latest_scan(out: Path) -> int | None:
    from ingest.state import RunState

    with RunState.in_directory(out) as state:
        return state.latest_scan("imports")


def test_a_refusal_is_raised_while_the_scan_runs_once_the_child_has_said_it(
    sandbox: Sandbox, key_pair: KeyPair, encord_ingest: Ingest
) -> None:
    assert encord_ingest("run").code == 0
    with ahead.lookups_ahead(
        domain=sandbox.url,
        key_file=key_pair.private_key_path,
        integration="Someone else's",
        role_arn=None,
        schema=None,
        folder="imports",
        dataset="Imported",
    ) as child:
        child.raise_if_refused()  # not answered yet (the SDK takes a while): no wait, no error
        checked = run_scan._checked(iter(range(5)), child.raise_if_refused, every=2)
        assert next(checked) == 0
        child._process.wait(timeout=60)  # it has answered
        with pytest.raises(UserError, match="visible to this key's user"):
            list(checked)


def test_the_child_started_ahead_is_taken_by_a_sync_and_ended_before_a_first_syncs_steps(
    encord_ingest: Ingest, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ingest.cli import run_steps

    started: list[ahead.LookupsAhead] = []
    original_init = ahead.LookupsAhead.__init__

    def recorded(self: ahead.LookupsAhead) -> None:
        original_init(self)
        started.append(self)

    monkeypatch.setattr(ahead.LookupsAhead, "__init__", recorded)
    first_run = run_steps.run

    def first_sync(*args: object) -> int:
        [child] = started  # started ahead by `main`, for `run`
        assert ahead._ahead.waiting is None and child._process.poll() is not None  # already ended
        return first_run(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(run_steps, "run", first_sync)
    assert encord_ingest("run").code == 0

    assert encord_ingest("run").code == 0  # a sync: it takes the one started ahead
    assert len(started) == 2 and ahead._ahead.waiting is None
    assert started[1]._process.returncode == 0  # it answered, and exited
