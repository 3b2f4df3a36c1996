"""The demo journey, step by step, each step what a user would do against the real cloud."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from demo.samples import SampleObject, png, sample_corpus
from ingest.settings import load_settings
from sandbox.keys import generate_key_pair, write_authorized_keys
from sandbox.server import running_sandbox
from standins import moto_bridge as bridge
from standins.local_aws import ACCOUNT_ID, Credentials, LocalAws, start_local_aws

STACK = "demo"
OUTPUTS_FILE = "stack-outputs.json"
ENCORD_IDENTITY = "encord-sandbox"  # the sandbox's AWS identity: Pulumi.demo.yaml trusts it
# The watch step: one image arriving, a short batch window so it links within seconds.
ARRIVING = SampleObject("images/cats/cat-4.png", png(12, 12, shade=4), "image/png")
WATCH_BATCH_SECONDS = 0.5
WATCH_IDLE_SECONDS = 10  # only if the arrival is never reported: the step stops it itself
ASSUME_ROLE_ONLY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}],
}


def _step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def _fresh(workdir: Path) -> None:
    """Each demo starts from nothing: moto is new, so yesterday's run state would mislead."""
    if workdir.exists():
        if any(workdir.iterdir()) and not (workdir / OUTPUTS_FILE).exists():
            raise SystemExit(
                f"error: {workdir} is not empty and not a demo's output; pick another --workdir"
            )
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)


def _start_aws() -> tuple[LocalAws, Credentials, Credentials]:
    """moto with IAM authorization on: an administrator for us, an identity for Encord."""
    aws = start_local_aws()
    admin = aws.bootstrap_admin()
    encord_identity = aws.create_user(ENCORD_IDENTITY, ASSUME_ROLE_ONLY)
    aws.enable_iam_auth()
    return aws, admin, encord_identity


def _upload_corpus(aws: LocalAws, admin: Credentials, bucket: str) -> Counter:
    s3 = aws.client("s3", admin)
    uploaded: Counter = Counter()
    for sample in sample_corpus():
        s3.put_object(
            Bucket=bucket, Key=sample.key, Body=sample.body, ContentType=sample.content_type
        )
        uploaded[sample.key.rsplit(".", 1)[-1].lower()] += 1
    return uploaded


def _write_outputs(outputs: dict, path: Path) -> None:
    """What `pulumi stack output --json` would give ingest, minus the secret it does not need."""
    public = {key: value for key, value in outputs.items() if key != "externalId"}
    path.write_text(json.dumps(public, indent=2) + "\n")


def run(workdir: Path) -> int:
    started = time.monotonic()
    _fresh(workdir)

    _step("Starting local AWS (moto, IAM authorization on)")
    aws, admin, encord_identity = _start_aws()
    print(f"    {aws.endpoint_url}")
    try:
        _step("Deploying the Pulumi program (stack 'demo') into moto")
        external_id = secrets.token_urlsafe(24)
        outputs = bridge.deploy(
            STACK,
            aws.endpoint_url,
            admin,
            secret_overrides={"externalId": external_id},
        )
        outputs_file = workdir / OUTPUTS_FILE
        _write_outputs(outputs, outputs_file)
        print(f"    role ARN: {outputs['roleArn']}")
        print(f"    bucket:   {outputs['bucketName']}  ({outputs['objectUrlPrefix']})")

        _step(f"Uploading the sample corpus to s3://{outputs['bucketName']}")
        uploaded = _upload_corpus(aws, admin, outputs["bucketName"])
        print(
            f"    {sum(uploaded.values())} objects: "
            + ", ".join(f"{n} .{ext}" for ext, n in sorted(uploaded.items()))
        )

        key_pair = generate_key_pair(workdir / "encord-key")
        authorized_keys = write_authorized_keys(
            workdir / "encord-key" / "authorized_keys", [key_pair]
        )
        _step("Starting the local Encord (sandbox); its AssumeRole goes through moto's IAM")
        with running_sandbox(
            aws_endpoint_url=aws.endpoint_url,
            aws_credentials=(encord_identity.access_key_id, encord_identity.secret_access_key),
            authorized_keys_path=authorized_keys,
            state_path=workdir / "sandbox-state.sqlite",
        ) as sandbox:
            print(f"    {sandbox.url}")
            _step(
                f"Creating the integration '{outputs['integrationTitle']}' (in Encord's web app, for real)"
            )
            sandbox.add_integration(outputs["integrationTitle"], outputs["roleArn"], external_id)

            _step("python -m ingest run")
            command = _IngestCommand(
                aws, admin, sandbox.url, key_pair.private_key_path, outputs_file, workdir
            )
            code = command.run()
            rerun = None
            arrival = None
            if code == 0:
                _step("python -m ingest run --json, again: an unchanged bucket starts no job")
                code, rerun = command.run_json()
            if code == 0:
                _step("python -m ingest watch: one new object arrives through S3 events")
                code, arrival = command.watch_one_arrival(outputs["bucketName"])
        _summary(outputs, workdir, code, rerun, arrival, time.monotonic() - started)
        return code
    finally:
        aws.stop()


@dataclass(frozen=True)
class _IngestCommand:
    """`python -m ingest run` as a user runs it: a new process, configured by the environment."""

    aws: LocalAws
    admin: Credentials
    encord_url: str
    key_path: Path
    outputs_file: Path
    workdir: Path

    def run(self) -> int:
        return subprocess.run(self._command(), env=self._env(), check=False).returncode

    def run_json(self) -> tuple[int, dict | None]:
        done = subprocess.run(
            self._command("--json"),
            env=self._env(),
            check=False,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            return done.returncode, json.loads(done.stdout)
        except json.JSONDecodeError:
            print(done.stdout)
            return done.returncode, None

    def watch_one_arrival(self, bucket: str) -> tuple[int, Arrival | None]:
        """`ingest watch` in the background, one image put into the bucket, and the time
        until the watch reports it linked."""
        command = self._command(
            "--json",
            "--watch-batch-seconds",
            str(WATCH_BATCH_SECONDS),
            "--exit-when-idle",
            str(WATCH_IDLE_SECONDS),
            subcommand="watch",
        )
        watch = subprocess.Popen(command, env=self._env(), stdout=subprocess.PIPE, text=True)
        assert watch.stdout is not None
        lines = iter(watch.stdout)
        arrival = None
        try:
            if _next_line(lines, "reconcile") is None:
                return watch.wait(), None
            put_at = time.monotonic()
            self.aws.client("s3", self.admin).put_object(
                Bucket=bucket,
                Key=ARRIVING.key,
                Body=ARRIVING.body,
                ContentType=ARRIVING.content_type,
            )
            print(f"    put s3://{bucket}/{ARRIVING.key}", flush=True)
            batch = _next_line(lines, "batch", lambda line: line.get("linked", 0) > 0)
            if batch is not None:
                arrival = Arrival(ARRIVING.key, batch["linked"], time.monotonic() - put_at)
                print(f"    linked {arrival.linked} item in {arrival.seconds:.1f} s after the put")
            watch.send_signal(signal.SIGTERM)  # stops at once: no need to wait until idle
            for _ in lines:  # to the `stopped` line
                pass
            code = watch.wait()
        finally:
            if watch.poll() is None:
                watch.kill()
                watch.wait()
        return (code or (0 if arrival else 1)), arrival

    def _command(self, *extra: str, subcommand: str = "run") -> list[str]:
        command = [
            "python",
            "-m",
            "ingest",
            subcommand,
            "--stack",
            STACK,
            "--outputs",
            str(self.outputs_file),
            "--out",
            str(self.workdir / "ingest"),
            *extra,
        ]
        print("    $ " + " ".join(command), flush=True)
        return [sys.executable, *command[1:]]

    def _env(self) -> dict[str, str]:
        env = {
            **os.environ,
            **self.admin.env(),
            "AWS_ENDPOINT_URL": self.aws.endpoint_url,
            "AWS_DEFAULT_REGION": "us-east-1",
            "ENCORD_SSH_KEY_FILE": str(self.key_path),
            "ENCORD_DOMAIN": self.encord_url,
            "NO_PROXY": "127.0.0.1,localhost",
            "PYTHONUNBUFFERED": "1",  # keep the progress line and the summary in order
        }
        env.pop("AWS_PROFILE", None)
        return env


@dataclass(frozen=True)
class Arrival:
    """The demo's object that came through `ingest watch`."""

    key: str
    linked: int
    seconds: float  # put → reported linked


def _next_line(
    lines: Iterator[str], event: str, matches: Callable[[dict], bool] = lambda line: True
) -> dict | None:
    """The watch's next JSON line of that event which `matches`; None if it stopped first."""
    for text in lines:
        line = json.loads(text)
        if line["event"] == event and matches(line):
            return line
        if line["event"] == "stopped":
            return None
    return None


def _summary(
    outputs: dict,
    workdir: Path,
    code: int,
    rerun: dict | None,
    arrival: Arrival | None,
    seconds: float,
) -> None:
    _step("Summary")
    settings = load_settings(STACK, None, {})
    print(f"    role ARN:     {outputs['roleArn']}")
    print(
        f"                  trusted by arn:aws:iam::{ACCOUNT_ID}:user/{ENCORD_IDENTITY} (the sandbox) with the external ID only"
    )
    print(f"    Files folder: {settings.folder}")
    print(f"    Dataset:      {settings.dataset}")
    if rerun:
        scan, verify = rerun["scan"], rerun["verify"]
        print(
            "    per type:     " + ", ".join(f"{kind} {n}" for kind, n in scan["entries"].items())
        )
        unsupported = scan["unsupported"]
        print(
            f"    failures:     {rerun['failedUnits']['count']} failed unit(s); "
            f"{unsupported['count']} unsupported object(s) not imported"
            + (
                f" ({', '.join(item['key'] for item in unsupported['sample'])})"
                if unsupported["sample"]
                else ""
            )
        )
        print(
            f"    verify:       {verify['rows']} data rows, {verify['missing']} missing, {verify['extra']} extra"
            f"; the rerun started {len(rerun['jobsStarted'])} job(s) and linked {rerun['linked']}"
        )
    if arrival:
        print(
            f"    watch:        {arrival.key} put into the bucket, linked through S3 events"
            f" in {arrival.seconds:.1f} s"
        )
    print(
        f"    result:       {'OK, every planned file is in the Dataset' if code == 0 else f'FAILED (exit {code})'}"
    )
    print(
        f"    everything written under {workdir}/ (stack outputs, manifests, run state, reports, sandbox state)"
    )
    print(f"    took {seconds:.1f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__)
    parser.add_argument(
        "--workdir", type=Path, default=Path("demo-output"), help="where everything is written"
    )
    args = parser.parse_args(argv)
    return run(args.workdir)
