"""assert_valid_atom(xml_bytes): is this an Atom 1.0 feed a reader and RFC 4287 accept?

Three layers, each catching what the others cannot:
1. feedparser reads it without complaint (bozo == 0): what real readers use.
2. The RFC 4287 rules a schema cannot express, checked here with XPath: an entry without
   content has an alternate link; ids are absolute URIs and unique; timestamps are RFC 3339
   with an offset; every text is XML-safe; feed-or-entry author (the RFC schema's Schematron
   rules, which RELAX NG validators ignore).
3. RELAX NG validation against ../shared/atom/atom.rng (RFC 4287 Appendix B) with lxml, when
   that file exists (CI and the developers' tree have it; a user's clone may not).

Import it from any test: `from atomcheck import assert_valid_atom`.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import feedparser
from lxml import etree

ATOM = "http://www.w3.org/2005/Atom"
NS = {"a": ATOM}
RNG_PATH = Path(__file__).resolve().parent.parent.parent / "shared" / "atom" / "atom.rng"

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
ABSOLUTE_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")
XML_FORBIDDEN = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

# The s:rule annotations of RFC 4287 Appendix B: (context, test, message).
SCHEMATRON_RULES = [
    ("//a:feed", "a:author or not(a:entry[not(a:author)])",
     "atom:feed must have an atom:author unless every atom:entry has one"),
    ("//a:entry", "a:link[@rel='alternate'] or a:link[not(@rel)] or a:content",
     "atom:entry must have a link rel=alternate or an atom:content"),
    ("//a:entry", "a:author or ../a:author or a:source/a:author",
     "atom:entry must have an atom:author if its feed does not"),
]


@lru_cache(maxsize=1)
def _schema() -> etree.RelaxNG | None:
    if not RNG_PATH.is_file():
        return None
    return etree.RelaxNG(etree.parse(str(RNG_PATH)))


def atom_problems(xml_bytes: bytes) -> list[str]:
    """Every problem found, as readable lines (empty: valid)."""
    problems: list[str] = []
    parsed = feedparser.parse(xml_bytes)
    if parsed.bozo:
        problems.append(f"feedparser: bozo ({parsed.get('bozo_exception')!r})")
    if parsed.get("version") != "atom10":
        problems.append(f"feedparser: version is {parsed.get('version')!r}, not 'atom10'")

    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    try:
        doc = etree.fromstring(xml_bytes, parser)
    except etree.XMLSyntaxError as exc:
        return problems + [f"XML not well-formed: {exc}"]
    if doc.tag != f"{{{ATOM}}}feed":
        return problems + [f"root element is {doc.tag}, not atom:feed"]

    # Text must be XML-safe. A parsed document cannot hold forbidden characters, but character
    # references to them are refused only by some parsers: check the decoded text too.
    for node in doc.iter():
        for text in [node.text, node.tail, *node.attrib.values()]:
            if text and XML_FORBIDDEN.search(text):
                problems.append(f"line {node.sourceline}: text holds characters XML 1.0 forbids: {text!r}")

    for name in ("id", "title", "updated"):
        if len(doc.findall(f"a:{name}", NS)) != 1:
            problems.append(f"atom:feed must have exactly one atom:{name}")

    ids: dict[str, int] = {}
    for node in doc.xpath("/a:feed/a:id | /a:feed/a:entry/a:id", namespaces=NS):
        value = (node.text or "").strip()
        if not ABSOLUTE_URI.match(value):
            problems.append(f"line {node.sourceline}: atom:id {value!r} is not an absolute URI")
        if value in ids:
            problems.append(f"line {node.sourceline}: atom:id {value!r} repeats line {ids[value]}")
        ids.setdefault(value, node.sourceline)

    for node in doc.xpath("//a:updated | //a:published", namespaces=NS):
        value = (node.text or "").strip()
        if not RFC3339.match(value):
            problems.append(f"line {node.sourceline}: {etree.QName(node).localname} {value!r} "
                            "is not RFC 3339 with an offset")

    for entry in doc.findall("a:entry", NS):
        for name in ("id", "title", "updated"):
            if len(entry.findall(f"a:{name}", NS)) != 1:
                problems.append(f"line {entry.sourceline}: atom:entry must have exactly one atom:{name}")
        for link in entry.findall("a:link", NS):
            href = link.get("href") or ""
            if not ABSOLUTE_URI.match(href):
                problems.append(f"line {link.sourceline}: link href {href!r} is not an absolute URI")

    for context, test, message in SCHEMATRON_RULES:
        for node in doc.xpath(context, namespaces=NS):
            if not node.xpath(f"boolean({test})", namespaces=NS):
                problems.append(f"line {node.sourceline}: {message}")

    schema = _schema()
    if schema is not None and not schema.validate(etree.ElementTree(doc)):
        problems += [f"RNG line {e.line}: {e.message}" for e in schema.error_log] or ["RNG: invalid"]
    return problems


def assert_valid_atom(xml_bytes: bytes) -> None:
    problems = atom_problems(xml_bytes)
    assert not problems, "invalid Atom:\n" + "\n".join(problems)


def rng_available() -> bool:
    return _schema() is not None
