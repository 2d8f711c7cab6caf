"""Settings and ServiceSettings: defaults < config file < environment < flags, and clear errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from extractor.config import ServiceSettings, Settings, env_name, field_type, flag_name
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
        ({"batch_poll_timeout_s": float("inf")}, "batch_poll_timeout_s must be a finite number, got inf"),
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
    ("settings_cls", "text", "message"),
    [
        (
            Settings,
            'model = "x"\n[extractor]\nrpm = 5\n',
            "keys outside [extractor]: model (move them into [extractor])",
        ),
        (
            Settings,
            "[extractor]\nrpm = 5\n[server]\nport = 1\n",
            "keys outside [extractor]: server (move them into",
        ),
        (Settings, "a = 1\nb = 2\n[extractor]\n[c]\n", "keys outside [extractor]: a, b, c"),
        (Settings, "[extractor]\ncolour = 'blue'\n", "unknown setting(s) in [extractor]: colour"),
        (Settings, "rpm = 5\n[server]\nport = 1\n", "unknown setting(s): server"),
        (Settings, "extractor = 5\n", "[extractor] must be a table"),
        (ServiceSettings, "[serve]\nprot = 1\n", "unknown setting(s) in [serve]: prot; did you mean port?"),
        (ServiceSettings, "[serve]\nmax_bodymb = 1\n", "in [serve]: max_bodymb; did you mean max_body_mb?"),
        (ServiceSettings, "[serve]\nmodel = 'x'\n", "unknown setting(s) in [serve]: model"),
        (ServiceSettings, "serve = 5\n", "[serve] must be a table"),
        (Settings, "rpm = 5\nserve = 5\n", "[serve] must be a table"),
        (ServiceSettings, "[extractor]\n[serve]\nport = 1\n[other]\n", "keys outside [extractor]: other"),
    ],
)
def test_config_keys_outside_the_tables_are_named(
    settings_cls: type[Settings | ServiceSettings], tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "extractor.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(message)) as caught:
        settings_cls.load(path, env={})
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
    assert (
        env_name("api_key", Settings) == "OPENAI_API_KEY" and env_name("model", Settings) == "EXTRACTOR_MODEL"
    )
    assert env_name("temperature", Settings) is None  # not read from the environment, as before
    assert (
        flag_name("timeout_s", Settings),
        flag_name("max_events", Settings),
        flag_name("prices", Settings),
    ) == (
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


# --------------------------------------------------------------------------- the service's settings

TOKEN = "tok-0123456789abcdef-secret"

# Each service setting: three values as text (for the config file, the environment, a flag) and the
# values the setting then holds.
SERVICE_VALUES: dict[str, tuple[tuple[str, str, str], tuple[object, object, object]]] = {
    "data_dir": (
        ("file-jobs", "env-jobs", "flag-jobs"),
        (Path("file-jobs"), Path("env-jobs"), Path("flag-jobs")),
    ),
    "host": (("127.0.0.2", "::1", "0.0.0.0"), ("127.0.0.2", "::1", "0.0.0.0")),
    "port": (("8001", "8002", "0"), (8001, 8002, 0)),
    "api_token": ((TOKEN + "1", TOKEN + "2", TOKEN + "3"), (TOKEN + "1", TOKEN + "2", TOKEN + "3")),
    "allow_paths": (("file-in", "env-in", "flag-in"), (Path("file-in"), Path("env-in"), Path("flag-in"))),
    "max_body_mb": (("1.5", "2", "0.01"), (1.5, 2.0, 0.01)),
    "max_article_chars": (("500", "600", "700"), (500, 600, 700)),
    "max_queued_jobs": (("1", "2", "3"), (1, 2, 3)),
    "max_pending": (("4", "5", "6"), (4, 5, 6)),
    "job_workers": (("2", "3", "4"), (2, 3, 4)),
    "shutdown_timeout_s": (("1.5", "2", "3"), (1.5, 2.0, 3.0)),
    "job_retention": (("7d", "12h", "90m"), ("7d", "12h", "90m")),
}


def _toml(name: str, text: str) -> str:
    """``text`` as the TOML value of the service setting ``name``: a number for a numeric setting when it
    reads as one, else a string."""
    numeric = field_type(name, ServiceSettings) in (int, float) and re.fullmatch(r"-?[0-9.]+|nan", text)
    return text if numeric else json.dumps(text)


def test_every_service_setting_is_in_the_table() -> None:
    assert set(SERVICE_VALUES) == set(ServiceSettings.model_fields)


@pytest.mark.parametrize("name", list(SERVICE_VALUES))
def test_each_service_setting_from_the_file_env_and_flags_in_that_order(name: str, tmp_path: Path) -> None:
    (in_file, in_env, in_flag), (from_file, from_env, from_flag) = SERVICE_VALUES[name]
    var = env_name(name, ServiceSettings)
    assert var == f"EXTRACTOR_{name.upper()}"
    path = tmp_path / "extractor.toml"
    path.write_text(f"[extractor]\nmodel = 'm'\n[serve]\n{name} = {_toml(name, in_file)}\n", encoding="utf-8")
    default = getattr(ServiceSettings(), name)
    assert default not in (from_file, from_env, from_flag)
    assert getattr(ServiceSettings.load(env={}), name) == default
    assert getattr(ServiceSettings.load(path, env={}), name) == from_file
    assert getattr(ServiceSettings.load(path, env={var: in_env}), name) == from_env
    assert getattr(ServiceSettings.load(path, env={var: in_env}, **{name: in_flag}), name) == from_flag
    assert getattr(ServiceSettings.load(env={var: in_env, "EXTRACTOR_CONFIG": str(path)}), name) == from_env
    assert Settings.load(path, env={}).model == "m"  # [serve] beside [extractor] is no stray key


def test_the_service_settings_defaults_and_derived_values() -> None:
    service = ServiceSettings()
    assert (service.host, service.port, service.api_token, service.allow_paths) == (
        "127.0.0.1",
        8000,
        None,
        None,
    )
    assert service.data_dir.name == "service" and service.data_dir.parent.name == "extractor"
    assert (service.max_body_bytes, service.job_retention_s, service.secrets) == (32 * 1024 * 1024, None, ())
    assert ServiceSettings(max_body_mb=0.5, job_retention="1h30m").max_body_bytes == 512 * 1024
    assert ServiceSettings(job_retention="1h30m").job_retention_s == 5400
    assert ServiceSettings(job_retention="3600").job_retention_s == 3600
    assert ServiceSettings(job_retention="never").job_retention_s is None
    assert (flag_name("api_token", ServiceSettings), flag_name("shutdown_timeout_s", ServiceSettings)) == (
        None,
        "--shutdown-timeout",
    )


# A bad value of each service setting (as text, for the environment and a flag; as TOML) and what the
# error says.
BAD_SERVICE_VALUES = [
    ("host", "local\thost", "host has spaces or control characters"),
    ("port", "65536", "port must be between 0 and 65535"),
    ("port", "-1", "port must be between 0 and 65535"),
    ("port", "http", "setting port: cannot use 'http'"),
    ("api_token", TOKEN + "\n", "api_token has spaces or control characters (a trailing newline?); check "),
    ("max_body_mb", "0", "max_body_mb must be positive, got 0.0"),
    ("max_article_chars", "-5", "max_article_chars must be positive, got -5"),
    ("max_queued_jobs", "0", "max_queued_jobs must be positive, got 0"),
    ("max_pending", "0", "max_pending must be positive, got 0"),
    ("job_workers", "0", "job_workers must be positive, got 0"),
    ("shutdown_timeout_s", "nan", "shutdown_timeout_s must be a finite number, got nan"),
    ("shutdown_timeout_s", "-1", "shutdown_timeout_s must be positive, got -1.0"),
    ("job_retention", "soon", "job_retention must be a positive duration such as 7d, 12h or 90m"),
    ("job_retention", "0", "job_retention must be a positive duration"),
    ("job_retention", "-1h", "job_retention must be a positive duration"),
]


@pytest.mark.parametrize(("name", "text", "message"), BAD_SERVICE_VALUES)
def test_a_bad_service_value_from_any_source_is_one_error_naming_it(
    name: str, text: str, message: str, tmp_path: Path
) -> None:
    path = tmp_path / "extractor.toml"
    path.write_text(f"[serve]\n{name} = {_toml(name, text)}\n", encoding="utf-8")
    attempts = {
        "file": lambda: ServiceSettings.load(path, env={}),
        "env": lambda: ServiceSettings.load(env={env_name(name, ServiceSettings) or "": text}),
        "flag": lambda: ServiceSettings.load(env={}, **{name: text}),
    }
    for source, attempt in attempts.items():
        with pytest.raises(ConfigError) as caught:
            attempt()
        error = str(caught.value)
        assert name in error and "\n" not in error and TOKEN not in error, (source, error)
        if source != "file":  # a file's value of the wrong type is named as such ("expected a number")
            assert message in error, (source, error)


def test_the_api_token_is_never_shown(tmp_path: Path) -> None:
    service = ServiceSettings(api_token=TOKEN)
    assert TOKEN not in repr(service) and TOKEN not in str(service) and service.secrets == (TOKEN,)
    assert "api_token" not in repr(service)
    path = tmp_path / "extractor.toml"
    path.write_text(f"[serve]\napi_token = [{json.dumps(TOKEN)}]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape("setting api_token: expected a string, got (not shown)")):
        ServiceSettings.load(path, env={})
    for bad in (TOKEN + " ", " " + TOKEN, TOKEN[:8] + "\x00" + TOKEN[8:]):
        with pytest.raises(ConfigError) as caught:
            ServiceSettings.load(env={"EXTRACTOR_API_TOKEN": bad})
        assert TOKEN[:8] not in str(caught.value) and TOKEN[8:] not in str(caught.value)
        assert "check EXTRACTOR_API_TOKEN (the value itself is not shown)" in str(caught.value)


def test_a_serve_table_beside_top_level_settings(tmp_path: Path) -> None:
    path = tmp_path / "extractor.toml"
    path.write_text('model = "mine"\nrpm = 5\n[serve]\nport = 9001\njob_retention = "7d"\n', encoding="utf-8")
    settings, service = Settings.load(path, env={}), ServiceSettings.load(path, env={})
    assert (settings.model, settings.rpm, service.port, service.job_retention_s) == (
        "mine",
        5,
        9001,
        7 * 86400,
    )
    assert (
        ServiceSettings.load(tmp_path / "extractor.toml", env={}, port=None).port == 9001
    )  # None: not given
    mode = tmp_path / "mode.toml"
    mode.write_text('mode = "xml"\n[serve]\nport = 1\n', encoding="utf-8")
    with pytest.raises(
        ConfigError, match=re.escape(f"config file {mode}: unknown mode 'xml'; choose one of")
    ):
        Settings.load(mode, env={})
