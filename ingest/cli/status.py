"""`ingest status JOB`: one upload job's state, as Encord's guide's Step 6 prints it.
Read-only: it opens the job's folder by its uuid and creates nothing."""

from __future__ import annotations

import argparse

from encord.orm.dataset import LongPollingStatus

from ingest.cli.inputs import existing_state, settings_only
from ingest.cli.render import print_result
from ingest.encord.client import connect
from ingest.errors import UserError

STATUS_WAIT_SECONDS = 5  # as the guide's Step 6 script


def status_command(args: argparse.Namespace) -> int:
    settings = settings_only(args)
    client = connect(settings.encord_domain, args.ssh_key_file)
    with existing_state(settings.output_dir) as state:
        job = state.job(args.job)
    if job is None:
        raise UserError(
            f"upload job {args.job} is not in {settings.output_dir}: "
            "pass the --out (or --config/--stack) of the run that started it"
        )
    result = client.poll_upload(
        client.folder_by_uuid(job["folder_uuid"]), args.job, STATUS_WAIT_SECONDS
    )
    failed_urls = [url for unit in result.unit_errors for url in unit.object_urls]
    if result.status not in (LongPollingStatus.PENDING, LongPollingStatus.DONE):
        raise UserError(f"Upload failed: {result.errors}")
    summary = {
        "job": args.job,
        "status": result.status.value,
        "unitsDone": result.units_done_count,
        "unitsPending": result.units_pending_count,
        "unitsFailed": result.units_error_count,
        "failedUrls": failed_urls,
    }

    def human() -> str:
        if result.status == LongPollingStatus.PENDING:
            return "Upload is still in progress, try again later!"
        lines = ["Upload completed"]
        if result.unit_errors:
            lines.append("The following URLs failed to upload:")
            lines += [str(unit.object_urls) for unit in result.unit_errors]
        return "\n".join(lines)

    print_result(args, summary, human)
    return 0
