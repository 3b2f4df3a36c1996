"""Run the sandbox: an HTTP server on a background thread, or in the foreground (`cli`).

`running_sandbox(...)` is what tests and the demo use:

    with running_sandbox(aws_endpoint_url=aws.endpoint_url,
                         authorized_keys_path=keys_file) as sandbox:
        integration_id = sandbox.add_integration("bucket", role_arn, external_id)
        client = EncordUserClient.create_with_ssh_private_key(
            ssh_private_key_path=key.private_key_path, domain=sandbox.url)
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sandbox.app import App, Exchange
from sandbox.auth import Authenticator
from sandbox.catalog import Catalog, Shareable
from sandbox.errors import ApiError, invalid
from sandbox.faults import Faults
from sandbox.jobs import Jobs
from sandbox.keys import KeyPair, load_authorized_keys
from sandbox.readings import Readings, ReadingsHolder
from sandbox.routes.common import Services
from sandbox.s3_access import AwsCredentials, S3Gateway
from sandbox.state import Store

DEFAULT_LONG_POLL_CAP_SECONDS = 5.0
logger = logging.getLogger("sandbox")


@dataclass(frozen=True)
class IntegrationSeed:
    """An integration to create at start-up, as if a user had made it in Encord's web app."""

    title: str
    role_arn: str
    external_id: str


class _HttpHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HttpServer

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw_body = self.rfile.read(length) if length else b""
        headers = {name: value for name, value in self.headers.items()}
        response = self.server.app.handle(self.command, self.path, headers, raw_body)
        payload = response.encoded()
        self.send_response(response.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in response.headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s - %s", self.address_string(), format % args)


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: App):
        super().__init__(address, _HttpHandler)
        self.app = app

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gives up on a held long poll is normal, not a server error.
        if isinstance(sys.exc_info()[1], ConnectionError):
            logger.debug("client %s went away", client_address)
            return
        super().handle_error(request, client_address)


class Sandbox:
    """A running sandbox. `url` is the `domain` to give the SDK."""

    def __init__(self, server: _HttpServer, app: App, jobs: Jobs, store: Store):
        self._server = server
        self._app = app
        self._jobs = jobs
        self._store = store
        self._closed = False
        host, port = server.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        self.url = f"http://{host}:{port}"
        # Talk to ourselves directly, whatever HTTP(S)_PROXY says.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def serve_forever(self) -> None:
        # A short poll interval makes close() prompt.
        self._server.serve_forever(poll_interval=0.05)

    def add_integration(
        self, title: str, role_arn: str, external_id: str, *, owner: str | None = None
    ) -> str:
        """Create an AWS integration the way a user does in the web app; returns its id.

        `owner` is the user (key comment) who creates it; by default the first key in
        the authorized keys file. Other users see it only once it is shared with them.
        """
        body = {"title": title, "provider": "AWS", "roleArn": role_arn, "externalId": external_id}
        if owner is not None:
            body["owner"] = owner
        return str(self._control("POST", "/sandbox/integrations", body)["integrationUuid"])

    def share(self, kind: str, record_uuid: str, user: str | KeyPair) -> None:
        """Share an integration, folder or dataset (`kind`) with a user (name or key pair)."""
        name = user if isinstance(user, str) else user.name
        body = {"kind": Shareable(kind).value, "uuid": str(record_uuid), "user": name}
        self._control("POST", "/sandbox/shares", body)

    def readings(self) -> Readings:
        """The readings in force (see `sandbox.readings`)."""
        return Readings().replaced(self._control("GET", "/sandbox/readings", None))

    def set_readings(self, **changes: Any) -> Readings:
        """Switch readings at run time, e.g. `set_readings(report_skipped_duplicates=True)`."""
        body = {
            name: list(value) if isinstance(value, tuple) else value
            for name, value in changes.items()
        }
        return Readings().replaced(self._control("PATCH", "/sandbox/readings", body))

    def inject_faults(self, *rules: Mapping[str, Any]) -> None:
        """Add fault rules (see `sandbox.faults` for their shape)."""
        self._control("POST", "/sandbox/faults", {"rules": list(rules)})

    def clear_faults(self) -> None:
        self._control("DELETE", "/sandbox/faults", None)

    def exchanges(self) -> list[Exchange]:
        """Every API response sent so far (not the /sandbox controls)."""
        return self._app.exchanges()

    def close(self) -> None:
        """Stop serving and release the state; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._server.shutdown()
        self._server.server_close()
        self._jobs.shutdown()
        self._store.close()

    def _control(self, method: str, path: str, body: Any) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with self._opener.open(request, timeout=30) as response:
            return json.loads(response.read())


def create_sandbox(
    *,
    aws_endpoint_url: str | None,
    authorized_keys_path: str | os.PathLike,
    aws_credentials: Any = None,
    aws_s3_endpoint_url: str | None = None,
    state_path: str | os.PathLike | None = None,
    integrations: Iterable[IntegrationSeed | tuple[str, str, str]] = (),
    long_poll_cap_seconds: float = DEFAULT_LONG_POLL_CAP_SECONDS,
    host: str = "127.0.0.1",
    port: int = 0,
    record_exchanges: bool = True,
    **readings: Any,
) -> Sandbox:
    """Build and bind a sandbox (not yet serving); unfinished jobs from `state_path` resume.

    `aws_endpoint_url` serves STS (AssumeRole) and S3 Control, and S3 too unless
    `aws_s3_endpoint_url` is given (e.g. a computed bucket beside moto's STS).
    `record_exchanges` keeps every response for `Sandbox.exchanges()` (tests); a long-running
    server (the CLI) turns it off. `readings` are `sandbox.readings.Readings` fields
    (`report_skipped_duplicates=True`, `max_job_entries=5`, ...).
    """
    try:
        chosen = Readings().replaced(readings)
    except ApiError as error:
        raise TypeError(error.message) from error
    users = load_authorized_keys(authorized_keys_path)
    if not users:
        raise invalid(f"{authorized_keys_path} holds no ssh-ed25519 key.")
    default_owner = next(iter(users.values())).name
    store = Store(str(state_path) if state_path else None)
    catalog = Catalog(store)
    for seed in integrations:
        seed = seed if isinstance(seed, IntegrationSeed) else IntegrationSeed(*seed)
        _seed_integration(catalog, seed, default_owner)
    faults = Faults()
    gateway = S3Gateway(aws_endpoint_url, _credentials(aws_credentials), aws_s3_endpoint_url)
    holder = ReadingsHolder(chosen)
    jobs = Jobs(
        catalog,
        gateway,
        holder,
        long_poll_cap_seconds=long_poll_cap_seconds,
        next_job_fault=faults.next_job_fault,
    )
    authenticator = Authenticator(users)
    services = Services(catalog, jobs, holder)
    app = App(services, gateway, authenticator, faults, record_exchanges, default_owner)
    server = _HttpServer((host, port), app)
    jobs.resume_unfinished()
    return Sandbox(server, app, jobs, store)


@contextmanager
def running_sandbox(
    *,
    aws_endpoint_url: str | None,
    authorized_keys_path: str | os.PathLike,
    aws_credentials: Any = None,
    aws_s3_endpoint_url: str | None = None,
    state_path: str | os.PathLike | None = None,
    integrations: Iterable[IntegrationSeed | tuple[str, str, str]] = (),
    long_poll_cap_seconds: float = DEFAULT_LONG_POLL_CAP_SECONDS,
    host: str = "127.0.0.1",
    port: int = 0,
    record_exchanges: bool = True,
    **readings: Any,
) -> Iterator[Sandbox]:
    """`create_sandbox(...)` serving on a background thread until the block ends."""
    sandbox = create_sandbox(
        aws_endpoint_url=aws_endpoint_url,
        authorized_keys_path=authorized_keys_path,
        aws_credentials=aws_credentials,
        aws_s3_endpoint_url=aws_s3_endpoint_url,
        state_path=state_path,
        integrations=integrations,
        long_poll_cap_seconds=long_poll_cap_seconds,
        host=host,
        port=port,
        record_exchanges=record_exchanges,
        **readings,
    )
    thread = threading.Thread(target=sandbox.serve_forever, name="encord-sandbox", daemon=True)
    thread.start()
    try:
        yield sandbox
    finally:
        sandbox.close()
        thread.join(timeout=10)


def _seed_integration(catalog: Catalog, seed: IntegrationSeed, owner: str) -> None:
    """Idempotent by title, so restarting with the same `--integration` keeps its id."""
    for existing in catalog.integrations(None):
        if existing["title"] == seed.title:
            existing.update(role_arn=seed.role_arn, external_id=seed.external_id)
            catalog.store.put("integration", existing["uuid"], existing)
            return
    catalog.add_integration(owner, seed.title, "AWS", seed.role_arn, seed.external_id)


def _credentials(value: Any) -> AwsCredentials | None:
    """None (boto3's default chain), an (id, secret) pair, or anything with those attributes."""
    if value is None or isinstance(value, AwsCredentials):
        return value
    if isinstance(value, tuple):
        return AwsCredentials(*value)
    return AwsCredentials(value.access_key_id, value.secret_access_key)
