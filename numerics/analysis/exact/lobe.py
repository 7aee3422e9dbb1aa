r"""Exact tails by the inversion integral over the main lobe of the tilted transform (``method="lobe"``).

See :mod:`numerics.analysis.exact` for the formula: the trapezoid rule on the inversion integral
is evaluated only where the tilted transform has not yet died out (its main lobe), after dividing
out the lattice U lives on, with a coarse scan of the rest of the circle for side peaks.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np

from numerics.analysis.exact.fft import _CHUNK_ELEMENTS, _MAX_DOUBLINGS, _k_log
from numerics.analysis.exact.result import ExactTail, _check_time, _OutOfTime, _time_left
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


def _direct_cf(values: np.ndarray, weights: np.ndarray, omega: np.ndarray) -> np.ndarray:
    r"""Σ_s w_s e^{iωs} / Σ_s w_s at each ω. For equally spaced ω_k = ω_0 + kΔ (the walks' blocks
    and the side-peak scan) the phases are :math:`e^{iω_0 s}(e^{iΔs})^k`, a running product (one
    complex multiply per term instead of one complex exponential; rounding grows like k·2⁻⁵³,
    k ≤ 256 per restart), in chunks of at most 16 MiB (see :func:`_phases`), and summed."""
    s = values.astype(float)
    rows = max(1, _CHUNK_ELEMENTS // 4 // max(s.size, 1))
    out = np.empty(omega.size, dtype=complex)
    for lo in range(0, omega.size, rows):
        sub = omega[lo : lo + rows]
        ph = _phases(s, sub)
        ph *= weights  # (no BLAS call: tiny products are slow under a busy multithreaded BLAS)
        out[lo : lo + sub.size] = ph.sum(axis=1)
    return out / weights.sum()


def _phases(s: np.ndarray, omega: np.ndarray) -> np.ndarray:
    """e^{iω_k s_j} (rows k, columns j); by running products along k where ω is equally spaced,
    restarted from an exact exponential every 256 rows."""
    s = np.asarray(s, dtype=float)
    m = omega.size
    if m >= 3:
        step = omega[1] - omega[0]
        if np.all(np.abs(np.diff(omega) - step) <= 1e-12 * max(abs(step), 1e-300)):
            out = np.empty((m, s.size), dtype=complex)
            ratio = np.exp(1j * step * s)
            for lo in range(0, m, 256):
                k = min(256, m - lo)
                out[lo] = np.exp(1j * omega[lo] * s)
                out[lo + 1 : lo + k] = ratio
                np.cumprod(out[lo : lo + k], axis=0, out=out[lo : lo + k])
            return out
    return np.exp(1j * np.outer(omega, s))


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
        self.log_p_zero = _log_prob_zero(log_stay, budget)
        if budget.kind == "randomized" and self.f > 0:
            lf = math.log(self.f)
            self.beta = np.exp(lf + log_phi - np.logaddexp(math.log1p(-self.f), lf + log_phi))
        # Ages whose factor is within 1e-17 of 1 at every ω (|ρ_a − 1| ≤ 2(1 − p_{0,a})) are
        # dropped, as the full-circle FFT does.
        if budget.kind == "poisson":
            contrib = 2 * r * np.exp(np.minimum(np.logaddexp.reduce(np.stack(logs[1:]), axis=0), 700.0))
        elif budget.kind == "law":  # |E_a[ρ^B] − 1| ≤ E_a[B]·|ρ − 1|, E_a the law tilted at φ_a
            self.tilt = budget.tilted(log_phi)
            contrib = 2 * self.tilt.mean * (1 - self.p0)
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
        self._prompt_cache: dict = {}

    def _prompt_ratio(self, idx: int, lengths, omega: np.ndarray,
                      grid: tuple[int, np.ndarray] | None) -> np.ndarray:
        """E_θ[e^{iωS}] of an independent prompt: by one cached FFT of the tilted PMF folded mod L
        when ω = 2πj/L lies on a grid of L points (``grid = (L, j)``) and the support is large,
        else by direct sums."""
        s = lengths.prompt.values
        lw = np.log(lengths.prompt.probs) + self.theta * s.astype(float)
        w = np.exp(lw - lw.max())
        if grid is not None and s.size > _FFT_PROMPT_POINTS and grid[0] <= _FFT_PROMPT_MAX_L:
            size, js = grid
            key = (idx, size)
            # direct sums until they have cost about as much as the FFT would (short walks; a
            # term of a direct sum by running products costs about 1/16 of an FFT point)
            spent = self._prompt_cache.get(("spent", key), 0) + s.size * omega.size
            self._prompt_cache[("spent", key)] = spent
            use_fft = self._prompt_cache.get("key") == key or spent > 16 * size
            if not use_fft:
                return _direct_cf(s, w, omega)
            if self._prompt_cache.get("key") != key:
                folded = np.bincount(s % size, weights=w, minlength=size)
                self._prompt_cache["key"] = key
                self._prompt_cache["psi"] = np.conj(np.fft.fft(folded)) / w.sum()
            return self._prompt_cache["psi"][np.asarray(js) % size]
        return _direct_cf(s, w, omega)

    def _class_ratio(self, idx: int, lengths, omega: np.ndarray,
                     grid: tuple[int, np.ndarray] | None = None) -> np.ndarray:
        """R_{c,a}(ω) · e^{iω(a+1)} for every age (rows) and frequency (columns)."""
        theta = self.theta
        # e^{iω(a+1)} down the ages by a running product (a multiply instead of a complex exp)
        phase = np.empty((self.n_ages, omega.size), dtype=complex)
        phase[0] = np.exp(1j * omega)
        phase[1:] = phase[0]
        np.cumprod(phase, axis=0, out=phase)
        if isinstance(lengths, IndependentLengths):
            return phase * self._prompt_ratio(idx, lengths, omega, grid)[None, :]
        s = lengths.prompt_values.astype(float)
        o = lengths.decode_values
        lw = np.log(lengths.probs) + theta * s
        w = np.exp(lw - lw.max())
        n = self.n_ages
        per_o = np.zeros((max(int(o.max()), n) + 1, omega.size), dtype=complex)
        # Σ over the pairs of each decode value: pairs sorted by O once, then one reduceat
        # Σ over the pairs of each decode value: one sparse matrix (decode value × prompt value,
        # the pairs' tilted weights) times the phases e^{iωs} of each distinct prompt value
        order = self._prompt_cache.get(("order", idx))
        if order is None:
            from scipy import sparse

            o_first, o_row = np.unique(o, return_inverse=True)
            uniq, s_col = np.unique(s, return_inverse=True)
            mat = sparse.csr_matrix((w, (o_row, s_col)), shape=(o_first.size, uniq.size))
            order = self._prompt_cache[("order", idx)] = (o_first, uniq, mat)
        o_first, uniq, mat = order
        rows = max(1, _CHUNK_ELEMENTS // 4 // max(uniq.size, 1))
        for lo in range(0, omega.size, rows):
            sub = omega[lo : lo + rows]
            per_o[o_first, lo : lo + sub.size] = mat @ _phases(uniq, sub).T
        per_o_real = np.bincount(o, weights=w, minlength=per_o.shape[0])
        suffix = np.cumsum(per_o[::-1], axis=0)[::-1][1 : n + 1]  # Σ_{o > a}, a = 0..n-1
        suffix_real = np.cumsum(per_o_real[::-1])[::-1][1 : n + 1]
        with np.errstate(invalid="ignore", divide="ignore"):
            out = suffix / suffix_real[:, None]
        return phase * np.nan_to_num(out)

    def log_ratio(self, omega: np.ndarray, grid: tuple[int, np.ndarray] | None = None) -> np.ndarray:
        r"""log E[e^{(θ+iω)U}] − log E[e^{θU}] at each ω (complex); ``grid = (L, j)`` says that
        ω = 2πj/L (it lets large prompt supports be transformed by one FFT)."""
        omega = np.asarray(omega, dtype=float)
        out = np.zeros(omega.size, dtype=complex)
        chunk = max(1, _CHUNK_ELEMENTS // max(self.n_ages, 1))
        for lo in range(0, omega.size, chunk):
            om = omega[lo : lo + chunk]
            sub = None if grid is None else (grid[0], np.asarray(grid[1])[lo : lo + chunk])
            rho = np.repeat(self.p0[:, None], om.size, axis=1).astype(complex)
            for idx, (w, (_la, lengths)) in enumerate(zip(self.weights, self.parts, strict=True)):
                rho += w[:, None] * self._class_ratio(idx, lengths, om, sub)
            with np.errstate(divide="ignore", under="ignore"):
                if self.budget.kind == "poisson":
                    phi = np.exp(np.minimum(self.log_phi, 700.0))
                    out[lo : lo + chunk] = self.budget.rate_per_slot * (phi[:, None] * (rho - 1)).sum(0)
                    continue
                if self.budget.kind == "law":  # Π_a E_a[ρ_a^B], each factor of modulus ≤ 1
                    ratio = self.tilt.ratio(rho, slice(0, self.n_ages))
                    out[lo : lo + chunk] = np.log(np.prod(ratio, axis=0))
                    continue
                # |ρ_a| ≤ 1: a product down the ages cannot overflow; if it underflows, the
                # transform is below 1e-308 of its value at ω = 0 there, which its log then says.
                acc = _k_log(self.k, np.prod(rho, axis=0)) if self.k else 0.0
                if self.budget.kind == "randomized" and self.f > 0:
                    bern = (1 - self.beta)[:, None] + self.beta[:, None] * rho
                    acc = acc + np.log(np.prod(bern, axis=0))
                out[lo : lo + chunk] = acc
        return out


#: The main lobe is followed outward until the rest of the circle can change the answer by at most
#: this fraction of ``rtol`` (a bound on the integrand's modulus there, given the largest transform
#: ratio beyond, which the side-peak scan checks: see ``follow``). A transform with a floor (atoms
#: of U far from M) is no longer walked round the whole circle: the floor's share is bounded.
_LOBE_RTOL = 0.1
_BLOCK = 64  # frequencies evaluated at once while following the lobe outward
_SCAN_POINTS = 512  # coarse scan of |E e^{(θ+iω)U}| beyond the lobe, looking for lattice peaks
#: A scanned |transform ratio| above this means U is close to a lattice the lobe cannot see.
_PEAK_LIMIT = 1e-12


def _log_prob_zero(log_stay: np.ndarray, budget: BudgetLaw) -> float:
    """log P(U = 0) = Σ_a log P_B(P(O ≤ a)) (−∞ when some cohort is never empty)."""
    r = budget.rate_per_slot
    if budget.kind == "poisson":
        return float(np.sum(r * np.expm1(log_stay)))
    if budget.kind == "law":
        return float(np.sum(budget.log_pgf_of_log(log_stay)))
    k = math.floor(r)
    f = r - k
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.zeros(log_stay.shape) if k == 0 else k * log_stay
        if budget.kind == "randomized" and f > 0:
            out = out + np.logaddexp(math.log1p(-f), math.log(f) + log_stay)
    total = float(np.sum(out))
    return total if not math.isnan(total) else -math.inf


class _Product:
    """Independent parts (one workload and budget law each): log-MGFs and transform ratios add."""

    def __init__(self, parts: list[tuple[Workload, BudgetLaw]], theta: float) -> None:
        self.ages = [_AgeTransforms(wl, law, theta) for wl, law in parts]
        self.log_mgf = sum(a.log_mgf for a in self.ages)
        #: log P(U = 0): every part and every age holds nothing (requests hold ≥ 1 token)
        self.log_p_zero = sum(a.log_p_zero for a in self.ages)
        #: the tilted law's atom at U = 0, P(U = 0)/E e^{θU}: a constant in the transform ratio,
        #: which the inversion subtracts (it never reaches the circle's far side as a floor)
        with np.errstate(under="ignore"):
            self.atom_zero = math.exp(self.log_p_zero - self.log_mgf) if self.log_p_zero > -700 else 0.0

    def log_ratio(self, omega: np.ndarray, grid: tuple[int, np.ndarray] | None = None) -> np.ndarray:
        return sum(a.log_ratio(omega, grid) for a in self.ages)


def _lobe_log_tail(parts: list[tuple[Workload, BudgetLaw]], memory: int, theta_star: float,
                   sigma: float, rtol: float, full_circle: bool = False,
                   long_walk: Callable[[], ExactTail | None] | None = None) -> ExactTail:
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
    per-class budgets. ``long_walk``, if given, is asked for the answer once the first walk has run
    past _WALK_LIMIT frequencies (before the tilt is moved); it returns None where it does not
    apply.
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
        theta0 = max(theta_star, 1.0 / (tilted_sd(theta_star) if theta_star > 0 else sig_u))
    elif theta_star < 0:  # the lower tail's Chernoff minimiser: the tilted law is centred at M
        theta0 = min(theta_star, -1.0 / tilted_sd(theta_star))
    else:
        theta0 = -max(1.0 / sig_u, (mean - memory) / sig_u**2)
    # Atoms of the tilted law far from M (few active requests at light load: U = one prompt plus
    # its age, ...) keep the transform from dying out beyond its lobe. Their share relative to the
    # answer falls like e^{−Δθ·|M − u|} when the tilt moves past the Chernoff one by Δθ, at the cost
    # of a smaller, less well-conditioned answer (a factor ≈ e^{−(σΔθ)²/2}): if the walk beyond
    # the lobe runs past _WALK_LIMIT frequencies, ``long_walk`` is asked first, then the tilt moves
    # out by _TILT_STEPS/σ_t and the inversion starts again; if that fails too, the base tilt walks
    # as far as it must.
    sig0 = tilted_sd(theta0)
    sign = 1.0 if upper else -1.0
    def attempt(step: float, limit: int | None) -> ExactTail:
        theta = theta0 + sign * step / sig0
        return _lobe_at(parts, theta, d, mv, upper, sig_u, tilted_sd(theta), rtol, full_circle, limit)

    if full_circle:
        return attempt(0.0, None)
    started = time.monotonic()
    try:
        return attempt(0.0, _WALK_LIMIT)
    except _WalkTooLong:
        per_second = _WALK_LIMIT / max(time.monotonic() - started, 1e-6)
    except _SidePeak as exc:
        # A broad floor beyond the lobe (atoms of the tilted law far below M: few active requests)
        # falls like e^{−step·(M − E U)/σ_t} as the tilt moves out by step/σ_t, while the answer
        # shrinks by about e^{−step²/2}: move the tilt just far enough (a true lattice peak does not
        # fall; then the caller's fallback decides).
        rate = max((memory - mean) / sig0, 0.0)
        need = math.log(exc.peak / exc.needed) + math.log(100.0)
        last_peak = exc.peak
        for step in _PEAK_STEPS:
            if step * rate - step**2 / 2 < need and step < _PEAK_STEPS[-1]:
                continue
            try:
                return attempt(step, _WALK_LIMIT)
            except _SidePeak as again:
                if not again.peak < 0.1 * last_peak:
                    raise
                last_peak = again.peak
                need = math.log(again.peak / again.needed) + math.log(100.0) + step * rate - step**2 / 2
            except _WalkTooLong:
                break
        raise
    if long_walk is not None:
        result = long_walk()
        if result is not None:
            return result
    for step in _TILT_STEPS:
        try:
            return attempt(step, _WALK_LIMIT)
        except (_WalkTooLong, _LobeUnreliable):
            continue
    # walk as far as it must at the first tilt: about N frequencies for the last two grids (N ≥
    # 32 σ_t), at the first walk's pace; if that cannot finish within the time budget, say so now
    n_pts = 1 << max(6, math.ceil(math.log2(32 * max(sig0, sig_u) / d + 1)))
    if 1.5 * n_pts / per_second > _time_left():
        raise _OutOfTime
    return attempt(0.0, None)


#: Prompt supports larger than this are transformed by one FFT over the grid (see _prompt_ratio),
#: for grids of at most _FFT_PROMPT_MAX_L points (64 MiB of complex128).
_FFT_PROMPT_POINTS = 512
_FFT_PROMPT_MAX_L = 1 << 22

#: Tilts tried after the base one, as multiples of 1/σ_t beyond it (see :func:`_lobe_log_tail`).
_TILT_STEPS = (2.0,)
#: Tilts tried when the base one finds a broad floor beyond the lobe (a side peak that falls as the
#: tilt moves out); beyond 4/σ_t the answer loses a factor e^{8} of its conditioning.
_PEAK_STEPS = (1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0)
#: Frequencies the walks of one attempt may evaluate (all grid doublings together) before the tilt
#: is moved out.
_WALK_LIMIT = 64 * 64


class _WalkTooLong(Exception):
    """The transform has not died out after _WALK_LIMIT frequencies: try a larger tilt."""


def _lobe_at(parts: list[tuple[Workload, BudgetLaw]], theta: float, d: int, mv: int, upper: bool,
             sig_u: float, sig_t: float, rtol: float, full_circle: bool,
             limit: int | None) -> ExactTail:
    """The inversion of :func:`_lobe_log_tail` at one tilt θ (``limit``: see _WALK_LIMIT)."""
    ages = _Product(parts, theta)
    theta_v = theta * d
    n_pts = 1 << max(6, math.ceil(math.log2(32 * max(sig_t, sig_u) / d + 1)))
    # |1/(1 − e^{∓z})| ≤ 1/(b|sin ω|) on [0, π/2] and ≤ 1 on [π/2, π], with b = e^{−|θ|}: the
    # integral of the integrand's modulus beyond ω is at most peak·_rest(ω), peak the largest
    # |transform ratio| there.
    b = math.exp(-abs(theta_v))

    def rest(omega: float) -> float:
        """(1/π)∫_ω^π dω'/|1 − e^{∓(θ + iω')}|, bounded above (both sides of the circle)."""
        return (math.log(np.pi / (2 * omega)) / (2 * b) if omega < np.pi / 2 else 0.0) + 0.5

    # The atom of U at 0 (P(U = 0) > 0 when a budget can be 0) is a constant c0 in the transform
    # ratio, a floor round the whole circle. It lies below M, so it adds nothing to P(U > M): it is
    # subtracted here, and added back exactly to P(U ≤ M) below.
    c0 = ages.atom_zero

    def integrand(omega_v: np.ndarray, grid: tuple[int, np.ndarray] | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
        lr = ages.log_ratio(omega_v / d, grid)
        z = theta_v + 1j * omega_v
        with np.errstate(under="ignore"):
            psi = np.exp(lr) - c0
            ratio = np.abs(psi)
            if upper:
                return psi * np.exp(-1j * omega_v * (mv + 1)) / (1 - np.exp(-z)), ratio
            return psi * np.exp(-1j * omega_v * mv) / (1 - np.exp(z)), ratio

    def follow(h: float, start: int, step: int, base: float) -> tuple[float, int]:
        """Σ 2·Re F(jh) over j = start, start + step, … until the lobe has died out: until the
        whole rest of the circle can add at most _LOBE_RTOL·rtol of the answer (the integrand's
        modulus there is at most the block's largest ratio times ``rest``, which the side-peak scan
        below checks). ``base`` is the grid sum so far, to which the walk adds."""
        acc = 0.0
        j = start
        last = math.floor(np.pi / h)
        while j <= last:
            if limit is not None and evaluated[0] > limit:
                raise _WalkTooLong
            _check_time()
            js = np.arange(j, min(j + step * _BLOCK, last + 1), step)
            evaluated[0] += js.size
            # ω_v = j·h = 2πj/N on the grid, so ω = ω_v/d = 2πj/(N·d)
            vals, ratio = integrand(js * h, (round(2 * np.pi / h) * d, js))
            weight = np.where(js == last, 1.0 if np.isclose(last * h, np.pi) else 2.0, 2.0)
            acc += float(np.sum(weight * vals.real))
            j = int(js[-1]) + step
            bound = 2 * float(np.max(ratio)) * rest(j * h)
            if not full_circle and bound <= _LOBE_RTOL * rtol * h * abs(base + acc) / (2 * np.pi):
                break
        return acc, j

    evaluated = [0]  # frequencies evaluated by the walks of this attempt (against ``limit``)
    f0 = float(integrand(np.zeros(1))[0][0].real)
    h = 2 * np.pi / n_pts
    total, reach = follow(h, 1, 1, f0)  # Σ over the grid h, including F(0) below
    total += f0
    prev = h * total / (2 * np.pi)
    change = math.inf
    for _ in range(_MAX_DOUBLINGS + 4):
        # halve h: the old points are the even ones of the new grid; add the odd ones
        n_pts *= 2
        h /= 2
        odd, reach_odd = follow(h, 1, 2, total)
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
            peak = float(np.max(np.abs(np.exp(ages.log_ratio(scan / d)) - c0)))
    if not full_circle and (peak > _PEAK_LIMIT
                            and 2 * peak * rest(top) > _LOBE_RTOL * rtol * abs(value)):
        raise _SidePeak(f"a side peak ({peak:.2g}) of the transform beyond its main lobe: U is "
                        "nearly lattice-valued", peak, _LOBE_RTOL * rtol * abs(value) / (2 * rest(top)))
    if upper:
        log_prob = (ages.log_mgf - theta_v * (mv + 1) + math.log(value)) if value > 0 else -math.inf
    else:
        low = math.exp(ages.log_mgf - theta_v * mv) * value + (
            math.exp(ages.log_p_zero) if ages.log_p_zero > -745 else 0.0)
        log_prob = math.log1p(-min(low, 1.0)) if low < 1 else -math.inf
    if log_prob > _LOG_ONE_TOL:
        raise _LobeUnreliable(f"the inversion gave a probability above 1 (log {log_prob:.3g})")
    return ExactTail(min(log_prob, 0.0), int(n_pts), theta, change, "lobe")


#: log P may exceed 0 by rounding only (a probability of one computed as 1 + 1e-12).
_LOG_ONE_TOL = 1e-9


class _LobeUnreliable(Exception):
    """The main-lobe inversion cannot vouch for its answer (side peak, no convergence)."""


class _SidePeak(_LobeUnreliable):
    """The scan beyond the lobe found |transform ratio| = ``peak``; ``needed`` was the most allowed."""

    def __init__(self, message: str, peak: float, needed: float) -> None:
        super().__init__(message)
        self.peak = peak
        self.needed = max(needed, 1e-300)
