"""The settings' flags, generated from the fields of ``extractor.config.Settings`` and
``ServiceSettings`` (flag, type, help, choices), and the settings, extractor and replay a command's flags
make."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TextIO, TypeVar, get_args, get_origin

from extractor.cli import common
from extractor.errors import redact

if TYPE_CHECKING:
    from extractor.config import Settings, SettingsBase
    from extractor.pipeline import Extractor

    S = TypeVar("S", bound=SettingsBase)

# Credentials of the settings this command loaded (a config file's key too): taken out of what it prints.
SECRETS: set[str] = set()


class CommandParser(argparse.ArgumentParser):
    """A command's parser; with ``settings`` (names of settings classes in ``extractor.config``) it adds
    their flags when it is first used, so that ``extractor --help`` and the other commands never import
    the settings models (pydantic-settings)."""

    def __init__(self, *args: Any, settings: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._settings_pending = tuple(settings)

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        if self._settings_pending:
            from extractor import config

            pending, self._settings_pending = self._settings_pending, ()
            add_settings_flags(self, *(getattr(config, name) for name in pending))
        return super().parse_known_args(args, namespace)


def add_settings_flags(parser: argparse.ArgumentParser, *classes: type[SettingsBase]) -> None:
    """``--config`` and, in a group per settings class, its flags (``_add_flags``)."""
    for i, settings_cls in enumerate(classes):
        group = parser.add_argument_group(settings_cls.flags_title)
        if i == 0:
            group.add_argument(
                "--config",
                metavar="FILE",
                help="TOML config file (default: $EXTRACTOR_CONFIG or ./extractor.toml)",
            )
        _add_flags(group, settings_cls)


def _add_flags(group: argparse._ArgumentGroup, settings_cls: type[SettingsBase]) -> None:
    """One flag per setting that names one (the field's metadata); each flag's destination is the field's
    name, None when not given."""
    from extractor.config import env_name, field_type, flag_name, metavar

    for name, info in settings_cls.model_fields.items():
        flag = flag_name(name, settings_cls)
        if flag is None:
            continue
        kind = field_type(name, settings_cls)
        notes = [f"${var}" for var in [env_name(name, settings_cls)] if var]
        default = info.get_default(call_default_factory=False)
        if default is not None and not isinstance(default, bool) and info.default_factory is None:
            notes.append(f"default {default}")
        text = (info.description or "") + (f" ({', '.join(notes)})" if notes else "")
        if kind is bool:  # a switch that turns the default around: --no-cache, --follow-symlinks
            text = f"do not {text}" if default else text
            group.add_argument(flag, dest=name, action="store_const", const=not default, help=text)
        elif get_origin(kind) is Literal:
            group.add_argument(flag, dest=name, choices=list(get_args(kind)), help=text)
        else:
            number: Any = kind if kind in (int, float) else None  # other settings take the text
            shown = metavar(name, settings_cls)
            group.add_argument(flag, dest=name, type=number, metavar=shown, help=text)


def load_settings(args: argparse.Namespace, **extra: Any) -> Settings:
    """The settings of a command: its flags over env vars over the config file; ``extra`` over all."""
    from extractor.config import Settings

    return load_declared(args, Settings, **extra)


def load_declared(args: argparse.Namespace, settings_cls: type[S], **extra: Any) -> S:
    """The ``settings_cls`` settings of a command: its flags over env vars over the config file;
    ``extra`` over all. Their credentials are kept out of whatever the command prints."""
    overrides = {name: getattr(args, name, None) for name in settings_cls.model_fields}
    settings = settings_cls.load(getattr(args, "config", None), **{**overrides, **extra})
    SECRETS.update(settings.secrets)
    return settings


def _given(args: argparse.Namespace) -> set[str]:
    return {name for name, value in vars(args).items() if value is not None}


def replay_settings(args: argparse.Namespace, settings: Settings, replay: Path) -> Settings:
    """Settings for replaying ``replay``: what the recordings were made with, unless flags say otherwise."""
    from extractor.pipeline import replay_settings as recorded

    return recorded(settings, replay, keep=_given(args))


def extractor_for(args: argparse.Namespace, out: TextIO | None = None) -> Extractor:
    """The extractor of a command: live with an API key, else replaying ``--replay`` or the checkout's
    recorded fixtures (said on ``out``, default stderr)."""
    from extractor.pipeline import open_extractor

    replay = getattr(args, "replay", None)
    extractor, fell_back = open_extractor(
        load_settings(args), replay, fallback=common.DEFAULT_FIXTURES, keep=_given(args)
    )
    if fell_back is not None:
        note = f"no OPENAI_API_KEY set: replaying recorded responses from {common.shown(fell_back)} (offline)"
        print(note, file=out or sys.stderr, flush=True)
    return extractor


def error_line(exc: BaseException) -> str:
    """An error's message on one line, without any credential the environment or settings hold."""
    from extractor.config import ServiceSettings, env_name, url_secrets

    token = os.environ.get(env_name("api_token", ServiceSettings) or "")
    known = (os.environ.get("OPENAI_API_KEY"), token, *url_secrets(os.environ.get("OPENAI_BASE_URL")))
    return redact(" ".join(str(exc).split()), *known, *SECRETS)
