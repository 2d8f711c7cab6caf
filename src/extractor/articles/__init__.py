"""Load articles from files, folders and URIs: the single loader behind every CLI command.

Inputs are files or folders, local or remote (``s3://``, ``gs://``, any ``scheme://`` pyarrow reads;
see ``remote``). A folder is walked recursively in a stable order (entries sorted by name,
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

The package: ``load`` (the public functions), ``local`` (walking, the input area, safe opening),
``remote`` (``scheme://`` URIs through pyarrow), ``formats`` (the loaders per format), ``text`` (ids
and text normalisation).
"""

from __future__ import annotations

from extractor.articles.formats import SUPPORTED_SUFFIXES, count_lines
from extractor.articles.load import iter_input_files, load_articles, load_file
from extractor.articles.remote import RemoteFile
from extractor.articles.text import MAX_ID_LENGTH, is_uri, normalize_text, sanitize_id
from extractor.models import Article, LoadError  # the records the loader yields

__all__ = [
    "MAX_ID_LENGTH",
    "SUPPORTED_SUFFIXES",
    "Article",
    "LoadError",
    "RemoteFile",
    "count_lines",
    "is_uri",
    "iter_input_files",
    "load_articles",
    "load_file",
    "normalize_text",
    "sanitize_id",
]
