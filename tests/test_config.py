"""Settings: defaults < config file < environment < flags, and clear errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from extractor.config import Settings, env_name, flag_name
from extractor.errors import ConfigError


def test_precedence(tmp_path: Path) -> None:
    cfg = tmp_path / "x.toml"
    cfg.write_text('[extractor]\nmodel = "from-file"\nrpm = 100\nmax_tokens = 2000\n', encoding="utf-8")
    env = {"EXTRACTOR_MODEL": "from-env", "EXTRACTOR_RPM": "200", "OPENAI_API_KEY": "k"}
    s = Settings.load(cfg, env=env, rpm=300)
    assert (s.model, s.rpm, s.max_tokens, s.api_key) == ("from-env", 300, 2000, "k")
    assert Settings.load(cfg, env={}).model == "from-file"


def test_env_config_file_and_prices(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('model = "mine"\n[prices]\nmine = [1.0, 2.0]\n', encoding="utf-8")
    s = Settings.load(env={"EXTRACTOR_CONFIG": str(cfg)})
    assert s.price() == (1.0, 2.0)
    assert Settings(model="gpt-4o-mini-2024-07-18").price() == Settings(model="gpt-4o-mini").price()
    assert Settings(model="unknown-local").price() is None


def test_api_key_is_not_in_repr() -> None:
    assert "sk-secret" not in repr(Settings(api_key="sk-secret"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "xml"}, "unknown mode"),
        ({"temperature": 3.0}, "temperature"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"reasks": 9}, "reasks"),
        ({"rpm": -1}, "rpm"),
        ({"chunk_chars": 100, "chunk_overlap_chars": 100}, "chunk_overlap_chars"),
    ],
)
def test_invalid_settings(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings(**kwargs)  # type: ignore[arg-type]


def test_bad_config_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        Settings.load(tmp_path / "missing.toml", env={})
    bad = tmp_path / "bad.toml"
    bad.write_text("model = ", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        Settings.load(bad, env={})
    unknown = tmp_path / "u.toml"
    unknown.write_text("colour = 'blue'\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown setting"):
        Settings.load(unknown, env={})
    with pytest.raises(ConfigError, match="setting rpm"):
        Settings.load(env={"EXTRACTOR_RPM": "lots"})


# --------------------------------------------------------------------------- checked up front


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"timeout_s": float("nan")}, "timeout_s must be a finite number, got nan"),
        ({"timeout_s": float("inf")}, "timeout_s must be a finite number, got inf"),
        ({"temperature": float("nan")}, "temperature must be a finite number, got nan"),
        ({"transport_max_wait_s": float("nan")}, "transport_max_wait_s must be a finite number"),
        ({"transport_max_wait_s": -1.0}, "transport_max_wait_s must be >= 0"),
        ({"prices": {"m": (float("nan"), 1.0)}}, "prices: m must be two finite numbers >= 0"),
        ({"prices": {"m": (1.0, -2.0)}}, "prices: m must be two finite numbers >= 0"),
        ({"model": ""}, "model must not be empty"),
        ({"model": "   "}, "model must not be empty"),
        ({"model": "gpt-4o\n"}, "model has spaces or control characters at its ends"),
        ({"base_url": ""}, "base_url must not be empty"),
        ({"base_url": "not-a-url"}, "base_url must be an http:// or https:// URL with a host"),
        ({"base_url": "localhost:8000/v1"}, "did you mean http://localhost:8000/v1?"),
        ({"base_url": "ftp://files.example/v1"}, "base_url must be an http:// or https:// URL"),
        ({"base_url": "http://"}, "base_url must be an http:// or https:// URL with a host"),
        ({"base_url": "http:///v1"}, "with a host"),
        ({"base_url": "http://host:port/v1"}, "port"),
        ({"base_url": "http://local host/v1"}, "spaces or control characters"),
        ({"api_key": "sk-abc123\n"}, "api_key has spaces or control characters (a trailing newline?)"),
    ],
)
def test_settings_are_checked_up_front(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as caught:
        Settings(**kwargs)  # type: ignore[arg-type]
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:8000/v1",
        "https://res.openai.azure.com/openai/v1/",
        "http://[::1]:11434/v1",
        "http://user:pw@proxy.internal/v1",
        "https://api.example/v1?api-version=2024-10-21",
    ],
)
def test_good_base_urls_pass(url: str) -> None:
    assert Settings(base_url=url).base_url == url


def test_a_bad_base_url_message_shows_no_credential() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings(base_url="sk-proj-0123456789abcdefghij")  # a key pasted into the wrong setting
    assert "0123456789abcdefghij" not in str(caught.value) and "[REDACTED]" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        Settings(base_url="ftp://me:hunter2@host/v1")
    assert "hunter2" not in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        Settings(api_key="sk-proj-0123456789abcdefghij ")
    assert "0123456789" not in str(caught.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'model = "caf\xe9"\n', "is not UTF-8 text: byte 0xe9 at offset 12 (save it as UTF-8)"),
        ("model = 'x'\n".encode("utf-16"), "is not UTF-8 text: byte 0xff at offset 0 (save it as UTF-8)"),
        (b"\x7fELF\x02\x01\x01\x00\x00\x00", "is a binary file (NUL byte at offset 7), not TOML"),
        (b'model = "x"\n\x00\x00', "is a binary file (NUL byte at offset 12), not TOML"),
    ],
    ids=["latin-1", "utf-16", "binary", "nul"],
)
def test_a_config_file_that_is_not_text_names_the_byte(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "extractor.toml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=re.escape(message)) as caught:
        Settings.load(path, env={})
    assert str(caught.value).startswith(f"config file {path} ")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            'model = "x"\n[extractor]\nrpm = 5\n',
            "keys outside [extractor]: model (move them into [extractor])",
        ),
        ("[extractor]\nrpm = 5\n[server]\nport = 1\n", "keys outside [extractor]: server (move them into"),
        ("a = 1\nb = 2\n[extractor]\n[c]\n", "keys outside [extractor]: a, b, c"),
        ("[extractor]\ncolour = 'blue'\n", "unknown setting(s) in [extractor]: colour"),
        ("rpm = 5\n[server]\nport = 1\n", "unknown setting(s): server"),
        ("extractor = 5\n", "[extractor] must be a table"),
    ],
)
def test_config_keys_outside_the_table_are_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "extractor.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(message)) as caught:
        Settings.load(path, env={})
    assert str(caught.value).startswith(f"config file {path}")


def test_a_top_level_only_config_file_still_works(tmp_path: Path) -> None:
    path = tmp_path / "extractor.toml"
    path.write_text('model = "mine"\nrpm = 5\n[prices]\nmine = [1.0, 2.0]\n', encoding="utf-8")
    settings = Settings.load(path, env={})
    assert (settings.model, settings.rpm, settings.price()) == ("mine", 5, (1.0, 2.0))


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("model = 5", "setting model: expected a string, got 5"),
        ("max_tokens = 3.5", "setting max_tokens: expected a whole number, got 3.5"),
        ("concurrency = true", "setting concurrency: expected a whole number, got True"),
        ('use_cache = "maybe"', "setting use_cache: expected true or false, got 'maybe'"),
        ("timeout_s = true", "setting timeout_s: expected a number, got True"),
        ('timeout_s = "nan"', "timeout_s must be a finite number, got nan"),
    ],
)
def test_config_values_of_the_wrong_type_are_named(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "extractor.toml"
    path.write_text(f"[extractor]\n{line}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(message)):
        Settings.load(path, env={})


def test_env_and_flag_values_still_coerce(tmp_path: Path) -> None:
    env = {"EXTRACTOR_CONCURRENCY": "8", "EXTRACTOR_RPM": "60"}
    settings = Settings.load(env=env, max_tokens=2000, use_cache="0", timeout_s="30")
    assert (settings.concurrency, settings.rpm, settings.max_tokens, settings.use_cache) == (
        8,
        60,
        2000,
        False,
    )
    assert settings.timeout_s == 30.0


def test_settings_are_immutable_and_copies_are_checked() -> None:
    settings = Settings(model="m")
    with pytest.raises(ValidationError, match="frozen"):
        settings.model = "other"  # type: ignore[misc]
    assert settings.replace(rpm=60, tpm=None).rpm == 60 and settings.model == "m"
    with pytest.raises(ConfigError, match="temperature must be between 0 and 2"):
        settings.replace(temperature=5.0)
    assert settings.model_copy(update={"rpm": None}).rpm is None


def test_each_setting_declares_its_env_variable_and_flag_once() -> None:
    assert env_name("api_key") == "OPENAI_API_KEY" and env_name("model") == "EXTRACTOR_MODEL"
    assert env_name("temperature") is None  # not read from the environment, as before
    assert (flag_name("timeout_s"), flag_name("max_events"), flag_name("prices")) == (
        "--timeout",
        "--max-events",
        None,
    )
    env = dict.fromkeys(("EXTRACTOR_RPM", "EXTRACTOR_TEMPERATURE", "extractor_tpm"), "7")
    settings = Settings.load(env=env)
    assert (settings.rpm, settings.temperature, settings.tpm) == (7, 0.0, None)
    assert Settings.load(env={"EXTRACTOR_MODEL": ""}).model == "gpt-4o-mini"  # empty = unset


def test_settings_made_with_keywords_ignore_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXTRACTOR_MODEL", "from-env")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    assert (Settings().model, Settings().api_key) == ("gpt-4o-mini", None)
    assert (Settings.load().model, Settings.load().api_key) == ("from-env", "sk-env")
