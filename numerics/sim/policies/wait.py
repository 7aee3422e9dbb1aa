r"""WAIT and Nested WAIT (Ao, Luo, Simchi-Levi & Wang, arXiv:2504.11320): threshold batching.

**Sources and what could be read.** Only the abstract of arXiv:2504.11320 (v2–v4) and the
authors' public summary page could be read from the stored material; the body of the paper
(its sections, equations and Algorithm boxes) could not. The rules below therefore follow (i) the
abstract — WAIT "uses threshold-based batching to prevent eviction by keeping the system near
load balance", with "multiple thresholds" (one per prompt type), for known output lengths;
Nested WAIT "classifies prompts on the fly" by decode-stage segment, short prompts leaving early
and long ones advancing to later segments, with a safety buffer against overflow — and (ii) the
threshold rules of the authors' public Vidur-based simulator (read, not copied), which
is where the exact formulas come from. Each rule says which of the two it comes from; the
places where the slot model of docs/model.md forces a change are marked *[slot model]*.

**WAIT** (known lengths: a class k fixes its decode law; the class is visible, its O is not read).

- *Fluid load balance* [abstract; fluid model]: in equilibrium class k keeps λ_k·(o_k + 1)
  requests in flight, λ_k per stage, and holds λ_k E[W_k] tokens, E[W_k] = E[S_k O_k] +
  E[O_k(O_k+1)/2] (docs/model.md); the fluid capacity is Σ_k λ_k E[W_k] ≤ M, i.e.
  λ ≤ λ* = M / E[W] with E[W] = Σ_k π_k E[W_k].
- *Thresholds* [authors' simulator: a total limit split over the types in proportion to
  λ_k(o_k + 1), divided by the o_k + 1 stages, so per-stage thresholds proportional to λ_k]:
  n_k ∝ π_k. flowstab takes the largest such thresholds whose batches fit the memory when one
  batch of every class starts every slot, Σ_k n_k E[W_k] ≤ M [our choice of the total limit,
  which the authors' simulator takes as an input]:
  :math:`n_k = \max(1, \lfloor \pi_k M / E[W] \rfloor)` (:func:`wait_thresholds`).
- *Rule* [abstract "waiting for accumulated inference threshold"; authors' simulator]: each slot,
  for every class k with at least n_k waiting requests, activate the first n_k of them (FIFO
  within the class); a class with fewer than n_k waiting waits. In the slot model every activated
  request advances one stage per slot, so at most n_k class-k requests start per slot and, with
  deterministic lengths, the active memory never exceeds Σ_k n_k w_k ≤ M: no evictions.
- *Stability* [slot model]: the class-k queue admits at most n_k per slot, so WAIT is stable iff
  λ_k < n_k for every k, and unstable (queue growing at rate Σ_k (λ_k − n_k)^+) otherwise
  (:func:`wait_stability_rate`). Since Σ_k n_k ≤ M/E[W], this is at most the fluid capacity λ*
  and approaches it as M grows (the paper's asymptotic optimality; the gap is integrality).

**Nested WAIT** (unknown lengths: FIFO over one stream, the class is not used).

- *Segments* [authors' simulator]: the boundaries are the distinct decode lengths
  d_1 < ... < d_J of the (mixture) decode law; segment j holds the ages [d_{j−1}, d_j) (d_0 = 0);
  a request reaches segment j with probability P_j = P(O > d_{j−1}). For a law with more than
  :data:`MAX_SEGMENTS` support points, d_j are its j/J quantiles [our choice].
- *Per-stage limits* [authors' simulator]: n_{j+1}/n_j = min(p_j + margin, 1),
  p_j = P_{j+1}/P_j (the surviving fraction, plus a safety margin); the entry limit n_1 is the
  largest whose limits fit the memory, Σ_j n_j Σ_{a=d_{j−1}}^{d_j − 1} (E[S] + a + 1)·
  P(O > a | O > d_{j−1}) ≤ M [our choice of the total limit; the conditional survival is 1 inside
  a segment between support points, and accounts for departures inside a quantile segment]
  (:func:`nested_wait_thresholds`). With margin 0 the sum is n_1·E[W], so n_1 = ⌊M / E[W]⌋;
  a positive margin compounds over the segments (n_J/n_1 = Π_j min(p_j + margin, 1)), so with
  many segments it is a large buffer; the margin is the safety buffer (the paper's buffer is
  O(log(horizon/δ)) [abstract]; its exact size could not be read, so ``margin`` is a parameter).
- *Rule*: each slot, the entry gate opens when at least ``entry`` requests wait, entry =
  min(n_1, n_1·d_1 − (active requests still in segment 1)) [authors' simulator: the entry admits
  at most the per-stage limit, and no more than the segment's total limit minus its occupants];
  then the first ``entry`` waiting requests are activated (FIFO).
- *[slot model]* The later segment gates of Nested WAIT hold a request at a segment boundary
  with its cache until the segment's threshold is met. The slot model has no paused state
  (a request is waiting, holding nothing, or active, emitting a token every slot), so these gates
  are not applied: requests advance through the later segments freely and only the entry is
  gated. Memory protection comes from the margin in n_1 instead; an overflow is handled by the
  engine's LIFO eviction as for every policy.
- *Stability* [slot model]: at most n_1 requests enter per slot, so Nested WAIT is stable only if
  λ < n_1 ≤ M/E[W].

Both run on the Python engine only: their rule (wait for a full batch) is no compiled kernel code.

Examples
--------
>>> from numerics.model.specs import parse_law
>>> from numerics.model.workload import RequestClass, Workload
>>> wl = Workload((RequestClass.independent(parse_law("10"), parse_law("10"), 1.0, "a"),))
>>> wait_thresholds(wl, 2000)  # w = 10·10 + 55 = 155; ⌊2000/155⌋ = 12
(12,)
>>> nested_wait_thresholds(wl, 2000, margin=0.0)[0]
12
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from numerics.errors import SettingError, SpecError, WorkloadError
from numerics.sim.policies.base import Policy
from numerics.sim.state import SlotState

if TYPE_CHECKING:
    from numerics.model.workload import Workload

__all__ = ["MAX_SEGMENTS", "NestedWait", "Wait", "nested_wait_thresholds", "wait_stability_rate",
           "wait_thresholds"]

#: Most decode segments of Nested WAIT (a law with more support points is cut at quantiles).
MAX_SEGMENTS = 16


def _finite_memory_times(workload: Workload) -> np.ndarray:
    w = np.asarray(workload.mean_memory_times, dtype=float)
    if not np.all(np.isfinite(w)):
        raise WorkloadError(f"wait thresholds need a finite E[W] per class (workload {workload.name!r} "
                            "has a class with E[O²] = ∞); clip the decode law (max=L)")
    return w


def wait_thresholds(workload: Workload, memory_tokens: int) -> tuple[int, ...]:
    """WAIT's per-class thresholds n_k = max(1, ⌊π_k M / E[W]⌋) (module docstring).

    Σ_k n_k E[W_k] ≤ M whenever every n_k ≥ 1 came from the floor (not from the max(1, ·)).
    """
    if not (isinstance(memory_tokens, int | np.integer) and memory_tokens > 0):
        raise SettingError(f"memory must be a positive integer of tokens, got {memory_tokens!r}")
    w = _finite_memory_times(workload)
    mix = np.asarray(workload.mix, dtype=float)
    ew = float(mix @ w)
    return tuple(max(1, math.floor(p * memory_tokens / ew + 1e-9)) for p in mix)


def wait_stability_rate(workload: Workload, thresholds: tuple[int, ...]) -> float:
    """The total arrival rate below which WAIT with ``thresholds`` is stable: min_k n_k / π_k
    (class k is stable iff λ π_k < n_k)."""
    mix = np.asarray(workload.mix, dtype=float)
    return float(min(n / p for n, p in zip(thresholds, mix, strict=True)))


def _segments(workload: Workload) -> np.ndarray:
    """d_1 < ... < d_J, the segment ends (module docstring)."""
    law = workload.classes[0].lengths.decode_law if len(workload.classes) == 1 else None
    values, probs = _mixture_decode(workload) if law is None else (law.values, law.probs)
    values = np.asarray(values, dtype=np.int64)
    if values.size <= MAX_SEGMENTS:
        return values
    cdf = np.cumsum(probs) / np.sum(probs)
    qs = np.arange(1, MAX_SEGMENTS + 1) / MAX_SEGMENTS
    idx = np.minimum(np.searchsorted(cdf, qs - 1e-12), values.size - 1)
    return np.unique(values[idx])


def _mixture_decode(workload: Workload) -> tuple[np.ndarray, np.ndarray]:
    mass: dict[int, float] = {}
    for p, c in zip(workload.mix, workload.classes, strict=True):
        law = c.lengths.decode_law
        for v, q in zip(law.values, law.probs, strict=True):
            mass[int(v)] = mass.get(int(v), 0.0) + float(p) * float(q)
    vals = np.array(sorted(mass), dtype=np.int64)
    return vals, np.array([mass[int(v)] for v in vals])


def nested_wait_thresholds(workload: Workload, memory_tokens: int,
                           margin: float = 0.05) -> tuple[int, np.ndarray, np.ndarray]:
    """Nested WAIT's (n_1, segment ends d_1..d_J, per-stage limits n_1..n_J as floats).

    n_{j+1}/n_j = min(p_j + margin, 1), p_j = P(O > d_j)/P(O > d_{j−1}), and n_1 the largest
    integer with Σ_j n_j Σ_{a=d_{j−1}}^{d_j−1} (E[S] + a + 1) P(O > a | O > d_{j−1}) ≤ M (at least 1).
    """
    if not (isinstance(memory_tokens, int | np.integer) and memory_tokens > 0):
        raise SettingError(f"memory must be a positive integer of tokens, got {memory_tokens!r}")
    _finite_memory_times(workload)
    ends = _segments(workload)
    values, probs = _mixture_decode(workload)
    ages = np.arange(int(values[-1]) + 1)
    surv = probs.sum() - np.concatenate([[0.0], np.cumsum(probs)])[np.searchsorted(values, ages,
                                                                                   side="right")]
    surv = np.maximum(surv, 0.0)  # P(O > a), a = 0..max O, of the stored support

    def sf(x: int) -> float:
        return float(surv[min(int(x), ages.size - 1)])

    es = float(sum(p * c.lengths.prompt_law.mean for p, c in zip(workload.mix, workload.classes,
                                                                  strict=True)))
    starts = np.concatenate([[0], ends[:-1]])
    ratio = np.ones(ends.size)
    for j in range(1, ends.size):
        p = sf(starts[j]) / max(sf(starts[j - 1]), 1e-300)
        ratio[j] = ratio[j - 1] * min(p + margin, 1.0)
    # memory per unit entering segment j: Σ_{a in segment} (E[S] + a + 1) P(O > a | O > d_{j−1})
    # (within a segment between support points nobody leaves, and the factor is 1)
    term = (es + ages + 1) * surv
    seg_mem = np.array([term[int(s):int(e)].sum() / max(sf(s), 1e-300)
                        for s, e in zip(starts, ends, strict=True)])
    n1 = max(1, math.floor(memory_tokens / float(ratio @ seg_mem) + 1e-9))
    return n1, ends, n1 * ratio



def _per_memory(policy: Policy, memory_tokens: int, needs: str, compute):
    """``compute(workload, M)`` for the policy's cached workload, computed once per M.

    Raises :class:`SettingError` when no workload was given (``check_workload`` not called),
    naming what the policy needs from it.
    """
    cache = getattr(policy, "_cache", None)
    if cache is not None and cache[0] == memory_tokens:
        return cache[1]
    try:
        wl = policy._workload
    except AttributeError:
        raise SettingError(f"{policy.spec_name} needs {needs}: build a SimConfig with it (or call "
                           "policy.check_workload(workload)) before running") from None
    out = compute(wl, int(memory_tokens))
    object.__setattr__(policy, "_cache", (memory_tokens, out))
    return out

@dataclass(frozen=True)
class Wait(Policy):
    """WAIT: per class k, activate n_k class-k requests (FIFO in the class) in a slot where at least
    n_k wait; thresholds from the workload (:func:`wait_thresholds`) or given. Module docstring;
    Python engine only.

    ``thresholds``: one positive integer per class, or None (from the workload's class mix, its
    E[W_k] and M). Under ``max_seqs`` the full batches chosen are cut to the room left, keeping
    the first in global queue order (as ``budgets`` does). The workload comes from
    :meth:`check_workload` (called by :class:`~numerics.sim.config.SimConfig`), M from the engine
    at the first slot.
    """

    thresholds: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        t = self.thresholds
        if t is None:
            return
        if not isinstance(t, tuple | list) or not t or any(
            isinstance(x, bool) or not isinstance(x, int | float | np.integer) or not math.isfinite(x)
            or int(x) != x or x < 1 for x in t
        ):
            raise SpecError(f"wait thresholds must be positive integers, one per class, got {t!r}; "
                            "e.g. wait:12,4 (or plain wait for the paper's thresholds)")
        object.__setattr__(self, "thresholds", tuple(int(x) for x in t))

    def check_classes(self, n_classes: int) -> None:
        if self.thresholds is not None and len(self.thresholds) != n_classes:
            raise SpecError(f"wait has {len(self.thresholds)} thresholds but the workload has "
                            f"{n_classes} classes; give one per class")

    def check_workload(self, workload: Workload) -> None:
        """Cache the workload (for the thresholds); refuse a wrong number of thresholds."""
        self.check_classes(len(workload.classes))
        if self.thresholds is None:
            _finite_memory_times(workload)
        object.__setattr__(self, "_workload", workload)
        object.__setattr__(self, "_cache", None)

    def thresholds_for(self, memory_tokens: int) -> tuple[int, ...]:
        """n_1..n_K in use for memory M (given, or :func:`wait_thresholds` of the cached workload)."""
        if self.thresholds is not None:
            return self.thresholds
        return _per_memory(self, memory_tokens, "the workload's class laws", wait_thresholds)

    def select(self, sim: SlotState) -> list[int]:
        room = self.seq_room(sim)
        q = sim.queue
        if not len(q) or room < 1:
            return []
        n = self.thresholds_for(sim.memory_tokens)
        if len(n) != sim.n_classes:
            raise SpecError(f"wait has {len(n)} thresholds but the run has {sim.n_classes} classes")
        counts = [nk if q.length_of_class(k) >= nk else 0 for k, nk in enumerate(n)]
        if not any(counts):
            return []
        cap = sum(counts) if room == math.inf else int(room)
        return q.first_of_classes(counts, cap)

    def spec(self) -> str:
        t = "" if self.thresholds is None else ":" + ",".join(str(x) for x in self.thresholds)
        tail = f"requeue={self.requeue}{self._seqs_spec()}"
        return f"wait{t}," + tail if t else "wait:" + tail


@dataclass(frozen=True)
class NestedWait(Policy):
    """Nested WAIT: FIFO entry in batches of ``entry`` = min(n_1, n_1·d_1 − segment-1 occupants)
    once that many wait; later segments advance freely (module docstring: the slot model has no
    paused state). Python engine only.

    ``margin`` ≥ 0: the safety margin of the segment ratios; ``n``: the entry threshold n_1
    (None: :func:`nested_wait_thresholds` of the workload and M).
    """

    margin: float = 0.05
    n: int | None = field(default=None)

    def __post_init__(self) -> None:
        super().__post_init__()
        m = self.margin
        if isinstance(m, bool) or not isinstance(m, int | float) or not math.isfinite(m) or not 0 <= m <= 1:
            raise SpecError(f"nested-wait margin must lie in [0, 1], got {m!r}; e.g. margin=0.05")
        n = self.n
        if n is not None and (isinstance(n, bool) or not isinstance(n, int | float | np.integer)
                              or not math.isfinite(n) or int(n) != n or n < 1):
            raise SpecError(f"nested-wait n (the entry threshold) must be a positive integer, got {n!r}")
        if n is not None:
            object.__setattr__(self, "n", int(n))
        object.__setattr__(self, "margin", float(m))

    def check_workload(self, workload: Workload) -> None:
        """Cache the workload (segments and limits are computed at the first slot, given M)."""
        _finite_memory_times(workload)
        object.__setattr__(self, "_workload", workload)
        object.__setattr__(self, "_cache", None)

    def limits_for(self, memory_tokens: int) -> tuple[int, int]:
        """(n_1, d_1): the entry threshold and the length of segment 1, for memory M."""
        def limits(wl: Workload, m: int) -> tuple[int, int]:
            n1, ends, _ = nested_wait_thresholds(wl, m, self.margin)
            return self.n if self.n is not None else n1, int(ends[0])

        return _per_memory(self, memory_tokens, "the workload's decode law", limits)

    def select(self, sim: SlotState) -> int:
        room = self.seq_room(sim)
        waiting = len(sim.queue)
        if not waiting or room < 1:
            return 0
        n1, d1 = self.limits_for(sim.memory_tokens)
        in_seg1 = 0
        for rid in sim.active_ids():  # progress g = memory − S − 1 (exact for block size 1)
            if sim.current_memory(rid) - sim.S[rid] - 1 < d1:
                in_seg1 += 1
        entry = min(n1, n1 * d1 - in_seg1)
        if entry < 1 or waiting < entry:
            return 0
        return int(min(entry, room))

    def spec(self) -> str:
        n = "" if self.n is None else f",n={self.n}"
        return f"nested-wait:margin={self.margin!r}{n},requeue={self.requeue}{self._seqs_spec()}"
