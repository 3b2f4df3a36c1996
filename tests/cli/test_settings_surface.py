"""Each ingest setting is declared once (`IngestSettings`); its flag and its README entry follow."""

from __future__ import annotations

import re
from pathlib import Path

from ingest.cli.main import build_parser
from ingest.settings import IngestSettings

README = Path(__file__).resolve().parents[2] / "README.md"


def _keys() -> list[str]:
    return [field.alias or name for name, field in IngestSettings.model_fields.items()]


def test_every_setting_is_in_the_readmes_settings_example() -> None:
    text = README.read_text(encoding="utf-8")
    block = text[text.index("  encord-s3:ingest:\n") :]
    block = block[: block.index("```")]
    documented = set(re.findall(r"^\s+#?\s*([A-Za-z]+):", block, re.MULTILINE))
    assert [key for key in _keys() if key not in documented] == []


def test_every_setting_has_an_override_flag_with_its_help() -> None:
    parser = build_parser()
    subcommands = next(a for a in parser._actions if a.dest == "command").choices
    flags = {
        action.dest.removeprefix("setting_"): action.help
        for command in ("run", "watch")
        for action in subcommands[command]._actions
        if action.dest.startswith("setting_")
    }
    assert sorted(flags) == sorted(_keys())
    assert all(help_text for help_text in flags.values())
