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
  numerically over θ (any θ gives a valid bound; the search's θ̂ is certified by convexity to
  give a log-bound within :data:`CHERNOFF_LOG_TOL` = 1e-9 of the infimum, see
  ``FlowTails._chernoff_log``);
* ``cantelli`` (finite variance only): :math:`P \le V / (V + \Delta^2)` — the one-sided Chebyshev
  bound, the only one left when the decode law has no exponential moments;
* ``gaussian``: :math:`\bar\Phi(\Delta/\sqrt V)` — an *approximation*, **not a bound**; it is badly
  optimistic for skewed decode laws and is never used to pick a rate.

A budget law ``(LAW)`` (:mod:`numerics.model.budget`) has its own mean as the rate. Its cohort of
B requests splits into min B single requests and one block of the other B − min B ≤ max B − min B,
so Hoeffding's range sum is (min B + (max B − min B)²)·Σ_a (s_max+a+1)² (= ⌈r⌉·Σ for the randomized
law) and Bernstein's increment is max(1, max B − min B)·c; both need a bounded budget law.

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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol, get_args

import numpy as np
from numpy.typing import ArrayLike

from numerics.analysis.flow import age_sums, log_mgf_from_log_phi, log_phi_by_age, log_stay_by_age
from numerics.errors import SettingError, WorkloadError
from numerics.model.budget import BudgetKind, BudgetLaw, as_budget, is_law_spec
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
#: Tolerance of the Chernoff θ search on the log-bound (absolute, on top of 1e-12·θM of
#: rounding): the returned log-bound exceeds the infimum over θ by at most this, by convexity.
CHERNOFF_LOG_TOL = 1e-9
_CHERNOFF_MAX_STENCILS = 60  # a search that is not certified by then returns its best θ (valid)
_PHI_CACHE_ELEMENTS = 1 << 22  # log φ_a(θ) kept for at most this many (θ, a) pairs (32 MiB)
_LOG_TAU = math.log(1e-30)  # log 1e-30: ages past the last with log E[e^{θX_a}; O > a] above it are bounded


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
        m = memory_tokens
        if isinstance(m, bool) or not isinstance(m, int | float | np.integer | np.floating) or not (
                math.isfinite(m) and m >= 1 and m == int(m)):
            raise SettingError(f"memory must be a positive whole number of tokens, got {m!r}")
        workload.require_finite_memory_time()
        self.workload = workload
        self.memory_tokens = int(memory_tokens)
        self.mean_memory_time = workload.mean_memory_time
        g, mu, nu = workload.age_moments()
        self._log_stay = log_stay_by_age(g)
        # the Chernoff θ search (see _chernoff_log): the last θ̂ and stencil (centre, half-width),
        # kept to warm-start the next search; log φ_a(θ) by θ (budget-free, so reused across
        # rates), least recently used first; solved (kind, rate, floor) → (θ̂, stencil, log-bound)
        self._theta_hint: float | None = None
        self._stencil: tuple[float, float] | None = None
        self._log_phi: dict[float, np.ndarray] = {}
        self._log_phi_slots = max(3, min(16, _PHI_CACHE_ELEMENTS // max(1, self._log_stay.size)))
        self._chernoff_memo: dict[tuple, tuple[float, tuple[float, float], float]] = {}
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
        self._check(name, budget)
        if delta <= 0:
            return 0.0
        if name == "hoeffding":
            if budget.hoeffding_count == 0:  # B ≡ 0: nothing is ever admitted, U ≡ 0 ≤ M
                return -math.inf
            return -2 * delta**2 / (budget.hoeffding_count * self._range_sq)
        var = self.variance(budget)
        if name == "bernstein":
            c = self._increment * (1.0 if budget.kind == "poisson" else budget.increment_count)
            return -(delta**2) / (2 * (var + c * delta / 3))
        if name == "gaussian":
            from scipy.special import log_ndtr  # here: scipy.special is slow to import

            return float(log_ndtr(-delta / math.sqrt(var))) if var > 0 else _LOG_TINY
        if name == "cantelli":
            return _log_plus(math.log(var / (var + delta**2)) if var > 0 else _LOG_TINY,
                             self.penalty(rate))
        return _log_plus(self._chernoff_log(budget), self.penalty(rate))

    def bound(self, name: BoundName, rate: float | None,
              budget: BudgetKind | str | BudgetLaw = "randomized") -> float:
        """The named bound on P(U > M) at rate ``rate`` (capped at 1; a budget law ``"(LAW)"``
        fixes the rate: None or its mean)."""
        law = as_budget(budget, rate)
        return min(1.0, math.exp(max(self.log_bound(name, law), _LOG_TINY)))

    def bounds(self, rate: float | None,
               budget: BudgetKind | str | BudgetLaw = "randomized") -> dict[BoundName, float | None]:
        """Every bound at ``rate``; None where the bound is not applicable."""
        out: dict[BoundName, float | None] = {}
        for name in BOUNDS:
            try:
                out[name] = self.bound(name, rate, budget)
            except BoundNotApplicable:
                out[name] = None
        return out

    def applicable(self, budget: BudgetKind | str | BudgetLaw = "randomized") -> dict[BoundName, str | None]:
        """For each bound: None if it applies, else the reason it does not."""
        out: dict[BoundName, str | None] = {}
        for name in BOUNDS:
            try:
                self._check(name, budget)
                out[name] = None
            except BoundNotApplicable as exc:
                out[name] = str(exc)
        return out

    def _check(self, name: str, budget: str | BudgetLaw) -> None:
        if is_law_spec(budget):
            budget = as_budget(budget)
        law = budget if isinstance(budget, BudgetLaw) else None
        budget_kind = budget.kind if law is not None else budget
        if name not in BOUNDS:
            raise WorkloadError(f"unknown bound {name!r}; choose from {', '.join(BOUNDS)}")
        if name in ("hoeffding", "bernstein") and not self.bounded:
            raise BoundNotApplicable(
                f"{name} needs bounded prompt and decode laws (clip them with max=)"
            )
        if name == "hoeffding" and budget_kind == "poisson":
            raise BoundNotApplicable("hoeffding needs a bounded budget (not Poisson)")
        if name in ("hoeffding", "bernstein") and law is not None and law.kind == "law" and (
                not math.isfinite(law.max_count)):
            raise BoundNotApplicable(f"{name} needs a bounded budget law (clip it with max=)")
        if name in ("bernstein", "cantelli", "gaussian") and not self.finite_variance:
            raise BoundNotApplicable(f"{name} needs Var U < ∞, i.e. E[O³] < ∞")

    def chernoff_theta(self, budget: BudgetLaw) -> float:
        """θ* minimising log E e^{θU} − θM: Chernoff's tilt, found even where the bound is below
        the smallest double (the exact tail of :mod:`numerics.analysis.exact` tilts at it).

        Located to the tolerance of :meth:`_chernoff_log`: within about
        √(CHERNOFF_LOG_TOL / h''(θ*)) of the exact minimiser.
        """
        self._chernoff_log(budget, floor=-math.inf)
        return float(self._theta_hint or 0.0)

    def _chernoff_values(self, thetas: list[float], budget: BudgetLaw) -> np.ndarray:
        """h(θ) = −θM + log E e^{θU} at each θ > 0 (+∞ past 1e100), from above by ≤ n·r·1e-30.

        log φ_a(θ) does not depend on the budget: it is computed once per θ (the θ not yet known
        in one vectorised pass, one at a time for very many ages) and kept for the next rates of
        a rate search. From the last age with log E[e^{θX_a}; O > a] > log τ (τ = 1e-30) on,
        0 ≤ log φ_a ≤ τ, so each of those n ages adds at most log P_B(e^τ) ≈ rτ: that is added
        for them instead of their terms (the value stays an upper bound, and the certificate of
        :func:`_convex_gap` is unaffected).
        """
        cache = self._log_phi
        wanted = list(dict.fromkeys(thetas))
        rows = {t: cache.pop(t) for t in wanted if t in cache}  # re-inserted: most recent last
        new = [t for t in wanted if t not in rows]
        if new:
            if self._log_stay.size * len(new) <= _PHI_CACHE_ELEMENTS:
                alives = list(self.workload.age_log_mgf(np.array(new)))
            else:
                alives = [self.workload.age_log_mgf(t) for t in new]
            for t, alive in zip(new, alives, strict=True):
                above = np.flatnonzero(alive > _LOG_TAU)
                n = int(above[-1]) + 1 if above.size else 0
                rows[t] = (log_phi_by_age(self._log_stay[:n], alive[:n]), alive.size - n)
        cache.update(rows)
        while len(cache) > self._log_phi_slots:
            del cache[next(iter(cache))]
        per_age_tail = log_mgf_from_log_phi(np.array([math.exp(_LOG_TAU)]), budget)
        m = self.memory_tokens
        with np.errstate(invalid="ignore", over="ignore"):
            val = np.array([-t * m + log_mgf_from_log_phi(rows[t][0], budget) + rows[t][1] * per_age_tail
                            for t in thetas])
        # +∞ past 1e100: far from the minimum (h(0) = 0), and the Poisson generating function is
        # capped at log φ = 700 out there, which would break the convexity the search relies on
        return np.where(np.isfinite(val) & (val < 1e100), val, math.inf)

    def _chernoff_log(self, budget: BudgetLaw, floor: float = _LOG_TINY) -> float:
        r"""log of inf_θ E e^{θ(U − M)} (without the truncation term), clipped to [floor, 0].

        Minimises the convex h(θ) = −θM + log E e^{θU} (h(0) = 0) with :func:`_minimise_convex`:
        the returned h(θ̂) is a valid Chernoff bound whatever θ̂, and exceeds inf_θ h by at most
        :data:`CHERNOFF_LOG_TOL` (1e-9 on the log scale, plus 1e-12·θ̂M of rounding), certified by
        convexity. A search starts from the last one's stencil: θ*(r) moves smoothly along a rate
        search, and the log φ_a kept for those θ usually certify the new minimum at once. A first
        search starts at Bennett's tilt (:meth:`_cold_theta`).
        """
        m = self.memory_tokens
        if self.bounded and budget.max_count * self._max_terms_sum <= m:
            return _LOG_TINY  # U ≤ M surely: the infimum over θ → ∞ is 0
        key = (budget.kind, budget.rate_per_slot, floor) if budget.kind != "law" else None
        if key in self._chernoff_memo:
            self._theta_hint, self._stencil, value = self._chernoff_memo[key]
            return value
        centre, step = self._stencil or (self._cold_theta(budget), math.inf)  # (d ≤ θ_c/10)
        theta, value, self._stencil = _minimise_convex(
            lambda ths: self._chernoff_values(ths, budget), centre, step, floor,
            lambda th: CHERNOFF_LOG_TOL + 1e-12 * th * m)
        self._theta_hint = theta
        value = _LOG_TINY if value < floor else min(value, 0.0)
        if key is not None:
            self._chernoff_memo[key] = (self._theta_hint, self._stencil, value)
        return value

    def _cold_theta(self, budget: BudgetLaw) -> float:
        """A first θ: Bennett's tilt log(1 + cΔ/V)/c (c the largest increment, or for unbounded
        laws E[S] + 2E[O²]/E[O]), which is the Gaussian tilt Δ/V when cΔ ≪ V and stays sensible
        for Poisson-like tails; 1e-3/c where the variance is not finite."""
        scale = self._increment if self.bounded else self.workload.mean_prompt + 2 * (
            self.workload.decode_second_moment / self.workload.mean_decode
        )
        var, delta = self.variance(budget), self.slack(budget.rate_per_slot)
        if math.isfinite(var) and var > 0 and delta > 0:
            return math.log1p(scale * delta / var) / scale
        return 1e-3 / scale

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
        if is_law_spec(budget) or (isinstance(budget, BudgetLaw) and budget.kind == "law"):
            law = as_budget(budget)
            raise WorkloadError(
                f"a budget law fixes the rate (its mean {law.rate_per_slot:.6g}): there is no rate "
                f"to search; evaluate its overflow with FlowTails.bounds(None, {law.spec!r}) or "
                "exact_tail, or use flowstab plan --budget, which certifies that rate"
            )
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


def _convex_gap(xs: list[float], fs: list[float], i: int) -> float:
    """An upper bound on fs[i] − inf h over θ ≥ 0 for a convex h sampled at the sorted xs
    (xs[0] = 0, fs[i] the smallest sample); ∞ while the smallest sample is the last one.

    The secant through two consecutive samples bounds h from below outside their interval. On
    each interval next to xs[i], the larger of the secants from its two outer sides is a lower
    bound; its minimum there is at an end or where the two secants cross. A secant's value is
    lowered by its own rounding error (steep secants far from their samples cancel badly), and
    at the crossing (clamped to the interval) the lower of the two is taken: rounding can only
    delay the certificate, never give it early.
    """
    n = len(xs)
    if i == n - 1:
        return math.inf

    def secant(j: int, k: int) -> tuple[float, float, float] | None:
        if j < 0 or k >= n or not (math.isfinite(fs[j]) and math.isfinite(fs[k])):
            return None
        slope = (fs[k] - fs[j]) / (xs[k] - xs[j])
        return (xs[j], fs[j], slope) if math.isfinite(slope) else None

    def value(line: tuple[float, float, float], x: float) -> float:
        x0, f0, slope = line
        rise = slope * (x - x0)
        return f0 + rise - 1e-15 * (abs(f0) + abs(rise))

    gap = 0.0
    for a, pair in ((i, (secant(i - 1, i), secant(i + 1, i + 2))),
                    (i - 1, (secant(i - 2, i - 1), secant(i, i + 1)))):
        if a < 0:
            continue  # θ = 0 is the smallest sample: no interval on its left (θ > 0 only)
        lines = [ln for ln in pair if ln is not None]
        if not lines:
            return math.inf
        lo, hi = xs[a], xs[a + 1]
        low = min(max(value(ln, x) for ln in lines) for x in (lo, hi))
        if len(lines) == 2 and lines[0][2] != lines[1][2]:
            (x1, f1, s1), (x2, f2, s2) = lines
            cross = min(max((f2 - f1 + s1 * x1 - s2 * x2) / (s1 - s2), lo), hi)  # clamped
            low = min(low, *(value(ln, cross) for ln in lines))
        gap = max(gap, fs[i] - low)
    return gap


def _minimise_convex(values: Callable[[list[float]], np.ndarray], centre: float, step: float,
                     floor: float, tol: Callable[[float], float]
                     ) -> tuple[float, float, tuple[float, float]]:
    """Minimise a convex h on θ > 0 with h(0) = 0 and h'(0) < 0, to a certified tolerance.

    Each round samples a stencil θ_c − d, θ_c, θ_c + d (``values``: one vectorised call) and
    stops once :func:`_convex_gap` certifies the best sample θ̂ to within ``tol(θ̂)`` of inf h, or
    h(θ̂) < ``floor``. The samples bracket the minimiser between the best one's neighbours; the
    next centre is the Newton step of the stencil's finite differences where it lies in the
    bracket and moves at most half as far as the round before (else the bracket is bisected,
    geometrically when wide), or, while unbracketed on the right, at most 16 times further out.
    The half-width is d = ½√(tol/h''), so that the stencil round the minimiser certifies it.
    Returns (θ̂, h(θ̂), (θ_c, d) of the last stencil); after _CHERNOFF_MAX_STENCILS rounds the
    best sample so far (a valid bound, not certified).
    """
    pts = {0.0: 0.0}
    moved = math.inf
    step = min(step, 0.1 * centre)
    for _ in range(_CHERNOFF_MAX_STENCILS):
        stencil = (centre - step, centre, centre + step)
        new = [t for t in stencil if t not in pts]
        if new:
            pts.update(zip(new, values(new).tolist(), strict=True))
        xs = sorted(pts)
        fs = [pts[x] for x in xs]
        i = min(range(len(xs)), key=fs.__getitem__)
        if fs[i] < floor or _convex_gap(xs, fs, i) <= tol(xs[i]):
            break
        lo, hi = xs[i - 1] if i > 0 else 0.0, xs[i + 1] if i + 1 < len(xs) else math.inf
        if math.isfinite(hi) and hi - lo <= 1e-14 * hi:
            break  # the bracket is at double precision: nothing left to gain
        f_lo, f_0, f_hi = (pts[t] for t in stencil)
        curv = (f_hi - 2 * f_0 + f_lo) / step**2 if math.isfinite(f_hi) else math.nan
        newton = centre - (f_hi - f_lo) / (2 * step) / curv if curv > 0 else math.nan
        if math.isinf(hi):
            nxt = newton if xs[i] < newton <= 16 * xs[i] else 4 * xs[i]
        elif lo < newton < hi and abs(newton - centre) <= 0.5 * moved:
            nxt = newton
        else:
            nxt = math.sqrt(lo * hi) if lo > 0 and hi > 4 * lo else 0.5 * (lo + hi)
        moved = abs(nxt - centre)
        width = 0.5 * math.sqrt(tol(nxt) / curv) if curv > 0 else 0.1 * nxt
        step = max(min(width, 0.1 * nxt, 0.25 * (nxt - lo), 0.25 * (hi - nxt)), 1e-12 * nxt)
        centre = nxt
    return xs[i], fs[i], (centre, step)


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
