"""`ingest run` applies the settings' metadata schema before any upload job starts, merge-safe
as `ingest schema apply`, and only posts it when something changed: checked through the SDK
against the sandbox."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from sandbox import KeyPair, Sandbox
from tests.run.support import Ingest, jobs_started, sdk_client

REPO = Path(__file__).resolve().parents[2]
DEMO_SCHEMA = REPO / "demo/metadata-schema.yaml"
SCHEMA_ROUTE = "/v2/public/organisation/client-metadata-schema-v2"


def demo_settings(tmp_path: Path) -> Path:
    """Pulumi.demo.yaml's ingest settings as a --config file (its schema path made absolute)."""
    stack = yaml.safe_load((REPO / "Pulumi.demo.yaml").read_text())
    settings = {**stack["config"]["encord-s3:ingest"], "metadataSchema": str(DEMO_SCHEMA)}
    config = tmp_path / "ingest.json"
    config.write_text(json.dumps(settings))
    return config


def schema_saves(sandbox: Sandbox) -> int:
    return sum(
        exchange.method == "POST" and exchange.path == SCHEMA_ROUTE
        for exchange in sandbox.exchanges()
    )


def test_run_applies_the_schema_before_uploading_and_a_rerun_leaves_it(
    encord_ingest: Ingest, sandbox: Sandbox, key_pair: KeyPair, tmp_path: Path
) -> None:
    config = demo_settings(tmp_path)

    outcome = encord_ingest("run", "--config", str(config), "--json")

    assert outcome.code == 0, outcome.stdout + outcome.stderr
    assert outcome.json()["schema"] == {
        "file": str(DEMO_SCHEMA),
        "keys": 2,
        "changes": ["added 'camera' (enum)", "added 'captured_at' (datetime)"],
    }
    stored = sdk_client(sandbox, key_pair).metadata_schema()
    assert sorted(stored.keys()) == ["camera", "captured_at"]
    assert stored.get_enum_options("camera") == ["front", "rear"]
    assert stored.get_key_type("captured_at") == "datetime"
    posts = [exchange.path for exchange in sandbox.exchanges() if exchange.method == "POST"]
    first_job = next(i for i, path in enumerate(posts) if path.endswith("/data-upload-jobs"))
    assert posts.index(SCHEMA_ROUTE) < first_job

    rerun = encord_ingest("run", "--config", str(config))

    assert rerun.code == 0, rerun.stdout + rerun.stderr
    assert f"schema: unchanged (Encord already has the 2 keys of {DEMO_SCHEMA})" in (
        rerun.stdout.splitlines()
    )
    assert schema_saves(sandbox) == 1


def test_a_schema_conflict_stops_the_run_before_anything_is_uploaded(
    encord_ingest: Ingest, sandbox: Sandbox, key_pair: KeyPair, tmp_path: Path
) -> None:
    existing = sdk_client(sandbox, key_pair).metadata_schema()
    existing.add_scalar("camera", data_type="varchar")
    existing.save()

    outcome = encord_ingest("run", "--config", str(demo_settings(tmp_path)))

    assert outcome.code == 2
    assert outcome.stderr.count("\n") == 1
    assert "'camera' is varchar in Encord but enum" in outcome.stderr
    assert jobs_started(sandbox) == [] and schema_saves(sandbox) == 1  # only ours above
    assert not (tmp_path / "out").exists()  # not even scanned


def test_an_enum_the_sdk_cannot_hold_is_refused_in_one_line(
    encord_ingest: Ingest, sandbox: Sandbox, key_pair: KeyPair, tmp_path: Path
) -> None:
    existing = sdk_client(sandbox, key_pair).metadata_schema()
    existing.add_enum("camera", values=[f"old-{i}" for i in range(200)])
    existing.save()
    schema = tmp_path / "schema.yaml"
    schema.write_text(
        yaml.safe_dump({"camera": {"type": "enum", "values": list(map(str, range(60)))}})
    )

    outcome = encord_ingest("run", "--metadata-schema", str(schema))

    assert outcome.code == 2
    assert outcome.stderr == (
        f"error: the SDK refused the metadata schema from {schema}: "
        "Cannot provide more than 256 values\n"
    )
    assert len(sdk_client(sandbox, key_pair).metadata_schema().get_enum_options("camera")) == 200
