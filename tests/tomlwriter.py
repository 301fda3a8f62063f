"""Writing test configs as TOML: one place for the tests that build config files from dicts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def toml_value(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def write_config(path: Path, topics: list[dict[str, Any]], **settings: Any) -> Path:
    """config.toml with fast test defaults; each topic dict may hold a "sources" list of dicts."""
    base = {"output_dir": "feeds", "state": "state/feedsvc.sqlite", "interval": "1h", "jitter": "0s",
            "host_delay": "0s"}
    base.update(settings)
    lines = ["[feedsvc]"] + [f"{k} = {toml_value(v)}" for k, v in base.items()]
    for topic in topics:
        lines += ["", "[[topics]]"]
        lines += [f"{k} = {toml_value(v)}" for k, v in topic.items() if k != "sources"]
        for source in topic.get("sources", []):
            lines += ["[[topics.sources]]"] + [f"{k} = {toml_value(v)}" for k, v in source.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
