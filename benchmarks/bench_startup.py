"""Start-up cost of the command and of importing the light modules, as ratios to ``python -c pass``.

    .venv/bin/python benchmarks/bench_startup.py [--runs 15] [--src DIR]

Each case is a fresh subprocess of this interpreter (``extractor --help`` is the console script next to
it), run --runs times in turn with the others; the figure is the median wall time, and the ratio is that
median over the median of ``python -c pass``. ``--src DIR`` puts DIR (another checkout's src/) first on
PYTHONPATH, to measure an older commit with the same interpreter and packages, e.g.

    git worktree add /tmp/extractor-base BASE_COMMIT
    .venv/bin/python benchmarks/bench_startup.py --src /tmp/extractor-base/src

Prints a markdown table, and per case which of openai, instructor and httpx the import pulled in.
Exits 1 if a case fails.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HEAVY = ("openai", "instructor", "httpx")


def cases() -> dict[str, list[str]]:
    python = sys.executable
    script = Path(python).with_name("extractor")
    command = [str(script)] if script.exists() else [python, "-m", "extractor"]
    found = f"import sys; print(','.join(m for m in {HEAVY!r} if m in sys.modules) or '-')"
    cases = {"python -c pass": [python, "-c", "pass"], "extractor --help": [*command, "--help"]}
    for module in ("extractor.grounding", "extractor.models", "extractor.store", "extractor.config"):
        cases[f"import {module}"] = [python, "-c", f"import {module}; {found}"]
    cases["from extractor import Extractor"] = [python, "-c", f"from extractor import Extractor; {found}"]
    return cases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="runs of each case (default 15)")
    parser.add_argument("--src", type=Path, help="another checkout's src/ to measure instead of this one")
    args = parser.parse_args(argv)
    env = dict(os.environ)
    if args.src is not None:
        if not (args.src / "extractor" / "__init__.py").exists():
            parser.error(f"--src {args.src}: no extractor package there")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(args.src.resolve()), env.get("PYTHONPATH")]))
    todo = cases()
    times: dict[str, list[float]] = {name: [] for name in todo}
    pulled: dict[str, str] = {}
    for _ in range(args.runs):
        for name, cmd in todo.items():
            start = time.perf_counter()
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
            times[name].append(time.perf_counter() - start)
            if done.returncode != 0:
                print(f"{name}: exit {done.returncode}\n{done.stderr}", file=sys.stderr)
                return 1
            if name.startswith(("import", "from")):
                pulled[name] = done.stdout.strip()
    base = statistics.median(times["python -c pass"])
    print(f"median of {args.runs} runs; load average {os.getloadavg()[0]:.1f}\n")
    print("| case | median s | ratio to `python -c pass` | openai/instructor/httpx imported |")
    print("| --- | --- | --- | --- |")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| `{name}` | {median:.3f} | {median / base:.1f}x | {pulled.get(name, '')} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
