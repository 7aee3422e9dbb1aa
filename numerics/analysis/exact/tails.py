r"""Exact P(U > M) for one budget law or per-class budgets, and the rate r*(ε) under it.

The entry points of :mod:`numerics.analysis.exact`: they pick the tilt θ (the Chernoff minimiser
for M), run the main-lobe inversion (:mod:`~numerics.analysis.exact.lobe`) and fall back to the
full-window FFT (:mod:`~numerics.analysis.exact.fft`) or the whole circle where the lobe cannot
vouch for its answer.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from numerics.analysis.bounds import BoundNotApplicable, FlowRate, FlowTails
from numerics.analysis.exact.bracket import _BracketFailed, bracket_tail
from numerics.analysis.exact.fft import _few_requests, _fft_tail, _series_tail
from numerics.analysis.exact.lobe import _lobe_log_tail, _LobeUnreliable
from numerics.analysis.exact.result import ExactTail, _OutOfTime, _time_budget
from numerics.analysis.flow import flow_log_mgf
from numerics.errors import SettingError, WorkloadError
from numerics.model.budget import BudgetKind, BudgetLaw, as_budget, is_law_spec
from numerics.model.workload import RequestClass, Workload, ensure_memory

__all__ = ["ExactFlowRate", "TailChoice", "exact_flow_rate", "exact_overflow", "exact_tail",
           "exact_tail_per_class"]

#: The ``method`` option of :func:`exact_tail`: the main lobe with a fallback, or one method only.
TailChoice = Literal["auto", "lobe", "fft"]


def exact_tail(workload: Workload, memory_tokens: int, rate_per_slot: float | None,
               budget: BudgetKind | str | BudgetLaw = "randomized", rtol: float = 1e-8,
               method: TailChoice = "auto", max_seconds: float | None = 60.0,
               negligible: float = 1e-15) -> ExactTail:
    """Exact P(U > M) of the saturated flow-control memory (see the module docstring).

    Parameters
    ----------
    workload : Workload
    memory_tokens : int
    rate_per_slot : float or None
        The activation rate r (the budget law's mean; None or that mean for a budget law).
    budget : {"randomized", "deterministic", "poisson"} or str or BudgetLaw
        A named law, or any length law in parentheses, ``"(uniform:0,6)"``
        (:func:`numerics.model.budget.as_budget`).
    rtol : float
        Relative agreement required between two successive grid sizes.
    method : {"auto", "fft", "lobe"}
        ``fft`` inverts the tilted transform on a full window of L points around M (cost
        O(L · ages)); ``lobe`` integrates the inversion formula over the transform's main lobe
        only (cost O(lobe points · ages), about 100 points whatever M; it scans the rest of the
        circle for side peaks and raises if it finds one); ``auto`` uses ``lobe`` and falls back
        to ``fft`` when the scan finds a side peak, and to the lattice bracket
        (:mod:`~numerics.analysis.exact.bracket`, method ``bracket``: P(U⁻ > M) ≤ P(U > M) ≤
        P(U⁺ > M) with request sizes rounded to multiples of b tokens; ``prob`` is the upper end)
        where the lobe or the full window would run past the budget.
    max_seconds : float or None
        Wall-clock budget of the inversion (None: none). Past it (or where it would be passed),
        the answer is the Chernoff bound's bracket if that bound is below ``negligible``, else
        (``auto``) the lattice bracket, else a :class:`SettingError`.
    negligible : float
        A tail below this need not be resolved: where ``auto`` would fall back to a full-window
        FFT costlier than about 5 s (or the budget runs out) and the Chernoff bound δ ≥ P(U > M)
        is below it, the result is ``chernoff-upper``: P(U > M) = δ/2 with ``abs_error`` δ/2.

    Raises
    ------
    SettingError
        The inversion (and, for ``auto``, the lattice bracket) ran past ``max_seconds`` and the
        tail is not provably negligible.
    """
    if not (max_seconds is None or (isinstance(max_seconds, float | int) and max_seconds > 0)):
        raise SettingError(f"`max_seconds` must be > 0 or None, got {max_seconds!r}", "max_seconds")
    if not (isinstance(negligible, float | int) and 0 <= negligible < 1):
        raise WorkloadError(f"negligible must lie in [0, 1), got {negligible!r}")
    return _tail_with_fallback(workload, memory_tokens, rate_per_slot, budget, rtol, method,
                               max_seconds, negligible)


def _tail_with_fallback(workload: Workload, memory_tokens: int, rate_per_slot: float | None,
                        budget: BudgetKind | str | BudgetLaw, rtol: float, method: TailChoice,
                        max_seconds: float | None, negligible: float,
                        bracket_first: bool = False, upper_only: bool = False) -> ExactTail:
    """:func:`exact_tail` after its checks; ``bracket_first`` (a rate search that has already
    needed the bracket) goes to it without trying the lobe again; ``upper_only`` (a rate search:
    whether P ≤ ε needs only the upper end) skips the bracket's lower end."""
    try:
        with _time_budget(max_seconds):
            if bracket_first and method == "auto":
                found = _bracket_fallback(workload, memory_tokens, rate_per_slot, budget, negligible,
                                          upper_only)
                if found is not None:
                    return found
            try:
                return _exact_tail(workload, memory_tokens, rate_per_slot, budget, rtol, method,
                                   negligible, upper_only)
            except _OutOfTime:
                # the lobe or the FFT would run past the budget: the lattice bracket (or the
                # Chernoff bound, for a negligible tail) instead
                found = None if method != "auto" else _bracket_fallback(
                    workload, memory_tokens, rate_per_slot, budget, negligible, upper_only)
                if found is None:
                    raise
                return found
    except _OutOfTime:
        tails = FlowTails(workload, memory_tokens)
        law = as_budget(budget, rate_per_slot)
        upper = _negligible_upper(tails, law, negligible)
        if upper is not None:
            return upper
        raise SettingError(
            f"the exact tail would run past its time budget (`max_seconds` = {max_seconds:g} s, or "
            f"the rate search's) at M = {tails.memory_tokens}, r = {law.rate_per_slot:.6g}, and its "
            f"Chernoff bound is not below {negligible:g}; raise `max_seconds`, or use a bound (plan "
            "without --exact)", "max_seconds") from None


def _bracket_fallback(workload: Workload, memory_tokens: int, rate_per_slot: float | None,
                      budget: BudgetKind | str | BudgetLaw, negligible: float,
                      upper_only: bool = False) -> ExactTail | None:
    """Where the exact inversion is too costly: ``chernoff-upper`` for a negligible tail, else
    the lattice bracket (:mod:`~numerics.analysis.exact.bracket`), its upper end raised by the
    truncation penalty; None where neither applies (the bracket did not converge)."""
    tails = FlowTails(workload, memory_tokens)
    law = as_budget(budget, rate_per_slot)
    m = tails.memory_tokens
    if law.rate_per_slot == 0 or (tails.bounded and law.max_count * tails._max_terms_sum <= m):
        return None  # settled at once by _exact_tail
    upper = _negligible_upper(tails, law, negligible)
    if upper is not None:
        return upper
    if law.rate_per_slot * workload.mean_memory_time < m:
        theta = tails.chernoff_theta(law)
    else:
        theta = _lower_chernoff(workload, m, law, math.sqrt(tails.variance(law)))[0]
    try:
        result = bracket_tail(workload, m, law, theta, lower_end=not upper_only)
    except _BracketFailed:
        return None
    penalty = tails.penalty(law.rate_per_slot)
    if penalty > 0:  # the upper end, and the width, grow by the truncation penalty
        log_prob = min(float(np.logaddexp(result.log_prob, math.log(penalty))), 0.0)
        result = dataclasses.replace(result, log_prob=log_prob, abs_error=None if result.abs_error
                                     is None else result.abs_error + penalty)
    return result


def _negligible_upper(tails: FlowTails, law: BudgetLaw, negligible: float) -> ExactTail | None:
    """``chernoff-upper`` (P = δ/2 ± δ/2) where E U < M and the Chernoff bound δ ≤ negligible."""
    if law.rate_per_slot * tails.workload.mean_memory_time >= tails.memory_tokens:
        return None
    try:
        log_delta = tails.log_bound("chernoff", law)
    except BoundNotApplicable:
        return None
    if not log_delta <= math.log(max(negligible, 1e-300)):
        return None
    return ExactTail(log_delta - math.log(2.0), 0, tails.chernoff_theta(law), 0.0, "chernoff-upper",
                     math.exp(log_delta) / 2)


#: Element operations (frequencies × ages, both grids) above which the full-window FFT would take
#: more than about 5 s, and a negligible tail is answered by its Chernoff bound instead.
_FFT_WORK = 3e7


def _exact_tail(workload: Workload, memory_tokens: int, rate_per_slot: float | None,
                budget: BudgetKind | str | BudgetLaw, rtol: float, method: TailChoice,
                negligible: float, upper_only: bool = False) -> ExactTail:
    if method not in ("auto", "fft", "lobe"):
        raise WorkloadError(f"method must be auto, fft or lobe, got {method!r}")
    if not (isinstance(rtol, float | int) and 0 < rtol < 1):
        raise WorkloadError(f"rtol must lie in (0, 1), got {rtol!r}")
    tails = FlowTails(workload, memory_tokens)
    law = as_budget(budget, rate_per_slot)
    rate_per_slot = law.rate_per_slot
    m = tails.memory_tokens
    if tails.bounded and law.max_count * tails._max_terms_sum <= m:
        return ExactTail(-math.inf, 0, 0.0, 0.0, "sure", 0.0)  # U ≤ M surely
    if rate_per_slot == 0:
        return ExactTail(-math.inf, 0, 0.0, 0.0, "sure", 0.0)
    mean = rate_per_slot * workload.mean_memory_time
    sigma = math.sqrt(tails.variance(law))
    if mean < m:
        theta = tails.chernoff_theta(law)
    else:
        # E U ≥ M: invert the lower tail P(U ≤ M) instead, tilted at its own Chernoff minimiser
        # θ < 0 (so that the tilted law is centred at M, whatever r), unless the support of U or
        # the Chernoff bound on P(U ≤ M) already settles P(U > M) to double precision.
        if _least_memory(workload, law) > m:
            return ExactTail(0.0, 0, 0.0, 0.0, "sure", 0.0)  # U > M surely
        theta, log_delta = _lower_chernoff(workload, m, law, sigma)
        if log_delta < _LOG_NEGLIGIBLE:
            delta = math.exp(log_delta)
            return _with_penalty(ExactTail(-delta / 2, 0, theta, 0.0, "chernoff", delta / 2),
                                 tails.penalty(rate_per_slot))
    result = None
    series_tried = False
    if method == "auto" and _few_requests(workload, law, theta):
        # few requests under the tilt: a lumpy law whose transform dies out slowly; the series
        # first (it costs O(terms · L log L), whatever the lobe's shape)
        result = _series_tail(workload, m, law, theta, sigma, rtol)
        if result is not None:
            return _with_penalty(result, tails.penalty(rate_per_slot))
        series_tried = True
    if method in ("lobe", "auto"):
        try:
            series = None if method == "lobe" or series_tried else (
                lambda: _series_tail(workload, m, law, theta, sigma, rtol))
            result = _lobe_log_tail([(workload, law)], m, theta, sigma, rtol, long_walk=series)
        except _LobeUnreliable as exc:
            if method == "lobe":
                raise WorkloadError(f"method='lobe': {exc.args[0]}; use method='fft'") from None
    if result is None:
        if method == "auto" and theta > 0:
            # the full window needs L ≈ 20 σ_θ points, each a product over the ages, twice
            dh = 0.01 / max(sigma, 1.0)
            var_t = (flow_log_mgf(workload, theta + dh, law) - 2 * flow_log_mgf(workload, theta, law)
                     + flow_log_mgf(workload, theta - dh, law)) / dh**2
            sd_t = math.sqrt(var_t) if math.isfinite(var_t) and var_t > 0 else sigma
            if 3 * 20 * sd_t * workload.n_ages > _FFT_WORK:
                upper = _negligible_upper(tails, law, negligible)
                if upper is not None:
                    return upper
                # the full window would cost more than about 5 s: the lattice bracket instead
                found = _bracket_fallback(workload, m, None, law, negligible, upper_only)
                if found is not None:
                    return found
        result = _fft_tail(workload, m, law, theta, sigma, rtol, mean)
    return _with_penalty(result, tails.penalty(rate_per_slot))


#: A Chernoff bound δ ≥ P(U ≤ M) below this settles P(U > M) = 1 − δ/2 ± δ/2 to double precision.
_LOG_NEGLIGIBLE = math.log(1e-17)


def _least_memory(workload: Workload, law: BudgetLaw) -> float:
    """The least value U can take: every cohort holds at least its smallest budget n_min, and
    every request at age a < o_min holds at least s_min + a + 1 tokens (s_min, o_min the smallest
    prompt and decode over the classes), so U ≥ n_min·Σ_{a<o_min} (s_min + a + 1)."""
    n_min = law.min_count
    if n_min == 0:
        return 0.0
    s_min = min(c.lengths.prompt_law.min_value for c in workload.classes)
    o_min = min(c.lengths.decode_law.min_value for c in workload.classes)
    return float(n_min * (s_min * o_min + o_min * (o_min + 1) // 2))


def _lower_chernoff(workload: Workload, memory: int, law: BudgetLaw,
                    sigma: float) -> tuple[float, float]:
    """(θ, log δ): θ < 0 minimising log E e^{θU} − θM, and δ = that minimum's exp ≥ P(U ≤ M)."""
    from scipy import optimize

    def h(t: float) -> float:
        val = flow_log_mgf(workload, t, law) - t * memory
        return val if math.isfinite(val) else math.inf

    t = -1.0 / max(sigma, 1.0)
    h_t = h(t)
    for _ in range(200):  # double |θ| until the convex objective turns up
        if h_t < _LOG_NEGLIGIBLE:
            return t, h_t  # already negligible: no need for the minimiser itself
        h_next = h(2 * t)
        if not h_next < h_t:
            break
        t, h_t = 2 * t, h_next
    res = optimize.minimize_scalar(h, bounds=(2 * t, 0.0), method="bounded",
                                   options={"xatol": abs(t) * 1e-6})
    if res.fun < h_t:
        return float(res.x), float(min(res.fun, 0.0))
    return t, float(min(h_t, 0.0))


def _with_penalty(result: ExactTail, penalty: float) -> ExactTail:
    """Add r·E[#requests beyond the stored support] (unbounded laws) to the tail, in log space."""
    if penalty <= 0:
        return result
    log_prob = min(float(np.logaddexp(result.log_prob, math.log(penalty))), 0.0)
    return dataclasses.replace(result, log_prob=log_prob, abs_error=None)


def exact_overflow(workload: Workload, memory_tokens: int, rate_per_slot: float | None,
                   budget: BudgetKind | str | BudgetLaw = "randomized",
                   method: TailChoice = "auto") -> float:
    """P(U > M), exact to the FFT's rounding (see :func:`exact_tail`)."""
    return exact_tail(workload, memory_tokens, rate_per_slot, budget, method=method).prob


def exact_flow_rate(workload: Workload, memory_tokens: int, epsilon: float,
                    budget: BudgetKind = "randomized", rtol: float = 1e-6,
                    max_seconds: float | None = 120.0) -> FlowRate:
    """r*(ε) under the exact tail: the largest mean rate with P(U > M) ≤ ε.

    P(U > M) increases with r (a larger mean budget is stochastically larger for each budget law),
    so r* is found by a bracketed root search on log P(U > M) − log ε (see ``_continuous_root``:
    the Chernoff rate is a certified lower end, the search starts at the Gaussian rate, or at the
    geometric mean of the two where they differ by more than a factor 2, and interpolates in
    log r); λ_max (where E U = M, so P(U > M) is near 1/2 > ε) caps it. A deterministic budget
    searches the integers. ``max_seconds`` bounds the whole search (each exact tail also has its
    own 60 s): past it a :class:`SettingError` says so instead of the search running on. Where
    the tails need the lattice bracket, the search uses its upper end only (once one tail needed
    it, the others go straight to it): P(U > M) ≤ P(U⁺ > M) ≤ ε at r*, so r* is certified, at or
    below the exact one; the result, an :class:`ExactFlowRate`, says so in its ``description``.

    Examples
    --------
    Uniform decode on 1..100, S = 20, M = 20 000 (E[W] = 2727, λ_max = 7.33): the Chernoff
    bound allows r = 5.86 per slot at ε = 1e-6, the exact tail 6.00.

    >>> from numerics.model.specs import parse_law
    >>> wl = Workload.single(parse_law("20"), parse_law("uniform:1,100"))
    >>> round(exact_flow_rate(wl, 20_000, 1e-6).rate_per_slot, 2)
    6.0
    """
    if is_law_spec(budget) or isinstance(budget, BudgetLaw):
        law = as_budget(budget)
        raise WorkloadError(f"a budget law fixes the rate (its mean {law.rate_per_slot:.6g}): there "
                            f"is no rate to search; evaluate its tail with exact_tail(workload, M, "
                            f"None, {law.spec!r})")
    if not (isinstance(epsilon, float | int) and 0 < epsilon < 1):
        raise WorkloadError(f"epsilon must lie in (0, 1), got {epsilon!r}")
    if not (max_seconds is None or (isinstance(max_seconds, float | int) and max_seconds > 0)):
        raise SettingError(f"`max_seconds` must be > 0 or None, got {max_seconds!r}", "max_seconds")
    with _time_budget(max_seconds):
        return _exact_flow_rate(workload, memory_tokens, epsilon, budget, rtol)


def _exact_flow_rate(workload: Workload, memory_tokens: int, epsilon: float, budget: BudgetKind,
                     rtol: float) -> FlowRate:
    tails = FlowTails(workload, memory_tokens)
    log_eps = math.log(epsilon)
    cache: dict[float, ExactTail] = {}
    bracketed = [False]  # once one tail needed the lattice bracket, the others go straight to it

    def tail(r: float) -> ExactTail:
        if r not in cache:
            # only whether P(U > M) ≤ ε matters: the bracket's upper end decides it (certified)
            cache[r] = _tail_with_fallback(workload, memory_tokens, r, budget, 1e-8, "auto", 60.0,
                                           1e-15, bracketed[0], upper_only=True)
            bracketed[0] = bracketed[0] or cache[r].method == "bracket"
        return cache[r]

    def excess(r: float) -> float:
        return tail(r).log_prob - log_eps

    top = tails.lambda_max
    try:
        guess = tails.flow_rate(epsilon, budget, "gaussian").rate_per_slot
    except BoundNotApplicable:  # infinite variance: start from the middle
        guess = 0.5 * top
    guess = min(max(guess, 1e-9 * top), top)
    if budget == "deterministic":
        lo, hi = 0, math.floor(top)
        g = math.floor(guess)
        if g > 0 and excess(g) <= 0:
            lo = g
        else:
            hi = max(g - 1, 0)
        while lo < hi:  # largest integer r with P(U > M) ≤ ε
            mid = (lo + hi + 1) // 2
            if excess(mid) <= 0:
                lo = mid
            else:
                hi = mid - 1
        rate = float(lo)
    else:
        rate = _continuous_root(excess, tails, epsilon, budget, guess, top, rtol)
    if rate <= 0:
        return ExactFlowRate(0.0, "exact", 1.0, float(epsilon), budget, "rate 0: no exact tail")
    at = tail(rate)
    if any(t.method == "bracket" for t in cache.values()):
        text = (f"exact tail bounded above by the lattice bracket (bracket:b={at.lattice}, request "
                f"sizes rounded up to multiples of {at.lattice} tokens): P(U > M) ≤ {at.prob:.4g} ≤ "
                "ε at r*, so r* is certified (the exact r* lies at or above it)"
                if at.method == "bracket" else
                f"exact tail at r* ({at.description}); the search used the lattice bracket")
    else:
        text = f"exact tail at r*: {at.description}"
    return ExactFlowRate(rate, "exact", at.prob, float(epsilon), budget, text)


@dataclasses.dataclass(frozen=True)
class ExactFlowRate(FlowRate):
    """A :class:`~numerics.analysis.bounds.FlowRate` from :func:`exact_flow_rate`, with how its
    tail was computed (``description``: the method at r*, and whether the lattice bracket's upper
    end certified it)."""

    description: str = ""


def _continuous_root(excess: Callable[[float], float], tails: FlowTails, epsilon: float,
                     budget: BudgetKind, guess: float, top: float, rtol: float) -> float:
    """The largest r in [0, λ_max] with excess(r) = log P(U > M) − log ε ≤ 0, to xtol = rtol·λ_max.

    A safeguarded secant (inverse quadratic once three points are known) in log r: the Chernoff
    rate is a certified lower end of the bracket (its bound δ ≥ P(U > M) is ≤ ε there, so it needs
    no inversion), the first slope is the Chernoff bound's own (log P and log δ have nearly the
    same slope), and a step that leaves the bracket or does not halve the step before last is
    replaced by bisection (Brent's test). Once the root is located to xtol, one evaluation aimed
    just below it and one xtol above close the bracket: about 4 to 6 exact tails.
    """
    xtol = rtol * top
    try:
        lo = tails.flow_rate(epsilon, budget, "chernoff").rate_per_slot  # certified: P ≤ δ ≤ ε
    except BoundNotApplicable:
        lo = 0.0
    lo = min(max(lo, 0.0), top)
    hi = top  # P(U > M) is near 1/2 > ε at λ_max: "above", without evaluating it
    if lo > 0 and guess > 2 * lo:
        # heavy tails: the Gaussian rate is far above the Chernoff one and the root lies between,
        # nearer the geometric mean than either end
        guess = math.sqrt(lo * guess)
    x = min(max(guess, lo + xtol), top)
    fx = excess(x)
    if fx <= 0:
        if x >= top:
            return top
        lo = x
    else:
        hi = x
    # The interpolation runs in x = log r, where log P is nearly linear (P ∝ r^k at light load,
    # k requests needed to overflow); its first slope is that of the Chernoff bound, d log δ/d log r.
    slope = None
    try:
        h = max(1e-4 * x, xtol)
        if x - h > 0:
            lb = [tails.log_bound("chernoff", BudgetLaw(budget, v)) for v in (x - h, x)]
            slope = (lb[1] - lb[0]) / h * x if lb[1] > lb[0] else None
    except (BoundNotApplicable, WorkloadError):
        slope = None
    pts: list[tuple[float, float]] = [(math.log(x), fx)]  # (log r, excess) where evaluated
    steps: list[float] = []  # |Δ log r| of the iterations (Brent's test: each ≤ half the one before last)
    while hi - lo > xtol:
        ys = [y for _, y in pts[-3:]]
        if len(pts) >= 3 and len(set(ys)) == 3 and (
                max(x for x, _ in pts[-3:]) - min(x for x, _ in pts[-3:]) < math.log(2.0)):
            # inverse quadratic interpolation, on three points within a factor 2
            (x0, y0), (x1, y1), (x2, y2) = pts[-3:]
            cand = (x0 * y1 * y2 / ((y0 - y1) * (y0 - y2)) + x1 * y0 * y2 / ((y1 - y0) * (y1 - y2))
                    + x2 * y0 * y1 / ((y2 - y0) * (y2 - y1)))
        elif len(pts) >= 2 and pts[-1][1] != pts[-2][1]:
            (x1, y1), (x0, y0) = pts[-1], pts[-2]
            cand = x1 - y1 * (x1 - x0) / (y1 - y0)
        elif slope is not None:
            cand = pts[-1][0] - pts[-1][1] / slope
        else:
            cand = math.nan
        with np.errstate(over="ignore"):
            cand = math.exp(min(cand, 700.0)) if math.isfinite(cand) else math.nan
        step = abs(math.log(cand) - pts[-1][0]) if cand > 0 else math.inf
        if not math.isfinite(cand) or not lo < cand < hi or (
                len(steps) >= 2 and step > 0.5 * steps[-2]):
            # the interpolation left the bracket or stalled: bisect (geometrically while the
            # bracket spans a factor above 2)
            cand = math.sqrt(lo * hi) if lo > 0 and hi > 2 * lo else 0.5 * (lo + hi)
        close = len(pts) >= 2 and abs(cand - math.exp(pts[-1][0])) < 2 * xtol
        if close:  # at the root to the interpolation's accuracy: aim just below it
            cand -= 0.45 * xtol
        cand = min(max(cand, lo + 0.5 * xtol), hi - 0.5 * xtol)
        fc = excess(cand)
        if fc <= 0:
            lo = cand
        else:
            hi = cand
        steps.append(abs(math.log(cand) - pts[-1][0]))
        pts.append((math.log(cand), fc))
        if hi - lo > xtol and close:
            # one probe xtol away on the other side closes the bracket (instead of creeping up on
            # the root from one side)
            probe = cand + 0.9 * xtol if fc <= 0 else cand - 0.9 * xtol
            if lo < probe < hi:
                fp = excess(probe)
                if fp <= 0:
                    lo = probe
                else:
                    hi = probe
                pts.append((math.log(probe), fp))
    return lo


def exact_tail_per_class(workload: Workload, memory_tokens: int, rates_per_slot: ArrayLike,
                         budget: BudgetKind = "randomized", rtol: float = 1e-8) -> ExactTail:
    r"""Exact P(U > M) when each class k has its own budget law of mean r_k (Algorithm 1 with
    randomised budgets, or per-class flow control).

    The classes' memories are independent, so :math:`\log E e^{zU} = \sum_k \log E e^{zU_k}`;
    the main-lobe inversion of :func:`exact_tail` applies unchanged to the sum, with θ the
    Chernoff minimiser of :math:`\sum_k \log E e^{\theta U_k} - \theta M`.

    Examples
    --------
    Poisson budgets per class are one Poisson budget split by the mix (thinning), so both
    functions agree:

    >>> from numerics.model.specs import parse_law
    >>> from numerics.model.workload import RequestClass
    >>> wl = Workload((RequestClass.independent(parse_law("8"), parse_law("uniform:1,16"), name="a"),
    ...                RequestClass.independent(parse_law("32"), parse_law("uniform:1,32"), name="b")))
    >>> one = exact_tail(Workload((RequestClass(wl.classes[0].lengths, 2.0, "a"),
    ...                            RequestClass(wl.classes[1].lengths, 1.0, "b"))), 1500, 3.0, "poisson")
    >>> two = exact_tail_per_class(wl, 1500, [2.0, 1.0], "poisson")
    >>> abs(two.prob / one.prob - 1) < 1e-6
    True
    """
    from scipy import optimize

    rates = np.asarray(rates_per_slot, dtype=float)
    if rates.shape != (len(workload.classes),) or not np.all(np.isfinite(rates)) or np.any(rates < 0):
        raise WorkloadError(
            f"give one finite rate ≥ 0 per class ({len(workload.classes)}), got {rates_per_slot!r}"
        )
    m = ensure_memory(memory_tokens)
    parts = []
    for c, r in zip(workload.classes, rates, strict=True):
        if r > 0:
            parts.append((Workload((RequestClass(c.lengths, None, c.name),), workload.name),
                          BudgetLaw(budget, float(r))))
    if not parts:
        return ExactTail(-math.inf, 0, 0.0, 0.0, "sure")
    tails = [FlowTails(wl, m) for wl, _ in parts]
    if all(t.bounded for t in tails) and sum(
        law.max_count * t._max_terms_sum for t, (_, law) in zip(tails, parts, strict=True)
    ) <= m:
        return ExactTail(-math.inf, 0, 0.0, 0.0, "sure")
    mean = sum(law.rate_per_slot * wl.mean_memory_time for wl, law in parts)
    var = sum(t.variance(law) for t, (_, law) in zip(tails, parts, strict=True))
    theta = 0.0
    if mean < m:
        scale = max(math.sqrt(var), 1.0)

        def h(t: float) -> float:
            return sum(flow_log_mgf(wl, t, law) for wl, law in parts) - t * m

        hi = 1.0 / scale
        while h(2 * hi) < h(hi) and hi < 1e3:
            hi *= 2
        theta = float(optimize.minimize_scalar(h, bounds=(0.0, 2 * hi), method="bounded",
                                               options={"xatol": hi * 1e-6}).x)
    try:
        result = _lobe_log_tail(parts, m, theta, math.sqrt(var), rtol)
    except _LobeUnreliable:  # integrate over the whole circle instead
        try:
            result = _lobe_log_tail(parts, m, theta, math.sqrt(var), rtol, full_circle=True)
        except _LobeUnreliable as exc:
            raise WorkloadError(f"exact per-class tail: {exc.args[0]}") from None
        result = dataclasses.replace(result, method="circle")
    return _with_penalty(
        result, sum(t.penalty(law.rate_per_slot) for t, (_, law) in zip(tails, parts, strict=True))
    )
