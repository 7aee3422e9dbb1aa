r"""Stability conditions, numerically: the twins of :mod:`theory.conditions`.

Symbolic twin: :mod:`theory.conditions` (functions of the same names; ``tests/test_twins.py``
checks that they agree), and :mod:`theory.closed_forms` for ``memory_time`` and
``mean_memory_time``.

* Memory-time of a request: :math:`W = S\,O + O(O+1)/2` (``def:memory-time``).
* Necessary condition for any scheduler (Dong & Cao, Prop. 3.2): :math:`\sum_k \lambda_k E[W_k]
  \le M` (``prop:necessary``); with the class mix fixed the largest total rate is
  :math:`\lambda_{max} = M / \sum_k \pi_k E[W_k]` (``cor:lambda-max``).
* Hard cap: :math:`P(S + O \le M) = 1` (``cond:hard-cap``).
* Heavy tails: :math:`E[O^2] = \infty \Rightarrow` no stable rate (``cor:heavy-tail``).
* Algorithm 1 (known lengths, per-class budgets :math:`b_k`): peak memory under saturation is
  exactly :math:`\sum_k b_k w_k`, memory-safe iff it is :math:`\le M` (inequality (2),
  ``thm:alg1-safe``), stable if also :math:`b_k > \lambda_k` (Thm. 3.3, ``thm:alg1-stable``).

Examples
--------
>>> memory_time(10, 20)
410
>>> alg1_peak_memory([4, 4, 4], [410, 1220, 2430])
16240
>>> total = lambda_max_from(16492, [410, 1220, 2430], [1, 1, 1])  # Dong & Cao §4.1, equal mix
>>> round(total / 3, 6)  # per class: λ* = M / Σ w_k
4.062069
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from numerics.errors import SettingError, WorkloadError
from numerics.model.workload import Lengths, RequestClass, Workload

__all__ = [
    "alg1_memory_safe",
    "alg1_peak_memory",
    "alg1_stable",
    "hard_cap_violation",
    "heavy_tail_no_stable_rate",
    "lambda_max",
    "lambda_max_from",
    "mean_memory_time",
    "memory_time",
    "necessary_condition",
]


def memory_time(prompt: ArrayLike, decode: ArrayLike) -> int | np.ndarray | float:
    """W = S·O + O(O+1)/2: memory-slots a request occupies (works elementwise on arrays)."""
    if isinstance(prompt, int | np.integer) and isinstance(decode, int | np.integer):
        if prompt < 0 or decode < 0:
            raise WorkloadError(f"memory_time needs token counts ≥ 0, got prompt {prompt}, decode {decode}")
        return int(prompt) * int(decode) + int(decode) * (int(decode) + 1) // 2
    s = np.asarray(prompt)
    o = np.asarray(decode)
    if s.dtype.kind in "iuf" and o.dtype.kind in "iuf" and (np.any(s < 0) or np.any(o < 0)):
        raise WorkloadError("memory_time needs token counts ≥ 0 (prompt and decode lengths)")
    return s * o + o * (o + 1) / 2


def mean_memory_time(model: Workload | RequestClass | Lengths) -> float:
    """E[W] of a Workload (its class mix), a RequestClass, or a length model."""
    if isinstance(model, Workload):
        return model.mean_memory_time
    lengths = getattr(model, "lengths", model)
    try:
        return float(lengths.mean_memory_time)
    except AttributeError:
        raise WorkloadError(
            f"mean_memory_time needs a Workload, RequestClass or length model, got {model!r}"
        ) from None


def necessary_condition(rates: ArrayLike, mean_memory_times: ArrayLike, memory_tokens: float) -> bool:
    """Σ_k λ_k E[W_k] ≤ M (Prop. 3.2): False means no scheduler keeps the system stable."""
    rates = np.asarray(rates, dtype=float)
    w = np.asarray(mean_memory_times, dtype=float)
    if not (np.all(np.isfinite(rates)) and np.all(rates >= 0)):
        raise WorkloadError(f"necessary_condition: arrival rates must be finite and ≥ 0, got "
                            f"{rates.tolist()}")
    if np.any(np.isnan(w)) or np.any(w < 0):
        raise WorkloadError(f"necessary_condition: mean memory-times must be ≥ 0, got {w.tolist()}")
    return bool(np.dot(rates, w) <= memory_tokens)


def lambda_max_from(memory_tokens: float, mean_memory_times: ArrayLike,
                    mix: ArrayLike | None = None) -> float:
    """Largest total rate (per slot) meeting Prop. 3.2 with the class mix ``mix`` kept."""
    w = np.atleast_1d(np.asarray(mean_memory_times, dtype=float))
    mix = np.full(w.size, 1.0 / w.size) if mix is None else np.asarray(mix, dtype=float)
    mix = mix / mix.sum()
    return float(memory_tokens / np.dot(mix, w))


def lambda_max(workload: Workload, memory_tokens: float | ArrayLike) -> float | np.ndarray:
    """λ_max = M / Σ_k π_k E[W_k] requests per slot (0 when E[W] = ∞).

    ``memory_tokens`` is a positive number or an array of them (the result then has its shape,
    as numpy ufuncs broadcast). Raises :class:`~numerics.errors.SettingError` (setting
    ``memory``) for a value that is not a positive finite number.

    >>> from numerics.model.workload import Workload
    >>> wl = Workload.single(20, 10)  # E[W] = 20·10 + 10·11/2 = 255
    >>> lambda_max(wl, 2550), lambda_max(wl, [255, 510]).tolist()
    (10.0, [1.0, 2.0])
    """
    try:
        m = np.asarray(memory_tokens, dtype=float)
    except (TypeError, ValueError):
        m = np.asarray(np.nan)
    if isinstance(memory_tokens, bool) or m.size == 0 or not np.all(np.isfinite(m)) or np.any(m <= 0):
        raise SettingError(f"`memory` must be a positive number of tokens (or an array of them), got "
                           f"{memory_tokens!r}", "memory")
    w = workload.mean_memory_time
    out = np.zeros_like(m) if not math.isfinite(w) else m / w
    return float(out) if out.ndim == 0 else out


def hard_cap_violation(workload: Workload, memory_tokens: int) -> float:
    """P(S + O > M) under the workload's mix; positive means no rate is stable."""
    return workload.prob_total_exceeds(memory_tokens)


def heavy_tail_no_stable_rate(workload: Workload) -> bool:
    """True when some class has E[O²] = ∞, so E[W] = ∞ and no arrival rate is stable."""
    return not all(math.isfinite(c.lengths.decode_law.second_moment) for c in workload.classes)


def alg1_peak_memory(budgets: ArrayLike, memory_times: ArrayLike) -> int | float:
    """Σ_k b_k w_k: the saturated peak memory of Algorithm 1 with known lengths."""
    b = np.asarray(budgets)
    w = np.asarray(memory_times)
    if b.shape != w.shape:
        raise WorkloadError(f"need one budget per class: {b.size} budgets, {w.size} classes")
    if np.any(b < 0):
        raise WorkloadError("budgets must be non-negative integers")
    total = np.dot(b, w)
    return int(total) if np.issubdtype(total.dtype, np.integer) else float(total)


def alg1_memory_safe(budgets: ArrayLike, memory_times: ArrayLike, memory_tokens: float) -> bool:
    """Inequality (2): Σ_k b_k w_k ≤ M — no overflow without any memory check."""
    return bool(alg1_peak_memory(budgets, memory_times) <= memory_tokens)


def alg1_stable(budgets: ArrayLike, rates: ArrayLike, memory_times: ArrayLike, memory_tokens: float) -> bool:
    """Thm. 3.3: memory-safe and b_k > λ_k for every class."""
    b = np.asarray(budgets, dtype=float)
    lam = np.asarray(rates, dtype=float)
    return alg1_memory_safe(budgets, memory_times, memory_tokens) and bool(np.all(b > lam))
