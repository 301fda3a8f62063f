"""Config loading: defaults, paths, and a table of wrong configs that each get one clear line."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from feedsvc.config import FieldSelector, check_cron, load_config, parse_duration
from feedsvc.errors import ConfigError

GOOD_TOPIC = '''
[[topics]]
id = "t"
title = "T"
[[topics.sources]]
url = "page.txt"
'''


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_and_relative_paths(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD_TOPIC))
    assert cfg.output_dir == tmp_path / "feeds"
    assert cfg.state == tmp_path / "state" / "feedsvc.sqlite"
    assert cfg.max_entries == 50 and cfg.timezone == "UTC" and cfg.interval == timedelta(hours=1)
    topic = cfg.topics[0]
    assert topic.sources[0].url == (tmp_path / "page.txt").as_uri()
    assert topic.timezone == "UTC" and topic.max_entries == 50 and topic.formats == ("atom",)
    assert "feedsvc/" in cfg.user_agent


def test_topic_inherits_and_overrides(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, '''
[feedsvc]
timezone = "Asia/Tokyo"
interval = "15m"
max_entries = 20
base_url = "https://feeds.example.org/x"
[[topics]]
id = "a"
title = "A"
interval = "1d"
include = ["和平"]
[[topics.sources]]
url = "https://example.org/a"
item = "li.card"
link = "a@href"
date = "time@datetime"
[[topics]]
id = "b"
title = "B"
timezone = "Europe/Paris"
cron = "*/30 6-23 * * *"
[[topics.sources]]
url = "file:///srv/page.html"
'''))
    a, b = cfg.topics
    assert a.timezone == "Asia/Tokyo" and a.interval == timedelta(days=1) and a.max_entries == 20
    assert a.sources[0].selectors.link == FieldSelector("a", "href")
    assert a.sources[0].timezone == "Asia/Tokyo"
    assert b.cron == "*/30 6-23 * * *" and b.sources[0].timezone == "Europe/Paris"
    assert cfg.base_url == "https://feeds.example.org/x/"


@pytest.mark.parametrize("text,seconds", [
    pytest.param("30s", 30, id="seconds"),
    pytest.param("15m", 900, id="minutes"),
    pytest.param("1h", 3600, id="hours"),
    pytest.param("1d", 86400, id="days"),
    pytest.param("1h30m", 5400, id="combined"),
    pytest.param("500ms", 0.5, id="milliseconds"),
])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "10", "1x", "h1", "1h 30", "-5m"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize("text,ok", [
    ("*/15 * * * *", True), ("0 6-23 * * mon-fri", True), ("5,35 * * * *", True),
    ("* * * *", False), ("61 * * * *", False), ("* 24 * * *", False), ("every hour", False),
])
def test_cron(text: str, ok: bool) -> None:
    if ok:
        assert check_cron(text)
    else:
        with pytest.raises(ValueError):
            check_cron(text)


# Each wrong config: (TOML text, the key the message must name, a word of the fix).
BAD = [
    pytest.param("[feedsvc]\nmax_entries = 'ten'\n" + GOOD_TOPIC, "feedsvc.max_entries", "integer", id="wrong-type-int"),
    pytest.param("[feedsvc]\nmax_entries = 0\n" + GOOD_TOPIC, "feedsvc.max_entries", "at least 1", id="zero-max"),
    pytest.param("[feedsvc]\noutput_dirr = 'x'\n" + GOOD_TOPIC, "feedsvc.output_dirr", "output_dir", id="unknown-key-did-you-mean"),
    pytest.param("[feedsvc]\ninterval = '10'\n" + GOOD_TOPIC, "feedsvc.interval", "30s", id="bad-duration"),
    pytest.param("[feedsvc]\ninterval = 15\n" + GOOD_TOPIC, "feedsvc.interval", "string", id="duration-not-string"),
    pytest.param("[feedsvc]\ncron = '* * *'\n" + GOOD_TOPIC, "feedsvc.cron", "five fields", id="bad-cron"),
    pytest.param("[feedsvc]\ntimezone = 'Mars/Olympus'\n" + GOOD_TOPIC, "feedsvc.timezone", "IANA", id="unknown-timezone"),
    pytest.param("[feedsvc]\nbase_url = 'feeds.example.org'\n" + GOOD_TOPIC, "feedsvc.base_url", "http", id="base-url-not-url"),
    pytest.param("[feedsvc]\nformats = ['atom', 'xml']\n" + GOOD_TOPIC, "feedsvc.formats", "atom, rss, json", id="unknown-format"),
    pytest.param("[feedsvc]\nuser_agent = true\n" + GOOD_TOPIC, "feedsvc.user_agent", "string", id="bool-for-string"),
    pytest.param("[feedsvc]\n", "topics", "required", id="no-topics"),
    pytest.param("topics = []\n", "topics", "at least one", id="empty-topics"),
    pytest.param("[[topics]]\ntitle = 'T'\n[[topics.sources]]\nurl = 'a.txt'\n", "topics[0].id", "required", id="missing-id"),
    pytest.param("[[topics]]\nid = '../x'\ntitle = 'T'\n[[topics.sources]]\nurl = 'a.txt'\n", "topics[0].id", "lowercase", id="id-path-traversal"),
    pytest.param("[[topics]]\nid = 'Peace Talks'\ntitle = 'T'\n[[topics.sources]]\nurl = 'a.txt'\n", "topics[0].id", "lowercase", id="id-with-space"),
    pytest.param("[[topics]]\nid = 't'\n[[topics.sources]]\nurl = 'a.txt'\n", "topics[0].title", "required", id="missing-title"),
    pytest.param("[[topics]]\nid = 't'\ntitle = 'T'\n", "topics[0].sources", "required", id="missing-sources"),
    pytest.param(GOOD_TOPIC + GOOD_TOPIC, "topics[1].id", "unique", id="duplicate-topic-id"),
    pytest.param("[[topics]]\nid = 't'\ntitle = 'T'\n[[topics.sources]]\nurl = 'ftp://x.org/a'\n", "topics[0].sources[0].url", "http", id="bad-url-scheme"),
    pytest.param("[[topics]]\nid = 't'\ntitle = 'T'\n[[topics.sources]]\nurl = 'http://'\n", "topics[0].sources[0].url", "http", id="url-without-host"),
    pytest.param("[[topics]]\nid = 't'\ntitle = 'T'\n[[topics.sources]]\nurl = 'a.txt'\nitem = 'li[[['\n", "topics[0].sources[0].item", "CSS", id="bad-css"),
    pytest.param("[[topics]]\nid = 't'\ntitle = 'T'\n[[topics.sources]]\nurl = 'a.txt'\ntitle = 'h3'\n", "topics[0].sources[0].item", "required", id="field-selector-without-item"),
    pytest.param("[[topics]]\nid = 't'\ntitle = 'T'\n[[topics.sources]]\nurl = 'a.txt'\nencoding = 'klingon'\n", "topics[0].sources[0].encoding", "encoding", id="unknown-encoding"),
    pytest.param("[[topics]]\nid = 't'\ntitle = 'T'\n[[topics.sources]]\nurl = 'a.txt'\nrobots = 'no'\n", "topics[0].sources[0].robots", "true or false", id="robots-not-bool"),
    pytest.param("[[topics]]\nid = 't'\ntitle = 'T'\nincldue = ['x']\n[[topics.sources]]\nurl = 'a.txt'\n", "topics[0].incldue", "include", id="topic-typo"),
    pytest.param("[[topics]]\nid = 't'\ntitle = 'T'\ninclude = ['']\n[[topics.sources]]\nurl = 'a.txt'\n", "topics[0].include[0]", "non-empty", id="empty-keyword"),
    pytest.param("[[topics]]\nid = 't'\ntitle = 'T'\n[[topics.sources]]\nurl = 'a.txt'\nselector = 'li'\n", "topics[0].sources[0].selector", "known keys", id="source-unknown-key-lists-known"),
    pytest.param("[feedsvc\n", "", "TOML", id="not-toml"),
    pytest.param("[feedsvc]\nwebsub_hub = 'https://hub.example.org/'\n" + GOOD_TOPIC, "feedsvc.websub_hub", "base_url", id="hub-without-base-url"),
    pytest.param("[[topics]]\nid = 't'\ntitle = 'T'\nlanguage = 'ja jp'\n[[topics.sources]]\nurl = 'a.txt'\n", "topics[0].language", "language tag", id="bad-language-tag"),
]


@pytest.mark.parametrize("text,key,fix", BAD)
def test_bad_config_names_file_key_and_fix(tmp_path: Path, text: str, key: str, fix: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    assert info.value.key == key
    assert fix.lower() in message.lower()
    assert "\n" not in message


def test_output_dir_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "out").write_text("not a folder")
    with pytest.raises(ConfigError, match="output_dir.*not a folder"):
        load_config(write(tmp_path, "[feedsvc]\noutput_dir = 'out'\n" + GOOD_TOPIC))


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nope.toml")


def test_cli_bad_config_exit_2_one_line_nothing_written(tmp_path: Path) -> None:
    path = write(tmp_path, "[feedsvc]\nmax_entrys = 5\n" + GOOD_TOPIC)
    before = sorted(p.name for p in tmp_path.iterdir())
    proc = subprocess.run([sys.executable, "-m", "feedsvc", "--config", str(path), "refresh"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)})
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert str(path) in lines[0] and "feedsvc.max_entrys" in lines[0] and "max_entries" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize("text, parsed", [
    pytest.param("a@href", FieldSelector("a", "href"), id="attr"),
    pytest.param("h3", FieldSelector("h3"), id="plain"),
    pytest.param("@href", FieldSelector("", "href"), id="the-item-itself"),
    pytest.param("~ p.posted a@href", FieldSelector("p.posted a", "href", following=True), id="following-attr"),
    pytest.param("~div.post-body", FieldSelector("div.post-body", None, following=True), id="following-no-space"),
])
def test_field_selector_forms(text: str, parsed: FieldSelector) -> None:
    assert FieldSelector.parse(text) == parsed


def test_following_selector_in_config_is_checked_without_its_tilde(tmp_path: Path) -> None:
    """A flat blog's source: the headline is the item, its permalink comes after it."""
    path = tmp_path / "config.toml"
    path.write_text("[[topics]]\nid = 't'\ntitle = 'T'\n[[topics.sources]]\nurl = 'a.html'\nitem = 'div.blog h3'\n"
                    "link = '~ a.permalink@href'\nsummary = '~ div.post-body'\n", encoding="utf-8")
    sel = load_config(path).topics[0].sources[0].selectors
    assert sel.link == FieldSelector("a.permalink", "href", following=True)
    assert sel.summary == FieldSelector("div.post-body", None, following=True)
    path.write_text(path.read_text(encoding="utf-8").replace("~ div.post-body", "~ div[[["), encoding="utf-8")
    with pytest.raises(ConfigError, match="summary"):
        load_config(path)


# ----------------------------------------------------------------------------- a PostgreSQL state

PG = "postgresql://feedsvc:s3cret@db.example.org:5432/feeds"


def test_a_postgresql_url_selects_postgresql_and_is_shown_without_its_password(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("FEEDSVC_STATE", raising=False)
    cfg = load_config(write(tmp_path, f'[feedsvc]\nstate = "{PG}"\n' + GOOD_TOPIC))
    assert cfg.state == PG and cfg.state_url == PG
    assert cfg.state_name == "postgresql://feedsvc:***@db.example.org:5432/feeds"
    assert cfg.lock_path == tmp_path / "config.toml.lock"  # one refresh at a time on this machine, as before
    assert not (tmp_path / "state").exists()
    sqlite_cfg = load_config(write(tmp_path, GOOD_TOPIC))
    assert sqlite_cfg.state_url is None and sqlite_cfg.state_name == str(tmp_path / "state" / "feedsvc.sqlite")
    assert sqlite_cfg.lock_path == tmp_path / "state" / "feedsvc.sqlite.lock"


def test_FEEDSVC_STATE_overrides_the_files_state(tmp_path: Path, monkeypatch) -> None:
    path = write(tmp_path, '[feedsvc]\nstate = "state/x.sqlite"\n' + GOOD_TOPIC)
    monkeypatch.setenv("FEEDSVC_STATE", PG)
    assert load_config(path).state_url == PG
    monkeypatch.setenv("FEEDSVC_STATE", "other/y.sqlite")  # a path, relative to the config file like `state`
    assert load_config(path).state == tmp_path / "other" / "y.sqlite"
    monkeypatch.setenv("FEEDSVC_STATE", "")
    assert load_config(path).state == tmp_path / "state" / "x.sqlite"


@pytest.mark.parametrize("url, problem", [
    ("postgresql://feedsvc:s3cret@db:99999/feeds", "not a valid URL"),
    ("postgresql://feedsvc:s3cret@db/feeds/more", "one database name"),
    ("postgresql://feedsvc:s3cret@db/feeds#x", "fragment"),
    ("postgresql://feedsvc:s3cret@db/feeds?sslmode", "option=value"),
    ("mysql://feedsvc:s3cret@db/feeds", "a file path or a postgresql:// URL"),
])
def test_a_bad_state_url_is_one_line_naming_the_key_and_the_file(tmp_path: Path, monkeypatch, url: str,
                                                                 problem: str) -> None:
    monkeypatch.delenv("FEEDSVC_STATE", raising=False)
    path = write(tmp_path, f'[feedsvc]\nstate = "{url}"\n' + GOOD_TOPIC)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: feedsvc.state: ") and problem in message and "s3cret" not in message
    assert "\n" not in message
    monkeypatch.setenv("FEEDSVC_STATE", url)
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, GOOD_TOPIC))
    assert str(info.value).startswith(f"{path}: FEEDSVC_STATE") and "s3cret" not in str(info.value)


def test_redact_url_hides_every_password() -> None:
    from feedsvc.config import redact_url

    assert redact_url("postgresql://u:p@h/d") == "postgresql://u:***@h/d"
    assert redact_url("postgres://u@h:5/d?sslmode=require&password=p") == "postgres://u@h:5/d?sslmode=require&password=***"
    assert redact_url("postgresql://h/d") == "postgresql://h/d"
