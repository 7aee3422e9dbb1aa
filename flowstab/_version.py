"""The version of flowstab: the one in ``pyproject.toml``, read from the installed metadata.

``pyproject.toml`` is the only place the version is written; an installed (or editable) flowstab
reports it through :mod:`importlib.metadata`, and a source tree that was never installed reports
``"0+unknown"``.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:
    __version__: str = version("flowstab")
except PackageNotFoundError:  # pragma: no cover - a source tree that was never installed
    __version__ = "0+unknown"
