"""Named vocabularies and thresholds for extraction. Pure data and tiny pure helpers, no parsing.

Kept apart from the code that walks pages so that a rule can be read, tested and tuned on its
own (as trafilatura and htmldate do): when a site defeats detection, the fix is usually a word here.
"""

from __future__ import annotations

import re
import unicodedata

# ----------------------------------------------------------------------------- text measure


def fold_ws(text: str | None) -> str:
    """Whitespace folded to single spaces, ends stripped (NBSP and ideographic space included)."""
    if not text:
        return ""
    return " ".join(text.split())


_WIDE = re.compile(
    "[\u1100-\u115f\u2e80-\u303e\u3041-\u33ff\u3400-\u4dbf\u4e00-\u9fff\ua000-\ua4cf"
    "\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6\U00020000-\U0003fffd]"
)


def weight(text: str) -> int:
    """Display width: a CJK (wide) character counts 2, others 1; so one threshold fits both scripts."""
    return len(text) + len(_WIDE.findall(text))


def is_wide(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in "WF"


# ----------------------------------------------------------------------------- HTML: containers to leave out

# Tags whose subtree is never the article listing.
BAD_TAGS = frozenset({"nav", "footer", "aside", "header", "menu", "select", "button"})

# id / class / role words of boxes that repeat or advertise stories rather than list them.
# Layout names that merely mention a sidebar ("content-sidebar-wrap", "span8 right-sidebar") are
# removed first: they wrap the main column.
LAYOUT_WORDS = re.compile(
    r"(?:left|right|with|has|no|content|full|two|one)[-_]?sidebars?|sidebars?[-_]?(?:left|right|layout)"
)
# Matched as substrings of the lowercased id/class (long, unambiguous words) ...
BAD_SUBSTRINGS = (
    "navigation", "navbar", "menu", "footer", "sidebar", "widget", "ranking", "popular",
    "related", "advert", "sponsor", "breadcrumb", "pagination",
    "social", "share", "comment", "tagcloud", "tag-cloud", "trending", "mostread", "most-read",
    "recommend", "masthead", "copyright",
    "subnav", "topnav", "globalnav", "gnav", "blogroll", "access-rank", "ninki", "osusume", "login",
)
# ... as whole class tokens ...
BAD_TOKENS = frozenset({
    "aside", "header", "hdr", "ftr", "tags", "side", "sub", "most", "extra", "secondary",
    "toolbar", "tools", "links", "categories", "archives", "calendar", "utility", "recent-posts",
})
# ... and as parts of a token split on - and _ (short words that would match inside other words).
# ("rail": a news site's side column, "right-rail")
BAD_PARTS = frozenset({"nav", "ad", "ads", "adv", "pr", "rank", "banner", "tag", "cat", "pager", "rail"})
# role attribute values that mark non-content landmarks.
BAD_ROLES = frozenset({"navigation", "banner", "contentinfo", "complementary", "menu", "menubar", "search"})
# An item block itself with one of these tokens is an ad slotted into the list.
AD_BLOCK_PARTS = frozenset({"ad", "ads", "adv", "pr", "sponsored", "advertisement", "promotion"})

# Boxes that show the site's own stories in motion (tickers, sliders, carousels): usually a repeat
# of the main list, but sometimes the main list itself ("latest reviews" slider) or a part of a
# portal's teasers. A penalty that a stronger list beats, not a veto.
STREAM_SUBSTRINGS = ("ticker", "slider", "carousel", "rotator", "breaking", "newsflash", "marquee")

# Boxes that are rarely the news listing (media, shopping, campaigns): a mild penalty, not a veto.
MILD_BAD_SUBSTRINGS = ("video", "movie", "photo", "gallery", "shopping", "service", "campaign",
                       "special", "event", "sitemap", "shop", "store", "coupon", "point")

# Links that go through an ad or tracking redirect (an encoded URL in the query, ad servers).
AD_LINK = re.compile(
    r"(?:https?|ftp)%3a%2f%2f|[?&](?:r2|url|u|redirect|goto|adurl|dest)=https?|doubleclick|/adclick|"
    r"/click\?|trafficgate|adserver|/aff/|affiliate",
    re.IGNORECASE,
)

# First labels of hosts that feed a portal's boxes from another part of the site, not its news.
OTHER_FEED_HOSTS = frozenset({"blog", "blogs", "forum", "forums", "bbs", "community", "shop", "store", "club",
                              "ask", "answers", "wiki", "ads"})

# Second-level labels under a country code ("co.jp", "com.au"): a site is three labels there, not two.
SECOND_LEVEL_LABELS = frozenset({"co", "com", "net", "org", "ac", "go", "ne", "or", "gov", "edu", "gr", "ed", "lg"})

# On a list row, "first"/"last" anywhere in a class ("c_hpfirstbullet", "item-last") mark its place
# in the list, not its kind.
ROW_TAGS = frozenset({"li", "tr", "dt", "dd"})
UNSTABLE_ROW_CLASS = re.compile(r"first|last")

# Words in a container's id/class that say "stories are listed here": a bonus.
GOOD_SUBSTRINGS = ("topics", "news", "headline", "article", "entries", "entry", "posts", "story",
                   "stories", "latest", "timeline", "archive", "blog", "kiji")

# Containers that hold the main content: a mild bonus.
GOOD_TAGS = frozenset({"main"})
GOOD_TOKENS = frozenset({
    "main", "content", "primary", "post-list", "posts", "entries", "articles", "article-list",
    "news-list", "list-news", "archive", "topics", "topicsindex", "stories", "feed", "timeline",
    "post-listing", "blog", "results", "cards", "main-container", "site-content",
})

# Class words of elements that carry an item's summary.
SUMMARY_WORDS = (
    "summary", "excerpt", "description", "desc", "lead", "teaser", "intro", "abstract",
    "standfirst", "dek", "snippet", "entry-content", "post-content", "article-body",
    "entry-body", "content", "text", "body", "story", "caption",
)

# Class tokens that only mark state or position: left out of a block's structural signature.
UNSTABLE_CLASS = re.compile(
    r"\d|^(first|last|odd|even|active|current|selected|sticky|featured|new|clearfix|clear|"
    r"hentry|group|cf|left|right|col|row|is-.*|has-.*|js-.*)$"
)

# Links that look like an article's address: a date or a long number in the path, a ?p=/id= query,
# or a slug of several words. Navigation links rarely look like this.
ARTICLE_LINK = re.compile(
    r"(?:^|/)(?:19|20)\d{2}(?:/|-|_)?[01]\d|\d{4,}|[?&](?:p|id|newid|article|story|post|no|aid)=\d+|"
    r"/[^/?#]*[a-z0-9]+-[a-z0-9]+-[a-z0-9]+[^/]*/?(?:$|[?#])",
    re.IGNORECASE,
)

# Link schemes that never lead to an article.
DEAD_LINK = re.compile(r"^\s*(javascript:|mailto:|tel:|data:|about:|#)", re.IGNORECASE)

# Anchor texts that are actions, not headlines ("Read more", "Continua a leggere »").
ACTION_TEXT = re.compile(
    r"^(read more|more|continue reading|continua a leggere|leer más|seguir leyendo|weiterlesen|"
    r"lire la suite|続きを読む|もっと見る|詳しくはこちら|詳細|permalink|comments?|\d+ comments?|"
    r"no comments|leave a comment|share|tweet|next|previous|prev|older posts|newer posts|"
    r"次へ|前へ|一覧へ|もっと読む|подробнее|читать далее|περισσότερα|"
    # pagination and "see the whole list" links that close a list
    r"(?:view|see|show) all|(?:load|show) more|(?:more|all) (?:news|stories|articles|posts)|"
    r"next page|previous page|older (?:entries|articles|stories)|newer (?:entries|articles|stories)|"
    r"次のページ|前のページ|一覧を見る|すべて見る|記事一覧|更多|下一页|上一页|weitere artikel|alle artikel|"
    r"suivant|précédent|page suivante|siguiente|anterior|successivo|precedente|далее|следующая|"
    r"\d{1,3}|[«»‹›<>]+)\W*$",
    re.IGNORECASE,
)

# Blocks of a listing that are no story (issue 18): promotions slotted into the list ...
PROMO_TEXT = re.compile(
    # an imperative to spend with a commercial word ("Buy a car today with 0% finance"); not "Get
    # ready: storm hits today", which is news
    r"^(?:buy|shop|subscribe|sign up|download)\b.{0,60}"
    r"(?:\bfree\b|\bfinance|\boffers?\b|\bdeals?\b|discount|\d\s?%|percent|newsletter|\btrial\b|our app)|"
    r"stay (?:up to date|informed|in the loop)|\bnewsletter\b|subscribe (?:now|today|to our)|"
    r"sign up (?:now|today|for)|abonnieren|jetzt (?:abo|testen|abonnieren)|"
    r"メルマガ|会員登録|無料(?:登録|体験)|購読のお申し込み",
    re.IGNORECASE,
)
PROMO_HREF = re.compile(
    r"/(?:newsletters?|subscribe|subscription|signup|sign-up|register|abo|shop|store|login)(?:[/?#.]|$)", re.IGNORECASE)
# ... a block labelled as an ad (an element whose whole text is one of these) ...
AD_LABELS = frozenset({
    "ad", "ads", "advert", "advertisement", "sponsored", "sponsored content", "promoted", "paid post",
    "partner content", "anzeige", "werbung", "publicité", "pubblicità", "publicidad", "reklame", "pr", "[pr]",
    "広告", "スポンサー", "スポンサーリンク", "广告", "廣告", "광고",
})
# ... and pagination: /page/3/, or the page's own path with a page number in the query (?page=2).
# WordPress writes posts as ?p=1531 on the blog's own path: ?p= is a page only up to 20.
PAGE_PATH = re.compile(r"/page/\d+/?$", re.IGNORECASE)
PAGE_QUERY = re.compile(r"(?:^|&)(?:(?:page|pg|paged|pagenum|start|offset)=\d{1,4}|p=(?:1?\d|20))(?:&|$)",
                        re.IGNORECASE)

# Images: lazy-load attributes hold the real picture while src holds a placeholder, so they come
# first; srcset candidates ("a.jpg 320w, b.jpg 640w") give the widest when src holds no picture.
IMAGE_ATTRS = ("data-src", "data-original", "data-lazy-src", "data-lazy", "data-url", "data-hi-res-src", "src")
SRCSET_ATTRS = ("data-srcset", "data-lazy-srcset", "srcset")
# File names of icons, spacers and loading placeholders: never an item's picture.
NOT_A_PICTURE = re.compile(
    r"(?:^|[/_.-])(?:icons?|spacer|blank|pixel|1x1|transparent|spinner|loading|loader|placeholder|"
    r"dummy|arrow|bullet|logo|pdf|rss)(?:[/_.-]|\d|$)|\.svg$",
    re.IGNORECASE,
)
# ... and the one-letter or "dot" spacers of older pages (/img/dot.gif, /s.gif, /clear.gif)
SPACER_FILE = re.compile(r"/(?:dot|clear|trans|shim|spc|sp|px|pix|[a-z])\.(?:gif|png)$", re.IGNORECASE)
# A lazy picture set on a placeholder <div data-src> (its <img> only in <noscript>): read when the
# URL looks like a picture, so that an <iframe data-src> video never is.
PICTURE_URL = re.compile(r"\.(?:jpe?g|png|gif|webp|avif)(?:$|[?#])|/(?:images?|img|uploads?|photos?|media)/",
                         re.IGNORECASE)
MIN_PICTURE_SIDE = 40  # an <img> with width or height written below this (px) is an icon or a spacer

# Flat blogs: an unlinked headline, the post, then a "posted … permalink" line with the post's link.
PERMALINK_TEXT = re.compile(
    r"^(?:permalink|permanent link|link to this (?:post|entry)|direct link|lien permanent|enlace permanente|"
    r"link permanente|permalien|パーマリンク|固定リンク|個別ページ|постоянная ссылка|[#¶∞])$",
    re.IGNORECASE,
)
PERMALINK_CLASS_WORDS = ("permalink", "timestamp-link", "perma")
# ... or the time or date of a "posted …" line, linked (Blogger's "posted by Ann at <a>6:19 PM</a>",
# Movable Type's "Posted by Ann at <a>June 3, 2005 10:12 AM</a>")
POSTED_LINE = re.compile(
    r"^\W*(?:posted|published|written|filed|geschrieben|veröffentlicht|publié|publicado|pubblicato|"
    r"gepubliceerd|投稿|作成|公開|опубликовано|написано)\b",
    re.IGNORECASE,
)
TIME_TEXT = re.compile(r"^\d{1,2}[:.]\d{2}(?::\d{2})?\s*(?:[ap]\.?m\.?)?$", re.IGNORECASE)
MIN_FLAT_POSTS = 2

# ----------------------------------------------------------------------------- thresholds

MIN_TITLE_WEIGHT = 10  # a headline is at least ~10 Latin or ~5 CJK characters
GOOD_TITLE_WEIGHT = 30  # median headline weight at which a group counts as fully headline-like
MAX_TITLE_WEIGHT = 300  # longer link texts are paragraphs, not headlines
MIN_ITEMS = 3  # fewer repeated blocks than this is not a listing ...
MIN_ITEMS_STRONG = 2  # ... unless each is an <article> or carries a date
MIN_SCORE = 4.0  # a group scoring below this is noise: the page has no listing
MIN_SCORE_BARE = 7.0  # ... and a bare list of links (no heading, date, summary, image) needs more
STRUCTURED_CONFIRM_BONUS = 2.0  # a group whose links are all in the page's JSON-LD ItemList scores x3
OUTSIDE_MAIN_FACTOR = 0.4  # a list outside the page's <main> when another one is inside it
MIN_SUMMARY_WEIGHT = 30  # shorter leftover text is byline or metadata, not a summary

# ----------------------------------------------------------------------------- dates as written

_MONTHS_EN = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
    r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"
)
_WEEKDAY_EN = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*\.?,?\s+"
_TIME = r"(?:\s*(?:@|at|,|-)?\s*\d{1,2}:\d{2}(?::\d{2})?\s*(?:[ap]\.?m\.?)?)?"

DATE_PATTERNS = tuple(re.compile(p, re.IGNORECASE) for p in (
    r"\d{4}\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日(?:\s*[(（][^)）]{1,3}[)）])?(?:\s*\d{1,2}[:時]\d{2}分?)?",
    r"\d{1,2}\s*月\s*\d{1,2}\s*日(?:\s*[(（][^)）]{1,3}[)）])?(?:\s*\d{1,2}[:時]\d{2}分?)?",
    r"(?<!\d)\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?(?:Z|[+-]\d{2}:?\d{2})?)?(?!\d)",
    r"(?<!\d)\d{4}[/.]\d{1,2}[/.]\d{1,2}(?!\d)" + _TIME,
    r"(?<!\d)\d{1,2}[/.]\d{1,2}[/.]\d{4}(?!\d)" + _TIME,
    r"\b\d{1,2}(?:st|nd|rd|th)?\s+" + _MONTHS_EN + r",?\s+\d{4}\b" + _TIME,
    r"\b" + _MONTHS_EN + r"\s+\d{1,2}(?:st|nd|rd|th)?,?\s+\d{4}\b" + _TIME,
))
# A weekday written before a date belongs to it ("Tuesday, 8 July 2008"): looked for after a match,
# since a leading optional group would make every pattern try at every character.
_WEEKDAY_BEFORE = re.compile(r"\b" + _WEEKDAY_EN + r"$", re.I)
_HAS_DIGIT = re.compile(r"\d")


def find_date_text(text: str) -> str | None:
    """The first date written in `text`, as written (the longest match at the earliest place)."""
    if not _HAS_DIGIT.search(text):
        return None
    best: tuple[int, int, str] | None = None
    for pattern in DATE_PATTERNS:
        m = pattern.search(text)
        if m and (best is None or (m.start(), -len(m.group())) < (best[0], best[1])):
            best = (m.start(), -len(m.group()), m.group().strip())
    if best is None:
        return None
    start = best[0]
    day = _WEEKDAY_BEFORE.search(text[max(0, start - 14):start])
    return (day.group() + best[2]) if day else best[2]


# ----------------------------------------------------------------------------- plain text pages

# Lines that describe the page itself ("this page lists articles on …"): never items.
# One strong pattern is enough; weak ones count only in pairs, since an article may say "一覧".
PAGE_DESCRIPTION_STRONG = tuple(re.compile(p, re.IGNORECASE) for p in (
    r"^(本|この|当)ページ(では|は|で|に)",
    r"(記事|ニュース|コラム|情報)を一覧で?(掲載|表示|紹介|ご覧)",
    r"をテーマ(と|に)した(記事|ニュース)",
    r"^this page (lists|shows|collects|contains|gathers)",
    r"^(all |latest )?(articles|stories|posts|news) (tagged|about|on|filed under|in the category)\b",
    r"^(showing|displaying) (\d+|all) (articles|stories|results|posts)",
    r"^(you are viewing|browse) (all )?(articles|stories|posts)",
))
PAGE_DESCRIPTION_WEAK = tuple(re.compile(p, re.IGNORECASE) for p in (
    r"一覧", r"掲載しています", r"まとめています", r"ご覧いただけます", r"テーマ",
    r"\bthis page\b", r"\bbelow\b", r"\blisted\b", r"\bcollection of\b",
))

SENTENCE_END = re.compile(r"[。．！？!?…]\s*$|[^.]\.\s*$|\.{3}\s*$")
MAX_HEADLINE_WEIGHT = 100  # a text line wider than this is a summary, not a headline


def is_page_description(line: str) -> bool:
    if any(p.search(line) for p in PAGE_DESCRIPTION_STRONG):
        return weight(line) <= 240
    return sum(1 for p in PAGE_DESCRIPTION_WEAK if p.search(line)) >= 2 and weight(line) <= 160


def is_headline_line(line: str) -> bool:
    """Short, and not ending like a sentence: "トランプ氏、… 交渉加速促す", "Talks resume in Geneva"."""
    return weight(line) <= MAX_HEADLINE_WEIGHT and not SENTENCE_END.search(line)


def is_date_only(line: str) -> bool:
    found = find_date_text(line)
    return found is not None and weight(line) <= weight(found) + 6

# Automatic detection is unsure when a list it did not take scored at least this share of the one it
# took: `preview` then shows that list and the selectors that would pick it.
UNSURE_SHARE = 0.5
