r"""Exact P(U > M) for one budget law or per-class budgets, and the rate r*(ε) under it.

The entry points of :mod:`numerics.analysis.exact`: they pick the tilt θ (the Chernoff minimiser
for M), run the main-lobe inversion (:mod:`~numerics.analysis.exact.lobe`) and fall back to the
full-window FFT (:mod:`~numerics.analysis.exact.fft`) or the whole circle where the lobe cannot
vouch for its answer.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from numerics.analysis.bounds import BoundNotApplicable, FlowRate, FlowTails
from numerics.analysis.exact.fft import _fft_tail, _series_tail
from numerics.analysis.exact.lobe import _lobe_log_tail, _LobeUnreliable
from numerics.analysis.exact.result import ExactTail
from numerics.analysis.flow import flow_log_mgf
from numerics.errors import WorkloadError
from numerics.model.budget import BudgetKind, BudgetLaw
from numerics.model.workload import RequestClass, Workload, ensure_memory

__all__ = ["TailChoice", "exact_flow_rate", "exact_overflow", "exact_tail", "exact_tail_per_class"]

#: The ``method`` option of :func:`exact_tail`: the main lobe with a fallback, or one method only.
TailChoice = Literal["auto", "lobe", "fft"]


def exact_tail(workload: Workload, memory_tokens: int, rate_per_slot: float,
               budget: BudgetKind = "randomized", rtol: float = 1e-8,
               method: TailChoice = "auto") -> ExactTail:
    """Exact P(U > M) of the saturated flow-control memory (see the module docstring).

    Parameters
    ----------
    workload : Workload
    memory_tokens : int
    rate_per_slot : float
        The activation rate r (the budget law's mean).
    budget : {"randomized", "deterministic", "poisson"}
    rtol : float
        Relative agreement required between two successive grid sizes.
    method : {"auto", "fft", "lobe"}
        ``fft`` inverts the tilted transform on a full window of L points around M (cost
        O(L · ages)); ``lobe`` integrates the inversion formula over the transform's main lobe
        only (cost O(lobe points · ages), about 100 points whatever M; it scans the rest of the
        circle for side peaks and raises if it finds one); ``auto`` uses ``lobe`` and falls back
        to ``fft`` when the scan finds a side peak.
    """
    if method not in ("auto", "fft", "lobe"):
        raise WorkloadError(f"method must be auto, fft or lobe, got {method!r}")
    if not (isinstance(rtol, float | int) and 0 < rtol < 1):
        raise WorkloadError(f"rtol must lie in (0, 1), got {rtol!r}")
    tails = FlowTails(workload, memory_tokens)
    law = BudgetLaw(budget, rate_per_slot)
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
    if method in ("lobe", "auto"):
        try:
            series = None if method == "lobe" else (
                lambda: _series_tail(workload, m, law, theta, sigma, rtol))
            result = _lobe_log_tail([(workload, law)], m, theta, sigma, rtol, long_walk=series)
        except _LobeUnreliable as exc:
            if method == "lobe":
                raise WorkloadError(f"method='lobe': {exc.args[0]}; use method='fft'") from None
    if result is None:
        result = _fft_tail(workload, m, law, theta, sigma, rtol, mean)
    return _with_penalty(result, tails.penalty(rate_per_slot))


#: A Chernoff bound δ ≥ P(U ≤ M) below this settles P(U > M) = 1 − δ/2 ± δ/2 to double precision.
_LOG_NEGLIGIBLE = math.log(1e-17)


def _least_memory(workload: Workload, law: BudgetLaw) -> float:
    """The least value U can take: every cohort holds at least its smallest budget n_min, and
    every request at age a < o_min holds at least s_min + a + 1 tokens (s_min, o_min the smallest
    prompt and decode over the classes), so U ≥ n_min·Σ_{a<o_min} (s_min + a + 1)."""
    n_min = 0 if law.kind == "poisson" else math.floor(law.rate_per_slot)
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


def exact_overflow(workload: Workload, memory_tokens: int, rate_per_slot: float,
                   budget: BudgetKind = "randomized", method: TailChoice = "auto") -> float:
    """P(U > M), exact to the FFT's rounding (see :func:`exact_tail`)."""
    return exact_tail(workload, memory_tokens, rate_per_slot, budget, method=method).prob


def exact_flow_rate(workload: Workload, memory_tokens: int, epsilon: float,
                    budget: BudgetKind = "randomized", rtol: float = 1e-6) -> FlowRate:
    """r*(ε) under the exact tail: the largest mean rate with P(U > M) ≤ ε.

    P(U > M) increases with r (a larger mean budget is stochastically larger for each budget law),
    so r* is found by a bracketed root search (Brent) on log P(U > M) − log ε. The bracket starts
    at the Gaussian approximation's rate (cheap, and usually within a few per cent) and is widened
    geometrically; λ_max (where E U = M, so P(U > M) is near 1/2 > ε) caps it. A deterministic
    budget searches the integers.

    Examples
    --------
    Uniform decode on 1..100, S = 20, M = 20 000 (E[W] = 2727, λ_max = 7.33): the Chernoff
    bound allows r = 5.86 per slot at ε = 1e-6, the exact tail 6.00.

    >>> from numerics.model.specs import parse_law
    >>> wl = Workload.single(parse_law("20"), parse_law("uniform:1,100"))
    >>> round(exact_flow_rate(wl, 20_000, 1e-6).rate_per_slot, 2)
    6.0
    """
    from scipy import optimize

    if not (isinstance(epsilon, float | int) and 0 < epsilon < 1):
        raise WorkloadError(f"epsilon must lie in (0, 1), got {epsilon!r}")
    tails = FlowTails(workload, memory_tokens)
    log_eps = math.log(epsilon)
    cache: dict[float, ExactTail] = {}

    def tail(r: float) -> ExactTail:
        if r not in cache:
            cache[r] = exact_tail(workload, memory_tokens, r, budget)
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
        lo, hi = guess, top
        while excess(lo) > 0:  # widen the bracket downwards
            hi, lo = lo, lo / 2
            if lo < 1e-12 * top:
                lo = 0.0
                break
        if lo == 0.0:
            rate = 0.0
        elif excess(hi) <= 0:
            rate = hi
        else:
            rate = optimize.brentq(excess, lo, hi, xtol=rtol * top, rtol=rtol)
            while excess(rate) > 0 and rate > lo:  # Brent's root is within xtol: step below it
                rate = max(lo, rate - rtol * top)
    if rate <= 0:
        return FlowRate(0.0, "exact", 1.0, float(epsilon), budget)
    return FlowRate(rate, "exact", tail(rate).prob, float(epsilon), budget)


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
