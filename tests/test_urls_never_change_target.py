"""Links never change target through a real refresh (issue 18, point 8): a link whose path holds "//"
("…/*-http://dailynews.yahoo.co.jp/…", as on ../shared/corpus/pages/ja-yahoo-jp-top.html) is published
with its "//", whether it is written relative to the page or to the page's <base href>.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import feedparser

from atomcheck import assert_valid_atom
from feedsvc import pipeline
from feedsvc.config import load_config

NOW = datetime(2026, 1, 20, 3, 0, tzinfo=UTC)
STORIES = [  # (path of the story's link, headline)
    ("f/topics/top/1/*-http://dailynews.yahoo.co.jp/fc/economy/japan_air_line/?1263260393", "日航株ストップ安 売買不成立"),
    ("f/topics/top/2/*-http://dailynews.yahoo.co.jp/fc/domestic/rikuzankai/?1263265009", "小沢氏の問題言及せず 政府与党"),
    ("f/topics/top/3/*-http://dailynews.yahoo.co.jp/fc/domestic/weather/?1263257382", "低気圧発達 西日本で大雪恐れ"),
    ("f/topics/top/4/*-http://dailynews.yahoo.co.jp/fc/domestic/shipwreck/?1263253429", "漁船不明 無人救命いかだ発見"),
    ("f/topics/top/5/*-http://dailynews.yahoo.co.jp/fc/world/haiti/?1263262000", "ハイチ地震 首都で建物倒壊"),
    ("f/topics/top/6/*-http://dailynews.yahoo.co.jp/fc/sports/ski/?1263263000", "スキー場開き 各地でにぎわい"),
]


def page(base: str | None) -> bytes:
    items = "".join(f'<li><a href="{href}">{title}</a></li>' for href, title in STORIES)
    base_tag = f'<base href="{base}">' if base else ""
    return (f'<!doctype html><html lang="ja"><head><meta charset="utf-8">{base_tag}<title>トピックス</title></head>'
            f'<body><main><h2>トピックス</h2><ul class="topics">{items}</ul></main></body></html>').encode()


def published_links(http_server, tmp_path: Path, body: bytes) -> set[str]:
    url = http_server.route("/portal/", body, headers={"Content-Type": "text/html; charset=utf-8"})
    config_path = tmp_path / "config.toml"
    config_path.write_text(
        '[feedsvc]\nhost_delay = "0s"\n[[topics]]\nid = "top"\ntitle = "トピックス"\nlanguage = "ja"\n'
        f'timezone = "Asia/Tokyo"\n[[topics.sources]]\nurl = "{url}"\n', encoding="utf-8")
    config = load_config(config_path)
    pipeline.refresh(config, now=NOW)
    data = (config.output_dir / "top.atom").read_bytes()
    assert_valid_atom(data)
    return {e.link for e in feedparser.parse(data).entries}


def test_links_relative_to_the_page_keep_their_double_slash(http_server, tmp_path: Path) -> None:
    links = published_links(http_server, tmp_path, page(None))
    assert links == {http_server.url("/portal/") + href for href, _ in STORIES}


def test_links_relative_to_base_href_keep_their_double_slash(http_server, tmp_path: Path) -> None:
    base = http_server.url("/_ylh=X3oDMTB0NWxnaGxs/")
    links = published_links(http_server, tmp_path, page(base))
    assert links == {base + href for href, _ in STORIES}


def test_links_inside_summaries_keep_their_double_slash() -> None:
    from feedsvc.normalize import sanitize_html

    html = sanitize_html('<a href="f/1/*-http://dailynews.example/fc/x">more</a>', "http://portal.example/top/")
    assert 'href="http://portal.example/top/f/1/*-http://dailynews.example/fc/x"' in html


def test_a_redirect_to_a_path_with_a_double_slash_is_followed_as_written(http_server) -> None:
    from feedsvc.config import SourceConfig
    from feedsvc.fetch import Fetcher

    target = "/dir/f/1/*-http://dailynews.example/fc/x"
    http_server.route(target, "<html><body><p>here</p></body></html>", headers={"Content-Type": "text/html"})
    # a relative Location, resolved against /dir/go (urllib's urljoin would ask for …/*-http:/dailynews…)
    src = http_server.route("/dir/go", status=302, headers={"Location": "f/1/*-http://dailynews.example/fc/x"})
    with Fetcher(user_agent="feedsvc-test", host_delay=0, timeout=5) as f:
        page = f.fetch(SourceConfig(url=src), None, now=NOW)
    assert page.url == http_server.url(target) and http_server.hits_for(target)
