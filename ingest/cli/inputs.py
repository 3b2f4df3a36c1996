"""What the Encord-facing commands share: where the import goes, and the run state."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ingest.cli.options import settings_overrides
from ingest.errors import UserError
from ingest.settings import IngestSettings, load_settings
from ingest.state import STATE_FILE, RunState


@dataclass(frozen=True)
class Target:
    """Where the import goes, named by the settings."""

    integration: str | None  # only the commands that upload need it
    folder: str
    dataset: str


def target_names(settings: IngestSettings) -> Target:
    folder, dataset = settings.folder, settings.dataset
    if not folder or not dataset:
        missing = [
            flag
            for flag, value in (("--folder NAME", folder), ("--dataset TITLE", dataset))
            if not value
        ]
        raise UserError(
            f"say where to import: {' and '.join(missing)} (or the same keys in the stack's ingest config)"
        )
    return Target(settings.integration, folder, dataset)


def settings_only(args: argparse.Namespace) -> IngestSettings:
    """Settings without the stack's outputs: status and verify never read the bucket."""
    return load_settings(args.stack, args.config, settings_overrides(args))


@contextmanager
def existing_state(out: Path, exclusive: bool = False) -> Iterator[RunState]:
    path = out / STATE_FILE
    if not path.exists():
        raise UserError(
            f"no run state in {out}: run `python -m ingest run` (with the same --out) first"
        )
    with RunState(path, exclusive) as state:
        yield state


def latest_scan(state: RunState, folder: str, out: Path) -> int:
    scan = state.latest_scan(folder)
    if scan is None:
        raise UserError(
            f"no finished scan for folder {folder!r} in {out}: run `python -m ingest run` first"
        )
    return scan
