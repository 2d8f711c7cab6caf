"""Load articles from files and folders: the single loader behind every CLI command.

Inputs are files or folders. A folder is walked recursively in a stable order (entries sorted by name,
depth first, so the order is that of the sorted relative paths); hidden entries (name starting with ".")
are skipped, symlinked folders inside it are not followed, and files with other extensions are ignored.
A file named explicitly is always loaded, hidden or not; an unsupported extension or a missing path is a
``LoadError``. The same file reached twice (e.g. named and inside a named folder) is loaded once; a
symlink inside a folder to another file of that folder is an input of its own.

What is read, and how much:

- Symlinks stay inside the input. A file that is a symlink (named, or found in a folder) is loaded only
  when its target lies inside the given paths (a folder named, or a file named that is not itself a
  symlink); any other is a ``LoadError`` "symlink to outside the input", so ``ln -s /etc/passwd
  drop/passwd.txt`` sends nothing anywhere. ``follow_symlinks=True`` (``--follow-symlinks``) opts out.
- Only regular files are read. A FIFO, socket or device (named, found in a folder, or a symlink's
  target) is a ``LoadError`` "not a regular file", refused before it is opened. Files are opened
  non-blocking and without following a final symlink, and the checks are made again on the opened
  descriptor (``fstat``, and on Linux the path it really opened), so a file swapped after the checks
  cannot slip through.
- A size cap, ``max_input_bytes`` (default 20,000,000 bytes; ``--max-input-bytes``). A ``.txt``,
  ``.md``, ``.html`` or ``.json`` file over it is a ``LoadError`` that says the cap; no more than the cap
  is ever read. A ``.jsonl`` file is read line by line and has no size limit as a whole: the cap applies
  to each line (each article), and a line over it is that line's ``LoadError`` (skipped without being
  held in memory) while the other lines load. A JSON list over the cap: split it into a JSONL file.

Formats (extensions are case-insensitive):

- ``.txt``, ``.md`` — the whole file is the text; id = file stem; a Markdown file whose first non-blank
  line is ``# Title`` gets that title (the text keeps the line).
- ``.html``, ``.htm`` — trafilatura extracts the main text (boilerplate such as navigation and footers
  dropped) and the title, canonical URL and publication date. UTF-8, or the charset the page declares.
- ``.json`` — one article object, or a list of them; for a list, element *n* (1-based) is treated like
  line *n* of a JSONL file (``LoadError.line``, ``Article.source`` = ``path:n``, default id ``stem-n``).
- ``.jsonl`` — one article object per line; blank lines are skipped. Default id ``stem-line``.

JSON objects: ``text`` (required string), ``id`` (string or integer; default as above), ``title``,
``url``, ``source`` (strings or null), ``published`` (ISO date ``2026-01-07`` or datetime, of which the
date is kept). Other fields are ignored. ``Article.source`` is always where the article came from (path,
or ``path:line``); a JSON ``source`` field is checked but not stored, as Article has no field for it.

``Article.text`` is the decoded text (UTF-8 strictly, a leading BOM removed, ``\\r\\n`` and lone ``\\r``
turned into ``\\n``, nothing else changed); every offset in the project refers to it. Ids are sanitised
(see ``sanitize_id``) and made unique within one ``load_articles`` call: a later article whose id is
taken (compared case-insensitively) gets ``-2``, ``-3``, … appended.

Bad input never stops a run: each problem is yielded as a ``LoadError`` with the path, the line (JSONL,
or element of a JSON list; otherwise None) and a one-line reason, and loading goes on.
"""

from __future__ import annotations

import codecs
import datetime as dt
import errno
import json
import os
import re
import stat
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from extractor.config import DEFAULT_MAX_INPUT_BYTES
from extractor.models import Article, LoadError, text_sha256

__all__ = [
    "SUPPORTED_SUFFIXES",
    "iter_input_files",
    "load_articles",
    "load_file",
    "normalize_text",
    "sanitize_id",
]

SUPPORTED_SUFFIXES: tuple[str, ...] = (".txt", ".md", ".html", ".htm", ".json", ".jsonl")
MAX_ID_LENGTH = 200

_UNSUPPORTED_HINT = "(use " + ", ".join(SUPPORTED_SUFFIXES) + ")"
_BINARY_SNIFF_BYTES = 8192
_CHARSET_SNIFF_BYTES = 2048
_ID_BAD_CHARS = re.compile(r"[^A-Za-z0-9._-]")
_MD_TITLE = re.compile(r"#[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*")
_HTML_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_READ_BLOCK = 1 << 20
_OPEN_FLAGS = os.O_RDONLY
for _flag in ("O_NONBLOCK", "O_NOFOLLOW", "O_CLOEXEC", "O_BINARY"):  # those this platform has
    _OPEN_FLAGS |= getattr(os, _flag, 0)
_FILE_KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a directory"),
)


# --------------------------------------------------------------------------- public helpers


def normalize_text(text: str) -> str:
    """Remove a leading BOM and turn ``\\r\\n`` and lone ``\\r`` into ``\\n``; nothing else changes."""
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def sanitize_id(raw: str, text_sha: str) -> str:
    """Make ``raw`` safe as a file or folder name: only ``[A-Za-z0-9._-]`` (others become ``_``), no
    ``..``, no leading or trailing dots, underscores or dashes, at most 200 characters. An id that
    ends up empty falls back to the first 16 hex digits of ``text_sha``."""
    safe = _ID_BAD_CHARS.sub("_", raw)
    safe = re.sub(r"\.{2,}", ".", safe).strip("._-")
    safe = safe[:MAX_ID_LENGTH].rstrip("._-")
    return safe or text_sha[:16]


def iter_input_files(
    paths: Iterable[str | Path], *, exclude: Callable[[str, str], bool] | None = None
) -> Iterator[Path | LoadError]:
    """Yield the files to load, in order: explicit paths as given (even if missing or unsupported, so
    ``load_file`` can report them), folders walked as the module docstring says. A folder that cannot
    be listed is yielded as a ``LoadError``. A file already reached through an earlier path (the same
    file, or one inside an earlier folder, compared by resolved path) is not yielded again.

    ``exclude(real_path, real_folder)`` is asked about each file found by walking a folder; files named
    explicitly are always yielded. Memory does not grow with the number of files."""
    roots: list[str] = []  # resolved folders walked so far, each with a trailing separator
    files: set[str] = set()  # resolved explicit files so far
    for given in paths:
        path = Path(given)
        if os.path.isdir(path):
            root = os.path.realpath(path)
            if not _reached(root, roots, files):
                yield from _walk(path, root, roots, files, exclude)
            roots.append(os.path.join(root, ""))
            continue
        real = os.path.realpath(path)
        if not _reached(real, roots, files):
            yield path
        files.add(real)


def _reached(real: str, roots: list[str], files: set[str]) -> bool:
    return real in files or any(real.startswith(root) or real + os.sep == root for root in roots)


def load_file(
    path: str | Path,
    *,
    follow_symlinks: bool = False,
    max_input_bytes: int = DEFAULT_MAX_INPUT_BYTES,
    within: Iterable[str | Path] | None = None,
) -> Iterator[Article | LoadError]:
    """Yield the articles of one file (several for JSONL or a JSON list), or LoadErrors in their place.

    ``within``: the input area a symlink must point into (default: ``path`` itself, so a symlink is
    refused unless ``follow_symlinks``). Ids are sanitised but not yet made unique across files;
    ``load_articles`` does that."""
    area = _Area()
    for given in [path] if within is None else within:
        area.add(given)
    return _load_file(Path(path), area, follow_symlinks, max_input_bytes)


def _load_file(path: Path, area: _Area, follow: bool, cap: int) -> Iterator[Article | LoadError]:
    suffix = path.suffix.lower()
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        yield LoadError(path=str(path), reason=_os_reason(exc))
        return
    if stat.S_ISDIR(mode):
        yield LoadError(path=str(path), reason="is a directory")
        return
    if suffix not in SUPPORTED_SUFFIXES:
        yield LoadError(
            path=str(path), reason=f"unsupported file type {suffix or '(none)'} {_UNSUPPORTED_HINT}"
        )
        return
    opened = _open_input(path, area, follow)
    if isinstance(opened, str):
        yield LoadError(path=str(path), reason=opened)
        return
    fd, size = opened
    if suffix == ".jsonl":
        yield from _load_jsonl(path, fd, cap)
        return
    try:
        data = _read_capped(fd, size, cap)
    except OSError as exc:
        data = _os_reason(exc)
    finally:
        os.close(fd)
    if isinstance(data, str):
        yield LoadError(path=str(path), reason=data)
    elif suffix in (".txt", ".md"):
        yield _load_plain(path, data, markdown=suffix == ".md")
    elif suffix in (".html", ".htm"):
        yield _load_html(path, data)
    else:
        yield from _load_json(path, data)


def load_articles(
    paths: Iterable[str | Path],
    *,
    exclude: Callable[[str, str], bool] | None = None,
    unique_ids: bool = True,
    follow_symlinks: bool = False,
    max_input_bytes: int = DEFAULT_MAX_INPUT_BYTES,
    within: Iterable[str | Path] | None = None,
) -> Iterator[Article | LoadError]:
    """Stream the articles of files and folders (see the module docstring), one file at a time.

    Yields every article with a sanitised id, and a ``LoadError`` in place of each input that could not
    be loaded. Never raises for bad input. Ids are made unique within this call unless ``unique_ids`` is
    False (the caller then does it, as the batch runner does in its on-disk index: the set of ids taken
    is the only state that grows with the number of articles). ``exclude``: see ``iter_input_files``.

    Symlinks must point inside ``within`` (default: ``paths``; when ``paths`` is neither a list nor a
    tuple it is consumed lazily, and a symlink can point only into the paths given so far) unless
    ``follow_symlinks``; ``max_input_bytes`` caps each file (each line of a JSONL file)."""
    ids = _UniqueIds() if unique_ids else None
    area = _Area()
    if within is not None or isinstance(paths, list | tuple):
        for given in paths if within is None else within:
            area.add(given)
    else:
        paths = area.adding(paths)
    for item in iter_input_files(paths, exclude=exclude):
        if isinstance(item, LoadError):
            yield item
            continue
        for loaded in _load_file(item, area, follow_symlinks, max_input_bytes):
            if ids is not None and isinstance(loaded, Article):
                unique = ids.claim(loaded.id)
                if unique != loaded.id:
                    loaded = loaded.model_copy(update={"id": unique})
            yield loaded


# --------------------------------------------------------------------------- walking


def _walk(
    folder: Path,
    real_folder: str,
    roots: list[str],
    files: set[str],
    exclude: Callable[[str, str], bool] | None,
    top: str | None = None,
) -> Iterator[Path | LoadError]:
    """The files under ``folder`` (whose resolved path is ``real_folder``), skipping what ``roots`` and
    ``files`` already reached and what ``exclude`` refuses. Only symlinks are resolved one by one: any
    other entry's resolved path is its folder's plus its name."""
    top = real_folder if top is None else top
    try:
        with os.scandir(folder) as listing:
            # Names only (not DirEntry objects): a drop folder can hold very many files.
            names = sorted(entry.name for entry in listing if not entry.name.startswith("."))
    except OSError as exc:
        yield LoadError(path=str(folder), reason=f"cannot list folder: {_os_reason(exc)}")
        return
    for name in names:
        path = folder / name
        try:
            mode = os.lstat(path).st_mode
            link = stat.S_ISLNK(mode)
            if link:
                try:
                    mode = os.stat(path).st_mode
                except FileNotFoundError:
                    continue  # a dangling symlink is not an input
        except OSError as exc:
            yield LoadError(path=str(path), reason=_os_reason(exc))
            continue
        real = os.path.realpath(path) if link else os.path.join(real_folder, name)
        if stat.S_ISDIR(mode):
            if not link:
                yield from _walk(path, real, roots, files, exclude, top)
        elif os.path.splitext(name)[1].lower() in SUPPORTED_SUFFIXES:  # a FIFO too: load_file reports it
            if _reached(real, roots, files) or (exclude is not None and exclude(real, top)):
                continue
            yield path


# --------------------------------------------------------------------------- formats


def _load_plain(path: Path, data: bytes, *, markdown: bool) -> Article | LoadError:
    decoded = _decode_utf8(data)
    if isinstance(decoded, str):
        return LoadError(path=str(path), reason=decoded)
    text = decoded.text
    if not text.strip():
        return LoadError(path=str(path), reason="empty file" if not text else "file contains only whitespace")
    title = _markdown_title(text) if markdown else None
    return _article(path.stem, text, title=title, source=str(path))


def _load_html(path: Path, data: bytes) -> Article | LoadError:
    decoded = _decode_html(data)
    if isinstance(decoded, str):
        return LoadError(path=str(path), reason=decoded)
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
        return LoadError(path=str(path), reason=f"HTML extraction failed: {_one_line(str(exc))}")
    body = normalize_text(doc.text or "").strip() if doc is not None else ""
    if not body:
        return LoadError(path=str(path), reason="no article text found in HTML")
    return _article(
        path.stem,
        body,
        title=_clean_str(doc.title),
        url=_clean_str(doc.url),
        published=_parse_date(doc.date),
        source=str(path),
    )


def _load_json(path: Path, data: bytes) -> Iterator[Article | LoadError]:
    decoded = _decode_utf8(data)
    if isinstance(decoded, str):
        yield LoadError(path=str(path), reason=decoded)
        return
    if not decoded.text.strip():
        yield LoadError(path=str(path), reason="empty file")
        return
    try:
        value = json.loads(decoded.text)
    except json.JSONDecodeError as exc:
        yield LoadError(
            path=str(path), reason=f"invalid JSON: {exc.msg} (line {exc.lineno} column {exc.colno})"
        )
        return
    if isinstance(value, dict):
        yield _from_object(value, path, line=None, default_id=path.stem)
    elif isinstance(value, list):
        if not value:
            yield LoadError(path=str(path), reason="empty JSON list: no articles")
        for n, element in enumerate(value, start=1):
            yield _from_object(element, path, line=n, default_id=f"{path.stem}-{n}")
    else:
        yield LoadError(
            path=str(path), reason=f"expected a JSON object or a list of objects, got {_json_type(value)}"
        )


def _load_jsonl(path: Path, fd: int, cap: int) -> Iterator[Article | LoadError]:
    """The lines of an opened JSONL file, each read with the size cap (a longer line is skipped in
    blocks, never held whole)."""
    offset = 0
    any_line = False
    try:
        with os.fdopen(fd, "rb") as fh:
            problem = _binary_reason(fh.read(_BINARY_SNIFF_BYTES))
            if problem is not None:
                yield LoadError(path=str(path), reason=problem)
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
                    yield LoadError(path=str(path), line=n, reason=reason)
                    continue
                if n == 1 and raw.startswith(codecs.BOM_UTF8):
                    raw = raw[len(codecs.BOM_UTF8) :]
                    line_start += len(codecs.BOM_UTF8)
                if not raw.strip():
                    continue
                any_line = True
                yield _from_jsonl_line(path, n, raw, line_start)
    except OSError as exc:
        yield LoadError(path=str(path), reason=_os_reason(exc))
        return
    if not any_line:
        yield LoadError(
            path=str(path), reason="empty file" if offset == 0 else "file contains only blank lines"
        )


def _from_jsonl_line(path: Path, n: int, raw: bytes, line_start: int) -> Article | LoadError:
    if b"\x00" in raw:
        return LoadError(path=str(path), line=n, reason="binary data (NUL byte) in line")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return LoadError(path=str(path), line=n, reason=f"invalid UTF-8 at byte {line_start + exc.start}")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return LoadError(
            path=str(path), line=n, reason=f"line is not valid JSON: {exc.msg} (column {exc.colno})"
        )
    return _from_object(value, path, line=n, default_id=f"{path.stem}-{n}")


def _from_object(value: object, path: Path, *, line: int | None, default_id: str) -> Article | LoadError:
    def error(reason: str) -> LoadError:
        return LoadError(path=str(path), line=line, reason=reason)

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

    source = str(path) if line is None else f"{path}:{line}"
    return _article(
        str(raw_id), text, title=fields["title"], url=fields["url"], published=published, source=source
    )


# --------------------------------------------------------------------------- small pieces


class _Text:
    """Successfully decoded and normalised text (a plain ``str`` result means an error reason)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


class _Area:
    """The input area: the folders named (their resolved paths, all below them) and the files named
    that are not symlinks themselves. A symlink is followed only to a file inside it."""

    def __init__(self) -> None:
        self._roots: list[str] = []
        self._files: set[str] = set()

    def add(self, given: str | Path) -> None:
        if os.path.isdir(given):
            root = os.path.join(os.path.realpath(given), "")
            if root not in self._roots:
                self._roots.append(root)
        elif not os.path.islink(given):
            self._files.add(os.path.realpath(given))

    def adding(self, paths: Iterable[str | Path]) -> Iterator[str | Path]:
        """``paths`` as given, each added to the area just before it is handed on."""
        for given in paths:
            self.add(given)
            yield given

    def __contains__(self, real: str) -> bool:
        return real in self._files or any(real.startswith(root) for root in self._roots)


def _open_input(path: Path, area: _Area, follow: bool) -> tuple[int, int] | str:
    """Open ``path`` for reading if it is a regular file inside ``area`` (any file when ``follow``):
    (descriptor, size), or a one-line reason. A FIFO or device is never opened; the checks are made
    again on the opened descriptor."""
    try:
        target = os.fspath(path)
        if stat.S_ISLNK(os.lstat(path).st_mode):
            target = os.path.realpath(path)
            if not follow and target not in area:
                return (
                    f"symlink to outside the input ({target}); "
                    "name the target itself or use --follow-symlinks"
                )
        kind = _not_regular(os.stat(target).st_mode)
        if kind is not None:
            return kind
        fd = os.open(target, _OPEN_FLAGS)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "file changed while it was being loaded (now a symlink)"
        return _os_reason(exc)
    try:
        info = os.fstat(fd)
        reason = _not_regular(info.st_mode)
        opened = None if follow or reason else _fd_path(fd)
        if opened is not None and opened not in area:
            reason = f"file changed while it was being loaded (now outside the input: {opened})"
    except OSError as exc:
        reason = _os_reason(exc)
    if reason is None:
        return fd, info.st_size
    os.close(fd)
    return reason


def _not_regular(mode: int) -> str | None:
    if stat.S_ISREG(mode):
        return None
    kind = next((name for test, name in _FILE_KINDS if test(mode)), "a special file")
    return f"not a regular file ({kind})"


def _fd_path(fd: int) -> str | None:
    """The path an open descriptor really refers to (Linux ``/proc``), or None where unknown."""
    try:
        opened = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None
    if not opened.startswith("/"):
        return None
    if opened.endswith(" (deleted)") and not os.path.exists(opened):
        opened = opened.removesuffix(" (deleted)")
    return opened


def _read_capped(fd: int, size: int, cap: int) -> bytes | str:
    """At most ``cap`` bytes of an opened file, or a reason when it holds more."""
    if size > cap:
        return _over_cap(f"file is {size:,} bytes", cap)
    chunks: list[bytes] = []
    total = 0
    while total <= cap:
        chunk = os.read(fd, min(_READ_BLOCK, cap + 1 - total))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
    return _over_cap(f"file grew to more than {cap:,} bytes while it was read", cap)


def _over_cap(what: str, cap: int) -> str:
    return f"{what}, over the input cap of {cap:,} bytes (max_input_bytes; raise it with --max-input-bytes)"


class _UniqueIds:
    """Hands out ids unique within one load, case-insensitively (``-2``, ``-3``, … on a clash)."""

    def __init__(self) -> None:
        self._taken: set[str] = set()

    def claim(self, wanted: str) -> str:
        candidate, n = wanted, 1
        while candidate.lower() in self._taken:
            n += 1
            suffix = f"-{n}"
            candidate = wanted[: MAX_ID_LENGTH - len(suffix)] + suffix
        self._taken.add(candidate.lower())
        return candidate


def _article(
    raw_id: str,
    text: str,
    *,
    source: str,
    title: str | None = None,
    url: str | None = None,
    published: dt.date | None = None,
) -> Article:
    sha = text_sha256(text)
    return Article(
        id=sanitize_id(raw_id, sha),
        text=text,
        title=title,
        url=url,
        published=published,
        source=source,
        sha256=sha,
    )


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


def _parse_date(value: object) -> dt.date | None:
    """An ISO date, or the date of an ISO datetime; None if ``value`` is neither."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        pass
    try:
        return dt.datetime.fromisoformat(value).date()
    except ValueError:
        return None


def _clean_str(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    value = normalize_text(value).strip()
    return value or None


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, FileNotFoundError):
        return "no such file or directory"
    return _one_line(exc.strerror or str(exc) or type(exc).__name__)


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300] or "unknown error"
