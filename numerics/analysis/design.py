r"""Budget design with cvxpy: per-class activation rates r_k, and Algorithm 1 integer budgets.

**The model.** Class k is flow-controlled on its own: each slot it activates :math:`B_{k,t}`
requests, i.i.d. from a budget law with mean :math:`r_k` (:mod:`numerics.analysis.flow`), independently of
the other classes. Saturated, the memory in use is :math:`U = \sum_k U_k` with independent
:math:`U_k`, and, with :math:`m_k = E[W_k]`, :math:`\mu_{k,a} = E X_{k,a}`,
:math:`\nu_{k,a} = E X_{k,a}^2` (per-age terms of class k),

.. math::

    E U = \sum_k r_k m_k, \qquad
    \operatorname{Var} U = \sum_k \Big(r_k \sum_a (\nu_{k,a} - \mu_{k,a}^2)
        + \sigma_B^2(r_k) \sum_a \mu_{k,a}^2\Big).

For Poisson budgets (:math:`\sigma_B^2 = r`) the variance is :math:`\sum_k r_k V_k` with
:math:`V_k = \sum_a \nu_{k,a}`, *linear* in r; and one global Poisson budget of rate
:math:`\sum_k r_k` with FIFO class mix :math:`r_k/\sum_j r_j` is the same system (Poisson
thinning). For randomized budgets :math:`\sigma_B^2(r) = f(1-f) \le \min(r, 1/4)` (f the
fractional part), so

.. math:: \operatorname{Var} U \le s(r) = \sum_k \min\big(r_k V_k,\; r_k D_k + E_k/4\big),
          \quad D_k = \sum_a (\nu_{k,a}-\mu_{k,a}^2),\ E_k = \sum_a \mu_{k,a}^2,

a concave, piecewise-linear bound (the first piece is the Poisson variance: deterministic ≤
randomized ≤ Poisson in convex order). Below saturation (λ_k < r_k) the memory is pathwise
smaller, so P(U_sat > M) ≤ ε certifies the stable system too (theory brief §8.2).

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

**Algorithm 1 integer budgets** (:func:`design_budgets`): class k activates up to b_k requests per
slot with no memory check; its memory at any slot is at most :math:`\sum_k b_k w_k` with the
worst-case memory-time :math:`w_k = \sum_a \max_{(s,o): o > a} (s + a + 1)` (= s_max·o_max +
o_max(o_max+1)/2 for independent laws), so Σ b_k w_k ≤ M is memory-safe surely and b_k > λ_k
stable (Thm. 3.3). The MILP maximises the same objectives over integers b_k ≥
⌊(1+γ)λ_k⌋ + 1 with HiGHS. A MILP has no duals; ``duals`` is None.

Examples
--------
>>> from numerics.model.specs import parse_law
>>> from numerics.model.workload import RequestClass, Workload
>>> wl = Workload((RequestClass.independent(parse_law("8"), parse_law("uniform:1,16"), 4.0, "chat"),
...                RequestClass.independent(parse_law("32"), parse_law("uniform:1,32"), 1.0, "code")))
>>> d = design_rates(wl, 4000, 1e-4)
>>> d.status, [round(x, 2) for x in d.rates], d.binding
('optimal', [19.16, 1.0], ('overflow', 'floor[code]'))
>>> worst_case_memory_times(wl).tolist()
[264.0, 1552.0]
>>> design_budgets(wl, 5000).rates  # max 8.5 b_1 + 16.5 b_2: 264 b_1 + 1552 b_2 ≤ 5000, b > λ
(7.0, 2.0)
"""

from __future__ import annotations

import math
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field

import numpy as np

from numerics.errors import WorkloadError
from numerics.model.workload import (
    IndependentLengths,
    Workload,
    check_hard_cap,
    ensure_memory,
)

__all__ = [
    "DESIGN_BUDGETS",
    "DESIGN_METHODS",
    "DESIGN_OBJECTIVES",
    "DesignInfeasibleError",
    "DesignResult",
    "OverflowConstraint",
    "design_budgets",
    "design_exact_overflow",
    "design_rates",
    "worst_case_memory_times",
]

DESIGN_METHODS = ("bernstein", "cantelli", "gaussian")
DESIGN_OBJECTIVES = ("throughput", "maxmin")
#: Budget laws the rate design supports (a deterministic budget needs integer rates: use
#: :func:`design_budgets` or floor a randomized design, which only lowers mean and variance).
DESIGN_BUDGETS = ("randomized", "poisson")

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
#: Largest (ages × FFT points) array :func:`design_exact_overflow` builds per class (256 MiB).
_EXACT_MAX_ELEMENTS = 1 << 24


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

    kind: str
    status: str
    objective: str
    objective_value: float
    method: str
    budget: str
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
def _check_inputs(workload: Workload, memory_tokens, epsilon, gamma, objective, weights):
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
    budget: str
    method: str
    increment: float | None
    epsilon: float
    epsilon_used: float

    @classmethod
    def build(cls, workload: Workload, memory_tokens: int, epsilon: float, method: str,
              budget: str) -> OverflowConstraint:
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
    def variance_bound(self, rates) -> float:
        """s(r) ≥ Var U (equal for Poisson budgets)."""
        r = np.asarray(rates, dtype=float)
        if self.budget == "poisson":
            return float(self.poisson_var @ r)
        return float(np.sum(np.minimum(self.poisson_var * r, self.within * r + self.between / 4)))

    def _variance_slope(self, rates) -> np.ndarray:
        r = np.asarray(rates, dtype=float)
        if self.budget == "poisson":
            return self.poisson_var.copy()
        # the Poisson piece is the smaller one for r ≤ 1/4 (V_k r ≤ D_k r + E_k/4 ⇔ E_k r ≤ E_k/4)
        return np.where(r <= 0.25, self.poisson_var, self.within)

    def sqrt_term(self, rates) -> float:
        """h(r) = √(β² + κ s(r))."""
        return math.sqrt(self.beta**2 + self.kappa * self.variance_bound(rates))

    def margin(self, rates) -> float:
        """α + h(r): the room left above the mean."""
        return self.alpha + self.sqrt_term(rates)

    def value(self, rates) -> float:
        """g(r) = Σ r_k m_k + α + h(r)."""
        return float(self.means @ np.asarray(rates, dtype=float)) + self.margin(rates)

    def tangent(self, rates) -> tuple[np.ndarray, float]:
        """(coefficients, offset) with g(r) ≤ coefficients·r + offset for every r ≥ 0."""
        r = np.asarray(rates, dtype=float)
        h = self.sqrt_term(r)
        grad = self.kappa * self._variance_slope(r) / (2 * h) if h > 0 else np.zeros_like(r)
        return self.means + grad, float(self.alpha + h - grad @ r)

    def overflow_bound(self, rates, memory_tokens: int) -> float:
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
    objective: str = "throughput",
    weights=None,
    method: str = "bernstein",
    budget: str = "randomized",
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


# ---------------------------------------------------------------------------------- integer design
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
    objective: str = "throughput",
    weights=None,
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


# ---------------------------------------------------------------------------------- exact check
def design_exact_overflow(workload: Workload, memory_tokens: int, rates,
                          budget: str = "randomized") -> float:
    """Exact P(U > M) for independent per-class budgets of means ``rates``
    (:func:`numerics.analysis.exact.exact_tail_per_class`)."""
    from numerics.analysis.exact import exact_tail_per_class

    m = ensure_memory(memory_tokens)
    r = np.asarray(rates, dtype=float)
    if r.shape != (len(workload.classes),) or np.any(~np.isfinite(r)) or np.any(r <= 0):
        raise WorkloadError(f"rates must be {len(workload.classes)} positive numbers, got {rates!r}")
    if budget not in ("randomized", "poisson", "deterministic"):
        raise WorkloadError(f"unknown budget law {budget!r}")
    return exact_tail_per_class(workload, m, r, budget).prob
