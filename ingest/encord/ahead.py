"""What a sync asks Encord before it can tell that nothing changed, asked by a child process
while this one scans the bucket.

A rerun of a folder mirrored before (`ingest run`) that finds nothing changed needs from
Encord only: the integration (checked as `prepare_upload` checks it), whether the metadata
schema needs anything, and which Files folder and Dataset carry the settings' names. The
encord SDK's import is most of what such a rerun does beyond `ingest plan`, and one process
runs Python on one core at a time: so a child process (`python -m ingest.encord.ahead`)
imports the SDK and asks, the scan runs meanwhile, and when the run state proves nothing
changed (`ingest.cli.run_scan`) this process never imports the SDK at all.

The request (the settings' Encord domain, the key's file as given, names; never a key) goes
on the child's stdin, its answer is one JSON line on stdout. A check the child fails is the
user's error, raised here with the child's message as soon as it is seen (`raise_if_refused`,
called while the scan runs). Any other failure of the child is not: the run then asks Encord
itself, as it does when something changed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ingest.errors import UserError
from ingest.listing.process import child_environment
from ingest.started_ahead import StartedAhead


@dataclass(frozen=True)
class Answers:
    integration_id: str
    schema_changes: list[str] | None  # what applying the settings' schema would change
    folder_uuid: str | None  # None: no Files folder of that name
    dataset_hash: str | None  # None: no Dataset of that title


class LookupsAhead:
    """The child asking Encord (`serve`): started, it imports the SDK, then waits for its
    request (`ask`)."""

    def __init__(self) -> None:
        self._errors: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 (closed by `close`)
        self._process = subprocess.Popen(
            [sys.executable, "-m", "ingest.encord.ahead"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._errors,
            env=child_environment(),
        )
        self._answer: dict[str, Any] | None = None

    def ask(self, request: dict[str, Any]) -> None:
        stdin = self._process.stdin
        assert stdin is not None  # a pipe
        try:
            stdin.write(json.dumps(request).encode())
            stdin.close()
        except OSError:  # the child is gone: `answers` says None
            pass

    def raise_if_refused(self) -> None:
        """Raise the child's UserError if it has answered with one (does not wait)."""
        if self._answer is None and self._process.poll() is not None:
            self._read()

    def answers(self) -> Answers | None:
        """The child's answers, waited for; None if it failed other than by a UserError."""
        if self._answer is None:
            self._process.wait()
            self._read()
        answer = self._answer or {}
        if "integrationId" not in answer:
            return None
        return Answers(
            answer["integrationId"],
            answer["schemaChanges"],
            answer["folderUuid"],
            answer["datasetHash"],
        )

    def _read(self) -> None:
        stdout = self._process.stdout
        assert stdout is not None  # a pipe
        try:
            answer = json.loads(stdout.read() or b"{}")
        except ValueError:
            answer = {}
        self._answer = answer if isinstance(answer, dict) else {}
        if "error" in self._answer:
            raise UserError(self._answer["error"])

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        for stream in (self._process.stdout, self._errors):
            if stream is not None:
                stream.close()


# A child started ahead (`started_ahead`), not taken yet.
_ahead: StartedAhead[LookupsAhead] = StartedAhead(LookupsAhead, LookupsAhead.close)


@contextmanager
def started_ahead() -> Iterator[None]:
    """The child started now, importing the SDK while the command starts up, for the next
    `lookups_ahead` to take; ended on the way out if none took it."""
    with _ahead.started():
        yield


def end_ahead() -> None:
    """End the child started ahead, if not taken (the run is no sync: it asks itself)."""
    _ahead.end()


@contextmanager
def lookups_ahead(
    *,
    domain: str | None,
    key_file: Path | None,
    integration: str,
    role_arn: str | None,
    schema: Path | None,
    folder: str,
    dataset: str,
) -> Iterator[LookupsAhead]:
    """The child (the one started ahead, or a new one) asking what `prepare_upload` and a
    sync's look-ups ask: the integration for the role, what the schema at `schema` would
    change, the folder's uuid and the Dataset's hash; ended on the way out."""
    ahead = _ahead.take() or LookupsAhead()
    ahead.ask(
        {
            "domain": domain,
            "keyFile": str(key_file) if key_file else None,
            "integration": integration,
            "roleArn": role_arn,
            "schema": str(schema) if schema else None,
            "folder": folder,
            "dataset": dataset,
        }
    )
    try:
        yield ahead
    finally:
        ahead.close()


def serve(request: dict[str, Any]) -> dict[str, Any]:
    """The child's side: the answers, or {"error": the UserError's message}."""
    from ingest.encord.client import connect
    from ingest.encord.schema_sync import apply
    from ingest.plan.schema import load_schema

    try:
        key_file = request["keyFile"]
        client = connect(request["domain"], Path(key_file) if key_file else None)
        integration_id = client.integration_id(request["integration"], request["roleArn"])
        changes = None
        if request["schema"]:
            path = Path(request["schema"])
            changes = apply(client, load_schema(path), str(path), save=False)
        folder = client.find_folder(request["folder"])
        return {
            "integrationId": integration_id,
            "schemaChanges": changes,
            "folderUuid": str(folder.uuid) if folder is not None else None,
            "datasetHash": client.find_dataset_hash(request["dataset"]),
        }
    except UserError as error:
        return {"error": str(error)}


if __name__ == "__main__":
    # Its answers are needed only once the scan is over: the scan and the listing, which
    # this child's import would otherwise slow down on a busy machine, come first.
    os.nice(10)
    from ingest.encord import client  # noqa: F401 (the SDK, imported while the request comes)
    from ingest.exit import exit_now
    from ingest.pipes import whole_writes

    request = sys.stdin.buffer.read()
    if request:  # none: the command had no use for the child
        with whole_writes() as out:
            out.write(json.dumps(serve(json.loads(request))).encode())
    exit_now(0)
