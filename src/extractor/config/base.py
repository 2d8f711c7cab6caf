"""What both settings classes share (``SettingsBase``): fields declared with ``_setting`` (default, help,
env variable, flag), the sources ``load()`` reads (config file < environment < keyword values), and the
coercion and checks that make every bad value one ConfigError naming it."""

from __future__ import annotations

import codecs
import difflib
import math
import os
import tomllib
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from pathlib import Path
from types import UnionType
from typing import Any, ClassVar, Literal, Self, Union, get_args, get_origin

from pydantic import Field, JsonValue, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from extractor.errors import ConfigError


def _setting(
    default: Any = PydanticUndefined,
    help: str | None = None,
    *,
    env: str | bool = False,
    flag: str | bool = False,
    default_factory: Callable[[], Any] | None = None,
    repr: bool = True,
    metavar: str | None = None,
) -> Any:
    """A field of a settings class: its default, its help text, the environment variable it is read from
    (``env``: True for ``EXTRACTOR_FIELD_NAME``, or the variable itself), its command-line flag (``flag``:
    True for ``--field-name``, or the flag itself) and the flag's placeholder in the help (``metavar``;
    default the field's name in capitals)."""
    extra: dict[str, JsonValue] = {"env": env, "flag": flag, "metavar": metavar}
    if default_factory is not None:
        return Field(default_factory=default_factory, description=help, json_schema_extra=extra, repr=repr)
    return Field(default, description=help, json_schema_extra=extra, repr=repr)


class SettingsBase(BaseSettings):
    """What ``Settings`` and ``ServiceSettings`` share: fields declared with ``_setting``, every value
    checked when made (one ConfigError naming the first bad one), and ``load()``. ``Cls(...)`` takes
    keyword values only; ``Cls.load()`` reads defaults < config file < environment < keyword overrides
    (the command's flags)."""

    model_config = SettingsConfigDict(frozen=True, extra="forbid", validate_default=False)

    # The config file's table of these settings ("extractor": [extractor] or the top level), and the
    # title of their flags in a command's help.
    config_table: ClassVar[str] = "extractor"
    flags_title: ClassVar[str] = "settings"

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:  # what _coerce and _check leave to pydantic: one line, named
            error = exc.errors()[0]
            name = ".".join(str(part) for part in error["loc"]) or "settings"
            raise ConfigError(f"setting {name}: {error['msg']}") from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword values only, or within ``load()``: keyword values > environment > config file."""
        loading = _LOADING.get()
        if loading is None:
            return (init_settings,)
        env, path = loading
        return (init_settings, _EnvSource(cls, env), _FileSource(cls, path))

    @model_validator(mode="before")
    @classmethod
    def _coerce_values(cls, values: Any) -> Any:
        return _coerce(dict(values), cls)

    @model_validator(mode="after")
    def _check_values(self) -> Self:
        self._check()
        return self

    def _check(self) -> None:
        """Every value's range and shape, one ConfigError naming the first bad one (a subclass checks its
        own after these)."""
        for name in type(self).model_fields:
            value = getattr(self, name)
            kind = field_type(name, type(self))
            if kind is float and isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"{name} must be a finite number, got {value}")

    @property
    def secrets(self) -> tuple[str, ...]:
        """The credentials these settings hold (the fields kept out of the repr): what
        ``extractor.errors.redact`` must take out of any message."""
        found = (getattr(self, name) for name, info in type(self).model_fields.items() if not info.repr)
        return tuple(secret for secret in found if secret)

    def replace(self, **changes: Any) -> Self:
        """A checked copy with some fields changed (None values are ignored; ``model_copy(update=...)``
        sets None too, unchecked)."""
        return type(self)(**{**dict(self), **{k: v for k, v in changes.items() if v is not None}})

    @classmethod
    def load(
        cls, config_file: str | Path | None = None, env: Mapping[str, str] | None = None, **overrides: Any
    ) -> Self:
        """Defaults, then the config file, then environment variables, then ``overrides`` (flags; None
        values are ignored). The file is ``config_file``, else ``$EXTRACTOR_CONFIG``, else
        ``./extractor.toml`` when present."""
        env = os.environ if env is None else env
        path = config_file or env.get("EXTRACTOR_CONFIG") or None
        if path is None and Path("extractor.toml").is_file():
            path = "extractor.toml"
        token = _LOADING.set((env, None if path is None else Path(path)))
        try:
            return cls(**{k: v for k, v in overrides.items() if v is not None})
        finally:
            _LOADING.reset(token)


# The environment and config file of the load() in progress (None: keyword values only).
_LOADING: ContextVar[tuple[Mapping[str, str], Path | None] | None] = ContextVar("_LOADING", default=None)


def env_name(name: str, settings_cls: type[SettingsBase]) -> str | None:
    """The environment variable the setting ``name`` of ``settings_cls`` is read from, if any."""
    var = _extra(name, settings_cls).get("env")
    return f"EXTRACTOR_{name.upper()}" if var is True else var or None


def flag_name(name: str, settings_cls: type[SettingsBase]) -> str | None:
    """The command-line flag of the setting ``name`` of ``settings_cls``, if it has one."""
    flag = _extra(name, settings_cls).get("flag")
    return f"--{name.replace('_', '-')}" if flag is True else flag or None


def metavar(name: str, settings_cls: type[SettingsBase]) -> str:
    """The placeholder of the setting's flag value in the help."""
    return _extra(name, settings_cls).get("metavar") or name.upper()


def field_type(name: str, settings_cls: type[SettingsBase]) -> Any:
    """The declared type of the setting ``name`` of ``settings_cls``, without its ``| None``."""
    annotation = settings_cls.model_fields[name].annotation
    if get_origin(annotation) in (Union, UnionType):
        annotation = next(a for a in get_args(annotation) if a is not type(None))
    return annotation


def _extra(name: str, settings_cls: type[SettingsBase]) -> dict[str, Any]:
    extra = settings_cls.model_fields[name].json_schema_extra
    return dict(extra) if isinstance(extra, dict) else {}


class _EnvSource(PydanticBaseSettingsSource):
    """The settings that name an environment variable (``env=``), from ``env`` (empty values unset)."""

    def __init__(self, settings_cls: type[SettingsBase], env: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self.declared = settings_cls
        self.env = env

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        var = env_name(field_name, self.declared)
        return (self.env.get(var) or None) if var else None, field_name, False

    def __call__(self) -> dict[str, Any]:
        found = {name: self.get_field_value(f, name)[0] for name, f in self.settings_cls.model_fields.items()}
        return {name: value for name, value in found.items() if value is not None}


class _FileSource(PydanticBaseSettingsSource):
    """The settings in a TOML config file (``_read_config``), or none without a file."""

    def __init__(self, settings_cls: type[SettingsBase], path: Path | None) -> None:
        super().__init__(settings_cls)
        self.declared = settings_cls
        self.path = path

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self().get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {} if self.path is None else _read_config(self.path, self.declared)


def _check_positive(settings: SettingsBase, *names: str) -> None:
    """Each of the settings ``names`` that is set is above 0, else one ConfigError naming it."""
    for name in names:
        value = getattr(settings, name)
        if value is not None and not value > 0:
            raise ConfigError(f"{name} must be positive, got {value}")


def _check_secret(settings: SettingsBase, name: str) -> None:
    """A credential has no spaces or control characters (the message never shows it)."""
    secret = getattr(settings, name)
    if secret is not None and (
        not isinstance(secret, str) or any(c.isspace() or not c.isprintable() for c in secret)
    ):
        raise ConfigError(
            f"{name} has spaces or control characters (a trailing newline?); check "
            f"{env_name(name, type(settings))} (the value itself is not shown)"
        )


def _check_name(name: str, value: object) -> None:
    if not isinstance(value, str):
        raise ConfigError(f"{name} must be a string, got {value!r}")
    if not value.strip():
        raise ConfigError(f"{name} must not be empty")
    if value != value.strip() or not value.isprintable():
        raise ConfigError(f"{name} has spaces or control characters at its ends or inside: {value!r}")


def _read_config(path: Path, settings_cls: type[SettingsBase]) -> dict[str, Any]:
    """The settings of ``settings_cls`` in a TOML file: its table (``_config_tables``). Values are checked
    here, so an error names the file."""
    section, where = _config_tables(path)[settings_cls.config_table]
    names = list(settings_cls.model_fields)
    unknown = sorted(set(section) - set(names))
    if unknown:
        near = {close for key in unknown for close in difflib.get_close_matches(key, names, n=1)}
        hint = f"; did you mean {', '.join(sorted(near))}?" if near else ""
        raise ConfigError(f"config file {path}: unknown setting(s){where}: {', '.join(unknown)}{hint}")
    try:
        return _coerce(dict(section), settings_cls)
    except ConfigError as exc:
        raise ConfigError(f"config file {path}: {exc}") from None


def _config_tables(path: Path) -> dict[str, tuple[dict[str, Any], str]]:
    """The tables of a TOML config file, by ``config_table``, each with how an error names it:
    ``extractor`` is ``[extractor]`` (nothing but ``[serve]`` may be outside it then) or the top level
    (less ``[serve]``); ``serve`` is ``[serve]``."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    skip = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
    nul = raw.find(b"\x00")
    if nul != -1 and not raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ConfigError(f"config file {path} is a binary file (NUL byte at offset {nul}), not TOML")
    try:
        text = raw[skip:].decode("utf-8")
    except UnicodeDecodeError as exc:
        at = skip + exc.start
        raise ConfigError(
            f"config file {path} is not UTF-8 text: byte 0x{raw[at]:02x} at offset {at} (save it as UTF-8)"
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    tables = {"serve": (data.pop("serve", {}), " in [serve]"), "extractor": (data, "")}
    if "extractor" in data:
        tables["extractor"] = (data["extractor"], " in [extractor]")
        stray = sorted(k for k in data if k != "extractor")
        if stray:
            raise ConfigError(
                f"config file {path} has keys outside [extractor]: {', '.join(stray)} "
                "(move them into [extractor])"
            )
    for name, (table, _) in tables.items():
        if not isinstance(table, dict):
            raise ConfigError(f"config file {path}: [{name}] must be a table")
    return tables


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _kind(name: str, settings_cls: type[SettingsBase]) -> type:
    """The type of the setting ``name``, without its ``| None`` (a Literal such as Mode is str)."""
    annotation = field_type(name, settings_cls)
    origin = get_origin(annotation)
    if origin is Literal:
        return str
    return origin if isinstance(origin, type) else annotation if isinstance(annotation, type) else str


def _coerce(values: dict[str, Any], settings_cls: type[SettingsBase]) -> dict[str, Any]:
    """Values from a file, the environment (strings) or flags, converted to the fields' types; a value
    of the wrong kind (a number for the model, 3.5 or true for a count, a mode not offered) is a
    ConfigError that shows no secret."""
    fields = settings_cls.model_fields
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
    out: dict[str, Any] = {}
    for name, value in values.items():
        kind = _kind(name, settings_cls)
        shown = repr(value) if fields[name].repr else "(not shown)"
        try:
            if value is None:
                out[name] = None
            elif kind is Path:
                if not isinstance(value, str | os.PathLike):
                    raise ConfigError(f"setting {name}: expected a path, got {shown}")
                out[name] = Path(value).expanduser()
            elif kind is dict:
                out[name] = {str(k): (float(v[0]), float(v[1])) for k, v in dict(value).items()}
            elif kind is bool:
                if isinstance(value, bool):
                    out[name] = value
                elif str(value).strip().lower() in _TRUE + _FALSE:
                    out[name] = str(value).strip().lower() in _TRUE
                else:
                    raise ConfigError(f"setting {name}: expected true or false, got {shown}")
            elif kind is int:
                if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                    raise ConfigError(f"setting {name}: expected a whole number, got {shown}")
                out[name] = int(value)
            elif kind is float:
                if isinstance(value, bool):
                    raise ConfigError(f"setting {name}: expected a number, got {shown}")
                out[name] = float(value)
            else:
                if not isinstance(value, str):
                    raise ConfigError(f"setting {name}: expected a string, got {shown}")
                choices = get_args(field_type(name, settings_cls))
                if choices and value not in choices:
                    raise ConfigError(f"unknown {name} {value!r}; choose one of {', '.join(choices)}")
                out[name] = value
        except (TypeError, ValueError, IndexError) as exc:
            raise ConfigError(f"setting {name}: cannot use {shown} ({exc})") from exc
    return out
