"""What the Encord-facing commands share: where the import goes, an upload command's checked
inputs, and the run state."""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ingest.cli.options import settings_overrides
from ingest.cli.progress import Feedback
from ingest.context import PlanContext, check_context, load_context
from ingest.errors import UserError
from ingest.outputs import StackOutputs
from ingest.plan.schema import MetadataSchema, load_schema
from ingest.settings import GroupRule, IngestSettings, load_settings
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


@dataclass(frozen=True)
class UploadInputs:
    """What an upload command (`run`, `retry`, `watch`) checks before it connects to Encord."""

    context: PlanContext
    names: Target
    integration: str
    schema: tuple[Path, MetadataSchema] | None  # the settings' metadata schema, read
    key_file: Path | None  # --ssh-key-file
    feedback: Feedback


def check_upload_inputs(args: argparse.Namespace) -> UploadInputs:
    """Settings, outputs, the output directory, the metadata schema and the bucket, checked
    without Encord (and without importing its SDK)."""
    feedback = Feedback.from_args(args)
    context = load_context(args)
    for warning in context.warnings:
        feedback.warn(warning)
    names = target_names(context.settings)
    if not names.integration:
        raise UserError(
            "say which Encord integration reads the bucket: --integration TITLE "
            "(or the stack output integrationTitle, or `integration` in the ingest config)"
        )
    require_write_access(context.settings.groups, context.outputs)
    path = context.settings.metadata_schema
    schema = (path, load_schema(path)) if path else None
    check_context(context)
    feedback.step(
        f"s3://{context.outputs.bucket_name} answers; output directory "
        f"{context.settings.output_dir} is writable"
    )
    return UploadInputs(context, names, names.integration, schema, args.ssh_key_file, feedback)


def require_write_access(groups: Iterable[GroupRule], outputs: StackOutputs) -> None:
    """Refuse, before anything is sent, a sync whose settings make image sequences unless the
    stack grants Encord write access (`allowWrite`): Encord writes a sequence's video into the
    bucket."""
    rule = next((rule for rule in groups if rule.as_ == "imageSequence"), None)
    if rule is None or outputs.allow_write:
        return
    why = (
        "which the stack does not grant (allowWrite is false)"
        if outputs.allow_write is False
        else f"and {outputs.source} has no allowWrite output (a stack from before it)"
    )
    raise UserError(
        f"groups rule {rule.folders!r} makes image sequences, which need Encord to write "
        f"their video into the bucket, {why}: run `pulumi config set encord-s3:allowWrite "
        "true` and `pulumi up`, or use `as: imageGroup` (no write access needed)"
    )


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
