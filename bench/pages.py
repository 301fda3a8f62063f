"""Realistic Japanese news listing pages and a loopback HTTP server for the benchmarks.

    page(i, version=0) -> bytes     source i's topic page: ~150 KB, 50 items
    LoopbackServers(n)              one ThreadingHTTPServer per address 127.0.x.y, ETag / If-None-Match -> 304

A page looks like a real news site's topic page: a <head> with big inline styles and scripts
(tag-manager snippets, a JSON config blob), a header with a mega-menu of ~120 links, breadcrumbs,
a featured story, 50 cards (<article>, <h3><a>, <p class="summary">, <time datetime>, <img>,
category chips), an ad slotted into the list, a pager, a sidebar with a ranking box, "related
topics" and a newsletter box, and a fat footer. Text is Japanese (3 bytes a character in UTF-8).

Everything is deterministic in (i, version): `version` k shows k × 5 new stories at the top of the
listing (the oldest drop off the end) and a reshuffled ranking, as a topic page does when it moves.
"""

from __future__ import annotations

import hashlib
import random
import selectors
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

JST = timezone(timedelta(hours=9))
ITEMS = 50
NEW_PER_VERSION = 5
BASE_DAY = datetime(2026, 1, 20, 9, 0, tzinfo=JST)

_PEOPLE = ["高市首相", "石破氏", "トランプ大統領", "ゼレンスキー大統領", "プーチン大統領", "習近平国家主席",
           "林官房長官", "赤沢経済再生相", "植田日銀総裁", "小池都知事", "吉村府知事", "国連事務総長"]
_PLACES = ["東京", "大阪", "ワシントン", "北京", "ソウル", "キーウ", "モスクワ", "ジュネーブ", "ニューヨーク",
           "福岡", "札幌", "名古屋", "ロンドン", "パリ", "ベルリン", "ガザ", "エルサレム", "台北"]
_TOPICS = ["和平交渉", "停戦協議", "関税交渉", "日米首脳会談", "補正予算", "物価高対策", "賃上げ", "金融政策",
           "少子化対策", "防衛費", "エネルギー政策", "半導体支援", "地震対策", "選挙制度改革", "外交日程"]
_VERBS = ["協議した", "合意した", "表明した", "発表した", "否定した", "見送った", "調整している", "検討に入った",
          "懸念を示した", "強調した", "求めた", "批判した", "明らかにした", "方針を固めた"]
_BITS = ["関係者によると", "複数の政府筋が明らかにした", "記者会見で", "声明を出し", "オンライン形式で",
         "来週にも", "年内の妥結を目指す", "双方の隔たりは大きい", "市場では警戒感が広がった", "与野党の間で",
         "首脳同士の電話会談で", "現地時間の", "詳細は明らかにしていない", "国際社会の注目が集まる"]
# a pool of 2-3 kanji nouns, so that summaries vary like real reporting (a few fixed templates would
# make every story a near-duplicate of every other and measure the dedupe index's worst case instead)
_KANJI = ("政府経済会議首相外交国際交渉合意発表方針予算税制改革市場金融物価賃金雇用企業投資輸出輸入関税協議"
          "安全保障防衛条約首脳会談選挙議会法案審議野党与党地方自治教育医療福祉年金環境気候電力原発再生技術"
          "研究開発宇宙衛星通信情報報道事件裁判警察災害地震台風避難支援復興農業漁業観光交通鉄道空港港湾都市"
          "住宅人口少子高齢社会文化芸術競技大会記録優勝選手監督契約株価為替円相場利上金利銀行証券保険半導体")
_NOUNS = sorted({_KANJI[a] + _KANJI[b] + ("" if k % 3 else _KANJI[c])
                 for k, (a, b, c) in enumerate(zip(*(random.Random(s).choices(range(len(_KANJI)), k=4000)
                                                       for s in ("a", "b", "c"))))})
_CATS = ["政治", "国際", "経済", "社会", "科学", "スポーツ", "文化", "地域", "暮らし", "天気"]


def _sentence(rng: random.Random) -> str:
    n = rng.choice
    forms = [
        lambda: f"{n(_PEOPLE)}は{rng.randint(1, 28)}日、{n(_PLACES)}で{n(_BITS)}{n(_NOUNS)}と{n(_NOUNS)}について{n(_VERBS)}。",
        lambda: f"{n(_NOUNS)}の{n(_NOUNS)}をめぐり、{n(_NOUNS)}側は{n(_NOUNS)}{n(_NOUNS)}の{n(_VERBS)}。",
        lambda: f"{n(_NOUNS)}は前年比{rng.randint(1, 99)}.{rng.randint(0, 9)}%増の{rng.randint(2, 999)}億円となり、"
                f"{n(_NOUNS)}への影響が{n(['懸念される', '注目される', '広がっている', '指摘されている'])}。",
        lambda: f"「{n(_NOUNS)}を{n(_NOUNS)}する{n(_NOUNS)}が必要だ」と{n(_PEOPLE)}は語った。",
    ]
    return n(forms)()


def _story(source: int, serial: int) -> dict[str, object]:
    """Story `serial` of source `source`: the same every time it is asked for (ids and text stable)."""
    rng = random.Random(f"{source}:{serial}")
    n = rng.choice
    title = n([f"{n(_PEOPLE)}、{n(_NOUNS)}で{n(_PLACES)}訪問へ　{n(_NOUNS)}{n(_NOUNS)}を協議",
               f"{n(_NOUNS)}{n(_NOUNS)}、{rng.randint(2, 30)}年ぶり{n(['高水準', '低水準', '改定', '見直し'])}　{n(_NOUNS)}に影響",
               f"{n(_PLACES)}の{n(_NOUNS)}、{n(_NOUNS)}の{n(_NOUNS)}を{n(_VERBS)}"])
    summary = "".join(_sentence(rng) for _ in range(rng.randint(2, 3)))
    when = BASE_DAY + timedelta(minutes=37 * serial + rng.randint(0, 30))
    return {"id": f"{source:04d}{serial:06d}", "title": title, "summary": summary, "when": when,
            "cat": rng.choice(_CATS), "tags": rng.sample(_TOPICS, 2)}


def _style(rng: random.Random) -> str:
    rules = []
    for i in range(560):
        sel = f".c-{rng.choice(['card', 'nav', 'rank', 'ft', 'hd', 'ad', 'btn'])}__{i}"
        rules.append(f"{sel}{{margin:{rng.randint(0, 24)}px {rng.randint(0, 24)}px;color:#{rng.randrange(16**6):06x};"
                     f"font-size:{rng.randint(10, 24)}px;line-height:1.{rng.randint(2, 9)}}}")
    return "\n".join(rules)


def _scripts(rng: random.Random, source: int) -> str:
    gtm = ("(function(w,d,s,l,i){w[l]=w[l]||[];w[l].push({'gtm.start':new Date().getTime(),event:'gtm.js'});"
           "var f=d.getElementsByTagName(s)[0],j=d.createElement(s),dl=l!='dataLayer'?'&l='+l:'';j.async=true;"
           "j.src='https://www.googletagmanager.com/gtm.js?id='+i+dl;f.parentNode.insertBefore(j,f);"
           "})(window,document,'script','dataLayer','GTM-XXXX');")
    config = ",".join(f'"k{i}":{{"slot":"/1234/news/{rng.choice(_CATS)}/{i}","size":[[300,250],[728,90]],'
                      f'"label":"{rng.choice(_TOPICS)}","v":{rng.random():.6f}}}' for i in range(400))
    return (f"<script>{gtm}</script>\n"
            f"<script>window.__SITE_CONFIG__={{\"source\":{source},{config}}};</script>\n"
            "<script src=\"/assets/js/vendor.min.js\" defer></script>\n"
            "<script>document.addEventListener('DOMContentLoaded',function(){var m=document.querySelectorAll"
            "('.js-lazy');for(var i=0;i<m.length;i++){m[i].src=m[i].dataset.src;}});</script>\n")


def _nav(rng: random.Random) -> str:
    cols = []
    for cat in _CATS:
        links = "".join(f'<li><a href="/{cat}/sub{j}/">{rng.choice(_TOPICS)}</a></li>' for j in range(12))
        cols.append(f'<li class="gnav__item"><a href="/{cat}/">{cat}</a><ul class="gnav__sub">{links}</ul></li>')
    return (f'<header class="l-header"><div class="site-logo"><a href="/"><img src="/img/logo.svg" alt="ニュース">'
            f'</a></div><nav class="gnav" role="navigation"><ul class="gnav__list">{"".join(cols)}</ul></nav>'
            '<form class="search" action="/search"><input name="q" placeholder="キーワードで検索"></form>'
            '<ul class="header-links"><li><a href="/login">ログイン</a></li><li><a href="/signup">会員登録</a></li>'
            '</ul></header>')


def _card(s: dict[str, object], host: str) -> str:
    when = s["when"]
    assert isinstance(when, datetime)
    tags = "".join(f'<li><a class="chip" href="/tag/{t}/">{t}</a></li>' for t in s["tags"])  # type: ignore[attr-defined]
    return (f'<li class="p-list__item"><article class="c-card">'
            f'<a class="c-card__thumb" href="/articles/{s["id"]}.html"><img class="js-lazy" '
            f'data-src="https://img.{host}/photos/{s["id"]}/main.jpg" src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" '
            f'alt="" width="320" height="180"></a><div class="c-card__body">'
            f'<span class="c-card__cat">{s["cat"]}</span>'
            f'<h3 class="c-card__title"><a href="/articles/{s["id"]}.html">{s["title"]}</a></h3>'
            f'<p class="c-card__summary">{s["summary"]}</p>'
            f'<div class="c-card__meta"><time datetime="{when.isoformat()}">'
            f'{when.month}月{when.day}日 {when.hour}:{when.minute:02d}</time>'
            f'<ul class="c-card__tags">{tags}</ul></div></div></article></li>')


def _ranking(rng: random.Random) -> str:
    rows = "".join(f'<li class="ranking__item"><span class="ranking__no">{k}</span><a href="/articles/r{rng.randrange(10**8)}.html">'
                   f'{rng.choice(_PEOPLE)}、{rng.choice(_TOPICS)}をめぐり{rng.choice(_VERBS)}</a></li>'
                   for k in range(1, 11))
    return f'<section class="ranking" id="access-ranking"><h2>アクセスランキング</h2><ol>{rows}</ol></section>'


def _footer(rng: random.Random) -> str:
    cols = "".join(f'<div class="footer__col"><h4>{cat}</h4><ul>'
                   + "".join(f'<li><a href="/{cat}/{j}/">{rng.choice(_TOPICS)}</a></li>' for j in range(8))
                   + "</ul></div>" for cat in _CATS)
    return (f'<footer class="l-footer" id="footer"><div class="footer__nav">{cols}</div>'
            '<ul class="footer__links"><li><a href="/about/">会社概要</a></li><li><a href="/privacy/">'
            'プライバシーポリシー</a></li><li><a href="/terms/">利用規約</a></li><li><a href="/contact/">'
            'お問い合わせ</a></li></ul><p class="copyright">© 2026 Example News. 無断転載を禁じます。</p></footer>')


def page(i: int, version: int = 0) -> bytes:
    """Source i's topic page at `version` (UTF-8 bytes)."""
    rng = random.Random(f"page:{i}:{version}")
    host = f"news{i}.example.jp"
    topic = _TOPICS[i % len(_TOPICS)]
    newest = ITEMS + NEW_PER_VERSION * version
    stories = [_story(i, k) for k in range(newest, newest - ITEMS, -1)]
    cards = [_card(s, host) for s in stories]
    cards.insert(7, '<li class="p-list__item p-list__item--ad"><div class="ad-slot" id="div-gpt-ad-1">'
                    '<a href="https://ads.example.com/click?id=1">PR　今だけ特別キャンペーン実施中</a></div></li>')
    featured = stories[0]
    related = "".join(f'<li><a href="/topics/{t}/">{t}</a></li>' for t in _TOPICS)
    body = (
        "<!DOCTYPE html>\n<html lang=\"ja\"><head><meta charset=\"utf-8\">"
        f"<title>「{topic}」の最新ニュース | Example News</title>"
        f"<meta name=\"description\" content=\"{topic}に関する最新ニュース・記事一覧。\">"
        f"<link rel=\"canonical\" href=\"https://{host}/topics/{topic}/\">"
        f"<style>{_style(rng)}</style>{_scripts(rng, i)}</head>"
        f"<body class=\"page-topic\">{_nav(rng)}"
        f"<ol class=\"breadcrumb\"><li><a href=\"/\">トップ</a></li><li><a href=\"/topics/\">トピックス</a></li>"
        f"<li>{topic}</li></ol>"
        f"<main id=\"main\" class=\"l-main\"><h1 class=\"topic-title\">{topic}</h1>"
        f"<p class=\"topic-lead\">「{topic}」をテーマとした記事の一覧です。最新の情報をお届けします。</p>"
        f"<ul class=\"p-list\">{''.join(cards)}</ul>"
        "<nav class=\"pager\"><a href=\"?page=2\">次へ</a><a href=\"?page=10\">最後</a></nav></main>"
        f"<aside class=\"l-side sidebar\">{_ranking(rng)}"
        f"<section class=\"related-topics\"><h2>関連トピックス</h2><ul>{related}</ul></section>"
        "<section class=\"newsletter\"><h2>ニュースレター</h2><p>毎朝のニュースをメールでお届けします。</p>"
        "<a href=\"/newsletter/\">登録する</a></section></aside>"
        f"{_footer(rng)}<script>window.dataLayer.push({{'page':'topic','featured':'{featured['id']}'}});</script>"
        "</body></html>\n"
    )
    return body.encode("utf-8")


def address(i: int) -> str:
    """Loopback address of source i: 127.0.x.y with x ≥ 1 (never 127.0.0.1, which tests use), y in 1..250."""
    return f"127.0.{1 + i // 250}.{1 + i % 250}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _PageServer

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/robots.txt":
            self._send(200, b"User-agent: *\nAllow: /\n", "text/plain; charset=utf-8", None)
            return
        body, etag = self.server.body, self.server.etag
        self.server.hits += 1
        if etag in (self.headers.get("If-None-Match") or ""):
            self.server.not_modified += 1
            self._send(304, b"", None, etag)
            return
        self._send(200, body, "text/html; charset=utf-8", etag)

    def _send(self, status: int, body: bytes, ctype: str | None, etag: str | None) -> None:
        self.send_response(status)
        if ctype:
            self.send_header("Content-Type", ctype)
        if etag:
            self.send_header("ETag", etag)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)


class _PageServer(ThreadingHTTPServer):
    daemon_threads = True
    body = b""
    etag = ""
    hits = 0
    not_modified = 0

    def set_page(self, body: bytes) -> None:
        self.body = body
        self.etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'


class LoopbackServers:
    """n real HTTP servers, server i on address(i), each serving page(i, version) at /topic.

    One selector thread accepts for all of them (not one polling thread per server), and each
    connection gets its own thread as in any ThreadingHTTPServer.
    """

    def __init__(self, n: int, port: int = 0) -> None:
        self.servers: list[_PageServer] = []
        self.versions = [0] * n
        for i in range(n):
            s = _PageServer((address(i), port), _Handler)
            s.set_page(page(i))
            self.servers.append(s)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bench-servers", daemon=True)
        self._thread.start()

    def url(self, i: int) -> str:
        host, port = self.servers[i].server_address[:2]
        return f"http://{host}:{port}/topic"

    def bump(self, i: int) -> None:
        """Source i's page moves on: five new stories on top, a new ETag."""
        self.versions[i] += 1
        self.servers[i].set_page(page(i, self.versions[i]))

    def _loop(self) -> None:
        sel = selectors.DefaultSelector()
        for s in self.servers:
            sel.register(s.socket, selectors.EVENT_READ, s)
        while not self._stop.is_set():
            for key, _ in sel.select(timeout=0.1):
                key.data._handle_request_noblock()
        sel.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for s in self.servers:
            s.server_close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
