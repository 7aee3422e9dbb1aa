r"""Greedy admission with several decode lengths: the multi-class fluid map, its cycle, and when it
settles eviction-free (after Ao, Dong, Luo & Simchi-Levi, arXiv:2606.15555).

**Source.** Only the abstract of arXiv:2606.15555 could be read from the stored material: in the
saturated regime continuous batching has eviction-free fixed points and limit cycles with
evictions; for homogeneous workloads the eviction-free equilibrium is unstable; for two classes
with a common input a sharp stability criterion goes through a "survival polynomial"; under
input-dominated scaling coprime decode lengths stabilise the eviction-free equilibrium and
non-coprime ones create synchronised modes. The paper's own statement of the criterion (its
section and equation) could not be read. The criterion below is **our reconstruction** from the
abstract — the linearisation of the same fluid map — and is checked here against the map and
against the simulator, not against the paper.

**The fluid map** (the slot order of docs/model.md; classes k = 1..K with fixed decode lengths
o_k, mix weights π_k, one common prompt S; the waiting queue never empties; counts scaled to
masses, M → ∞). State at the end of a slot: n_{k,g}, the mass of class-k requests that have
generated g = 1..o_k − 1 tokens. One slot (:func:`greedy_multiclass_step`):

1. the active requests need :math:`U = \sum_{k,g} n_{k,g}(S + g + 1)` tokens;
2. greedy (watermark 0) admits :math:`y = \max\{0, (M - U)/(S + 1)\}`, split π_k y over the
   classes (a saturated FIFO queue of i.i.d. classes);
3. while U > M mass is evicted youngest first (LIFO; within an age all classes alike, their memory
   being the same), its progress lost; it rejoins the saturated queue, so re-admissions again
   carry the mix π [a simplification: exact with ``requeue=tail``, and for head requeue as long
   as the evicted mass is younger than min o_k, which holds in every cycle shown below];
4. every active request emits a token; class k at g = o_k − 1 completes.

**Eviction-free equilibrium.** Admissions x* = M / E[W] per slot, E[W] = Σ_k π_k (S o_k +
o_k(o_k + 1)/2): the necessary bound (docs/theory.md §8.1) — throughput M/E[W].

**Criterion (reconstruction).** Without evictions, step 2 reads
:math:`(S + 1) x_t = M - \sum_{a \ge 1} c_a x_{t-a}` with :math:`c_a = (S + a + 1) G(a)`,
:math:`G(a) = \sum_k \pi_k 1\{o_k > a\}` the survival of the decode law. Deviations from x* obey
:math:`\sum_{a=0}^{A-1} c_a \delta_{t-a} = 0` (A = max o_k), whose characteristic polynomial is
the survival polynomial

.. math:: Q(z) = \sum_{a=0}^{A-1} (S + a + 1)\, G(a)\, z^{A-1-a}.

The eviction-free equilibrium is locally asymptotically stable iff every zero of Q lies strictly
inside the unit circle, ρ = max |z| < 1 ("settles"), and unstable if ρ > 1, when the deviations
grow until evictions start and the map falls onto a cycle with evictions. Consistency with the
abstract: for one class c_a = S + a + 1 rises with a, and by the Eneström–Kakeya theorem every
zero has |z| ≥ min_a c_a / c_{a−1} > 1 (the homogeneous equilibrium is unstable); as S → ∞,
Q(z)/S → Σ_k π_k (z^{o_k} − 1)/(z − 1) up to a power of z, whose unit-circle zeros are the common
roots of unity z^{o_k} = 1, z ≠ 1 — none iff gcd(o_1, ..., o_K) = 1 (coprime lengths stabilise,
a common divisor leaves a synchronised mode on the circle, which the finite-S correction pushes
outwards). The criterion is local: a start far away (an empty cache, which greedy fills with
one synchronised cohort) may still reach a cycle when ρ < 1; :func:`greedy_multiclass_cycle`
iterates the map and reports what it reaches.

Examples
--------
>>> round(survival_radius(20, [4], [1.0]), 4) > 1  # one class: unstable
True
>>> survival_radius(200, [4, 7], [0.5, 0.5]) < 1  # coprime, input-dominated: settles
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from numerics.errors import WorkloadError

__all__ = ["GreedyMulticlassCycle", "greedy_multiclass_cycle", "greedy_multiclass_step",
           "survival_polynomial", "survival_radius"]

#: States within this fraction of M are taken as equal when the period is sought.
CYCLE_TOL = 1e-7
#: Longest period sought (the default is max(4·max o, lcm of the o_k)).
MAX_PERIOD = 2000


def _check(prompt: int, decodes: Sequence[int], weights: Sequence[float],
           memory_tokens: float | None = None) -> tuple[int, np.ndarray, np.ndarray]:
    if isinstance(prompt, bool) or not isinstance(prompt, int | np.integer) or prompt < 0:
        raise WorkloadError(f"the common prompt S must be an integer ≥ 0, got {prompt!r}")
    o = np.asarray(decodes)
    p = np.asarray(weights, dtype=float)
    if o.ndim != 1 or o.size == 0 or o.size != p.size:
        raise WorkloadError(f"give one weight per decode length: {len(o)} lengths, {len(p)} weights")
    if not np.issubdtype(o.dtype, np.integer) or np.any(o < 1):
        raise WorkloadError(f"decode lengths must be integers ≥ 1, got {list(decodes)!r}")
    if np.any(~np.isfinite(p)) or np.any(p <= 0):
        raise WorkloadError(f"mix weights must be positive, got {list(weights)!r}")
    if memory_tokens is not None and not (math.isfinite(memory_tokens) and memory_tokens > prompt + o.max()):
        raise WorkloadError(f"M = {memory_tokens!r} must exceed S + max o = {prompt + int(o.max())}")
    return int(prompt), o.astype(np.int64), p / p.sum()


def survival_polynomial(prompt: int, decodes: Sequence[int], weights: Sequence[float]) -> np.ndarray:
    """Coefficients of Q(z), highest power first: c_a = (S + a + 1) G(a), a = 0..A−1."""
    s, o, p = _check(prompt, decodes, weights)
    a = np.arange(int(o.max()))
    g = (p[None, :] * (o[None, :] > a[:, None])).sum(axis=1)
    return (s + a + 1) * g


def survival_radius(prompt: int, decodes: Sequence[int], weights: Sequence[float]) -> float:
    """ρ, the largest modulus of Q's zeros (0 for a single decode length 1): < 1 settles."""
    c = survival_polynomial(prompt, decodes, weights)
    if c.size < 2:
        return 0.0
    return float(np.max(np.abs(np.roots(c))))


def greedy_multiclass_step(state: np.ndarray, prompt: int, decodes: np.ndarray, weights: np.ndarray,
                           memory_tokens: float) -> tuple[np.ndarray, dict]:
    """One slot of the fluid map (module docstring). ``state``: K × A masses n_{k,g} at the end of
    a slot (column g = generated tokens; column 0 unused). Returns the next state and the slot's
    record (admitted, evicted, wasted, memory, completed)."""
    s, o, p, m = prompt, decodes, weights, float(memory_tokens)
    k_n, a_n = state.shape
    ages = np.arange(a_n)
    n = state.copy()
    usage = float(((s + ages + 1) * n).sum())
    y = max(0.0, (m - usage) / (s + 1))
    n[:, 0] = p * y
    usage += y * (s + 1)
    evicted = wasted = 0.0
    g = 0
    while usage > m * (1 + 1e-15) and g < a_n:
        mass = float(n[:, g].sum())
        if mass > 0:
            per = s + g + 1
            take = min(mass, (usage - m) / per)
            n[:, g] *= 1 - take / mass
            usage -= take * per
            evicted += take
            wasted += take * g
        g += 1
    rows = np.arange(k_n)
    completed = float(n[rows, o - 1].sum())
    nxt = np.zeros_like(n)
    alive = ages[None, :] < (o[:, None] - 1)  # g + 1 ≤ o_k − 1
    nxt[:, 1:] = np.where(alive[:, :-1], n[:, :-1], 0.0)
    return nxt, {"admitted": y, "evicted": evicted, "wasted": wasted, "memory": usage,
                 "completed": completed}


@dataclass(frozen=True)
class GreedyMulticlassCycle:
    """What the greedy fluid map reaches, with the criterion's quantities.

    Attributes
    ----------
    settles : bool
        The map reached the eviction-free equilibrium (period 1, no evictions).
    predicted_settles : bool
        The criterion: ρ < 1.
    radius : float
        ρ, the largest modulus of the survival polynomial's zeros.
    period : int
        Slots in the cycle reached (1 at the equilibrium; 0: none found, figures per slot).
    throughput, equilibrium_throughput : float
        Completions per slot over the cycle, and M/E[W].
    throughput_loss : float
        1 − throughput / equilibrium_throughput.
    evictions_per_cycle, wasted_per_cycle : float
        Mass evicted, and tokens thrown away, per period.
    transient_slots : int
        Slots before the cycle was entered.
    """

    prompt: int
    decodes: tuple[int, ...]
    weights: tuple[float, ...]
    memory_tokens: float
    settles: bool
    predicted_settles: bool
    radius: float
    period: int
    throughput: float
    equilibrium_throughput: float
    throughput_loss: float
    evictions_per_cycle: float
    wasted_per_cycle: float
    transient_slots: int

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _equilibrium(s: int, o: np.ndarray, p: np.ndarray, m: float) -> np.ndarray:
    ew = float(p @ (s * o + o * (o + 1) / 2))
    x = m / ew
    a = np.arange(int(o.max()))
    return np.where(a[None, :] < o[:, None], p[:, None] * x, 0.0) * (a[None, :] >= 1)


def greedy_multiclass_cycle(prompt: int, decodes: Sequence[int], weights: Sequence[float],
                            memory_tokens: float, *, start: str = "empty", perturbation: float = 0.01,
                            max_slots: int = 50_000, seed: int = 0) -> GreedyMulticlassCycle:
    """Iterate the multi-class greedy fluid map until it repeats; report the cycle and ρ.

    Parameters
    ----------
    prompt : int
        The common prompt S ≥ 0.
    decodes, weights : sequence
        Decode lengths o_k ≥ 1 and their (positive) mix weights.
    memory_tokens : float
        M > S + max o.
    start : {"empty", "perturbed"}
        An empty cache, or the equilibrium with every mass scaled by 1 ± ``perturbation``
        (uniform, from ``seed``): the local question the criterion answers.
    max_slots : int
        Slots iterated at most. If neither the equilibrium (within 1e-7·M) nor a cycle with
        evictions of period ≤ max(4·max o, lcm o_k) is reached by then, ``period`` is 0 and the
        figures are averages per slot over the last 20 such periods.
    """
    s, o, p = _check(prompt, decodes, weights, memory_tokens)
    if start not in ("empty", "perturbed"):
        raise WorkloadError(f"start must be 'empty' or 'perturbed', got {start!r}")
    m = float(memory_tokens)
    a_n = int(o.max())
    if start == "empty":
        state = np.zeros((o.size, a_n))
    else:
        rng = np.random.default_rng(seed)
        eq = _equilibrium(s, o, p, m)
        state = eq * (1 + perturbation * rng.uniform(-1, 1, eq.shape))
    max_period = min(max(4 * a_n, math.lcm(*(int(x) for x in o))), MAX_PERIOD)
    eq_state = _equilibrium(s, o, p, m)
    eq = m / float(p @ (s * o + o * (o + 1) / 2))
    rho = survival_radius(s, o.tolist(), p.tolist())
    hist: list[np.ndarray] = []
    recs: list[dict] = []
    tol = CYCLE_TOL * m

    def result(per: int, window: list[dict], transient: int, settled: bool) -> GreedyMulticlassCycle:
        span = len(window)
        thr = sum(r["completed"] for r in window) / span
        ev = sum(r["evicted"] for r in window) * (per / span if per else 1 / span)
        wasted = sum(r["wasted"] for r in window) * (per / span if per else 1 / span)
        return GreedyMulticlassCycle(
            s, tuple(int(x) for x in o), tuple(float(x) for x in p), m, settles=settled,
            predicted_settles=rho < 1, radius=rho, period=per, throughput=thr,
            equilibrium_throughput=eq, throughput_loss=1 - thr / eq, evictions_per_cycle=ev,
            wasted_per_cycle=wasted, transient_slots=transient)

    for t in range(max_slots):
        hist.append(state)
        state, rec = greedy_multiclass_step(state, s, o, p, m)
        recs.append(rec)
        if np.max(np.abs(state - eq_state)) <= tol:  # at the eviction-free equilibrium
            return result(1, [rec], t + 1, True)
        if t < 2 * max_period or t % 16:
            continue
        last = hist[-1]
        for per in range(1, max_period + 1):
            if np.max(np.abs(last - hist[-1 - per])) > tol:
                continue
            if all(np.max(np.abs(hist[-1 - j] - hist[-1 - j - per])) <= tol for j in range(per + 1)):
                window = recs[-per:]
                if sum(r["evicted"] for r in window) > tol:  # a cycle with evictions
                    return result(per, window, t + 1 - 2 * per, False)
                break  # an eviction-free orbit still drifting (ρ near 1): go on
        if len(hist) > 4 * max_period + 64:
            del hist[: len(hist) - (2 * max_period + 2)]
    # no exact period: averages over the last slots (``period`` 0)
    window = recs[-min(len(recs), 20 * max_period):]
    return result(0, window, max_slots, False)
