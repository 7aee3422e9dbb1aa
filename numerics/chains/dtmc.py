r"""The exact Markov chain of a small complete system: waiting queue + active set by age.

For one request class with a fixed prompt S, a decode law O on a small finite support, Bernoulli
or Poisson(λ) arrivals and a small KV cache of M tokens, the whole system — waiting queue and
active set — is a finite discrete-time Markov chain once the waiting queue is capped. This module
enumerates its reachable states, solves :math:`\pi = \pi P`, :math:`\sum \pi = 1` (a sparse
LU solve up to a few thousand states, power iteration with an error estimate beyond; both are
checked by the residual ‖πP − π‖₁), and returns the stationary overflow probability,
throughput, queue, latency and memory use: the ground truth the simulator (:mod:`numerics.sim`)
must match.

Slot semantics (exactly those of :mod:`numerics.sim.engine` and docs/model.md). Each slot:

1. arrivals join the tail of the waiting queue (Bernoulli: one w.p. λ; Poisson: Poisson(λ));
2. the policy activates requests from the head of the queue — flow control
   (:class:`~numerics.sim.policies.FlowControl`) min(B_t, Q) with B_t from its budget law;
   greedy (:class:`~numerics.sim.policies.Greedy`) FCFS while usage + S + g₀ + 1 ≤ (1 − w)·M and
   the active count stays ≤ max_seqs (usage = Σ_active (S + g + 1), the memory the already
   active requests need this slot);
3. while the usage exceeds M the most recently activated request is evicted (LIFO) and rejoins
   the *head* of the queue (``requeue="head"``, the simulator's default); under ``recompute`` it
   loses its g generated tokens (they are counted as wasted), under ``keep-progress`` it keeps them;
4. every active request emits one token; a request that emits its O-th token completes.

State (recorded at the end of a slot). The decode length O is hidden from both policies, so it
can be drawn when a request is first activated instead of at its arrival ("principle of deferred
decisions"): the process has the same law. A state is

* ``fresh`` — the number of waiting requests whose O is still undrawn (they sit at the tail);
* ``head`` — the waiting requests at the head that carry information: evicted ones, as
  (g₀, O) pairs in queue order (g₀ = kept progress, 0 under recompute; O = 0 means undrawn: a
  request evicted in its activation slot has revealed nothing, and trailing undrawn entries are
  folded into ``fresh`` since they are exchangeable with it);
* ``stack`` — the active requests in activation order, each (g, O) with g the tokens generated.

Undrawn decode lengths are drawn after the eviction step (eviction depends only on memory), one
branch per value of the support. Transitions are therefore exact, and the chain is the
simulator's slot recursion itself; the only approximation is the **queue cap N**: an arrival that
finds N or more requests waiting (at step 1) is lost. ``loss_probability`` (lost / offered
arrivals) and ``cap_probability`` (the stationary probability that the queue holds ≥ N at the
start of a slot) measure it; both should be negligible before comparing with the uncapped
simulator (the tests check this).

Reported quantities, all exact expectations under π of per-slot rewards (the transition from the
state at the start of the slot):

* ``overflow_probability`` — P(the overflow check fires in a slot: it evicts a previously active
  request or drops one activated in this slot);
* ``evictions_per_slot``, ``dropped_per_slot`` — previously active requests evicted, and requests
  dropped on admission (activated and popped in the same slot, before emitting a token: by the
  simulator's accounting no activation and no eviction), per slot; ``activations_per_slot``
  counts the activations that survive the overflow check;
* ``throughput_requests_per_slot`` — completions per slot; by flow balance it equals
  λ·(1 − loss_probability);
* ``throughput_tokens_per_slot`` — emitted minus wasted tokens per slot (the simulator's
  goodput); under recompute it equals E[O]·throughput (every completed run emits O tokens);
* ``mean_queue``, ``mean_active``, ``kv_util_mean`` — after eviction (as the simulator records);
* ``mean_latency_slots`` — by **Little's law** L = λ_eff·W: a request is present (waiting or
  active, counted after eviction) in every slot from its arrival slot to its completion slot, i.e.
  for completion − arrival + 1 slots, the simulator's latency; so
  E[latency] = E[queue + active] / throughput.

Examples
--------
Prompt 4, decode uniform on {1, 2, 3}, M = 16, Bernoulli(0.5) arrivals, flow control at rate 0.8:

>>> from numerics.model.laws import TokenLaw
>>> from numerics.sim.policies import FlowControl
>>> from numerics.model.workload import Workload
>>> wl = Workload.single(TokenLaw.deterministic(4), TokenLaw.from_pmf([1, 2, 3], [1/3, 1/3, 1/3]))
>>> law = exact_system(wl, 16, FlowControl(rate=0.8), 0.5, queue_cap=20)
>>> law.n_states, round(law.overflow_probability, 5), round(law.mean_latency_slots, 4)
(122, 0.02617, 2.9215)
>>> bool(abs(law.throughput_requests_per_slot - 0.5 * (1 - law.loss_probability)) < 1e-12)
True
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, get_args

import numpy as np

from numerics.errors import FlowstabError, UnstableWorkloadError, WorkloadError
from numerics.model.workload import IndependentLengths, Workload, ensure_memory

if TYPE_CHECKING:
    from numerics.sim.policies import FlowControl, Greedy

__all__ = ["DTMC_ARRIVALS", "DTMCError", "DtmcArrivals", "DtmcEviction", "DtmcSolver", "SystemLaw",
           "exact_system"]

#: The arrival processes of the exact chain: at most one arrival per slot, or Poisson(λ).
DtmcArrivals = Literal["bernoulli", "poisson"]
#: What an evicted request keeps: nothing (it recomputes its prefill and decode) or its progress.
DtmcEviction = Literal["recompute", "keep-progress"]
#: The stationary solve: sparse LU, power iteration, or LU up to 3000 states and power beyond.
DtmcSolver = Literal["auto", "direct", "power"]
DTMC_ARRIVALS: tuple[DtmcArrivals, ...] = get_args(DtmcArrivals)
#: Residual ‖πP − π‖₁ above this means the sparse solve failed (double precision gives ~1e-14).
_RESIDUAL_TOL = 1e-9
#: Up to this many states the stationary law is solved by sparse LU; beyond, by power iteration.
_DIRECT_MAX_STATES = 3000
#: Power iteration stops when its estimated L1 error d·ρ/(1 − ρ) is below this ...
_POWER_TOL = 1e-13
#: ... or when a step changes x by less than this in L1 (double-precision rounding floor) ...
_POWER_FLOOR = 1e-15
#: ... or gives up after this many steps and solves directly.
_POWER_MAX_ITER = 200_000

_REWARDS = (
    "overflow",  # 1{the overflow check popped a request this slot}
    "evictions",  # previously active requests evicted
    "dropped",  # requests activated this slot and popped at once (dropped on admission)
    "tokens",  # tokens emitted (= active after eviction)
    "wasted",  # tokens lost by recompute evictions
    "completions",
    "queue",  # waiting after eviction
    "active",  # active after eviction
    "usage",  # KV tokens after eviction
    "lost",  # arrivals blocked by the cap
    "activations",  # activations that survive the overflow check
)


class DTMCError(FlowstabError):
    """The exact chain cannot be built: unsupported configuration or too many states."""


@dataclass(frozen=True, eq=False)
class SystemLaw:
    """Stationary law of the small complete system (see the module docstring).

    Attributes
    ----------
    pmf : ndarray
        π over the reachable states (end-of-slot states, in discovery order from the empty one).
    states : list of tuple
        The states: (fresh, head, stack) with head and stack tuples of (g, O) pairs.
    rewards : dict of str to ndarray
        Expected per-slot rewards from each state (``overflow``, ``tokens``, ``queue`` ...).
    config : dict
        Prompt, decode law, M, policy spec, arrival rate and process, queue cap, eviction mode.
    kv_max_tokens : int
        Largest memory in use after eviction over every reachable transition (≤ M).
    residual : float
        ‖πP − π‖₁ of the computed solution.
    cap_probability : float
        π(queue holds ≥ N at the end of a slot): the mass at the truncation.
    n_transitions : int
        Non-zero entries of the transition matrix.
    timings : dict
        Wall-clock seconds of the enumeration (``build_s``) and the sparse solve (``solve_s``).
    """

    pmf: np.ndarray
    states: list
    rewards: dict
    config: dict
    kv_max_tokens: int
    residual: float
    cap_probability: float
    n_transitions: int = 0
    timings: dict = field(default_factory=dict, compare=False)
    _cache: dict = field(default_factory=dict, repr=False)

    def _mean(self, name: str) -> float:
        if name not in self._cache:
            self._cache[name] = float(np.dot(self.pmf, self.rewards[name]))
        return self._cache[name]

    @property
    def n_states(self) -> int:
        return int(self.pmf.size)

    @property
    def arrival_rate(self) -> float:
        return float(self.config["arrival_rate"])

    @property
    def overflow_probability(self) -> float:
        """P(a slot's overflow check evicts or drops at least one request)."""
        return self._mean("overflow")

    @property
    def evictions_per_slot(self) -> float:
        """Previously active requests evicted per slot (drops on admission excluded)."""
        return self._mean("evictions")

    @property
    def dropped_per_slot(self) -> float:
        """Requests dropped on admission per slot (activated and popped in the same slot)."""
        return self._mean("dropped")

    @property
    def throughput_requests_per_slot(self) -> float:
        """Completions per slot."""
        return self._mean("completions")

    @property
    def tokens_per_slot(self) -> float:
        """Tokens emitted per slot (wasted ones included) = mean active count."""
        return self._mean("tokens")

    @property
    def wasted_tokens_per_slot(self) -> float:
        return self._mean("wasted")

    @property
    def throughput_tokens_per_slot(self) -> float:
        """Goodput: emitted minus wasted tokens per slot (the simulator's definition)."""
        return self._mean("tokens") - self._mean("wasted")

    @property
    def mean_queue(self) -> float:
        """E[waiting requests] after eviction."""
        return self._mean("queue")

    @property
    def mean_active(self) -> float:
        return self._mean("active")

    @property
    def mean_in_system(self) -> float:
        return self._mean("queue") + self._mean("active")

    @property
    def activations_per_slot(self) -> float:
        """Activations per slot that survive the overflow check (drops on admission excluded)."""
        return self._mean("activations")

    @property
    def loss_probability(self) -> float:
        """Fraction of offered arrivals lost at the queue cap."""
        return self._mean("lost") / self.arrival_rate

    @property
    def mean_latency_slots(self) -> float:
        """E[completion − arrival + 1] = E[queue + active] / throughput (Little's law)."""
        return self.mean_in_system / self.throughput_requests_per_slot

    @property
    def kv_util_mean(self) -> float:
        """E[KV tokens after eviction] / M."""
        return self._mean("usage") / self.config["memory_tokens"]

    def to_dict(self) -> dict:
        """Metrics and configuration as plain Python values (JSON-ready)."""
        out = dict(self.config)
        out.update(
            {
                "n_states": self.n_states,
                "n_transitions": self.n_transitions,
                "overflow_probability": self.overflow_probability,
                "evictions_per_slot": self.evictions_per_slot,
                "dropped_per_slot": self.dropped_per_slot,
                "throughput_requests_per_slot": self.throughput_requests_per_slot,
                "throughput_tokens_per_slot": self.throughput_tokens_per_slot,
                "tokens_per_slot": self.tokens_per_slot,
                "wasted_tokens_per_slot": self.wasted_tokens_per_slot,
                "mean_queue": self.mean_queue,
                "mean_active": self.mean_active,
                "mean_latency_slots": self.mean_latency_slots,
                "kv_util_mean": self.kv_util_mean,
                "loss_probability": self.loss_probability,
                "cap_probability": self.cap_probability,
                "kv_max_tokens": self.kv_max_tokens,
                "residual": self.residual,
            }
        )
        return out


def _count_pmf(kind: str, mean: float, cap: int | None = None) -> list[tuple[int, float]]:
    """(value, prob) of a count law; values ≥ ``cap`` are lumped into ``cap`` (exact for min(X, cap))."""
    if kind == "bernoulli":
        out = [(0, 1 - mean), (1, mean)]
    elif kind == "deterministic":
        out = [(int(mean), 1.0)]
    elif kind == "randomized":
        k = math.floor(mean)
        f = mean - k
        out = [(k, 1 - f)] + ([(k + 1, f)] if f > 0 else [])
    else:  # poisson
        if cap is None:  # pragma: no cover - callers always cap Poisson counts
            raise DTMCError("internal: a Poisson count needs a cap")
        out, cdf, p = [], 0.0, math.exp(-mean)
        for n in range(cap):
            out.append((n, p))
            cdf += p
            p *= mean / (n + 1)
        out.append((cap, max(0.0, 1.0 - cdf)))
        return [(v, q) for v, q in out if q > 0]
    if cap is not None:
        lumped: dict[int, float] = {}
        for v, q in out:
            lumped[min(v, cap)] = lumped.get(min(v, cap), 0.0) + q
        out = sorted(lumped.items())
    return [(v, q) for v, q in out if q > 0]


def _stationary(p_mat, method: str = "auto") -> np.ndarray:
    """π with πP = π, Σπ = 1.

    ``direct``: sparse LU (SuperLU, COLAMD ordering) of (Pᵀ − I)π = 0 with one row replaced by
    Σπ = 1 — exact to rounding, but the fill-in grows fast (≈ 60 s at 2·10⁴ states).
    ``power``: x ← xP from the uniform law; with d_k = ‖x_{k+1} − x_k‖₁ and ρ the observed
    contraction per step (geometric mean over 10 steps), the error is about d_k·ρ/(1 − ρ); stop
    when that is below 1e-13 (or d_k reaches the rounding floor 1e-15). Falls back to ``direct``
    if it has not stopped after 200,000 steps.
    ``auto``: direct up to :data:`_DIRECT_MAX_STATES` states, power beyond.
    """
    from scipy import sparse
    from scipy.sparse import linalg as splinalg

    n = p_mat.shape[0]
    if method == "auto":
        method = "direct" if n <= _DIRECT_MAX_STATES else "power"
    if method == "power":
        pt = p_mat.T.tocsr()
        x = np.full(n, 1.0 / n)
        diffs: list[float] = []
        for _ in range(_POWER_MAX_ITER):
            y = pt @ x
            diffs.append(float(np.abs(y - x).sum()))
            x = y
            if len(diffs) > 10 and diffs[-11] > 0:
                rho = (diffs[-1] / diffs[-11]) ** 0.1
                if rho < 1 and diffs[-1] * rho / (1 - rho) < _POWER_TOL:
                    x = np.clip(x, 0.0, None)
                    return x / x.sum()
            if diffs[-1] <= _POWER_FLOOR:  # at the rounding floor: no further progress possible
                x = np.clip(x, 0.0, None)
                return x / x.sum()
        method = "direct"  # did not contract (slow mixing): solve exactly instead
    system = (p_mat.T - sparse.identity(n, format="csr")).tolil()
    system[0, :] = np.ones(n)
    rhs = np.zeros(n)
    rhs[0] = 1.0
    pi = np.atleast_1d(splinalg.spsolve(system.tocsc(), rhs))
    pi = np.clip(pi, 0.0, None)
    return pi / pi.sum()


def _validate(workload, memory_tokens, policy, arrival_rate, arrivals, queue_cap, eviction):
    from numerics.sim.policies import FlowControl, Greedy

    if not isinstance(workload, Workload):
        raise WorkloadError(f"workload must be a Workload, got {type(workload).__name__}")
    if len(workload.classes) != 1 or not isinstance(workload.classes[0].lengths, IndependentLengths):
        raise DTMCError(
            "the exact chain covers one request class with independent prompt and decode laws; "
            "use the simulator for mixes"
        )
    lengths = workload.classes[0].lengths
    if lengths.prompt.values.size != 1 or lengths.prompt.tail_mass > 0:
        raise DTMCError(
            f"the exact chain needs a fixed prompt length, got {lengths.prompt.label}; "
            "use a deterministic prompt (e.g. parse_law('4'))"
        )
    if not lengths.decode.bounded or lengths.decode.values.size > 12:
        raise DTMCError(
            f"the exact chain needs a decode law on a small finite support (≤ 12 values), got "
            f"{lengths.decode.label}; clip it with max=L or use the simulator"
        )
    m = ensure_memory(memory_tokens)
    s = int(lengths.prompt.values[0])
    if s + int(lengths.decode.values[-1]) > m:
        raise UnstableWorkloadError(
            f"P(S + O > M) > 0: a request with S + O = {s + int(lengths.decode.values[-1])} > M = {m} "
            "can never finish; raise M or clip the decode law"
        )
    if not isinstance(policy, FlowControl | Greedy):
        raise DTMCError(
            f"the exact chain covers FlowControl and Greedy policies, got {type(policy).__name__}"
        )
    if policy.requeue != "head":
        raise DTMCError("the exact chain covers requeue='head' only (the simulator's default)")
    if isinstance(policy, FlowControl) and policy.rate <= 0:
        raise DTMCError("flow control at rate 0 never serves: give a positive rate")
    if arrivals not in DTMC_ARRIVALS:
        raise DTMCError(f"arrivals must be one of {', '.join(DTMC_ARRIVALS)}, got {arrivals!r}")
    lam = arrival_rate
    if isinstance(lam, bool) or not isinstance(lam, int | float) or not math.isfinite(lam) or lam <= 0:
        raise WorkloadError(f"arrival rate must be > 0 requests per slot, got {arrival_rate!r}")
    if arrivals == "bernoulli" and lam >= 1:
        raise WorkloadError(f"Bernoulli arrivals need a rate < 1 per slot, got {lam}")
    if isinstance(queue_cap, bool) or not isinstance(queue_cap, int | np.integer) or queue_cap < 1:
        raise DTMCError(f"queue_cap must be a positive integer, got {queue_cap!r}")
    if eviction not in ("recompute", "keep-progress"):
        raise DTMCError(f"eviction must be recompute or keep-progress, got {eviction!r}")
    return s, m, lengths.decode


def exact_system(
    workload: Workload,
    memory_tokens: int,
    policy: FlowControl | Greedy,
    arrival_rate: float,
    *,
    arrivals: DtmcArrivals = "bernoulli",
    queue_cap: int = 30,
    eviction: DtmcEviction = "recompute",
    max_states: int = 300_000,
    solver: DtmcSolver = "auto",
) -> SystemLaw:
    """Stationary law of the small complete system (see the module docstring).

    Parameters
    ----------
    workload : Workload
        One class, a fixed prompt S and a decode law on a small finite support.
    memory_tokens : int
        M (S + max O ≤ M is required).
    policy : FlowControl or Greedy
        The simulator's policy object (``requeue="head"``).
    arrival_rate : float
        λ, requests per slot (< 1 for Bernoulli arrivals).
    arrivals : {"bernoulli", "poisson"}
    queue_cap : int
        N: an arrival finding N or more requests waiting is lost.
    eviction : {"recompute", "keep-progress"}
    max_states : int
        Refuse (``DTMCError``) beyond this many reachable states.
    solver : {"auto", "direct", "power"}
        Stationary solve: sparse LU, power iteration, or LU up to 3000 states and power beyond.

    Returns
    -------
    SystemLaw

    Raises
    ------
    DTMCError
        Unsupported configuration, or more than ``max_states`` states.
    UnstableWorkloadError
        When S + max O > M.
    """
    from scipy import sparse

    from numerics.sim.policies import FlowControl

    s, m, decode = _validate(workload, memory_tokens, policy, arrival_rate, arrivals, queue_cap,
                             eviction)
    if solver not in ("auto", "direct", "power"):
        raise DTMCError(f"solver must be auto, direct or power, got {solver!r}")
    lam = float(arrival_rate)
    cap = int(queue_cap)
    keep = eviction == "keep-progress"
    o_vals = [int(v) for v in decode.values]
    o_probs = [float(q) for q in decode.probs]
    is_flow = isinstance(policy, FlowControl)
    limit = (1 - policy.watermark) * m if not is_flow else 0.0
    max_seqs = policy.max_seqs
    draws_cache: dict[int, list[tuple[tuple[int, ...], float]]] = {}

    def draws(j: int):
        if j not in draws_cache:
            combos = []
            for idx in itertools.product(range(len(o_vals)), repeat=j):
                p = 1.0
                for i in idx:
                    p *= o_probs[i]
                combos.append((tuple(o_vals[i] for i in idx), p))
            draws_cache[j] = combos
        return draws_cache[j]

    emit_cache: dict[tuple, list[tuple[tuple, int, float]]] = {}

    def emit(stack: tuple) -> list[tuple[tuple, int, float]]:
        """(next stack, completions, probability) over the draws of the undrawn entries."""
        out = emit_cache.get(stack)
        if out is None:
            undrawn = [j for j, (_, o) in enumerate(stack) if o == 0]
            out = []
            for combo, pc in draws(len(undrawn)):
                full = list(stack)
                for j, o in zip(undrawn, combo, strict=True):
                    full[j] = (full[j][0], o)
                nxt = tuple((g + 1, o) for g, o in full if g + 1 != o)
                out.append((nxt, len(full) - len(nxt), pc))
            emit_cache[stack] = out
        return out

    arrival_laws = {
        room: _count_pmf(arrivals, lam, room if arrivals == "poisson" else None)
        for room in range(cap + 1)
    }
    budget_cache: dict[int, list[tuple[int, float]]] = {}

    def budget(q: int):
        if q not in budget_cache:
            law = policy.budget_law.law if policy.budget_law.kind == "law" else None
            if law is None:
                budget_cache[q] = _count_pmf(policy.budget, policy.rate, q)
            else:  # a budget law (uniform:0,6): its PMF with the values ≥ q lumped at q
                lumped: dict[int, float] = {}
                for v, pv in zip(law.values.tolist(), law.probs.tolist(), strict=True):
                    lumped[min(v, q)] = lumped.get(min(v, q), 0.0) + pv
                budget_cache[q] = sorted(lumped.items())
        return budget_cache[q]

    t_build = time.perf_counter()
    start = (0, (), ())
    index = {start: 0}
    states = [start]
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    rew = {name: [] for name in _REWARDS}
    kv_max = 0
    i = 0
    while i < len(states):
        fresh, head, stack = states[i]
        r_acc = dict.fromkeys(_REWARDS, 0.0)
        trans: dict[int, float] = {}
        post: dict[tuple, float] = {}
        waiting0 = fresh + len(head)
        room = max(0, cap - waiting0)
        usage0 = sum(s + g + 1 for g, _ in stack)
        n_active0 = len(stack)
        for a_in, pa in arrival_laws[room]:
            a_in = min(a_in, room)
            f1 = fresh + a_in
            q = f1 + len(head)
            if is_flow:
                ks = budget(q)  # the law of min(B, q): values ≥ q are lumped at q
                if max_seqs is not None:  # and of min(B, q, max_seqs − active)
                    room_k = max(0, max_seqs - n_active0)
                    capped: dict[int, float] = {}
                    for k, pk in ks:
                        capped[min(k, room_k)] = capped.get(min(k, room_k), 0.0) + pk
                    ks = sorted(capped.items())
            else:
                k, u = 0, usage0
                seq_cap = math.inf if max_seqs is None else max_seqs - n_active0
                for pos in range(q):
                    if k >= seq_cap:
                        break
                    g0 = head[pos][0] if (keep and pos < len(head)) else 0
                    need = s + g0 + 1
                    if u + need > limit:
                        break
                    u += need
                    k += 1
                ks = [(k, 1.0)]
            for k, pk in ks:
                p_ak = pa * pk
                # Activate the first k waiting requests, then evict LIFO while usage > M. Needs are
                # positive, so the activated requests that survive are the longest prefix that
                # fits; the others are popped in reverse and pushed to the head one by one, which
                # puts them back in their original order: as if never activated.
                usage = usage0
                new_stack = list(stack)
                j = 0
                for pos in range(k):
                    g0 = head[pos][0] if (keep and pos < len(head)) else 0
                    if usage + s + g0 + 1 > m:
                        break
                    usage += s + g0 + 1
                    new_stack.append(head[pos] if pos < len(head) else (0, 0))
                    j += 1
                if j <= len(head):
                    rest_head = list(head[j:])
                    f2 = f1
                else:
                    rest_head = []
                    f2 = f1 - (j - len(head))
                n_dropped = k - j
                n_popped = 0
                wasted = 0
                while usage > m:  # only when nothing was activated and the old set outgrew M
                    g, o = new_stack.pop()
                    usage -= s + g + 1
                    n_popped += 1
                    if not keep:
                        wasted += g
                        g = 0
                    rest_head.insert(0, (g, o))  # push_front: the last popped ends at the head
                # undrawn entries (0, 0) at the back of the head are exchangeable with the fresh
                # requests behind them: fold them into the fresh count
                while rest_head and rest_head[-1] == (0, 0):
                    rest_head.pop()
                    f2 += 1
                n_act = len(new_stack)
                kv_max = max(kv_max, usage)
                r_acc["overflow"] += p_ak * (1.0 if n_popped or n_dropped else 0.0)
                r_acc["evictions"] += p_ak * n_popped
                r_acc["dropped"] += p_ak * n_dropped
                r_acc["tokens"] += p_ak * n_act
                r_acc["wasted"] += p_ak * wasted
                r_acc["queue"] += p_ak * (f2 + len(rest_head))
                r_acc["active"] += p_ak * n_act
                r_acc["usage"] += p_ak * usage
                r_acc["activations"] += p_ak * j
                post_key = (f2, tuple(rest_head), tuple(new_stack))
                post[post_key] = post.get(post_key, 0.0) + p_ak
        # draw the undrawn decode lengths, emit one token each, complete (per distinct outcome)
        for (f2, head_t, new_stack), p_post in post.items():
            for nxt, done, pc in emit(new_stack):
                p = p_post * pc
                r_acc["completions"] += p * done
                key = (f2, head_t, nxt)
                j = index.get(key)
                if j is None:
                    j = len(states)
                    if j >= max_states:
                        raise DTMCError(
                            f"more than {max_states} reachable states; lower M, the queue cap "
                            "or the decode support, or raise max_states"
                        )
                    index[key] = j
                    states.append(key)
                trans[j] = trans.get(j, 0.0) + p
        accepted = sum(min(a, room) * pa for a, pa in arrival_laws[room])
        r_acc["lost"] = lam - accepted  # both arrival laws have mean λ
        for name in _REWARDS:
            rew[name].append(r_acc[name])
        rows.extend([i] * len(trans))
        cols.extend(trans.keys())
        vals.extend(trans.values())
        i += 1
    n = len(states)
    t_solve = time.perf_counter()
    p_mat = sparse.csr_matrix((vals, (rows, cols)), shape=(n, n))
    pi = _stationary(p_mat, solver)
    residual = float(np.abs(p_mat.T @ pi - pi).sum())
    if not residual < _RESIDUAL_TOL:
        raise DTMCError(f"the stationary solve did not converge (residual {residual:.2e})")
    timings = {"build_s": t_solve - t_build, "solve_s": time.perf_counter() - t_solve}
    rewards = {name: np.asarray(v, dtype=float) for name, v in rew.items()}
    waiting = np.array([st[0] + len(st[1]) for st in states])
    config = {
        "prompt": s,
        "decode_values": o_vals,
        "decode_probs": o_probs,
        "memory_tokens": m,
        "policy": policy.spec(),
        "arrival_rate": lam,
        "arrivals": arrivals,
        "queue_cap": cap,
        "eviction": eviction,
    }
    return SystemLaw(pi, states, rewards, config, int(kv_max), residual,
                     float(pi[waiting >= cap].sum()), int(p_mat.nnz), timings)
