"""A few invalid bytes keep the declared charset (issue 18, point 10).

A page declared UTF-8 with one bad byte once failed as undecodable (Japanese) or was read whole as
windows-1252 (French: every accent as mojibake). It must decode as declared, the bad bytes as U+FFFD; a
label that is plainly wrong (most non-ASCII sequences fail) is still overridden by detection.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import feedparser
import pytest

from atomcheck import assert_valid_atom
from feedsvc import pipeline
from feedsvc.config import load_config
from feedsvc.decode import decode_body

JA_TITLES = ["停戦交渉が再開、双方が捕虜交換で合意", "首相、和平案の詳細を説明へ", "国連安保理が緊急会合を招集",
             "避難民の帰還に向けた支援策を発表", "外相会談で人道回廊の設置を協議"]
FR_TITLES = ["Les négociations reprennent à Genève", "Accord de cessez-le-feu : première étape franchie",
             "Le député réélu défend la réforme fiscale", "Économie : la Banque centrale relève ses taux",
             "Météo : épisode cévenol attendu ce week-end"]


def html(titles: list[str], lang: str, head: str = '<meta charset="utf-8">', stray: str = "") -> str:
    items = "".join(f'<li><h3><a href="/{lang}/a/{i}">{t}</a></h3><p>{t} - {t}.</p></li>'
                    for i, t in enumerate(titles))
    return (f'<!doctype html><html lang="{lang}"><head>{head}<title>{titles[0]}</title></head><body><main>'
            f'<p class="note">{stray}</p><ul class="news">{items}</ul></main></body></html>')


def with_bytes(text: str, marker: str, bad: bytes, codec: str = "utf-8") -> bytes:
    """`text` encoded, with the bytes `bad` in place of `marker`."""
    before, after = text.split(marker)
    return before.encode(codec) + bad + after.encode(codec)


JA_PAGE = html(JA_TITLES, "ja", stray="注意@")
FR_PAGE = html(FR_TITLES, "fr", stray="Vous êtes ici : accueil@")

TOLERATED = [
    # (bytes, Content-Type header, override, expected codec, expected text, U+FFFD count)
    pytest.param(with_bytes(JA_PAGE, "@", b"\xff"), None, None, "utf-8", JA_PAGE.replace("@", "\ufffd"), 1,
                 id="ja-meta-utf8-one-invalid-byte"),
    pytest.param(with_bytes(JA_PAGE, "@", b"\xe5\x92"), "text/html; charset=UTF-8", None, "utf-8",
                 JA_PAGE.replace("@", "\ufffd"), 1, id="ja-header-utf8-truncated-character"),
    pytest.param(with_bytes(FR_PAGE, "@", b"\xe9"), "text/html; charset=utf-8", None, "utf-8",
                 FR_PAGE.replace("@", "\ufffd"), 1, id="fr-header-utf8-stray-e9"),
    pytest.param(with_bytes(FR_PAGE, "@", b"\xe9"), None, None, "utf-8", FR_PAGE.replace("@", "\ufffd"), 1,
                 id="fr-meta-utf8-stray-e9"),
    pytest.param(with_bytes(FR_PAGE, "@", b"\xe9 \x92 \xa0"), None, None, "utf-8",
                 FR_PAGE.replace("@", "\ufffd \ufffd \ufffd"), 3, id="fr-a-handful"),
    pytest.param(with_bytes(FR_PAGE, "@", b"\xe9"), "text/html; charset=iso-8859-1", None, "utf-8",
                 FR_PAGE.replace("@", "\ufffd"), 1, id="fr-server-default-latin1-in-front-of-utf8"),
    pytest.param(with_bytes(FR_PAGE.replace('<meta charset="utf-8">', ""), "@", b"\xe9"), None, None, "utf-8",
                 FR_PAGE.replace('<meta charset="utf-8">', "").replace("@", "\ufffd"), 1, id="fr-unlabelled-utf8"),
    pytest.param(b"\xef\xbb\xbf" + with_bytes(JA_PAGE, "@", b"\xff"), None, None, "utf-8",
                 JA_PAGE.replace("@", "\ufffd"), 1, id="ja-bom-utf8-one-invalid-byte"),
    pytest.param(with_bytes(JA_PAGE, "@", b"\xff"), None, "utf-8", "utf-8", JA_PAGE.replace("@", "\ufffd"), 1,
                 id="ja-override-utf8-one-invalid-byte"),
    pytest.param(with_bytes(html(JA_TITLES, "ja", '<meta charset="Shift_JIS">', "注意@"), "@", b"\x81", "cp932"),
                 None, None, "cp932", html(JA_TITLES, "ja", '<meta charset="Shift_JIS">', "注意\ufffd"), 1,
                 id="ja-shift-jis-truncated-lead-byte"),
]


@pytest.mark.parametrize(("body", "content_type", "override", "codec", "text", "bad"), TOLERATED)
def test_a_few_bad_bytes_keep_the_declared_charset(body: bytes, content_type: str | None, override: str | None,
                                                   codec: str, text: str, bad: int) -> None:
    decoded, used = decode_body(body, content_type=content_type, override=override)
    assert used == codec
    assert decoded == text  # every other character as written: no mojibake
    assert decoded.count("\ufffd") == bad


def test_a_page_written_with_u_fffd_is_not_counted_as_bad() -> None:
    # U+FFFD written in a valid page is text: it must not push a page with one bad byte over the limit
    body = with_bytes(FR_PAGE.replace("accueil", "\ufffd" * 40 + "accueil"), "@", b"\xe9")
    decoded, used = decode_body(body)
    assert used == "utf-8" and decoded.count("\ufffd") == 41


WRONG_LABELS = [
    # (text, bytes codec, Content-Type header, expected codec): most non-ASCII sequences fail: detection decides
    pytest.param(FR_PAGE.replace("@", ""), "cp1252", "text/html; charset=utf-8", "cp1252",
                 id="fr-windows-1252-labelled-utf8"),
    pytest.param(html(JA_TITLES, "ja", stray="注意"), "cp932", "text/html; charset=utf-8", "cp932",
                 id="ja-shift-jis-labelled-utf8"),
    pytest.param(html(JA_TITLES, "ja", stray="注意"), "euc_jp", None, "euc_jp", id="ja-euc-jp-meta-utf8"),
    # (which codec detection then picks for a few bytes is its own business: here only that the label lost)
    pytest.param('<meta charset="utf-8"><p>Caf\u00e9 ouvert</p>', "cp1252", None, None,
                 id="one-accent-all-bad-is-a-wrong-label"),
]


@pytest.mark.parametrize(("text", "codec", "content_type", "expected"), WRONG_LABELS)
def test_a_plainly_wrong_label_is_still_overridden(text: str, codec: str, content_type: str | None,
                                                   expected: str | None) -> None:
    decoded, used = decode_body(text.encode(codec), content_type=content_type)
    assert used != "utf-8" and "\ufffd" not in decoded
    if expected is not None:
        assert used == expected and decoded == text


@pytest.mark.parametrize(("bad", "good", "kept"), [
    pytest.param(1, 3, False, id="1-bad-among-3-good-is-a-wrong-label"),
    pytest.param(1, 4, True, id="1-bad-among-4-good"),
    pytest.param(4, 16, True, id="a-handful"),
    pytest.param(5, 19, False, id="5-is-more-than-a-handful"),
    pytest.param(5, 400, False, id="5-bad-over-1-percent"),
    pytest.param(5, 500, True, id="5-bad-at-1-percent"),
    pytest.param(50, 5000, True, id="50-bad-at-1-percent"),
    pytest.param(60, 5000, False, id="60-bad-over-1-percent"),
])
def test_the_line_is_the_share_of_bad_sequences(bad: int, good: int, kept: bool) -> None:
    body = b'<meta charset="utf-8"><p>' + "é".encode() * good + b" " + b"\xe9 " * bad + b"</p>"
    text, used = decode_body(body)
    assert (used == "utf-8") is kept
    if kept:
        assert text.count("\ufffd") == bad and text.count("é") == good


# --- through a real refresh -------------------------------------------------------------------------------

def test_refresh_publishes_pages_with_a_bad_byte(http_server, tmp_path: Path) -> None:
    ja = http_server.route("/ja/", with_bytes(JA_PAGE, "@", b"\xff"), headers={"Content-Type": "text/html"})
    fr = http_server.route("/fr/", with_bytes(FR_PAGE, "@", b"\xe9"),
                           headers={"Content-Type": "text/html; charset=utf-8"})
    config_path = tmp_path / "config.toml"
    config_path.write_text(
        '[feedsvc]\nhost_delay = "0s"\n'
        f'[[topics]]\nid = "ja"\ntitle = "和平"\nlanguage = "ja"\n[[topics.sources]]\nurl = "{ja}"\n'
        f'[[topics]]\nid = "fr"\ntitle = "Paix"\nlanguage = "fr"\n[[topics.sources]]\nurl = "{fr}"\n',
        encoding="utf-8")
    config = load_config(config_path)
    results = pipeline.refresh(config, now=datetime(2026, 1, 20, 3, 0, tzinfo=UTC))
    assert [r.failures for r in results] == [[], []]
    for topic, titles in (("ja", JA_TITLES), ("fr", FR_TITLES)):
        data = (config.output_dir / f"{topic}.atom").read_bytes()
        assert_valid_atom(data)
        feed = feedparser.parse(data)
        assert sorted(e.title for e in feed.entries) == sorted(titles)
