r"""The conic rate design: per-class activation rates under a certified overflow constraint.

The saturated memory U = Σ_k U_k and its variance bound s(r) are those of
:mod:`numerics.analysis.design`.

**The overflow constraint.** With slack Δ = M − E U and V ≤ s(r), each method gives a *sufficient*
condition for P(U > M) ≤ ε of one shape,

.. math:: g(r) = \sum_k r_k m_k + \alpha + \sqrt{\beta^2 + \kappa\, s(r)} \le M:

* ``bernstein`` (bounded laws; L = log(1/ε), every centred term ≤ c = max_k (s_max,k + o_max,k)):
  :math:`P \le \exp(-\Delta^2 / (2(V + c\Delta/3)))`, which is ≤ ε exactly when
  :math:`\Delta \ge cL/3 + \sqrt{(cL/3)^2 + 2LV}`: α = β = cL/3, κ = 2L (for Poisson budgets the
  compound-Poisson Bennett bound has the same form with V = Σ r_k V_k);
* ``cantelli`` (any law with Var U < ∞): :math:`P \le V/(V + \Delta^2) \le \varepsilon'` iff
  :math:`\Delta \ge \sqrt{V (1-\varepsilon')/\varepsilon'}`: α = β = 0, κ = (1 − ε')/ε', where
  ε' = ε − Σ_k (M/m_k)·e_k leaves room for the mass beyond a stored (unbounded) law's cut
  (e_k = :meth:`~numerics.model.workload.IndependentLengths.truncation_excess`; 0 for bounded laws);
* ``gaussian``: :math:`\Delta \ge z_{1-\varepsilon}\sqrt V` — the normal approximation, **not a
  bound** (``guaranteed`` is False); it is badly optimistic for skewed laws.

The bound is monotone in V and in Δ, so V ≤ s(r) keeps each condition sufficient.

**Why it is not a cone constraint, and what is solved instead.** :math:`h(r) = \sqrt{\beta^2 +
\kappa s(r)}` is *concave* (a concave non-decreasing function of a concave one), so "linear +
concave ≤ M" is not convex: for r_1 + √r_2 ≤ M both (M, 0) and (0, M²) qualify but their midpoint
does not. (Only if V_k ∝ m_k is the set a half-space.) No SOC form of it exists; the convex
*restriction* used is the tangent (supergradient) of h at a point r̄, which lies above the concave h
everywhere:

.. math:: h(r) \le h(\bar r) + \nabla h(\bar r)^\top (r - \bar r)
          \quad\Longrightarrow\quad
          (m + \nabla h(\bar r))^\top r \le M - \alpha - h(\bar r) + \nabla h(\bar r)^\top \bar r

implies g(r) ≤ M: **every point that meets the linearised constraint meets the true one**, hence
has P(U > M) ≤ ε under the method's bound. This is the convex–concave procedure: start at the
floor r̄ = (1 + γ)λ, solve the (now linear) program with CLARABEL, re-linearise at the answer,
repeat. Each iterate is feasible for g ≤ M and the objective never decreases; at convergence the
point is a KKT point of the true problem. Since g increases in every r_k, the design is feasible
iff g((1+γ)λ) ≤ M, which is checked exactly before solving.

Objectives: ``throughput`` maximises :math:`\sum_k \omega_k r_k E[O_k]` (tokens per slot the
design can serve; ω = ``weights``, default 1); ``maxmin`` maximises t subject to
:math:`\omega_k r_k \ge t\lambda_k` (the smallest weighted headroom factor r_k/λ_k).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from numerics.analysis.design.result import (
    DESIGN_BUDGETS,
    DESIGN_METHODS,
    DesignBudget,
    DesignInfeasibleError,
    DesignMethod,
    DesignObjective,
    DesignResult,
    _check_inputs,
)
from numerics.errors import WorkloadError
from numerics.model.budget import BUDGET_LAWS, BudgetKind
from numerics.model.workload import Workload, ensure_memory

__all__ = [
    "BINDING_RTOL",
    "CCP_MAX_ITER",
    "CCP_RTOL",
    "FEASIBILITY_GUARD",
    "OverflowConstraint",
    "design_exact_overflow",
    "design_rates",
]

#: The convex–concave iteration stops when the objective gains less than this, relative: the
#: solver's own accuracy (CLARABEL's default tolerances are 1e-8) is no better.
CCP_RTOL = 1e-9
CCP_MAX_ITER = 50
#: A constraint is reported binding when its slack is below this, relative to its scale (M for the
#: overflow constraint, the floor for r_k ≥ (1+γ)λ_k): a few solver tolerances.
BINDING_RTOL = 1e-6
#: Room that the rates of a conic design leave below the true constraint: the LP's answer may
#: exceed its own constraint by the solver's feasibility tolerance, so the rates are scaled back
#: by this relative amount when needed (never up), keeping the certificate strict.
FEASIBILITY_GUARD = 1e-9


# ---------------------------------------------------------------------------------- the constraint
@dataclass(frozen=True)
class OverflowConstraint:
    r"""g(r) = Σ r_k m_k + α + √(β² + κ s(r)) ≤ M, with its tangent (see the module docstring).

    Build it with :meth:`build`; ``within`` = D_k, ``between`` = E_k, ``poisson_var`` = V_k.
    """

    means: np.ndarray
    within: np.ndarray
    between: np.ndarray
    poisson_var: np.ndarray
    alpha: float
    beta: float
    kappa: float
    budget: DesignBudget
    method: DesignMethod
    increment: float | None
    epsilon: float
    epsilon_used: float

    @classmethod
    def build(cls, workload: Workload, memory_tokens: int, epsilon: float, method: DesignMethod,
              budget: DesignBudget) -> OverflowConstraint:
        """α, β, κ of ``method`` and the per-class sums D_k, E_k, V_k (WorkloadError if it cannot apply)."""
        if method not in DESIGN_METHODS:
            raise WorkloadError(f"method must be one of {', '.join(DESIGN_METHODS)}, got {method!r}")
        if budget not in DESIGN_BUDGETS:
            raise WorkloadError(
                f"budget must be one of {', '.join(DESIGN_BUDGETS)} for a rate design, got "
                f"{budget!r}; a deterministic budget needs integer rates: use the integer design "
                "(--integer) or floor a randomized design"
            )
        means, within, between = [], [], []
        for c in workload.classes:
            _g, mu, nu = c.lengths.age_moments(c.lengths.n_ages)
            means.append(c.mean_memory_time)
            within.append(float(np.sum(nu - mu * mu)))
            between.append(float(np.sum(mu * mu)))
        means, within, between = (np.array(x, dtype=float) for x in (means, within, between))
        if np.any(~np.isfinite(within)) or np.any(~np.isfinite(between)):
            raise WorkloadError("the saturated memory has infinite variance (E[O³] = ∞ for some "
                                "class): clip the decode law with max=")
        log_inv = math.log(1 / epsilon)
        increment = None
        eps_used = epsilon
        if method == "bernstein":
            if not workload.bounded:
                raise WorkloadError(
                    "the Bernstein design needs bounded prompt and decode laws (a worst-case "
                    "increment c = s_max + o_max): clip the laws with max=, or use --method cantelli"
                )
            increment = float(max(c.lengths.max_prompt + c.lengths.max_decode
                                  for c in workload.classes))
            alpha = beta = increment * log_inv / 3
            kappa = 2 * log_inv
        elif method == "cantelli":
            for c in workload.classes:
                if not math.isfinite(c.lengths.decode_law.moment(3)):
                    raise WorkloadError(f"class {c.name!r}: Cantelli needs Var U < ∞, i.e. E[O³] < ∞; "
                                        "clip the decode law with max=")
            excess = np.array([c.lengths.truncation_excess() for c in workload.classes])
            spill = float(np.sum(memory_tokens / means * excess))  # r_k ≤ M/m_k at any design
            if spill > epsilon / 2:
                raise WorkloadError(
                    f"the stored laws leave mass {spill:.3g} beyond their cut, more than ε/2: store "
                    "them further out or clip them with max="
                )
            eps_used = epsilon - spill
            alpha = beta = 0.0
            kappa = (1 - eps_used) / eps_used
        else:
            from scipy import special

            alpha = beta = 0.0
            kappa = float(special.ndtri(1 - epsilon)) ** 2 if epsilon < 0.5 else 0.0
        return cls(means, within, between, within + between, float(alpha), float(beta),
                   float(kappa), budget, method, increment, float(epsilon), float(eps_used))

    # s(r) and its supergradient --------------------------------------------------------------
    def variance_bound(self, rates: ArrayLike) -> float:
        """s(r) ≥ Var U (equal for Poisson budgets)."""
        r = np.asarray(rates, dtype=float)
        if self.budget == "poisson":
            return float(self.poisson_var @ r)
        return float(np.sum(np.minimum(self.poisson_var * r, self.within * r + self.between / 4)))

    def _variance_slope(self, rates: ArrayLike) -> np.ndarray:
        r = np.asarray(rates, dtype=float)
        if self.budget == "poisson":
            return self.poisson_var.copy()
        # the Poisson piece is the smaller one for r ≤ 1/4 (V_k r ≤ D_k r + E_k/4 ⇔ E_k r ≤ E_k/4)
        return np.where(r <= 0.25, self.poisson_var, self.within)

    def sqrt_term(self, rates: ArrayLike) -> float:
        """h(r) = √(β² + κ s(r))."""
        return math.sqrt(self.beta**2 + self.kappa * self.variance_bound(rates))

    def margin(self, rates: ArrayLike) -> float:
        """α + h(r): the room left above the mean."""
        return self.alpha + self.sqrt_term(rates)

    def value(self, rates: ArrayLike) -> float:
        """g(r) = Σ r_k m_k + α + h(r)."""
        return float(self.means @ np.asarray(rates, dtype=float)) + self.margin(rates)

    def tangent(self, rates: ArrayLike) -> tuple[np.ndarray, float]:
        """(coefficients, offset) with g(r) ≤ coefficients·r + offset for every r ≥ 0."""
        r = np.asarray(rates, dtype=float)
        h = self.sqrt_term(r)
        grad = self.kappa * self._variance_slope(r) / (2 * h) if h > 0 else np.zeros_like(r)
        return self.means + grad, float(self.alpha + h - grad @ r)

    def overflow_bound(self, rates: ArrayLike, memory_tokens: int) -> float:
        """The method's bound (or approximation) on P(U > M) at V = s(r)."""
        r = np.asarray(rates, dtype=float)
        delta = memory_tokens - float(self.means @ r)
        if delta <= 0:
            return 1.0
        var = self.variance_bound(r)
        if self.method == "bernstein":
            return math.exp(-(delta**2) / (2 * (var + self.increment * delta / 3)))
        if self.method == "cantelli":
            return min(1.0, var / (var + delta**2) + (self.epsilon - self.epsilon_used))
        from scipy import special

        return float(special.ndtr(-delta / math.sqrt(var))) if var > 0 else 0.0


# ---------------------------------------------------------------------------------- conic design
def design_rates(
    workload: Workload,
    memory_tokens: int | None,
    epsilon: float,
    *,
    gamma: float = 0.0,
    objective: DesignObjective = "throughput",
    weights: ArrayLike | None = None,
    method: DesignMethod = "bernstein",
    budget: DesignBudget = "randomized",
) -> DesignResult:
    """Per-class activation rates maximising the objective under the overflow constraint.

    Solves max c·r (or max t) s.t. g(r) ≤ M, r_k ≥ (1+γ)λ_k by the convex–concave procedure of
    the module docstring, each step a linear program solved with CLARABEL.

    Parameters
    ----------
    workload : Workload
        Classes with arrival rates λ_k (requests per slot).
    memory_tokens : int or None
        M (None: the workload's own ``memory_tokens``).
    epsilon : float
        Target P(U > M) per slot, in (0, 1).
    gamma : float
        Headroom: r_k ≥ (1 + γ)λ_k.
    objective : {"throughput", "maxmin"}
    weights : array_like or None
        ω_k > 0 per class (default 1).
    method : {"bernstein", "cantelli", "gaussian"}
    budget : {"randomized", "poisson"}

    Raises
    ------
    DesignInfeasibleError
        Even r = (1+γ)λ violates the overflow constraint.
    WorkloadError
        Bad ε, γ, weights, method, missing rates, unbounded laws for Bernstein, ...
    """
    m, lam, omega = _check_inputs(workload, memory_tokens, epsilon, gamma, objective, weights)
    con = OverflowConstraint.build(workload, m, float(epsilon), method, budget)
    floors = (1 + gamma) * lam
    g0 = con.value(floors)
    if g0 > m:
        raise DesignInfeasibleError(
            f"(1+γ)λ needs memory mean {float(con.means @ floors):,.1f} + margin "
            f"{con.margin(floors):,.1f} = {g0:,.1f} > M = {m:,} tokens ({method} constraint at ε = "
            f"{epsilon:g}): lower γ or the arrival rates, raise ε, or add memory"
        )
    import cvxpy as cp

    k = lam.size
    decode_means = np.array([c.lengths.decode_law.mean for c in workload.classes])
    r = cp.Variable(k, name="r")
    coef = cp.Parameter(k, name="coefficients")
    rhs = cp.Parameter(name="rhs")
    overflow = coef @ r <= rhs
    floor = r >= floors
    constraints = [overflow, floor]
    if objective == "throughput":
        c_obj = omega * decode_means
        goal = cp.Maximize(c_obj @ r)
        headroom = None
    else:
        t = cp.Variable(name="t")
        headroom = cp.multiply(omega, r) >= t * lam
        constraints.append(headroom)
        goal = cp.Maximize(t)
    problem = cp.Problem(goal, constraints)
    point = floors.copy()
    best = -math.inf
    converged = False
    iterations = 0
    status = "not solved"
    for iterations in range(1, CCP_MAX_ITER + 1):  # noqa: B007 - the count is reported
        a, offset = con.tangent(point)
        coef.value = a
        rhs.value = m - offset
        problem.solve(solver=cp.CLARABEL)
        status = problem.status
        if status not in ("optimal", "optimal_inaccurate") or r.value is None:
            raise DesignInfeasibleError(f"CLARABEL returned {status!r} for the linearised design; "
                                        "this should not happen for a feasible floor: report it")
        cand = np.maximum(np.asarray(r.value, dtype=float), floors)
        cand = _guard(con, cand, floors, m)
        value = float(problem.value)
        point = cand
        if value <= best + CCP_RTOL * max(1.0, abs(best)):
            converged = True
            break
        best = value
    a, offset = coef.value, m - float(rhs.value)
    y = float(overflow.dual_value)
    z = np.asarray(floor.dual_value, dtype=float)
    duals = {"overflow": y, "floor": z.tolist()}
    if headroom is not None:
        duals["headroom"] = np.asarray(headroom.dual_value, dtype=float).tolist()
    obj_value = float(c_obj @ point) if headroom is None else float(np.min(omega * point / lam))
    binding = []
    if m - con.value(point) <= BINDING_RTOL * m:
        binding.append("overflow")
    binding += [f"floor[{c.name}]" for c, x, lo in zip(workload.classes, point, floors, strict=True)
                if x - lo <= BINDING_RTOL * max(lo, 1e-300)]
    notes = []
    if method == "gaussian":
        notes.append("the Gaussian condition is an approximation, not a bound: P(U > M) may exceed ε")
    if method == "cantelli" and con.epsilon_used < con.epsilon:
        notes.append(f"ε' = {con.epsilon_used:.3g} after the stored laws' truncation mass")
    means = con.means * point
    return DesignResult(
        kind="rates",
        status=status,
        objective=objective,
        objective_value=obj_value,
        method=method,
        budget=budget,
        solver="CLARABEL",
        guaranteed=method != "gaussian",
        class_names=tuple(c.name for c in workload.classes),
        arrival_rates=tuple(float(x) for x in lam),
        rates=tuple(float(x) for x in point),
        floors=tuple(float(x) for x in floors),
        weights=tuple(float(x) for x in omega),
        memory_times=tuple(float(x) for x in con.means),
        saturated_mean_per_class=tuple(float(x) for x in means),
        saturated_mean=float(means.sum()),
        memory_tokens=m,
        epsilon=float(epsilon),
        gamma=float(gamma),
        overflow_bound=con.overflow_bound(point, m),
        margin=con.margin(point),
        binding=tuple(binding),
        duals=duals,
        duals_note="multipliers of the final linearised program (cvxpy convention, ≥ 0)",
        iterations=iterations,
        converged=converged,
        linearization={"coefficients": np.asarray(a, dtype=float).tolist(), "rhs": float(m - offset)},
        notes=tuple(notes),
    )


def _guard(con: OverflowConstraint, rates: np.ndarray, floors: np.ndarray, m: int) -> np.ndarray:
    """Pull the solver's answer back onto g ≤ M if its tolerance overshot (never pushes up)."""
    if con.value(rates) <= m:
        return rates
    lo, hi = 0.0, 1.0  # convex combination floors + s (rates − floors): g(floors) ≤ M
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if con.value(floors + mid * (rates - floors)) <= m * (1 - FEASIBILITY_GUARD):
            lo = mid
        else:
            hi = mid
    return floors + lo * (rates - floors)


# ---------------------------------------------------------------------------------- exact check
def design_exact_overflow(workload: Workload, memory_tokens: int, rates: ArrayLike,
                          budget: BudgetKind = "randomized") -> float:
    """Exact P(U > M) for independent per-class budgets of means ``rates``
    (:func:`numerics.analysis.exact.exact_tail_per_class`)."""
    from numerics.analysis.exact import exact_tail_per_class

    m = ensure_memory(memory_tokens)
    r = np.asarray(rates, dtype=float)
    if r.shape != (len(workload.classes),) or np.any(~np.isfinite(r)) or np.any(r <= 0):
        raise WorkloadError(f"rates must be {len(workload.classes)} positive numbers, got {rates!r}")
    if budget not in BUDGET_LAWS:
        raise WorkloadError(f"unknown budget law {budget!r}")
    return exact_tail_per_class(workload, m, r, budget).prob
