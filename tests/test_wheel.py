"""The wheel: built from the repository, installed into a fresh venv outside it, used from another folder.

It must carry the prompts and schemas (package data), extract with the default prompts against a local
endpoint (``extractor run`` and the README's Python API snippet), and, lacking the checkout's seeds,
recordings and gold, say what to pass instead of failing obscurely. Slow (a minute or two: the venv
installs the dependencies from the package index or pip's cache).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from extractor.prompts import load_prompts
from tests.service import API_KEY, fake_server

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


@dataclass
class Installed:
    wheel: Path
    bin: Path
    home: Path  # a folder outside the repository, the working directory of every command


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "EXTRACTOR_", "PYTHON"))}
    env.update({"EXTRACTOR_CACHE_DIR": str(home / "cache"), "HOME": str(home)}, **extra)
    return env


def _extractor(
    installed: Installed, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``extractor`` in the folder outside the checkout."""
    return subprocess.run(
        [str(installed.bin / "extractor"), *args],
        cwd=installed.home,
        env=env or _env(installed.home),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("wheel")
    dist = root / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = dist.glob("extractor-*.whl")
    target = root / "venv"
    venv.EnvBuilder(with_pip=True).create(target)
    bin_dir = target / ("Scripts" if os.name == "nt" else "bin")
    install = [str(bin_dir / "python"), "-m", "pip", "install", "-q", "--no-compile", str(wheel)]
    subprocess.run(install, check=True, capture_output=True, env=_env(root), cwd=root)
    home = root / "elsewhere"
    (home / "drop").mkdir(parents=True)
    (home / "drop" / "one.txt").write_text('The mayor said: "We are ready." The vote is on Monday.\n')
    (home / "drop" / "two.md").write_text("# Talks\n\nTalks ended on Friday in Rome without a deal.\n")
    return Installed(wheel=wheel, bin=bin_dir, home=home)


def test_the_wheel_carries_prompts_and_schemas(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    for name in ("system.j2", "user.j2"):
        assert f"extractor/_data/prompts/{name}" in names
    examples = [ex.name for ex in load_prompts().examples]  # the worked examples, article and answer
    assert examples and all(
        f"extractor/_data/prompts/examples/{ex}.{kind}" in names
        for ex in examples
        for kind in ("txt", "json")
    )
    for name in ("article_extraction.schema.json", "article_result.schema.json", "openapi.json"):
        assert f"extractor/_data/schemas/{name}" in names
    assert (
        "extractor/py.typed" in names and "extractor/serve/app.py" in names and "extractor/client.py" in names
    )
    from extractor.digest.tables import DATA_FILES  # the digest's gazetteers and alias tables

    assert {f"extractor/digest/data/{name}" for name in DATA_FILES} <= names
    templates = ROOT / "src" / "extractor" / "review" / "templates"  # the review page's templates, CSS, JS
    shipped = {f"extractor/review/templates/{path.name}" for path in templates.iterdir()}
    assert {f"extractor/review/templates/{n}" for n in ("page.html.j2", "page.js")} <= shipped <= names
    assert not any(n.startswith(("prompts/", "schemas/", "src/")) for n in names)


def test_extractor_run_from_another_folder_with_the_default_prompts(installed: Installed) -> None:
    with fake_server.run_in_thread(fake_server.ServerConfig()) as base_url:
        env = _env(installed.home, OPENAI_API_KEY=API_KEY, OPENAI_BASE_URL=base_url)
        run = _extractor(installed, "run", "drop", "--out", "out", "--quiet", env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in (installed.home / "out" / "results.jsonl").read_text().splitlines()]
    assert sorted(r["article_id"] for r in lines) == ["one", "two"]
    assert all(r["status"] == "ok" for r in lines)
    assert {r["prompt_version"] for r in lines} == {load_prompts().version}  # the packaged prompts
    report = _extractor(installed, "report", "out", timeout=300)
    assert report.returncode == 0, report.stderr
    page = (installed.home / "out" / "report.html").read_text(encoding="utf-8")  # the packaged templates
    assert '<section id="digest" class="dg">' in page and page.count('<section class="art"') == 2
    located = subprocess.run(
        [str(installed.bin / "python"), "-c", "import extractor.prompts as p; print(p.DEFAULT_PROMPT_DIR)"],
        cwd=installed.home,
        env=_env(installed.home),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert "site-packages" in located and not located.startswith(str(ROOT))


def test_the_readme_python_snippet_runs_against_the_installed_package(installed: Installed) -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    snippet = text.split("\n## Python API", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    script = installed.home / "snippet.py"
    script.write_text(snippet, encoding="utf-8")
    with fake_server.run_in_thread(fake_server.ServerConfig()) as base_url:
        env = _env(installed.home, OPENAI_API_KEY=API_KEY, OPENAI_BASE_URL=base_url)
        run = subprocess.run(
            [str(installed.bin / "python"), str(script)],
            cwd=installed.home,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert run.returncode == 0, run.stderr
    assert "We are ready." in run.stdout  # a quote of drop/one.txt, printed by the snippet's loop


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "drop", "--out", "o"], "recorded fixtures come with the source checkout"),
        (["eval", "o"], "--gold is required"),
        (["fixtures", "check"], "--fixtures is required"),
        (["schemas"], "give --out DIR"),
        (["serve"], "pip install 'extractor[serve]'"),
    ],
)
def test_checkout_only_defaults_give_a_usage_message(
    installed: Installed, args: list[str], message: str
) -> None:
    run = _extractor(installed, *args)
    assert run.returncode == 2, (run.stdout, run.stderr)
    assert message in run.stderr and "Traceback" not in run.stderr


def test_the_installed_schemas_match_the_models(installed: Installed) -> None:
    run = _extractor(installed, "schemas", "--check")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "openapi.json skipped: the serve extra is not installed" in run.stderr
