r"""Exact tails by the inversion integral over the main lobe of the tilted transform (``method="lobe"``).

See :mod:`numerics.analysis.exact` for the formula: the trapezoid rule on the inversion integral
is evaluated only where the tilted transform has not yet died out (its main lobe), after dividing
out the lattice U lives on, with a coarse scan of the rest of the circle for side peaks.
"""

from __future__ import annotations

import math

import numpy as np

from numerics.analysis.exact.fft import _CHUNK_ELEMENTS, _MAX_DOUBLINGS, _k_log
from numerics.analysis.exact.result import ExactTail
from numerics.analysis.flow import flow_log_mgf, log_stay_by_age
from numerics.model.budget import BudgetLaw
from numerics.model.workload import IndependentLengths, Workload

__all__: list[str] = []


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
