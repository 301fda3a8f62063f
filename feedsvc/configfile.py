"""Writing config.toml for the user: `feedsvc init` and `feedsvc add`. The only user of tomlkit.

tomlkit edits a TOML document keeping its comments, blank lines and key order, so a source added
by `feedsvc add` lands at the end of its topic and the user's notes stay where they were.
Every change is checked by loading the new text as `feedsvc check` would before the file is
replaced (atomically): a change that would make the config invalid is never written.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.items import AoT, Table

from feedsvc.config import load_config
from feedsvc.errors import ConfigError, UsageError

STARTER = """\
# feedsvc configuration: every key is documented in README.md ("Configuration").
# Paths are relative to this file. `feedsvc check` validates it; `feedsvc add URL` adds a source.

[feedsvc]
output_dir = "feeds"                 # where <topic id>.atom, index.opml and index.html are written
state = "state/feedsvc.sqlite"       # SQLite state: items, first-seen times, validators, source health
# base_url = "https://feeds.example.org/"   # where output_dir is published (enables self links)
interval = "1h"                      # default schedule for `feedsvc run`
timezone = "UTC"                     # for dates written without a zone
max_entries = 50                     # entries per feed

# Topics: one feed each, from one or more pages. `feedsvc add URL --topic ID` writes them, e.g.
#
# [[topics]]
# id = "python-news"
# title = "Python Insider"
# language = "en"
#
# [[topics.sources]]
# url = "https://blog.python.org/"
# item = "div.post"                  # CSS selectors, only where automatic detection picks wrong
# title = "h3"
# link = "h3 a@href"
"""


def write_starter(path: Path) -> None:
    """A commented starter config.toml; refuses to overwrite a file that exists."""
    try:
        with path.open("x", encoding="utf-8") as f:
            f.write(STARTER)
    except FileExistsError:
        raise UsageError(f"init: {path} exists; not overwritten (edit it, or `feedsvc add URL`)") from None
    except OSError as exc:
        raise UsageError(f"init: cannot write {path}: {exc.strerror}") from None


def source_toml(source: dict[str, str]) -> str:
    """A [[topics.sources]] table as text, ready to paste into config.toml."""
    return "[[topics.sources]]\n" + "".join(f"{k} = {json.dumps(v, ensure_ascii=False)}\n"
                                            for k, v in source.items())


def topic_id_for(url: str) -> str:
    """A topic id made from a URL: its host and last path segment, lowercase letters, digits and '-'."""
    m = re.match(r"^[a-z][a-z0-9+.-]*://(?:www\.)?([^/?#]*)(.*)$", url, re.I)
    host, path = (m.group(1), m.group(2)) if m else ("", url)
    last = next((p for p in reversed(re.split(r"[/?#]", path)) if p), "")
    words = re.sub(r"[^a-z0-9]+", "-", f"{host.split(':')[0].split('.')[0]} {Path(last).stem}".lower()).strip("-")
    return words[:40].strip("-") or "topic"


def add_source(path: Path, topic_id: str, source: dict[str, str], topic: dict[str, Any]) -> bool:
    """Append `source` to topic `topic_id` of the config at `path` (a new topic with the `topic` keys
    when there is none). Returns whether the topic is new. Raises UsageError or ConfigError, and then
    writes nothing."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"add: {path} does not exist; `feedsvc init` writes a starter") from None
    try:
        doc = tomlkit.parse(text)
    except tomlkit.exceptions.ParseError as exc:
        raise ConfigError(str(path), "", f"not valid TOML: {exc}") from None
    topics = doc.get("topics")
    if topics is None:
        topics = tomlkit.aot()
        doc.append("topics", topics)
    if not isinstance(topics, AoT):
        raise ConfigError(str(path), "topics", "must be [[topics]] tables")
    table = next((t for t in topics if t.get("id") == topic_id), None)
    new = table is None
    if table is None:
        table = tomlkit.table()
        table.update({"id": topic_id, **{k: v for k, v in topic.items() if v is not None}})
        topics.append(table)
    sources = table.get("sources")
    if sources is None:
        sources = tomlkit.aot()
        table.append("sources", sources)
    if any(s.get("url") == source["url"] for s in sources):
        raise UsageError(f"add: topic {topic_id!r} already has the source {source['url']}")
    entry: Table = tomlkit.table()
    entry.update(source)
    sources.append(entry)
    _replace_checked(path, tomlkit.dumps(doc))
    return new


def _replace_checked(path: Path, text: str) -> None:
    """Write `text` over the config only if it loads as a valid config (atomically: temp + rename)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        try:
            load_config(tmp)  # the same checks as `feedsvc check`; relative paths resolve the same way
        except ConfigError as exc:  # name the user's file, not the temporary one
            raise ConfigError(str(path), exc.key, exc.problem + " (the change was not written)") from None
        os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
