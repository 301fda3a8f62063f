"""The vocabularies of rules.py that decide what is no item, as tables of cases with readable ids."""

from __future__ import annotations

import pytest
from lxml import etree

from feedsvc.extract import rules
from feedsvc.extract.html import is_pagination, picture_of, site_of


@pytest.mark.parametrize("title, promo", [
    pytest.param("Buy a car today with zero percent finance", True, id="buy-finance"),
    pytest.param("Shop now: 20% off winter coats", True, id="shop-percent"),
    pytest.param("Stay up to date with our morning newsletter", True, id="stay-up-to-date"),
    pytest.param("Subscribe to our newsletter", True, id="subscribe"),
    pytest.param("Download our app for free", True, id="download-app"),
    pytest.param("メルマガ登録で最新情報をお届け", True, id="ja-mail-magazine"),
    pytest.param("Get ready: storm to hit the coast today", False, id="news-get-today"),
    pytest.param("Save the date: festival returns today", False, id="news-save-the-date"),
    pytest.param("Google to buy Fitbit for $2bn", False, id="news-buy-inside"),
    pytest.param("Buy-to-let landlords face new tax rules", False, id="news-buy-to-let"),
])
def test_promo_text(title, promo):
    assert bool(rules.PROMO_TEXT.search(title.casefold())) is promo


PAGE = "https://www.example.org/local/"


@pytest.mark.parametrize("href, pagination", [
    pytest.param("?p=2", True, id="own-path-p2"),
    pytest.param("/local/?page=3", True, id="own-path-page3"),
    pytest.param("/local/page/4/", True, id="wordpress-page-path"),
    pytest.param("/blog/page/2", True, id="page-path-elsewhere"),
    pytest.param("/?p=1531", False, id="wordpress-post-id"),
    pytest.param("/local/?p=205", False, id="post-id-on-own-path"),
    pytest.param("/sport/?page=2", False, id="another-section-page"),
    pytest.param("/local/2026/01/19/page-turner-wins-prize", False, id="article-slug"),
])
def test_pagination(href, pagination):
    assert is_pagination(href, PAGE, None) is pagination


@pytest.mark.parametrize("host, site", [
    pytest.param("news.chinatimes.com", "chinatimes.com", id="subdomain"),
    pytest.param("www.chinatimes.com", "chinatimes.com", id="www"),
    pytest.param("www.news.com.au", "news.com.au", id="com-au"),
    pytest.param("headlines.yahoo.co.jp", "yahoo.co.jp", id="co-jp"),
    pytest.param("www.bravewords.com", "bravewords.com", id="other-site"),
])
def test_site_of(host, site):
    assert site_of(host) == site


def _page(body: str):
    from datetime import UTC, datetime

    from feedsvc.model import Page

    return Page(url="https://www.example.org/news/", text=f"<html><body>{body}</body></html>",
                content_type="text/html", encoding="utf-8", fetched_at=datetime(2026, 1, 20, tzinfo=UTC))


STORIES = "".join(f'<li><a href="/news/2026/01/{10 + i}/story-number-{i}-of-the-week">Story number {i} of the '
                  f'week in the valley</a></li>' for i in range(6))


def test_a_main_holding_no_real_list_does_not_push_the_listing_aside():
    """<main> with only a two-link breadcrumb in it: the bare list of stories outside it is still the
    listing (pushed aside as a side column, it would fall under the bar for a bare list)."""
    from feedsvc.extract import extract_items

    body = ('<main><p><a href="/">Home page of the site</a> › <a href="/news/">News from the valley</a></p></main>'
            f'<div class="stories"><ul>{STORIES}</ul></div>')
    assert len(extract_items(_page(body))) == 6


FLAT_POST = ('<h3 class="post-title">{title}</h3><div class="post-body"><p>{body}</p></div>'
             '<p class="post-footer">{line}</p>')


@pytest.mark.parametrize("line", [
    pytest.param('Posted on June 3, 2005 by Ann | <a href="{href}">permalink</a>', id="permalink-text"),
    pytest.param('<em>posted by Ann at <a href="{href}" title="permanent link">6:19 PM</a></em>', id="blogger-time-link"),
    pytest.param('Posted by Ann at <a href="{href}">June 3, 2005 10:12 AM</a> | <a href="{href}#c">Comments (2)</a>',
                 id="movable-type-date-link"),
    pytest.param('<a class="timestamp-link" href="{href}">Tuesday</a>', id="timestamp-class"),
    pytest.param('投稿者 Ann <a href="{href}">固定リンク</a>', id="ja-permalink"),
])
def test_flat_blog_posted_lines(line):
    from feedsvc.extract import extract_items

    posts = [(f"/2005/06/post-{i}.html", f"A post title number {i}", f"The body of post {i}, which goes on.")
             for i in range(3)]
    body = "".join(FLAT_POST.format(title=t, body=b, line=line.format(href=h)) for h, t, b in posts)
    items = extract_items(_page(f'<div class="blog">{body}</div>'))
    assert [(i.title, i.link, i.summary, i.found_by) for i in items] == [
        (t, h, b, "flat-posts") for h, t, b in posts]


def test_a_time_link_outside_a_posted_line_is_no_permalink():
    from feedsvc.extract import extract_items

    body = "".join(FLAT_POST.format(title=f"Schedule item {i} today", body="Room 4.", line=f'<a href="/t/{i}">10:30</a>')
                   for i in range(3))
    assert all(i.found_by != "flat-posts" for i in extract_items(_page(body)))


@pytest.mark.parametrize("text, action", [
    pytest.param("Read more »", True, id="read-more"),
    pytest.param("View all", True, id="view-all"),
    pytest.param("More stories", True, id="more-stories"),
    pytest.param("次へ", True, id="ja-next"),
    pytest.param("下一页", True, id="zh-next-page"),
    pytest.param("2", True, id="page-number"),
    pytest.param("»", True, id="arrow"),
    pytest.param("More remains to arrive in Netherlands", False, id="headline-starting-with-more"),
    pytest.param("All aboard the new night train", False, id="headline-starting-with-all"),
    pytest.param("2 dead as storm hits coast", False, id="headline-starting-with-a-number"),
])
def test_action_text(text, action):
    assert bool(rules.ACTION_TEXT.match(text.casefold())) is action


@pytest.mark.parametrize("img, picture", [
    pytest.param('<img src="/icons/pdf.png" width="16" height="16">', None, id="pdf-icon"),
    pytest.param('<img src="/img/photo.jpg" width="1" height="1">', None, id="spacer-by-size"),
    pytest.param('<img src="/static/loading.png" data-src="/img/real.jpg">', "/img/real.jpg", id="data-src"),
    pytest.param('<img src="data:image/gif;base64,R0lGOD" data-original="/img/o.jpg">', "/img/o.jpg", id="data-original"),
    pytest.param('<img src="/img/blank.gif" data-lazy-src="/img/l.jpg">', "/img/l.jpg", id="data-lazy-src"),
    pytest.param('<img srcset="/a-320.jpg 320w, /a-960.jpg 960w, /a-640.jpg 640w">', "/a-960.jpg", id="srcset-widest"),
    pytest.param('<img srcset="/p.jpg?resize=616,411, /p.jpg?resize=925,617 1.5x, /p.jpg?resize=1232,821 2x">',
                 "/p.jpg?resize=1232,821", id="srcset-commas-in-urls"),
    pytest.param('<img srcset="/a.jpg, /b.jpg 2x">', "/b.jpg", id="srcset-density"),
    pytest.param('<img src="/img/placeholder.png">', None, id="placeholder-only"),
    pytest.param('<img src="/images/dot.gif">', None, id="spacer-dot-by-name"),
    pytest.param('<img src="/images/icon_pdf.gif">', None, id="pdf-icon-by-name"),
    pytest.param('<img src="/photos/dotcom-boom.jpg">', "/photos/dotcom-boom.jpg", id="not-a-spacer"),
    pytest.param('<img src="/img/ok.jpg" width="600">', "/img/ok.jpg", id="plain"),
])
def test_picture_of_an_img(img, picture):
    el = etree.fromstring(img.encode(), etree.HTMLParser()).find(".//img")
    assert picture_of(el) == picture


@pytest.mark.parametrize("card, image", [
    pytest.param('<div class="image-container" data-src="/uploads/2024/04/gauff.jpg?w=700"></div>',
                 "/uploads/2024/04/gauff.jpg?w=700", id="div-data-src"),
    pytest.param('<iframe data-src="https://video.example.net/embed/123"></iframe>', None, id="iframe-is-no-picture"),
    pytest.param('<div data-src="/widgets/poll?id=4"></div>', None, id="not-a-picture-url"),
])
def test_lazy_picture_on_a_placeholder(card, image):
    from feedsvc.extract import extract_items

    cards = "".join(f'<li><a href="/news/2026/01/1{i}/story-{i}-about-things"><h3>Story {i} about things that happened '
                    f'here</h3></a>{card}</li>' for i in range(4))
    items = extract_items(_page(f"<ul>{cards}</ul>"))
    assert len(items) == 4 and {i.image for i in items} == {image}


@pytest.mark.parametrize("teaser, summary", [
    pytest.param('<p class="dek">{t}: the council voted late on Tuesday after a four-hour debate.</p>',
                 "{t}: the council voted late on Tuesday after a four-hour debate.", id="classed-begins-with-title"),
    pytest.param('<p>{t}: the council voted late on Tuesday after a four-hour debate.</p>',
                 "{t}: the council voted late on Tuesday after a four-hour debate.", id="paragraph-begins-with-title"),
    pytest.param('<p class="dek">{t}.</p>', None, id="only-the-title-again"),
    pytest.param('<a href="/x">The council voted late on Tuesday after a four-hour debate.</a>',
                 "The council voted late on Tuesday after a four-hour debate.", id="second-link"),
])
def test_teaser_that_repeats_the_headline_and_goes_on_is_kept(teaser, summary):
    """Issue 17 item 4: a teaser beginning with the headline is information; one that only repeats it is not."""
    from feedsvc.extract import extract_items

    titles = [f"Cycle lanes approved for street number {i}" for i in range(4)]
    cards = "".join(f'<li><h3><a href="/news/2026/01/1{i}/cycle-lanes-{i}">{t}</a></h3>{teaser.format(t=t)}</li>'
                    for i, t in enumerate(titles))
    items = extract_items(_page(f"<ul>{cards}</ul>"))
    assert [i.summary for i in items] == [summary.format(t=t) if summary else None for t in titles]
