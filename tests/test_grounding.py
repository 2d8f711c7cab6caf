"""Tests for extractor.grounding: the deterministic verbatim validator."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import FrozenInstanceError, dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from extractor import grounding
from extractor.grounding import Grounding, SourceIndex, ground
from extractor.grounding import index as grounding_index
from extractor.grounding.normalize import _normalize

ROOT = Path(__file__).resolve().parents[1]
SEED_001 = ROOT / "seeds" / "001_7026c964f11f0189.txt"

# The equivalences of rule 2, written out independently of the module.
QUOTES = "'\"`‘’‚‛“”„‟«»‹›"
DASHES = "-\u2010\u2011\u2012\u2013\u2014\u2015\u2212"
WHITESPACE = "".join(c for c in map(chr, range(0x3001)) if c.isspace())
STRIP = WHITESPACE + QUOTES

PROPERTY = settings(max_examples=200, deadline=None)

# Both st.DrawFn (inside @st.composite) and DataObject.draw (inside tests).
Draw = Callable[[st.SearchStrategy[Any]], Any]


def ref_norm(text: str) -> str:
    """Reference normal form for rule 2 (without stripping)."""
    text = unicodedata.normalize("NFC", text)
    text = re.sub(r"\s+", " ", text)
    text = re.sub(f"[{re.escape(QUOTES)}]", '"', text)
    text = re.sub(f"[{re.escape(DASHES)}]+", "-", text)
    return text.replace("…", "...")


def span(g: Grounding) -> tuple[int | None, int | None]:
    return g.start, g.end


INLINE_SPACES = " \t\u00a0\u2009\u202f"


def assert_grown(g: Grounding, source: str, expected: Sequence[tuple[int, int]]) -> None:
    """``g``'s pieces are ``expected`` (the places of the candidate's core), the first one's start and
    the last one's end moved out only over quotation marks next to them (inline spaces between allowed),
    each ending on a mark that pairs with one inside the pieces, passing only marks that pair with
    nothing, and as far as such marks go."""
    pieces, expected = g.pieces, tuple(expected)
    assert len(pieces) == len(expected) and (g.start, g.end) == (pieces[0][0], pieces[-1][1])
    assert pieces[1:-1] == expected[1:-1]
    (s, s0), (e0, e) = (pieces[0][0], expected[0][0]), (expected[-1][1], pieces[-1][1])
    assert s <= s0 and e0 <= e
    if len(pieces) > 1:
        assert (pieces[0][1], pieces[-1][0]) == (expected[0][1], expected[-1][0])
    else:
        assert source[s0:e0].strip(STRIP) == source[s0:e0]
    assert source[s:s0].strip(QUOTES + INLINE_SPACES) == "" == source[e0:e].strip(QUOTES + INLINE_SPACES)
    index = SourceIndex(source)

    def pairing(k: int) -> bool | None:
        """True: pairs inside the pieces; False: elsewhere; None: with nothing (or not a mark)."""
        partner = index._quotes._partner(k) if 0 <= k < len(source) and source[k] in QUOTES else -1
        return None if partner < 0 else any(a <= partner < b for a, b in pieces)

    assert s == s0 or pairing(s) is True
    assert e == e0 or pairing(e - 1) is True
    assert all(pairing(k) is not False for k in [*range(s, s0), *range(e0, e)])
    k = len(source[e:]) - len(source[e:].lstrip(INLINE_SPACES)) + e  # as far as they go
    while k < len(source) and source[k] in QUOTES and pairing(k) is None:
        k += 1
    assert pairing(k) is not True
    k = len(source[:s].rstrip(INLINE_SPACES)) - 1
    while k >= 0 and source[k] in QUOTES and pairing(k) is None:
        k -= 1
    assert pairing(k) is not True


@contextmanager
def word_index_blocks(size: int) -> Iterator[None]:
    """Use a tiny block size for the word index, so that small texts span many blocks."""
    saved = grounding_index._BLOCK
    grounding_index._BLOCK = size
    try:
        yield
    finally:
        grounding_index._BLOCK = saved


BLOCK_SIZES = st.sampled_from([1, 5, 16, 64, 1 << 16])


@contextmanager
def positions_from(size: int) -> Iterator[None]:
    """Give sources of ``size`` characters and more the position index instead of the block index."""
    saved = grounding_index._POSITIONS_FROM
    grounding_index._POSITIONS_FROM = size
    try:
        yield
    finally:
        grounding_index._POSITIONS_FROM = saved


def warm_index(source: str, positions: bool) -> SourceIndex:
    """An index past its first query (so it uses the word index), with the position index if asked."""
    index = SourceIndex(source)
    index.ground("warm-up")
    if positions:
        index._position_index()
    return index


# --------------------------------------------------------------------------- API


def test_public_api() -> None:
    assert grounding.__all__ == ["Grounding", "SourceIndex", "ground"]
    g = ground("b", "abc")
    assert g == Grounding("exact", 1, 2, ((1, 2),), 1, None)
    assert g.found
    with pytest.raises(FrozenInstanceError):
        g.status = "normalized"  # type: ignore[misc]
    assert not ground("z", "abc").found


@pytest.mark.parametrize("block", [16, 1000, 1 << 16])
def test_source_index_is_reusable_and_agrees_with_ground(block: int) -> None:
    source = SEED_001.read_text(encoding="utf-8")
    candidates = [
        "Prime Minister Meloni",
        "Italy's support",
        "the Italian government",
        "a high level … partners",
        "Italy will send troops",
        "the Italian government’s unwavering positions on guarantees",
        "",
    ]
    with word_index_blocks(block):
        index = SourceIndex(source)
        for _ in range(3):  # the lazily built word index must not change any answer
            for c in candidates:
                assert index.ground(c) == ground(c, source)


# --------------------------------------------------------------------------- rule 1: exact


def test_exact_reports_first_occurrence_and_counts_them() -> None:
    source = "the cat sat; the cat ran; the cat"
    g = ground("the cat", source)
    assert g == Grounding("exact", 0, 7, ((0, 7),), 3, None)


def test_edge_whitespace_and_quotes_are_stripped_and_not_in_the_span() -> None:
    source = "He said “we will stay” and left."
    g = ground("  “we will stay”\n", source)
    assert g.status == "exact"
    assert source[g.start : g.end] == "we will stay"
    g = ground("'«we will stay»'", source)
    assert g.status == "exact"
    assert source[g.start : g.end] == "we will stay"


def test_exact_is_literal_even_where_normalisation_would_differ() -> None:
    assert span(ground("said.", "he said... yes")) == (3, 8)
    assert ground("said.", "he said... yes").status == "exact"
    g = ground("well-", "a well--known b")
    assert (g.status, span(g)) == ("exact", (2, 7))


def test_exact_counts_literal_occurrences_only() -> None:
    source = "Italy’s plan. Italy's plan. Italy’s plan."
    g = ground("Italy’s plan", source)
    assert (g.status, g.start, g.occurrences) == ("exact", 0, 2)
    g = ground("Italy‘s plan", source)
    assert (g.status, g.start, g.occurrences) == ("normalized", 0, 3)


# --------------------------------------------------------------------------- rule 2: normalized


@pytest.mark.parametrize("mark", list(QUOTES))
def test_every_quote_mark_and_apostrophe_is_alike(mark: str) -> None:
    source = "Italy’s “firm” line"
    g = ground(f"Italy{mark}s {mark}firm{mark} line", source)
    assert (g.status, span(g)) == ("normalized", (0, len(source)))
    g = ground(f"Italy{mark}s", source)
    assert (g.status, span(g)) == ("exact" if mark == "’" else "normalized", (0, 7))


@pytest.mark.parametrize("dash", [*DASHES, "--", "---"])
@pytest.mark.parametrize("article_dash", ["-", "–", "—", "--", "−"])
def test_dashes_and_double_hyphen_are_alike(dash: str, article_dash: str) -> None:
    source = f"x peace {article_dash} now y"
    g = ground(f"peace {dash} now", source)
    assert g.found
    assert span(g) == (2, len(source) - 2)
    assert g.status == ("exact" if dash == article_dash else "normalized")


@pytest.mark.parametrize("space", [c for c in WHITESPACE if c != " "])
def test_every_unicode_whitespace_is_alike(space: str) -> None:
    source = f"a{space}b c"
    g = ground("a b", source)
    assert (g.status, span(g)) == ("normalized", (0, 3))
    g = ground(f"b{space}c", source)
    assert (g.status, span(g)) == ("normalized", (2, 5))


def test_whitespace_runs_collapse_and_offsets_cover_the_whole_run() -> None:
    source = "start  one \n\t\u00a0 two\u202fthree\u2009 end"
    g = ground("one two three", source)
    assert g.status == "normalized"
    assert source[g.start : g.end] == "one \n\t\u00a0 two\u202fthree"
    g = ground("one\n\ntwo", source)
    assert source[g.start : g.end] == "one \n\t\u00a0 two"


def test_match_never_starts_or_ends_inside_a_collapsed_run() -> None:
    source = "x   \n   y"
    assert span(ground(" y", source)) == (8, 9)
    assert span(ground("x ", source)) == (0, 1)
    assert span(ground("x y", source)) == (0, 9)


def test_hard_line_breaks_match_a_one_line_candidate() -> None:
    source = (
        "The participants in the coalition also\n"
        "emphasized the need to maintain strong\r\n"
        "pressure on the Russian Federation.\n"
    )
    g = ground("emphasized the need to maintain strong pressure on the Russian", source)
    assert g.status == "normalized"
    assert source[g.start : g.end] == "emphasized the need to maintain strong\r\npressure on the Russian"


def test_ellipsis_character_and_three_dots_are_alike() -> None:
    source = "He paused… then spoke... again"
    g = ground("paused... then spoke… again", source)
    assert (g.status, span(g)) == ("normalized", (3, len(source)))
    g = ground("spoke…", source)
    assert source[g.start : g.end] == "spoke..."
    g = ground("paused...", source)
    assert source[g.start : g.end] == "paused…"
    # A dot is not an ellipsis.
    assert not ground("paused.", source).found


def test_nfc_decomposed_source_composed_candidate_covers_whole_clusters() -> None:
    source = "un cafe\u0301 noir"
    g = ground("café noir", source)
    assert g.status == "normalized"
    assert span(g) == (3, len(source))
    assert source[g.start : g.end] == "cafe\u0301 noir"
    g = ground("un café", source)
    assert source[g.start : g.end] == "un cafe\u0301"


def test_nfc_composed_source_decomposed_candidate() -> None:
    source = "Ελλάδα and Zoë"
    g = ground("Zoe\u0308", source)
    assert (g.status, span(g)) == ("normalized", (11, 14))
    g = ground("Ελλα\u0301δα", source)
    assert (g.status, span(g)) == ("normalized", (0, 6))


def test_nfc_offsets_after_a_length_change_map_back() -> None:
    # Several composing sequences before the match shift normalised offsets.
    source = "e\u0301e\u0301e\u0301 x a\u0323\u0302 target"
    g = ground("target", source)
    assert (g.status, source[g.start : g.end]) == ("exact", "target")
    g = ground("ậ target", source)
    assert g.status == "normalized"
    assert source[g.start : g.end] == "a\u0323\u0302 target"


def test_no_match_through_part_of_a_character() -> None:
    # "cafe" is in the string, but not as whole characters of "cafe\u0301".
    assert not ground("cafe", "un cafe\u0301").found
    assert ground("cafe", "un cafe\u0301 and cafe").start == 13
    # Base letter without its (non-composing) mark.
    g = ground("q", "q\u0307")
    assert not g.found
    assert (
        g.reason == "only found cutting through a unit of the article (e.g. a letter and its combining mark)"
    )
    # Devanagari consonant without its vowel sign.
    assert not ground("क", "कि").found
    # Hangul: conjoining jamo compose under NFC.
    source = "x \u1112\u1161\u11ab\u1100\u116e\u11a8 y"
    g = ground("한국", source)
    assert (g.status, source[g.start : g.end]) == ("normalized", "\u1112\u1161\u11ab\u1100\u116e\u11a8")
    assert not ground("하", source).found


def test_emoji_sequences_are_not_split() -> None:
    source = "ok 👍🏽 fine 👨‍👩‍👧 family 🇺🇦🇫🇷 flags"
    assert not ground("👍", source).found
    assert ground("👍🏽", source).status == "exact"
    assert not ground("👨", source).found
    assert not ground("👨\u200d👩", source).found
    assert ground("👨‍👩‍👧 family", source).status == "exact"
    assert not ground("🇦🇫", source).found  # straddles two flags
    assert span(ground("🇫🇷", source)) == (source.index("🇫🇷"), source.index("🇫🇷") + 2)


def test_cyrillic_arabic_and_cjk() -> None:
    ru = "Президент заявил: «Мы не отправим войска» — и ушёл."
    g = ground('"Мы не отправим войска" - и ушёл', ru)
    assert g.status == "normalized"
    assert ru[g.start : g.end] == "«Мы не отправим войска» — и ушёл"  # the » inside pairs with the «
    g = ground("Мы не отправим войска", ru)
    assert g.status == "exact"
    assert not ground("мы не отправим войска", ru).found  # case
    assert not ground("ушел", ru).found  # ё is not е
    ar = "قال الرئيس: «لن نرسل قوات» إلى أوكرانيا."
    g = ground("لن نرسل قوات", ar)
    assert (g.status, ar[g.start : g.end]) == ("exact", "لن نرسل قوات")
    g = ground("“قوات” إلى", ar)
    assert g.status == "normalized"
    assert ar[g.start : g.end] == "قوات» إلى"
    assert not ground("لن نرسل قوة", ar).found
    vowelled = "كَتَبَ الوَلَدُ"
    assert not ground("كتب", vowelled).found  # no dropping of harakat
    assert ground("الوَلَدُ", vowelled).status == "exact"
    zh = "总理表示：「意大利不会派兵」。"
    g = ground("意大利不会派兵", zh)
    assert (g.status, zh[g.start : g.end]) == ("exact", "意大利不会派兵")
    assert ground("“意大利不会派兵”", zh).status == "exact"
    assert not ground("意大利会派兵", zh).found


# --------------------------------------------------------------------------- quotation marks at the ends

NESTED_END = (
    "The director told us: “Then the council came back and said, "
    "‘We can’t close the shelter before spring,’” and left."
)
OUTER_END = "Then the council came back and said, ‘We can’t close the shelter before spring,’"


@pytest.mark.parametrize(
    ("candidate", "status"),
    [
        (OUTER_END, "exact"),
        (f"“{OUTER_END}”", "exact"),
        (f" “{OUTER_END}” ", "exact"),
        (OUTER_END[:-1], "exact"),  # the model left the inner closing mark out: the article has it
        (f"“{OUTER_END[:-1]}", "exact"),
        (f"{OUTER_END}”'»", "exact"),  # stray marks the article does not have there are ignored
        (OUTER_END.replace("‘", "'").replace("’", "'"), "normalized"),
        (OUTER_END.replace("‘", '"')[:-1], "normalized"),
    ],
)
def test_an_inner_quote_closing_at_the_end_of_the_outer_one_is_in_the_span(
    candidate: str, status: str
) -> None:
    """Issue 15: the span stopped before the ’ that closes the inner quotation."""
    g = ground(candidate, NESTED_END)
    assert (g.status, NESTED_END[g.start : g.end]) == (status, OUTER_END)
    assert g.pieces == ((g.start, g.end),) and g.occurrences == 1


@pytest.mark.parametrize(
    "candidate",
    ["‘Sorry’ is not enough,", "Sorry’ is not enough,", "“‘Sorry’ is not enough,”", "'Sorry' is not enough,"],
)
def test_an_inner_quote_opening_at_the_start_of_the_outer_one_is_in_the_span(candidate: str) -> None:
    source = "He wrote: “‘Sorry’ is not enough,” and left."
    g = ground(candidate, source)
    assert source[g.start : g.end] == "‘Sorry’ is not enough,"


@pytest.mark.parametrize(
    ("source", "candidate", "expected"),
    [
        # The marks pair with each other, outside the candidate: the speaker's words are inside them.
        (
            NESTED_END,
            "‘We can’t close the shelter before spring,’",
            "We can’t close the shelter before spring,",
        ),
        ("He said “we will stay” and left.", "“we will stay”", "we will stay"),
        # A plural possessive is not the end of the quotation that opens before the candidate.
        (
            "She said: ‘The students’ union will strike,’ and left.",
            "‘The students’ union will strike,’",
            "The students’ union will strike,",
        ),
        (
            "She said: ‘The students’ union will strike,’ and left.",
            "union will strike,",
            "union will strike,",
        ),
        # Apostrophes never pair.
        ("It is the workers’ union’s ‘final offer’.", "the workers’ union’s", "the workers’ union’s"),
        ("Rock ’n’ roll, they said.", "’n’ roll", "n’ roll"),
        # Stray marks that the article does not have next to the span.
        ("the plan works", "‘the plan works’”", "the plan works"),
        ("He said: «the plan works» today.", "“the plan works”", "the plan works"),
    ],
)
def test_quotation_marks_that_do_not_pair_inside_the_span_stay_out(
    source: str, candidate: str, expected: str
) -> None:
    g = ground(candidate, source)
    assert g.found and source[g.start : g.end] == expected


@pytest.mark.parametrize(
    ("source", "candidate", "expected"),
    [
        (
            "He said: “She told me ‘he wrote “no”’” and left.",
            "She told me ‘he wrote “no",
            "She told me ‘he wrote “no”’",
        ),
        (
            "Il a dit : « Nous avons répondu ‹ non › » hier.",
            "Nous avons répondu ‹ non",
            "Nous avons répondu ‹ non ›",
        ),
        ("Er sagte: „Sie riefen ‚nein‘“ und ging.", "Sie riefen ‚nein", "Sie riefen ‚nein‘"),
        ("Er sagte: »Sie riefen ›nein‹« und ging.", "Sie riefen ›nein", "Sie riefen ›nein‹"),
        ("他说：「我们会留下『直到春天』」。", "我们会留下『直到春天", "我们会留下『直到春天』"),
        (
            "He said: \"They told us 'we stay,'\" and left.",
            "They told us 'we stay,",
            "They told us 'we stay,'",
        ),
        ("“‘No,’ she said, ‘never.’”", "No,’ she said, ‘never.", "‘No,’ she said, ‘never.’"),
    ],
)
def test_nested_marks_in_other_conventions(source: str, candidate: str, expected: str) -> None:
    g = ground(candidate, source)
    assert g.status == "exact" and source[g.start : g.end] == expected


def test_an_elided_quote_takes_the_closing_mark_of_a_quotation_opened_in_its_first_piece() -> None:
    source = "She wrote: “Then he said, ‘We stay here, whatever happens, forever,’” and left."
    g = ground("Then he said, ‘We stay … forever,", source)
    assert g.status == "elided"
    assert [source[s:e] for s, e in g.pieces] == ["Then he said, ‘We stay", "forever,’"]
    assert (g.start, g.end) == (g.pieces[0][0], g.pieces[-1][1])


# --------------------------------------------------------------------------- rule 3: elided


@pytest.mark.parametrize("marker", ["...", "…", "[...]", "[…]", "(...)", "(…)", " … ", " [...] ", "...."])
def test_elision_markers(marker: str) -> None:
    source = "We will not send troops to Ukraine under any circumstances, she said."
    g = ground(f"We will not send troops{marker}under any circumstances", source)
    assert g.status == "elided"
    assert g.pieces == ((0, 23), (35, 58))
    assert [source[s:e] for s, e in g.pieces] == ["We will not send troops", "under any circumstances"]
    assert (g.start, g.end) == (0, 58)
    assert g.occurrences == 1


def test_elided_pieces_use_rule_2_and_are_in_order() -> None:
    source = "“Affirming Italy’s support — in line with the past — Meloni ruled it out”"
    g = ground("Affirming Italy's support ... Meloni ruled it out", source)
    assert g.status == "elided"
    assert [source[s:e] for s, e in g.pieces] == ["Affirming Italy’s support", "Meloni ruled it out"]
    g = ground("Meloni ruled it out … Affirming Italy's support", source)
    assert g == Grounding("not_found", None, None, (), 0, "piece 2 of 2 not found after piece 1")


def test_elided_pieces_may_not_overlap() -> None:
    source = "one two three four"
    assert ground("one two … two three", source).reason == "piece 2 of 2 not found after piece 1"
    g = ground("one two … three", source)
    assert g.pieces == ((0, 7), (8, 13))


def test_elision_within_one_paragraph_only() -> None:
    source = "Alpha beta gamma.\n\nDelta epsilon."
    g = ground("Alpha beta … epsilon", source)
    assert g == Grounding("not_found", None, None, (), 0, "pieces span a paragraph break")
    # A blank line holding only whitespace is still a paragraph break.
    assert not ground("Alpha beta … epsilon", "Alpha beta gamma.\n \t\nDelta epsilon.").found
    # A single line break is not.
    g = ground("Alpha beta … epsilon", "Alpha beta gamma.\nDelta epsilon.")
    assert g.status == "elided"
    # A blank line inside a piece counts too; without an ellipsis (rule 2) it is just whitespace.
    assert ground("beta gamma. Delta … epsilon", source).reason == "pieces span a paragraph break"
    assert ground("beta gamma. Delta epsilon", source).status == "normalized"


def test_elision_tries_later_occurrences_of_the_first_piece() -> None:
    source = "Meloni said no.\n\nLater Meloni said that troops ... no troops."
    g = ground("Meloni said … troops", source)
    assert g.status == "elided"
    first = source.index("Meloni", 1)
    assert g.pieces[0] == (first, first + len("Meloni said"))
    assert source[g.pieces[1][0] : g.pieces[1][1]] == "troops"
    assert g.pieces[1][0] == source.index("troops")


def test_elision_counts_complete_placements() -> None:
    source = "a b c. a x c. a y c."
    g = ground("a … c", source)
    assert (g.status, g.pieces, g.occurrences) == ("elided", ((0, 1), (4, 5)), 3)


def test_edge_ellipses_mark_omitted_context() -> None:
    source = SEED_001.read_text(encoding="utf-8")
    g = ground("…ruled out deploying Italian troops", source)
    assert g.status == "elided"
    assert source[g.start : g.end] == "ruled out deploying Italian troops"
    g = ground("“[...] ruled out deploying Italian troops on Ukrainian soil …”", source)
    assert g.status == "elided"
    assert g.pieces == ((g.start, g.end),)


def test_elision_rejections() -> None:
    source = "one two three four five"
    assert (
        ground("one … … five", source).reason == "piece 2 of 3 is empty (ellipses with nothing between them)"
    )
    assert ground("…", source).reason == "empty candidate (only ellipses)"
    g = ground("one … six", source)
    assert g.reason == "piece 2 of 2 not found after piece 1"
    g = ground("zero … five", source)
    assert (g.reason or "").startswith("piece 1 of 2 not in the article")
    # An ellipsis does not license other changes inside a piece.
    assert not ground("one Two … five", source).found


# --------------------------------------------------------------------------- rule 4: not_found


@pytest.mark.parametrize(
    ("candidate", "why"),
    [
        ("ruled out deploying Italian Troops", "capital letter"),
        ("ruled out deploying italian troops", "small letter"),
        ("ruled out deplyoing Italian troops", "one changed letter"),
        ("ruled out deploy Italian troops", "stemming"),
        ("ruled out deploying troops", "dropped word"),
        ("ruled out deploying any Italian troops", "added word"),
        ("ruled out Italian deploying troops", "reordered words"),
        ("ruled out deploying Italian troops in Ukraine", "stitched from two places"),
        ("escluso l'invio di truppe italiane", "translation"),
        ("ruled out deploying Italian troops on Ukrainian soil.", "added period"),
        ("RULED OUT DEPLOYING ITALIAN TROOPS", "upper case"),
    ],
)
def test_not_found(candidate: str, why: str) -> None:
    source = SEED_001.read_text(encoding="utf-8")
    g = ground(candidate, source)
    assert g == Grounding("not_found", None, None, (), 0, g.reason), why
    assert g.reason and g.reason.startswith("not in the article"), why
    assert "\n" not in g.reason


@pytest.mark.parametrize("candidate", ["", "   ", "“”", " ' \n\u00a0« » "])
def test_empty_candidate(candidate: str) -> None:
    assert ground(candidate, "some text") == Grounding("not_found", None, None, (), 0, "empty candidate")


def test_reason_names_a_word_missing_from_the_article() -> None:
    source = "The statement stressed the voluntary nature of participation."
    g = ground("The statement stresed the voluntary nature", source)
    assert g.reason == "not in the article ('stresed' never occurs in it as a separate word)"


def assert_prefix_reason(reason: str | None, needle: str, norm: str, longest: int) -> None:
    """The hint is the longest prefix, or (search bounded) a shorter prefix that really occurs."""
    exact = f"not in the article (longest prefix found: {longest} of {len(needle)} characters)"
    if reason == exact:
        return
    found = re.fullmatch(
        rf"not in the article \(a prefix of (\d+) of {len(needle)} characters occurs\)", reason or ""
    )
    assert found, reason
    assert int(found[1]) <= longest and needle[: int(found[1])] in norm


def test_reason_gives_the_longest_prefix_found() -> None:
    source = "The statement stressed the voluntary nature of participation."
    # Every inner word exists, the order does not.
    g = ground("The statement stressed the nature voluntary", source)
    assert g.reason == "not in the article (longest prefix found: 27 of 43 characters)"
    g = ground("Thy statement", source)
    assert g.reason == "not in the article (longest prefix found: 2 of 13 characters)"


def test_empty_source() -> None:
    assert not ground("x", "").found
    assert ground("", "").reason == "empty candidate"


# --------------------------------------------------------------------------- from an offset


def test_ground_from_an_offset_reports_the_first_occurrence_there_and_counts_from_there() -> None:
    source = "the cat sat; the cat ran; the cat"
    index = SourceIndex(source)
    assert index.ground("the cat", start=0) == index.ground("the cat")
    assert index.ground("the cat", start=1) == Grounding("exact", 13, 20, ((13, 20),), 2, None)
    assert index.ground("the cat", start=13) == Grounding("exact", 13, 20, ((13, 20),), 2, None)
    assert index.ground("the cat", start=14) == Grounding("exact", 26, 33, ((26, 33),), 1, None)
    g = index.ground("the cat", start=27)
    assert g == Grounding("not_found", None, None, (), 0, "not at or after offset 27 (first occurrence at 0)")
    assert index.ground("the cat", start=len(source)).reason == (
        f"not at or after offset {len(source)} (first occurrence at 0)"
    )
    assert index.ground("the dog", start=5) == ground("the dog", source)  # the reason for the article
    with pytest.raises(ValueError, match="start"):
        index.ground("the cat", start=-1)


def test_ground_from_an_offset_prefers_literal_occurrences_from_there() -> None:
    source = "a b. a  b. a b. a\tb."
    index = SourceIndex(source)
    assert span(index.ground("a b", start=1)) == (11, 14)  # the literal one, as rule 1 says
    g = index.ground("a b", start=12)
    assert (g.status, span(g), g.occurrences) == ("normalized", (16, 19), 1)
    # An offset inside a collapsed whitespace run: the occurrence that starts before it is not taken.
    g = index.ground("a  b", start=7)
    assert (g.status, span(g), g.occurrences) == ("normalized", (11, 14), 2)


def test_ground_from_an_offset_keeps_the_whole_article_as_context() -> None:
    source = "👩\u200d💻 and 💻"  # the first 💻 is joined to 👩: never a match on its own
    index = SourceIndex(source)
    assert span(index.ground("💻", start=1)) == (8, 9)
    assert span(index.ground("💻", start=2)) == (8, 9)


def test_repeated_text_gets_the_position_index_and_the_same_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    seeds = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "seeds").glob("*.txt"))]
    source = "\n\n".join(seeds * 12)
    quotes = [
        "ruled out deploying Italian troops on Ukrainian soil",
        "the Italian government's unwavering positions",
        "Prime Minister Meloni reiterated … Ukrainian soil",
        "ruled out deploying Italian troops on Ukrainian soil in 2026",
        source[-5000:] + " end",
    ]
    expected = [ground(q, source) for q in quotes]
    monkeypatch.setattr(grounding_index, "_SCAN_BUDGET", 4)
    index = SourceIndex(source)
    for _ in range(6):
        assert [index.ground(q) for q in quotes] == expected
    assert index._positions is not None  # searches scanned the source more than 4 times over
    at = expected[0].start
    assert at is not None
    later = index.ground(quotes[0], start=at + 1)
    assert later.start == source.find(quotes[0], at + 1) and later.occurrences == 11


def test_a_long_source_gets_the_position_index_instead_of_blocks() -> None:
    seeds = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "seeds").glob("*.txt"))]
    source = "\n\n".join(seeds * 12)
    quotes = ["Prime Minister Meloni reiterated … Ukrainian soil", "Italy will send troops to Kyiv", "the"]
    expected = [ground(q, source) for q in quotes]
    with positions_from(len(source) // 2):
        index = SourceIndex(source)
        assert [index.ground(q) for q in quotes] == expected
    assert index._positions is not None and index._blocks is None


def test_ground_elided_from_an_offset() -> None:
    source = "One two three four. One two three four."
    index = SourceIndex(source)
    g = index.ground("One … four", start=1)
    assert (g.status, g.pieces, g.occurrences) == ("elided", ((20, 23), (34, 38)), 1)


# --------------------------------------------------------------------------- the seed article


def test_seed_statement_exact_normalized_and_changed() -> None:
    source = SEED_001.read_text(encoding="utf-8")
    statement = (
        "Affirming Italy’s support for Ukraine’s security concerns, in line with what has been done for a "
        "long time, Prime Minister Meloni reiterated a number of the Italian government’s unwavering "
        "positions on guarantees and, in particular, ruled out deploying Italian troops on Ukrainian soil"
    )
    start = source.index(statement)
    assert source[start - 1] == "“" and source[start + len(statement)] == "”"

    g = ground(statement, source)
    assert g == Grounding("exact", start, start + len(statement), ((start, start + len(statement)),), 1, None)
    assert ground(f"“{statement}”", source) == g

    straight = '"' + statement.replace("’", "'") + '"'
    assert "Italy's" in straight
    g = ground(straight, source)
    assert (g.status, span(g), g.occurrences) == ("normalized", (start, start + len(statement)), 1)

    assert not ground(statement.replace("unwavering", "unwaivering"), source).found
    assert not ground(straight.replace("support", "backing"), source).found


def test_long_source_over_many_word_index_blocks() -> None:
    seeds = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "seeds").glob("*.txt"))]
    source = "\n\n".join(seeds * 12)  # about 200 000 characters: several blocks of the word index
    index = SourceIndex(source)
    quote = "ruled out deploying Italian troops on Ukrainian soil"
    for _ in range(2):
        g = index.ground(quote)
        assert (g.status, g.start, g.occurrences) == ("exact", source.find(quote), source.count(quote))
        assert g.occurrences == 12
    g = index.ground("the Italian government's unwavering positions")
    expected = source.find("the Italian government’s unwavering")
    assert (g.status, g.start, g.occurrences) == ("normalized", expected, 12)
    g = index.ground("Prime Minister Meloni reiterated … Ukrainian soil")
    assert (g.status, g.occurrences) == ("elided", 12)
    assert g.start == source.find("Prime Minister Meloni reiterated")
    g = index.ground(source[-5000:] + " end")
    assert g.reason is not None
    found = re.search(r"(\d+) of (\d+) characters", g.reason)
    assert found
    # Earlier copies are followed by a blank line, which matches the space before "end".
    assert int(found[1]) <= int(found[2]) - len("end")
    assert not index.ground("ruled out deploying Italian troops on Ukrainian soil in 2026").found


def test_reference_answers_ground_as_documented() -> None:
    """fixtures/answers: all verbatim except one paraphrase; one straight-quote variant."""
    statuses: dict[tuple[str, str, int], str] = {}
    for path in sorted((ROOT / "fixtures" / "answers").glob("0*.json")):
        answer = json.loads(path.read_text(encoding="utf-8"))
        index = SourceIndex((ROOT / "seeds" / f"{path.stem}.txt").read_text(encoding="utf-8"))
        for kind, field in (("quotes", "text"), ("events", "evidence"), ("stances", "evidence")):
            for i, item in enumerate(answer[kind]):
                statuses[path.stem, kind, i] = index.ground(item[field]).status
    assert statuses.pop(("002_0277cc05516288b5", "quotes", 1)) == "not_found"
    assert statuses.pop(("001_7026c964f11f0189", "quotes", 0)) == "normalized"
    assert set(statuses.values()) == {"exact"}


# --------------------------------------------------------------------------- properties

# Word units: Latin with and without precomposed accents, Cyrillic, Arabic with harakat, CJK, Hangul,
# Devanagari with a vowel sign, emoji with modifiers, joiners and flags.
UNITS = [
    "a", "k", "z", "é", "ñ", "ậ", "ß", "ж", "щ", "ё", "й",
    "ب", "سَ", "ك", "中", "文", "語", "한", "국", "कि", "👍", "👍🏽", "👨‍👩‍👧", "🇺🇦",
]  # fmt: skip
CLASSES = {
    "W": [" ", "  ", "\n", "\n\n", " \n ", "\n \n", "\u00a0", "\u2009", "\u202f", "\t", "\u3000", "\r\n"],
    "D": ["-", "\u2010", "\u2011", "\u2013", "\u2014", "\u2212", "--", "---"],
    "Q": list(QUOTES),
    "E": ["...", "…"],
}
TEMPLATES: list[tuple[str, ...]] = [
    ("W",), ("W",), (",", "W"), ("W", "D", "W"), ("D",), ("W", "Q"), ("Q", "W"), ("Q",), (";", "W"),
    ("E",), ("W", "E", "W"),
]  # fmt: skip
PLAIN_TEMPLATES = [t for t in TEMPLATES if "E" not in t]
DECORATION = ["", " ", "“", '"', "« ", "\n", "' "]
MARKERS = [" … ", " ... ", " [...] ", " […] ", " (...) ", " (…) ", "…", "..."]


@dataclass
class Doc:
    words: list[str]  # NFC
    templates: list[tuple[str, ...]]  # templates[k] separates words[k] and words[k + 1]
    source: str
    spans: list[tuple[int, int]]  # of each word in source


def render_sep(template: tuple[str, ...], draw: Draw) -> str:
    return "".join(draw(st.sampled_from(CLASSES[part])) if part in CLASSES else part for part in template)


def render_word(word: str, draw: Draw) -> str:
    return unicodedata.normalize(draw(st.sampled_from(["NFC", "NFD"])), word)


@st.composite
def documents(
    draw: st.DrawFn,
    templates: list[tuple[str, ...]] = TEMPLATES,
    min_words: int = 1,
    units: list[str] = UNITS,
    max_units: int = 3,
) -> Doc:
    """A text of unique words (each ends in its own 4-digit number) with typographic separators."""
    n = draw(st.integers(min_words, 10))
    words = [
        "".join(draw(st.lists(st.sampled_from(units), min_size=1, max_size=max_units))) + f"{k:04d}"
        for k in range(n)
    ]
    seps = [draw(st.sampled_from(templates)) for _ in range(n - 1)]
    out = [draw(st.sampled_from(DECORATION))]
    pos = len(out[0])
    spans = []
    for k, word in enumerate(words):
        rendered = render_word(word, draw)
        spans.append((pos, pos + len(rendered)))
        out.append(rendered)
        pos += len(rendered)
        if k < n - 1:
            sep = render_sep(seps[k], draw)
            out.append(sep)
            pos += len(sep)
    out.append(draw(st.sampled_from(DECORATION)))
    return Doc(words, seps, "".join(out), spans)


def render_span(doc: Doc, i: int, j: int, draw: Draw, words: list[str] | None = None) -> str:
    """Words i..j of doc with fresh random typographic variants of every separator and word."""
    words = words or doc.words
    parts = [render_word(words[i], draw)]
    for k in range(i + 1, j + 1):
        parts.append(render_sep(doc.templates[k - 1], draw))
        parts.append(render_word(words[k], draw))
    return "".join(parts)


def pick_range(doc: Doc, draw: Draw, min_len: int = 1) -> tuple[int, int]:
    i = draw(st.integers(0, len(doc.words) - min_len))
    return i, draw(st.integers(i + min_len - 1, len(doc.words) - 1))


@PROPERTY
@given(doc=documents(), data=st.data())
def test_property_typographic_variant_grounds_at_exact_offsets(doc: Doc, data: st.DataObject) -> None:
    i, j = pick_range(doc, data.draw)
    core = render_span(doc, i, j, data.draw)
    candidate = data.draw(st.sampled_from(DECORATION)) + core + data.draw(st.sampled_from(DECORATION))
    g = ground(candidate, doc.source)
    start, end = doc.spans[i][0], doc.spans[j][1]
    assert_grown(g, doc.source, ((start, end),))
    assert g.occurrences == 1
    assert g.status == ("exact" if core == doc.source[start:end] else "normalized")
    assert ref_norm(doc.source[start:end]) == ref_norm(core)


@PROPERTY
@given(doc=documents(), data=st.data())
def test_property_one_changed_letter_is_not_found(doc: Doc, data: st.DataObject) -> None:
    i, j = pick_range(doc, data.draw)
    k = data.draw(st.integers(i, j))
    word = doc.words[k]
    first = word[0]
    options = [c for c in ["x", "Ж", "ق", "字", first.upper(), first.lower()] if c != first]
    changed = data.draw(st.sampled_from(options)) + word[1:]
    assert unicodedata.normalize("NFC", changed) != word
    words = [*doc.words[:k], changed, *doc.words[k + 1 :]]
    g = ground(render_span(doc, i, j, data.draw, words), doc.source)
    assert not g.found
    assert (g.start, g.end, g.pieces, g.occurrences) == (None, None, (), 0)
    assert g.reason


@PROPERTY
@given(doc=documents(min_words=2), data=st.data())
def test_property_two_swapped_words_are_not_found(doc: Doc, data: st.DataObject) -> None:
    i, j = pick_range(doc, data.draw, min_len=2)
    a = data.draw(st.integers(i, j - 1))
    b = data.draw(st.integers(a + 1, j))
    words = list(doc.words)
    words[a], words[b] = words[b], words[a]
    assert not ground(render_span(doc, i, j, data.draw, words), doc.source).found


@PROPERTY
@given(doc=documents(templates=PLAIN_TEMPLATES, min_words=3), data=st.data())
def test_property_elided_pieces(doc: Doc, data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(doc.words) - 3))
    j = data.draw(st.integers(i, len(doc.words) - 3))
    k = data.draw(st.integers(j + 2, len(doc.words) - 1))  # at least one word left out
    m = data.draw(st.integers(k, len(doc.words) - 1))
    marker = data.draw(st.sampled_from(MARKERS))
    candidate = render_span(doc, i, j, data.draw) + marker + render_span(doc, k, m, data.draw)
    g = ground(candidate, doc.source)
    start, end = doc.spans[i][0], doc.spans[m][1]
    if re.search(r"\n[^\S\n]*\n", doc.source[start:end]):
        assert g == Grounding("not_found", None, None, (), 0, "pieces span a paragraph break")
    else:
        assert g.status == "elided"
        assert_grown(g, doc.source, ((start, doc.spans[j][1]), (doc.spans[k][0], end)))
        assert g.occurrences == 1


PLAIN_ALPHABET = "ab .,;-–—'\"“”’…\n\t\u00a0\u2009"
MARKED_ALPHABET = "ae .-–'’…\n\u00a0\u0301\u0308\u0323éëẹ"


@PROPERTY
@given(text=st.text(PLAIN_ALPHABET, max_size=60), data=st.data())
def test_property_literal_slice_is_exact_at_its_first_occurrence(text: str, data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(text)))
    j = data.draw(st.integers(i, len(text)))
    core = text[i:j].strip(STRIP)
    g = ground(text[i:j], text)
    if not core:
        assert g.reason == "empty candidate"
        return
    assert g.status == "exact"
    assert_grown(g, text, ((text.find(core), text.find(core) + len(core)),))
    assert g.occurrences == text.count(core)


@PROPERTY
@given(text=st.text(MARKED_ALPHABET, max_size=60), data=st.data())
def test_property_found_span_normalises_to_the_candidate(text: str, data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(text)))
    j = data.draw(st.integers(i, len(text)))
    candidate = text[i:j]
    if data.draw(st.booleans()):
        candidate = unicodedata.normalize(data.draw(st.sampled_from(["NFC", "NFD"])), candidate)
    core = candidate.strip(STRIP)
    g = ground(candidate, text)
    if g.status in ("exact", "normalized"):
        assert g.start is not None and g.end is not None
        whole = text[g.start : g.end]
        found = whole.strip(STRIP)  # without the quotation marks that balance it
        assert ref_norm(found) == ref_norm(core)
        s0 = g.start + len(whole) - len(whole.lstrip(STRIP))
        assert_grown(g, text, ((s0, s0 + len(found)),))
        assert g.occurrences >= 1
        if g.status == "exact":
            assert found == core
    # The index's normal form agrees with the one-shot normal form, NFC included.
    assert SourceIndex(text)._norm == _normalize(text)


def cuts_a_unit(text: str, k: int) -> bool:
    return 0 < k < len(text) and unicodedata.category(text[k]).startswith("M")


@PROPERTY
@given(text=st.text(MARKED_ALPHABET, max_size=60), data=st.data())
def test_property_literal_slice_with_marks(text: str, data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(text)))
    j = data.draw(st.integers(i, len(text)))
    core = text[i:j].strip(STRIP)
    whole = [
        p
        for p in range(len(text) - len(core) + 1)
        if text.startswith(core, p) and not cuts_a_unit(text, p) and not cuts_a_unit(text, p + len(core))
    ]
    g = ground(text[i:j], text)
    if core and whole:
        assert g.status == "exact"
        assert_grown(g, text, [(whole[0], whole[0] + len(core))])
    else:
        assert g.status != "exact"


# Small repeated vocabulary (all words three letters), so candidates occur many times.
VOCAB = ["abc", "abd", "Abc", "xyz"]


@PROPERTY
@given(doc=documents(units=VOCAB, max_units=1), data=st.data())
def test_property_first_occurrence_and_count_match_an_oracle(doc: Doc, data: st.DataObject) -> None:
    doc = repeated_words(doc)
    words, source = doc.words, doc.source
    i, j = pick_range(doc, data.draw)
    core = render_span(doc, i, j, data.draw)
    with word_index_blocks(data.draw(BLOCK_SIZES)):
        index = warm_index(source, data.draw(st.booleans()))  # later calls use the word index
        g = index.ground(core)

    m = j - i
    literal, typographic = [], []
    for a in range(len(words) - m):
        s, e = doc.spans[a][0], doc.spans[a + m][1]
        if source[s:e] == core:
            literal.append((s, e))
        if ref_norm(source[s:e]) == ref_norm(core):
            typographic.append((s, e))

    expected = first_non_overlapping(literal) or first_non_overlapping(typographic)
    assert expected, "the candidate comes from the source"
    assert g.status == ("exact" if literal else "normalized")
    assert_grown(g, source, expected[:1])
    assert g.occurrences == len(expected)


def first_non_overlapping(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    kept: list[tuple[int, int]] = []
    for s, e in spans:
        if not kept or s >= kept[-1][1]:
            kept.append((s, e))
    return kept


def repeated_words(doc: Doc) -> Doc:
    """The same text without the unique numbers, so that words and whole candidates repeat."""
    source = re.sub(r"\d{4}", "", doc.source)
    spans = [m.span() for m in re.finditer(r"[A-Za-z]{3}", source)]
    assert len(spans) == len(doc.words)
    return Doc([w[:3] for w in doc.words], doc.templates, source, spans)


@PROPERTY
@given(doc=documents(templates=PLAIN_TEMPLATES, units=VOCAB, max_units=1, min_words=2), data=st.data())
def test_property_not_found_reason_matches_brute_force(doc: Doc, data: st.DataObject) -> None:
    doc = repeated_words(doc)
    i, j = pick_range(doc, data.draw, min_len=2)
    a = data.draw(st.integers(i, j - 1))
    b = data.draw(st.integers(a + 1, j))
    words = list(doc.words)
    words[a], words[b] = words[b], words[a]
    candidate = render_span(doc, i, j, data.draw, words)
    with word_index_blocks(data.draw(BLOCK_SIZES)), positions_from(data.draw(st.sampled_from([0, 1 << 22]))):
        g = ground(candidate, doc.source)  # the reason needs a word index: blocks, or positions
    if g.found:
        return  # e.g. two equal words swapped
    needle, norm = ref_norm(candidate.strip(STRIP)), ref_norm(doc.source)
    missing = [t for t in needle.split(" ")[1:-1] if t not in norm.split(" ")]
    if missing:
        assert g.reason == f"not in the article ('{missing[0]}' never occurs in it as a separate word)"
    else:
        longest = max(n for n in range(len(needle) + 1) if needle[:n] in norm)
        assert_prefix_reason(g.reason, needle, norm, longest)


@PROPERTY
@given(doc=documents(templates=PLAIN_TEMPLATES, units=VOCAB, max_units=1, min_words=2), data=st.data())
def test_property_elided_placement_matches_brute_force(doc: Doc, data: st.DataObject) -> None:
    doc = repeated_words(doc)
    n = len(doc.words)
    i = data.draw(st.integers(0, n - 2))
    j = data.draw(st.integers(i, n - 2))
    k = data.draw(st.integers(j + 1, n - 1))
    m = data.draw(st.integers(k, n - 1))
    marker = data.draw(st.sampled_from(MARKERS))
    first, second = render_span(doc, i, j, data.draw), render_span(doc, k, m, data.draw)
    with word_index_blocks(data.draw(BLOCK_SIZES)):
        index = warm_index(doc.source, data.draw(st.booleans()))
        g = index.ground(first + marker + second)

    def matches(piece: str, length: int) -> list[tuple[int, int]]:
        return [
            (doc.spans[a][0], doc.spans[a + length][1])
            for a in range(n - length)
            if ref_norm(doc.source[doc.spans[a][0] : doc.spans[a + length][1]]) == ref_norm(piece)
        ]

    firsts, seconds = matches(first, j - i), matches(second, m - k)
    valid = [
        (p, q)
        for p in firsts
        for q in seconds
        if q[0] >= p[1] and not re.search(r"\n[^\S\n]*\n", doc.source[p[0] : q[1]])
    ]
    if not valid:
        assert not g.found
        assert g.reason in ("pieces span a paragraph break", "piece 2 of 2 not found after piece 1")
        return
    chosen = [min(valid)]
    while later := [v for v in valid if v[0][0] >= chosen[-1][1][1]]:
        chosen.append(min(later))
    assert (g.status, g.occurrences) == ("elided", len(chosen))
    assert_grown(g, doc.source, chosen[0])


@PROPERTY
@given(doc=documents(units=VOCAB, max_units=1), data=st.data())
def test_property_ground_from_an_offset_matches_the_rule_on_the_rest(doc: Doc, data: st.DataObject) -> None:
    """The first occurrence at or after ``start`` and the count from there, literal ones first."""
    doc = repeated_words(doc)
    i, j = pick_range(doc, data.draw)
    core = render_span(doc, i, j, data.draw)
    start = data.draw(st.integers(0, len(doc.source)))
    with word_index_blocks(data.draw(BLOCK_SIZES)):
        index = warm_index(doc.source, data.draw(st.booleans()))
        index.ground(core, start=data.draw(st.integers(0, start)))  # an earlier search to reuse
        g = index.ground(core, start=start)
    m = j - i
    literal, typographic = [], []
    for a in range(len(doc.words) - m):
        s, e = doc.spans[a][0], doc.spans[a + m][1]
        if s < start:
            continue
        if doc.source[s:e] == core:
            literal.append((s, e))
        if ref_norm(doc.source[s:e]) == ref_norm(core):
            typographic.append((s, e))
    expected = first_non_overlapping(literal) or first_non_overlapping(typographic)
    if not expected and g.found:  # a separator of the document was an ellipsis: rule 3 from start
        assert g.status == "elided" and ("..." in core or "…" in core)
        assert g.start is not None and g.start >= start
        return
    if not expected:
        assert g.reason is not None and g.reason.startswith(f"not at or after offset {start}")
        return
    assert g.status == ("exact" if literal else "normalized")
    assert_grown(g, doc.source, expected[:1])
    assert g.occurrences == len(expected)


# Quotation mark pairs by family, as articles print them (English, ASCII, French, German).
DOUBLE_PAIRS = [("“", "”"), ('"', '"'), ("«", "»"), ("„", "“"), ("»", "«")]
SINGLE_PAIRS = [("‘", "’"), ("'", "'"), ("‹", "›"), ("‚", "‘")]
# Words outside and inside the inner quotation (apart, so each text occurs once), with apostrophes.
OUTER_WORDS = ["we", "can’t", "close", "the", "shelter", "it's", "l’Italia", "2026"]
INNER_WORDS = ["Before", "Spring", "Won’t", "Oui", "Workers’", "Yes", "27"]


@dataclass
class Nested:
    source: str
    body: tuple[int, int]  # the outer quotation's words, the inner quotation at one end
    core: tuple[int, int]  # the body without the inner quotation's mark at that end
    words: tuple[str, str]  # the words outside and inside the inner quotation
    inner: tuple[str, str]  # its marks
    punct: str


@st.composite
def nested(draw: st.DrawFn, at_end: bool) -> Nested:
    """``He said: “A ‘B,’” and left.`` (the inner quotation at the end) or ``“‘B’ A,” ...`` (at the
    start), with one family of marks outside and the other inside."""
    outer, inner = draw(st.sampled_from(DOUBLE_PAIRS)), draw(st.sampled_from(SINGLE_PAIRS))
    if draw(st.booleans()):
        outer, inner = inner, outer
    a = " ".join(draw(st.lists(st.sampled_from(OUTER_WORDS), min_size=1, max_size=4)))
    b = " ".join(draw(st.lists(st.sampled_from(INNER_WORDS), min_size=1, max_size=4)))
    punct = draw(st.sampled_from(["", ",", ".", "!", "?"]))
    body = f"{a} {inner[0]}{b}{punct}{inner[1]}" if at_end else f"{inner[0]}{b}{inner[1]} {a}{punct}"
    prefix = draw(st.sampled_from(["He said: ", "", "Then, ", "(\n"]))
    suffix = draw(st.sampled_from([" and left.", "", ".", ", he said."]))
    source = f"{prefix}{outer[0]}{body}{outer[1]}{suffix}"
    start = len(prefix) + len(outer[0])
    end = start + len(body)
    core = (start, end - len(inner[1])) if at_end else (start + len(inner[0]), end)
    return Nested(source, (start, end), core, (a, b), inner, punct)


EDGE_MARKS = st.sampled_from(["", "", "'", '"', "“", "”", "‘", "’", "»", "«", " ", "”’", "'\""])


@PROPERTY
@given(doc=nested(at_end=True), data=st.data())
def test_property_inner_quotation_closing_at_the_end(doc: Nested, data: st.DataObject) -> None:
    """The inner closing mark is in the span whether the candidate ends with it, with another mark or
    with none; the status is the core's."""
    a, b = doc.words
    opening = data.draw(st.sampled_from([doc.inner[0], doc.inner[0], *QUOTES]))
    candidate = data.draw(EDGE_MARKS) + f"{a} {opening}{b}{doc.punct}" + data.draw(EDGE_MARKS)
    g = ground(candidate, doc.source)
    assert (g.start, g.end) == doc.body
    core = candidate.strip(STRIP)
    literal = doc.source[doc.core[0] : doc.core[0] + len(core)] == core
    assert (g.status, g.occurrences) == ("exact" if literal else "normalized", 1)


@PROPERTY
@given(doc=nested(at_end=False), data=st.data())
def test_property_inner_quotation_opening_at_the_start(doc: Nested, data: st.DataObject) -> None:
    """The inner opening mark is in the span whether the candidate starts with it, with another mark
    or with none."""
    a, b = doc.words
    closing = data.draw(st.sampled_from([doc.inner[1], doc.inner[1], *QUOTES]))
    candidate = data.draw(EDGE_MARKS) + f"{b}{closing} {a}{doc.punct}" + data.draw(EDGE_MARKS)
    g = ground(candidate, doc.source)
    assert (g.start, g.end) == doc.body
    core = candidate.strip(STRIP)
    literal = doc.source[doc.core[0] : doc.core[0] + len(core)] == core
    assert (g.status, g.occurrences) == ("exact" if literal else "normalized", 1)


@PROPERTY
@given(doc=st.one_of(nested(at_end=True), nested(at_end=False)), data=st.data())
def test_property_marks_that_pair_outside_the_candidate_stay_out(doc: Nested, data: st.DataObject) -> None:
    """The inner quotation on its own, and the whole outer one, are spans without their own marks."""
    b = doc.words[1]
    g = ground(data.draw(EDGE_MARKS) + b + data.draw(EDGE_MARKS), doc.source)
    assert g.status == "exact" and doc.source[g.start : g.end] == b.strip(STRIP)  # Workers’: rule 0
    body = doc.source[doc.body[0] : doc.body[1]]
    g = ground(data.draw(EDGE_MARKS) + body + data.draw(EDGE_MARKS), doc.source)
    assert (g.status, g.start, g.end) == ("exact", *doc.body)


@PROPERTY
@given(
    words=st.lists(st.sampled_from(OUTER_WORDS + INNER_WORDS), min_size=1, max_size=6),
    around=st.sampled_from(["  ", "“”", "‘’", "«»", '""', "„“", "”“", "’’", "''"]),
    data=st.data(),
)
def test_property_stray_marks_in_the_candidate_are_ignored(
    words: list[str], around: str, data: st.DataObject
) -> None:
    """Marks at the candidate's ends that the article does not have there, or has pairing outside the
    candidate, never enter the span."""
    text = " ".join(words)
    source = f"Intro: {around[0]}{text}{around[1]} after."
    candidate = data.draw(EDGE_MARKS) + text + data.draw(EDGE_MARKS)
    g = ground(candidate, source)
    start = len("Intro: ") + 1
    assert (g.status, g.start, g.end) == ("exact", start, start + len(text.rstrip(STRIP)))  # Workers’: rule 0
