r"""Algorithm 1 integer budgets by MILP (HiGHS): :func:`design_budgets`.

Class k activates up to b_k requests per slot with no memory check; its memory at any slot is at
most :math:`\sum_k b_k w_k` with the worst-case memory-time
:math:`w_k = \sum_a \max_{(s,o): o > a} (s + a + 1)` (= s_max·o_max + o_max(o_max+1)/2 for
independent laws), so Σ b_k w_k ≤ M is memory-safe surely and b_k > λ_k stable (Thm. 3.3). The
MILP maximises the objectives of the rate design (:mod:`numerics.analysis.design.rates`:
``throughput``, ``maxmin``) over integers b_k ≥ ⌊(1+γ)λ_k⌋ + 1 with HiGHS. A MILP has no duals;
``duals`` is None.
"""

from __future__ import annotations

from contextlib import contextmanager, suppress

import numpy as np
from numpy.typing import ArrayLike

from numerics.analysis.design.result import (
    DesignInfeasibleError,
    DesignObjective,
    DesignResult,
    _check_inputs,
)
from numerics.errors import WorkloadError
from numerics.model.workload import IndependentLengths, Workload

__all__ = ["design_budgets", "worst_case_memory_times"]


@contextmanager
def _native_stdout_silenced():
    """Send what native code writes to file descriptor 1 to /dev/null for the duration."""
    import ctypes
    import os
    import sys

    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError, AttributeError):  # no usable fd 1: nothing to protect
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    try:
        yield
    finally:
        with suppress(OSError, AttributeError):  # no libc symbols: nothing buffered to flush
            ctypes.CDLL(None).fflush(None)  # C stdio buffers go to /dev/null, not after restore
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def worst_case_memory_times(workload: Workload) -> np.ndarray:
    """w_k = Σ_a max_{(s,o): o > a} (s + a + 1): the most memory one slot's budget of class k adds.

    Raises WorkloadError for unbounded laws.
    """
    out = []
    for c in workload.classes:
        lengths = c.lengths
        if not lengths.bounded:
            raise WorkloadError(f"class {c.name!r}: Algorithm 1 budgets need bounded lengths (a "
                                "worst-case memory-time): clip the laws with max=")
        if isinstance(lengths, IndependentLengths):
            s, o = float(lengths.max_prompt), float(lengths.max_decode)
            out.append(s * o + o * (o + 1) / 2)
            continue
        order = np.argsort(-lengths.decode_values, kind="stable")
        o_sorted = lengths.decode_values[order]
        s_best = np.maximum.accumulate(lengths.prompt_values[order])  # max prompt over O ≥ o
        ages = np.arange(int(o_sorted[0]))
        # for age a: the pairs alive have O > a; the first index with o_sorted ≤ a, minus one
        idx = np.searchsorted(-o_sorted, -ages, side="left") - 1
        out.append(float(np.sum(s_best[idx] + ages + 1)))
    return np.array(out)


def design_budgets(
    workload: Workload,
    memory_tokens: int | None,
    *,
    gamma: float = 0.0,
    objective: DesignObjective = "throughput",
    weights: ArrayLike | None = None,
) -> DesignResult:
    """Algorithm 1 integer budgets by MILP (HiGHS): max objective s.t. Σ b_k w_k ≤ M, b_k > (1+γ)λ_k.

    Raises
    ------
    DesignInfeasibleError
        Σ_k (⌊(1+γ)λ_k⌋ + 1) w_k > M.
    """
    m, lam, omega = _check_inputs(workload, memory_tokens, None, gamma, objective, weights)
    w = worst_case_memory_times(workload)
    floors = np.floor((1 + gamma) * lam) + 1
    need = float(floors @ w)
    if need > m:
        raise DesignInfeasibleError(
            f"integer budgets b_k > (1+γ)λ_k need Σ b_k w_k ≥ {need:,.0f} > M = {m:,} tokens "
            "(worst-case memory-times "
            + ", ".join(f"{x:,.0f}" for x in w)
            + "): lower γ or the arrival rates, or add memory"
        )
    import cvxpy as cp

    k = lam.size
    decode_means = np.array([c.lengths.decode_law.mean for c in workload.classes])
    b = cp.Variable(k, integer=True, name="b")
    constraints = [w @ b <= m, b >= floors]
    if objective == "throughput":
        c_obj = omega * decode_means
        goal = cp.Maximize(c_obj @ b)
    else:
        t = cp.Variable(name="t")
        constraints.append(cp.multiply(omega, b) >= t * lam)
        goal = cp.Maximize(t)
    problem = cp.Problem(goal, constraints)
    with _native_stdout_silenced():  # HiGHS prints a banner from C++ on fd 1 (breaks --json)
        problem.solve(solver=cp.HIGHS)
    if problem.status not in ("optimal", "optimal_inaccurate") or b.value is None:
        raise DesignInfeasibleError(f"HiGHS returned {problem.status!r} for the budget MILP")
    budgets = np.round(np.asarray(b.value, dtype=float))
    obj_value = float(c_obj @ budgets) if objective == "throughput" else float(
        np.min(omega * budgets / lam))
    binding = []
    if m - float(w @ budgets) < float(np.min(w)):
        binding.append("memory")  # no class fits one more budget unit
    binding += [f"floor[{c.name}]" for c, x, lo in zip(workload.classes, budgets, floors, strict=True)
                if x == lo]
    means = budgets * workload.mean_memory_times
    return DesignResult(
        kind="budgets",
        status=problem.status,
        objective=objective,
        objective_value=obj_value,
        method="alg1-worst-case",
        budget="deterministic",
        solver="HIGHS",
        guaranteed=True,
        class_names=tuple(c.name for c in workload.classes),
        arrival_rates=tuple(float(x) for x in lam),
        rates=tuple(float(x) for x in budgets),
        floors=tuple(float(x) for x in floors),
        weights=tuple(float(x) for x in omega),
        memory_times=tuple(float(x) for x in w),
        saturated_mean_per_class=tuple(float(x) for x in means),
        saturated_mean=float(means.sum()),
        memory_tokens=m,
        epsilon=None,
        gamma=float(gamma),
        overflow_bound=0.0,
        margin=float(w @ budgets - means.sum()),
        binding=tuple(binding),
        duals=None,
        duals_note="not defined for a mixed-integer program",
        iterations=1,
        converged=True,
        linearization=None,
        notes=("peak memory Σ b_k w_k = " + f"{float(w @ budgets):,.0f} ≤ M surely",),
    )
