"""Many articles into one run folder: concurrency, incremental skips, crash safety, progress.

``run_batch(paths, out_dir, extractor)`` loads articles lazily, extracts up to ``concurrency`` at once
(the extractor's rate limiter paces live calls), appends one flushed JSON line per article to
results.jsonl and writes run.json at the end. Nothing is held per article beyond what is in flight.

- Incremental: an article whose text was already extracted ``ok`` into this folder with the same model
  and prompt version is skipped (the manifest is results.jsonl itself: every line names its sha256, model
  and prompt version). A line's ``model`` is the configured model name (``Settings.model``), not the
  snapshot name an API may report, so that the key matches on the next run. ``force=True`` redoes
  everything. Earlier error results are retried.
- Crash-safe: a torn last line left by a kill is cut off on the next run, which then does the rest.
  Lines superseded by a later result for the same input (a retried error) are compacted away at the end,
  so the file ends with one line per input source.
- Failure isolation: a load error or a failed article (even an unexpected exception) becomes an error
  result; the batch goes on. Only a ConfigError stops it.
- The same text twice (in this drop or an earlier one) is extracted once; later copies get a result with
  ``duplicate_of`` = the first article's id (an error result if that extraction failed, so they are
  retried with it). Copies that come while the first is in flight wait in the scratch index on disk.
- The output folder is never read as input, even when it lies inside an input folder (the default
  ``--out out`` with ``extractor run .``).
- Ids are unique within the folder: an article whose id is held by another input (different source and
  text) of an earlier run gets ``-2``, ``-3``, … appended, stably from run to run.
- One writer: a run (or watch) holds the folder's lock throughout (``store.lock_run_folder``).
- Stopping: a first Ctrl-C or SIGTERM lets the articles in flight finish, a second leaves them to the
  next run; run.json and the run's line in runs.jsonl are written either way.

The package: ``runner`` (the pass over the inputs, ``run_batch``, ``arun_batch``), ``watch``, ``inputs``
(input files, the block prefetcher), ``index`` (the scratch index, the compaction), ``summary``
(``RunSummary``, ``BatchReporter``, ``NullReporter``), ``signals`` (Ctrl-C / SIGTERM). The command's
reporters (log lines, progress bar) are ``extractor.cli.progress``.
"""

from __future__ import annotations

from extractor.batch.index import _compact, _Index
from extractor.batch.inputs import _OWN_FILES, _Inputs, _load, count_inputs
from extractor.batch.runner import BatchOptions, arun_batch, run_batch
from extractor.batch.summary import BatchReporter, NullReporter, RunSummary
from extractor.batch.watching import watch
from extractor.store import COMPACT_FILE, INDEX_FILE

__all__ = [
    "COMPACT_FILE",
    "INDEX_FILE",
    "_OWN_FILES",
    "BatchOptions",
    "BatchReporter",
    "NullReporter",
    "RunSummary",
    "_Index",
    "_Inputs",
    "_compact",
    "_load",
    "arun_batch",
    "count_inputs",
    "run_batch",
    "watch",
]
