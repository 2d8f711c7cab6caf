"""``max_events`` is enforced in code, not only asked for: the first N events of the merged answer are
kept (the model's order, most important first), the rest go to ``rejected`` with the reason."""

from __future__ import annotations

from pathlib import Path

from extractor import Article, Extractor, Settings
from extractor.chunking import split_chunks
from extractor.models import GroundedEvent, Span
from extractor.prompts import cap_events
from tests import wire
from tests.conftest import FakeModel

SENTENCES = [f"Leaders met in city number {i} on day {i}." for i in range(6)]
TEXT = " ".join(SENTENCES)


def grounded(evidence: str) -> GroundedEvent:
    start = TEXT.index(evidence)
    span = Span(status="exact", start=start, end=start + len(evidence), occurrences=1)
    return GroundedEvent(**wire.event(evidence), span=span)


def test_cap_events_keeps_the_first_n_in_order_and_rejects_the_rest_as_given() -> None:
    events = [grounded(s) for s in reversed(SENTENCES)]
    kept, over = cap_events(events, 4)
    assert kept == events[:4]
    assert [r.item["evidence"] for r in over] == [SENTENCES[1], SENTENCES[0]]
    assert {(r.kind, r.field, r.reason) for r in over} == {("event", "evidence", "over max_events (4)")}
    assert over[0].item == wire.event(SENTENCES[1])  # the event as the model gave it, without the span
    assert cap_events(events, 6) == (events, [])
    assert cap_events([], 1) == ([], [])


def test_an_article_keeps_max_events_in_the_models_order(tmp_path: Path) -> None:
    order = [3, 0, 5, 1, 4, 2]  # most important first, as the model ranked them
    fake = FakeModel().enqueue(wire.extraction(events=[wire.event(SENTENCES[i]) for i in order]))
    settings = Settings(max_events=3, use_cache=True, cache_dir=tmp_path)
    with Extractor(settings, provider=fake) as ex:
        res = ex.extract(Article.from_text(TEXT, id="many"))
        again = ex.extract(Article.from_text(TEXT, id="many"))
    system = " ".join(fake.history[0]["messages"][0]["content"].split())
    assert "most important first, at most 3." in system  # the prompt asks for the same limit
    assert res.status == "ok"
    assert [e.evidence for e in res.events] == [SENTENCES[i] for i in order[:3]]
    assert [(r.item["evidence"], r.reason) for r in res.rejected] == [
        (SENTENCES[i], "over max_events (3)") for i in order[3:]
    ]
    assert again.cache_hit and (again.events, again.rejected) == (res.events, res.rejected)
    assert len(fake.history) == 1


def test_a_chunked_article_is_capped_after_its_chunks_are_merged(tmp_path: Path) -> None:
    paragraphs = [f"Paragraph {i}: the council met in town {i}. " + "Filler. " * 4 for i in range(8)]
    text = "\n\n".join(paragraphs)
    evidence = [f"the council met in town {i}." for i in range(8)]
    windows = split_chunks(text, 250, 120)
    assert len(windows) >= 3
    seen = [[e for e in evidence if e in text[w.start : w.end]] for w in windows]
    assert sum(map(len, seen)) > len(evidence)  # the overlaps make chunks report some meetings twice
    fake = FakeModel().enqueue(*(wire.extraction(events=[wire.event(e) for e in s]) for s in seen))
    settings = Settings(max_events=5, chunk_chars=250, chunk_overlap_chars=120, use_cache=False)
    with Extractor(settings, provider=fake) as ex:
        res = ex.extract(Article.from_text(text, id="long"))
    assert res.status == "ok" and res.chunks == len(windows)
    # the overlap duplicates are merged first, so each meeting counts once towards the limit
    assert [e.evidence for e in res.events] == evidence[:5]
    assert [(r.item["evidence"], r.reason) for r in res.rejected] == [
        (e, "over max_events (5)") for e in evidence[5:]
    ]
