"""Admission policies: small objects with one decision, ``select(sim)``.

Each slot the engine asks the policy which waiting requests to activate. A policy returns either an
``int`` k (activate the k requests at the head of the FIFO waiting queue) or a list of request ids
(any order of the queue; used by per-class budgets and the clairvoyant MC-SF). Overflow handling is
the engine's (LIFO eviction while memory exceeds M), the same for every policy.

==========  ==================================================================  ==============
spec        policy                                                              source
==========  ==================================================================  ==============
flow        Algorithm 2: budget B_t with mean r (deterministic / randomized /   Dong & Cao
            Poisson), FIFO activation
budgets     Algorithm 1: up to b_k class-k requests per slot (FIFO per class)   Dong & Cao
greedy      vLLM: FCFS while usage + S + 1 ≤ (1 − watermark)·M, ≤ max_seqs      vLLM V0/V1
reserve     admit only if Σ_active (S + L) + S_new + L ≤ M (no eviction ever)  TensorRT-LLM
alpha       α-protection: admit FCFS while usage after admission ≤ (1 − α)·M    Jaillet et al.
mcsf        clairvoyant Memory-Constrained Shortest-First (knows O)             Jaillet et al.
flowfit     flow's budget B_t, FIFO, stopping at the first request that does    beyond the
            not fit under M (no drop on admission)                              paper
adaptive    flowfit with r_t set online from λ̂, M/E[W]^ and the overflow seen  beyond the paper
==========  ==================================================================  ==============

New policies subclass :class:`Policy` and implement ``select(state)``, reading only what
:class:`~numerics.sim.state.SlotState` declares; ``requeue`` says where evicted requests go
(``"head"`` or ``"tail"`` of the waiting queue).

Every policy also takes ``max_seqs`` (vLLM's ``max_num_seqs``, a keyword of the constructor and
``max_seqs=N`` in every spec: ``flow:rate=2,max_seqs=64``, ``budgets:4,4,4,max_seqs=64``,
``alpha:0.1,max_seqs=64``, ``reserve:max=L,max_seqs=64``, ``mcsf:max_seqs=64``): a cap on the
number of active requests. The built-in policies apply it inside ``select`` — they never choose
more than ``max_seqs − n_active`` requests (FIFO: the first ones in queue order; per-class budgets:
the chosen ones in global queue order) — so that it holds in every engine; a new policy applies it
with :meth:`Policy.seq_room`. A policy that the compiled engine
(:mod:`numerics.sim.fast`) can run declares it: a class attribute ``kernel_code`` (a
:class:`~numerics.sim.state.KernelCode`) and a method ``kernel_params`` giving the kernel its
inputs. A subclass that overrides ``select`` without declaring its own ``kernel_code`` runs on the
Python engine (its ``kernel_code`` is reset to None), so the compiled twin never runs a decision
rule it does not implement. ``check_workload`` raises when a policy cannot serve a workload at all
(:class:`~numerics.sim.config.SimConfig` calls it).

Examples
--------
>>> parse_policy("greedy:watermark=0.05").spec()
'greedy:watermark=0.05'
>>> FlowControl(rate=2.0).kernel_code, MCSF().kernel_code
(<KernelCode.BUDGET: 0>, None)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np

from numerics.errors import SpecError, WorkloadError
from numerics.model.budget import BUDGET_LAWS
from numerics.sim.state import KernelCode, KernelParams, SlotState

if TYPE_CHECKING:
    from numerics.model.workload import Workload

__all__ = [
    "MCSF",
    "REQUEUE",
    "AdaptiveFlow",
    "AlphaProtection",
    "BudgetKind",
    "ClassBudgets",
    "FlowControl",
    "FlowFit",
    "Greedy",
    "Policy",
    "Requeue",
    "Reserve",
    "parse_policy",
]

#: Where an evicted request rejoins the waiting queue.
Requeue = Literal["head", "tail"]
REQUEUE: tuple[Requeue, ...] = ("head", "tail")
#: The budget laws of flow control (:data:`numerics.model.budget.BUDGET_LAWS`).
BudgetKind = Literal["deterministic", "randomized", "poisson"]
#: The spec name of each built-in policy class (for messages).
_SPEC_NAMES = {"FlowControl": "flow", "ClassBudgets": "budgets", "Greedy": "greedy",
               "AlphaProtection": "alpha", "Reserve": "reserve", "MCSF": "mcsf",
               "FlowFit": "flowfit", "AdaptiveFlow": "adaptive"}


@dataclass(frozen=True)
class Policy:
    """Base class. ``requeue``: where evicted requests rejoin the queue (head or tail);
    ``max_seqs`` (keyword-only): the most active requests, vLLM's ``max_num_seqs`` (None: no cap).

    Attributes
    ----------
    kernel_code : KernelCode or None
        The compiled kernel's activation rule for this policy; None: Python engine only.
    """

    requeue: Requeue = "head"
    #: Most active requests (vLLM's ``max_num_seqs``); None: no cap. Keyword-only.
    max_seqs: int | None = field(default=None, kw_only=True)
    kernel_code: ClassVar[KernelCode | None] = None
    #: Whether the compiled kernel's rule for this policy applies ``max_seqs`` (else a capped
    #: policy runs on the Python engine).
    kernel_caps_seqs: ClassVar[bool] = False

    def __post_init__(self) -> None:
        seqs = self.max_seqs
        if seqs is not None and (
            isinstance(seqs, bool) or not isinstance(seqs, int | float | np.integer)
            or not math.isfinite(seqs) or int(seqs) != seqs or seqs < 1
        ):
            raise SpecError(f"{self.spec_name} max_seqs must be a positive integer, got {seqs}")
        if seqs is not None:
            object.__setattr__(self, "max_seqs", int(seqs))

    @property
    def spec_name(self) -> str:
        """The policy's name in specs (``flow``, ``greedy``, ...), for messages."""
        return _SPEC_NAMES.get(type(self).__name__, type(self).__name__)

    def seq_room(self, sim: SlotState) -> float:
        """How many more requests ``max_seqs`` lets this slot activate: ``max_seqs − n_active``
        (never below 0), or ∞ without a cap."""
        return math.inf if self.max_seqs is None else max(self.max_seqs - sim.n_active, 0)

    def _seqs_spec(self) -> str:
        """``,max_seqs=N`` when capped, else ``""`` (the tail of :meth:`spec`)."""
        return "" if self.max_seqs is None else f",max_seqs={self.max_seqs}"

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        # a new decision rule is not the kernel's unless the subclass says so
        if "select" in cls.__dict__ and "kernel_code" not in cls.__dict__:
            cls.kernel_code = None

    @property
    def name(self) -> str:
        return type(self).__name__

    def select(self, sim: SlotState) -> int | list[int]:  # pragma: no cover - abstract
        """The requests to activate this slot: a count k (the k at the head of the FIFO queue) or
        a list of waiting request ids."""
        raise NotImplementedError

    def reset(self, rng: np.random.Generator) -> None:
        """Called once before a run with the run's generator (for randomised policies)."""
        object.__setattr__(self, "_rng", rng)

    def check_workload(self, workload: Workload) -> None:
        """Raise :class:`~numerics.errors.SpecError` when this policy cannot serve ``workload``
        at all (:class:`~numerics.sim.config.SimConfig` calls it); the base accepts any."""

    def check_classes(self, n_classes: int) -> None:
        """Raise :class:`~numerics.errors.SpecError` when this policy cannot serve ``n_classes``
        request classes (checked when a run starts and by
        :func:`~numerics.sim.config.check_policy`); the base accepts any number."""

    def kernel_params(self, sim: SlotState, slots: int) -> KernelParams:
        """The compiled kernel's inputs for a run of ``slots`` slots (called once, after
        :meth:`reset`, in place of every :meth:`select`); only for a ``kernel_code``."""
        raise NotImplementedError(f"{self.name} has no compiled kernel (kernel_code is None)")

    def spec(self) -> str:  # pragma: no cover - overridden
        return self.name


@dataclass(frozen=True)
class FlowControl(Policy):
    """Algorithm 2: activate B_t requests FIFO, B_t from a budget law with mean ``rate``."""

    kernel_caps_seqs: ClassVar[bool] = True  # its compiled rule applies max_seqs

    rate: float = 1.0
    budget: BudgetKind = "randomized"
    kernel_code: ClassVar[KernelCode | None] = KernelCode.BUDGET

    def __post_init__(self) -> None:
        super().__post_init__()
        if not math.isfinite(self.rate) or self.rate < 0:
            raise SpecError(f"flow rate must be ≥ 0 requests per slot, got {self.rate}")
        if self.budget not in BUDGET_LAWS:
            raise SpecError(f"flow budget must be one of {', '.join(BUDGET_LAWS)}, got {self.budget!r}")
        if self.budget == "deterministic" and self.rate != int(self.rate):
            raise SpecError(f"a deterministic budget needs an integer rate, got {self.rate}")

    def draw_budgets(self, rng: np.random.Generator, slots: int) -> np.ndarray:
        """B_1..B_slots, consuming the generator exactly as ``slots`` calls of :meth:`select`."""
        r = self.rate
        if self.budget == "deterministic":
            return np.full(slots, int(r), dtype=np.int64)
        if self.budget == "randomized":
            k = math.floor(r)
            return k + (rng.random(slots) < r - k).astype(np.int64)
        return rng.poisson(r, slots).astype(np.int64)

    def kernel_params(self, sim: SlotState, slots: int) -> KernelParams:
        """Every budget drawn up front from the run's generator (:meth:`draw_budgets`)."""
        return KernelParams(self.kernel_code, self.draw_budgets(self._rng, slots), (0.0, 0.0))

    def select(self, sim: SlotState) -> int:
        r = self.rate
        rng = self._rng
        if self.budget == "deterministic":
            b = int(r)
        elif self.budget == "randomized":
            k = math.floor(r)
            b = k + (1 if rng.random() < r - k else 0)
        else:
            b = int(rng.poisson(r))
        room = self.seq_room(sim)
        return min(b, len(sim.queue)) if room == math.inf else min(b, len(sim.queue), int(room))

    def spec(self) -> str:
        return f"flow:rate={self.rate:g},budget={self.budget},requeue={self.requeue}{self._seqs_spec()}"


@dataclass(frozen=True)
class ClassBudgets(Policy):
    """Algorithm 1: up to ``budgets[k]`` class-k requests per slot, FIFO within each class."""

    kernel_caps_seqs: ClassVar[bool] = True  # its compiled rule applies max_seqs

    budgets: tuple[int, ...] = (1,)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.budgets or any(int(b) != b or b < 0 for b in self.budgets):
            raise SpecError(f"budgets must be non-negative integers, got {self.budgets}")

    def check_classes(self, n_classes: int) -> None:
        if len(self.budgets) != n_classes:
            raise SpecError(
                f"budgets: {len(self.budgets)} budgets for a workload with {n_classes} classes; "
                "give one per class"
            )

    def select(self, sim: SlotState) -> list[int]:
        self.check_classes(sim.n_classes)
        room = self.seq_room(sim)
        if room != math.inf:  # the chosen requests in global queue order, as many as fit
            return sim.queue.first_of_classes([int(b) for b in self.budgets], int(room))
        out: list[int] = []
        for k, b in enumerate(self.budgets):
            out.extend(sim.queue.head_of_class(k, int(b)))
        return out

    def spec(self) -> str:
        return "budgets:" + ",".join(str(int(b)) for b in self.budgets) + self._seqs_spec()


@dataclass(frozen=True)
class Greedy(Policy):
    """vLLM-style: admit FCFS while usage + S + 1 ≤ (1 − watermark)·M and active < max_seqs."""

    watermark: float = 0.01
    kernel_code: ClassVar[KernelCode | None] = KernelCode.FCFS_MEMORY
    kernel_caps_seqs: ClassVar[bool] = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.watermark < 1:
            raise SpecError(f"greedy watermark must lie in [0, 1), got {self.watermark}")

    def kernel_params(self, sim: SlotState, slots: int) -> KernelParams:
        """(watermark, max_seqs or 0 for no cap)."""
        seqs = 0 if self.max_seqs is None else self.max_seqs
        return KernelParams(self.kernel_code, None, (float(self.watermark), float(seqs)))

    def select(self, sim: SlotState) -> int:
        return _admit_fcfs(sim, (1 - self.watermark) * sim.memory_tokens, self.seq_room(sim))

    def spec(self) -> str:
        return f"greedy:watermark={self.watermark:g}{self._seqs_spec()}"


@dataclass(frozen=True)
class AlphaProtection(Policy):
    """α-protection greedy: admit FCFS while the usage after admission stays ≤ (1 − α)·M."""

    alpha: float = 0.1
    kernel_code: ClassVar[KernelCode | None] = KernelCode.FCFS_MEMORY
    kernel_caps_seqs: ClassVar[bool] = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.alpha < 1:
            raise SpecError(f"alpha must lie in [0, 1), got {self.alpha}")

    def kernel_params(self, sim: SlotState, slots: int) -> KernelParams:
        """(α, max_seqs or 0 for no cap): greedy's rule with watermark α."""
        seqs = 0 if self.max_seqs is None else self.max_seqs
        return KernelParams(self.kernel_code, None, (float(self.alpha), float(seqs)))

    def select(self, sim: SlotState) -> int:
        return _admit_fcfs(sim, (1 - self.alpha) * sim.memory_tokens, self.seq_room(sim))

    def spec(self) -> str:
        return f"alpha:{self.alpha:g}{self._seqs_spec()}"


@dataclass(frozen=True)
class Reserve(Policy):
    """TensorRT-LLM GUARANTEED_NO_EVICT: reserve S + max_tokens per request; never overflows."""

    kernel_caps_seqs: ClassVar[bool] = True  # its compiled rule applies max_seqs

    max_tokens: int | None = None
    kernel_code: ClassVar[KernelCode | None] = KernelCode.RESERVE

    def check_workload(self, workload: Workload) -> None:
        if self.max_tokens is None and not math.isfinite(workload.max_decode):
            raise SpecError(
                f"reserve needs max=L: the decode lengths are unbounded (workload {workload.name!r}); "
                "give the reservation per request, e.g. reserve:max=2048"
            )

    def _cap(self, sim: SlotState) -> int:
        """L, the decode tokens reserved per request: ``max_tokens`` or the law's maximum."""
        cap = self.max_tokens if self.max_tokens is not None else sim.max_decode
        if cap is None:
            raise WorkloadError("reserve needs max=L when the decode law is unbounded (reserve:max=L)")
        return cap

    def kernel_params(self, sim: SlotState, slots: int) -> KernelParams:
        """(L, 0)."""
        return KernelParams(self.kernel_code, None, (float(self._cap(sim)), 0.0))

    def select(self, sim: SlotState) -> int:
        cap = self._cap(sim)
        # a request never holds more than m(S + L) tokens (m rounds up to whole blocks)
        reserved = sum(sim.mem(sim.S[i] + cap) for i in sim.active_ids())
        room = self.seq_room(sim)
        k = 0
        for rid in sim.queue:
            if k >= room:
                break
            need = sim.mem(sim.S[rid] + cap)
            if reserved + need > sim.memory_tokens:
                break
            reserved += need
            k += 1
        return k

    def spec(self) -> str:
        args = ("" if self.max_tokens is None else f",max={self.max_tokens}") + self._seqs_spec()
        return "reserve" + (":" + args[1:] if args else "")


@dataclass(frozen=True)
class MCSF(Policy):
    """Clairvoyant Memory-Constrained Shortest-First (knows O): a reference, not deployable.

    Sort the waiting requests by remaining decode length and admit the longest prefix for which
    memory stays ≤ M at every future completion time of the active and admitted requests.
    """

    kernel_caps_seqs: ClassVar[bool] = True  # its compiled rule applies max_seqs

    def select(self, sim: SlotState) -> list[int]:
        waiting = list(sim.queue)
        if not waiting or self.seq_room(sim) == 0:
            return []
        waiting.sort(key=lambda i: (sim.remaining(i), i))
        active = [(sim.current_memory(i), sim.remaining(i)) for i in sim.active_ids()]
        lo, hi = 0, len(waiting)
        while lo < hi:  # largest feasible prefix (feasibility is monotone in the prefix)
            mid = (lo + hi + 1) // 2
            cand = active + [(sim.activation_memory(i), sim.remaining(i)) for i in waiting[:mid]]
            if _future_feasible(cand, sim.memory_tokens):
                lo = mid
            else:
                hi = mid - 1
        room = self.seq_room(sim)
        return waiting[:lo] if room >= lo else waiting[:int(room)]

    def spec(self) -> str:
        return "mcsf" + (":" + self._seqs_spec()[1:] if self.max_seqs is not None else "")


def _draw_budget(rng: np.random.Generator, r: float, budget: BudgetKind) -> int:
    """One budget B_t with mean ``r`` from ``budget``'s law (as :meth:`FlowControl.select` draws)."""
    if budget == "deterministic":
        return int(r)
    if budget == "randomized":
        k = math.floor(r)
        return k + (1 if rng.random() < r - k else 0)
    return int(rng.poisson(r))


@dataclass(frozen=True)
class FlowFit(Policy):
    """Flow control with a fit check: B_t as in :class:`FlowControl` (same laws, same draws), and
    FIFO activation of at most min(B_t, max_seqs − n_active) head requests, stopping at the first
    whose activation memory does not fit: U + Σ m(S + g₀ + 1) ≤ M, with U this slot's usage after
    the active set's growth. In the slot model no admission is therefore dropped in its own slot;
    when memory never binds it makes exactly :class:`FlowControl`'s choices."""

    rate: float = 1.0
    budget: BudgetKind = "randomized"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not math.isfinite(self.rate) or self.rate < 0:
            raise SpecError(f"flowfit rate must be ≥ 0 requests per slot, got {self.rate}")
        if self.budget not in BUDGET_LAWS or (self.budget == "deterministic" and self.rate != int(self.rate)):
            raise SpecError(f"flowfit budget must be one of {', '.join(BUDGET_LAWS)} (deterministic: an "
                            f"integer rate), got {self.budget!r} with rate {self.rate}")

    def select(self, sim: SlotState) -> int:
        b = _draw_budget(self._rng, self.rate, self.budget)
        return _admit_fcfs(sim, sim.memory_tokens, min(b, self.seq_room(sim)))

    def spec(self) -> str:
        return f"flowfit:rate={self.rate:g},budget={self.budget},requeue={self.requeue}{self._seqs_spec()}"


@dataclass(frozen=True)
class AdaptiveFlow(Policy):
    r"""Adaptive flow control: :class:`FlowFit` with a rate r_t set online, no rate to tune.

    The rule, each slot t (only what a scheduler sees: queue length, n_active, usage U_t, M):

    * counts of the previous slot: with N_t = |queue| + n_active at decision time, k_{t−1} the
      requests it activated and e_{t−1} those the overflow check popped (it replays LIFO: while
      U > M pop the newest), the completions are c_{t−1} = n_active_{t−1} + k_{t−1} − e_{t−1} −
      n_active_t and the arrivals a_t = N_t − N_{t−1} + c_{t−1} (both ≥ 0; exact in the slot
      model, estimates under the step loop's batching modes);
    * λ̂_t: exponentially weighted mean of a_t (weight 1/256 per slot, bias-corrected);
    * r̂_max,t = M · Σ β^j c_{t−1−j} / Σ β^j U'_{t−1−j}, β = 1 − 1/4096, U' the usage after the
      overflow check — Little's law for memory (mean usage = completion rate × E[W], E[W] the
      memory-time per completed request, wasted memory-time included), so r̂_max estimates
      M / E[W] = λ_max; ∞ until 20 requests have completed;
    * ô_t: exponentially weighted mean (weight 1/256) of the overflow events per slot e_t;
      θ_t ← max(θ·(1 − 1/64), 0.05) in a slot with e_t > 0 and ô_t > ``target``, else
      min(θ + 1/1024, 1); θ_0 = 1;
    * r_t = min(λ̂_t·(1 + ``margin``), θ_t·r̂_max,t); B_t from the randomized law with mean r_t;
      activation as :class:`FlowFit` (FIFO, fit check, ``max_seqs``).
    """

    target: float = 0.01
    margin: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        for what, v in (("target", self.target), ("margin", self.margin)):
            if not math.isfinite(v) or v < 0:
                raise SpecError(f"adaptive {what} must be a finite number ≥ 0, got {v}")

    def reset(self, rng: np.random.Generator) -> None:
        super().reset(rng)
        # t, N, n_active, k, e (previous slot), Σλ, Σ1, Σc, Σu, completions, ô, θ, U' (this slot)
        object.__setattr__(self, "_st", [0, 0, 0, 0, 0, 0.0, 0.0, 0.0, 0.0, 0, 0.0, 1.0, 0])

    def rate_now(self) -> float:
        """r_t of the last decision (the rule above), for inspection."""
        return self._rate

    def select(self, sim: SlotState) -> int:
        st = self._st
        t, n_prev, act_prev, k_prev, e_prev = st[:5]
        n_now = len(sim.queue) + sim.n_active
        if t == 0:
            arrived = n_now
        else:
            done = max(act_prev + k_prev - e_prev - sim.n_active, 0)
            arrived = max(n_now - n_prev + done, 0)
            bw = 1 - 1 / 4096
            st[7], st[8], st[9] = bw * st[7] + done, bw * st[8] + st[12], st[9] + done
        bl = 1 - 1 / 256
        st[5], st[6] = bl * st[5] + arrived, bl * st[6] + 1
        # this slot's overflow check, replayed (under the fit check, only growth can overflow)
        usage, evicted, M = sim.usage, 0, sim.memory_tokens
        if usage > M:
            stack = list(sim.active_ids())
            while usage > M and stack:
                usage -= sim.current_memory(stack.pop())
                evicted += 1
        st[10] = bl * st[10] + evicted / 256
        st[11] = max(st[11] * (1 - 1 / 64), 0.05) if evicted and st[10] > self.target else \
            min(st[11] + 1 / 1024, 1.0)
        lam = st[5] / st[6]
        rmax = M * st[7] / st[8] if st[9] >= 20 and st[8] > 0 else math.inf
        r = min(lam * (1 + self.margin), st[11] * rmax)
        object.__setattr__(self, "_rate", r)
        k = _admit_fcfs(sim, M, min(_draw_budget(self._rng, r, "randomized"), self.seq_room(sim)))
        st[:5] = [t + 1, n_now, sim.n_active, k, evicted]
        if k:
            usage += sum(sim.activation_memory(rid) for rid in _head(sim, k))
        st[12] = usage
        return k

    def spec(self) -> str:
        return (f"adaptive:target={self.target:g},margin={self.margin:g},requeue={self.requeue}"
                f"{self._seqs_spec()}")


def _head(sim: SlotState, k: int) -> list[int]:
    """The first ``k`` waiting request ids in FIFO order."""
    out = []
    for rid in sim.queue:
        if len(out) >= k:
            break
        out.append(rid)
    return out


def _admit_fcfs(sim: SlotState, limit: float, cap: float = math.inf) -> int:
    """How many head-of-queue requests fit, in FIFO order, with this slot's memory ≤ ``limit``."""
    usage = sim.usage
    k = 0
    for rid in sim.queue:
        if k >= cap:
            break
        need = sim.activation_memory(rid)
        if usage + need > limit:
            break
        usage += need
        k += 1
    return k


def _future_feasible(items: list[tuple[int, int]], memory: int) -> bool:
    """items: (memory this slot, slots left incl. this one); check Σ memory ≤ M at each future slot.

    A request using m tokens now with ℓ slots left uses m + τ tokens τ slots from now (τ < ℓ).
    Usage is piecewise linear between completions, so checking τ = 0 and each τ = ℓ_j − 1 suffices.
    """
    if not items:
        return True
    mem = np.array([m for m, _ in items], dtype=np.int64)
    left = np.array([ell for _, ell in items], dtype=np.int64)
    taus = np.unique(np.concatenate([[0], left - 1]))
    alive = left[None, :] > taus[:, None]
    usage = (alive * (mem[None, :] + taus[:, None])).sum(axis=1)
    return bool(np.all(usage <= memory))


def _kv(text: str, spec: str) -> tuple[list[str], dict[str, str]]:
    pos, kw = [], {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        if "=" in part:
            k, _, v = part.partition("=")
            kw[k.strip()] = v.strip()
        else:
            pos.append(part)
    return pos, kw


def _num(text: str, spec: str, integer: bool = False) -> float:
    try:
        v = float(text)
    except ValueError:
        raise SpecError(f"policy {spec!r}: {text!r} is not a number") from None
    if integer and v != int(v):
        raise SpecError(f"policy {spec!r}: {text!r} must be an integer")
    return int(v) if integer else v


def parse_policy(spec: str) -> Policy:
    """Parse a policy spec: ``flow:rate=R[,budget=..][,requeue=head|tail]``, ``budgets:4,4,4``,
    ``greedy[:watermark=0.01]``, ``reserve[:max=L]``, ``alpha:0.2``, ``mcsf``,
    ``flowfit:rate=R[,budget=..]``, ``adaptive[:target=0.01][,margin=0.1]``; every one also
    takes ``max_seqs=N`` (a cap on the active requests) and ``requeue=head|tail``.

    >>> parse_policy("budgets:4,4,4,max_seqs=8").spec()
    'budgets:4,4,4,max_seqs=8'
    >>> parse_policy("flow:rate=2,max_seqs=16").max_seqs
    16
    """
    if not isinstance(spec, str) or not spec.strip():
        raise SpecError(f"a policy spec must be a non-empty string, got {spec!r}")
    name, _, args = spec.strip().partition(":")
    name = name.lower()
    pos, kw = _kv(args, spec)
    requeue = kw.pop("requeue", "head")
    if requeue not in REQUEUE:
        raise SpecError(f"policy {spec!r}: requeue must be head or tail, got {requeue!r}")
    seqs = kw.pop("max_seqs", None)
    common = {"max_seqs": None if seqs is None else _num(seqs, spec, integer=True)}

    def no_extra(allowed: set[str], npos: int = 0) -> None:
        extra = set(kw) - allowed
        if extra or len(pos) > npos:
            raise SpecError(
                f"policy {spec!r}: unexpected {', '.join(sorted(extra)) or 'positional values'}"
            )

    if name == "flow":
        no_extra({"rate", "budget"})
        if "rate" not in kw:
            raise SpecError(f"policy {spec!r}: flow needs rate=R (requests per slot)")
        return FlowControl(requeue, _num(kw["rate"], spec), kw.get("budget", "randomized"), **common)
    if name == "budgets":
        no_extra(set(), npos=len(pos))
        if not pos:
            raise SpecError(f"policy {spec!r}: budgets needs one integer per class, e.g. budgets:4,4,4")
        return ClassBudgets(requeue, tuple(_num(p, spec, integer=True) for p in pos), **common)
    if name == "greedy":
        no_extra({"watermark"})
        return Greedy(requeue, _num(kw.get("watermark", "0.01"), spec), **common)
    if name == "reserve":
        no_extra({"max"})
        cap = kw.get("max")
        return Reserve(requeue, None if cap is None else _num(cap, spec, integer=True), **common)
    if name == "alpha":
        no_extra({"alpha"}, npos=1)
        value = pos[0] if pos else kw.get("alpha")
        if value is None:
            raise SpecError(f"policy {spec!r}: alpha needs a value, e.g. alpha:0.2")
        return AlphaProtection(requeue, _num(value, spec), **common)
    if name == "mcsf":
        no_extra(set())
        return MCSF(requeue, **common)
    if name == "flowfit":
        no_extra({"rate", "budget"})
        if "rate" not in kw:
            raise SpecError(f"policy {spec!r}: flowfit needs rate=R (requests per slot)")
        return FlowFit(requeue, _num(kw["rate"], spec), kw.get("budget", "randomized"), **common)
    if name == "adaptive":
        no_extra({"target", "margin"})
        return AdaptiveFlow(requeue, _num(kw.get("target", "0.01"), spec),
                            _num(kw.get("margin", "0.1"), spec), **common)
    raise SpecError(
        f"policy {spec!r}: unknown policy {name!r}; use flow, flowfit, adaptive, budgets, greedy, "
        "reserve, alpha or mcsf"
    )
