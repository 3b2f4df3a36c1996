"""The registry of CLI commands: one module per command family, each with `register()`."""

MODULES: list = []
