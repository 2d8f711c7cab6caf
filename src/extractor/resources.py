"""Where the package finds its data, installed or in a source checkout.

- ``prompts/`` (the templates) and ``schemas/`` (the JSON Schemas and the service's OpenAPI document) are
  package data: the repository's top-level folders are the source of truth, a wheel carries them in
  ``extractor/_data/`` (hatchling's ``force-include``, see pyproject.toml), and in a checkout
  ``src/extractor/_data/prompts`` and ``schemas`` are symlinks to them. Either way ``importlib.resources``
  finds them (``data_dir``), never a path relative to the checkout.
- ``seeds/``, ``fixtures/recorded`` and ``fixtures/gold`` exist only in a source checkout (an editable
  install); ``checkout_path`` gives them, or None when the package was installed from a wheel, so a
  command can ask for the path instead of silently using a folder that is not there.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

__all__ = ["checkout_path", "checkout_root", "data_dir"]


def _package_dir() -> Path:
    return Path(str(files("extractor")))


def data_dir(name: str) -> Path:
    """The package-data folder ``name`` (``"prompts"`` or ``"schemas"``); it may be missing from a
    broken install, which the reader reports."""
    return _package_dir() / "_data" / name


def checkout_root() -> Path | None:
    """The source checkout the package is imported from (``src/extractor`` of a repository with its
    ``pyproject.toml``), or None for an installed wheel."""
    package = _package_dir()
    root = package.parent.parent
    if package.parent.name == "src" and (root / "pyproject.toml").is_file():
        return root
    return None


def checkout_path(*parts: str) -> Path | None:
    """``parts`` under the source checkout when there is one and the path exists there, else None."""
    root = checkout_root()
    if root is None:
        return None
    path = root.joinpath(*parts)
    return path if path.exists() else None
