"""`make demo` end to end: the journey the README promises a newcomer."""

from __future__ import annotations

import json

from demo.journey import OUTPUTS_FILE, run
from ingest.encord_format import KINDS


def test_the_demo_imports_every_data_type_and_verifies(tmp_path, capsys):
    workdir = tmp_path / "demo-output"

    assert run(workdir) == 0

    captured = capsys.readouterr()
    printed = captured.out + captured.err
    assert "LOCAL STAND-IN for `pulumi up`" in printed
    assert "OK, every planned file is in the Dataset" in printed
    outputs = json.loads((workdir / OUTPUTS_FILE).read_text())
    assert outputs["roleArn"].endswith(":role/encord-s3-demo")
    assert "externalId" not in outputs
    manifests = sorted((workdir / "ingest" / "uploads").glob("*/manifest-*.json"))
    assert len(manifests) == 1, "the unchanged rerun must not have uploaded again"
    manifest = json.loads(manifests[0].read_text())
    assert {kind for kind in KINDS if manifest.get(kind)} == set(KINDS)
    assert (workdir / "sandbox-state.sqlite").exists()
