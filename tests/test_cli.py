"""The ``extractor`` command: the offline main job, exit codes, flags and env, schemas, cache, fixtures,
and Ctrl-C on a live ``watch``."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from extractor import cli
from extractor.cache import ResponseCache
from extractor.cli import common, options, progress
from extractor.cli.progress import LogReporter, RichReporter
from extractor.evaluate import evaluate_path
from extractor.models import ArticleResult
from extractor.store import RESULTS_FILE, iter_results

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
RECORDED = ROOT / "fixtures" / "recorded"
COMMANDS = ("run", "watch", "record", "fixtures", "report", "digest", "eval", "cache", "schemas")
OFFLINE_NOTE = "no OPENAI_API_KEY set: replaying recorded responses from"


def run_json(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / "run.json").read_text(encoding="utf-8"))
    return data


def settings_of(*argv: str) -> Any:
    return options.load_settings(cli.build_parser().parse_args(list(argv)))


# --------------------------------------------------------------------------- help and exit codes


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for command in COMMANDS:
        assert f"\n    {command} " in text, command
    flat = " ".join(text.split())
    assert "Exit codes: 0 ok, 1 some articles or checks failed, 2 usage or configuration error" in flat


def test_python_dash_m_extractor_help() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "extractor", "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert all(command in done.stdout for command in COMMANDS)


@pytest.mark.parametrize(
    "argv",
    [
        ["run", str(SEEDS), "--bogus"],
        ["run"],  # no paths
        ["frobnicate"],
        ["run", str(SEEDS), "--mode", "xml"],
        ["run", str(SEEDS), "--concurrency", "many"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    assert "usage: extractor" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--rpm", "-5"], "rpm must be positive, got -5"),
        (["--tpm", "0"], "tpm must be positive, got 0"),
        (["--concurrency", "0"], "concurrency must be positive"),
        (["--temperature", "3"], "temperature must be between 0 and 2"),
        (["--config", "/nonexistent/extractor.toml"], "cannot read config file"),
        (["--replay", "/nonexistent/recordings"], "--replay /nonexistent/recordings: no recordings folder"),
    ],
)
def test_configuration_errors_exit_2(
    flags: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["run", str(SEEDS), "--out", str(tmp_path / "out"), *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("extractor: configuration error: ") and message in err
    assert "Traceback" not in err
    assert not (tmp_path / "out" / RESULTS_FILE).exists()


def test_no_key_and_no_recordings_is_a_clear_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(common, "DEFAULT_FIXTURES", tmp_path / "no-fixtures")
    assert cli.main(["run", str(SEEDS), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "no API key: set OPENAI_API_KEY" in err and OFFLINE_NOTE not in err


def test_an_interrupted_run_exits_130_and_says_how_to_finish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import extractor.batch

    def interrupted_run(*_: Any, **__: Any) -> Any:
        return extractor.batch.RunSummary(articles=5, ok=2, interrupted=True)

    monkeypatch.setattr(extractor.batch, "run_batch", interrupted_run)
    assert cli.main(["run", str(SEEDS), "--out", str(tmp_path / "out"), "-q"]) == 130
    assert "interrupted; run the same command again to finish the rest" in capsys.readouterr().err


def test_watch_interval_must_be_positive(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["watch", str(tmp_path), "--out", str(tmp_path / "o"), "--interval", "0"]) == 2
    assert "watch interval must be positive" in capsys.readouterr().err


# --------------------------------------------------------------------------- flags and env reach Settings


def test_the_settings_flags_are_generated_from_the_fields(capsys: pytest.CaptureFixture[str]) -> None:
    from extractor.config import Settings, flag_name

    with pytest.raises(SystemExit):
        cli.main(["cache", "--help"])
    text = capsys.readouterr().out
    flags = [flag for name in Settings.model_fields if (flag := flag_name(name, Settings))]
    assert len(flags) >= 19 and all(f"  {flag}" in text for flag in flags)
    assert "($EXTRACTOR_MODEL, default gpt-4o-mini)" in " ".join(text.split())
    s = settings_of(
        "run", "x", "--timeout", "3", "--chunk-overlap", "10", "--follow-symlinks", "--mode", "json"
    )
    assert (s.timeout_s, s.chunk_overlap_chars, s.follow_symlinks, s.mode, s.use_cache) == (
        3.0,
        10,
        True,
        "json",
        True,
    )


def test_limits_from_flags_and_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    s = settings_of("run", "x", "--rpm", "60", "--tpm", "90000", "--concurrency", "3", "--no-cache")
    assert (s.rpm, s.tpm, s.concurrency, s.use_cache) == (60, 90000, 3, False)

    monkeypatch.setenv("EXTRACTOR_RPM", "500")
    monkeypatch.setenv("EXTRACTOR_TPM", "200000")
    monkeypatch.setenv("EXTRACTOR_CONCURRENCY", "16")
    s = settings_of("watch", "drop")
    assert (s.rpm, s.tpm, s.concurrency) == (500, 200000, 16)
    s = settings_of("run", "x", "--rpm", "7")  # a flag beats the env var
    assert (s.rpm, s.tpm) == (7, 200000)

    cfg = tmp_path / "x.toml"
    cfg.write_text('[extractor]\nrpm = 30\nmodel = "house"\n[extractor.prices]\nhouse = [1.5, 3]\n')
    monkeypatch.delenv("EXTRACTOR_RPM")
    s = settings_of("run", "x", "--config", str(cfg), "--cache-dir", str(tmp_path / "c"))
    assert (s.rpm, s.model, s.price(), s.cache_dir) == (30, "house", (1.5, 3.0), tmp_path / "c")


def test_the_serve_flags_are_generated_from_both_settings_classes(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from extractor.config import ServiceSettings, Settings, env_name, flag_name

    with pytest.raises(SystemExit):
        cli.main(["serve", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for settings_cls in (Settings, ServiceSettings):
        for name in settings_cls.model_fields:
            if flag := flag_name(name, settings_cls):
                assert f" {flag} " in text, flag
    assert "--host HOST address to listen on ($EXTRACTOR_HOST, default 127.0.0.1)" in text
    assert "--port PORT port (0 = any free port) ($EXTRACTOR_PORT, default 8000)" in text
    assert "--job-retention DURATION" in text and "($EXTRACTOR_JOB_RETENTION)" in text
    assert "--api-token" not in text and "--model MODEL" in text and text.count("TOML config file") == 1

    def service_of(*argv: str) -> ServiceSettings:
        return options.load_declared(cli.build_parser().parse_args(["serve", *argv]), ServiceSettings)

    cfg = tmp_path / "x.toml"
    cfg.write_text("[serve]\nport = 9001\nmax_pending = 3\njob_workers = 4\n", encoding="utf-8")
    for name in ("max_pending", "port"):
        monkeypatch.setenv(env_name(name, ServiceSettings) or "", "7")
    flags = ("--config", str(cfg), "--port", "0", "--shutdown-timeout", "2.5", "--job-retention", "12h")
    service = service_of(*flags, "--data-dir", str(tmp_path / "d"), "--allow-paths", str(tmp_path))
    assert (service.port, service.max_pending, service.job_workers) == (0, 7, 4)  # flag > env > file
    assert (service.shutdown_timeout_s, service.job_retention_s) == (2.5, 12 * 3600)
    assert (service.data_dir, service.allow_paths, service.host) == (tmp_path / "d", tmp_path, "127.0.0.1")


def test_run_uses_the_rate_limits_it_was_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    ex = options.extractor_for(cli.build_parser().parse_args(["run", "x", "--rpm", "60", "--tpm", "1000"]))
    assert (ex.settings.rpm, ex.settings.tpm) == (60, 1000)
    ex.close()


def test_reporter_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    parse = cli.build_parser().parse_args

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stderr", Tty())
    assert isinstance(progress.reporter_for(parse(["run", "x"])), RichReporter)
    quiet = progress.reporter_for(parse(["run", "x", "--quiet"]))
    assert isinstance(quiet, LogReporter) and quiet.quiet
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    plain = progress.reporter_for(parse(["run", "x"]))
    assert isinstance(plain, LogReporter) and not plain.quiet


# --------------------------------------------------------------------------- the offline main job


def test_offline_run_of_the_seeds_replays_the_recordings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    monkeypatch.chdir(ROOT)  # as `dev.py run` does: the note shows the recordings' path from the checkout
    assert cli.main(["run", str(SEEDS), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.err.count(OFFLINE_NOTE) == 1
    assert f"{OFFLINE_NOTE} fixtures/recorded (offline)\n" in captured.err
    assert f"results: {out / RESULTS_FILE}" in captured.out
    assert captured.err.count("[extracted] ") == 5  # not a TTY: plain log lines
    results = list(iter_results(out))
    assert sorted(r.article_id for r in results) == sorted(p.stem for p in SEEDS.glob("*.txt"))
    assert {r.status for r in results} == {"ok"}
    data = run_json(out)
    assert (data["articles"], data["ok"], data["failed"], data["skipped"]) == (5, 5, 0, 0)
    assert (data["quotes_exact"], data["quotes_normalized"], data["quotes_elided"]) == (14, 1, 0)
    assert (data["rejected"], data["rejected_quotes"]) == (1, 1)
    assert data["model"] == "reference-fixture" and data["cost_usd"] == 0.0
    assert data["http_calls"] >= 5 and data["tokens"] > 0
    for r in results:
        assert (out / "articles" / f"{r.sha256}.txt").read_bytes() == (
            SEEDS / f"{r.article_id}.txt"
        ).read_bytes()

    assert cli.main(["run", str(SEEDS), "--out", str(out), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert (
        "[skipped]" not in captured.err and "[extracted]" not in captured.err
    )  # --quiet: no per-article lines
    assert "5 (5 skipped as done, 0 duplicates)" in captured.err  # but the summary
    data = run_json(out)
    assert (data["articles"], data["skipped"], data["ok"], data["http_calls"]) == (5, 5, 0, 0)
    assert len((out / RESULTS_FILE).read_bytes().splitlines()) == 5


def test_digest_then_report_embeds_the_digest_and_eval_scores_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    assert cli.main(["run", str(SEEDS), "--out", str(out), "--quiet", "--html"]) == 0
    first_page = (out / "report.html").read_text(encoding="utf-8")
    assert "dg-" in first_page and (out / "digest.json").is_file()  # the page builds the digest it shows
    assert cli.main(["digest", str(out)]) == 0
    digest = json.loads((out / "digest.json").read_text(encoding="utf-8"))
    assert digest
    assert cli.main(["report", str(out)]) == 0
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "dg-" in page and page.index("dg-") < page.index('<section id="articles"')
    assert cli.main(["eval", str(out), "--json", str(tmp_path / "scores.json")]) == 0
    scores = json.loads((tmp_path / "scores.json").read_text(encoding="utf-8"))
    assert scores["a"]["totals"]
    # B: the same run with one article's quotes dropped.
    lines = (out / RESULTS_FILE).read_text(encoding="utf-8").splitlines()
    first = json.loads(lines[0])
    dropped = len(first["quotes"])
    assert dropped > 0
    lines[0] = json.dumps({**first, "quotes": []})
    other = tmp_path / "other.jsonl"
    other.write_text("\n".join(lines) + "\n", encoding="utf-8")
    capsys.readouterr()
    monkeypatch.setenv("COLUMNS", "200")
    assert cli.main(["eval", str(out), "--compare", str(other)]) == 0
    captured = capsys.readouterr()
    a = scores["a"]["totals"]["quotes"]["exact"]
    b = evaluate_path(other, ROOT / "fixtures" / "gold").totals.quotes.exact
    assert b.tp + b.fn == a["tp"] + a["fn"] and b.tp < a["tp"]
    row = next(line for line in captured.out.splitlines() if "quotes exact R " in line)
    cells = [cell.strip() for cell in row.strip("│ ").split("│")]
    assert cells == [
        "quotes exact R",
        f"{a['recall']:.3f} {a['tp']}/{a['tp'] + a['fn']}",
        f"{b.recall:.3f} {b.tp}/{b.tp + b.fn}",
        f"{b.recall - a['recall']:+.3f}",
    ]
    assert cells[3].startswith("-")
    assert f"B: 5 gold articles ({other})" in captured.out


def test_offline_run_of_the_current_folder_into_the_default_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for seed in SEEDS.glob("*.txt"):
        shutil.copy(seed, tmp_path)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", ".", "-q"]) == 0  # --out defaults to ./out, inside the folder being read
    assert cli.main(["run", ".", "-q"]) == 0
    data = run_json(tmp_path / "out")
    assert (data["articles"], data["skipped"], data["failed"], data["duplicates"]) == (5, 5, 0, 0)
    assert len((tmp_path / "out" / RESULTS_FILE).read_bytes().splitlines()) == 5


def test_offline_run_with_an_unloadable_file_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs = tmp_path / "in"
    shutil.copytree(SEEDS, inputs)
    (inputs / "broken.txt").write_bytes(b"\xff\xfe\x00broken")
    out = tmp_path / "out"
    assert cli.main(["run", str(inputs), "--out", str(out), "-q"]) == 1
    by_id = {r.article_id: r for r in iter_results(out)}
    assert len(by_id) == 6 and by_id["broken"].error is not None and by_id["broken"].error.type == "LoadError"
    assert run_json(out)["load_errors"] == 1 and run_json(out)["ok"] == 5


def test_replay_of_a_folder_without_the_recording_fails_those_articles(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recordings = tmp_path / "rec"
    recordings.mkdir()
    shutil.copy(RECORDED / "settings.json", recordings)
    out = tmp_path / "out"
    assert (
        cli.main(
            ["run", str(SEEDS / "000_2b0579c4498e7e08.txt"), "--out", str(out), "--replay", str(recordings)]
        )
        == 1
    )
    [result] = list(iter_results(out))
    assert result.error is not None and result.error.type == "ReplayError"
    assert "no recorded response for 000_2b0579c4498e7e08" in result.error.message


# --------------------------------------------------------------------------- inputs from outside the drop

SECRET = "root:x:0:0:a line of a file outside the drop"


def every_file_under(folder: Path) -> Iterator[Path]:
    return (p for p in folder.rglob("*") if p.is_file())


def test_a_symlink_out_of_the_drop_is_neither_sent_nor_stored_nor_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = tmp_path / "etc" / "passwd"
    outside.parent.mkdir()
    outside.write_text(SECRET, encoding="utf-8")
    drop = tmp_path / "drop"
    shutil.copytree(SEEDS, drop)
    (drop / "passwd.txt").symlink_to(outside)
    out = tmp_path / "out"
    assert cli.main(["run", str(drop), "--out", str(out), "-q", "--html"]) == 1
    by_id = {r.article_id: r for r in iter_results(out)}
    assert len(by_id) == 6 and {r.status for r in by_id.values()} == {"ok", "error"}
    error = by_id["passwd"].error
    assert error is not None and error.type == "LoadError"
    assert error.message.startswith(f"symlink to outside the input ({os.path.realpath(outside)})")
    assert "--follow-symlinks" in error.message
    for path in every_file_under(out):
        assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in capsys.readouterr().err

    # --follow-symlinks opts in: the file is loaded (and, offline, fails for want of a recording)
    followed = tmp_path / "followed"
    argv = ["run", str(drop / "passwd.txt"), "--out", str(followed), "-q", "--follow-symlinks"]
    assert cli.main(argv) == 1
    [result] = list(iter_results(followed))
    assert result.error is not None and result.error.type == "ReplayError"


def run_cli(argv: list[str], timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """``extractor`` in a child process, which must finish within ``timeout`` (no hang, no crash)."""
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    return subprocess.run(
        [sys.executable, "-m", "extractor", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def test_a_fifo_named_on_the_command_line_does_not_hang_the_run(tmp_path: Path) -> None:
    fifo = tmp_path / "feed.jsonl"
    os.mkfifo(fifo)
    out = tmp_path / "out"
    seed = SEEDS / "000_2b0579c4498e7e08.txt"
    done = run_cli(["run", str(fifo), str(seed), "--out", str(out), "-q"])
    assert done.returncode == 1, done.stderr
    by_source = {r.source: r for r in iter_results(out)}
    assert by_source[str(seed)].status == "ok"
    error = by_source[str(fifo)].error
    assert error is not None and (error.type, error.message) == ("LoadError", "not a regular file (a FIFO)")


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_a_symlink_to_dev_zero_is_a_load_error_not_a_memory_error(tmp_path: Path) -> None:
    zero = tmp_path / "zero.txt"
    zero.symlink_to("/dev/zero")
    out = tmp_path / "out"
    done = run_cli(["run", str(zero), "--out", str(out), "-q", "--follow-symlinks"])
    assert done.returncode == 1 and "MemoryError" not in done.stderr, done.stderr
    [result] = list(iter_results(out))
    assert result.error is not None
    assert result.error.message == "not a regular file (a character device)"


def test_the_input_size_cap_comes_from_flag_or_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s = settings_of("run", "x")
    assert (s.follow_symlinks, s.max_input_bytes) == (False, 20_000_000)
    s = settings_of("run", "x", "--follow-symlinks", "--max-input-bytes", "1000")
    assert (s.follow_symlinks, s.max_input_bytes) == (True, 1000)
    cfg = tmp_path / "x.toml"
    cfg.write_text("[extractor]\nmax_input_bytes = 5000\nfollow_symlinks = true\n", encoding="utf-8")
    s = settings_of("run", "x", "--config", str(cfg))
    assert (s.follow_symlinks, s.max_input_bytes) == (True, 5000)

    big = tmp_path / "in" / "big.txt"
    big.parent.mkdir()
    big.write_text("word " * 400, encoding="utf-8")
    out = tmp_path / "out"
    assert cli.main(["run", str(big.parent), "--out", str(out), "-q", "--max-input-bytes", "1999"]) == 1
    [result] = list(iter_results(out))
    assert result.error is not None and result.error.message == (
        "file is 2,000 bytes, over the input cap of 1,999 bytes (max_input_bytes; raise it with "
        "--max-input-bytes)"
    )
    assert cli.main(["run", str(big.parent), "--out", str(out), "-q", "--max-input-bytes", "0"]) == 2
    assert "max_input_bytes must be positive, got 0" in capsys.readouterr().err


# --------------------------------------------------------------------------- schemas


def test_schemas_check_passes_on_the_repo(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["schemas", "--check"]) == 0


def test_schemas_write_then_check_then_drift(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "schemas"
    assert cli.main(["schemas", "--check", "--out", str(out)]) == 1  # nothing there yet
    assert cli.main(["schemas", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "article_extraction.schema.json",
        "article_result.schema.json",
        "openapi.json",
    ]
    for path in out.iterdir():
        assert path.read_text() == (ROOT / "schemas" / path.name).read_text()
    assert cli.main(["schemas", "--check", "--out", str(out)]) == 0
    capsys.readouterr()

    path = out / "article_result.schema.json"
    schema = json.loads(path.read_text())
    schema["properties"]["article_id"]["type"] = "integer"
    path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
    assert cli.main(["schemas", "--check", "--out", str(out)]) == 1
    assert "schemas out of date: article_result.schema.json" in capsys.readouterr().out


# --------------------------------------------------------------------------- cache


def test_cache_stats_and_clear(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cache_dir = tmp_path / "cache"
    monkeypatch.setenv("EXTRACTOR_CACHE_DIR", str(cache_dir))
    cache = ResponseCache(cache_dir)
    cache.set("k1", {"extraction": {}})
    cache.set("k2", {"extraction": {}})
    cache.close()
    assert cli.main(["cache", "stats"]) == 0
    assert capsys.readouterr().out.startswith("2 cached answer(s), ")
    assert cli.main(["cache", "clear"]) == 0
    assert capsys.readouterr().out == f"removed 2 cached answer(s) from {cache_dir}\n"
    assert cli.main(["cache", "stats", "--cache-dir", str(cache_dir)]) == 0
    assert capsys.readouterr().out.startswith("0 cached answer(s), ")


@pytest.mark.slow
def test_live_runs_fill_and_use_the_cache(
    tmp_path: Path, slow_server: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Against the project's fake server on 127.0.0.1: the second run answers from the cache."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-local-not-a-key")
    monkeypatch.setenv("OPENAI_BASE_URL", slow_server)
    cache_dir = tmp_path / "cache"
    seed = str(SEEDS / "001_7026c964f11f0189.txt")
    assert cli.main(["run", seed, "--out", str(tmp_path / "a"), "--cache-dir", str(cache_dir), "-q"]) == 0
    assert run_json(tmp_path / "a")["http_calls"] == 1
    assert cli.main(["run", seed, "--out", str(tmp_path / "b"), "--cache-dir", str(cache_dir), "-q"]) == 0
    assert run_json(tmp_path / "b")["cache_hits"] == 1 and run_json(tmp_path / "b")["http_calls"] == 0
    assert cli.main(["cache", "stats", "--cache-dir", str(cache_dir)]) == 0
    assert "1 cached answer(s)" in capsys.readouterr().out
    nocache = tmp_path / "nocache"
    assert (
        cli.main(["run", seed, "--out", str(tmp_path / "c"), "--cache-dir", str(nocache), "--no-cache", "-q"])
        == 0
    )
    assert run_json(tmp_path / "c")["cache_hits"] == 0 and run_json(tmp_path / "c")["http_calls"] == 1
    assert not nocache.exists()


# --------------------------------------------------------------------------- fixtures check


def test_fixtures_check_passes_on_the_repo(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["fixtures", "check"]) == 0
    out = capsys.readouterr().out
    assert out.endswith("request(s) checked: 0 stale recording(s), 0 missing\n")
    assert "stale:" not in out and "missing:" not in out


def test_fixtures_check_reports_stale_and_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    copy = tmp_path / "recorded"
    shutil.copytree(RECORDED, copy)
    victim = sorted(p for p in copy.glob("*.json") if p.name != "settings.json")[0]
    article_id = json.loads(victim.read_text(encoding="utf-8"))["article_id"]
    victim.rename(copy / ("f" * 64 + ".json"))
    assert cli.main(["fixtures", "check", "--fixtures", str(copy)]) == 1
    out = capsys.readouterr().out
    assert f"stale: {copy / ('f' * 64 + '.json')}" in out
    assert f"missing: no recording for {article_id} with the current prompt" in out
    assert "1 stale recording(s), 1 missing" in out


# --------------------------------------------------------------------------- Ctrl-C on a live watch


@pytest.fixture
def slow_server() -> Iterator[str]:
    """The project's fake OpenAI-compatible server on 127.0.0.1, 0.3 s per request."""
    import importlib

    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        fs: Any = importlib.import_module("fake_server")
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    manager = fs.run_in_thread(fs.ServerConfig(latency=0.3))
    url = manager.__enter__()
    try:
        yield str(url)
    finally:
        manager.__exit__(None, None, None)


@pytest.mark.slow
def test_ctrl_c_stops_a_watch_cleanly(tmp_path: Path, slow_server: str) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    past = time.time() - 60  # settled long ago
    for i in range(16):
        path = drop / f"w{i:02d}.txt"
        path.write_text(f"Item {i}. The minister said “we will act” on Monday. Leaders met in Paris.\n")
        os.utime(path, (past, past))
    out = tmp_path / "out"
    env = dict(
        os.environ,
        OPENAI_API_KEY="test",
        OPENAI_BASE_URL=slow_server,
        EXTRACTOR_CACHE_DIR=str(tmp_path / "c"),
    )
    command = [sys.executable, "-m", "extractor", "watch", str(drop), "--out", str(out)]
    command += ["--interval", "0.1", "--concurrency", "2", "--no-cache"]
    log_path = tmp_path / "watch.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60  # a liveness bound, generous for a loaded machine
            while (
                not (out / RESULTS_FILE).exists() or len((out / RESULTS_FILE).read_bytes().splitlines()) < 2
            ):
                assert proc.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, "the watch wrote no results in time"
                time.sleep(0.02)
            proc.send_signal(signal.SIGINT)
            code = proc.wait(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    log_text = log_path.read_text()
    assert code == 0, log_text  # Ctrl-C is how a watch ends; every article it took is ok
    assert "stopping after the articles in flight" in log_text and "Traceback" not in log_text
    raw = (out / RESULTS_FILE).read_bytes()
    assert raw.endswith(b"\n")  # no torn line
    results = [ArticleResult.model_validate_json(x) for x in raw.splitlines()]
    ids = [r.article_id for r in results]
    assert len(ids) == len(set(ids)) and 2 <= len(ids) < 16
    assert {r.status for r in results} == {"ok"}
    data = run_json(out)
    assert data["interrupted"] is True and data["articles"] == data["ok"] == len(ids)


@pytest.mark.parametrize(
    ("flags", "config", "message"),
    [
        (["--timeout", "nan"], None, "timeout_s must be a finite number, got nan"),
        (["--timeout", "inf"], None, "timeout_s must be a finite number, got inf"),
        (["--model", ""], None, "model must not be empty"),
        (["--base-url", "not-a-url"], None, "base_url must be an http:// or https:// URL with a host"),
        ([], b"\x00\x01\x02\x03binary", "is a binary file (NUL byte at offset 0), not TOML"),
        ([], b'model = "caf\xe9"\n', "is not UTF-8 text: byte 0xe9 at offset 12"),
        ([], b'model = "x"\n[extractor]\nrpm = 5\n', "keys outside [extractor]: model"),
    ],
    ids=[
        "timeout-nan",
        "timeout-inf",
        "empty-model",
        "base-url",
        "binary-config",
        "latin-1-config",
        "stray-key",
    ],
)
def test_bad_settings_stop_every_command_with_one_line(
    flags: list[str], config: bytes | None, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if config is not None:
        (tmp_path / "extractor.toml").write_bytes(config)
        flags = [*flags, "--config", str(tmp_path / "extractor.toml")]
    for command in (["run", str(SEEDS), "--out", str(tmp_path / "out")], ["cache", "stats"]):
        assert cli.main([*command, *flags]) == 2
        err = capsys.readouterr().err
        assert err.startswith("extractor: configuration error: ") and message in err, err
        assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_a_run_stopped_by_sigterm_exits_143(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import extractor.batch

    def stopped_run(*_: Any, **__: Any) -> Any:
        return extractor.batch.RunSummary(articles=5, ok=2, interrupted=True, stopped_by="SIGTERM")

    monkeypatch.setattr(extractor.batch, "run_batch", stopped_run)
    assert cli.main(["run", str(SEEDS), "--out", str(tmp_path / "out"), "-q"]) == 143
    assert "stopped by SIGTERM; run the same command again to finish the rest" in capsys.readouterr().err


@pytest.mark.slow
def test_run_and_cache_clear_recover_from_a_corrupt_cache(
    tmp_path: Path, slow_server: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-local-not-a-key")
    monkeypatch.setenv("OPENAI_BASE_URL", slow_server)
    cache_dir = tmp_path / "cache"
    monkeypatch.setenv("EXTRACTOR_CACHE_DIR", str(cache_dir))
    seed = str(SEEDS / "001_7026c964f11f0189.txt")
    assert cli.main(["run", seed, "--out", str(tmp_path / "a"), "-q"]) == 0
    (cache_dir / "cache.db").write_bytes(b"\x00garbage, not a database" * 500)
    capsys.readouterr()

    assert cli.main(["run", seed, "--out", str(tmp_path / "b"), "-q"]) == 0
    err = capsys.readouterr().err
    assert err.count("extractor: warning: the response cache") == 1, err
    assert "moved it aside to " + str(cache_dir / "corrupt-") in err
    assert run_json(tmp_path / "b")["http_calls"] == 1  # the answer was lost with the cache: paid again
    assert cli.main(["run", seed, "--out", str(tmp_path / "c"), "-q"]) == 0
    assert run_json(tmp_path / "c")["cache_hits"] == 1 and "warning" not in capsys.readouterr().err

    (cache_dir / "cache.db").write_bytes(b"\x00garbage" * 500)
    assert cli.main(["cache", "stats"]) == 0
    captured = capsys.readouterr()
    assert captured.err.count("extractor: warning: the response cache") == 1
    assert "0 cached answer(s)" in captured.out and "2 corrupt cache(s) set aside" in captured.out
    assert cli.main(["cache", "clear"]) == 0
    assert capsys.readouterr().out == (
        f"removed 0 cached answer(s) and 2 corrupt cache(s) set aside from {cache_dir}\n"
    )
    assert sorted(p.name for p in cache_dir.iterdir() if p.name.startswith("corrupt-")) == []


def test_prompt_show_prints_the_exact_messages_and_their_tokens(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from extractor.models import Article
    from extractor.prompts import load_prompts

    article = tmp_path / "a.txt"
    article.write_text("Oslo — “We will not send ships,” Kari Berg said.\n", encoding="utf-8")
    assert (
        cli.main(["prompt", "show", str(article), "--max-events", "4", "--output-language", "Norwegian"]) == 0
    )
    out = capsys.readouterr().out
    expected = load_prompts().render(
        Article.from_text(article.read_text(encoding="utf-8").strip(), id="a"),
        max_events=4,
        output_language="Norwegian",
    )
    assert expected[0]["content"] in out and "at most\n    4." in out and "are in Norwegian" in out
    assert "<article_text>\nOslo — “We will not send ships,” Kari Berg said.\n" in out
    head = next(line for line in out.splitlines() if line.startswith("## a request 1"))
    fixed = int(head.split("fixed prompt ~")[1].split(",")[0])
    assert fixed < 2500 and int(head.split("~")[1].split(" ")[0]) > fixed
    assert cli.main(["prompt", "show", str(tmp_path / "none.txt")]) == 2
