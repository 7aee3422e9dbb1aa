r"""The waste certificate: the largest flow-control rate whose recompute waste is at most δ.

Symbolic twin: :mod:`theory.waste` (``waste_bound``, the combination formula below).

Under LIFO eviction with recompute a request evicted at age a ≥ 1 (a slots after its activation)
throws away the a tokens it generated; a request activated and evicted in its own slot is a drop
on admission and wastes nothing (docs/model.md). For saturated flow control at mean rate r
(budget law B) with block size 1, docs/theory.md §13 proves, under the fresh-attempt hypothesis
(H) — every activation's (S, O) is a fresh draw, independent of the past —

.. math::

    E[\text{waste per slot}] \le \bar W = \sum_{b \ge 0}
      \Big[ P_b\,\frac{s+b+1}{s+b+2} + \frac{X_b}{s+b+2} \Big],
    \qquad
    \frac{\text{waste}}{\text{tokens emitted}} \le \frac{\bar W}{r\,E[O] - \hat L},

where, for the *free* saturated memory :math:`U = \sum_a \sum_{m \le B_{t-a}} X_{a,m}` of
:mod:`numerics.analysis.flow`, :math:`U_{>b}` is the part held by requests of age > b,
:math:`P_b \ge P(U_{>b} > M)`, :math:`X_b \ge \min(E(U_{>b}-M)^+, E[N_{old}; U_{>b} > M])`
(N_old = number of requests of age ≥ 1), s = the smallest prompt, and L̂ bounds the tokens the
evictions and drops take away from r·E[O] (docs/theory.md §13.4). Two ways to evaluate them:

* ``chernoff`` — every ingredient by a Chernoff-type inequality, minimised over a grid of θ:
  :math:`P(Y > M) \le e^{\Lambda(\theta) - \theta(M+1)}`,
  :math:`E(Y - M)^+ \le c(\theta)e^{\Lambda(\theta) - \theta M}` with
  :math:`c(\theta) = \max_{k \ge 1} k e^{-\theta k} \le 1/(e\theta)`, and
  :math:`E[N; Y > M] \le E[N e^{\theta(Y - M - 1)}]` (a closed form in the per-age transforms);
  fast (≈ 0.05 s at M = 131 072);
* ``exact`` — the law of every :math:`U_{>b}` folded modulo L ≥ max(M + 2, E U + 10σ), from its
  generating function at the L-th roots of unity built down the ages (the folded law is ≥ the
  true one on [0, L)), plus Chernoff bounds on the part at L or beyond; the smaller of this and the
  Chernoff value, term by term, so ``exact`` is never above ``chernoff``. Valid up to
  floating-point rounding, which is not bounded here; O(L × ages), 1–3 s at M = 131 072.

Requires bounded prompt and decode laws (clip with ``max=``).

Examples
--------
The geometric workload of issue 14 (S = 20, O geometric with mean 100 clipped at 1000,
M = 20 000, λ_max = 1.667): the waste fraction certified at r = 1.2 is below 1 %.

>>> from numerics.model.specs import parse_law
>>> from numerics.model.workload import Workload
>>> wl = Workload.single(parse_law("20"), parse_law("geom:mean=100,max=1000"))
>>> cert = waste_certificate(wl, 20_000, 1.2)
>>> cert.fraction < 0.01, cert.waste_per_slot <= cert.fraction * cert.emitted_lower_bound + 1e-12
(True, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np

from numerics.analysis.bounds import BoundNotApplicable
from numerics.analysis.flow import flow_saturated_variance, log_stay_by_age
from numerics.errors import WorkloadError
from numerics.model.budget import BudgetKind, BudgetLaw
from numerics.model.workload import IndependentLengths, Workload, ensure_memory

__all__ = [
    "WASTE_METHODS",
    "WasteBound",
    "WasteMethod",
    "WasteRate",
    "waste_bound",
    "waste_certificate",
    "waste_rate",
]

#: How the ingredients of the bound are evaluated (see the module docstring).
WasteMethod = Literal["chernoff", "exact"]
WASTE_METHODS: tuple[WasteMethod, ...] = get_args(WasteMethod)

_N_THETA = 241  # θ grid: 241 points over six decades around 1/σ (steps of 6 %)
_MAX_LOG2_L = 22  # the largest FFT tried (4 M points)
_SCAN = 16  # the rate search first scans (0, λ_max] on this many points


@dataclass(frozen=True)
class WasteBound:
    """The waste certificate at one rate (all quantities per slot, in tokens).

    Attributes
    ----------
    rate_per_slot, budget, memory_tokens, method
        The flow-control setting and how the ingredients were evaluated.
    waste_per_slot : float
        W̄ ≥ E[tokens thrown away per slot].
    offered_tokens_per_slot : float
        r·E[O], the tokens the free process emits per slot.
    lost_tokens_per_slot : float
        L̂ ≥ r·E[O] − E[tokens emitted per slot] (drops and evictions).
    fraction : float
        W̄ / (r·E[O] − L̂) ≥ waste / tokens emitted (∞ when the denominator is ≤ 0).
    overflow_old : float
        The bound P_0 on P(U_old > M), the probability that a slot evicts an active request.
    min_prompt : int
        s, the smallest prompt.
    tail_probs, excess_means : ndarray
        P_b and X_b for b = 0 .. n_ages − 1 (the twin :func:`theory.waste.waste_bound` combines
        them into W̄).
    """

    rate_per_slot: float
    budget: BudgetKind
    memory_tokens: int
    method: WasteMethod
    waste_per_slot: float
    offered_tokens_per_slot: float
    lost_tokens_per_slot: float
    fraction: float
    overflow_old: float
    min_prompt: int
    tail_probs: np.ndarray = field(repr=False, compare=False)
    excess_means: np.ndarray = field(repr=False, compare=False)

    @property
    def emitted_lower_bound(self) -> float:
        """r·E[O] − L̂ ≤ E[tokens emitted per slot]."""
        return self.offered_tokens_per_slot - self.lost_tokens_per_slot

    def to_dict(self) -> dict:
        """The scalar fields (JSON-ready), without the per-age arrays."""
        return {
            "rate_per_slot": self.rate_per_slot,
            "budget": self.budget,
            "method": self.method,
            "waste_per_slot_bound": self.waste_per_slot,
            "offered_tokens_per_slot": self.offered_tokens_per_slot,
            "lost_tokens_per_slot_bound": self.lost_tokens_per_slot,
            "emitted_tokens_per_slot_lower_bound": self.emitted_lower_bound,
            "waste_fraction_bound": self.fraction,
            "overflow_old_bound": self.overflow_old,
        }


@dataclass(frozen=True)
class WasteRate:
    """The waste-certified rate: the largest r found whose certified waste fraction is ≤ target."""

    rate_per_slot: float
    target: float
    method: WasteMethod
    budget: BudgetKind
    #: the certificate at ``rate_per_slot`` (None when no rate > 0 qualifies)
    certificate: WasteBound | None
    #: how it was found: the scan and the bisection, in words
    search: str
    evaluations: int

    @property
    def fraction(self) -> float:
        """The certified waste fraction at the rate (1.0 when the rate is 0)."""
        return self.certificate.fraction if self.certificate is not None else 1.0

    def to_dict(self) -> dict:
        """The rate, the target, the search and the certificate's scalars (JSON-ready)."""
        out = {"target": self.target, "rate_per_slot": self.rate_per_slot, "method": self.method,
               "budget": self.budget, "search": self.search, "evaluations": self.evaluations}
        if self.certificate is not None:
            out.update({k: v for k, v in self.certificate.to_dict().items()
                        if k not in ("rate_per_slot", "budget", "method")})
        return out


# ------------------------------------------------------------------------------ the workload
class _Ages:
    """The per-age arrays of a workload that do not depend on the rate."""

    def __init__(self, workload: Workload, memory_tokens: int) -> None:
        workload.require_finite_memory_time()
        if not workload.bounded:
            raise BoundNotApplicable(
                "the waste certificate needs bounded prompt and decode laws (clip them with max=)"
            )
        self.workload = workload
        self.memory = ensure_memory(memory_tokens)
        g, mu, _nu = workload.age_moments()
        self.n = g.size
        self.g = g
        self.mu = mu
        self.log_stay = log_stay_by_age(g)
        self.mean_decode = workload.mean_decode
        self.s = int(min(_min_prompt(c.lengths) for c in workload.classes))
        single = len(workload.classes) == 1 and isinstance(workload.classes[0].lengths,
                                                              IndependentLengths)
        o_max = float(workload.max_decode)
        ages = np.arange(self.n + 1, dtype=float)
        if single:  # S ⊥ O: the tokens a victim of age a still had to emit average m(a)
            tail = np.concatenate([np.cumsum(g[::-1])[::-1], [0.0]])  # Σ_{j ≥ a} G(j)
            gg = np.concatenate([g, [0.0]])
            with np.errstate(divide="ignore", invalid="ignore"):
                self.residual = np.where(gg > 0, tail / np.where(gg > 0, gg, 1.0), 0.0)
            self.drop_life = self.mean_decode
        else:  # a victim's remaining decode is at most o_max − a
            self.residual = np.maximum(o_max - ages, 0.0)
            self.drop_life = o_max
        b = np.arange(self.n, dtype=float)
        self.weight = (self.s + b + 1) / (self.s + b + 2)  # the count bound's 1 − 1/(s+b+2)
        self.inv_hold = 1.0 / (self.s + b + 2)  # victims of age > b hold ≥ s + b + 2 tokens


def _min_prompt(lengths) -> int:
    if isinstance(lengths, IndependentLengths):
        return int(lengths.prompt.min_value)
    return int(lengths.prompt_values.min())


def _age_log_mgf_grid(workload: Workload, theta: np.ndarray, n: int) -> np.ndarray:
    """log E[e^{θ(S+a+1)}; O > a] of the class mixture for every θ (rows) and age a < n."""
    ages1 = np.arange(1, n + 1, dtype=float)
    logs = []
    for c, w in zip(workload.classes, workload.mix, strict=True):
        ln = c.lengths
        if isinstance(ln, IndependentLengths):
            log_mgf_s = _prompt_log_mgf(ln.prompt.values, ln.prompt.probs, theta)[:, None]
            with np.errstate(divide="ignore"):
                log_g = np.log(ln.decode.survival_by_age(n))
            rows = log_g[None, :] + theta[:, None] * ages1[None, :] + log_mgf_s
        else:
            rows = np.stack([ln.age_log_mgf(float(th), n) for th in theta])
        logs.append(math.log(w) + rows)
    return np.logaddexp.reduce(np.stack(logs), axis=0) if len(logs) > 1 else logs[0]


#: A prompt support with at least this many points, spread over at most _BLOCKED_SPREAD times as
#: many integers, gets the blocked log-MGF of :func:`_prompt_log_mgf`; smaller or sparser ones
#: (and every θ with θ·(B − 1) > _BLOCKED_EXPONENT) the direct sum.
_BLOCKED_MIN_POINTS = 4096
_BLOCKED_SPREAD = 8
_BLOCKED_MIN_WIDTH = 16  # narrower blocks: the direct sum
#: θ·(B − 1) ≤ this in a blocked sum: e^{θi} ≤ e^350 cannot overflow, and a mass that underflows
#: to 0 next to its block's largest is below e^-700 of the block's sum.
_BLOCKED_EXPONENT = 350.0
_DIRECT_CHUNK = 1 << 20  # the direct sum works on ≤ this many (θ, value) pairs at a time


def _prompt_log_mgf(values: np.ndarray, probs: np.ndarray, theta: np.ndarray) -> np.ndarray:
    r"""log E[e^{θS}] for every θ ≥ 0 of the 1-d ``theta``, S on ``values`` with masses ``probs``.

    *Direct*: the max-shifted log-sum-exp :math:`t + \log\sum_v e^{\log p_v + θv - t}`, t the
    largest exponent (one exp per value and θ), on chunks of θ.

    *Blocked*, for a large support that fills its range (the 125 k-point prompt law of a long-prompt
    preset, where the direct sum is 30 M exps per certificate): with v = v_0 + jB + i, i < B,

    .. math::

        E e^{θS} = \sum_j e^{θ(v_0 + jB) + \ell_j} \sum_{i < B} q_{j,i}\, e^{θi},
        \qquad q_{j,i} = p_{v_0 + jB + i} / e^{\ell_j},\ e^{\ell_j} = \max_i p_{v_0 + jB + i},

    the inner sums for all θ one matrix product (J × B)(B × K), the outer sum a max-shifted
    log-sum-exp over the J ≈ √range blocks. B is the smallest power of two ≥ √range, halved for
    large θ until θ(B − 1) ≤ 350 (no overflow; below 16 the direct sum is used). Every term is
    positive, so each inner sum carries a relative rounding error of at most about (B + 2)·2⁻⁵³
    (B ≤ 2¹² for a storable law): a bound of ~5e-13 on the change of the log-MGF; measured on the
    presets it agrees with the direct sum to ≤ 1e-14 relative (tests/test_waste.py), the order of
    the direct sum's own rounding of θv.
    """
    theta = np.asarray(theta, dtype=float)
    v = values.astype(np.int64)
    with np.errstate(divide="ignore"):
        log_p = np.log(probs)
    out = np.empty(theta.shape)
    direct = np.ones(theta.shape, dtype=bool)
    span = int(v[-1] - v[0]) + 1
    if v.size >= _BLOCKED_MIN_POINTS and span <= _BLOCKED_SPREAD * v.size:
        # B per θ: a power of two, the smallest ≥ √span, halved until θ·(B − 1) ≤ _BLOCKED_EXPONENT
        top_width = 1 << math.ceil(math.log2(math.sqrt(span)))
        with np.errstate(divide="ignore", invalid="ignore"):
            fit = np.floor(np.log2(1.0 + _BLOCKED_EXPONENT / theta))
        fit = np.where(theta >= 0, fit, 0.0)  # θ < 0: the direct sum
        widths = np.minimum(top_width, 2.0 ** np.minimum(fit, 62)).astype(np.int64)
        for width in np.unique(widths[widths >= _BLOCKED_MIN_WIDTH]):
            rows = widths == width
            out[rows] = _blocked_log_mgf(v, probs, theta[rows], int(width))
            direct &= ~rows
    rows = np.flatnonzero(direct)
    step = max(1, _DIRECT_CHUNK // v.size)
    vf = v.astype(float)
    for i in range(0, rows.size, step):
        idx = rows[i:i + step]
        ts = theta[idx, None] * vf[None, :] + log_p[None, :]
        top = ts.max(axis=1, keepdims=True)
        out[idx] = (top + np.log(np.exp(ts - top).sum(axis=1, keepdims=True)))[:, 0]
    return out


def _blocked_log_mgf(v: np.ndarray, probs: np.ndarray, theta: np.ndarray, width: int) -> np.ndarray:
    """The blocked sum of :func:`_prompt_log_mgf` with blocks of B = ``width`` integers."""
    dense = np.zeros(-(-int(v[-1] - v[0] + 1) // width) * width)
    dense[v - v[0]] = probs
    dense = dense.reshape(-1, width)
    top_p = dense.max(axis=1)
    full = top_p > 0
    q = dense[full] / top_p[full, None]
    base = (v[0] + width * np.flatnonzero(full)).astype(float)
    inner = q @ np.exp(np.arange(width, dtype=float)[:, None] * theta[None, :])
    terms = np.log(top_p[full])[:, None] + base[:, None] * theta[None, :] + np.log(inner)
    top = terms.max(axis=0)
    return top + np.log(np.exp(terms - top).sum(axis=0))


def _log_pgf_ratio(law: BudgetLaw, log_phi: np.ndarray) -> np.ndarray:
    """log(P_B'(φ)/P_B(φ)) for real φ ≥ 0 given log φ: the tilted mean count per unit alive mass."""
    r = law.rate_per_slot
    if law.kind == "poisson":
        return np.full_like(log_phi, math.log(r))
    k = math.floor(r)
    f = r - k
    with np.errstate(divide="ignore"):
        first = (math.log(k) - log_phi) if k > 0 else np.full_like(log_phi, -np.inf)
        if law.kind == "deterministic" or f == 0:
            return first
        second = math.log(f) - np.logaddexp(math.log1p(-f), math.log(f) + log_phi)
    return np.logaddexp(first, second)


# ------------------------------------------------------------------------------ Chernoff
class _Tilts:
    """Chernoff ingredients on a θ grid: suffix sums over ages of the per-age cumulants."""

    def __init__(self, ages: _Ages, law: BudgetLaw, sigma: float) -> None:
        wl = ages.workload
        self.ages, self.law = ages, law
        self.theta = np.geomspace(1e-4, 1e2, _N_THETA) / max(sigma, 1.0)
        n = ages.n
        log_alive = _age_log_mgf_grid(wl, self.theta, n)  # log E[e^{θX_a}; O > a]
        log_phi = np.logaddexp(ages.log_stay[None, :], log_alive)
        ell = law.log_pgf_of_log(log_phi)
        ratio = _log_pgf_ratio(law, log_phi)
        logk = ratio + log_alive
        self.log_kb0 = ratio[:, 0] + log_phi[:, 0]  # E[B e^{θY_0}]/E[e^{θY_0}]: all alive at age 0
        suffix = np.cumsum(ell[:, ::-1], axis=1)[:, ::-1]  # Σ_{a ≥ j}
        self.lam_all = suffix[:, 0]
        self.lam_gt = np.concatenate([suffix[:, 1:], np.zeros((_N_THETA, 1))], axis=1)  # Σ_{a > b}
        ksuf = np.logaddexp.accumulate(logk[:, ::-1], axis=1)[:, ::-1]
        self.logk_gt = np.concatenate([ksuf[:, 1:], np.full((_N_THETA, 1), -np.inf)], axis=1)
        young = np.concatenate([[0.0], np.cumsum(law.rate_per_slot * ages.g[1:])])  # Σ_{1≤a≤b} rG(a)
        with np.errstate(divide="ignore"):
            self.log_young = np.log(young)
        self.n_old = float(young[-1])  # E[N_old]
        self.mean_gt = law.rate_per_slot * (np.sum(ages.mu) - np.cumsum(ages.mu))  # E[U_{>b}]
        k = np.maximum(1.0, np.floor(1.0 / self.theta))
        self.log_c = np.maximum(np.log(k) - self.theta * k, np.log(k + 1) - self.theta * (k + 1))

    def tail(self, level: int) -> np.ndarray:
        """P(U_{>b} > level) ≤ min_θ e^{Λ_b(θ) − θ(level + 1)}, b = 0 .. n − 1."""
        th = self.theta[:, None]
        return np.exp(np.minimum(np.min(self.lam_gt - th * (level + 1), axis=0), 0.0))

    def stop_loss(self, level: int) -> np.ndarray:
        """E(U_{>b} − level)^+ ≤ min_θ c(θ) e^{Λ_b(θ) − θ·level}, and ≤ E[U_{>b}]."""
        th = self.theta[:, None]
        val = np.exp(np.minimum(np.min(self.lam_gt - th * level + self.log_c[:, None], axis=0), 700))
        return np.minimum(val, self.mean_gt)

    def count(self, level: int) -> np.ndarray:
        """E[N_old; U_{>b} > level] ≤ min_θ E[N_old e^{θ(U_{>b} − level − 1)}], and ≤ E[N_old]."""
        th = self.theta[:, None]
        weight = np.logaddexp(self.log_young[None, :], self.logk_gt)
        val = np.exp(np.minimum(np.min(self.lam_gt - th * (level + 1) + weight, axis=0), 700))
        return np.minimum(val, self.n_old)

    def drops(self, level: int) -> float:
        """E[B; U > level] (U with this slot's cohort) ≤ min_θ E[B e^{θ(U − level − 1)}], ≤ E[B]."""
        val = np.min(self.lam_all - self.theta * (level + 1) + self.log_kb0)
        return float(min(math.exp(min(val, 700.0)), self.law.rate_per_slot))

    def beyond(self, level: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """Chernoff bounds on what lies at or beyond ``level`` + 1 (the FFT window's end): P(U_{>b}
        > level), E[(U_{>b} − M); U_{>b} > level] ≤ (level + 1 − M)·min_{θ ≥ 1/(level+1−M)}
        e^{Λ_b(θ) − θ(level+1)}, E[N_old; U_{>b} > level] and E[B; U > level]."""
        th = self.theta[:, None]
        span = level + 1 - self.ages.memory
        ok = self.theta >= 1.0 / span
        sl = np.exp(np.minimum(np.min(np.where(ok[:, None], self.lam_gt - th * (level + 1), np.inf),
                                      axis=0), 700.0)) * span if ok.any() else self.mean_gt
        return self.tail(level), np.minimum(sl, self.mean_gt), self.count(level), self.drops(level)


# ------------------------------------------------------------------------------ exact (FFT)
def _ipow(x: np.ndarray, k: int) -> np.ndarray:
    """x**k for an integer k ≥ 0 by repeated squaring (no complex logarithm)."""
    out = np.ones_like(x)
    base = x
    while k:
        if k & 1:
            out = out * base
        k >>= 1
        if k:
            base = base * base
    return out


def _pgf(law: BudgetLaw, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray | float]:
    """(P_B(φ), P_B'(φ)) for complex φ (P_B' may come back as a scalar when it is constant)."""
    r = law.rate_per_slot
    if law.kind == "poisson":
        e = np.exp(r * (phi - 1))
        return e, r * e
    k = math.floor(r)
    f = r - k if law.kind == "randomized" else 0.0
    if k == 0:  # B ∈ {0, 1}
        return 1 - f + f * phi, f
    pk1 = _ipow(phi, k - 1)
    pk = pk1 * phi
    if f == 0:
        return pk, k * pk1
    lin = 1 - f + f * phi
    return pk * lin, k * pk1 * lin + f * pk


def _transforms(workload: Workload, size: int):
    """Per class: (weight, G by age or None, prompt transform, rows by decode value or None).

    The transforms are E[z^S] at z_k = e^{−2πik/size}, k = 0 .. size/2 (``rfft`` of the PMF
    folded modulo size); a joint law gives one row per decode value o: Σ_{pairs with O = o} p z^S.
    """
    out = []
    for c, w in zip(workload.classes, workload.mix, strict=True):
        ln = c.lengths
        if isinstance(ln, IndependentLengths):
            vals = ln.prompt.values.astype(np.int64)
            folded = np.bincount(vals % size, weights=ln.prompt.probs, minlength=size)
            out.append((float(w), ln.decode.survival_by_age(workload.n_ages), np.fft.rfft(folded), None))
        else:
            rows = {}
            for o in np.unique(ln.decode_values):
                sel = ln.decode_values == o
                folded = np.bincount(ln.prompt_values[sel].astype(np.int64) % size,
                                     weights=ln.probs[sel], minlength=size)
                rows[int(o)] = np.fft.rfft(folded)
            out.append((float(w), None, np.zeros(size // 2 + 1, dtype=complex), rows))
    return out


_RESYNC = 64  # recompute z^{a+1} exactly every this many ages (the running product drifts)


def _exact_terms(ages: _Ages, law: BudgetLaw, tilts: _Tilts, sigma: float):
    """(P_b, SL_b, EN_b for every b, drops) from the law of U_{>b} by FFT, plus Chernoff beyond L.

    The generating functions E[z^{U_{≥a}}] and E[N_{≥a} z^{U_{≥a}}] are built down the ages at the
    L-th roots of unity (so they are the transforms of the laws folded modulo L, which are ≥ the
    true laws on [0, L)); a sum Σ_{M < u < L} h(u)·p̃(u) is the linear functional
    (1/L)·Re Σ_k c_k X_k conj(ĥ_k) of the transform X (c_k = 1 at k = 0 and L/2, else 2), so no
    inverse FFT is needed. What lies at L or beyond is bounded by :meth:`_Tilts.beyond`.
    """
    m, n = ages.memory, ages.n
    mean = law.rate_per_slot * ages.workload.mean_memory_time
    size = 2 * math.ceil(max(m + 2, mean + 10 * sigma + 2, 512) / 2)  # any even length will do
    if size > (1 << _MAX_LOG2_L):
        raise WorkloadError(f"the exact waste certificate would need an FFT of {size:,} points "
                            "(more than 4 M); use method='chernoff'")
    half = size // 2 + 1
    k = np.arange(half, dtype=np.int64)
    u = np.arange(size, dtype=float)
    coef = np.full(half, 2.0 / size)
    coef[0] = coef[-1] = 1.0 / size
    above = np.conj(np.fft.rfft((u > m).astype(float))) * coef  # functional of Σ_{u>M} p(u)
    excess = np.conj(np.fft.rfft(np.maximum(u - m, 0.0))) * coef  # of Σ_{u>M} (u − M) p(u)
    step = np.exp(-2j * np.pi * k / size)
    parts = _transforms(ages.workload, size)
    p_tail, stop, count = np.zeros(n), np.zeros(n), np.zeros(n)
    trans = np.ones(half, dtype=complex)  # E[z^{U_{≥a}}]
    weighted = np.zeros(half, dtype=complex)  # E[N_{≥a} z^{U_{≥a}}]
    psi_joint = [np.zeros(half, dtype=complex) if rows is not None else None for *_, rows in parts]
    beyond_p, beyond_sl, beyond_n, beyond_drops = tilts.beyond(size - 1)
    young = np.exp(tilts.log_young)
    drops = 0.0
    back = np.conj(step)
    alive = np.empty(half, dtype=complex)
    tmp = np.empty(half, dtype=complex)
    zpow = alive  # set at the first age
    for a in range(n - 1, -1, -1):
        if (n - 1 - a) % _RESYNC == 0:  # z^{a+1}, exactly
            zpow = np.exp(-2j * np.pi * ((k * (a + 1)) % size) / size)
        alive[:] = 0
        for i, (w, g, psi, rows) in enumerate(parts):
            if rows is None:
                alive += (w * g[a]) * psi
            else:
                if a + 1 in rows:
                    psi_joint[i] += rows[a + 1]
                alive += w * psi_joint[i]
        alive *= zpow  # E[z^{S+a+1}; O > a]
        zpow *= back
        phi = alive + (1.0 - ages.g[a])
        fac, dfac = _pgf(law, phi)
        if a == 0:  # this slot's cohort: N_0 = B, all alive
            np.multiply(phi, trans, out=tmp)
            tmp *= dfac
            drops = max(float(np.real(np.dot(tmp, above))), 0.0) + beyond_drops
            break
        np.multiply(alive, trans, out=tmp)
        tmp *= dfac
        weighted *= fac
        weighted += tmp
        trans *= fac
        b = a - 1  # trans is now the law of U_{≥a} = U_{>b}
        p = max(float(np.real(np.dot(trans, above))), 0.0) + beyond_p[b]
        p_tail[b] = p
        stop[b] = max(float(np.real(np.dot(trans, excess))), 0.0) + beyond_sl[b]
        count[b] = young[b] * p + max(float(np.real(np.dot(weighted, above))), 0.0) + beyond_n[b]
    return np.minimum(p_tail, 1.0), stop, count, drops


# ------------------------------------------------------------------------------ the bound
def waste_certificate(workload: Workload, memory_tokens: int, rate_per_slot: float,
                      budget: BudgetKind = "randomized",
                      method: WasteMethod = "chernoff") -> WasteBound:
    """The waste certificate of docs/theory.md §13 at one rate (see the module docstring).

    Raises
    ------
    BoundNotApplicable
        Unbounded prompt or decode law.
    WorkloadError
        Bad rate, budget, memory or method.
    """
    if method not in WASTE_METHODS:
        raise WorkloadError(f"method must be one of {', '.join(WASTE_METHODS)}, got {method!r}")
    ages = _Ages(workload, memory_tokens)
    law = BudgetLaw(budget, float(rate_per_slot))
    r, m, n = law.rate_per_slot, ages.memory, ages.n
    offered = r * ages.mean_decode
    if r == 0:
        zeros = np.zeros(n)
        return WasteBound(0.0, budget, m, method, 0.0, 0.0, 0.0, 0.0, 0.0, ages.s, zeros, zeros)
    sigma = math.sqrt(flow_saturated_variance(workload, r, law))
    tilts = _Tilts(ages, law, sigma)
    p = tilts.tail(m)
    x = np.minimum(tilts.stop_loss(m), tilts.count(m))
    drops = tilts.drops(m)
    if method == "exact":
        pe, sle, ene, drops_exact = _exact_terms(ages, law, tilts, sigma)
        p = np.minimum(p, pe)  # both are upper bounds: keep the smaller, term by term
        x = np.minimum(x, np.minimum(sle, ene))
        drops = min(drops, drops_exact)
    count_b = p * ages.weight + x * ages.inv_hold  # ≥ E[#victims of age > b]
    waste = float(np.sum(count_b))
    res = ages.residual
    steps = np.maximum(res[2:n + 1] - res[1:n], 0.0)  # (m(b+1) − m(b))^+, b = 1 .. n − 1
    lost = float(ages.drop_life * drops + res[1] * count_b[0] + np.sum(steps * count_b[1:]))
    denom = offered - lost
    frac = waste / denom if denom > 0 else math.inf
    return WasteBound(r, budget, m, method, waste, float(offered), lost, float(frac), float(p[0]),
                      ages.s, p, x)


def waste_bound(workload: Workload, memory_tokens: int, rate_per_slot: float,
                budget: BudgetKind = "randomized", method: WasteMethod = "chernoff") -> float:
    """W̄: the bound of docs/theory.md §13 on the expected tokens thrown away per slot."""
    return waste_certificate(workload, memory_tokens, rate_per_slot, budget, method).waste_per_slot


# ------------------------------------------------------------------------------ the rate
def waste_rate(workload: Workload, memory_tokens: int, target: float,
               budget: BudgetKind = "randomized", method: WasteMethod = "chernoff",
               rtol: float = 1e-4) -> WasteRate:
    """The largest rate r ≤ λ_max found whose certified waste fraction is ≤ ``target``.

    Every ingredient of the certificate is nondecreasing in r (a larger mean budget is
    stochastically larger for each budget law), so the certified fraction grows with r in
    practice; the search does not rely on it for validity. It scans (0, λ_max] on 16 points with
    the Chernoff certificate (cheap), takes the last point before the first failure as the lower
    end of the bracket — the exact certificate is never above the Chernoff one, so it passes there
    too — and runs Brent's method on log(fraction/target) in the bracket (integers are scanned for
    a deterministic budget) to ``rtol``·λ_max. The returned rate is the largest evaluated rate
    that passed below the smallest one that failed: always one where the certificate holds.

    Examples
    --------
    >>> from numerics.model.specs import parse_law
    >>> from numerics.model.workload import Workload
    >>> wl = Workload.single(parse_law("20"), parse_law("geom:mean=100,max=1000"))
    >>> res = waste_rate(wl, 20_000, 0.01)
    >>> round(res.rate_per_slot / (20_000 / wl.mean_memory_time), 2), res.fraction <= 0.01
    (0.74, True)
    """
    if not (isinstance(target, float | int) and not isinstance(target, bool) and 0 < target < 1):
        raise WorkloadError(f"the waste target must lie in (0, 1), got {target!r}")
    if method not in WASTE_METHODS:
        raise WorkloadError(f"method must be one of {', '.join(WASTE_METHODS)}, got {method!r}")
    if not (isinstance(rtol, float | int) and 0 < rtol < 1):
        raise WorkloadError(f"rtol must lie in (0, 1), got {rtol!r}")
    ages = _Ages(workload, memory_tokens)
    top = ages.memory / workload.mean_memory_time
    cache: dict[tuple[float, str], WasteBound] = {}

    def cert(r: float, how: WasteMethod) -> WasteBound:
        if (r, how) not in cache:
            cache[(r, how)] = waste_certificate(workload, ages.memory, r, budget, how)
        return cache[(r, how)]

    def ok(r: float, how: WasteMethod = method) -> bool:
        return cert(r, how).fraction <= target

    if budget == "deterministic":
        points = list(range(1, math.floor(top) + 1))
    else:
        points = [top * (j + 1) / _SCAN for j in range(_SCAN)]
    lo, hi = 0.0, None
    for i, r in enumerate(points):  # the first Chernoff failure on the scan
        if not ok(r, "chernoff"):
            hi = i
            break
        lo = r
    if method == "exact":  # never above Chernoff: it passes up to lo, and perhaps further
        start, hi = (len(points) if hi is None else hi), None
        for i in range(start, len(points)):
            if not ok(points[i]):
                hi = i
                break
            lo = points[i]
    hi = None if hi is None else points[hi]
    if hi is None:
        note = f"passes at every scan point up to λ_max = {top:.6g}"
    elif budget == "deterministic":
        note = f"first failing integer {hi:g}"
    else:
        while lo == 0 and hi > 1e-9 * top:  # below the first scan point: halve until it passes
            if ok(hi / 2):
                lo = hi / 2
            else:
                hi /= 2
        if lo > 0:
            from scipy import optimize

            def excess(r: float) -> float:  # log(certified fraction / target), finite
                return math.log(min(max(cert(r, method).fraction, 1e-300), 1e300) / target)

            optimize.brentq(excess, lo, hi, xtol=rtol * top, rtol=4 * np.finfo(float).eps)
        fails = [r for (r, how), c in cache.items() if how == method and c.fraction > target]
        first_fail = min(fails, default=math.inf)
        lo = max((r for (r, how), c in cache.items()
                  if how == method and c.fraction <= target and r < first_fail), default=0.0)
        note = f"Brent's method on log(fraction/target) between scan points, to {rtol:g}·λ_max"
    kind = "integers" if budget == "deterministic" else "points, Chernoff first"
    search = f"scan of (0, λ_max] on {len(points)} {kind}; {note}"
    if lo == 0:
        return WasteRate(0.0, float(target), method, budget, None, search, len(cache))
    return WasteRate(float(lo), float(target), method, budget, cert(lo, method), search, len(cache))
