r"""Exact overflow tails of the saturated flow-control memory, by tilted FFT.

U = Σ_a Σ_{m ≤ B_{t−a}} X_{a,m} (see :mod:`numerics.analysis.flow`) is a sum of independent cohort terms,
so its transform is a product over ages:
:math:`E[z^U] = \prod_a P_B(\varphi_a(z))`, :math:`\varphi_a(z) = 1 - G(a) + E[z^{S+a+1}; O > a]`.
To reach tails far below double precision (1e-300 and beyond) the law is **exponentially tilted**
at θ (the Chernoff minimiser for M): :math:`q(u) = p(u)e^{\theta u}/E e^{\theta U}` is centred near
M, its transform on a circle of radius :math:`e^\theta` is inverted by an FFT over a window of L
points around M, and

.. math:: \log P(U > M) = \log E e^{\theta U} - \theta (M + 1)
          + \log \sum_{u > M} e^{-\theta (u - M - 1)} q(u),

a well-conditioned sum. L doubles until two successive answers agree to ``rtol`` (the aliasing of
q's tails decays as L grows), so the result carries its own convergence check. Cost
O(L · n_ages) per evaluation, with L ≈ 20σ: this is ``method="fft"``.

The default, ``method="lobe"``, evaluates the same inversion at far fewer frequencies. For θ > 0,

.. math:: P(U > M) = \frac{1}{2\pi}\int_{-\pi}^{\pi}
          \frac{E[e^{(\theta+i\omega)U}]\,e^{-(\theta+i\omega)(M+1)}}{1-e^{-\theta-i\omega}}\,d\omega,

and the trapezoid rule with N points is exact up to the aliasing of the tilted law at distance N
(so N ≥ 32σ, doubled until two answers agree to ``rtol``). The tilted transform has modulus
≈ e^{−σ²ω²/2}: only its main lobe (≈ 100 frequencies, whatever M) is evaluated, followed outward
until it has died out. A lattice (U on dℤ) is divided out exactly, and a coarse scan of the rest of
the circle checks for near-lattice side peaks (on finding one, ``auto`` falls back to ``fft``).
At M = 10⁶ tokens with decode support 10⁴ this takes 1–2 s (``benchmarks/bench_tail.py``).

Examples
--------
The theory brief's geometric row (s = 20, p = 0.05, M = 16 000, deterministic r = 16): the exact
tail is 4.83e-6, under the Chernoff bound 5.96e-5 and above the Gaussian 1.44e-6.

>>> from numerics.model.specs import parse_law
>>> from numerics.model.workload import Workload
>>> wl = Workload.single(parse_law("20"), parse_law("geom:p=0.05"))
>>> float(f"{exact_overflow(wl, 16000, 16, 'deterministic'):.3g}")
4.83e-06
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from numerics.analysis.bounds import BoundNotApplicable, FlowRate, FlowTails
from numerics.analysis.flow import flow_log_mgf, log_mgf_from_ages, log_stay_by_age
from numerics.errors import WorkloadError
from numerics.model.budget import BudgetLaw
from numerics.model.workload import IndependentLengths, RequestClass, Workload, ensure_memory

__all__ = ["ExactTail", "exact_flow_rate", "exact_overflow", "exact_tail", "exact_tail_per_class"]

_MAX_LOG2_L = 24  # 16 M points: the largest FFT tried
_MAX_DOUBLINGS = 4  # grid doublings tried for the convergence check
#: Untilted (θ = 0, tail ≳ 1/2 or M below the mean) answers are converged once two grids agree
#: to this absolute level: FFT rounding on probabilities of order one.
_ABS_FLOOR = 1e-13


@dataclass(frozen=True)
class ExactTail:
    """P(U > M) for the saturated memory, with its convergence evidence."""

    log_prob: float  # natural log of P(U > M)
    grid_points: int
    theta: float
    relative_change: float  # between the last two grid sizes
    method: str = "fft"  # "fft", "lobe", "circle" (all frequencies), "sure" (U ≤ M surely)

    @property
    def prob(self) -> float:
        return math.exp(self.log_prob) if self.log_prob > -745 else 0.0


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
    per_class = []
    for c, w in zip(wl.classes, wl.mix, strict=True):
        rows, uniq = _class_transform(c.lengths, theta, size)
        # joint law: suffix sums over decode values give the pairs alive at ages a < o
        suffix = None if uniq is None else np.cumsum(rows[::-1], axis=0)[::-1]
        per_class.append((w, c.lengths.decode_law.survival_by_age(n_ages), rows, uniq, suffix))
    log_ratio = np.zeros(size, dtype=complex)
    chunk = max(1, _CHUNK_ELEMENTS // size)
    for start in range(0, n_ages, chunk):
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
    above = u > memory
    weights = np.exp(-theta * (u[above] - memory - 1)) * np.clip(qu[above], 0.0, None)
    total = weights.sum()
    if total <= 0:
        return -math.inf
    return log_mgf - theta * (memory + 1) + math.log(total)


def _lattice_span(workload: Workload) -> int:
    """d = gcd of every value S + a + 1 (a < O) a request can hold: U lives on dℤ."""
    d = 0
    for c in workload.classes:
        lengths = c.lengths
        if isinstance(lengths, IndependentLengths):
            if lengths.n_ages >= 2:
                return 1  # S + 1 and S + 2 both occur
            prompts = lengths.prompt.values
        else:
            if int(lengths.decode_values.max()) >= 2:
                return 1
            prompts = lengths.prompt_values
        d = math.gcd(d, *(int(v) + 1 for v in np.unique(prompts)))
        if d == 1:
            return 1
    return max(d, 1)


_AGE_TAIL = 1e-17  # ages whose factors all lie this close to 1 are left out of the product


class _AgeTransforms:
    r"""The per-age factors of :math:`E[e^{zU}]/E[e^{\theta U}]` at z = θ + iω, normalised.

    With :math:`\varphi_a(z) = P(O \le a) + E[e^{zX_a}; O > a]`, the ratio
    :math:`\rho_a(\omega) = \varphi_a(\theta + i\omega)/\varphi_a(\theta)
    = p_{0,a} + \sum_c p_{c,a} R_{c,a}(\omega)`, where :math:`p_{0,a}` and :math:`p_{c,a}` are
    probabilities (they sum to 1) and :math:`|R_{c,a}| \le 1` is the characteristic function of
    :math:`X_a` under the θ-tilted law of class c. Everything stays bounded, whatever θ.
    """

    def __init__(self, workload: Workload, budget: BudgetLaw, theta: float) -> None:
        n = workload.n_ages
        self.n_ages = n
        self.budget = budget
        self.theta = theta
        g = workload.age_moments()[0]
        log_stay = log_stay_by_age(g)
        self.parts = []  # (log weight by age, class lengths)
        logs = [log_stay]
        for c, w in zip(workload.classes, workload.mix, strict=True):
            la = math.log(w) + c.lengths.age_log_mgf(theta, n)
            logs.append(la)
            self.parts.append((la, c.lengths))
        log_phi = np.logaddexp.reduce(np.stack(logs), axis=0)
        self.log_phi = log_phi
        with np.errstate(invalid="ignore"):
            self.p0 = np.exp(log_stay - log_phi)
            self.weights = [np.nan_to_num(np.exp(la - log_phi)) for la, _ in self.parts]
        self.log_mgf = float(np.sum(budget.log_pgf_of_log(log_phi)))
        r = budget.rate_per_slot
        self.k = math.floor(r)
        self.f = r - self.k
        if budget.kind == "randomized" and self.f > 0:
            lf = math.log(self.f)
            self.beta = np.exp(lf + log_phi - np.logaddexp(math.log1p(-self.f), lf + log_phi))
        # Ages whose factor is within 1e-17 of 1 at every ω (|ρ_a − 1| ≤ 2(1 − p_{0,a})) are
        # dropped, as the full-circle FFT does.
        if budget.kind == "poisson":
            contrib = 2 * r * np.exp(np.minimum(np.logaddexp.reduce(np.stack(logs[1:]), axis=0), 700.0))
        else:
            contrib = 2 * (self.k + 1) * (1 - self.p0)
        rest = np.cumsum(contrib[::-1])[::-1]
        self.n_ages = n = max(1, min(n, int(np.searchsorted(-rest, -_AGE_TAIL))))
        self.p0 = self.p0[:n]
        self.log_phi = log_phi[:n]
        self.weights = [w[:n] for w in self.weights]
        if budget.kind == "randomized" and self.f > 0:
            self.beta = self.beta[:n]
        self.ages1 = np.arange(1, n + 1, dtype=float)

    def _class_ratio(self, idx: int, lengths, omega: np.ndarray) -> np.ndarray:
        """R_{c,a}(ω) · e^{iω(a+1)} for every age (rows) and frequency (columns)."""
        theta = self.theta
        # e^{iω(a+1)} down the ages by a running product (a multiply instead of a complex exp)
        phase = np.empty((self.n_ages, omega.size), dtype=complex)
        phase[0] = np.exp(1j * omega)
        phase[1:] = phase[0]
        np.cumprod(phase, axis=0, out=phase)
        if isinstance(lengths, IndependentLengths):
            s = lengths.prompt.values.astype(float)
            lw = np.log(lengths.prompt.probs) + theta * s
            w = np.exp(lw - lw.max())
            psi = (w[:, None] * np.exp(1j * np.outer(s, omega))).sum(axis=0) / w.sum()
            return phase * psi[None, :]
        s = lengths.prompt_values.astype(float)
        o = lengths.decode_values
        lw = np.log(lengths.probs) + theta * s
        w = np.exp(lw - lw.max())
        n = self.n_ages
        per_o = np.zeros((max(int(o.max()), n) + 1, omega.size), dtype=complex)
        np.add.at(per_o, o, w[:, None] * np.exp(1j * np.outer(s, omega)))
        per_o_real = np.bincount(o, weights=w, minlength=per_o.shape[0])
        suffix = np.cumsum(per_o[::-1], axis=0)[::-1][1 : n + 1]  # Σ_{o > a}, a = 0..n-1
        suffix_real = np.cumsum(per_o_real[::-1])[::-1][1 : n + 1]
        with np.errstate(invalid="ignore", divide="ignore"):
            out = suffix / suffix_real[:, None]
        return phase * np.nan_to_num(out)

    def log_ratio(self, omega: np.ndarray) -> np.ndarray:
        r"""log E[e^{(θ+iω)U}] − log E[e^{θU}] at each ω (complex)."""
        omega = np.asarray(omega, dtype=float)
        out = np.zeros(omega.size, dtype=complex)
        chunk = max(1, _CHUNK_ELEMENTS // max(self.n_ages, 1))
        for lo in range(0, omega.size, chunk):
            om = omega[lo : lo + chunk]
            rho = np.repeat(self.p0[:, None], om.size, axis=1).astype(complex)
            for idx, (w, (_la, lengths)) in enumerate(zip(self.weights, self.parts, strict=True)):
                rho += w[:, None] * self._class_ratio(idx, lengths, om)
            with np.errstate(divide="ignore", under="ignore"):
                if self.budget.kind == "poisson":
                    phi = np.exp(np.minimum(self.log_phi, 700.0))
                    out[lo : lo + chunk] = self.budget.rate_per_slot * (phi[:, None] * (rho - 1)).sum(0)
                    continue
                # |ρ_a| ≤ 1: a product down the ages cannot overflow; if it underflows, the
                # transform is below 1e-308 of its value at ω = 0 there, which its log then says.
                acc = _k_log(self.k, np.prod(rho, axis=0)) if self.k else 0.0
                if self.budget.kind == "randomized" and self.f > 0:
                    bern = (1 - self.beta)[:, None] + self.beta[:, None] * rho
                    acc = acc + np.log(np.prod(bern, axis=0))
                out[lo : lo + chunk] = acc
        return out


#: The main lobe is followed outward until a block of frequencies adds less than this, relative.
_LOBE_TAIL = 1e-18
_BLOCK = 64  # frequencies evaluated at once while following the lobe outward
_SCAN_POINTS = 512  # coarse scan of |E e^{(θ+iω)U}| beyond the lobe, looking for lattice peaks
#: A scanned |transform ratio| above this means U is close to a lattice the lobe cannot see.
_PEAK_LIMIT = 1e-12


class _Product:
    """Independent parts (one workload and budget law each): log-MGFs and transform ratios add."""

    def __init__(self, parts: list[tuple[Workload, BudgetLaw]], theta: float) -> None:
        self.ages = [_AgeTransforms(wl, law, theta) for wl, law in parts]
        self.log_mgf = sum(a.log_mgf for a in self.ages)

    def log_ratio(self, omega: np.ndarray) -> np.ndarray:
        return sum(a.log_ratio(omega) for a in self.ages)


def _lobe_log_tail(parts: list[tuple[Workload, BudgetLaw]], memory: int, theta_star: float,
                   sigma: float, rtol: float, full_circle: bool = False) -> ExactTail:
    r"""P(U > M) by the inversion integral over the main lobe of the tilted transform.

    For integer U and θ > 0,
    :math:`P(U > M) = \frac{1}{2\pi}\int_{-\pi}^{\pi}
    \frac{E[e^{(\theta+i\omega)U}]\,e^{-(\theta+i\omega)(M+1)}}{1 - e^{-\theta-i\omega}}\,d\omega`
    (θ < 0 and :math:`e^{-zM}/(1-e^{z})` give P(U ≤ M) instead). The trapezoid rule with step
    h = 2π/N is exact up to the aliasing of the θ-tilted law at distance N, so N ≥ 32 σ suffices
    and N doubles until two answers agree to ``rtol``; and since the transform decays like
    :math:`e^{-\sigma^2\omega^2/2}` away from ω = 0, only the frequencies of its main lobe are
    evaluated, not all N. A lattice (U on dℤ) is divided out exactly; a coarse scan of the rest
    of the circle checks that no near-lattice side peak was missed. ``parts`` are independent
    (workload, budget law) pairs whose memories add: one for a single budget, one per class for
    per-class budgets.
    """
    d = 0
    for wl, _law in parts:
        d = math.gcd(d, _lattice_span(wl))
    mv = memory // d  # P(U > M) = P(V > ⌊M/d⌋), V = U/d
    mean = sum(law.rate_per_slot * wl.mean_memory_time for wl, law in parts)
    sig_u = max(sigma, 1.0)
    upper = memory >= mean

    def kappa(t: float) -> float:
        return sum(flow_log_mgf(wl, t, law) for wl, law in parts)

    def tilted_sd(t: float) -> float:
        """√κ''(t): the standard deviation of U under the t-tilted law (heavy tails widen it)."""
        dh = 0.01 / sig_u
        var = (kappa(t + dh) - 2 * kappa(t) + kappa(t - dh)) / dh**2
        return math.sqrt(var) if math.isfinite(var) and var > 1e-4 * sig_u**2 else sig_u

    if upper:
        theta = max(theta_star, 1.0 / (tilted_sd(theta_star) if theta_star > 0 else sig_u))
    else:
        theta = -max(1.0 / sig_u, (mean - memory) / sig_u**2)
    sig_t = tilted_sd(theta)
    ages = _Product(parts, theta)
    theta_v = theta * d
    n_pts = 1 << max(6, math.ceil(math.log2(32 * max(sig_t, sig_u) / d + 1)))

    def integrand(omega_v: np.ndarray) -> np.ndarray:
        lr = ages.log_ratio(omega_v / d)
        z = theta_v + 1j * omega_v
        with np.errstate(under="ignore"):
            if upper:
                return np.exp(lr - 1j * omega_v * (mv + 1)) / (1 - np.exp(-z))
            return np.exp(lr - 1j * omega_v * mv) / (1 - np.exp(z))

    def follow(h: float, start: int, step: int) -> tuple[float, int]:
        """Σ 2·Re F(jh) over j = start, start + step, … until the lobe has died out."""
        acc = 0.0
        j = start
        last = math.floor(np.pi / h)
        while j <= last:
            js = np.arange(j, min(j + step * _BLOCK, last + 1), step)
            vals = integrand(js * h)
            weight = np.where(js == last, 1.0 if np.isclose(last * h, np.pi) else 2.0, 2.0)
            acc += float(np.sum(weight * vals.real))
            j = int(js[-1]) + step
            if not full_circle and np.max(np.abs(vals)) * _BLOCK <= _LOBE_TAIL * abs(acc + f0):
                break
        return acc, j

    f0 = float(integrand(np.zeros(1))[0].real)
    h = 2 * np.pi / n_pts
    total, reach = follow(h, 1, 1)  # Σ over the grid h, including F(0) below
    total += f0
    prev = h * total / (2 * np.pi)
    change = math.inf
    for _ in range(_MAX_DOUBLINGS + 4):
        # halve h: the old points are the even ones of the new grid; add the odd ones
        n_pts *= 2
        h /= 2
        odd, reach_odd = follow(h, 1, 2)
        reach = max(2 * reach, reach_odd)
        total += odd
        value = h * total / (2 * np.pi)
        change = abs(value - prev) / max(abs(value), 1e-300)
        prev = value
        if change <= rtol:
            break
    if not change <= rtol:
        raise _LobeUnreliable(f"the lobe integral did not converge (relative change {change:.2g})")
    top = reach * h
    # Coarse scan of the rest of the circle for side peaks (near-lattice laws).
    peak = 0.0
    if top < np.pi:
        scan = np.linspace(top, np.pi, _SCAN_POINTS)
        with np.errstate(under="ignore"):
            peak = float(np.max(np.exp(ages.log_ratio(scan / d).real)))
    if peak > _PEAK_LIMIT and not full_circle:
        raise _LobeUnreliable(f"a side peak ({peak:.2g}) of the transform beyond its main lobe: U is "
                              "nearly lattice-valued")
    if upper:
        log_prob = (ages.log_mgf - theta_v * (mv + 1) + math.log(value)) if value > 0 else -math.inf
    else:
        low = math.exp(ages.log_mgf - theta_v * mv) * value
        log_prob = math.log1p(-min(low, 1.0)) if low < 1 else -math.inf
    if log_prob > _LOG_ONE_TOL:
        raise _LobeUnreliable(f"the inversion gave a probability above 1 (log {log_prob:.3g})")
    return ExactTail(min(log_prob, 0.0), int(n_pts), theta, change, "lobe")


#: log P may exceed 0 by rounding only (a probability of one computed as 1 + 1e-12).
_LOG_ONE_TOL = 1e-9


class _LobeUnreliable(Exception):
    """The main-lobe inversion cannot vouch for its answer (side peak, no convergence)."""


def exact_tail(workload: Workload, memory_tokens: int, rate_per_slot: float,
               budget: str = "randomized", rtol: float = 1e-8, method: str = "auto") -> ExactTail:
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
        return ExactTail(-math.inf, 0, 0.0, 0.0, "sure")  # U ≤ M surely
    if rate_per_slot == 0:
        return ExactTail(-math.inf, 0, 0.0, 0.0, "sure")
    theta = 0.0 if rate_per_slot * workload.mean_memory_time >= m else tails.chernoff_theta(law)
    sigma = math.sqrt(tails.variance(law))
    result = None
    if method in ("lobe", "auto"):
        try:
            result = _lobe_log_tail([(workload, law)], m, theta, sigma, rtol)
        except _LobeUnreliable as exc:
            if method == "lobe":
                raise WorkloadError(f"method='lobe': {exc.args[0]}; use method='fft'") from None
    if result is None:
        result = _fft_tail(workload, m, law, theta, sigma, rtol)
    return _with_penalty(result, tails.penalty(rate_per_slot))


def _with_penalty(result: ExactTail, penalty: float) -> ExactTail:
    """Add r·E[#requests beyond the stored support] (unbounded laws) to the tail, in log space."""
    if penalty <= 0:
        return result
    return dataclasses.replace(result, log_prob=float(np.logaddexp(result.log_prob, math.log(penalty))))


def _fft_tail(workload: Workload, m: int, law: BudgetLaw, theta: float, sigma: float,
              rtol: float) -> ExactTail:
    spread = max(64.0, 10.0 * sigma)  # the doubling check below confirms it
    size = 1 << max(10, math.ceil(math.log2(2 * spread + 2)))
    if theta == 0.0:
        size = max(size, 1 << math.ceil(math.log2(m + spread + 2)))
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


def exact_overflow(workload: Workload, memory_tokens: int, rate_per_slot: float,
                   budget: str = "randomized", method: str = "auto") -> float:
    """P(U > M), exact to the FFT's rounding (see :func:`exact_tail`)."""
    return exact_tail(workload, memory_tokens, rate_per_slot, budget, method=method).prob


def exact_flow_rate(workload: Workload, memory_tokens: int, epsilon: float,
                    budget: str = "randomized", rtol: float = 1e-6) -> FlowRate:
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


def exact_tail_per_class(workload: Workload, memory_tokens: int, rates_per_slot,
                         budget: str = "randomized", rtol: float = 1e-8) -> ExactTail:
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
