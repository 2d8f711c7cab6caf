"""Settings: defaults < config file < environment < flags, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from extractor.config import Settings
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
