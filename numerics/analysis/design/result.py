r"""The result of a budget design, its validation, and the options both designs share.

:class:`DesignResult` is what :func:`~numerics.analysis.design.rates.design_rates` (the conic rate
design) and :func:`~numerics.analysis.design.budgets.design_budgets` (the integer MILP) return;
``_check_inputs`` is the one validation of their common inputs (M, ε, γ, the objective, the
weights, the arrival rates and the hard cap).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Literal, get_args

import numpy as np
from numpy.typing import ArrayLike

from numerics.errors import WorkloadError
from numerics.model.budget import BudgetKind
from numerics.model.workload import Workload, check_hard_cap, ensure_memory

__all__ = [
    "DESIGN_BUDGETS",
    "DESIGN_METHODS",
    "DESIGN_OBJECTIVES",
    "DesignBudget",
    "DesignInfeasibleError",
    "DesignMethod",
    "DesignObjective",
    "DesignResult",
]

#: How the overflow constraint is certified (``gaussian`` is an approximation, not a bound).
DesignMethod = Literal["bernstein", "cantelli", "gaussian"]
#: ``throughput``: max Σ ω_k r_k E[O_k]; ``maxmin``: max min_k ω_k r_k/λ_k.
DesignObjective = Literal["throughput", "maxmin"]
#: Budget laws the rate design supports (a deterministic budget needs integer rates: use
#: :func:`~numerics.analysis.design.budgets.design_budgets` or floor a randomized design, which
#: only lowers mean and variance).
DesignBudget = Literal["randomized", "poisson"]

DESIGN_METHODS: tuple[DesignMethod, ...] = get_args(DesignMethod)
DESIGN_OBJECTIVES: tuple[DesignObjective, ...] = get_args(DesignObjective)
DESIGN_BUDGETS: tuple[DesignBudget, ...] = get_args(DesignBudget)


class DesignInfeasibleError(WorkloadError):
    """No design meets the constraints (the message says which and what to change)."""


# ---------------------------------------------------------------------------------- the result
@dataclass(frozen=True)
class DesignResult:
    """A budget design: the rates (or integer budgets), the objective, duals and diagnostics.

    ``rates`` are activation rates per slot (``kind == "rates"``) or integer budgets
    (``kind == "budgets"``). ``duals`` (conic design only) holds the Lagrange multipliers of the
    final linearised program in cvxpy's sign convention (≥ 0 for every ≤ / ≥ constraint):
    ``"overflow"`` (a float), ``"floor"`` (per class, r_k ≥ (1+γ)λ_k) and, for ``maxmin``,
    ``"headroom"`` (per class, ω_k r_k ≥ tλ_k). ``linearization`` is that program's overflow row:
    ``coefficients·r ≤ rhs``.
    """

    kind: Literal["rates", "budgets"]
    status: str
    objective: DesignObjective
    objective_value: float
    method: DesignMethod | Literal["alg1-worst-case"]
    budget: BudgetKind
    solver: str
    guaranteed: bool
    class_names: tuple[str, ...]
    arrival_rates: tuple[float, ...]
    rates: tuple[float, ...]
    floors: tuple[float, ...]
    weights: tuple[float, ...]
    memory_times: tuple[float, ...]
    saturated_mean_per_class: tuple[float, ...]
    saturated_mean: float
    memory_tokens: int
    epsilon: float | None
    gamma: float
    overflow_bound: float | None
    margin: float
    binding: tuple[str, ...]
    duals: dict | None
    duals_note: str
    iterations: int
    converged: bool
    linearization: dict | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def rates_array(self) -> np.ndarray:
        return np.array(self.rates, dtype=float)

    def to_dict(self) -> dict:
        """A JSON-ready dict (lists for tuples, floats and None only)."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = list(value)
        return out

    def report(self) -> str:
        """A readable plain-text report."""
        what = "integer budgets b_k (Algorithm 1)" if self.kind == "budgets" else (
            f"activation rates r_k ({self.budget} budgets, {self.method} constraint)")
        lines = [
            f"flowstab design — {what}",
            f"  M = {self.memory_tokens:,} tokens"
            + (f", ε = {self.epsilon:g}" if self.epsilon is not None else "")
            + f", γ = {self.gamma:g}, objective {self.objective}; {self.solver}: {self.status}"
            + ("" if self.converged else " (NOT converged)"),
            f"  {'class':<12} {'λ_k':>10} {'floor':>10} {'rate':>12} {'mean memory':>14}",
        ]
        for row in zip(self.class_names, self.arrival_rates, self.floors, self.rates,
                       self.saturated_mean_per_class, strict=True):
            name, lam, lo, r, mean = row
            lines.append(f"  {name:<12} {lam:>10.4g} {lo:>10.4g} {r:>12.6g} {mean:>14,.1f}")
        lines.append(f"  saturated mean memory {self.saturated_mean:,.1f} + margin {self.margin:,.1f}"
                     f" ≤ M = {self.memory_tokens:,}")
        if self.overflow_bound is not None:
            kind = "bound" if self.guaranteed else "approximation (NOT a bound)"
            lines.append(f"  overflow {kind} at the design: {self.overflow_bound:.3g}")
        lines.append(f"  objective value {self.objective_value:.6g}; binding: "
                     + (", ".join(self.binding) or "none"))
        if self.duals is not None:
            lines.append(f"  dual of the overflow constraint {self.duals['overflow']:.4g}; of the floors "
                         + ", ".join(f"{z:.4g}" for z in self.duals["floor"]))
        else:
            lines.append(f"  duals: {self.duals_note}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


# ---------------------------------------------------------------------------------- validation
def _check_inputs(workload: Workload, memory_tokens: int | None, epsilon: float | None, gamma: float,
                  objective: str, weights: ArrayLike | None) -> tuple[int, np.ndarray, np.ndarray]:
    """(M, λ, ω) after checking every input the two designs share (WorkloadError says what to fix)."""
    if not isinstance(workload, Workload):
        raise WorkloadError(f"design needs a Workload, got {type(workload).__name__}")
    if memory_tokens is None:
        memory_tokens = workload.memory_tokens
        if memory_tokens is None:
            raise WorkloadError("give the KV-cache size in tokens (--memory M)")
    m = ensure_memory(memory_tokens)
    if epsilon is not None and (
        isinstance(epsilon, bool) or not isinstance(epsilon, float | int) or not 0 < epsilon < 1
    ):
        raise WorkloadError(f"epsilon must lie in (0, 1), got {epsilon!r}")
    if isinstance(gamma, bool) or not isinstance(gamma, float | int) or not (
        math.isfinite(gamma) and gamma >= 0
    ):
        raise WorkloadError(f"gamma (the headroom in r_k ≥ (1+γ)λ_k) must be finite and ≥ 0, got "
                            f"{gamma!r}")
    if objective not in DESIGN_OBJECTIVES:
        raise WorkloadError(f"objective must be one of {', '.join(DESIGN_OBJECTIVES)}, got "
                            f"{objective!r}")
    lam = workload.rates_per_slot
    if lam is None:
        raise WorkloadError(
            "design needs per-class arrival rates: give every class a rate in the workload file, "
            "or a total --arrival-rate (the class mix is kept)"
        )
    k = lam.size
    if weights is None:
        w = np.ones(k)
    else:
        w = np.asarray(weights, dtype=float)
        if w.shape != (k,) or np.any(~np.isfinite(w)) or np.any(w <= 0):
            raise WorkloadError(f"weights must be {k} positive finite numbers (one per class), got "
                                f"{weights!r}")
    workload.require_finite_memory_time()
    from numerics.analysis.plan import HARD_CAP_TOL

    check_hard_cap(workload, m, HARD_CAP_TOL)
    return m, lam, w

