"""The public API surface, the layering rules and the network guard."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import respx

import extractor
from extractor import Article, Extractor, Settings
from extractor.llm import OpenAIProvider
from tests import wire
from tests.conftest import NetworkBlocked

SRC = Path(extractor.__file__).resolve().parent

PUBLIC = [
    "Article",
    "ArticleExtraction",
    "ArticleResult",
    "CacheError",
    "ConfigError",
    "Event",
    "Extractor",
    "ExtractorError",
    "FolderBusyError",
    "Grounding",
    "LLMError",
    "LoadError",
    "ParseError",
    "Quote",
    "Rejected",
    "ReplayError",
    "RunSummary",
    "Settings",
    "SourceIndex",
    "Span",
    "Stance",
    "StoreError",
    "TransportError",
    "TruncatedOutputError",
    "Usage",
    "__version__",
    "ground",
    "iter_results",
    "load_articles",
    "open_extractor",
    "run_batch",
    "watch",
]


def test_public_api_is_pinned() -> None:
    assert extractor.__all__ == PUBLIC
    for name in PUBLIC:
        assert hasattr(extractor, name), name


def test_error_family() -> None:
    for name in ("CacheError", "ConfigError", "LLMError", "ReplayError", "StoreError"):
        assert issubclass(getattr(extractor, name), extractor.ExtractorError)
    for name in ("TransportError", "TruncatedOutputError", "ParseError"):
        assert issubclass(getattr(extractor, name), extractor.LLMError)
    assert issubclass(extractor.FolderBusyError, extractor.ConfigError)  # exit 2, stops a run


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_openai_and_instructor_are_imported_by_llm_only() -> None:
    importers = sorted(
        str(p.relative_to(SRC)) for p in SRC.rglob("*.py") if _imports(p) & {"openai", "instructor"}
    )
    assert importers == ["llm.py"]


def test_grounding_is_pure_standard_library() -> None:
    import sys

    modules = sorted((SRC / "grounding").glob("*.py"))
    assert [p.name for p in modules] == ["__init__.py", "index.py", "normalize.py", "quotes.py"]
    third_party = {m for p in modules for m in _imports(p) if m not in sys.stdlib_module_names}
    assert third_party <= {"extractor"}
    own = {
        node.module
        for p in modules
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("extractor")
    }
    assert own == {"extractor.grounding.index", "extractor.grounding.normalize", "extractor.grounding.quotes"}


# What a fresh interpreter has loaded after a statement: the model stack (openai 0.4 s, instructor) must
# stay out of the light modules and of the command's start-up.
_HEAVY = ("openai", "instructor", "httpx")
_LOADED = f"import sys; print(sorted(m for m in {_HEAVY!r} if m in sys.modules))"


def _heavy_loaded_by(statement: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", f"{statement}\n{_LOADED}"], capture_output=True, text=True, check=True
    )
    loaded: list[str] = json.loads(done.stdout.strip().splitlines()[-1].replace("'", '"'))
    return loaded


@pytest.mark.parametrize(
    "module", ["extractor.grounding", "extractor.models", "extractor.store", "extractor.chunking"]
)
def test_a_light_module_imports_no_model_stack(module: str) -> None:
    assert _heavy_loaded_by(f"import {module}") == []


def test_the_command_starts_without_the_model_stack() -> None:
    """``extractor --help`` (and the parser of every command) loads no command module."""
    statement = (
        "import contextlib, io\n"
        "from extractor.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    main(['--help'])\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    main(['serve', '--help'])"
    )
    assert _heavy_loaded_by(statement) == []


def test_the_top_level_help_does_not_build_the_settings_model() -> None:
    """``extractor --help`` and a command without settings stay off pydantic and pydantic-settings; a
    command with settings gets its flags (generated from ``Settings``) when it is parsed."""
    loaded = "import sys; print(sorted(m for m in ('pydantic', 'pydantic_settings') if m in sys.modules))"

    def after(*argv: str) -> list[str]:
        statement = (
            "import contextlib, io\n"
            "from extractor.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
            f"    main({list(argv)!r})\n"
            f"{loaded}"
        )
        done = subprocess.run([sys.executable, "-c", statement], capture_output=True, text=True, check=True)
        found: list[str] = json.loads(done.stdout.strip().splitlines()[-1].replace("'", '"'))
        return found

    assert after("--help") == []
    assert after("report", "--help") == []
    assert after("run", "--help") == ["pydantic", "pydantic_settings"]


def test_the_public_names_load_on_first_use() -> None:
    """``import extractor`` is light; ``from extractor import Extractor`` brings in the pipeline."""
    assert _heavy_loaded_by("import extractor") == []
    assert _heavy_loaded_by("from extractor import Extractor") == sorted(_HEAVY)


def test_a_request_that_escapes_respx_hits_the_network_guard(tmp_path: Path) -> None:
    """openai must send through httpx (so respx and our transports see it). If a client ever sends
    through something else, the request bypasses respx and this guard is what stops it."""
    settings = Settings(
        api_key="sk-x", base_url="https://api.openai.com/v1", cache_dir=tmp_path, use_cache=False
    )
    with Extractor(settings, provider=OpenAIProvider(settings, sleep=_no_sleep)) as ex:
        res = ex.extract(Article.from_text("Some text.", id="x"))
    assert res.status == "error" and res.error is not None
    assert "NetworkBlocked" in res.error.message and "tests must not use the network" in res.error.message


async def _no_sleep(_: float) -> None:
    return None


@respx.mock
def test_openai_sends_through_httpx_so_respx_sees_every_request(tmp_path: Path) -> None:
    route = respx.post(wire.CHAT).mock(return_value=wire.ok(wire.extraction()))
    settings = Settings(api_key="sk-x", base_url=wire.API, cache_dir=tmp_path, use_cache=False)
    with Extractor(settings) as ex:
        assert ex.extract(Article.from_text("Some text.", id="x")).status == "ok"
    assert route.call_count == 1
    assert json.loads(route.calls[0].request.content)["model"] == settings.model


def test_network_guard_blocks_plain_httpx() -> None:
    with pytest.raises(NetworkBlocked):
        httpx.get("https://example.com/")
