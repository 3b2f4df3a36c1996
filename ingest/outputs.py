"""The Pulumi stack's outputs, read with the CLI (`--stack`) or from a JSON file (`--outputs`)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from ingest.errors import UserError

# What an object URL may start with (s3:// as `ingest validate` accepts it too).
OBJECT_URL_SCHEMES = ("https://", "arn:aws:s3::", "s3://")


class StackOutputs(BaseModel):
    """What `pulumi up` exported. `externalId` is a SecretStr so it never reaches a log line."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)

    source: str = Field(exclude=True, description="where these came from, for error messages")
    bucket_name: str = Field(alias="bucketName", min_length=3)
    region: str = Field(min_length=1)
    object_url_prefix: str = Field(alias="objectUrlPrefix", min_length=1)
    prefixes: list[str] = Field(default_factory=list)
    role_arn: str | None = Field(default=None, alias="roleArn")
    role_name: str | None = Field(default=None, alias="roleName")
    bucket_arn: str | None = Field(default=None, alias="bucketArn")
    cors_origins: list[str] = Field(default_factory=list, alias="corsOrigins")
    mrap_arn: str | None = Field(default=None, alias="mrapArn")
    mrap_alias: str | None = Field(default=None, alias="mrapAlias")
    integration_title: str | None = Field(default=None, alias="integrationTitle")
    inventory_location: str | None = Field(default=None, alias="inventoryLocation")
    events_queue_url: str | None = Field(default=None, alias="eventsQueueUrl")
    events_dead_letter_queue_url: str | None = Field(default=None, alias="eventsDeadLetterQueueUrl")
    external_id: SecretStr | None = Field(default=None, alias="externalId")
    allow_write: bool | None = Field(default=None, alias="allowWrite")

    @field_validator("object_url_prefix")
    @classmethod
    def _url_prefix(cls, value: str) -> str:
        """A key is appended to it as is: without its '/', URLs would run into the host."""
        if not value.startswith(OBJECT_URL_SCHEMES):
            raise ValueError(
                f"{value!r} must be an https:// URL (https://BUCKET.s3.REGION.amazonaws.com/) "
                "or a Multi-Region Access Point ARN (arn:aws:s3::ACCOUNT:accesspoint/ALIAS/)"
            )
        if not value.endswith("/"):
            raise ValueError(f"{value!r} must end with '/': use {value + '/'!r}")
        return value

    def require(self, name: str) -> str:
        """The value of an optional output a command needs; `name` is the output's own (camelCase) name."""
        for field_name, field in type(self).model_fields.items():
            if name in (field.alias, field_name):
                value = getattr(self, field_name)
                if value is None:
                    raise UserError(_missing(name, self.source))
                return value.get_secret_value() if isinstance(value, SecretStr) else value
        raise KeyError(name)


def _missing(name: str, source: str) -> str:
    return f"stack output {name!r} is missing from {source}: run `pulumi up` for that stack, or add it to the outputs file"


def load_outputs(stack: str | None, outputs_file: Path | None) -> StackOutputs:
    """Read the outputs of `stack` through the Pulumi CLI, or from `outputs_file` (that CLI's JSON)."""
    if outputs_file is not None:
        source = f"outputs file {outputs_file}"
        try:
            text = outputs_file.read_text(encoding="utf-8")
        except OSError as error:
            raise UserError(f"cannot read {source}: {error.strerror}") from None
    elif stack:
        source = f"stack {stack!r}"
        text = _pulumi_stack_output(stack)
    else:
        raise UserError("say which stack: --stack NAME (needs the pulumi CLI) or --outputs FILE")
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise UserError(f"{source} is not JSON ({error.msg} at line {error.lineno})") from None
    if not isinstance(raw, dict):
        raise UserError(f"{source} must be a JSON object of stack outputs")
    try:
        return StackOutputs.model_validate({**raw, "source": source})
    except ValidationError as error:
        first = error.errors()[0]
        name = ".".join(str(part) for part in first["loc"])
        if first["type"] == "missing":
            raise UserError(_missing(name, source)) from None
        message = first["msg"].removeprefix("Value error, ")
        raise UserError(f"stack output {name!r} in {source}: {message}") from None


def _pulumi_stack_output(stack: str) -> str:
    if shutil.which("pulumi") is None:
        raise UserError(
            "the pulumi CLI is not on PATH: install it, or pass --outputs FILE "
            f"(`pulumi stack output --json --show-secrets --stack {stack} > FILE` where it is installed)"
        )
    command = ["pulumi", "stack", "output", "--json", "--show-secrets", "--stack", stack]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        # Pulumi's stderr names the problem (no such stack, not logged in); never echo stdout (secrets).
        detail = (result.stderr.strip().splitlines() or ["no error output"])[-1]
        raise UserError(f"`pulumi stack output --stack {stack}` failed: {detail}")
    return result.stdout
