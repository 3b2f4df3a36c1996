"""The registry of CLI commands: one module per command family, each with `register()`."""

from ingest import cmd_plan, cmd_schema, cmd_validate
from ingest import run as cmd_run

MODULES: list = [
    cmd_plan,
    cmd_validate,
    cmd_schema,
    cmd_run,
]
