"""Issue 10.5, bad config through the real CLI: exit code 2, one line naming the file, the key and the fix,
and nothing written (no feeds/, no state/, no lock file).

tests/test_config.py checks the same kind of mistakes at load_config() level; this table runs
`python -m feedsvc --config … refresh` in a subprocess for each, as cron would, and compares the whole
folder before and after.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from test_robust_support import run_cli

TOPIC = '[[topics]]\nid = "t"\ntitle = "T"\n[[topics.sources]]\nurl = "page.txt"\n'


def topic(**changes: str) -> str:
    """TOPIC with lines replaced or added: topic(id='"../x"'), topic(url='"ftp://x"'), topic(extra='k = 1')."""
    lines = {"id": '"t"', "title": '"T"', **{k: v for k, v in changes.items() if k in ("id", "title")}}
    head = "".join(f"{k} = {v}\n" for k, v in lines.items() if v is not None)
    src = {"url": '"page.txt"', **{k: v for k, v in changes.items() if k == "url"}}
    return ("[[topics]]\n" + head + changes.get("topic_extra", "") + "[[topics.sources]]\n"
            + "".join(f"{k} = {v}\n" for k, v in src.items()) + changes.get("source_extra", ""))


def g(line: str) -> str:
    """A [feedsvc] table holding `line`, and a good topic."""
    return f"[feedsvc]\n{line}\n" + TOPIC


# (config text, the key the line must name ("" when the file itself is wrong), a fix it must say, setup)
CASES = [
    pytest.param(g("max_entries = 'ten'"), "feedsvc.max_entries", "an integer", {}, id="string-for-int"),
    pytest.param(g("max_entries = 10.5"), "feedsvc.max_entries", "an integer", {}, id="float-for-int"),
    pytest.param(g("max_entries = 0"), "feedsvc.max_entries", "at least 1", {}, id="zero-max-entries"),
    pytest.param(g("max_bytes = -5"), "feedsvc.max_bytes", "at least 1", {}, id="negative-max-bytes"),
    pytest.param(g("user_agent = true"), "feedsvc.user_agent", "a string", {}, id="bool-for-string"),
    pytest.param(g("formats = 'atom'"), "feedsvc.formats", "a list", {}, id="string-for-list"),
    pytest.param(g("output_dirr = 'x'"), "feedsvc.output_dirr", "did you mean 'output_dir'", {},
                 id="unknown-key-did-you-mean"),
    pytest.param("colour = 'red'\n" + TOPIC, "colour", "known keys", {}, id="unknown-top-level-key"),
    pytest.param("feedsvc = 3\n" + TOPIC, "feedsvc", "a table", {}, id="feedsvc-not-a-table"),
    pytest.param(g("interval = '10'"), "feedsvc.interval", "30s, 15m, 1h", {}, id="duration-without-unit"),
    pytest.param(g("interval = 15"), "feedsvc.interval", "a string", {}, id="duration-as-number"),
    pytest.param(g("retention = '0d'"), "feedsvc.retention", "longer than zero", {}, id="zero-duration"),
    pytest.param(g("host_delay = '-1s'"), "feedsvc.host_delay", "30s, 15m, 1h", {}, id="negative-duration"),
    pytest.param(g("cron = '* * *'"), "feedsvc.cron", "five fields", {}, id="cron-three-fields"),
    pytest.param(g("cron = '61 * * * *'"), "feedsvc.cron", "out of range 0-59", {}, id="cron-minute-61"),
    pytest.param(g("timezone = 'Mars/Olympus'"), "feedsvc.timezone", "Asia/Tokyo", {}, id="unknown-timezone"),
    pytest.param(g("base_url = 'feeds.example.org'"), "feedsvc.base_url", "http(s) URL", {}, id="base-url-no-scheme"),
    pytest.param(g("formats = ['atom', 'xml']"), "feedsvc.formats", "choose from atom, rss, json", {},
                 id="unknown-format"),
    pytest.param(g("formats = []"), "feedsvc.formats", "at least one format", {}, id="no-format"),
    pytest.param(g("websub_hub = 'https://hub.example.org/'"), "feedsvc.websub_hub", "base_url", {},
                 id="hub-without-base-url"),
    pytest.param("[feedsvc.hosts]\n'example.com' = 'fast'\n" + TOPIC, "feedsvc.hosts.example.com", "30s, 15m", {},
                 id="host-delay-not-duration"),
    pytest.param("[feedsvc]\n", "topics", "is required", {}, id="no-topics"),
    pytest.param("topics = []\n", "topics", "at least one [[topics]]", {}, id="empty-topics"),
    pytest.param(topic(id=None), "topics[0].id", "is required", {}, id="missing-id"),
    pytest.param(topic(id='"../x"'), "topics[0].id", "lowercase letters, digits and '-'", {}, id="id-path-traversal"),
    pytest.param(topic(id='"a/b"'), "topics[0].id", "lowercase letters, digits and '-'", {}, id="id-with-slash"),
    pytest.param(topic(id='"Peace Talks"'), "topics[0].id", "lowercase letters", {}, id="id-with-space-and-capitals"),
    pytest.param(topic(title=None), "topics[0].title", "is required", {}, id="missing-title"),
    pytest.param('[[topics]]\nid = "t"\ntitle = "T"\n', "topics[0].sources", "is required", {}, id="missing-sources"),
    pytest.param(TOPIC + TOPIC, "topics[1].id", "must be unique", {}, id="duplicate-topic-id"),
    pytest.param(topic(url='"ftp://example.org/a"'), "topics[0].sources[0].url", "only http, https and file", {},
                 id="url-ftp"),
    pytest.param(topic(url='"http://"'), "topics[0].sources[0].url", "http(s) URL", {}, id="url-without-host"),
    pytest.param(topic(url='""'), "topics[0].sources[0].url", "must not be empty", {}, id="url-empty"),
    pytest.param(topic(topic_extra="timezone = 'Tokyo'\n"), "topics[0].timezone", "IANA", {},
                 id="topic-unknown-timezone"),
    pytest.param(topic(topic_extra="incldue = ['x']\n"), "topics[0].incldue", "did you mean 'include'", {},
                 id="topic-key-typo"),
    pytest.param(topic(topic_extra="include = ['']\n"), "topics[0].include[0]", "non-empty string", {},
                 id="empty-keyword"),
    pytest.param(topic(topic_extra="language = 'ja jp'\n"), "topics[0].language", "'en-US'", {},
                 id="bad-language-tag"),
    pytest.param(topic(topic_extra="interval = 'hourly'\n"), "topics[0].interval", "1h30m", {},
                 id="topic-bad-interval"),
    pytest.param(topic(source_extra="item = 'li[[['\n"), "topics[0].sources[0].item", "not a valid CSS selector",
                 {}, id="bad-css"),
    pytest.param(topic(source_extra="title = 'h3'\n"), "topics[0].sources[0].item", "is required when field", {},
                 id="field-selector-without-item"),
    pytest.param(topic(source_extra="encoding = 'klingon'\n"), "topics[0].sources[0].encoding", "cp932", {},
                 id="unknown-encoding"),
    pytest.param(topic(source_extra="robots = 'no'\n"), "topics[0].sources[0].robots", "true or false", {},
                 id="robots-not-bool"),
    pytest.param(topic(source_extra="selector = 'li'\n"), "topics[0].sources[0].selector", "known keys", {},
                 id="source-unknown-key"),
    pytest.param("[feedsvc\n" + TOPIC, "", "not valid TOML", {}, id="not-toml"),
    pytest.param(None, "", "not UTF-8", {}, id="not-utf8"),
    pytest.param(g("output_dir = 'out'"), "feedsvc.output_dir", "point output_dir at a folder",
                 {"out": "a file, not a folder"}, id="output-dir-is-a-file"),
    pytest.param(g("state = 'db'"), "feedsvc.state", "point state at a file", {"db/": None}, id="state-is-a-folder"),
    pytest.param(g("state = 'afile/feedsvc.sqlite'"), "feedsvc.state", "folder", {"afile": "a file"},
                 id="state-parent-is-a-file"),
    pytest.param(g("output_dir = 'afile/feeds'"), "feedsvc.output_dir", "folder", {"afile": "a file"},
                 id="output-dir-parent-is-a-file"),
]


def snapshot(folder: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in folder.rglob("*")}


@pytest.mark.parametrize("text,key,fix,setup", CASES)
def test_bad_config_exit_2_one_line_nothing_written(tmp_path: Path, text: str | None, key: str, fix: str,
                                                    setup: dict[str, str | None]) -> None:
    config = tmp_path / "config.toml"
    if text is None:
        config.write_bytes(b"[feedsvc]\ntimezone = '\x93Tokyo\x94'\n" + TOPIC.encode())  # cp1252 quotes
    else:
        config.write_text(text, encoding="utf-8")
    (tmp_path / "page.txt").write_text("2026年1月5日　交渉が始まった。\n", encoding="utf-8")
    for name, content in setup.items():
        if content is None:
            (tmp_path / name).mkdir()
        else:
            (tmp_path / name).write_text(content, encoding="utf-8")
    before = snapshot(tmp_path)
    proc = run_cli(config, "refresh", cwd=tmp_path, timeout=60)
    lines = proc.stderr.splitlines()
    assert (proc.returncode, len(lines)) == (2, 1), proc.stderr
    line = lines[0]
    assert line.startswith(f"feedsvc: {config}"), line  # names the file first
    if key:
        assert f"{config}: {key}: " in line, line  # then the key, exactly
    assert fix in line, line  # and what to do
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert snapshot(tmp_path) == before  # nothing written: no feeds/, no state/, no lock


@pytest.mark.parametrize("command", [
    pytest.param(["refresh"], id="refresh"),
    pytest.param(["refresh", "--dry-run"], id="refresh-dry-run"),
    pytest.param(["run"], id="run"),
    pytest.param(["check"], id="check"),
    pytest.param(["status"], id="status"),
    pytest.param(["serve", "--port", "0"], id="serve"),
])
def test_every_command_refuses_a_bad_config_the_same_way(tmp_path: Path, command: list[str]) -> None:
    config = tmp_path / "config.toml"
    config.write_text(g("interval = 'often'"), encoding="utf-8")
    before = snapshot(tmp_path)
    proc = run_cli(config, *command, cwd=tmp_path, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [f"feedsvc: {config}: feedsvc.interval: 'often' is not a duration; "
                                        "write it like 30s, 15m, 1h, 1d or 1h30m"]
    assert snapshot(tmp_path) == before
