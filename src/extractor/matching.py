"""Matching names and stance targets the way a reader would: shared by the pipeline (merging one item
told by two overlapping chunks), the digest and the evaluator. Standard library only.

- ``names_match``: normalised names are equal up to initials, or one is the other's surname alone;
  titles and descriptors before the last title are dropped; a group noun is never a surname.
- ``same_person`` (the evaluator's speaker rule): ``names_match`` where a bare surname, an initial or a
  name behind an abbreviated title ("Gov. Harlow") must fit exactly one person named in the article's gold;
  ``same_name``: the names as written, up to Unicode normalisation and whitespace.
- ``target_similarity``: Jaccard similarity of lightly stemmed content words.
- ``fold``: the one way names and phrases are folded (accents removed, casefolded) before comparison,
  here (``word_tokens``), in the digest's lookup keys and in ``extractor.dates``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

__all__ = [
    "SURNAME_PARTICLES",
    "fold",
    "names_match",
    "normalize_name",
    "same_name",
    "same_person",
    "target_similarity",
    "target_tokens",
    "word_tokens",
]

_ARTICLES = frozenset({"the", "a", "an"})
_TITLES = frozenset(
    {
        "mr", "mrs", "ms", "miss", "dr", "prof", "professor", "sir", "dame", "lord", "lady",
        "president", "prime", "minister", "chancellor", "premier", "secretary", "general",
        "senator", "sen", "rep", "king", "queen", "prince", "princess", "pope", "mayor", "governor",
        "ambassador",
    }
)  # fmt: skip
_STOPWORDS = _ARTICLES | frozenset(
    {
        "of", "to", "in", "on", "at", "for", "from", "by", "with", "as", "into", "onto", "about",
        "and", "or", "its", "their", "his", "her", "be", "is", "are", "that", "this", "these", "those",
    }
)  # fmt: skip
# Words that end a collective name ("the Italian government"): never a surname on their own.
_GROUP_NOUNS = frozenset(
    {
        "government", "governments", "ministry", "office", "parliament", "party", "council", "commission",
        "cabinet", "administration", "army", "military", "forces", "police", "court", "union", "alliance",
        "coalition", "leaders", "officials", "delegation", "spokesperson", "spokesman", "spokeswoman",
        "embassy", "agency", "committee", "senate", "congress", "department", "states", "members",
        "participants", "allies", "partners", "countries", "sources", "presidency", "opposition",
    }
)  # fmt: skip
_POSSESSIVE = re.compile(r"['’]s\b")
_NON_WORD = re.compile(r"[\W_]+")


@lru_cache(maxsize=65536)
def fold(text: str, *, straight_apostrophes: bool = False) -> str:
    """Accents removed and casefolded ("Élysée" -> "elysee"); with ``straight_apostrophes`` the curly
    apostrophes ’ and ‘ become ' first (the digest's lookup keys keep apostrophes; ``word_tokens`` drops
    them with the rest of the punctuation)."""
    if straight_apostrophes:
        text = text.replace("’", "'").replace("‘", "'")
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def word_tokens(text: str) -> list[str]:
    """Folded words (``fold``) without possessive 's, punctuation to spaces."""
    return _NON_WORD.sub(" ", _POSSESSIVE.sub("", fold(text))).split()


def normalize_name(name: str) -> tuple[str, ...]:
    """Tokens of a name without articles and titles, and without what precedes the last title ("Italian
    Prime Minister Giorgia Meloni" -> giorgia meloni) when a name follows it; titles stay if nothing else
    is left ("the President" -> president)."""
    tokens = [t for t in word_tokens(name) if t not in _ARTICLES]
    last_title = max((i for i, t in enumerate(tokens) if t in _TITLES), default=-1)
    after = tokens[last_title + 1 :]
    core = after if after and last_title >= 0 else [t for t in tokens if t not in _TITLES]
    return tuple(core or tokens)


def _initials_agree(a: str, b: str) -> bool:
    return a == b or (len(a) == 1 and b.startswith(a)) or (len(b) == 1 and a.startswith(b))


SURNAME_PARTICLES = frozenset(
    {"von", "van", "der", "den", "de", "da", "di", "del", "della", "du", "la", "le", "bin", "ibn", "al", "el"}
    | {"dos", "das"}
)


def _without_middle_initials(tokens: tuple[str, ...]) -> tuple[str, ...]:
    """ "donald j trump" -> donald trump: a one-letter token between a first name and a surname."""
    if len(tokens) < 3:
        return tokens
    return (tokens[0], *(t for t in tokens[1:-1] if len(t) > 1), tokens[-1])


def names_match(a: str, b: str) -> bool:
    """Normalised names are equal (up to initials: "G. Meloni" = "Giorgia Meloni"; a middle initial
    may be missing: "Donald J. Trump" = "Donald Trump"), or one is the other's surname alone
    ("Meloni" = "Giorgia Meloni", "von der Leyen" = "Ursula von der Leyen") unless that word is a group
    noun ("government")."""
    ta, tb = normalize_name(a), normalize_name(b)
    if not ta or not tb:
        return ta == tb and a.strip().casefold() == b.strip().casefold()
    if len(ta) != len(tb):  # a middle initial only one of them gives is not a difference
        ta, tb = _without_middle_initials(ta), _without_middle_initials(tb)
    if len(ta) == len(tb):
        return ta[-1] == tb[-1] and all(_initials_agree(x, y) for x, y in zip(ta, tb, strict=True))
    short, long = (ta, tb) if len(ta) < len(tb) else (tb, ta)
    if len(short) == 1:
        return short[0] == long[-1] and short[0] not in _GROUP_NOUNS
    # A surname of several words starts with a particle: "von der Leyen".
    return short[0] in SURNAME_PARTICLES and long[-len(short) :] == short


# Abbreviated titles (with their dot) that ``normalize_name`` does not know: "Gov. Harlow" -> Harlow.
_TITLE_ABBREVIATION = re.compile(
    r"\b(?:gov|gen|col|lt|sgt|capt|cpt|adm|cmdr|maj|rev|fr|hon|pres|amb|supt|insp|det|cllr)\.\s*",
    re.IGNORECASE,
)


def same_name(a: str | None, b: str | None) -> bool:
    """The names as written (NFC, whitespace collapsed); two nulls (no speaker) are the same name."""
    if a is None or b is None:
        return a is None and b is None
    return " ".join(unicodedata.normalize("NFC", a).split()) == " ".join(
        unicodedata.normalize("NFC", b).split()
    )


def same_person(predicted: str | None, gold: str | None, article_names: Iterable[str] = ()) -> bool:
    """Whether ``predicted`` names the person ``gold`` names; ``article_names``: every name in the gold.

    Two nulls (no speaker) agree, a null never matches a name. Otherwise ``names_match`` after dropping
    abbreviated titles ("Gov. Harlow" -> Harlow): so a title, a bare surname or an initial may stand for
    the full name, but different given names never match ("John Smith" != "Jane Smith"). A shortened name
    (fewer words than the gold's, or an initial) must also fit no other person of the article's gold:
    "Smith" in an article whose gold names John Smith and Jane Smith is no one's name.
    """
    if predicted is None or gold is None:
        return predicted is None and gold is None
    plain = _TITLE_ABBREVIATION.sub("", predicted)
    if not names_match(plain, gold):
        return False
    if normalize_name(plain) == normalize_name(gold):
        return True
    others = {n for n in article_names if normalize_name(n) != normalize_name(gold)}
    return not any(names_match(plain, other) and not names_match(other, gold) for other in others)


def _stem(token: str) -> str:
    if len(token) > 3 and token.endswith("s") and not token.endswith("ss"):
        token = token[:-1]
    for suffix in ("ing", "ed"):
        if token.endswith(suffix) and len(token) - len(suffix) >= 4:
            return token[: -len(suffix)]
    return token


def target_tokens(target: str) -> frozenset[str]:
    """Content tokens of a stance target: accents removed, casefolded, punctuation and stopwords dropped,
    then lightly stemmed (a plural -s, then -ing/-ed, when at least 4 letters remain)."""
    return frozenset(_stem(t) for t in word_tokens(target) if t not in _STOPWORDS)


def target_similarity(a: str, b: str) -> float:
    """Jaccard similarity of the targets' token sets (1.0 when both are empty)."""
    ta, tb = target_tokens(a), target_tokens(b)
    if not ta and not tb:
        return 1.0
    return len(ta & tb) / len(ta | tb)
