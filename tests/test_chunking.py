"""Long articles: paragraph-boundary chunks with overlap, grounded against the whole article, merged."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from extractor import Article, Extractor, Settings, cli
from extractor.chunking import Chunk, ground_extraction, split_chunks
from extractor.cli import options
from extractor.errors import ConfigError, ParseError, TransportError
from extractor.grounding import SourceIndex
from extractor.models import ArticleExtraction
from tests import wire
from tests.conftest import FakeModel


def planned(text: str, size: int, overlap: int) -> list[tuple[int, int]]:
    """The planned chunks as (start, end); their indexes count 1, 2, ... in order."""
    chunks = split_chunks(text, size, overlap)
    assert [c.index for c in chunks] == list(range(1, len(chunks) + 1))
    return [(c.start, c.end) for c in chunks]


def chunks_at(spans: list[tuple[int, int]]) -> list[Chunk]:
    return [Chunk(i, start, end) for i, (start, end) in enumerate(spans, start=1)]


@given(
    st.lists(st.text(alphabet="ab .\n", min_size=0, max_size=80), min_size=1, max_size=40),
    st.integers(min_value=20, max_value=200),
    st.integers(min_value=0, max_value=19),
)
@settings(max_examples=200, deadline=None)
def test_chunks_cover_the_text_in_order_within_size(parts: list[str], size: int, overlap: int) -> None:
    text = "\n\n".join(parts)
    chunks = planned(text, size, overlap)
    assert chunks[0][0] == 0 and chunks[-1][1] == len(text)
    for (s1, e1), (s2, _) in pairwise(chunks):
        assert s1 < s2 <= e1  # progress, no gap
        assert e1 - s2 <= overlap
    assert all(e - s <= size for s, e in chunks)


@given(
    st.lists(st.text(alphabet="ab .\n", min_size=0, max_size=80), min_size=1, max_size=40),
    st.integers(min_value=1, max_value=200),
    st.data(),
)
@settings(max_examples=300, deadline=None)
def test_chunks_advance_at_least_half_a_chunk_whatever_the_overlap(
    parts: list[str], size: int, data: st.DataObject
) -> None:
    """Even an overlap close to the chunk size (which Settings refuses) cannot make the window creep."""
    overlap = data.draw(st.integers(min_value=0, max_value=size - 1))
    text = "\n\n".join(parts)
    chunks = planned(text, size, overlap)
    assert chunks[0][0] == 0 and chunks[-1][1] == len(text)
    for (s1, e1), (s2, _) in pairwise(chunks):
        assert s2 - s1 >= (size + 1) // 2  # half a chunk, rounded up
        assert s2 <= e1 and e1 - s2 <= overlap
    assert all(0 < e - s <= size for s, e in chunks) or chunks == [(0, 0)] == [(0, len(text))]
    assert len(chunks) <= 1 + max(0, len(text) - 1) // ((size + 1) // 2)


def test_the_reported_creeping_window_plans_a_handful_of_chunks() -> None:
    """Issue 15: --chunk-chars 2001 with the 2,000 overlap planned 2,206 chunks for 4,206 characters."""
    text = "\n\n".join(f"Paragraph {i}. " + "word " * 40 for i in range(20))[:4206]
    assert len(text) == 4206
    chunks = planned(text, 2001, 2000)
    assert len(chunks) <= 4
    assert all(s2 - s1 >= 1001 for (s1, _), (s2, _) in pairwise(chunks))


def test_a_chunk_with_no_separator_in_range_is_hard_cut_at_the_limit() -> None:
    text = "x" * 2500
    assert planned(text, 1000, 100) == [(0, 1000), (900, 1900), (1800, 2500)]
    # Separators only in the first half of the window do not count: a cut there would make a tiny chunk.
    text = "ab cd. " + "y" * 1500
    assert planned(text, 1000, 0) == [(0, 1000), (1000, len(text))]
    # Non-ASCII text without spaces (e.g. Chinese) is cut by characters, never lost or duplicated.
    text = "漢字かな" * 300
    chunks = planned(text, 500, 50)
    assert chunks == [(0, 500), (450, 950), (900, 1200)]
    assert "".join(text[s:e] for s, e in [(0, 500), (500, 950), (950, 1200)]) == text


@pytest.mark.parametrize(
    ("chars", "overlap", "ok"),
    [(2001, 2000, False), (2001, 1001, False), (2001, 1000, True), (300_000, 2_000, True), (10, 0, True)],
)
def test_a_chunk_step_below_half_the_chunk_size_is_a_config_error(chars: int, overlap: int, ok: bool) -> None:
    if ok:
        assert Settings(chunk_chars=chars, chunk_overlap_chars=overlap).chunk_overlap_chars == overlap
        return
    with pytest.raises(ConfigError, match=r"chunk_overlap_chars .* at most half of chunk_chars") as info:
        Settings(chunk_chars=chars, chunk_overlap_chars=overlap)
    assert f"({overlap:,})" in str(info.value) and f"({chars:,})" in str(info.value)
    assert "--chunk-overlap" in str(info.value)


def test_chunk_flags_reach_the_settings_and_a_creeping_setting_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = cli.build_parser().parse_args(["run", "x", "--chunk-chars", "5000", "--chunk-overlap", "500"])
    settings = options.load_settings(args)
    assert (settings.chunk_chars, settings.chunk_overlap_chars) == (5000, 500)
    article = tmp_path / "a.txt"
    article.write_text("Some text.", encoding="utf-8")
    out = tmp_path / "out"
    assert cli.main(["run", str(article), "--out", str(out), "--chunk-chars", "2001"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("extractor: configuration error: chunk_overlap_chars (2,000) must be at most half")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_chunks_end_at_paragraph_breaks() -> None:
    paragraphs = [f"Paragraph {i} " + "x" * 80 for i in range(30)]
    text = "\n\n".join(paragraphs)
    chunks = planned(text, 500, 100)
    assert len(chunks) > 3
    for _, end in chunks[:-1]:
        assert text[end - 2 : end] == "\n\n"


def test_long_article_is_extracted_per_chunk_and_merged(tmp_path: Path) -> None:
    paragraphs = [f"Paragraph {i} says “statement number {i}.” Filler " + "y" * 200 for i in range(12)]
    text = "\n\n".join(paragraphs)
    article = Article.from_text(text, id="long")
    chunk_chars = 1200
    windows = planned(text, chunk_chars, 300)
    assert len(windows) >= 3
    fake = FakeModel()
    for start, end in windows:
        part = text[start:end]
        quotes = [
            (f"statement number {i}.", "Someone") for i in range(12) if f"statement number {i}." in part
        ]
        fake.enqueue(wire.extraction(quotes=quotes))
    ex = Extractor(
        Settings(chunk_chars=chunk_chars, chunk_overlap_chars=300, use_cache=False, cache_dir=tmp_path),
        provider=fake,
    )
    res = ex.extract(article)
    assert res.status == "ok" and res.chunks == len(windows)
    assert len(fake.history) == len(windows)
    assert "part 1 of" in fake.history[0]["messages"][1]["content"]
    # every statement once, at its place in the whole article, despite the overlaps
    assert sorted(q.text for q in res.quotes) == sorted(f"statement number {i}." for i in range(12))
    for q in res.quotes:
        assert text[q.span.start : q.span.end] == q.text  # type: ignore[misc]
    assert res.usage.http_calls == len(windows)
    ex.close()


def test_same_statement_quoted_twice_gets_both_places() -> None:
    text = "He said “we stay”. Later, the note read: “we stay”."
    extraction = ArticleExtraction.model_validate(
        wire.extraction(quotes=[("we stay", "He"), ("we stay", "the note")])
    )
    _, quotes, _, rejected = ground_extraction([extraction], text)
    assert rejected == []
    assert [(q.span.start, q.span.end) for q in quotes] == [(9, 16), (42, 49)]


def test_an_identical_item_twice_is_kept_once_when_the_text_occurs_once() -> None:
    text = "He said “we stay”."
    extraction = ArticleExtraction.model_validate(
        wire.extraction(quotes=[("we stay", "He"), ("we stay", "He")])
    )
    _, quotes, _, _ = ground_extraction([extraction], text)
    assert len(quotes) == 1


def test_a_cue_or_date_text_not_in_the_article_rejects_its_item_naming_the_field() -> None:
    """The prompt says a program checks `cue` and `date_text` verbatim: a paraphrased one rejects the
    item (field "cue" / "date_text"), a verbatim one keeps it, null is not checked."""
    text = "On Tuesday the mayor met the council. “We stay,” the mayor told reporters."
    answer = wire.extraction(
        events=[
            {**wire.event("the mayor met the council"), "date_text": "On Tuesday"},
            {**wire.event("the mayor met the council", "ACCUSE"), "date_text": "last Tuesday"},
        ]
    )
    answer["quotes"] = [
        {"text": "We stay", "speaker": "the mayor", "cue": "the mayor told reporters"},
        {"text": "We stay", "speaker": "the mayor", "cue": "the mayor said to the press"},
        {"text": "We stay", "speaker": "the mayor", "cue": None},
    ]
    events, quotes, _, rejected = ground_extraction([ArticleExtraction.model_validate(answer)], text)
    assert [e.date_text for e in events] == ["On Tuesday"]
    assert [q.cue for q in quotes] == ["the mayor told reporters", None]
    assert sorted((r.kind, r.field, r.item[r.field]) for r in rejected) == [
        ("event", "date_text", "last Tuesday"),
        ("quote", "cue", "the mayor said to the press"),
    ]
    assert all(r.reason.startswith(f"{r.field} not in the article") for r in rejected)


def test_fake_model_history_records_requests(tmp_path: Path) -> None:
    fake = FakeModel().enqueue(wire.extraction())
    with Extractor(Settings(use_cache=False, cache_dir=tmp_path), provider=fake) as ex:
        assert ex.extract(Article.from_text("Plain.", id="p")).status == "ok"
    assert [h["article_id"] for h in fake.history] == ["p"]


def test_one_item_from_two_overlapping_chunks_is_kept_once_in_its_fuller_wording() -> None:
    text = "Intro.\n\nMeloni said “no troops” in Paris. Leaders met in Paris.\n\nEnd."
    middle = text.index("Meloni")
    windows = [(0, len(text) - 5), (middle, len(text))]
    first = wire.extraction(
        quotes=[("no troops", "Meloni")],
        events=[wire.event("Leaders met in Paris.")],
        stances=[wire.stance("Meloni said “no troops”", holder="Meloni")],
    )
    second = wire.extraction(
        quotes=[("no troops", "Giorgia Meloni")],
        events=[
            {**wire.event("Leaders met in Paris."), "summary": "Leaders met in Paris to discuss Ukraine."},
            wire.event("Leaders met in Paris.", event_type="AGREE"),  # another event from the same clause
        ],
        stances=[
            {
                **wire.stance("Meloni said “no troops”", holder="Giorgia Meloni"),
                "target": "deploying troops now",
            },
            wire.stance("Meloni said “no troops”", holder="Italy"),  # another holder: kept
        ],
    )
    answers = [ArticleExtraction.model_validate(first), ArticleExtraction.model_validate(second)]
    events, quotes, stances, rejected = ground_extraction(answers, text, None, chunks_at(windows))
    assert rejected == []
    assert [(q.text, q.speaker) for q in quotes] == [("no troops", "Giorgia Meloni")]
    assert [(e.event_type, e.summary) for e in events] == [
        ("CONSULT", "Leaders met in Paris to discuss Ukraine."),
        ("AGREE", "Something happened."),
    ]
    assert [(s.holder, s.target) for s in stances] == [
        ("Giorgia Meloni", "deploying troops now"),  # the fuller wording of the same stance
        ("Italy", "deploying troops"),
    ]


def test_distinct_items_at_one_span_are_never_merged_away() -> None:
    """Two chunks each with two different events and two different stances on the same sentence."""
    sentence = "Leaders met in Paris and in Rome, and Meloni opposed troops and sanctions."
    text = f"Intro.\n\n{sentence}\n\nEnd."
    windows = [(0, len(text) - 5), (text.index("Leaders"), len(text))]
    answer = wire.extraction(
        events=[
            {**wire.event(sentence), "location": "Paris"},
            {**wire.event(sentence), "location": "Rome"},
        ],
        stances=[
            {**wire.stance(sentence, holder="Meloni"), "target": "sending Italian troops"},
            {**wire.stance(sentence, holder="Meloni"), "target": "new sanctions on Russia"},
            wire.stance(sentence, holder="French government"),
            wire.stance(sentence, holder="Italian government"),
        ],
    )
    answers = [ArticleExtraction.model_validate(answer)] * 2
    events, _, stances, _ = ground_extraction(answers, text, None, chunks_at(windows))
    assert sorted(e.location or "" for e in events) == ["Paris", "Rome"]
    assert sorted((s.holder, s.target) for s in stances) == [
        ("French government", "deploying troops"),
        ("Italian government", "deploying troops"),
        ("Meloni", "new sanctions on Russia"),
        ("Meloni", "sending Italian troops"),
    ]


def _long_article() -> tuple[Article, list[tuple[int, int]], list[dict[str, object]]]:
    paragraphs = [f"Paragraph {i} says “statement number {i}.” Filler " + "y" * 200 for i in range(12)]
    text = "\n\n".join(paragraphs)
    windows = planned(text, 1200, 300)
    answers = [
        wire.extraction(
            quotes=[(f"statement number {i}.", "Someone") for i in range(12) if f"number {i}." in text[s:e]]
        )
        for s, e in windows
    ]
    return Article.from_text(text, id="long"), windows, answers


def test_a_failed_chunk_leaves_the_other_chunks_kept_and_is_named(tmp_path: Path) -> None:
    """Before: one chunk's TransportError failed the whole article."""
    article, windows, answers = _long_article()
    assert len(windows) >= 3
    fake = FakeModel().enqueue(answers[0], TransportError("HTTP 503 after 6 attempts"), *answers[2:])
    settings = Settings(chunk_chars=1200, chunk_overlap_chars=300, use_cache=False, cache_dir=tmp_path)
    with Extractor(settings, provider=fake) as ex:
        res = ex.extract(article)
    assert res.status == "ok" and res.error is None and res.partial
    [failed] = res.chunk_errors
    assert (failed.chunk, failed.start, failed.end) == (2, *windows[1])
    assert (failed.type, failed.message) == ("TransportError", "HTTP 503 after 6 attempts")
    # every statement of the other chunks is kept at its place; only chunk 2's own ones are missing
    others = "".join(article.text[s:e] for k, (s, e) in enumerate(windows) if k != 1)
    expected = sorted(f"statement number {i}." for i in range(12) if f"number {i}." in others)
    assert sorted(q.text for q in res.quotes) == expected and len(expected) < 12
    for q in res.quotes:
        assert article.text[q.span.start : q.span.end] == q.text  # type: ignore[misc]
    assert res.usage.http_calls == len(windows) - 1  # the fake's usage per answered chunk


def test_an_article_whose_every_chunk_fails_is_an_error(tmp_path: Path) -> None:
    article, windows, _ = _long_article()
    fake = FakeModel().enqueue(*[ParseError(f"chunk {i} broken") for i in range(len(windows))])
    settings = Settings(chunk_chars=1200, chunk_overlap_chars=300, use_cache=False, cache_dir=tmp_path)
    with Extractor(settings, provider=fake) as ex:
        res = ex.extract(article)
    assert res.status == "error" and res.error is not None
    assert (res.error.type, res.error.message) == ("ParseError", "chunk 0 broken")
    assert res.chunk_errors == [] and res.chunks == len(windows)


def test_a_config_error_in_a_chunk_still_stops_everything(tmp_path: Path) -> None:
    article, _, answers = _long_article()
    fake = FakeModel().enqueue(answers[0], ConfigError("cannot reach the endpoint"))
    settings = Settings(chunk_chars=1200, chunk_overlap_chars=300, use_cache=False, cache_dir=tmp_path)
    with Extractor(settings, provider=fake) as ex, pytest.raises(ConfigError):
        ex.extract(article)


def test_an_item_rejected_in_two_overlapping_chunks_is_rejected_once() -> None:
    """Issue 20: both chunks see the overlap and the model invents the same quote in each."""
    text = "Intro.\n\nMeloni said “no troops” in Paris.\n\nEnd of the story."
    windows = [(0, text.index("End")), (text.index("Meloni"), len(text))]
    invented = ("we will send troops", "Meloni")
    answer = wire.extraction(
        quotes=[("no troops", "Meloni"), invented],
        events=[wire.event("Leaders met in Rome.")],  # not in the article either
    )
    other = wire.extraction(quotes=[invented, ("we will never send troops", "Meloni")])
    answers = [ArticleExtraction.model_validate(answer), ArticleExtraction.model_validate(other)]
    _, quotes, _, rejected = ground_extraction(answers, text, None, chunks_at(windows))
    assert [q.text for q in quotes] == ["no troops"]
    assert [(r.kind, r.field, r.item["text" if r.kind == "quote" else "evidence"]) for r in rejected] == [
        ("event", "evidence", "Leaders met in Rome."),
        ("quote", "text", "we will send troops"),
        ("quote", "text", "we will never send troops"),
    ]


def test_repeated_passages_are_placed_per_chunk_on_the_one_index(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 15: every earlier occurrence of a repeated quote cost a new SourceIndex (quadratic)."""
    passage = "He said “we stay” today.\n\n"
    text = passage * 400
    windows = [(0, 4000), (3000, 7000), (6000, len(text))]
    answers = [
        ArticleExtraction.model_validate(wire.extraction(quotes=[("we stay", "He")] * 3)) for _ in windows
    ]
    index = SourceIndex(text)
    built = 0
    init = SourceIndex.__init__

    def counting(self: SourceIndex, source: str) -> None:
        nonlocal built
        built += 1
        init(self, source)

    monkeypatch.setattr(SourceIndex, "__init__", counting)
    _, quotes, _, rejected = ground_extraction(answers, text, index, chunks_at(windows))
    assert built == 0
    assert rejected == []
    first = text.index("we stay")
    expected = [
        (start + first + k * len(passage), 400)
        for start in (w[0] + (-w[0]) % len(passage) for w in windows)
        for k in range(3)
    ]
    assert [(q.span.start, q.span.occurrences) for q in quotes] == expected
