"""A local AWS: moto in server mode, in its own process.

moto keeps its authorization switch and request counter in process-wide globals, so each
server runs in a child process: a test can turn IAM authorization on for one server without
touching another. `start_local_aws()` starts one and returns its endpoint; `python -m
standins.local_aws` runs one in the foreground.

With `iam_auth=True` the server starts open, `bootstrap_admin()` creates an administrator
with access keys, and `enable_iam_auth()` turns enforcement on: from then on every request
must be signed by an IAM principal whose policies allow it, trust policies are evaluated on
AssumeRole, and a role's permission policy is evaluated on each S3 call.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import boto3
import requests

ACCOUNT_ID = "123456789012"  # moto's default account
REGION = "us-east-1"
_READY = "local AWS listening on "


def _patch_missing_condition_keys() -> None:
    """Make moto deny a trust-policy condition whose context key is absent, as AWS does.

    moto 5.2.5 evaluates `StringEquals {"sts:ExternalId": ...}` only over the keys the
    request carries, so an AssumeRole *without* an ExternalId passes the condition. AWS
    treats a missing key as a non-match. Without this, the stand-in would let a confused
    deputy through that real AWS stops.
    """
    from moto.iam import policy_conditions

    original = policy_conditions.TrustCondition.verify_condition

    def verify_condition(self, actual_values: list[str]) -> bool:
        supported = self._condition in policy_conditions.CONDITION_OPERATIONS
        if supported and len(actual_values) < len(self.context_keys):
            return False
        return original(self, actual_values)

    setattr(policy_conditions.TrustCondition, "verify_condition", verify_condition)  # noqa: B010


def serve(port: int = 0) -> None:
    os.environ.setdefault("S3_IGNORE_SUBDOMAIN_BUCKETNAME", "true")
    _patch_missing_condition_keys()
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    host, bound = server.get_host_and_port()
    print(f"{_READY}http://{host}:{bound}", flush=True)
    thread = server._thread
    assert thread is not None  # start() has started it
    try:
        thread.join()  # until killed
    except KeyboardInterrupt:
        server.stop()


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str

    def client_kwargs(self) -> dict[str, str]:
        return {
            "aws_access_key_id": self.access_key_id,
            "aws_secret_access_key": self.secret_access_key,
        }

    def env(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
        }


# Before IAM auth is on, moto accepts any key; these are what boto3 signs with then.
ANONYMOUS = Credentials("testing", "testing")


@dataclass(frozen=True)
class LocalAws:
    endpoint_url: str
    process: subprocess.Popen

    def client(self, service: str, credentials: Credentials = ANONYMOUS, **kwargs):
        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            **credentials.client_kwargs(),
            **kwargs,
        )

    def create_user(self, name: str, policy: dict) -> Credentials:
        """An IAM user with an inline policy and an access key (call before auth is on, or as admin)."""
        return self._create_user(self.client("iam"), name, policy)

    @staticmethod
    def _create_user(iam, name: str, policy: dict) -> Credentials:
        iam.create_user(UserName=name)
        iam.put_user_policy(
            UserName=name, PolicyName=f"{name}-policy", PolicyDocument=json.dumps(policy)
        )
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return Credentials(key["AccessKeyId"], key["SecretAccessKey"])

    def bootstrap_admin(self, name: str = "admin") -> Credentials:
        allow_all = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
        }
        return self.create_user(name, allow_all)

    def enable_iam_auth(self) -> None:
        response = requests.post(f"{self.endpoint_url}/moto-api/reset-auth", data=b"0", timeout=10)
        response.raise_for_status()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_local_aws() -> LocalAws:
    """Start moto on a free loopback port in a child process and wait until it serves."""
    process = subprocess.Popen(
        [sys.executable, "-m", "standins.local_aws"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    line = process.stdout.readline() if process.stdout else ""
    if not line.startswith(_READY):
        process.kill()
        raise RuntimeError(f"local AWS (moto) did not start: {line!r}")
    return LocalAws(endpoint_url=line[len(_READY) :].strip(), process=process)


@contextmanager
def local_aws() -> Iterator[LocalAws]:
    aws = start_local_aws()
    try:
        yield aws
    finally:
        aws.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="Run moto (local AWS) on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=0)
    serve(parser.parse_args().port)


if __name__ == "__main__":
    main()
