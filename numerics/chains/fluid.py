r"""Fluid models of the active set: greedy's synchronised cycle and flow control's age density.

Symbolic twin: :mod:`theory.fluid` (functions of the same names; ``tests/test_twins.py``
checks that they agree).

Both models follow the slot order of docs/model.md (admission, overflow check with LIFO eviction,
one token per active request, completion) with request counts replaced by real masses — the
limit of the system scaled by M → ∞ with counts of order M.

**Greedy admission in saturation** (homogeneous requests: prompt s, decode d, both fixed; the
waiting queue never empties). State at the end of a slot: n_g, the mass of active requests that
have generated g = 1..d−1 tokens. One slot:

1. the active requests need :math:`U = \sum_g n_g (s + g + 1)` tokens;
2. greedy admits :math:`y = \max\{0, ((1 - w)M - U)/(s + 1)\}` new requests (age 0, s + 1 tokens
   each; w is vLLM's watermark);
3. while :math:`U + (s+1)y > M` mass is evicted youngest first (LIFO: a younger request was
   activated later) and goes back to the (saturated) queue, its progress lost;
4. every active request emits a token; the mass at age d − 1 completes (it emits its d-th token).

*Derivation of the synchronised cycle* (w = 0, from an empty cache). Slot 0 admits a cohort
M/(s + 1) that fills the cache. In slot k = 1..d−1 the cohort needs (s + k + 1) tokens each,
more than the M it had, so no one is admitted and LIFO eviction cuts it to M/(s + k + 1): the
cache stays full and the cohort shrinks. At k = d − 1 the survivors M/(s + d) complete, the cache
is empty, and slot d starts the next identical cohort. The cycle has length d, and

.. math:: \text{throughput} = \frac{M}{d\,(s + d)} \quad\text{vs}\quad
          \frac{M}{W} = \frac{M}{s d + d(d+1)/2}

for the eviction-free equilibrium (cohorts M/W of every age 0..d−1 — a fixed point of the same
map, reached by flow control at rate M/W). The ratio is

.. math:: \frac{s + (d+1)/2}{s + d} \in (\tfrac12, 1],

which tends to 1/2 for d ≫ s: the "up to 50 %" throughput loss of Ao, Dong, Luo & Simchi-Levi
(arXiv:2606.15555; docs/theory.md §5 reconstructs the figure the same way). Their result is that the
equilibrium is unstable and generic trajectories converge to this worst-case cycle;
:func:`greedy_fluid_cycle` iterates the map from any start (empty by default) and reports the cycle
it reaches — exactly, in rational arithmetic, when the inputs are integers or Fractions.

**Flow control** (any workload; budget mean r). Arrivals at rate λ(t) join a fluid queue q; the
activations are :math:`a_t = \min(r, q_{t-1} + \lambda(t))` and :math:`q_t = q_{t-1} + \lambda(t)
- a_t` (λ = None means saturation: :math:`a_t = r`). A cohort activated at slot τ has mass
:math:`a_\tau G(g)` alive at age g = t − τ, G(g) = P(O > g) — the age density obeys
:math:`n(t+1, g+1) = n(t, g)\,P(O > g+1 \mid O > g)` — and holds :math:`(E S + g + 1)` tokens
each, so with :math:`\mu_g = (E S + g + 1) G(g)`

.. math:: \text{active}_t = \sum_g a_{t-g} G(g), \qquad U_t = \sum_g a_{t-g}\,\mu_g, \qquad
          \text{completions}_t = \sum_g a_{t-g}\,(G(g) - G(g+1)).

In saturation U_t → r·Σ_g μ_g = r·E[W] (``flow_saturated_mean``); below it, λ·E[W]. The fluid
ignores evictions: with slack M − r·E[W] > 0 the scaled system overflows with vanishing
probability (the paper's exponential tail).

Examples
--------
>>> from fractions import Fraction
>>> greedy_throughput_ratio(2, 5)
Fraction(5, 7)
>>> cyc = greedy_fluid_cycle(2, 5, 700)
>>> cyc.cycle_length, cyc.throughput_requests_per_slot, cyc.throughput_ratio
(5, Fraction(20, 1), Fraction(5, 7))
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

from numerics.errors import WorkloadError
from numerics.model.workload import Workload, ensure_memory

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "FlowFluid",
    "GreedyCycle",
    "Scalar",
    "equilibrium_state",
    "flow_fluid",
    "greedy_fluid_cycle",
    "greedy_fluid_step",
    "greedy_throughput_ratio",
]

#: A fluid mass or length: exact (``int``, ``Fraction``: the map is then computed exactly) or a float.
Scalar = int | Fraction | float

#: Float mode: two fluid states within this (relative to M) count as equal in cycle detection.
_FLOAT_CYCLE_TOL = 1e-9


def _exact(*xs: object) -> bool:
    return all(isinstance(x, int | Fraction) and not isinstance(x, bool) for x in xs)


def _check_sd(prompt: Scalar, decode: Scalar) -> None:
    for name, v, lo in (("prompt", prompt, 0), ("decode", decode, 1)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or v < lo:
            raise WorkloadError(f"{name} length must be a finite number ≥ {lo}, got {v!r}")


def greedy_throughput_ratio(prompt: Scalar, decode: Scalar) -> Fraction | float:
    """(s + (d+1)/2)/(s + d): greedy's synchronised-cycle throughput over the equilibrium's.

    Exact (a ``Fraction``) for ``int``/``Fraction`` input, a float otherwise.

    Parameters
    ----------
    prompt : int, Fraction or float
        s ≥ 0.
    decode : int, Fraction or float
        d ≥ 1.

    Examples
    --------
    >>> greedy_throughput_ratio(0, 1)
    Fraction(1, 1)
    >>> round(greedy_throughput_ratio(10.0, 1000.0), 4)
    0.5054
    """
    _check_sd(prompt, decode)
    if _exact(prompt, decode):
        s, d = Fraction(prompt), Fraction(decode)
        return (s + (d + 1) / 2) / (s + d)
    s, d = float(prompt), float(decode)
    return (s + (d + 1) / 2) / (s + d)


def equilibrium_state(prompt: int, decode: int, memory_tokens: Scalar) -> list[Fraction | float]:
    """The eviction-free equilibrium: mass M/W at each age g = 1..d−1 (end-of-slot state).

    Exact for integer/Fraction M. W = s·d + d(d+1)/2.
    """
    s, d = _int_sd(prompt, decode)
    m = Fraction(memory_tokens) if _exact(memory_tokens) else float(memory_tokens)
    w = s * d + Fraction(d * (d + 1), 2)
    per_age = m / w if isinstance(m, Fraction) else m / float(w)
    return [per_age] * (d - 1)


def _int_sd(prompt: Scalar, decode: Scalar) -> tuple[int, int]:
    _check_sd(prompt, decode)
    if int(prompt) != prompt or int(decode) != decode:
        raise WorkloadError(
            f"the greedy fluid cycle needs integer prompt and decode lengths, got {prompt}, {decode}"
        )
    return int(prompt), int(decode)


def greedy_fluid_step(state: Sequence[Scalar], prompt: int, decode: int, memory_tokens: Scalar,
                      watermark: Scalar = 0) -> tuple[list, dict[str, Scalar]]:
    """One slot of the greedy fluid map (see the module docstring).

    Parameters
    ----------
    state : sequence
        n_g for g = 1..d−1 at the end of the previous slot.

    Returns
    -------
    next_state : list
    record : dict
        ``admitted``, ``evicted`` (mass), ``wasted`` (tokens), ``active`` and ``memory`` (after
        eviction), ``completed``.
    """
    s, d = prompt, decode
    zero = state[0] * 0 if len(state) else memory_tokens * 0
    n = [zero, *state]  # ages 0..d-1; age 0 is admitted below
    usage = sum((n[g] * (s + g + 1) for g in range(1, d)), zero)
    limit = (1 - watermark) * memory_tokens
    y = max(zero, (limit - usage) / (s + 1))
    n[0] = y
    usage = usage + y * (s + 1)
    evicted = zero
    wasted = zero
    g = 0
    while usage > memory_tokens and g < d:
        per = s + g + 1
        take = min(n[g], (usage - memory_tokens) / per)
        n[g] -= take
        usage -= take * per
        evicted += take
        wasted += take * g
        g += 1
    active = sum(n, zero)
    completed = n[d - 1]
    record = {"admitted": y, "evicted": evicted, "wasted": wasted, "active": active,
              "memory": usage, "completed": completed}
    return n[: d - 1], record


@dataclass(frozen=True, eq=False)
class GreedyCycle:
    """The limit cycle of greedy admission in saturation (fluid), over one period.

    Attributes
    ----------
    transient_slots : int
        Slots before the state first enters the cycle.
    cycle_length : int
    series : dict of str to ndarray
        Per slot of one period (floats): ``admitted``, ``evicted``, ``wasted``, ``active``,
        ``memory`` (after eviction), ``completed``.
    throughput_requests_per_slot
        Completions per slot over the cycle (exact for exact input).
    equilibrium_throughput
        M / W, the eviction-free equilibrium (and the necessary bound).
    throughput_ratio
        The quotient of the two; (s + (d+1)/2)/(s + d) for the synchronised cycle.
    """

    prompt: int
    decode: int
    memory_tokens: Scalar
    watermark: Scalar
    transient_slots: int
    cycle_length: int
    series: dict
    throughput_requests_per_slot: Scalar
    equilibrium_throughput: Scalar
    exact: bool

    @property
    def throughput_ratio(self) -> Scalar:
        """Completions per slot over the cycle divided by the equilibrium's M / W."""
        return self.throughput_requests_per_slot / self.equilibrium_throughput

    @property
    def closed_form_ratio(self) -> Fraction | float:
        """(s + (d+1)/2)/(s + d) (the synchronised cycle's ratio)."""
        return greedy_throughput_ratio(self.prompt, self.decode)

    @property
    def throughput_tokens_per_slot(self) -> Scalar:
        """Goodput: d tokens per completion (evicted tokens are wasted)."""
        return self.throughput_requests_per_slot * self.decode

    def to_dict(self) -> dict:
        return {
            "prompt": self.prompt,
            "decode": self.decode,
            "memory_tokens": float(self.memory_tokens),
            "watermark": float(self.watermark),
            "transient_slots": self.transient_slots,
            "cycle_length": self.cycle_length,
            "throughput_requests_per_slot": float(self.throughput_requests_per_slot),
            "equilibrium_throughput": float(self.equilibrium_throughput),
            "throughput_ratio": float(self.throughput_ratio),
            "closed_form_ratio": float(self.closed_form_ratio),
            "series": {k: [float(x) for x in v] for k, v in self.series.items()},
        }


def greedy_fluid_cycle(
    prompt: int,
    decode: int,
    memory_tokens: Scalar,
    *,
    watermark: Scalar = 0,
    initial: Sequence[Scalar] | None = None,
    max_slots: int = 100_000,
) -> GreedyCycle:
    """Iterate the greedy fluid map until it repeats; return the cycle it settles on.

    Parameters
    ----------
    prompt, decode : int
        s ≥ 0 and d ≥ 1 (homogeneous requests).
    memory_tokens : int, Fraction or float
        M (need not be an integer: the fluid scales with it).
    watermark : int, Fraction or float
        w ∈ [0, 1): greedy admits while the usage stays ≤ (1 − w)·M.
    initial : sequence, optional
        End-of-slot masses n_g, g = 1..d−1 (default: an empty cache); e.g. a perturbed
        :func:`equilibrium_state`.
    max_slots : int
        Give up (``WorkloadError``) if no cycle appears within this many slots.

    Notes
    -----
    With integer/Fraction M, w and initial masses the map is iterated in exact rational
    arithmetic and the cycle is detected exactly; otherwise in floats, with states within
    1e-9·M taken as equal.
    """
    s, d = _int_sd(prompt, decode)
    if isinstance(memory_tokens, bool) or not isinstance(memory_tokens, numbers.Real) or not (
        math.isfinite(memory_tokens) and memory_tokens > 0
    ):
        raise WorkloadError(f"memory must be a positive number of tokens, got {memory_tokens!r}")
    if isinstance(watermark, bool) or not isinstance(watermark, numbers.Real) or not 0 <= watermark < 1:
        raise WorkloadError(f"greedy watermark must lie in [0, 1), got {watermark!r}")
    if s + d > memory_tokens:
        raise WorkloadError(f"s + d = {s + d} exceeds M = {memory_tokens}: no request can finish")
    state = list(initial) if initial is not None else [0] * (d - 1)
    if len(state) != d - 1:
        raise WorkloadError(f"initial must give d − 1 = {d - 1} masses (ages 1..d−1), got {len(state)}")
    exact = _exact(memory_tokens, watermark, *state)
    if exact:
        m, w = Fraction(memory_tokens), Fraction(watermark)
        state = [Fraction(x) for x in state]
    else:
        m, w = float(memory_tokens), float(watermark)
        state = [float(x) for x in state]
    if any(x < 0 for x in state):
        raise WorkloadError("initial masses must be non-negative")
    seen: dict = {}
    history: list = []
    records: list[dict] = []
    tol = _FLOAT_CYCLE_TOL * float(m)
    start = None
    for t in range(max_slots + 1):
        key = tuple(state)
        if exact:
            start = seen.get(key)
        else:
            arr = np.array(state, dtype=float)
            for j in range(len(history) - 1, max(-1, len(history) - 1 - 50 * d), -1):
                if np.all(np.abs(history[j] - arr) <= tol):
                    start = j
                    break
        if start is not None:
            break
        if exact:
            seen[key] = t
        else:
            history.append(np.array(state, dtype=float))
        state, rec = greedy_fluid_step(state, s, d, m, w)
        records.append(rec)
    else:
        raise WorkloadError(f"no cycle within {max_slots} slots; raise max_slots")
    period = t - start
    cyc = records[start:t]
    done = sum((r["completed"] for r in cyc), m * 0)
    thr = done / period
    w_mem = s * d + Fraction(d * (d + 1), 2)
    eq = m / w_mem if exact else m / float(w_mem)
    series = {k: np.array([float(r[k]) for r in cyc]) for k in cyc[0]}
    return GreedyCycle(s, d, m, w, start, period, series, thr, eq, exact)


@dataclass(frozen=True, eq=False)
class FlowFluid:
    """Time series of the flow-control fluid model (see the module docstring).

    Arrays are indexed by slot t = 0..horizon−1: ``arrivals`` λ(t), ``activations`` a_t,
    ``queue`` (after activation), ``active``, ``memory`` (tokens), ``completions``. In saturation
    (``arrival_rate=None``) ``arrivals`` and ``queue`` are ∞.
    """

    rate_per_slot: float
    memory_tokens: int
    mean_memory_time: float
    arrivals: np.ndarray
    activations: np.ndarray
    queue: np.ndarray
    active: np.ndarray
    memory: np.ndarray
    completions: np.ndarray

    @property
    def fixed_point_memory(self) -> float:
        """r·E[W]: the memory of the saturated fixed point (``flow_saturated_mean``)."""
        return self.rate_per_slot * self.mean_memory_time

    @property
    def kv_util(self) -> np.ndarray:
        return self.memory / self.memory_tokens

    def to_frame(self) -> pd.DataFrame:
        """The series as a pandas DataFrame (one row per slot)."""
        import pandas as pd

        return pd.DataFrame(
            {
                "slot": np.arange(self.memory.size),
                "arrivals": self.arrivals,
                "activations": self.activations,
                "queue": self.queue,
                "active": self.active,
                "memory": self.memory,
                "completions": self.completions,
            }
        )


def flow_fluid(
    workload: Workload,
    memory_tokens: int,
    rate_per_slot: float,
    horizon: int,
    arrival_rate: float | Callable[[int], float] | None = None,
    *,
    initial_queue: float = 0.0,
) -> FlowFluid:
    """The flow-control fluid model over ``horizon`` slots from an empty active set.

    Parameters
    ----------
    workload : Workload
        Any workload with finite E[W] (the mixture's age profile is used).
    memory_tokens : int
        M (only reported against; the fluid has no evictions).
    rate_per_slot : float
        r, the activation rate.
    horizon : int
    arrival_rate : None, float or callable
        λ(t) per slot; None means saturation (a_t = r for every t).
    initial_queue : float
        q before slot 0.

    Examples
    --------
    >>> from numerics.model.specs import parse_law
    >>> wl = Workload.single(parse_law("10"), parse_law("uniform:1,20"))
    >>> ff = flow_fluid(wl, 4000, 10.0, 50)
    >>> bool(abs(ff.memory[-1] - ff.fixed_point_memory) < 1e-9 * ff.fixed_point_memory)
    True
    """
    if not isinstance(workload, Workload):
        raise WorkloadError(f"workload must be a Workload, got {type(workload).__name__}")
    m = ensure_memory(memory_tokens)
    workload.require_finite_memory_time()
    r = float(rate_per_slot)
    if not math.isfinite(r) or r <= 0:
        raise WorkloadError(f"activation rate must be > 0 requests per slot, got {rate_per_slot!r}")
    if isinstance(horizon, bool) or int(horizon) != horizon or horizon < 1:
        raise WorkloadError(f"horizon must be a positive integer number of slots, got {horizon!r}")
    horizon = int(horizon)
    if arrival_rate is None:
        lam = None
    elif callable(arrival_rate):
        lam = np.array([float(arrival_rate(t)) for t in range(horizon)])
    else:
        lam = np.full(horizon, float(arrival_rate))
    if lam is not None and (np.any(~np.isfinite(lam)) or np.any(lam < 0)):
        raise WorkloadError("arrival rates λ(t) must be finite and ≥ 0")
    if not math.isfinite(initial_queue) or initial_queue < 0:
        raise WorkloadError(f"initial_queue must be ≥ 0, got {initial_queue!r}")
    act = np.empty(horizon)
    queue = np.empty(horizon)
    q = float(initial_queue)
    for t in range(horizon):
        if lam is None:
            a = r
        else:
            q += lam[t]
            a = min(r, q)
            q -= a
        act[t] = a
        queue[t] = q if lam is not None else math.inf
    g, mu, _ = workload.age_moments()
    g_next = np.append(g[1:], 0.0)
    active = np.convolve(act, g)[:horizon]
    memory = np.convolve(act, mu)[:horizon]
    completions = np.convolve(act, g - g_next)[:horizon]
    arrivals = np.full(horizon, math.inf) if lam is None else lam
    return FlowFluid(r, m, workload.mean_memory_time, arrivals, act, queue, active, memory,
                     completions)
