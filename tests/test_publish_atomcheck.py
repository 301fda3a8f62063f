"""The Atom checker itself: a valid feed passes, and each kind of broken feed is caught."""

from __future__ import annotations

import pytest
from atomcheck import assert_valid_atom, atom_problems, rng_available

GOOD = """<?xml version='1.0' encoding='UTF-8'?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en">
  <id>urn:uuid:60a76c80-d399-11d9-b93c-0003939e0af6</id>
  <title>Example</title>
  <updated>2026-01-15T09:30:00+00:00</updated>
  <author><name>example.org</name></author>
  <link href="https://example.org/" rel="alternate"/>
  <entry>
    <id>urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a</id>
    <title>One</title>
    <updated>2026-01-15T09:30:00+00:00</updated>
    <link href="https://example.org/1" rel="alternate"/>
    <summary>Text</summary>
  </entry>
  <entry>
    <id>urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6b</id>
    <title>Two</title>
    <updated>2026-01-14T09:30:00Z</updated>
    <content type="text">No link, but content</content>
  </entry>
</feed>
"""


def test_a_valid_feed_passes() -> None:
    assert_valid_atom(GOOD.encode())


@pytest.mark.parametrize("old,new,problem", [
    pytest.param("<updated>2026-01-15T09:30:00+00:00</updated>\n  <author>",
                 "<updated>2026-01-15T09:30:00</updated>\n  <author>", "RFC 3339", id="date-without-offset"),
    pytest.param("80da344efa6b", "80da344efa6a", "repeats", id="duplicate-id"),
    pytest.param("<id>urn:uuid:60a76c80-d399-11d9-b93c-0003939e0af6</id>", "<id>feed-1</id>",
                 "not an absolute URI", id="relative-id"),
    pytest.param('<content type="text">No link, but content</content>', "", "link rel=alternate or an atom:content",
                 id="entry-without-link-or-content"),
    pytest.param("<author><name>example.org</name></author>", "", "atom:author", id="no-author"),
    pytest.param("<title>Example</title>", "", "exactly one atom:title", id="feed-without-title"),
    pytest.param('<link href="https://example.org/1" rel="alternate"/>', '<link href="/1" rel="alternate"/>',
                 "not an absolute URI", id="relative-link"),
    pytest.param("<title>One</title>", "<title>On&#x1;e</title>", "not well-formed", id="control-char"),
])
def test_each_broken_feed_is_caught(old: str, new: str, problem: str) -> None:
    assert old in GOOD
    problems = atom_problems(GOOD.replace(old, new, 1).encode())
    assert any(problem in p for p in problems), problems
    with pytest.raises(AssertionError):
        assert_valid_atom(GOOD.replace(old, new, 1).encode())


def test_rng_catches_what_only_the_schema_knows(shared_dir) -> None:
    """An unknown Atom element inside an entry: only the RELAX NG schema of RFC 4287 refuses it."""
    assert rng_available()
    bad = GOOD.replace("<summary>Text</summary>", "<summary>Text</summary><bogus/>").encode()
    assert any(p.startswith("RNG") for p in atom_problems(bad))
