"""Getting a source in without hand-editing (issue 20, 6-7): `init`, `add`, `preview --toml`, `check`,
help texts, a did-you-mean. Through the CLI as a user types it, against a real loopback server."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import feedparser

ROOT = Path(__file__).resolve().parent.parent
HTML = {"Content-Type": "text/html; charset=utf-8"}


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "feedsvc", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)


def listing(title: str, n: int = 4) -> str:
    cards = "".join(f'<li class="card"><h3><a href="/{title.lower()}/{i}">{title} story {i} with a headline</a></h3>'
                    f'<p>What happened in story {i}, told in a sentence or two for the reader.</p></li>'
                    for i in range(n))
    return f"<!doctype html><html><head><title>{title} news</title></head><body><main><ul>{cards}</ul></main></body></html>"


def test_init_then_add_then_refresh(tmp_path: Path, http_server) -> None:
    one = http_server.route("/world/", listing("World"), headers=HTML)
    two = http_server.route("/asia/", listing("Asia"), headers=HTML)
    init = cli(tmp_path, "init")
    assert init.returncode == 0 and (tmp_path / "config.toml").is_file()
    starter = (tmp_path / "config.toml").read_text()
    assert cli(tmp_path, "init").returncode == 2  # never over an existing file
    assert (tmp_path / "config.toml").read_text() == starter
    fresh = cli(tmp_path, "check")
    assert fresh.returncode == 2 and "topics" in fresh.stderr

    added = cli(tmp_path, "add", one, "--topic", "world")
    assert added.returncode == 0, added.stderr
    assert "4 item(s)" in added.stdout and "World story 0 with a headline" in added.stdout
    assert "added to new topic 'world'" in added.stdout
    second = cli(tmp_path, "add", two, "--topic", "world", "--item", "li.card", "--title", "h3",
                 "--link", "h3 a@href")
    assert second.returncode == 0, second.stderr
    text = (tmp_path / "config.toml").read_text()
    assert text.startswith(starter.rstrip("\n"))  # the starter's comments and layout are kept
    config = tomllib.loads(text)
    (topic,) = config["topics"]
    assert topic["id"] == "world" and topic["title"] == "World news"
    assert topic["sources"] == [{"url": one}, {"url": two, "item": "li.card", "title": "h3", "link": "h3 a@href"}]

    again = cli(tmp_path, "add", one, "--topic", "world")
    assert again.returncode == 2 and "already has the source" in again.stderr
    http_server.route("/empty/", "<html><body><p>Nothing listed here.</p></body></html>", headers=HTML)
    empty = cli(tmp_path, "add", http_server.url("/empty/"), "--topic", "empty")
    assert empty.returncode == 1 and "nothing added" in empty.stderr
    assert (tmp_path / "config.toml").read_text() == text  # unchanged

    check = cli(tmp_path, "check")
    assert check.returncode == 0 and "world: World news (2 source(s), every 1h, atom)" in check.stdout
    assert cli(tmp_path, "refresh").returncode == 0
    feed = feedparser.parse((tmp_path / "feeds" / "world.atom").read_bytes())
    assert len(feed.entries) == 8


def test_add_a_local_file_writes_its_path_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "list.html").write_text(listing("Local"), encoding="utf-8")
    (tmp_path / "conf").mkdir()
    assert cli(tmp_path, "--config", "conf/config.toml", "init").returncode == 0
    added = cli(tmp_path, "--config", "conf/config.toml", "add", "site/list.html")
    assert added.returncode == 0, added.stderr
    (topic,) = tomllib.loads((tmp_path / "conf" / "config.toml").read_text())["topics"]
    assert topic["sources"] == [{"url": "../site/list.html"}] and topic["id"] == "list"
    assert cli(tmp_path, "--config", "conf/config.toml", "check").returncode == 0
    (tmp_path / "site" / "list.html").unlink()
    missing = cli(tmp_path, "--config", "conf/config.toml", "check")
    assert missing.returncode == 2
    assert "topics[0].sources[0].url" in missing.stderr and "no such file" in missing.stderr


def test_preview_toml_prints_a_table_to_paste(tmp_path: Path) -> None:
    out = cli(tmp_path, "preview", "https://example.org/news/", "--toml", "--item", "li.card", "--date",
              "time@datetime")
    assert out.returncode == 0, out.stderr
    assert out.stdout == ('[[topics.sources]]\nurl = "https://example.org/news/"\nitem = "li.card"\n'
                          'date = "time@datetime"\n')
    assert tomllib.loads(out.stdout.replace("[[topics.sources]]", "[[s]]"))["s"][0]["item"] == "li.card"


def test_a_mistyped_command_gets_a_did_you_mean(tmp_path: Path) -> None:
    out = cli(tmp_path, "refesh")
    assert out.returncode == 2 and "did you mean 'refresh'?" in out.stderr


def test_help_texts_say_what_each_option_does(tmp_path: Path) -> None:
    serve = cli(tmp_path, "serve", "--help").stdout
    assert "(default: 127.0.0.1)" in serve and "(default: 8080)" in serve
    preview = " ".join(cli(tmp_path, "preview", "--help").stdout.split())
    assert "--date CSS CSS selector of the date in an item (attr form: time@datetime)" in preview
    assert "--title CSS CSS selector of the headline in an item --link" in preview  # no attr hint where none fits


def test_preview_says_when_it_is_unsure_and_how_to_take_the_other_list(tmp_path: Path) -> None:
    def block(cls: str, word: str) -> str:
        return f'<ul class="{cls}">' + "".join(
            f'<li><h3><a href="/{word}/{i}">{word.title()} story {i} with a headline of some length</a></h3>'
            f'<p>What happened in {word} story {i}, told in a sentence or two.</p></li>' for i in range(6)) + "</ul>"

    (tmp_path / "two.html").write_text(f"<!doctype html><html><body><div class='a'>{block('news', 'news')}</div>"
                                       f"<div class='b'>{block('blog', 'blog')}</div></body></html>", encoding="utf-8")
    out = cli(tmp_path, "preview", "two.html")
    assert out.returncode == 0, out.stderr
    assert "unsure: another list scored" in out.stdout
    command = out.stdout.split("To take it instead: ")[1].strip()
    taken = "news" if "/news/0" in out.stdout.split("unsure:")[0] else "blog"
    other = "blog" if taken == "news" else "news"
    alt = cli(tmp_path, *shlex.split(command)[1:], "--json")
    assert alt.returncode == 0, alt.stderr
    links = [i["link"] for i in json.loads(alt.stdout)]
    assert len(links) == 6 and all(f"/{other}/" in link for link in links)
