"""Run the real Pulumi program (`__main__.py`) offline, under Pulumi's mock runtime.

There is no Pulumi CLI here, so this stands in for the two things it does before a program
runs: it merges a stack's configuration from `Pulumi.yaml` and `Pulumi.<stack>.yaml`, and it
hands the program a resource monitor, here `pulumi.runtime.set_mocks` with the caller's
`Mocks` (a recorder in tests, standins/moto_bridge.py for moto).

The Pulumi runtime is process-global. Each `run_program` call installs fresh mocks and
settings, drops the previous root stack and any outputs a failed run left pending, and runs
the program in a new root stack as the CLI's `run_in_stack` does. So stacks run one after
another in one process (a pytest session) without their resources, exports or errors
mixing; runs must not overlap (the runtime has one root). In-process rather than one
subprocess per stack keeps the caller's Mocks object (and its recorded resources) usable.
"""

from __future__ import annotations

import json
import runpy
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import rpc
from pulumi.runtime import settings as runtime_settings
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.stack import run_in_stack
from pulumi.runtime.sync_await import _sync_await

PROJECT_DIR = Path(__file__).resolve().parent.parent


class StackConfigError(Exception):
    """A stack's files cannot be turned into configuration (e.g. a secret without an override)."""


@dataclass(frozen=True)
class StackConfig:
    project: str
    stack: str
    project_dir: Path
    values: dict[str, str]  # namespaced key → the string the CLI would pass
    secret_keys: frozenset[str]


@dataclass(frozen=True)
class RegisteredResource:
    type: str
    name: str
    inputs: dict[str, Any]  # the engine's camelCase wire names, secrets unwrapped
    secret_inputs: frozenset[str]  # names of the inputs that arrived as secrets
    custom: bool  # False for component resources
    retain_on_delete: bool  # the resource option: `pulumi destroy` leaves it in the cloud
    id: str | None
    state: dict[str, Any]
    # URNs of the resources named in the `depends_on` option (not those its inputs come from).
    depends_on: frozenset[str] = frozenset()


@dataclass
class ProgramRun:
    outputs: dict[str, Any]  # plain values, secrets included
    secret_outputs: frozenset[str]
    resources: list[RegisteredResource]

    def of_type(self, type_token: str) -> list[RegisteredResource]:
        return [r for r in self.resources if r.type == type_token]

    def one(self, type_token: str) -> RegisteredResource:
        (resource,) = self.of_type(type_token)
        return resource


def _encode(value: Any) -> str:
    """Config values reach programs as strings: text verbatim, everything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def load_stack_config(
    stack: str,
    overrides: dict[str, str] | None = None,
    secret_overrides: dict[str, str] | None = None,
    project_dir: Path = PROJECT_DIR,
) -> StackConfig:
    """A stack's config as the CLI would pass it; overrides act like `pulumi config set [--secret]`.

    Override keys may be bare (`allowWrite`, namespaced to the project) or namespaced
    (`aws:region`). Encrypted `secure:` entries need a secret override: decrypting them
    needs the CLI and the stack's secrets provider.
    """
    project = yaml.safe_load((project_dir / "Pulumi.yaml").read_text())["name"]
    stack_file = project_dir / f"Pulumi.{stack}.yaml"
    if not stack_file.exists():
        raise StackConfigError(f"no stack file {stack_file.name} in {project_dir}")
    entries = (yaml.safe_load(stack_file.read_text()) or {}).get("config") or {}

    def namespaced(key: str) -> str:
        return key if ":" in key else f"{project}:{key}"

    values: dict[str, str] = {}
    secret_keys: set[str] = set()
    for key, value in entries.items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            secret_keys.add(namespaced(key))
        else:
            values[namespaced(key)] = _encode(value)
    values |= {namespaced(k): _encode(v) for k, v in (overrides or {}).items()}
    values |= {namespaced(k): _encode(v) for k, v in (secret_overrides or {}).items()}
    secret_keys |= {namespaced(k) for k in secret_overrides or {}}
    undecrypted = sorted(secret_keys - set(values))
    if undecrypted:
        raise StackConfigError(
            f"{stack_file.name}: encrypted {', '.join(undecrypted)} need a secret override"
        )
    return StackConfig(project, stack, project_dir, values, frozenset(secret_keys))


def _reveal(value: Any) -> tuple[Any, bool]:
    """A wire value with its secret markers removed, and whether it held any."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return _reveal(value["value"])[0], True
        fields = {k: _reveal(v) for k, v in value.items()}
        return {k: v for k, (v, _) in fields.items()}, any(s for _, s in fields.values())
    if isinstance(value, list):
        items = [_reveal(item) for item in value]
        return [v for v, _ in items], any(s for _, s in items)
    return value, False


class _Recorder(pulumi.runtime.Mocks):
    """Hands the caller's mocks plain inputs (the mock monitor keeps secrets wrapped) and
    keeps what was registered."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        self._mocks = mocks
        self.resources: list[RegisteredResource] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        revealed = {name: _reveal(value) for name, value in args.inputs.items()}
        args.inputs = {name: value for name, (value, _) in revealed.items()}
        resource_id, state = self._mocks.new_resource(args)
        secret_inputs = frozenset(name for name, (_, secret) in revealed.items() if secret)
        self.resources.append(
            RegisteredResource(
                args.typ,
                args.name,
                args.inputs,
                secret_inputs,
                bool(args.custom),
                False,  # set from the monitor's record once the run is over
                resource_id,
                state,
            )
        )
        return resource_id, state

    def call(self, args: pulumi.runtime.MockCallArgs):
        return self._mocks.call(args)


class _OptionsMonitor(MockMonitor):
    """The mock monitor, also noting the options MockResourceArgs does not carry: which
    resources are retained on delete, and what each explicitly depends on."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.retained: set[tuple[str, str]] = set()
        self.depends_on: dict[tuple[str, str], frozenset[str]] = {}

    def RegisterResource(self, request):
        if request.retainOnDelete:
            self.retained.add((request.type, request.name))
        # All dependencies, less those that come with an input's value.
        implicit = {urn for deps in request.propertyDependencies.values() for urn in deps.urns}
        self.depends_on[(request.type, request.name)] = frozenset(
            set(request.dependencies) - implicit
        )
        return super().RegisterResource(request)


def run_program(config: StackConfig, mocks: pulumi.runtime.Mocks) -> ProgramRun:
    """Run `__main__.py` with this config against `mocks`; raise whatever the program raises.

    A program error (e.g. infra.config.ConfigError, a pulumi.RunError) propagates unchanged.
    """
    recorder = _Recorder(mocks)
    monitor = _OptionsMonitor(recorder)
    pulumi.runtime.set_mocks(
        recorder, project=config.project, stack=config.stack, preview=False, monitor=monitor
    )
    runtime_settings.ROOT.set(None)  # run_in_stack makes this run's root stack
    # set_mocks renews the RPC manager but not the outputs a failed run left pending, which
    # the next run would await and re-raise.
    runtime_settings.SETTINGS.outputs.clear()
    pulumi.runtime.set_all_config(dict(config.values), sorted(config.secret_keys))
    program = config.project_dir / "__main__.py"
    if str(config.project_dir) not in sys.path:  # as the CLI does: the program imports infra/
        sys.path.insert(0, str(config.project_dir))

    stacks: list[Any] = []

    def run_main() -> None:
        runpy.run_path(str(program), run_name="__main__")
        # The root stack lives in the run's context, invisible from here once it returns.
        stacks.append(runtime_settings.get_root_resource())

    _sync_await(run_in_stack(run_main))
    exports = {name: pulumi.Output.from_input(value) for name, value in stacks[0].outputs.items()}
    return ProgramRun(
        outputs={name: _sync_await(value.future()) for name, value in exports.items()},
        secret_outputs=frozenset(
            name for name, value in exports.items() if _sync_await(value.is_secret())
        ),
        resources=[
            replace(
                r,
                retain_on_delete=(r.type, r.name) in monitor.retained,
                depends_on=monitor.depends_on.get((r.type, r.name), frozenset()),
            )
            for r in recorder.resources
        ],
    )
