"""Settings: model, endpoint, mode, limits and cache dir (``Settings``), and how ``extractor serve``
listens and what it accepts (``ServiceSettings``) — from defaults < config file < env < flags.

Both classes (pydantic-settings, ``SettingsBase``) declare each setting once: its type, default, help
text, the environment variable it is read from (``OPENAI_API_KEY``, ``EXTRACTOR_MODEL``,
``EXTRACTOR_PORT``, ...: ``env_name``) and its command-line flag (``flag_name``; the CLI generates its
flags from these). ``load()`` reads, each over the one before: the defaults, the config file, the
environment variables (an empty one counts as unset), the flags. ``EXTRACTOR_CONFIG`` names a TOML
config file (default ``./extractor.toml`` when present). It holds ``Settings``' keys under
``[extractor]`` (then nothing but ``[serve]`` may be outside it) or all at top level (then ``[serve]``
is the one table allowed beside them), and ``ServiceSettings``' keys under ``[serve]``. Every value is
checked when the settings are made: a bad one is one ConfigError line naming it (and the file, and the
byte for a file that is not UTF-8 text); a secret (``api_key``, ``api_token``) is never shown.

The package: ``base`` (``SettingsBase``, the sources, coercion and shared checks), ``settings``
(``Settings``, ``answer_settings``, URL scrubbing) and ``service`` (``ServiceSettings``).
"""

from __future__ import annotations

from extractor.config.base import SettingsBase, env_name, field_type, flag_name, metavar
from extractor.config.service import ServiceSettings
from extractor.config.settings import (
    DEFAULT_MAX_INPUT_BYTES,
    DEFAULT_PRICES,
    Mode,
    Settings,
    answer_settings,
    scrub_url,
    url_secrets,
)

__all__ = [
    "DEFAULT_MAX_INPUT_BYTES",
    "DEFAULT_PRICES",
    "Mode",
    "ServiceSettings",
    "Settings",
    "SettingsBase",
    "answer_settings",
    "env_name",
    "field_type",
    "flag_name",
    "metavar",
    "scrub_url",
    "url_secrets",
]
