r"""Tail bounds on the flow-control overflow probability P(U > M), and the rate r*(ε).

Symbolic twin: :mod:`theory.bounds` (functions of the same names; ``tests/test_twins.py``
checks that they agree).

U is the saturated active-set memory of Algorithm 2 at mean activation rate r (see
:mod:`numerics.analysis.flow`); Δ = M − r·E[W] is the slack. For Δ > 0 (else every bound is 1):

* ``hoeffding`` (bounded S, O; bounded budget): each term lies in [0, s_max + a + 1], at most
  ⌈r⌉ per age, so :math:`P \le \exp(-2\Delta^2 / (\lceil r\rceil \sum_{a<o_{max}}
  (s_{max}+a+1)^2))`;
* ``bernstein`` (bounded S, O): centred terms ≤ c = s_max + o_max,
  :math:`P \le \exp(-\Delta^2 / (2(V + c\Delta/3)))` with V = Var U (for the Poisson budget the
  compound-Poisson form of Bennett's inequality gives the same with V = r Σ ν_a);
* ``chernoff``: :math:`P \le \inf_{\theta > 0} \exp(-\theta M + \log E e^{\theta U})`, minimised
  numerically over θ;
* ``cantelli`` (finite variance only): :math:`P \le V / (V + \Delta^2)` — the one-sided Chebyshev
  bound, the only one left when the decode law has no exponential moments;
* ``gaussian``: :math:`\bar\Phi(\Delta/\sqrt V)` — an *approximation*, **not a bound**; it is badly
  optimistic for skewed decode laws and is never used to pick a rate.

Laws with unbounded support are stored out to a cut N (:mod:`numerics.model.laws`); the memory of the
requests beyond the cut differs from the stored model only if some active request has O > N (or
S > N_S), which by Markov's inequality has probability at most
r·(E[(O − N)^+] + E[O]·P(S > N_S)). The Chernoff and Cantelli values include that term, so they
stay valid; Hoeffding and Bernstein need bounded laws and are not applicable otherwise.

Examples
--------
The table of docs/theory.md §8.2 ( uniform O ∈ {1..100}, s = 20, M = 65 536, deterministic r = 20):

>>> from numerics.model.specs import parse_law
>>> from numerics.model.workload import Workload
>>> wl = Workload.single(parse_law("20"), parse_law("uniform:1,100"))
>>> tails = FlowTails(wl, 65536)
>>> {k: float(f"{v:.0e}") for k, v in tails.bounds(20, "deterministic").items() if v is not None}
{'hoeffding': 9e-10, 'bernstein': 3e-12, 'chernoff': 3e-14, 'cantelli': 0.02, 'gaussian': 3e-16}
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Protocol, get_args

import numpy as np
from numpy.typing import ArrayLike
from scipy import optimize, special

from numerics.analysis.flow import age_sums, log_mgf_from_ages, log_stay_by_age
from numerics.errors import WorkloadError
from numerics.model.budget import BudgetKind, BudgetLaw
from numerics.model.workload import Workload

__all__ = [
    "BOUNDS",
    "VALID_BOUNDS",
    "BoundChoice",
    "BoundFunction",
    "BoundName",
    "BoundNotApplicable",
    "FlowRate",
    "FlowTails",
    "ValidBound",
    "bernstein_bound",
    "cantelli_bound",
    "chernoff_bound",
    "flow_rate",
    "gaussian_approximation",
    "hoeffding_bound",
]

#: Valid upper bounds on P(U > M), tightest-first is decided per case.
ValidBound = Literal["hoeffding", "bernstein", "chernoff", "cantelli"]
#: Everything we can evaluate; "gaussian" is an approximation, not a bound.
BoundName = Literal[ValidBound, "gaussian"]
#: The ``bound`` option of :func:`flow_rate`: one name, or the tightest valid bound at each rate.
BoundChoice = Literal[BoundName, "best"]
VALID_BOUNDS: tuple[ValidBound, ...] = get_args(ValidBound)
BOUNDS: tuple[BoundName, ...] = get_args(BoundName)

_LOG_TINY = -745.0  # log of the smallest subnormal double: log-probabilities are clipped here


class BoundNotApplicable(Exception):
    """The bound's hypotheses fail for this workload or budget (the message says which)."""


@dataclass(frozen=True)
class FlowRate:
    """A flow-control activation rate r*(ε) and how it was certified."""

    rate_per_slot: float
    #: the bound that certified the rate, ``"exact"`` (the exact tail) or ``"none"`` (rate 0)
    bound: BoundName | Literal["exact", "none"]
    overflow_bound: float
    epsilon: float
    budget: BudgetKind


class FlowTails:
    """Overflow bounds for one workload and memory size, precomputing the per-age arrays.

    Parameters
    ----------
    workload : Workload
    memory_tokens : int
        M, the KV-cache size in tokens.
    """

    def __init__(self, workload: Workload, memory_tokens: int) -> None:
        workload.require_finite_memory_time()
        self.workload = workload
        self.memory_tokens = int(memory_tokens)
        self.mean_memory_time = workload.mean_memory_time
        g, mu, nu = workload.age_moments()
        self._log_stay = log_stay_by_age(g)
        self._theta_hint: float | None = None
        self._within, self._between = age_sums(mu, nu)
        self._excess = workload.truncation_excess()
        self.bounded = workload.bounded
        self.finite_variance = math.isfinite(self._within) and all(
            math.isfinite(c.lengths.decode_law.moment(3)) for c in workload.classes
        )
        if self.bounded:
            s_max, o_max = int(workload.max_prompt), int(workload.max_decode)
            j = np.arange(s_max + 1, s_max + o_max + 1, dtype=float)
            self._range_sq = float(np.sum(j * j))  # Σ_{a<o_max} (s_max + a + 1)²
            self._increment = float(s_max + o_max)
            # U per unit budget at most: Σ_a max(S + a + 1) over requests active at age a (exact
            # for joint (S, O) laws, where a long decode need not come with the longest prompt)
            self._max_terms_sum = float(np.sum(workload.max_held_by_age()))
        self.lambda_max = self.memory_tokens / self.mean_memory_time

    # ------------------------------------------------------------------ ingredients
    def slack(self, rate: float) -> float:
        """Δ = M − r·E[W]."""
        return self.memory_tokens - rate * self.mean_memory_time

    def variance(self, budget: BudgetLaw) -> float:
        """Var U of the saturated memory (over the stored ages)."""
        return budget.rate_per_slot * self._within + budget.variance * self._between

    def penalty(self, rate: float) -> float:
        """r·E[#active requests beyond the stored support]: added to Chernoff and Cantelli."""
        return rate * self._excess

    # ------------------------------------------------------------------ the bounds
    def log_bound(self, name: BoundName, budget: BudgetLaw) -> float:
        """log of the named bound (or approximation) at the budget law's rate."""
        rate = budget.rate_per_slot
        delta = self.slack(rate)
        self._check(name, budget.kind)
        if delta <= 0:
            return 0.0
        if name == "hoeffding":
            return -2 * delta**2 / (budget.max_count * self._range_sq)
        var = self.variance(budget)
        if name == "bernstein":
            return -(delta**2) / (2 * (var + self._increment * delta / 3))
        if name == "gaussian":
            return float(special.log_ndtr(-delta / math.sqrt(var))) if var > 0 else _LOG_TINY
        if name == "cantelli":
            return _log_plus(math.log(var / (var + delta**2)) if var > 0 else _LOG_TINY,
                             self.penalty(rate))
        return _log_plus(self._chernoff_log(budget), self.penalty(rate))

    def bound(self, name: BoundName, rate: float, budget: BudgetKind | BudgetLaw = "randomized") -> float:
        """The named bound on P(U > M) at rate ``rate`` (capped at 1)."""
        law = budget if isinstance(budget, BudgetLaw) else BudgetLaw(budget, rate)
        return min(1.0, math.exp(max(self.log_bound(name, law), _LOG_TINY)))

    def bounds(self, rate: float, budget: BudgetKind = "randomized") -> dict[BoundName, float | None]:
        """Every bound at ``rate``; None where the bound is not applicable."""
        out: dict[BoundName, float | None] = {}
        for name in BOUNDS:
            try:
                out[name] = self.bound(name, rate, budget)
            except BoundNotApplicable:
                out[name] = None
        return out

    def applicable(self, budget: BudgetKind = "randomized") -> dict[BoundName, str | None]:
        """For each bound: None if it applies, else the reason it does not."""
        out: dict[BoundName, str | None] = {}
        for name in BOUNDS:
            try:
                self._check(name, budget)
                out[name] = None
            except BoundNotApplicable as exc:
                out[name] = str(exc)
        return out

    def _check(self, name: str, budget_kind: str) -> None:
        if name not in BOUNDS:
            raise WorkloadError(f"unknown bound {name!r}; choose from {', '.join(BOUNDS)}")
        if name in ("hoeffding", "bernstein") and not self.bounded:
            raise BoundNotApplicable(
                f"{name} needs bounded prompt and decode laws (clip them with max=)"
            )
        if name == "hoeffding" and budget_kind == "poisson":
            raise BoundNotApplicable("hoeffding needs a bounded budget (not Poisson)")
        if name in ("bernstein", "cantelli", "gaussian") and not self.finite_variance:
            raise BoundNotApplicable(f"{name} needs Var U < ∞, i.e. E[O³] < ∞")

    def chernoff_theta(self, budget: BudgetLaw) -> float:
        """θ* minimising log E e^{θU} − θM: Chernoff's tilt, found even where the bound is below
        the smallest double (the exact tail of :mod:`numerics.analysis.exact` tilts at it)."""
        self._chernoff_log(budget, floor=-math.inf)
        return float(self._theta_hint or 0.0)

    def _chernoff_log(self, budget: BudgetLaw, floor: float = _LOG_TINY) -> float:
        m = self.memory_tokens
        if self.bounded and budget.max_count * self._max_terms_sum <= m:
            return _LOG_TINY  # U ≤ M surely: the infimum over θ → ∞ is 0
        scale = self._increment if self.bounded else self.workload.mean_prompt + 2 * (
            self.workload.decode_second_moment / self.workload.mean_decode
        )

        def h(theta: float) -> float:
            if theta <= 0:
                return 0.0
            val = -theta * m + log_mgf_from_ages(
                self._log_stay, self.workload.age_log_mgf(theta), budget
            )
            return val if math.isfinite(val) else math.inf

        start = 1e-3 / scale
        hi = self._theta_hint / 4 if self._theta_hint else start
        h_hi = h(hi)
        for _ in range(200):  # double until the convex objective turns up
            if h_hi < floor:
                self._theta_hint = hi
                return _LOG_TINY  # the bound is below the smallest double already
            h_next = h(2 * hi)
            if not h_next < h_hi:
                break
            hi, h_hi = 2 * hi, h_next
        res = optimize.minimize_scalar(
            h, bounds=(0.0, 2 * hi), method="bounded", options={"xatol": hi * 1e-6}
        )
        self._theta_hint = float(res.x) if res.fun < h_hi else hi
        return float(min(res.fun, h_hi, 0.0))

    # ------------------------------------------------------------------ r*(ε)
    def best_log_bound(self, budget: BudgetLaw) -> tuple[float, ValidBound | Literal["none"]]:
        """The smallest valid bound at this budget and its name."""
        best, which = 0.0, "none"
        for name in VALID_BOUNDS:
            try:
                value = self.log_bound(name, budget)
            except BoundNotApplicable:
                continue
            if value < best or which == "none":
                best, which = value, name
        return best, which

    def flow_rate(self, epsilon: float, budget: BudgetKind = "randomized",
                  bound: BoundChoice = "best") -> FlowRate:
        """The largest mean activation rate r whose overflow bound is ≤ ε.

        ``bound`` is one name of :data:`BOUNDS` or ``"best"`` (the tightest valid bound at each r).
        A deterministic budget searches the integers. Returns rate 0 when no r > 0 qualifies.
        """
        if not 0 < epsilon < 1:
            raise WorkloadError(f"epsilon must lie in (0, 1), got {epsilon!r}")
        log_eps = math.log(epsilon)

        def evaluate(r: float) -> tuple[float, str]:
            law = BudgetLaw(budget, r)
            if bound == "best":
                return self.best_log_bound(law)
            return self.log_bound(bound, law), bound

        if bound != "best":
            self._check(bound, budget)  # raises BoundNotApplicable
        top = self.lambda_max
        if budget == "deterministic":
            lo, hi = 0, math.floor(top)
            while lo < hi:  # largest integer r with bound ≤ ε
                mid = (lo + hi + 1) // 2
                if evaluate(mid)[0] <= log_eps:
                    lo = mid
                else:
                    hi = mid - 1
            rate = float(lo)
        else:
            lo, hi = 0.0, top
            for _ in range(64):  # bisection: invariant bound(lo) ≤ ε < bound(hi)
                mid = 0.5 * (lo + hi)
                if evaluate(mid)[0] <= log_eps:
                    lo = mid
                else:
                    hi = mid
                if hi - lo <= 1e-8 * top:
                    break
            rate = lo
        if rate == 0:
            return FlowRate(0.0, bound if bound != "best" else "none", 1.0, epsilon, budget)
        value, which = evaluate(rate)
        return FlowRate(rate, which, math.exp(max(value, _LOG_TINY)), epsilon, budget)


def _log_plus(log_a: float, b: float) -> float:
    """log(e^{log_a} + b) for b ≥ 0."""
    if b <= 0:
        return log_a
    return float(np.logaddexp(log_a, math.log(b)))


# ---------------------------------------------------------------------- numeric twins
class BoundFunction(Protocol):
    """The signature of the numeric twins below: P(U > M) at the budget law's mean rate."""

    def __call__(self, workload: Workload, memory_tokens: int, rate_per_slot: float,
                 budget: BudgetKind = "randomized") -> float: ...


def _twin(name: BoundName, summary: str) -> BoundFunction:
    """The module-level function for one bound: :meth:`FlowTails.bound` on a fresh FlowTails."""

    def twin(workload: Workload, memory_tokens: int, rate_per_slot: float,
             budget: BudgetKind = "randomized") -> float:
        return FlowTails(workload, memory_tokens).bound(name, rate_per_slot, budget)

    twin.__name__ = twin.__qualname__ = "gaussian_approximation" if name == "gaussian" else f"{name}_bound"
    twin.__doc__ = summary
    return twin


hoeffding_bound = _twin("hoeffding", "Hoeffding's bound on P(U > M) (see the module docstring).")
bernstein_bound = _twin("bernstein", "Bernstein's bound on P(U > M).")
chernoff_bound = _twin("chernoff", "The Chernoff bound inf_θ exp(−θM + log E e^{θU}) on P(U > M).")
cantelli_bound = _twin("cantelli", "Cantelli's one-sided Chebyshev bound V/(V + Δ²) on P(U > M).")
gaussian_approximation = _twin("gaussian", "Φ̄(Δ/√V): the normal approximation of P(U > M) — NOT a bound.")


def flow_rate(workload: Workload, memory_tokens: int, epsilon: float | ArrayLike,
              budget: BudgetKind = "randomized", bound: BoundChoice = "best") -> FlowRate:
    """r*(ε): the largest mean activation rate whose overflow bound is ≤ ε.

    ``epsilon`` may be an array (numpy's broadcasting convention): the result is then one
    :class:`FlowRate` whose ``rate_per_slot``, ``overflow_bound`` and ``epsilon`` are arrays of
    its shape and ``bound`` an array of the bound names, one per ε (the per-age arrays are
    computed once).

    >>> from numerics.model.workload import Workload
    >>> wl = Workload.single(20, "uniform:1,100")
    >>> fr = flow_rate(wl, 20_000, [1e-3, 1e-6])
    >>> fr.rate_per_slot.shape, bool(fr.rate_per_slot[0] > fr.rate_per_slot[1])
    ((2,), True)
    """
    tails = FlowTails(workload, memory_tokens)
    if np.ndim(epsilon) == 0:
        return tails.flow_rate(epsilon, budget, bound)
    eps = np.asarray(epsilon, dtype=float)
    rates = [tails.flow_rate(float(e), budget, bound) for e in eps.ravel()]
    shape = eps.shape
    return FlowRate(np.array([r.rate_per_slot for r in rates]).reshape(shape),
                    np.array([r.bound for r in rates], dtype=object).reshape(shape),
                    np.array([r.overflow_bound for r in rates]).reshape(shape), eps, budget)
