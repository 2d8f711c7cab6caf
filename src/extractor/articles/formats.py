"""The formats: plain text, Markdown, HTML, JSON and JSONL bytes (or a JSONL stream) to articles.

Every loader takes ``source`` (where the bytes came from: a path or a URI, as ``Article.source`` and
``LoadError.path`` show it) and ``stem`` (the default id); none of them touches a filesystem.
"""

from __future__ import annotations

import codecs
import datetime as dt
import json
import re
from collections.abc import Callable, Iterator
from typing import IO, Any

from extractor.articles.text import (
    _article,
    _clean_str,
    _json_type,
    _one_line,
    _os_reason,
    _over_cap,
    _parse_date,
    normalize_text,
)
from extractor.models import Article, LoadError

SUPPORTED_SUFFIXES: tuple[str, ...] = (".txt", ".md", ".html", ".htm", ".json", ".jsonl")

_UNSUPPORTED_HINT = "(use " + ", ".join(SUPPORTED_SUFFIXES) + ")"
_BINARY_SNIFF_BYTES = 8192
_CHARSET_SNIFF_BYTES = 2048
_MD_TITLE = re.compile(r"#[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*")
_HTML_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_READ_BLOCK = 1 << 20


def _unsupported(suffix: str) -> str | None:
    """Why a file with this (lower-case) suffix is not loaded, or None when it is."""
    if suffix in SUPPORTED_SUFFIXES:
        return None
    return f"unsupported file type {suffix or '(none)'} {_UNSUPPORTED_HINT}"


def count_lines(fh: IO[bytes]) -> int:
    """The non-blank lines of an opened file (a JSONL file's articles), read in blocks: a line is never
    held whole."""
    count, open_line = 0, False
    while block := fh.read(_READ_BLOCK):
        *ended, rest = block.split(b"\n")
        for part in ended:
            count += open_line or bool(part.strip())
            open_line = False
        open_line = open_line or bool(rest.strip())
    return count + open_line


def _load_opened(
    source: str, stem: str, suffix: str, fh: IO[bytes], size: int, cap: int
) -> Iterator[Article | LoadError]:
    """The articles of an opened file of ``size`` bytes, closed here: JSON lines one at a time, any
    other format read whole (at most ``cap`` bytes)."""
    if suffix == ".jsonl":
        yield from _load_jsonl(source, stem, fh, cap)
        return
    data: bytes | str
    with fh:
        try:
            data = _read_capped(fh.read, size, cap)
        except OSError as exc:
            data = _os_reason(exc)
    yield from _load_data(source, stem, suffix, data)


def _read_capped(read: Callable[[int], bytes], size: int, cap: int) -> bytes | str:
    """At most ``cap`` bytes of an opened file of ``size`` bytes through ``read(n)``, or a reason when
    it holds more."""
    if size > cap:
        return _over_cap(f"file is {size:,} bytes", cap)
    chunks: list[bytes] = []
    total = 0
    while total <= cap:
        chunk = read(min(_READ_BLOCK, cap + 1 - total))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
    return _over_cap(f"file grew to more than {cap:,} bytes while it was read", cap)


def _load_data(source: str, stem: str, suffix: str, data: bytes | str) -> Iterator[Article | LoadError]:
    """The articles of a whole file's bytes (``data`` a reason when it could not be read)."""
    if isinstance(data, str):
        yield LoadError(path=source, reason=data)
    elif suffix in (".txt", ".md"):
        yield _load_plain(source, stem, data, markdown=suffix == ".md")
    elif suffix in (".html", ".htm"):
        yield _load_html(source, stem, data)
    else:
        yield from _load_json(source, stem, data)


def _load_plain(source: str, stem: str, data: bytes, *, markdown: bool) -> Article | LoadError:
    decoded = _decode_utf8(data)
    if isinstance(decoded, str):
        return LoadError(path=source, reason=decoded)
    text = decoded.text
    if not text.strip():
        return LoadError(path=source, reason="empty file" if not text else "file contains only whitespace")
    title = _markdown_title(text) if markdown else None
    return _article(stem, text, title=title, source=source)


def _load_html(source: str, stem: str, data: bytes) -> Article | LoadError:
    decoded = _decode_html(data)
    if isinstance(decoded, str):
        return LoadError(path=source, reason=decoded)
    # Imported here: trafilatura takes about a second to import and most runs load no HTML.
    import trafilatura

    try:
        doc: Any = trafilatura.bare_extraction(
            decoded.text,
            with_metadata=True,
            include_comments=False,
            # No extensive search: it turns a footer's "© 2026" into a publication date of 2026-01-01.
            date_extraction_params={"extensive_search": False, "original_date": True},
        )
    except Exception as exc:  # a third-party parser on arbitrary input: any failure is this file's error
        return LoadError(path=source, reason=f"HTML extraction failed: {_one_line(str(exc))}")
    body = normalize_text(doc.text or "").strip() if doc is not None else ""
    if not body:
        return LoadError(path=source, reason="no article text found in HTML")
    return _article(
        stem,
        body,
        title=_clean_str(doc.title),
        url=_clean_str(doc.url),
        published=_parse_date(doc.date),
        source=source,
    )


def _load_json(source: str, stem: str, data: bytes) -> Iterator[Article | LoadError]:
    decoded = _decode_utf8(data)
    if isinstance(decoded, str):
        yield LoadError(path=source, reason=decoded)
        return
    if not decoded.text.strip():
        yield LoadError(path=source, reason="empty file")
        return
    try:
        value = json.loads(decoded.text)
    except json.JSONDecodeError as exc:
        yield LoadError(path=source, reason=f"invalid JSON: {exc.msg} (line {exc.lineno} column {exc.colno})")
        return
    if isinstance(value, dict):
        yield _from_object(value, source, line=None, default_id=stem)
    elif isinstance(value, list):
        if not value:
            yield LoadError(path=source, reason="empty JSON list: no articles")
        for n, element in enumerate(value, start=1):
            yield _from_object(element, source, line=n, default_id=f"{stem}-{n}")
    else:
        yield LoadError(
            path=source, reason=f"expected a JSON object or a list of objects, got {_json_type(value)}"
        )


def _load_jsonl(source: str, stem: str, fh: IO[bytes], cap: int) -> Iterator[Article | LoadError]:
    """The lines of an opened, seekable JSONL file, each read with the size cap (a longer line is
    skipped in blocks, never held whole). Closes ``fh``."""
    offset = 0
    any_line = False
    try:
        with fh:
            problem = _binary_reason(fh.read(_BINARY_SNIFF_BYTES))
            if problem is not None:
                yield LoadError(path=source, reason=problem)
                return
            fh.seek(0)
            n = 0
            while raw := fh.readline(cap + 1):
                n += 1
                line_start, offset = offset, offset + len(raw)
                if len(raw) > cap and not raw.endswith(b"\n"):
                    length = len(raw)
                    while not raw.endswith(b"\n") and (raw := fh.readline(_READ_BLOCK)):
                        length += len(raw)
                    offset = line_start + length
                    length -= raw.endswith(b"\n")
                    any_line = True
                    reason = _over_cap(f"line is {length:,} bytes", cap)
                    yield LoadError(path=source, line=n, reason=reason)
                    continue
                if n == 1 and raw.startswith(codecs.BOM_UTF8):
                    raw = raw[len(codecs.BOM_UTF8) :]
                    line_start += len(codecs.BOM_UTF8)
                if not raw.strip():
                    continue
                any_line = True
                yield _from_jsonl_line(source, stem, n, raw, line_start)
    except OSError as exc:
        yield LoadError(path=source, reason=_os_reason(exc))
        return
    if not any_line:
        yield LoadError(path=source, reason="empty file" if offset == 0 else "file contains only blank lines")


def _from_jsonl_line(source: str, stem: str, n: int, raw: bytes, line_start: int) -> Article | LoadError:
    if b"\x00" in raw:
        return LoadError(path=source, line=n, reason="binary data (NUL byte) in line")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return LoadError(path=source, line=n, reason=f"invalid UTF-8 at byte {line_start + exc.start}")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return LoadError(
            path=source, line=n, reason=f"line is not valid JSON: {exc.msg} (column {exc.colno})"
        )
    return _from_object(value, source, line=n, default_id=f"{stem}-{n}")


def _from_object(value: object, where: str, *, line: int | None, default_id: str) -> Article | LoadError:
    def error(reason: str) -> LoadError:
        return LoadError(path=where, line=line, reason=reason)

    if not isinstance(value, dict):
        return error(f"expected a JSON object, got {_json_type(value)}")
    if "text" not in value:
        return error("missing field 'text'")
    text = value["text"]
    if not isinstance(text, str):
        return error(f"field 'text' must be a string, got {_json_type(text)}")
    text = normalize_text(text)
    if not text.strip():
        return error("field 'text' is empty" if not text else "field 'text' contains only whitespace")
    if "\x00" in text:
        return error("field 'text' contains a NUL character")

    raw_id = value.get("id")
    if raw_id is None:
        raw_id = default_id
    elif isinstance(raw_id, bool) or not isinstance(raw_id, str | int):
        return error(f"field 'id' must be a string or an integer, got {_json_type(raw_id)}")
    fields: dict[str, str | None] = {}
    for name in ("title", "url", "source"):
        field = value.get(name)
        if field is not None and not isinstance(field, str):
            return error(f"field '{name}' must be a string, got {_json_type(field)}")
        fields[name] = _clean_str(field)

    published_raw = value.get("published")
    published: dt.date | None = None
    if published_raw is not None:
        if not isinstance(published_raw, str):
            return error(f"field 'published' must be an ISO date string, got {_json_type(published_raw)}")
        published = _parse_date(published_raw)
        if published is None:
            return error(f"invalid date in field 'published': {published_raw[:40]!r} (use e.g. 2026-01-07)")

    source = where if line is None else f"{where}:{line}"
    return _article(
        str(raw_id), text, title=fields["title"], url=fields["url"], published=published, source=source
    )


class _Text:
    """Successfully decoded and normalised text (a plain ``str`` result means an error reason)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _binary_reason(data: bytes) -> str | None:
    if data.startswith(_UTF16_BOMS):
        return "file is UTF-16 encoded; save it as UTF-8"
    if b"\x00" in data:
        return "binary file (contains NUL bytes)"
    return None


def _decode_utf8(data: bytes) -> _Text | str:
    """Decode strictly as UTF-8 and normalise, or return a one-line reason."""
    problem = _binary_reason(data)
    if problem is not None:
        return problem
    try:
        return _Text(normalize_text(data.decode("utf-8")))
    except UnicodeDecodeError as exc:
        return f"invalid UTF-8 at byte {exc.start}"


def _decode_html(data: bytes) -> _Text | str:
    """Decode as UTF-8, or else as the charset the page declares in a ``<meta>`` tag."""
    decoded = _decode_utf8(data)
    if isinstance(decoded, _Text) or not decoded.startswith("invalid UTF-8"):
        return decoded
    match = _HTML_CHARSET.search(data[:_CHARSET_SNIFF_BYTES])
    if match is None:
        return f"{decoded} (and the page declares no other charset)"
    charset = match.group(1).decode("ascii")
    try:
        codec = codecs.lookup(charset)
    except LookupError:
        return f"{decoded} (declared charset {charset!r} is unknown)"
    if codec.name == "utf-8":
        return decoded
    try:
        return _Text(normalize_text(data.decode(codec.name)))
    except UnicodeDecodeError as exc:
        return f"invalid {charset} at byte {exc.start}"


def _markdown_title(text: str) -> str | None:
    for line in text.split("\n"):
        if line.strip():
            match = _MD_TITLE.fullmatch(line)
            return match.group(1).strip() if match else None
    return None
