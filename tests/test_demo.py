"""`make demo` end to end: the journey the README promises a newcomer."""

from __future__ import annotations

import json
import re

from demo.journey import ARRIVING, OUTPUTS_FILE, run
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
    assert "==> python -m ingest watch: one new object arrives through S3 events" in printed
    arrived = re.search(r"linked 1 item in (\d+\.\d) s after the put", printed)
    assert arrived and float(arrived[1]) < 30, printed
    assert f"watch:        {ARRIVING.key} put into the bucket, linked through S3 events" in printed
    manifests = [
        json.loads(path.read_text())
        for path in (workdir / "ingest" / "uploads").glob("*/manifest-*.json")
    ]
    # The first run's, and the watch's for the one arrival: the unchanged rerun and the
    # watch's start-up reconcile uploaded nothing.
    assert len(manifests) == 2, manifests
    kinds = [{kind for kind in KINDS if manifest.get(kind)} for manifest in manifests]
    assert set(KINDS) in kinds
    [arrival] = [manifest for manifest in manifests if len(manifest.get("images", [])) == 1]
    assert arrival["images"][0]["title"] == ARRIVING.key
    assert (workdir / "sandbox-state.sqlite").exists()
