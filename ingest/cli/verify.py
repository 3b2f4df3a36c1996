"""`ingest verify`: the Dataset against the latest scan (Encord's guide, Step 9). Read-only:
a Dataset that isn't there is an error, never created."""

from __future__ import annotations

import argparse

from ingest.cli.inputs import existing_state, latest_scan, settings_only, target_names
from ingest.cli.progress import Feedback
from ingest.cli.render import print_result
from ingest.encord.client import connect
from ingest.encord.verify import verify
from ingest.errors import EXIT_DIFFERENCES, EXIT_EXACT, UserError


def verify_command(args: argparse.Namespace) -> int:
    feedback = Feedback.from_args(args)
    settings = settings_only(args)
    names = target_names(settings)
    client = connect(settings.encord_domain, args.ssh_key_file)
    with existing_state(settings.output_dir) as state:
        scan = latest_scan(state, names.folder, settings.output_dir)
        dataset = client.find_dataset(names.dataset)
        if dataset is None:
            raise UserError(
                f"Encord has no Dataset titled {names.dataset!r} that this key's user can see: "
                "check --dataset; Encord shows each user only the Datasets they created or "
                "were given, so ask its owner to share it with you"
            )
        feedback.step(f"comparing Dataset {names.dataset!r} with scan {scan}")
        try:
            verification = verify(
                client,
                state,
                dataset,
                names.folder,
                scan,
                settings.output_dir,
                lambda rows: feedback.counted(rows, "verifying", "rows"),
            )
        finally:
            feedback.close()
        links = list(state.file_links(verification.folder_uuid)) if args.links else []
    summary = verification.to_json()
    lines = [verification.summary()]
    if args.links:
        summary["fileLinks"] = links
        lines = [*links, *lines]
    print_result(args, summary, lambda: "\n".join(lines))
    return EXIT_EXACT if verification.exact else EXIT_DIFFERENCES
