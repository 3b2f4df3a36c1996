"""`ingest verify`: the Dataset against the latest scan (Encord's guide, Step 9)."""

from __future__ import annotations

import argparse

from ingest.cli.inputs import existing_state, latest_scan, settings_only, target_names
from ingest.cli.render import print_result
from ingest.encord.client import connect
from ingest.encord.verify import verify

EXIT_DIFFERENCES = 1


def verify_command(args: argparse.Namespace) -> int:
    settings = settings_only(args)
    names = target_names(settings)
    client = connect(settings.encord_domain, args.ssh_key_file)
    with existing_state(settings.output_dir) as state:
        scan = latest_scan(state, names.folder, settings.output_dir)
        dataset = client.dataset(names.dataset)
        verification = verify(client, state, dataset, names.folder, scan, settings.output_dir)
    summary = {**verification.to_json(), "fileLinks": verification.file_links}
    print_result(
        args,
        summary,
        lambda: "\n".join([*verification.file_links, verification.summary()]),
    )
    return 0 if verification.exact else EXIT_DIFFERENCES
