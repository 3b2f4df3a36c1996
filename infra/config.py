"""Stack configuration: read once, validated by one pydantic model, reported one line per key.

A bad value stops the program with `ConfigError`, a `pulumi.RunError`: the Pulumi CLI prints
a RunError's message without a traceback and exits non-zero. Messages name the config key
and the command that fixes it, and never echo a secret (the external ID); a prefix, which
is not one, is echoed in the fix that corrects it.

Values arrive as the CLI passes them: text, with lists and mappings as JSON. Booleans are
read as Pulumi's own `Config.get_bool` reads them (`true`, `True`, `false`, `False`, or JSON
booleans inside a mapping); pydantic's wider reading (`yes`, `on`, `1`) is refused.
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Annotated, Any
from urllib.parse import urlsplit

import boto3
import pulumi
from pulumi.runtime import config as runtime_config
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import ErrorDetails

REGION_KEY = "aws:region"
# Keys of this project's namespace that belong to other programs (the ingest command).
FOREIGN_KEYS = frozenset({"ingest"})
# Encord's guide lists the web app origins that fetch media from the bucket.
ENCORD_APP_ORIGIN = "https://app.encord.com"

_ACCOUNT_ID = r"\d{12}"
_IAM_NAME = r"[\w+=,.@-]"
_PRINCIPAL = re.compile(
    rf"{_ACCOUNT_ID}|arn:aws:iam::{_ACCOUNT_ID}:(?:root|(?:role|user)/(?:{_IAM_NAME}+/)*{_IAM_NAME}+)",
    re.ASCII,
)
# AssumeRole's ExternalId: 2-1224 characters of [\w+=,.@:/-].
_EXTERNAL_ID = re.compile(r"[\w+=,.@:/-]{2,1224}", re.ASCII)
_ROLE_NAME = re.compile(rf"{_IAM_NAME}{{1,64}}", re.ASCII)
_BUCKET_NAME = re.compile(r"(?!\d+\.\d+\.\d+\.\d+$)(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_KMS_KEY_ARN = re.compile(rf"arn:aws:kms:(?P<region>[a-z0-9-]+):{_ACCOUNT_ID}:key/[A-Za-z0-9-]+")
_S3_REGIONS = frozenset(boto3.session.Session().get_available_regions("s3"))
INVENTORY_FREQUENCIES = ("Daily", "Weekly")
INVENTORY_FORMATS = ("Parquet", "CSV", "ORC")
DAYS_PER_WEEK = 7
SQS_MAX_RECEIVE_COUNT = 1000
SQS_MAX_VISIBILITY_SECONDS = 12 * 60 * 60
SQS_MAX_RETENTION_DAYS = 14


class ConfigError(pulumi.RunError):
    """The stack's configuration is missing or malformed."""


class InvalidValue(ValueError):
    """A validator's complaint about one key, optionally with a fix other than `config set`
    and, for a check of a mapping against other settings, the key of the mapping it is about."""

    def __init__(self, problem: str, fix: str | None = None, key: str | None = None) -> None:
        super().__init__(problem)
        self.fix = fix
        self.key = key


def _json_list(value: Any) -> Any:
    """The CLI hands list values over as JSON text."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        raise InvalidValue("must be a list (set items with `--path 'key[0]'`)") from None


def _json_mapping(value: Any) -> Any:
    """The CLI hands mappings over as JSON text; anything but a mapping is refused here."""
    try:
        value = json.loads(value) if isinstance(value, str) else value
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise InvalidValue("must be a mapping of settings")
    return value


# What `pulumi.Config.get_bool` accepts.
_BOOL_TEXT = {"true": True, "True": True, "false": False, "False": False}


def _strict_bool(value: Any) -> bool:
    """A boolean as Pulumi reads one, and nothing pydantic would also take (`yes`, `1`)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value in _BOOL_TEXT:
        return _BOOL_TEXT[value]
    raise InvalidValue("must be true or false")


def _check_bucket_name(name: str) -> str:
    if not _BUCKET_NAME.fullmatch(name):
        raise InvalidValue(
            "must be an S3 bucket name: 3-63 lowercase letters, digits, dots and hyphens"
        )
    return name


def _one_of(value: str, choices: tuple[str, ...]) -> str:
    """`value` spelt as S3 spells it, whatever its case."""
    canonical = {choice.lower(): choice for choice in choices}.get(value.lower())
    if canonical is None:
        raise InvalidValue(f"must be {', '.join(choices[:-1])} or {choices[-1]}")
    return canonical


JsonList = BeforeValidator(_json_list)
JsonMapping = BeforeValidator(_json_mapping)
Bool = Annotated[bool, BeforeValidator(_strict_bool)]


class InventorySettings(BaseModel):
    """`inventory`: a scheduled S3 Inventory report of the bucket, which the ingest can read
    instead of listing the bucket. Off by default: it is billed per object listed, and the
    first report takes up to 48 hours."""

    model_config = ConfigDict(
        alias_generator=to_camel, extra="forbid", frozen=True, hide_input_in_errors=True
    )

    enabled: Bool = False
    frequency: str = "Daily"
    format: str = "Parquet"
    retention_days: int = 14

    @field_validator("frequency")
    @classmethod
    def _frequency(cls, frequency: str) -> str:
        return _one_of(frequency, INVENTORY_FREQUENCIES)

    @field_validator("format")
    @classmethod
    def _format(cls, file_format: str) -> str:
        return _one_of(file_format, INVENTORY_FORMATS)

    @field_validator("retention_days")
    @classmethod
    def _retention_days(cls, days: int, info: ValidationInfo) -> int:
        if days < 1:
            raise InvalidValue("must be at least 1 (days a report is kept)")
        # Shorter, and each weekly report would expire before the next one arrives.
        if info.data.get("frequency") == "Weekly" and days < DAYS_PER_WEEK:
            raise InvalidValue(f"must be at least {DAYS_PER_WEEK} when frequency is Weekly")
        return days


class EventsSettings(BaseModel):
    """`events`: an SQS queue (with a dead-letter queue) receiving the bucket's object
    created/removed events under the stack's prefixes, for a continuous sync. Off by default."""

    model_config = ConfigDict(
        alias_generator=to_camel, extra="forbid", frozen=True, hide_input_in_errors=True
    )

    enabled: Bool = False
    # Receives of one message before it moves to the dead-letter queue (SQS: 1-1000).
    max_receive_count: int = 5
    # How long a received batch stays hidden from other consumers while it is processed.
    visibility_timeout_seconds: int = 300
    retention_days: int = 4
    # An adopted bucket's events come through EventBridge, which its owner turns on.
    event_bridge_on_bucket: Bool = False

    @field_validator("max_receive_count")
    @classmethod
    def _max_receive_count(cls, count: int) -> int:
        if not 1 <= count <= SQS_MAX_RECEIVE_COUNT:
            raise InvalidValue(f"must be 1-{SQS_MAX_RECEIVE_COUNT} (receives before the DLQ)")
        return count

    @field_validator("visibility_timeout_seconds")
    @classmethod
    def _visibility_timeout(cls, seconds: int) -> int:
        if not 1 <= seconds <= SQS_MAX_VISIBILITY_SECONDS:
            raise InvalidValue(f"must be 1-{SQS_MAX_VISIBILITY_SECONDS} seconds (SQS's limit)")
        return seconds

    @field_validator("retention_days")
    @classmethod
    def _retention_days(cls, days: int) -> int:
        if not 1 <= days <= SQS_MAX_RETENTION_DAYS:
            raise InvalidValue(f"must be 1-{SQS_MAX_RETENTION_DAYS} days (SQS's limit)")
        return days


class IntegrationSettings(BaseModel):
    """Everything the stack needs, in config key order (later checks read earlier fields)."""

    model_config = ConfigDict(
        alias_generator=to_camel, extra="forbid", frozen=True, hide_input_in_errors=True
    )

    region: str = Field(alias="aws:region")  # REGION_KEY, spelt out for the type checker
    encord_principal: str
    external_id: SecretStr
    create_bucket: Bool = True
    bucket_name: str | None = Field(default=None, validate_default=True)
    prefixes: Annotated[tuple[str, ...], JsonList] = ()
    allow_write: Bool = False
    kms_key_arn: str | None = None
    cors_origins: Annotated[tuple[str, ...], JsonList] = (ENCORD_APP_ORIGIN,)
    versioning: Bool = False
    access_log_bucket: str | None = None
    access_log_prefix: str = "s3-access-logs/"
    multi_region_access_point: Bool = False
    role_name: str
    force_destroy: Bool = False
    inventory: Annotated[InventorySettings, JsonMapping] = InventorySettings()
    events: Annotated[EventsSettings, JsonMapping] = EventsSettings()

    @field_validator("region")
    @classmethod
    def _known_region(cls, region: str) -> str:
        if region not in _S3_REGIONS:
            raise InvalidValue("is not an AWS region with S3 (e.g. eu-west-2, us-east-1)")
        return region

    @field_validator("encord_principal")
    @classmethod
    def _iam_principal(cls, principal: str) -> str:
        if not _PRINCIPAL.fullmatch(principal):
            raise InvalidValue(
                "must be an IAM role ARN (arn:aws:iam::<account>:role/<name>), "
                "an IAM user ARN (arn:aws:iam::<account>:user/<name>) or a 12-digit account id"
            )
        return principal

    @field_validator("external_id")
    @classmethod
    def _external_id(cls, external_id: SecretStr) -> SecretStr:
        if not _EXTERNAL_ID.fullmatch(external_id.get_secret_value()):
            raise InvalidValue("must be 2-1224 characters of letters, digits and _+=,.@:/-")
        return external_id

    @field_validator("bucket_name")
    @classmethod
    def _bucket_name(cls, name: str | None, info: ValidationInfo) -> str | None:
        if name is None:
            if not info.data.get("create_bucket", True):
                raise InvalidValue("is required when createBucket is false (the bucket to adopt)")
            return None
        return _check_bucket_name(name)

    @field_validator("prefixes")
    @classmethod
    def _prefixes(cls, prefixes: tuple[str, ...]) -> tuple[str, ...]:
        for index, prefix in enumerate(prefixes):
            if not prefix or prefix.startswith("/"):
                raise InvalidValue("items must be non-empty key prefixes without a leading slash")
            if "*" in prefix or "?" in prefix:
                # They would be IAM wildcards in the policy's resources and conditions.
                raise InvalidValue("items must not contain * or ?")
            if not prefix.endswith("/"):
                # The grant is `<prefix>*`: without the slash it reaches sibling folders.
                raise InvalidValue(
                    f"items must end with / ({prefix} would also grant {prefix}-private/)",
                    fix=f"pulumi config set --path '{_namespaced('prefixes')}[{index}]' "
                    + shlex.quote(f"{prefix}/"),
                )
        return tuple(dict.fromkeys(prefixes))

    @field_validator("kms_key_arn")
    @classmethod
    def _kms_key_arn(cls, arn: str | None, info: ValidationInfo) -> str | None:
        match = _KMS_KEY_ARN.fullmatch(arn) if arn is not None else None
        if arn is not None and not match:
            raise InvalidValue("must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)")
        if match and match["region"] != info.data.get("region"):
            raise InvalidValue(
                "must be a key in the stack's aws:region (S3 needs a same-region key)"
            )
        return arn

    @field_validator("cors_origins")
    @classmethod
    def _https_origins(cls, origins: tuple[str, ...]) -> tuple[str, ...]:
        if not origins:
            raise InvalidValue(f"must list at least one origin, e.g. {ENCORD_APP_ORIGIN}")
        for origin in origins:
            url = urlsplit(origin)
            if url.scheme != "https" or not url.hostname or "*" in origin:
                raise InvalidValue("items must be https:// origins, e.g. https://app.us.encord.com")
            if origin != f"https://{url.netloc}":
                raise InvalidValue("items must be bare origins, without a path or trailing slash")
        return origins

    @field_validator("versioning", "access_log_bucket", "force_destroy")
    @classmethod
    def _only_for_created_bucket(cls, value: Any, info: ValidationInfo) -> Any:
        if value and not info.data.get("create_bucket", True):
            key = to_camel(str(info.field_name))
            raise InvalidValue(
                "only applies to a bucket the stack creates (createBucket is false)",
                fix=f"pulumi config rm {_namespaced(key)}",
            )
        return value

    @field_validator("access_log_bucket")
    @classmethod
    def _log_bucket_name(cls, name: str | None) -> str | None:
        return None if name is None else _check_bucket_name(name)

    @field_validator("role_name")
    @classmethod
    def _role_name(cls, name: str) -> str:
        if not _ROLE_NAME.fullmatch(name):
            raise InvalidValue("must be 1-64 letters, digits and _+=,.@-")
        return name

    @field_validator("events")
    @classmethod
    def _events_route(cls, events: EventsSettings, info: ValidationInfo) -> EventsSettings:
        adopted = not info.data.get("create_bucket", True)
        on_bucket = _namespaced("events.eventBridgeOnBucket")
        if events.enabled and adopted and not events.event_bridge_on_bucket:
            # S3 keeps one notification configuration per bucket: the stack would replace
            # the bucket's own, so its owner turns EventBridge on (README: Events) instead.
            raise InvalidValue(
                "on an adopted bucket (createBucket is false) need its EventBridge notifications, "
                "which the bucket's owner turns on (README: Events): the stack never replaces a "
                "bucket's notification configuration",
                fix=f"pulumi config set --path '{on_bucket}' true",
            )
        if events.event_bridge_on_bucket and not adopted:
            raise InvalidValue(
                "only applies to an adopted bucket (createBucket is false): a created bucket "
                "sends its events to the queue itself",
                fix=f"pulumi config rm --path '{on_bucket}'",
                key="events.eventBridgeOnBucket",
            )
        return events

    @property
    def principal_is_account(self) -> bool:
        return not self.encord_principal.startswith("arn:") or self.encord_principal.endswith(
            ":root"
        )


# The placeholder each `pulumi config set` fix suggests.
_PLACEHOLDERS = {
    REGION_KEY: "<region, e.g. eu-west-2>",
    "encordPrincipal": "<role ARN or account id from Encord's 'New integration → AWS S3' dialog>",
    "externalId": "<value from Encord's dialog>",
    "bucketName": "<bucket name>",
    "prefixes": "<key prefix, e.g. images/>",
    "kmsKeyArn": "arn:aws:kms:<region>:<account>:key/<key id>",
    "corsOrigins": ENCORD_APP_ORIGIN,
    "accessLogBucket": "<log bucket name>",
    "accessLogPrefix": "<key prefix for the logs>",
    "roleName": "<IAM role name>",
    "inventory.frequency": "|".join(INVENTORY_FREQUENCIES),
    "inventory.format": "|".join(INVENTORY_FORMATS),
    "inventory.retentionDays": "<days, e.g. 14>",
    "events.maxReceiveCount": "<receives, e.g. 5>",
    "events.visibilityTimeoutSeconds": "<seconds, e.g. 300>",
    "events.retentionDays": "<days, e.g. 4>",
}
_SECRET_KEYS = frozenset({"externalId"})
_LIST_KEYS = frozenset({"prefixes", "corsOrigins"})
_MAPPING_KEYS = frozenset({"inventory", "events"})
_INT_ERRORS = frozenset({"int_parsing", "int_from_float", "int_type"})


def _namespaced(key: str) -> str:
    return key if ":" in key else f"{pulumi.get_project()}:{key}"


def _set_command(key: str) -> str:
    if key in _LIST_KEYS:
        return f"pulumi config set --path '{_namespaced(key)}[0]' {_PLACEHOLDERS[key]}"
    if key in _MAPPING_KEYS:  # not a mapping at all: start it from its switch
        return f"pulumi config set --path '{_namespaced(key)}.enabled' true"
    placeholder = _PLACEHOLDERS.get(key, "true|false")
    if "." in key:  # a key of a mapping
        return f"pulumi config set --path '{_namespaced(key)}' {placeholder}"
    secret = " --secret" if key in _SECRET_KEYS else ""
    return f"pulumi config set{secret} {_namespaced(key)} {placeholder}"


def _config_key(loc: tuple[int | str, ...]) -> tuple[str, type[BaseModel]]:
    """The key an error is about (`inventory.frequency`), and the model that key belongs to.

    pydantic reports defaults it validated by field name, everything else by alias.
    """
    model: type[BaseModel] = IntegrationSettings
    parts: list[str] = []
    for depth, part in enumerate(loc):
        field = model.model_fields.get(str(part))
        parts.append(field.alias if field and field.alias else str(part))
        nested = field.annotation if field else None
        if depth == len(loc) - 1 or not (
            isinstance(nested, type) and issubclass(nested, BaseModel)
        ):
            break  # a list item (`prefixes.0`) is reported as its list
        model = nested
    return ".".join(parts), model


def _message(error: ErrorDetails) -> str:
    key, model = _config_key(error["loc"])
    if error["type"] == "extra_forbidden":
        known = ", ".join(
            sorted(
                f.alias for f in model.model_fields.values() if f.alias and f.alias != REGION_KEY
            )
        )
        remove = f"--path '{_namespaced(key)}'" if "." in key else _namespaced(key)
        return f"{_namespaced(key)} is not a setting of this program (known: {known}). Fix: pulumi config rm {remove}"
    if error["type"] == "missing":
        return f"{_namespaced(key)} is not set. Fix: {_set_command(key)}"
    cause = error.get("ctx", {}).get("error")
    if isinstance(cause, InvalidValue):
        key = cause.key or key
        problem, fix = str(cause), cause.fix or _set_command(key)
    elif error["type"] in _INT_ERRORS:
        problem, fix = "must be a whole number", _set_command(key)
    else:  # pydantic's own wording never includes the value (hide_input_in_errors)
        problem, fix = error["msg"].lower(), _set_command(key)
    return f"{_namespaced(key)} {problem}. Fix: {fix}"


def _stack_config() -> dict[str, Any]:
    """All config the engine passed in (CLI: the PULUMI_CONFIG environment; mocks: set_all_config).

    `pulumi.Config` only reads keys by name; listing them all is what catches a misspelt key.
    """
    return {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}


def _is_secret(key: str) -> bool:
    return (
        runtime_config.is_config_secret(key) or key in runtime_config.get_config_secret_keys_env()
    )


def load_settings() -> IntegrationSettings:
    """Validate this stack's configuration, or raise ConfigError listing each bad key on one line."""
    project, stack = pulumi.get_project(), pulumi.get_stack()
    values = _stack_config()
    namespace = f"{project}:"
    raw = {
        key.removeprefix(namespace): value
        for key, value in values.items()
        if key.startswith(namespace) and key.removeprefix(namespace) not in FOREIGN_KEYS
    }
    raw.setdefault("roleName", f"{project}-{stack}")
    if REGION_KEY in values:
        raw[REGION_KEY] = values[REGION_KEY]

    external_id_key = _namespaced("externalId")
    if external_id_key in values and not _is_secret(external_id_key):
        raise ConfigError(
            f"{external_id_key} must be stored as a secret. Fix: {_set_command('externalId')}"
        )
    try:
        settings = IntegrationSettings.model_validate(raw)
    except ValidationError as error:
        raise ConfigError("\n".join(_message(e) for e in error.errors())) from None

    if settings.principal_is_account:
        pulumi.log.warn(
            f"{_namespaced('encordPrincipal')} trusts a whole AWS account; Encord's role ARN is safer "
            "when their dialog shows one (any principal in that account holding the external ID could assume the role)."
        )
    return settings
