"""Read (and, for image sequences, write) customers' S3 objects through the integration's role.

The sandbox calls sts:AssumeRole on the integration's role with its external ID, using its
own AWS identity ("Encord's account"), and reads the object with the temporary credentials.
So a wrong external ID, a role that does not trust Encord, or a permission policy that does
not cover the object fails the unit as it would in Encord. The credentials are kept per
integration until shortly before they expire (a failed AssumeRole is not kept).
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import boto3
import botocore.loaders
import botocore.session
from botocore.config import Config
from botocore.credentials import Credentials, ReadOnlyCredentials
from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

from sandbox.media import SNIFF_BYTES

DEFAULT_REGION = "us-east-1"
# Assumed-role credentials are renewed this long before they expire.
CREDENTIAL_RENEWAL_MARGIN_SECONDS = 300
_VIRTUAL_HOSTED = re.compile(
    r"^(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])\.s3(?:\.(?P<region>[a-z0-9-]+))?\.amazonaws\.com$"
)
_PATH_STYLE = re.compile(r"^s3(?:\.(?P<region>[a-z0-9-]+))?\.amazonaws\.com$")
_MRAP = re.compile(r"^arn:aws:s3::(?P<account>\d{12}):accesspoint/(?P<alias>[^/]+)/(?P<key>.+)$")


# Service models are parsed once per process, not once per sandbox.
_SHARED_LOADER = botocore.loaders.create_loader()


_CONFIG = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2})


class _PerThreadCredentials(Credentials):
    """Credentials that each worker thread sets before its S3 call (botocore signs per call)."""

    method = "sts-assume-role"

    def __init__(self) -> None:  # deliberately not Credentials.__init__: values are per thread
        self._local = threading.local()

    def use(self, credentials: AwsCredentials) -> None:
        self._local.frozen = ReadOnlyCredentials(
            credentials.access_key_id, credentials.secret_access_key, credentials.session_token
        )

    def get_frozen_credentials(self) -> ReadOnlyCredentials:
        return self._local.frozen

    @property
    def access_key(self) -> str:
        return self._local.frozen.access_key

    @property
    def secret_key(self) -> str:
        return self._local.frozen.secret_key

    @property
    def token(self) -> str | None:
        return self._local.frozen.token


class UnitFailure(Exception):
    """Why one unit of an upload job failed (the cause; the job names the URL)."""


@dataclass(frozen=True)
class ObjectLocation:
    bucket: str | None  # None until a Multi-Region Access Point alias is resolved
    key: str
    region: str = DEFAULT_REGION
    mrap_account: str | None = None
    mrap_alias: str | None = None


def parse_object_url(url: str) -> ObjectLocation:
    """Accept the S3 URL forms Encord accepts; anything else fails the unit."""
    if any(character.isspace() for character in url):
        raise UnitFailure("the object URL contains whitespace, which is not allowed.")
    mrap = _MRAP.match(url)
    if mrap:
        return ObjectLocation(
            bucket=None,
            key=unquote(mrap["key"]),
            mrap_account=mrap["account"],
            mrap_alias=mrap["alias"],
        )
    parts = urlsplit(url)
    path = parts.path[1:]  # keys may themselves start with "/"
    if parts.scheme == "https" and not parts.query and path:
        host = parts.hostname or ""
        virtual = _VIRTUAL_HOSTED.match(host)
        if virtual:
            return ObjectLocation(
                virtual["bucket"], unquote(path), virtual["region"] or DEFAULT_REGION
            )
        path_style = _PATH_STYLE.match(host)
        bucket, _, key = path.partition("/")
        if path_style and key:
            return ObjectLocation(bucket, unquote(key), path_style["region"] or DEFAULT_REGION)
    raise UnitFailure(
        "not a supported S3 URL: use https://<bucket>.s3.<region>.amazonaws.com/<key>, "
        "https://s3.<region>.amazonaws.com/<bucket>/<key> or a Multi-Region Access Point ARN followed by the key."
    )


@dataclass(frozen=True)
class ObjectHead:
    """The first bytes of an object (enough to sniff its type) and its full size."""

    data: bytes
    size: int


@dataclass(frozen=True)
class AwsCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    def client_kwargs(self) -> dict[str, str | None]:
        return {
            "aws_access_key_id": self.access_key_id,
            "aws_secret_access_key": self.secret_access_key,
            "aws_session_token": self.session_token,
        }


class S3Gateway:
    def __init__(
        self,
        endpoint_url: str | None,
        credentials: AwsCredentials | None = None,
        s3_endpoint_url: str | None = None,
    ):
        """`endpoint_url` for STS and S3 Control; S3 itself at `s3_endpoint_url` if given."""
        self._endpoint_url = endpoint_url
        self._s3_endpoint_url = s3_endpoint_url or endpoint_url
        self._own = credentials.client_kwargs() if credentials else {}
        botocore_session = botocore.session.get_session()
        botocore_session.register_component("data_loader", _SHARED_LOADER)
        self._session = boto3.session.Session(botocore_session=botocore_session)
        # boto3 sessions are not safe for concurrent client creation.
        self._lock = threading.Lock()
        self._sts = self._client("sts", DEFAULT_REGION, self._own)
        self._s3control = self._client("s3control", DEFAULT_REGION, self._own)
        self._role_credentials = _PerThreadCredentials()
        self._s3_by_region: dict[str, Any] = {}
        self._cache_lock = threading.Lock()
        self._role_locks: dict[tuple[str, str, str], threading.Lock] = {}
        self._role_cache: dict[tuple[str, str, str], tuple[AwsCredentials, float]] = {}

    def read_head(self, url: str, integration: dict[str, Any]) -> ObjectHead:
        location = parse_object_url(url)
        role = self._role(integration)
        bucket = location.bucket or self._resolve_access_point(location)
        s3 = self._s3(location.region)
        self._role_credentials.use(role)
        role_arn = integration["role_arn"]
        try:
            response = s3.get_object(
                Bucket=bucket, Key=location.key, Range=f"bytes=0-{SNIFF_BYTES - 1}"
            )
            data = response["Body"].read()
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404", "NotFound"):
                raise UnitFailure(
                    f"the object does not exist (s3://{bucket}/{location.key})."
                ) from error
            if code == "NoSuchBucket":
                raise UnitFailure(f"the bucket {bucket} does not exist.") from error
            if code in ("AccessDenied", "403", "Forbidden"):
                raise UnitFailure(
                    f"access denied reading s3://{bucket}/{location.key} with the integration's role {role_arn}."
                ) from error
            if code == "InvalidRange":  # an empty object has no byte 0
                return ObjectHead(b"", 0)
            raise UnitFailure(f"S3 refused the read: {code}: {_message(error)}") from error
        except BotoCoreError as error:
            raise UnitFailure(f"could not reach S3: {error}") from error
        total = response.get("ContentRange", "").rpartition("/")[2]
        size = int(total) if total.isdigit() else int(response.get("ContentLength", len(data)))
        return ObjectHead(data, size)

    def write_object(
        self, beside: ObjectLocation, key: str, body: bytes, integration: dict[str, Any]
    ) -> str:
        """PutObject into the bucket of `beside` with the integration's role; returns s3://..."""
        role = self._role(integration)
        bucket = beside.bucket or self._resolve_access_point(beside)
        s3 = self._s3(beside.region)
        self._role_credentials.use(role)
        try:
            s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="video/mp4")
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in ("AccessDenied", "403", "Forbidden"):
                raise UnitFailure(
                    f"access denied writing the image sequence's video to s3://{bucket}/{key} "
                    f"with the integration's role {integration['role_arn']}: an image sequence "
                    "(createVideo) needs s3:PutObject."
                ) from error
            raise UnitFailure(f"S3 refused the write: {code}: {_message(error)}") from error
        except BotoCoreError as error:
            raise UnitFailure(f"could not reach S3: {error}") from error
        return f"s3://{bucket}/{key}"

    def _role(self, integration: dict[str, Any]) -> AwsCredentials:
        """The integration's role credentials, from the cache while they are fresh."""
        cache_key = (integration["uuid"], integration["role_arn"], integration["external_id"])
        with self._cache_lock:
            lock = self._role_locks.setdefault(cache_key, threading.Lock())
        with lock:  # one AssumeRole per integration at a time, not one per unit
            cached = self._role_cache.get(cache_key)
            if cached is not None and cached[1] - time.time() > CREDENTIAL_RENEWAL_MARGIN_SECONDS:
                return cached[0]
            credentials, expires_at = self._assume_role(
                integration["role_arn"], integration["external_id"]
            )
            self._role_cache[cache_key] = (credentials, expires_at)
            return credentials

    def _assume_role(self, role_arn: str, external_id: str) -> tuple[AwsCredentials, float]:
        try:
            credentials = self._sts.assume_role(
                RoleArn=role_arn, RoleSessionName="encord-sandbox", ExternalId=external_id
            )["Credentials"]
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            raise UnitFailure(
                f"could not assume the integration's role {role_arn} with its external ID: {code}: {_message(error)}"
            ) from error
        except ParamValidationError as error:
            raise UnitFailure(
                "the integration's role ARN or external ID is invalid for sts:AssumeRole."
            ) from error
        except BotoCoreError as error:
            raise UnitFailure(f"could not reach AWS STS to assume {role_arn}: {error}") from error
        expiration = credentials.get("Expiration")
        expires_at = (
            expiration.timestamp() if isinstance(expiration, datetime) else time.time() + 900
        )
        role = AwsCredentials(
            credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials["SessionToken"]
        )
        return role, expires_at

    def _resolve_access_point(self, location: ObjectLocation) -> str:
        """The bucket behind a Multi-Region Access Point alias (AWS routes this internally)."""
        try:
            points = self._s3control.list_multi_region_access_points(
                AccountId=location.mrap_account
            )
        except (ClientError, BotoCoreError) as error:
            raise UnitFailure(f"could not look up Multi-Region Access Points: {error}") from error
        for point in points.get("AccessPoints", []):
            if point.get("Alias") == location.mrap_alias and point.get("Regions"):
                return point["Regions"][0]["Bucket"]
        raise UnitFailure(
            f"the Multi-Region Access Point {location.mrap_alias} does not exist in account {location.mrap_account}."
        )

    def _s3(self, region: str) -> Any:
        """One S3 client per region for all units; each call signs with its thread's role.

        Building a client is CPU-heavy, so units share it and set their role's credentials
        on their thread before each call.
        """
        with self._lock:
            if region not in self._s3_by_region:
                session = botocore.session.get_session()
                session.register_component("data_loader", _SHARED_LOADER)
                session._credentials = self._role_credentials  # no public setter exists
                self._s3_by_region[region] = boto3.session.Session(botocore_session=session).client(
                    "s3", endpoint_url=self._s3_endpoint_url, region_name=region, config=_CONFIG
                )
            return self._s3_by_region[region]

    def _client(self, service: str, region: str, credentials: dict) -> Any:
        with self._lock:
            client = self._session.client(
                service,
                endpoint_url=self._endpoint_url,
                region_name=region,
                config=_CONFIG,
                **credentials,
            )
        if service == "s3control" and self._endpoint_url:
            without_account_host_prefix(client)
        return client


def without_account_host_prefix(s3control: Any) -> None:
    """Send S3 Control calls to the endpoint's own host, not `<account>.<host>`.

    AWS routes S3 Control by an account-ID host prefix; a local endpoint (moto) has no such
    hosts, so drop the prefix before the request is signed.
    """
    endpoint_host = urlsplit(s3control.meta.endpoint_url).netloc

    def strip_prefix(request: Any, **_: Any) -> None:
        parts = urlsplit(request.url)
        if parts.netloc != endpoint_host and parts.netloc.endswith("." + endpoint_host):
            request.url = parts._replace(netloc=endpoint_host).geturl()

    s3control.meta.events.register("before-sign.s3-control.*", strip_prefix)


def _message(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Message", "") or str(error)
