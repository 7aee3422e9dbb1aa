r"""A certified bracket on P(U > M) by rounding request sizes to a lattice of b tokens.

Where the tilted law of U is too lumpy for the lobe (empirical prompts of a trace: their
characteristic function does not die out) and too wide for the full-window FFT, every request's
size S + a + 1 at age a is rounded to a multiple of b, up for :math:`U^+` and down for
:math:`U^-`. Pathwise (the same budgets, lengths and ages) :math:`U^- \le U \le U^+`, so

.. math:: P(U^- > M) \le P(U > M) \le P(U^+ > M),

and both rounded memories live on bℤ: :math:`V^\pm = U^\pm / b` is again a sum of independent
cohort terms, with :math:`P(U^\pm > M) = P(V^\pm > \lfloor M/b \rfloor)`, inverted by the tilted
FFT of :mod:`~numerics.analysis.exact.fft` on a window b times shorter. With t = a + 1 = b·t₁ + t₀
and S = b·s₁ + s₀ (0 ≤ s₀, t₀ < b) the rounded term is
:math:`s_1 + t_1 + c(s_0, t_0)`, :math:`c = \lceil (s_0 + t_0)/b \rceil` (up) or
:math:`\lfloor (s_0 + t_0)/b \rfloor` (down), in {0, 1, 2}: for the ages of one residue t₀ the
terms are a fixed shift of each pair's s₁, so each age's transform is one FFT of a suffix sum over
decode values (cost O(ages · L log L) for a window of L points).

The window is [0, L) (U ≥ 0: nothing wraps from below); the tilted law's mass beyond L, the only
thing the window can get wrong, is bounded by a Chernoff bound on the tilted law, and one grid
suffices where that bound is below ``0.1·rtol`` of the answer; else L doubles until two answers
agree to ``rtol``. The result's ``abs_error`` is the bracket's width (plus each end's own
convergence tolerance), its ``prob`` the upper end (conservative for certification).
"""

from __future__ import annotations

import math

import numpy as np

from numerics.analysis.exact.fft import _CHUNK_ELEMENTS, _MAX_DOUBLINGS, _MAX_LOG2_L
from numerics.analysis.exact.result import ExactTail, _check_time
from numerics.analysis.flow import flow_log_mgf, log_phi_by_age, log_stay_by_age
from numerics.errors import WorkloadError
from numerics.model.budget import BudgetLaw
from numerics.model.workload import IndependentLengths, Workload

__all__: list[str] = []

#: Element operations a bracket end may cost (see :func:`choose_lattice`; about 0.5 s on one core):
#: b is the smallest power of 2 that keeps within it.
_BRACKET_WORK = 2.5e7
#: The fixed cost of one residue t₀ of the ages (numpy calls), in element operations.
_RESIDUE_COST = 1000
#: The largest lattice tried (the rounding tables are b × b).
_MAX_LATTICE = 4096


#: Relative allowance for the FFTs' rounding added to each end's error (the tail sum is ≥ 1e-6
#: of the tilted mass where one grid is accepted, and double rounding is ~1e-16 per point).
_ROUNDING = 1e-9


class _BracketFailed(Exception):
    """The rounded inversion did not converge (the caller falls back or raises)."""


class _Rounded:
    r"""V = U^± / b: the saturated memory with every request size S + a + 1 rounded to bℤ."""

    def __init__(self, workload: Workload, b: int, up: bool) -> None:
        n = workload.n_ages
        self.n, self.b, self.up = n, b, up
        t = np.arange(1, n + 1)
        self.t1, self.t0 = np.divmod(t, b)
        g_mix = workload.age_moments()[0][:n]
        self.g_mix = np.asarray(g_mix, dtype=float)
        self.log_stay = log_stay_by_age(self.g_mix)
        s0 = np.arange(b)[:, None]
        tot = s0 + np.arange(b)[None, :]  # (s0, t0)
        self.c_by_t0 = (-(-tot // b) if up else tot // b).astype(np.int64)  # b × b, values 0..2
        self.parts = []  # (weight, s1, s0, p, o or None, G_c)
        s1max = 0
        for c, w in zip(workload.classes, workload.mix, strict=True):
            lengths = c.lengths
            if isinstance(lengths, IndependentLengths):
                s = np.asarray(lengths.prompt.values, dtype=np.int64)
                p = np.asarray(lengths.prompt.probs, dtype=float)
                o = None
                g = np.asarray(lengths.decode.survival_by_age(n), dtype=float)
            else:
                s = np.asarray(lengths.prompt_values, dtype=np.int64)
                p = np.asarray(lengths.probs, dtype=float)
                o = np.minimum(np.asarray(lengths.decode_values, dtype=np.int64), n)
                g = None
            keep = p > 0
            s, p = s[keep], p[keep]
            if o is not None:
                o = o[keep]
            s1, s0v = np.divmod(s, b)
            s1max = max(s1max, int(s1.max()))
            self.parts.append((float(w), s1, s0v, p, o, g))
        self.s1max = s1max

    def _shift(self, theta: float) -> float:
        return max(theta, 0.0) * (self.s1max + 2)

    def log_alive(self, theta: float) -> np.ndarray:
        """log E[e^{θ f(S, a)}; O > a] for every age (f the rounded term divided by b)."""
        n, b = self.n, self.b
        sh = self._shift(theta)
        ec = np.exp(theta * self.c_by_t0.astype(float))  # (s0, t0)
        total = np.zeros(n)
        for w, s1, s0, p, o, g in self.parts:
            wt = p * np.exp(theta * s1 - sh)
            if o is None:
                per_s0 = np.bincount(s0, weights=wt, minlength=b)
                by_t0 = per_s0 @ ec  # Σ_{s0} w_{s0} e^{θ c(s0, t0)}
                total += w * g * by_t0[self.t0]
            else:
                grid = np.bincount(s0 * (n + 1) + o, weights=wt, minlength=b * (n + 1))
                suffix = np.cumsum(grid.reshape(b, n + 1)[:, ::-1], axis=1)[:, ::-1]
                alive = suffix[:, 1:]  # Σ_{o ≥ a + 1}, (s0, a)
                total += w * np.einsum("sa,sa->a", alive, ec[:, self.t0])
        with np.errstate(divide="ignore"):
            return np.log(total) + sh + theta * self.t1

    def log_phi(self, theta: float) -> np.ndarray:
        return log_phi_by_age(self.log_stay, self.log_alive(theta))

    def kappa(self, theta: float, law: BudgetLaw) -> float:
        """log E e^{θV}."""
        val = float(np.sum(law.log_pgf_of_log(self.log_phi(theta))))
        return val if math.isfinite(val) else math.inf

    def log_ratio(self, theta: float, law: BudgetLaw, size: int) -> np.ndarray:
        """log E_θ[e^{−iω_k V}] at ω_k = 2πk/L, k ≤ L/2 (the rfft convention), θ-tilted."""
        n, b = self.n, self.b
        sh = self._shift(theta)
        log_phi = self.log_phi(theta)
        p0 = np.exp(self.log_stay - log_phi)
        with np.errstate(over="ignore", invalid="ignore"):
            coef = np.nan_to_num(np.exp(sh + theta * self.t1 - log_phi))
        tilt = None if law.kind == "poisson" else law.tilted(log_phi)
        k = np.arange(size // 2 + 1)
        out = np.zeros(k.size, dtype=complex)
        # e^{−iω t₁} for every t₁ (ages of one residue have consecutive t₁): a table of powers
        t1_top = int(self.t1.max())
        shifts = np.empty((t1_top + 1, k.size), dtype=complex)
        shifts[0] = 1.0
        if t1_top:
            shifts[1:] = np.exp(-2j * np.pi * k / size)
            np.cumprod(shifts, axis=0, out=shifts)
        rows_per_chunk = max(1, _CHUNK_ELEMENTS // size)
        base = [w * p * np.exp(theta * s1 - sh) for w, s1, _s0, p, _o, _g in self.parts]
        ec = np.exp(theta * np.arange(3))
        for t0 in range(b):
            ages = np.arange(t0 - 1 if t0 >= 1 else b - 1, n, b)
            if ages.size == 0:
                continue
            _check_time()
            tlist = ages + 1
            nr = ages.size
            # rows in reverse order (row nr − 1 − j is age j), so that the suffix sum over decode
            # values is a forward cumsum of a contiguous array
            dom = np.zeros((nr, size))
            for (_w, s1, s0, _p, o, g), wt0 in zip(self.parts, base, strict=True):
                c = self.c_by_t0[s0, t0]
                pos = (s1 + c) % size
                wt = wt0 * ec[c]
                if o is None:
                    row = np.bincount(pos, weights=wt, minlength=size)
                    dom += g[ages[::-1]][:, None] * row[None, :]
                else:
                    alive_rows = np.searchsorted(tlist, o, side="right")  # alive on rows < J
                    keep = alive_rows > 0
                    first = nr - alive_rows[keep]  # reversed index of its last alive row
                    grid = np.bincount(first * size + pos[keep], weights=wt[keep],
                                       minlength=nr * size)
                    dom += np.cumsum(grid.reshape(nr, size), axis=0)
            dom = dom[::-1]
            for lo in range(0, nr, rows_per_chunk):
                sel = slice(lo, min(lo + rows_per_chunk, nr))
                a_sel = ages[sel]
                spec = np.fft.rfft(dom[sel], axis=1)
                spec *= shifts[self.t1[a_sel]]
                spec *= coef[a_sel][:, None]
                spec += p0[a_sel][:, None]
                rho = spec
                with np.errstate(divide="ignore", under="ignore", invalid="ignore"):
                    if tilt is None:  # Poisson: r Σ_a φ_a(θ)(ρ_a − 1)
                        phi = np.exp(np.minimum(log_phi[a_sel], 700.0))
                        out += law.rate_per_slot * (phi[:, None] * (rho - 1)).sum(axis=0)
                    else:  # Π_a E_a[ρ_a^B], each factor of modulus ≤ 1
                        out += np.log(np.prod(tilt.ratio(rho, a_sel), axis=0))
        return out


def _rounded_log_tail(workload: Workload, memory: int, law: BudgetLaw, b: int, up: bool,
                      theta_u: float, window: float, rtol: float) -> tuple[float, float]:
    """(log P(U^± > M), relative convergence evidence) by the tilted FFT of V = U^±/b.

    The tilt is b·θ_U (θ_U the caller's tilt of U; any tilt gives the exact answer, this one
    centres the tilted law of V near M/b) moved by one Newton step towards V's own Chernoff
    minimiser; the window is ``window`` tokens (see :func:`window_tokens`), b times fewer points.
    """
    rv = _Rounded(workload, b, up)
    mv = memory // b  # U^± > M ⇔ V > ⌊M/b⌋
    upper = theta_u > 0
    theta = theta_u * b

    def stencil(t: float) -> tuple[float, float, float]:
        dh = 1e-3 * abs(t)
        k = [rv.kappa(t + j * dh, law) for j in (-1, 0, 1)]
        return k[1], (k[2] - k[0]) / (2 * dh), (k[2] - 2 * k[1] + k[0]) / dh**2

    k0, k1, k2 = stencil(theta)
    if math.isfinite(k1) and math.isfinite(k2) and k2 > 0:
        new = theta - (k1 - mv) / k2
        if new * theta > 0:  # keep the side; at most a factor 2 either way
            theta = min(max(new, theta / 2), 2 * theta) if upper else max(min(new, theta / 2), 2 * theta)
            k0, k1, k2 = stencil(theta)
    if not (math.isfinite(k0) and math.isfinite(k2) and k2 > 0):
        raise _BracketFailed(f"the rounded law's log-MGF is not finite at θ = {theta:.4g} (b = {b})")
    sd_t = math.sqrt(k2)

    def log_tail(size: int) -> tuple[float, float]:
        """(log of the answer, log of the tilted tail sum T)."""
        with np.errstate(under="ignore"):
            q = np.fft.irfft(np.exp(rv.log_ratio(theta, law, size)), n=size)
        u = np.arange(size)
        if upper:
            sel = u > mv
            t_sum = float(np.sum(np.exp(-theta * (u[sel] - mv - 1)) * np.clip(q[sel], 0.0, None)))
            if t_sum <= 0:
                return -math.inf, -math.inf
            return k0 - theta * (mv + 1) + math.log(t_sum), math.log(t_sum)
        sel = u <= mv
        t_sum = float(np.sum(np.exp(-theta * (u[sel] - mv)) * np.clip(q[sel], 0.0, None)))
        low = math.exp(min(k0 - theta * mv, 700.0)) * t_sum
        return (math.log1p(-low) if low < 1 else -math.inf), math.log(max(t_sum, 1e-300))

    size = _fft_size(max(mv + 2, window / b + 2))
    prev, log_t = log_tail(size)
    # the tilted mass beyond the window, Q ≤ min_η exp(κ(θ+η) − κ(θ) − ηL): all that [0, L) can
    # get wrong (every weight of the tail sum is ≤ 1); one grid suffices where Q ≪ rtol·T
    etas = np.array([1.0, 4.0, 16.0]) / max(sd_t, 1.0)
    log_q = min(rv.kappa(theta + e, law) - k0 - e * size for e in etas)
    if math.isfinite(log_t) and log_t > math.log(1e-6) and log_q - log_t < math.log(0.1 * rtol):
        return prev, math.exp(log_q - log_t)
    change = math.inf
    for _ in range(_MAX_DOUBLINGS):
        if size >= (1 << _MAX_LOG2_L):
            break
        size *= 2
        cur, _ = log_tail(size)
        change = 0.0 if cur == prev else (
            abs(math.expm1(cur - prev)) if math.isfinite(cur) and math.isfinite(prev) else math.inf)
        prev = cur
        if change <= rtol:
            break
    if not change <= rtol:
        raise _BracketFailed(f"the rounded inversion (b = {b}) did not converge "
                             f"(relative change {change:.2g})")
    return prev, change


def _fft_size(points: float) -> int:
    """The smallest power of 2 ≥ ``points`` (and ≥ 1024): the window's FFT length (3-smooth
    lengths were tried and ran slower, per point, in the row-wise transforms here)."""
    return 1 << max(10, math.ceil(math.log2(max(points, 1.0))))


def window_tokens(workload: Workload, law: BudgetLaw, theta_u: float, rtol: float) -> float:
    """Tokens x beyond which the θ_U-tilted law of U has mass below 0.01·rtol (a Chernoff bound,
    min over η of κ(θ+η) − κ(θ) − ηx): the windows' reach, in tokens."""
    k0 = flow_log_mgf(workload, theta_u, law)
    dh = 1e-3 * abs(theta_u)
    var = (flow_log_mgf(workload, theta_u + dh, law) - 2 * k0
           + flow_log_mgf(workload, theta_u - dh, law)) / dh**2
    sd = math.sqrt(var) if math.isfinite(var) and var > 0 else 1.0
    mean = (flow_log_mgf(workload, theta_u + dh, law) - flow_log_mgf(workload, theta_u - dh, law)) / (2 * dh)
    target = math.log(1e-2 * rtol)
    best = math.inf
    for e in np.array([0.5, 1.0, 2.0, 4.0, 8.0, 16.0]) / sd:
        ke = flow_log_mgf(workload, theta_u + float(e), law)
        if math.isfinite(ke):
            best = min(best, (ke - k0 - target) / float(e))  # κ(θ+η) − κ(θ) − ηx ≤ target
    if not math.isfinite(best):
        best = mean + 12 * sd
    return max(best, mean + 4 * sd)


def choose_lattice(workload: Workload, memory: int, window: float) -> int:
    """The smallest power of 2, b ≥ 2, whose rounded inversion costs at most _BRACKET_WORK (else
    the cheapest): ages × L for the window of L = window/b points, plus b residues, each a pass
    over the length law's pairs (or prompt values) and a fixed overhead (_RESIDUE_COST)."""
    n = workload.n_ages
    pairs = sum(c.lengths.prompt.values.size if isinstance(c.lengths, IndependentLengths)
                else c.lengths.probs.size for c in workload.classes)
    costs = {}
    b = 2
    while b <= _MAX_LATTICE:
        size = _fft_size(max(memory // b + 2, window / b + 2))
        costs[b] = n * size + b * (pairs + _RESIDUE_COST)
        if costs[b] <= _BRACKET_WORK:
            return b
        b *= 2
    return min(costs, key=costs.get)


def bracket_tail(workload: Workload, memory: int, law: BudgetLaw, theta_u: float,
                 rtol: float = 1e-4, lattice: int | None = None,
                 lower_end: bool = True) -> ExactTail:
    r"""P(U > M) bracketed by rounding request sizes to multiples of b = ``lattice`` tokens.

    Returns an :class:`ExactTail` with method ``bracket``: ``log_prob`` is the upper end
    log P(U⁺ > M), ``lower`` the lower end P(U⁻ > M), ``abs_error`` the width plus both ends'
    convergence tolerances (``rtol`` each), ``lattice`` b. ``theta_u`` is the tilt of U (> 0:
    E U < M, the upper tail is inverted; < 0: the lower one); it sizes the windows and, with
    ``lattice`` None, b is picked by :func:`choose_lattice`. ``lower_end`` False skips the lower
    end (half the cost: a rate search needs only the upper one); ``lower`` and ``abs_error`` are
    then None.
    """
    if theta_u == 0 or not math.isfinite(theta_u):
        raise WorkloadError(f"the bracket needs a finite non-zero tilt, got θ = {theta_u!r}")
    window = window_tokens(workload, law, theta_u, rtol)
    if lattice is None:
        lattice = choose_lattice(workload, memory, window)
    if not (isinstance(lattice, int) and 1 <= lattice <= _MAX_LATTICE):
        raise WorkloadError(f"lattice must be a whole number of tokens in 1..{_MAX_LATTICE}, got "
                            f"{lattice!r}")
    log_hi, ch_hi = _rounded_log_tail(workload, memory, law, lattice, True, theta_u, window, rtol)
    hi = math.exp(min(log_hi, 0.0)) if log_hi > -745 else 0.0
    if not lower_end:
        return ExactTail(min(log_hi, 0.0), 0, theta_u, ch_hi, "bracket", None, lattice=lattice)
    log_lo, ch_lo = _rounded_log_tail(workload, memory, law, lattice, False, theta_u, window, rtol)
    lo = math.exp(min(log_lo, 0.0)) if log_lo > -745 else 0.0
    if lo > hi * (1 + 10 * rtol) + 1e-300:
        raise _BracketFailed(f"the bracket's ends are out of order ({lo:.6g} > {hi:.6g}, b = "
                             f"{lattice}): the rounded inversions are not accurate")
    lo = min(lo, hi)
    err = (hi - lo) + (ch_hi + _ROUNDING) * hi + (ch_lo + _ROUNDING) * lo
    return ExactTail(min(log_hi, 0.0), 0, theta_u, max(ch_hi, ch_lo), "bracket", err,
                     lower=lo, lattice=lattice)
