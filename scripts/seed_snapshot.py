#!/usr/bin/env python3
"""Snapshot what the seeds' `extractor run`, `report`, `digest` and `eval` write, timings removed.

    python scripts/seed_snapshot.py SNAPSHOT_DIR          write the snapshot
    python scripts/seed_snapshot.py SNAPSHOT_DIR --check  compare against it (exit 1 on any difference)

Used to show that a restructure changes no output: take a snapshot before, check after. Runs offline
(replaying fixtures/recorded) through the installed `extractor` command of the current environment.
"""

from __future__ import annotations

import argparse
import difflib
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROOT_MARK = str(ROOT)
# Keys whose values are clock readings; they are replaced by a fixed marker.
TIMING_KEYS = re.compile(
    r'"(latency_s|wall_s|wall_time_s|elapsed_s|started|finished|created|started_at|finished_at|'
    r"generated|generated_at|duration_s|articles_per_s|articles_per_min|results_sha256|results_bytes)"
    r'": ?("[^"]*"|[0-9.eE+-]+)'
)
TIMING_TEXT = re.compile(
    r"(?<=articles per min</td><td>)[0-9.]+|\b\d+(\.\d+)? ?(s|ms|articles/s|articles/min)\b"
    r"|\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?Z?( UTC)?"
)


def _scrub(text: str, tmp: str) -> str:
    text = text.replace(tmp, "<TMP>").replace(ROOT_MARK, "<ROOT>")
    text = TIMING_KEYS.sub(lambda m: f'"{m.group(1)}": "<T>"', text)
    return TIMING_TEXT.sub("<T>", text)


def _extractor(*args: str, cwd: Path) -> str:
    exe = shutil.which("extractor", path=str(Path(sys.executable).parent)) or "extractor"
    env = {"PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin", "HOME": str(cwd), "NO_COLOR": "1"}
    done = subprocess.run(
        [exe, *args], cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=600
    )
    return f"$ extractor {' '.join(args)}\n[exit {done.returncode}]\n{done.stdout}{done.stderr}"


def snapshot() -> dict[str, str]:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        run = tmp / "run"
        cache = tmp / "cache"
        logs = [
            _extractor(
                "run",
                str(ROOT / "seeds"),
                "--out",
                str(run),
                "--quiet",
                "--cache-dir",
                str(cache),
                "--replay",
                str(ROOT / "fixtures" / "recorded"),
                cwd=tmp,
            ),
            _extractor("report", str(run), cwd=tmp),
            _extractor("digest", str(run), cwd=tmp),
            _extractor(
                "eval",
                str(run),
                "--gold",
                str(ROOT / "fixtures" / "gold"),
                "--json",
                str(tmp / "eval.json"),
                "--per-article",
                cwd=tmp,
            ),
        ]
        out = {"commands.log": "\n".join(logs)}
        for path in sorted([*run.rglob("*"), tmp / "eval.json"]):
            if path.is_file() and path.suffix in {".jsonl", ".json", ".html", ".txt"}:
                out[str(path.relative_to(tmp))] = path.read_text(encoding="utf-8")
        scrubbed = {name: _scrub(text, str(tmp)) for name, text in out.items()}
        # results.jsonl lines come in completion order: compare them as a sorted list.
        for name in [n for n in scrubbed if n.endswith("results.jsonl")]:
            scrubbed[name] = "".join(sorted(scrubbed[name].splitlines(keepends=True)))
        return scrubbed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("snapshot_dir")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    target = Path(args.snapshot_dir)
    current = snapshot()
    if not args.check:
        shutil.rmtree(target, ignore_errors=True)
        for name, text in current.items():
            path = target / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        print(f"wrote {len(current)} file(s) to {target}")
        return 0
    files = [p for p in target.rglob("*") if p.is_file()]
    before = {str(p.relative_to(target)): p.read_text(encoding="utf-8") for p in files}
    differing = sorted(n for n in set(before) | set(current) if before.get(n) != current.get(n))
    for name in differing:
        old, new = before.get(name, "").splitlines(), current.get(name, "").splitlines()
        diff = difflib.unified_diff(old, new, name, name, lineterm="", n=1)
        print("\n".join(line[:300] for line in list(diff)[:40]))
    print(f"{len(current)} file(s) compared: {len(differing)} differ")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
