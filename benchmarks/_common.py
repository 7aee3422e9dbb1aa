"""Helpers the benchmark scripts share: best-of-n wall-clock timing and run provenance.

The scripts run as ``python benchmarks/bench_*.py``, so this folder is on ``sys.path`` and they
``from _common import best_of, provenance``.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable

from numerics.provenance import git_revision, package_version, utc_now


def best_of(fn: Callable[[], object], n: int = 3) -> tuple[float, object]:
    """(the smallest of ``n`` wall-clock times of ``fn()`` in seconds, the last result)."""
    times, out = [], None
    for _ in range(n):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def provenance(*packages: str, **extra) -> dict:
    """git sha, Python, the versions of ``packages`` (numpy always), machine, processor and the
    UTC time (``…Z``), plus ``extra``; git and the versions come from :mod:`numerics.provenance`."""
    out = {"git_sha": git_revision(), "python": platform.python_version()}
    out |= {name: package_version(name) for name in ("numpy", *packages)}
    out |= {"machine": platform.machine(), "processor": platform.processor(),
            "time_utc": utc_now().replace("+00:00", "Z")}
    return out | extra
