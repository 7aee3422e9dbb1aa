r"""Exact tails by the tilted FFT over a full window of L points around M (``method="fft"``).

See :mod:`numerics.analysis.exact` for the formula: the θ-tilted law q of U is recovered on
a window of L points around M by one FFT of its transform on the circle of radius e^θ, and
L doubles until two answers agree to ``rtol``.
"""

from __future__ import annotations

import math

import numpy as np

from numerics.analysis.exact.result import ExactTail, _check_time
from numerics.analysis.flow import log_mgf_from_ages, log_stay_by_age
from numerics.model.budget import BudgetLaw
from numerics.model.workload import IndependentLengths, Workload

__all__: list[str] = []

_MAX_LOG2_L = 24  # 16 M points: the largest FFT tried
_MAX_DOUBLINGS = 4  # grid doublings tried for the convergence check
#: Untilted (θ = 0, tail ≳ 1/2 or M below the mean) answers are converged once two grids agree
#: to this absolute level: FFT rounding on probabilities of order one.
_ABS_FLOOR = 1e-13


def _class_transform(lengths, theta: float, size: int):
    """Per decode value o: Σ_{pairs with O = o} p e^{θ s} e^{iω s} (rows), and the o values."""
    if isinstance(lengths, IndependentLengths):
        ms = _prompt_transform(lengths.prompt.values, lengths.prompt.probs, theta, size)
        return ms, None
    o_vals = lengths.decode_values
    uniq = np.unique(o_vals)
    rows = np.stack([
        _prompt_transform(lengths.prompt_values[o_vals == o], lengths.probs[o_vals == o], theta, size)
        for o in uniq
    ])
    return rows, uniq


def _prompt_transform(values, probs, theta: float, size: int) -> np.ndarray:
    """Σ_s p(s) e^{θ s} e^{iω_k s} at ω_k = 2πk/size, by FFT of the tilted PMF folded mod size."""
    values = np.asarray(values, dtype=np.int64)
    w = np.asarray(probs, dtype=float) * np.exp(theta * values)
    folded = np.bincount(values % size, weights=w, minlength=size)
    return np.conj(np.fft.fft(folded))  # e^{+iωs}: the conjugate of numpy's e^{-iωs}


def _k_log(k: float, x: np.ndarray) -> np.ndarray:
    """k·log x for complex x, with −∞ (not NaN) where x underflowed to 0."""
    out = np.full(x.shape, -np.inf, dtype=complex)
    nz = x != 0
    out[nz] = k * np.log(x[nz])
    return out


_CHUNK_ELEMENTS = 1 << 22  # ages × frequencies handled at once (64 MiB of complex128)


def _log_tail(wl: Workload, memory: int, budget: BudgetLaw, theta: float, size: int) -> float:
    omega = 2 * np.pi * np.arange(size) / size
    z = theta + 1j * omega
    r = budget.rate_per_slot
    # Real (ω = 0) per-age transforms over every age: φ_a(θ) = P(O ≤ a) + E[e^{θ X_a}; O > a].
    g_mix = wl.age_moments()[0]
    log_alive = wl.age_log_mgf(theta)
    log_mgf = log_mgf_from_ages(log_stay_by_age(g_mix), log_alive, budget)
    alive_t = np.exp(log_alive)
    phi_all = (1 - g_mix) + alive_t
    # Ages whose tilted alive mass is negligible change the transform by |φ_a(z)/φ_a(θ) − 1| ≤
    # 2 alive_a/φ_a(θ); stop the complex sum once the rest of these adds up to < 1e-16.
    rest = np.cumsum((2 * alive_t / phi_all)[::-1])[::-1]
    n_ages = int(np.searchsorted(-rest, -1e-16 / max(r, 1.0)))
    n_ages = max(1, min(n_ages, wl.n_ages))
    kk = math.floor(r)
    f = r - kk
    tilt = budget.tilted(np.log(phi_all[:n_ages])) if budget.kind == "law" else None
    per_class = []
    for c, w in zip(wl.classes, wl.mix, strict=True):
        rows, uniq = _class_transform(c.lengths, theta, size)
        # joint law: suffix sums over decode values give the pairs alive at ages a < o
        suffix = None if uniq is None else np.cumsum(rows[::-1], axis=0)[::-1]
        per_class.append((w, c.lengths.decode_law.survival_by_age(n_ages), rows, uniq, suffix))
    log_ratio = np.zeros(size, dtype=complex)
    chunk = max(1, _CHUNK_ELEMENTS // size)
    for start in range(0, n_ages, chunk):
        _check_time()
        ages = np.arange(start, min(n_ages, start + chunk))
        phi_z = np.zeros((ages.size, size), dtype=complex)
        phi_t = phi_all[ages]
        # e^{z(a+1)} by a running product down the rows (a multiply instead of a complex exp)
        shift = np.empty((ages.size, size), dtype=complex)
        shift[0] = np.exp((ages[0] + 1) * z)
        shift[1:] = np.exp(z)
        np.cumprod(shift, axis=0, out=shift)
        for w, g, rows, uniq, suffix in per_class:
            ga = g[ages]
            if uniq is None:
                alive = ga[:, None] * rows[None, :]
            else:
                idx = np.searchsorted(uniq, ages, side="right")  # first decode value > a
                alive = np.zeros((ages.size, size), dtype=complex)
                ok = idx < uniq.size
                alive[ok] = suffix[idx[ok]]
            terms = alive * shift
            phi_z += w * ((1 - ga)[:, None] + terms)
        if budget.kind == "poisson":
            log_ratio += (r * (phi_z - phi_t[:, None])).sum(axis=0)
            continue
        if tilt is not None:  # a budget law: Π_a E_a[(φ_a(z)/φ_a(θ))^B], E_a tilted at φ_a(θ)
            with np.errstate(divide="ignore", under="ignore"):
                log_ratio += np.log(np.prod(tilt.ratio(phi_z / phi_t[:, None], ages), axis=0))
            continue
        # |φ_a(z)/φ_a(θ)| ≤ 1, so a product over the chunk never overflows; if it underflows the
        # whole transform is below 1e-308 at that frequency, which is what its log then says.
        with np.errstate(divide="ignore", under="ignore"):
            log_ratio += _k_log(kk, np.prod(phi_z / phi_t[:, None], axis=0))
            if f > 0:
                bern_t = 1 - f + f * phi_t
                log_ratio += np.log(np.prod((1 - f + f * phi_z) / bern_t[:, None], axis=0))
    with np.errstate(under="ignore"):
        q_hat = np.exp(log_ratio)  # E[e^{iωU}] under the tilted law, ω = 2πk/size
    q = np.real(np.fft.fft(q_hat)) / size  # Σ_k q̂_k e^{-iω_k u}/L = q(u mod L)
    lo = max(0, memory - size // 2)
    u = np.arange(lo, lo + size)
    qu = q[u % size]
    if theta < 0:
        # E U ≥ M: the tilted law is centred at M from below; sum the lower tail
        # P(U ≤ M) = E e^{θU} e^{−θM} Σ_{u ≤ M} e^{−θ(u − M)} q(u), each weight ≤ 1.
        below = u <= memory
        weights = np.exp(-theta * (u[below] - memory)) * np.clip(qu[below], 0.0, None)
        low = math.exp(min(log_mgf - theta * memory, 700.0)) * float(weights.sum())
        return math.log1p(-low) if low < 1 else -math.inf
    above = u > memory
    weights = np.exp(-theta * (u[above] - memory - 1)) * np.clip(qu[above], 0.0, None)
    total = weights.sum()
    if total <= 0:
        return -math.inf
    return log_mgf - theta * (memory + 1) + math.log(total)


def _fft_tail(workload: Workload, m: int, law: BudgetLaw, theta: float, sigma: float,
              rtol: float, mean: float | None = None) -> ExactTail:
    spread = max(64.0, 10.0 * sigma)  # the doubling check below confirms it
    size = 1 << max(10, math.ceil(math.log2(2 * spread + 2)))
    if theta == 0.0:
        # Untilted: the window [0, L) must hold the whole law of U (not only M), or its mass
        # above L wraps round onto small values.
        top = max(m, mean if mean is not None else law.rate_per_slot * workload.mean_memory_time)
        size = max(size, 1 << math.ceil(math.log2(top + spread + 2)))
    prev = _log_tail(workload, m, law, theta, size)
    change = math.inf
    for _ in range(_MAX_DOUBLINGS):
        if size >= (1 << _MAX_LOG2_L):
            break
        size *= 2
        cur = _log_tail(workload, m, law, theta, size)
        if math.isinf(cur) and math.isinf(prev):
            change = 0.0
        elif math.isinf(cur) or math.isinf(prev):
            change = math.inf
        else:
            change = abs(math.expm1(cur - prev))
        absolute = abs(math.exp(min(cur, 0.0)) - math.exp(min(prev, 0.0)))
        prev = cur
        if change <= rtol or (theta == 0.0 and absolute <= _ABS_FLOOR):
            break
    return ExactTail(prev, size, theta, change, "fft")


#: The series' tilt is lowered until max_a g_a is this (about 25 terms), where the Chernoff tilt
#: would make it ≥ 0.9.
_SERIES_G = 0.2
_SERIES_G_MAX = 0.9


#: Below this many requests expected under the tilted law, ``auto`` tries the series before the
#: lobe: the tilted law of a sum of so few requests is lumpy and its transform dies out slowly.
_FEW_REQUESTS = 20.0


def _few_requests(workload: Workload, law: BudgetLaw, theta: float) -> bool:
    """Whether the θ-tilted law of U holds fewer than _FEW_REQUESTS requests on average, for one
    class with independent lengths and a Bernoulli (randomized, r < 1) budget (else False)."""
    if len(workload.classes) != 1 or theta <= 0 or not (
            law.kind == "randomized" and law.rate_per_slot < 1):
        return False
    lengths = workload.classes[0].lengths
    if not isinstance(lengths, IndependentLengths):
        return False
    r = law.rate_per_slot
    g_surv = np.asarray(lengths.decode.survival_by_age(workload.n_ages), dtype=float)
    ages1 = np.arange(1, workload.n_ages + 1)
    with np.errstate(divide="ignore", over="ignore"):
        lg = np.log(r * g_surv) + theta * ages1 + lengths.prompt.log_mgf(theta) - np.log1p(-r * g_surv)
        count = float(np.sum(np.exp(lg - np.logaddexp(0.0, lg))))  # Σ_a β_a, β = g/(1 + g)
    return count < _FEW_REQUESTS


def _series_theta(lengths: IndependentLengths, g_surv: np.ndarray, ages1: np.ndarray, r: float,
                  theta: float) -> tuple[float, bool]:
    """θ itself if max_a g_a(θ) < 0.9, else the θ' < θ with max_a g_a(θ') = _SERIES_G (bisection;
    g_a increases with θ), and whether it was lowered."""
    def log_gmax(t: float) -> float:
        with np.errstate(divide="ignore"):
            lg = np.log(r * g_surv) + t * ages1 + lengths.prompt.log_mgf(t) - np.log1p(-r * g_surv)
        return float(np.max(lg))

    if log_gmax(theta) < math.log(_SERIES_G_MAX):
        return theta, False
    lo, hi = 0.0, theta
    if log_gmax(0.0) >= math.log(_SERIES_G):
        return 0.0, True
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if log_gmax(mid) < math.log(_SERIES_G):
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-6 * theta:
            break
    return lo, True


def _series_tail(workload: Workload, m: int, law: BudgetLaw, theta: float, sigma: float,
                 rtol: float) -> ExactTail | None:
    r"""P(U > M) at light load by the full-window FFT, the product over ages done by FFTs.

    For one class with independent S and O and a budget that is Poisson(r) or Bernoulli(r)
    (randomized, r < 1), the per-age factor at z = θ + iω is, with x_a(ω) = e^{iω(a+1)} ψ(ω) and ψ
    the θ-tilted characteristic function of S,

    * Poisson: :math:`r\,G(a) e^{θ(a+1)} M_S(θ) (x_a - 1)` in the log, so
      :math:`\log E_θ e^{iωU} = r M_S(θ) [ψ(ω) D(ω) - D(0)]` with
      :math:`D(ω) = \sum_a G(a) e^{θ(a+1)} e^{iω(a+1)}`, one FFT (exact);
    * Bernoulli: :math:`(1 - rG(a))(1 + g_a x_a)` with
      :math:`g_a = r G(a) e^{θ(a+1)} M_S(θ) / (1 - rG(a))`, and for max g < 1
      :math:`\log(1 + g x) = \sum_{k ≥ 1} (-1)^{k+1} g^k x^k / k`, so
      :math:`\sum_a \log(1 + g_a x_a) = \sum_k (-1)^{k+1} ψ^k D_k(kω)/k`, one FFT per term; the
      terms stop once :math:`\sum_a g_a^{K+1}/((K+1)(1-g_a)) < 10^{-17}` (the truncation error of
      the log-transform, at every ω).

    So the cost is O(K · L log L) instead of O(L · ages), and the inversion (window of L points
    around M, L doubling until two answers agree to ``rtol``) is that of ``method="fft"``. Where
    max g ≥ 0.9 at the Chernoff tilt (very light load with heavy prompts: the tilted law is a few
    requests of near-maximal prompt), the tilt is lowered until max g = 0.2. The window is
    [0, L) with L > 2(M + 1) at least (at light load the tilted law is far wider than the
    untilted σ says, and below the Chernoff tilt it sits below M; its mass beyond L, which would
    wrap round, is what the doubling of L checks). None where it does not apply (several
    classes, joint lengths, another budget), or where the two grids do not agree.
    """
    if len(workload.classes) != 1 or theta <= 0:
        return None
    lengths = workload.classes[0].lengths
    r = law.rate_per_slot
    if not isinstance(lengths, IndependentLengths) or not (
        law.kind == "poisson" or (law.kind == "randomized" and r < 1)
    ):
        return None
    n = workload.n_ages
    g_surv = np.asarray(lengths.decode.survival_by_age(n), dtype=float)
    ages1 = np.arange(1, n + 1)
    if law.kind == "randomized":
        theta, _reduced = _series_theta(lengths, g_surv, ages1, r, theta)
    log_ms = lengths.prompt.log_mgf(theta)
    s_vals = lengths.prompt.values
    with np.errstate(divide="ignore", under="ignore"):
        s_w = np.exp(np.log(lengths.prompt.probs) + theta * s_vals - log_ms)  # tilted PMF of S
        log_alive = np.log(g_surv) + theta * ages1 + log_ms  # log E[e^{θ X_a}; O > a]
    if float(np.max(log_alive)) > 700:
        return None
    alive = np.exp(log_alive)
    if law.kind == "poisson":
        log_mgf = float(r * np.sum(alive - g_surv))
        gk = None
    else:
        base = 1 - r * g_surv
        gk = r * alive / base
        if float(gk.max()) >= 0.9:
            return None
        log_mgf = float(np.sum(np.log(base)) + np.sum(np.log1p(gk)))
        terms = 1
        while float(np.sum(gk ** (terms + 1) / ((terms + 1) * (1 - gk)))) >= 1e-17:
            terms += 1
            if terms > 400:
                return None

    def log_tail(size: int) -> float:
        # Half spectra of real arrays (rfft: Σ_u x_u e^{−iω_k u}, the conjugates of the transforms
        # above, which have real coefficients): q = irfft of exp(conj log-transform).
        psi = np.fft.rfft(np.bincount(s_vals % size, weights=s_w, minlength=size))
        pos = ages1 % size
        if gk is None:
            d = np.fft.rfft(np.bincount(pos, weights=alive, minlength=size))
            log_ratio = r * (psi * d - float(alive.sum()))
        else:
            log_ratio = np.full(psi.size, -float(np.sum(np.log1p(gk))), dtype=complex)
            power = np.ones(psi.size, dtype=complex)
            gpow = np.ones(n)
            for k in range(1, terms + 1):
                _check_time()
                power *= psi
                gpow *= gk
                d_k = np.fft.rfft(np.bincount((k * ages1) % size, weights=gpow, minlength=size))
                log_ratio += ((-1) ** (k + 1) / k) * power * d_k
        with np.errstate(under="ignore"):
            q = np.fft.irfft(np.exp(log_ratio), n=size)
        lo = max(0, m - size // 2)
        u = np.arange(lo, lo + size)
        above = u > m
        weights = np.exp(-theta * (u[above] - m - 1)) * np.clip(q[u[above] % size], 0.0, None)
        total = float(weights.sum())
        return log_mgf - theta * (m + 1) + math.log(total) if total > 0 else -math.inf

    spread = max(64.0, 10.0 * sigma)
    size = 1 << max(10, math.ceil(math.log2(2 * spread + 2)))
    # The window starts at 0: at light load the tilted law's spread σ_θ can be far above the
    # untilted σ (a few requests of large prompt), and below the Chernoff tilt it is not centred
    # at M. σ_θ² = κ''(θ) by a central difference of the log-MGF.
    def kappa(t: float) -> float:
        expo = t * ages1 + lengths.prompt.log_mgf(t)
        if float(np.max(expo)) > 700:
            return math.inf
        x = np.exp(expo) - 1
        return float(r * np.sum(g_surv * x) if law.kind == "poisson" else np.sum(np.log1p(r * g_surv * x)))

    dh = 1e-3 * theta if theta > 0 else 1e-3 / max(sigma, 1.0)
    var_t = (kappa(theta + dh) - 2 * kappa(theta) + kappa(theta - dh)) / dh**2
    sd_t = math.sqrt(var_t) if math.isfinite(var_t) and var_t > 0 else sigma
    size = max(size, 1 << math.ceil(math.log2(max(2 * (m + 1), m + 1 + 12 * sd_t))))
    prev = log_tail(size)
    change = math.inf
    # One grid suffices where the tilted law's mass beyond the window, Q = P_θ(U ≥ L) (all that
    # the window [0, L) can get wrong: the tail sum's weights are ≤ 1), is proved negligible:
    # Q ≤ min_η exp(κ(θ+η) − κ(θ) − ηL), relative to the tilted tail sum T (≥ 1e-4, so that FFT
    # rounding, ~1e-16 per point, is far below it). ``relative_change`` is then Q/T.
    if math.isfinite(prev):
        log_t = prev - log_mgf + theta * (m + 1)
        k0 = kappa(theta)
        etas = np.geomspace(1e-2, 50.0, 12) / max(sd_t, 1.0)  # any η gives a valid bound
        log_q = min(kappa(theta + e) - k0 - e * size for e in etas)  # κ = +∞ beyond e^700
        if log_t > math.log(1e-4) and log_q - log_t < math.log(0.1 * rtol):
            if prev > 1e-9:
                return None
            return ExactTail(min(prev, 0.0), size, theta, math.exp(log_q - log_t), "series")
    for _ in range(_MAX_DOUBLINGS):
        if size >= (1 << _MAX_LOG2_L):
            break
        size *= 2
        cur = log_tail(size)
        change = 0.0 if cur == prev else (
            abs(math.expm1(cur - prev)) if math.isfinite(cur) and math.isfinite(prev) else math.inf)
        prev = cur
        if change <= rtol:
            break
    if not change <= rtol or prev > 1e-9:
        return None
    return ExactTail(min(prev, 0.0), size, theta, change, "series")
