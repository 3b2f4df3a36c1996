"""The registry of CLI commands: one module per command family, each with `register()`."""

from ingest.cli import plan as cmd_plan
from ingest.cli import run as cmd_run
from ingest.cli import schema as cmd_schema
from ingest.cli import validate as cmd_validate

MODULES: list = [
    cmd_plan,
    cmd_validate,
    cmd_schema,
    cmd_run,
]
