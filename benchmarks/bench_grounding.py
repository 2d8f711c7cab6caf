"""Benchmark extractor.grounding against naive approaches on a large synthetic article.

    .venv/bin/python benchmarks/bench_grounding.py [--size 1000000] [--candidates 1000] [--repeat 5]
        [--repeated-sizes 0.5,1,2,4,8,16,20] [--legacy-sizes 0.25,0.5] [--only-repeated]

Builds a deterministic ~1 MB English-like article (the seed articles' words plus a Zipf tail of rarer
made-up words; curly quotes and apostrophes, dashes, hard-wrapped paragraphs, blank lines) and a mix of
candidates: 40% exact spans, 25% typographic variants (straight quotes, hyphens, NBSP, joined lines),
15% elided spans, 20% spans with one letter changed. It times SourceIndex from cold (constructor and
queries separately, fastest of --repeat runs), one-shot ground() calls, a naive regex per candidate
(typographic character classes, no NFC mapping; first match plus finditer for the count) and difflib,
and prints a markdown table (well under a minute).

A second section grounds an article of repeated passages the way the pipeline does: a ~50 kB article
repeated (blank lines between copies) to each of --repeated-sizes MB, split into the default 300,000-
character chunks, with 1,000 quotes spread evenly over the chunks (each taken from its own chunk, so it
occurs once per copy); ``ground_extraction`` places every quote at the first free occurrence in its
chunk. It prints the index build and the placing time per size, and the same for the former placement
(a new SourceIndex over the rest of the article for every earlier occurrence) at --legacy-sizes MB.
A few minutes, most of them the former placement; --only-repeated skips the first section.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import time
from collections import Counter
from collections.abc import Callable
from difflib import SequenceMatcher
from pathlib import Path

from extractor import chunking
from extractor.grounding import Grounding, SourceIndex, ground
from extractor.models import ArticleExtraction, Quote

QUOTES = "'\"`‘’‚‛“”„‟«»‹›"
DASHES = "-‐‑‒–—―−"
ROOT = Path(__file__).resolve().parents[1]


def vocabulary(rng: random.Random, size: int = 30_000) -> list[str]:
    """A Zipf-ranked vocabulary: the seed articles' words by frequency, then rarer made-up words
    spliced from their halves (English-like letter statistics, and the long tail of rare words that
    a real megabyte of news has)."""
    text = " ".join(p.read_text(encoding="utf-8") for p in sorted((ROOT / "seeds").glob("*.txt")))
    real = [w for w, _ in Counter(w.lower() for w in re.findall(r"[A-Za-z]+", text)).most_common()]
    long = [w for w in real if len(w) >= 4]
    seen = set(real)
    words = list(real)
    while len(words) < size:
        a, b = rng.choice(long), rng.choice(long)
        w = a[: len(a) // 2 + 1] + b[len(b) // 2 :]
        if w not in seen:
            seen.add(w)
            words.append(w)
    return words


def make_article(size: int, rng: random.Random) -> str:
    vocab = vocabulary(rng)
    weights = [1 / rank for rank in range(1, len(vocab) + 1)]
    paragraphs: list[str] = []
    total = 0
    while total < size:
        sentences = []
        for _ in range(rng.randint(2, 6)):
            words = rng.choices(vocab, weights, k=rng.randint(8, 30))
            words[0] = words[0].capitalize()
            for i in range(1, len(words) - 1):
                r = rng.random()
                if r < 0.05:
                    words[i] += "’s"
                elif r < 0.10:
                    words[i] += ","
                elif r < 0.12:
                    words[i] += " –"
            sentence = " ".join(words) + "."
            if rng.random() < 0.2:
                sentence = f"“{sentence}”"
            sentences.append(sentence)
        paragraph = " ".join(sentences)
        if rng.random() < 0.3:  # hard-wrapped paragraph
            lines, line = [], ""
            for word in paragraph.split(" "):
                if line and len(line) + len(word) > 72:
                    lines.append(line)
                    line = word
                else:
                    line = f"{line} {word}" if line else word
            paragraph = "\n".join([*lines, line])
        paragraphs.append(paragraph)
        total += len(paragraph) + 2
    return "\n\n".join(paragraphs)


def word_spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in re.finditer(r"\S+", text)]


def pick_span(text: str, words: list[tuple[int, int]], rng: random.Random, n: int) -> tuple[int, int]:
    i = rng.randrange(len(words) - n)
    return words[i][0], words[i + n - 1][1]


def variant(s: str, rng: random.Random) -> str:
    s = s.replace("’", "'").replace("“", '"').replace("”", '"').replace(" –", " -")
    s = s.replace("\n", " ")
    return s.replace(" ", "\u00a0", 1) if rng.random() < 0.5 else s.replace(" ", "  ", 1)


def make_candidates(text: str, count: int, rng: random.Random) -> list[tuple[str, str]]:
    words = word_spans(text)
    paragraphs = [m.span() for m in re.finditer(r"[^\n]+(?:\n[^\n]+)*", text)]
    out: list[tuple[str, str]] = []
    while len(out) < count:
        kind = rng.choices(["exact", "normalized", "elided", "not_found"], [40, 25, 15, 20])[0]
        if kind == "elided":
            ps, pe = rng.choice(paragraphs)
            pw = word_spans(text[ps:pe])
            if len(pw) < 20:
                continue
            i = rng.randrange(len(pw) - 16)
            a = text[ps + pw[i][0] : ps + pw[i + 5][1]]
            j = rng.randrange(i + 8, len(pw) - 5)
            b = text[ps + pw[j][0] : ps + pw[j + 4][1]]
            out.append((kind, f"{a} {rng.choice(['…', '...', '[…]', '(...)'])} {b}"))
            continue
        s, e = pick_span(text, words, rng, rng.randint(6, 25))
        cand = text[s:e]
        if kind == "normalized":
            cand = variant(cand, rng)
        elif kind == "not_found":
            letters = [i for i, c in enumerate(cand) if c.isalpha()]
            i = rng.choice(letters)
            c = cand[i]
            cand = cand[:i] + (c.upper() if c.islower() else "x" if c != "x" else "z") + cand[i + 1 :]
        out.append((kind, cand))
    return out


def naive_pattern(candidate: str) -> re.Pattern[str]:
    out = []
    for token in re.findall(r"\s+|[" + re.escape(DASHES) + r"]+|\.\.\.|…|.", candidate.strip(QUOTES + " ")):
        if token.isspace():
            out.append(r"\s+")
        elif token[0] in DASHES:
            out.append("[" + re.escape(DASHES) + "]+")
        elif token in ("...", "…"):
            out.append(r"(?:\.\.\.|…)")
        elif token in QUOTES:
            out.append("[" + re.escape(QUOTES) + "]")
        else:
            out.append(re.escape(token))
    return re.compile("".join(out))


def naive_ground(candidate: str, source: str) -> tuple[bool, int]:
    """Regex per candidate (pieces split on ellipses searched in order); first match + count."""
    pieces = [p for p in re.split(r"\s*(?:\[…\]|\[\.\.\.\]|\(…\)|\(\.\.\.\)|…|\.\.\.)\s*", candidate) if p]
    pos, count = 0, 0
    for piece in pieces:
        pattern = naive_pattern(piece)
        m = pattern.search(source, pos)
        if m is None:
            return False, 0
        pos = m.end()
        count = sum(1 for _ in pattern.finditer(source))
    return True, count


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def time_source_index(text: str, cands: list[str]) -> tuple[float, float, float]:
    """One cold run: constructor, then every candidate (the word index is built lazily inside)."""
    t0 = time.perf_counter()
    index = SourceIndex(text)
    t1 = time.perf_counter()
    for c in cands:
        index.ground(c)
    t2 = time.perf_counter()
    word_index = timed(SourceIndex(text)._word_index)
    return t1 - t0, t2 - t1, word_index


def difflib_longest_match(candidate: str, source: str) -> int:
    return SequenceMatcher(None, source, candidate, autojunk=False).find_longest_match().size


def legacy_ground_at(
    index: SourceIndex, source: str, candidate: str, start_at: int, taken: set[tuple[int, int]]
) -> Grounding:
    """The placement before issue 15: one new SourceIndex over the rest of the article per earlier
    occurrence (kept here as the reference the new one is measured against)."""
    first = index.ground(candidate)
    if first.status not in ("exact", "normalized") or (first.occurrences < 2 and start_at == 0):
        return first
    found = first
    while found.start is not None and found.end is not None:
        if found.start >= start_at and (found.start, found.end) not in taken:
            return found
        offset = found.start + 1
        later = ground(candidate, source[offset:])
        if later.start is None or later.end is None or later.status not in ("exact", "normalized"):
            break
        s, e = later.start + offset, later.end + offset
        found = Grounding(later.status, s, e, ((s, e),), first.occurrences, None)
    return first


def repeated_article(base: str, size: int) -> str:
    copies = -(-size // (len(base) + 2))
    return "\n\n".join([base] * copies)[:size]


def chunk_quotes(
    text: str, windows: list[chunking.Chunk], count: int, rng: random.Random
) -> list[ArticleExtraction]:
    """``count`` quotes spread evenly over the chunks, each a 6-25 word span of its own chunk."""
    answers = []
    for k, window in enumerate(windows):
        ws, we = window.start, window.end
        words = word_spans(text[ws:we])
        n = count * (k + 1) // len(windows) - count * k // len(windows)
        quotes = []
        for _ in range(n):
            s, e = pick_span(text[ws:we], words, rng, rng.randint(6, 25))
            quotes.append(Quote(text=text[ws + s : ws + e], speaker="Someone", cue=None))
        answers.append(ArticleExtraction(events=[], quotes=quotes, stances=[]))
    return answers


def time_repeated(base: str, megabytes: float, count: int, seed: int, legacy: bool) -> dict[str, float]:
    """Build the index and place ``count`` quotes with ground_extraction over a repeated article."""
    rng = random.Random(seed)
    text = repeated_article(base, int(megabytes * 1_000_000))
    windows = chunking.split_chunks(text, 300_000, 2_000)
    answers = chunk_quotes(text, windows, count, rng)
    saved = chunking._ground_at
    if legacy:
        chunking._ground_at = lambda index, cand, start_at, taken: legacy_ground_at(  # type: ignore[assignment]
            index, text, cand, start_at, taken
        )
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        index = SourceIndex(text)
        t1 = time.perf_counter()
        _, quotes, _, rejected = chunking.ground_extraction(answers, text, index, windows)
        t2, c2 = time.perf_counter(), time.process_time()
    finally:
        chunking._ground_at = saved
    occurrences = sorted(q.span.occurrences for q in quotes)
    return {
        "chars": len(text),
        "chunks": len(windows),
        "quotes": len(quotes),
        "rejected": len(rejected),
        "occurrences": occurrences[len(occurrences) // 2] if occurrences else 0,
        "build": t1 - t0,
        "place": t2 - t1,
        "cpu": c2 - c0,
    }


def repeated_section(args: argparse.Namespace) -> None:
    base = make_article(50_000, random.Random(args.seed))
    print()
    print(
        f"Repeated passages: a {len(base):,}-character article repeated to each size, 300,000-character "
        f"chunks, {args.quotes:,} quotes spread over the chunks (seed {args.seed})."
    )
    print()
    print(
        "| placement | size (MB) | characters | chunks | occurrences per quote (median) "
        "| index build (s) | placing (s) | total per MB (s) | CPU, build + placing (s) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    rows = [(False, float(x)) for x in args.repeated_sizes.split(",") if x]
    rows += [(True, float(x)) for x in args.legacy_sizes.split(",") if x]
    for legacy, mb in rows:
        r = time_repeated(base, mb, args.quotes, args.seed, legacy)
        name = "former: a new SourceIndex per earlier occurrence" if legacy else "SourceIndex.ground(start=)"
        print(
            f"| {name} | {mb:g} | {r['chars']:,} | {r['chunks']:.0f} | {r['occurrences']:,.0f} "
            f"| {r['build']:.2f} | {r['place']:.2f} | {(r['build'] + r['place']) / mb:.3f} "
            f"| {r['cpu']:.2f} |",
            flush=True,
        )
        if r["rejected"] or r["quotes"] != args.quotes:
            print(f"  (kept {r['quotes']:.0f}, rejected {r['rejected']:.0f}, expected {args.quotes} kept)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=1_000_000, help="article size in characters")
    ap.add_argument("--candidates", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5, help="cold SourceIndex runs; the fastest is reported")
    ap.add_argument("--oneshot", type=int, default=20, help="candidates timed with one-shot ground()")
    ap.add_argument("--difflib", type=int, default=3, help="candidates timed with difflib")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quotes", type=int, default=1000, help="quotes placed over the repeated article")
    ap.add_argument(
        "--repeated-sizes", default="0.5,1,2,4,8,16,20", help="repeated-article sizes in MB, comma-separated"
    )
    ap.add_argument(
        "--legacy-sizes", default="0.25,0.5", help="sizes (MB) for the former placement ('' to skip)"
    )
    ap.add_argument("--only-repeated", action="store_true", help="skip the 1 MB comparison")
    args = ap.parse_args()
    if args.only_repeated:
        repeated_section(args)
        return

    rng = random.Random(args.seed)
    text = make_article(args.size, rng)
    cands = make_candidates(text, args.candidates, rng)
    texts = [c for _, c in cands]
    n = len(cands)

    runs = [time_source_index(text, texts) for _ in range(args.repeat)]
    build, query, word_index = min(runs, key=lambda r: r[0] + r[1])
    ours = build + query
    index = SourceIndex(text)
    results = [index.ground(c) for c in texts]

    sample = texts[: args.oneshot]
    oneshot = timed(lambda: [ground(c, text) for c in sample]) * n / len(sample)
    naive_results: list[tuple[bool, int]] = []
    naive = timed(lambda: naive_results.extend(naive_ground(c, text) for c in texts))
    few = texts[: args.difflib]
    diff = timed(lambda: [difflib_longest_match(c, text) for c in few]) * n / len(few)

    statuses: dict[str, dict[str, int]] = {}
    for (kind, _), g in zip(cands, results, strict=True):
        statuses.setdefault(kind, {}).setdefault(g.status, 0)
        statuses[kind][g.status] += 1
    agree = sum(g.found == nv[0] for g, nv in zip(results, naive_results, strict=True))

    print(f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"on {platform.platform()}. Article: {len(text):,} characters; {n} candidates (seed {args.seed}).")
    print()
    print("| approach | index build (s) | queries (s) | total (s) | vs SourceIndex |")
    print("|---|---:|---:|---:|---:|")
    print(
        f"| SourceIndex: build once, then {n} × .ground (fastest of {args.repeat} cold runs) "
        f"| {build:.3f} | {query:.3f} | {ours:.3f} | 1.0× |"
    )
    print(
        f"| ground() one-shot per candidate (re-normalises; {len(sample)} timed, ×{n / len(sample):.0f}) "
        f"| – | – | {oneshot:.2f} | {oneshot / ours:.0f}× |"
    )
    print(
        f"| naive: one regex per candidate from the typographic classes, search + finditer count "
        f"| – | {naive:.2f} | {naive:.2f} | {naive / ours:.0f}× |"
    )
    print(
        f"| naive: difflib longest match per candidate ({len(few)} timed, ×{n / len(few):.0f}) "
        f"| – | {diff:.1f} | {diff:.1f} | {diff / ours:.0f}× |"
    )
    print()
    print(f"Queries include the word index, built lazily at the second query: {word_index:.3f} s.")
    print("Candidate kind → status: " + "; ".join(f"{k}: {v}" for k, v in sorted(statuses.items())))
    print(f"Found/not-found agreement with the naive regex matcher: {agree}/{n}.")
    if args.repeated_sizes or args.legacy_sizes:
        repeated_section(args)


if __name__ == "__main__":
    main()
