"""Where a result came from: the one provenance record of flowstab.

Every results file the project writes — sweeps, the report, the paper figures, the benchmarks —
records the git revision of the checkout, whether its tree had uncommitted changes, the versions of
the packages that computed it, the seed and the configuration. This module is the only place that
asks git and the package metadata; the writers call :func:`provenance` (or its parts) and add
their own fields.

Examples
--------
>>> rec = provenance({"memory_tokens": 8000}, seed=7, packages=("numpy",))
>>> rec["seed"], rec["config"], sorted(rec["versions"])
(7, {'memory_tokens': 8000}, ['numpy', 'python'])
"""

from __future__ import annotations

import datetime as _dt
import platform
import subprocess
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

__all__ = ["DEFAULT_PACKAGES", "git", "git_dirty", "git_revision", "package_version", "provenance",
           "utc_now", "versions"]

#: The packages whose versions a results file records unless told otherwise.
DEFAULT_PACKAGES = ("flowstab", "numpy", "scipy", "sympy", "pandas", "matplotlib", "numba")

#: The checkout this module lives in (git is asked from here, whatever the working directory).
_CHECKOUT = Path(__file__).resolve().parent
_GIT_TIMEOUT_S = 10


def git(*args: str) -> str | None:
    """``git ARGS`` run in this checkout: its stripped output, or None when git is unavailable,
    the package is not in a git checkout, or the command fails."""
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True,
                             timeout=_GIT_TIMEOUT_S, cwd=_CHECKOUT)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_revision(short: int | None = None) -> str | None:
    """The commit of the checkout (``short`` hex digits, or all 40), or None outside git."""
    args = ("rev-parse", f"--short={short}", "HEAD") if short else ("rev-parse", "HEAD")
    return git(*args) or None


def git_dirty() -> bool | None:
    """Whether the checkout has uncommitted changes (None outside git)."""
    status = git("status", "--porcelain")
    return None if status is None else bool(status)


def package_version(name: str = "flowstab") -> str:
    """The installed version of ``name`` (``"not installed"`` when it is absent)."""
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def versions(packages: Iterable[str] = DEFAULT_PACKAGES) -> dict[str, str]:
    """``{"python": ..., package: version, ...}`` in the order given."""
    return {"python": platform.python_version()} | {p: package_version(p) for p in packages}


def utc_now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def provenance(config: dict | None = None, seed: int | None = None, *,
               packages: Iterable[str] = DEFAULT_PACKAGES, **extra) -> dict:
    """The provenance record: git sha and dirtiness, versions, seed, config, creation time, extras.

    Parameters
    ----------
    config : dict, optional
        The configuration that produced the result (JSON-able).
    seed : int, optional
        The root seed.
    packages : iterable of str
        Whose versions to record (Python's is always recorded).
    **extra
        Further fields, added last (they may override the defaults).
    """
    out = {
        "git_sha": git_revision(),
        "git_dirty": git_dirty(),
        "versions": versions(packages),
        "seed": None if seed is None else int(seed),
        "config": config,
        "created": utc_now(),
    }
    return out | extra
