"""Helpers the benchmark scripts share: best-of-n wall-clock timing and run provenance.

The scripts run as ``python benchmarks/bench_*.py``, so this folder is on ``sys.path`` and they
``from _common import best_of, provenance``.
"""

from __future__ import annotations

import importlib
import platform
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


def best_of(fn: Callable[[], object], n: int = 3) -> tuple[float, object]:
    """(the smallest of ``n`` wall-clock times of ``fn()`` in seconds, the last result)."""
    times, out = [], None
    for _ in range(n):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def provenance(*packages: str, **extra) -> dict:
    """git sha, Python, machine and the versions of ``packages`` (numpy always), plus ``extra``."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             check=True, cwd=Path(__file__).resolve().parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        sha = None
    out = {"git_sha": sha, "python": platform.python_version()}
    for name in ("numpy", *packages):
        out[name] = importlib.import_module(name).__version__
    out |= {"machine": platform.machine(), "processor": platform.processor(),
            "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    return out | extra
