"""The README stays true: every command and config key documented, CI runs its test command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from feedsvc.cli import build_parser
from feedsvc.config import Config, SourceConfig, TopicConfig

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def commands() -> list[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return sorted(sub.choices)  # type: ignore[union-attr]


@pytest.mark.parametrize("name", commands())
def test_every_command_is_in_the_readme(name: str) -> None:
    assert f"feedsvc {name}" in README


KEYS = (
    [f.name for f in Config.__dataclass_fields__.values() if f.name not in ("path", "topics")]
    + [f.name for f in TopicConfig.__dataclass_fields__.values() if f.name != "sources"]
    + [f.name for f in SourceConfig.__dataclass_fields__.values() if f.name != "selectors"]
    + ["item", "title", "link", "summary", "date", "image"]
)


@pytest.mark.parametrize("key", sorted(set(KEYS)))
def test_every_config_key_is_in_the_readme(key: str) -> None:
    assert re.search(rf"`{key}`|`\[feedsvc\.{key}\]`", README), f"config key {key} is not documented"


def test_ci_runs_exactly_the_readme_test_command() -> None:
    blocks = re.findall(r"```sh\n(.+?)\n```", README)
    assert len(blocks) >= 2, "README opens with the install-and-run command and the test command"
    install_and_run, test_command = blocks[0], blocks[1]
    assert "feedsvc refresh" in install_and_run
    assert "pytest" in test_command
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert test_command in ci.splitlines()
