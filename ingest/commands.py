"""The registry of CLI commands: one module per command family, each with `register()`."""

from ingest import cmd_plan

MODULES: list = [
    cmd_plan,
]
