r"""The slot engine: exactly the slot model of docs/model.md, with event-driven bookkeeping.

Each slot t, in this order:

1. arrivals join the waiting queue (FIFO; they hold no memory);
2. the policy activates waiting requests (prefill is instant);
3. overflow check: the memory the active set needs this slot is U = Σ m(S + g + 1) (g tokens
   already generated, m(x) = b·⌈x/b⌉ for paged blocks of b tokens); while U > M the most recently
   activated request is evicted (LIFO), loses its progress (``recompute``; or keeps it,
   ``keep-progress``) and rejoins the queue at its head or tail;
4. every active request emits one token; one that emits its O-th token completes and frees its
   memory at the end of the slot.

Accounting (docs/model.md, "Accounting"). A request popped in step 3 of the very slot that
activated it has emitted nothing in that activation: the activation is void. It is **dropped on
admission** — counted on its own (``n_drop``, ``total_dropped``, ``win_dropped``), not as an
eviction, an activation or a prefill (its prefill tokens are taken back from the slot's step
time), and it loses nothing (its kept progress, if any, stays). It rejoins the queue exactly as an
evicted request would (head or tail), so the physical schedule is the same as before; only its
accounting differs. The first and last activations that the records report (``first_act``,
``last_act``) are the activations that survived step 3, i.e. that produced a token; ``act_slot``
is the engine's own slot of the current activation (it is also set by a void one).

Trace replay keeps each request's class when the trace carries one (``trace.class_index``: an int
per request, into the workload's classes); otherwise every replayed request is of class 0.

The engine never touches a request between its events: memory grows by one token per active
request per slot (b = 1), so U is updated in O(1) per slot plus O(1) per arrival, activation,
eviction and completion (for b > 1, by the block-boundary events). Same seed ⇒ identical output.

Real-engine batching (``batching`` prefill-first or chunked, ``admit_after_preemption=False``;
docs/engines.md) runs on the general step loop :class:`_StepSim`, O(active) per slot: (1)
arrivals; (2) the running requests get their tokens in activation order — one decode token each,
or the next prompt chunk, under the token budget (prefill-first: none yet); with chunked or
without admission after preemption, LIFO preemption while U > M; (3) the policy's choice, cut to
the step's budget (none after a preemption when so configured); (4) the overflow check, LIFO
(drops on admission first); prefill-first: a step whose admissions all dropped is a decode step
(every running request decodes, then the overflow check); (5) tokens and completions. A request
emits its first token of an activation in the slot its prefill completes: that slot is its
activation slot for TTFT (``first_act``/``last_act``); ``act_slot`` is its admission slot. The
step is priced τ(requests emitting, KV tokens of the requests it processed, prompt tokens it
prefilled).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from numerics.errors import WorkloadError
from numerics.sim.config import ARRIVALS, EVICTION_MODES, SimConfig
from numerics.sim.state import PagedMemory, SlotState, WaitingQueue

__all__ = ["ARRIVALS", "CLOCK_TOL_S", "EVICTION_MODES", "PagedMemory", "SimConfig", "WaitingQueue", "run"]

#: Trace replay: a timestamp within 1 ns after a slot's start counts as arrived by then (the wall
#: clock is a float sum of step times, so 10 × 0.1 s may come out as 0.9999999999999999 s).
CLOCK_TOL_S = 1e-9
#: The Python engine's per-request state, built on first use (:meth:`_Sim._python_state`).
_PYTHON_STATE = frozenset({"act_slot", "g0", "first_act", "last_act", "done_slot", "n_evict", "n_drop",
                           "wasted", "epoch", "active", "queue"})


@dataclass
class _Trajectory:
    usage: list = field(default_factory=list)
    queue: list = field(default_factory=list)
    active: list = field(default_factory=list)
    activations: list = field(default_factory=list)
    evictions: list = field(default_factory=list)
    dropped: list = field(default_factory=list)
    clock: list = field(default_factory=list)
    slot: list = field(default_factory=list)
    #: Prompt tokens the slot prefilled (its step time's P) and requests that emitted a token.
    prefill: list = field(default_factory=list)
    batch: list = field(default_factory=list)


class _Sim(PagedMemory, SlotState):
    """Mutable run state; policies read what :class:`~numerics.sim.state.SlotState` declares.

    The invariant checker (:class:`numerics.sim.checks.InvariantChecker`) and the compiled engine
    read more: the per-request arrays (``O``, ``cls``, ``g0``, ``act_slot``, ``active``, ...).
    """

    def __init__(self, cfg: SimConfig, check: Callable[[_Sim, int], None] | None = None) -> None:
        self.cfg = cfg
        self.memory_tokens = int(cfg.memory_tokens)
        self.block = int(cfg.block_size)
        self.n_classes = len(cfg.workload.classes)
        self.rng = np.random.default_rng(cfg.seed)
        cfg.policy.reset(self.rng)
        self.check = check
        self._generate_requests()
        self.usage = 0
        self.n_active = 0
        self.stack: list[int] = []  # active ids in activation order (LIFO eviction from the end)
        self.keep = cfg.eviction == "keep-progress"
        md = cfg.workload.max_decode
        self.max_decode = int(md) if math.isfinite(md) else None

    # ------------------------------------------------------------------ requests
    def _generate_requests(self) -> None:
        cfg, rng, wl = self.cfg, self.rng, self.cfg.workload
        t_slots = cfg.slots
        if cfg.arrivals == "trace":
            tr = cfg.trace
            n = tr.n_requests
            self.arrival_time = np.asarray(tr.timestamps_s, dtype=float)
            self.arrival_slot = np.full(n, -1, dtype=np.int64)  # filled online
            s, o = np.asarray(tr.prompt), np.asarray(tr.decode)
            cls = _trace_classes(tr, n, self.n_classes)
        else:
            lam = cfg.total_rate
            if cfg.arrivals == "poisson":
                # independent Poisson(λ) counts per slot, drawn as a Poisson(λT) total spread
                # uniformly over the T slots (the same law: given the total, per-slot Poisson
                # counts are multinomial with equal cells); sorted, the arrival slot of each
                # request, without a per-slot array
                n = int(rng.poisson(lam * t_slots))
                self.arrival_slot = rng.integers(0, t_slots, n, dtype=np.int64)
                self.arrival_slot.sort()
            else:
                if cfg.arrivals == "deterministic":
                    edges = np.floor(lam * np.arange(t_slots + 1) + 1e-9).astype(np.int64)
                    counts = np.diff(edges)
                else:
                    counts = (rng.random(t_slots) < lam).astype(np.int64)
                n = int(counts.sum())
                self.arrival_slot = np.repeat(np.arange(t_slots), counts)
            self.arrival_time = None
            cls, s, o = wl.sample(n, rng)
        if n and np.any(o < 1):
            raise WorkloadError("decode lengths must be ≥ 1")
        self.n_req = n
        # numpy arrays here (the compiled engine takes them as they are); the Python engine turns
        # them into lists before its loop, where list indexing is several times faster.
        self.S = np.asarray(s, dtype=np.int64)
        self.O = np.asarray(o, dtype=np.int64)
        self.cls = np.asarray(cls, dtype=np.int64)

    def _python_state(self) -> None:
        """Build the Python engine's per-request lists and waiting queue (once).

        Only the Python loops need them (~100 bytes per request); the compiled engine never
        does, so they are built on first use: by :meth:`run`, or by the first read of one of
        :data:`_PYTHON_STATE` (``__getattr__``), e.g. by a policy or a checker that inspects a
        fresh state.
        """
        if "queue" in self.__dict__:
            return
        n = self.n_req
        self.act_slot = [-1] * n  # slot of the current activation (a void one included)
        self.g0 = [0] * n  # progress kept at the current activation
        self.first_act = [-1] * n  # first activation that produced a token
        self.last_act = [-1] * n  # last activation that produced a token
        self.done_slot = [-1] * n
        self.n_evict = [0] * n
        self.n_drop = [0] * n  # void activations: dropped in their activation slot
        self.wasted = [0] * n
        self.epoch = [0] * n
        self.active = [False] * n
        self.queue = WaitingQueue(self.n_classes, self.cls.tolist())  # set last: the built flag

    def __getattr__(self, name: str):
        # called only for a missing attribute: the lazily built Python state, else the usual error
        if name in _PYTHON_STATE and "queue" not in self.__dict__ and "cls" in self.__dict__:
            self._python_state()
            return getattr(self, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # ------------------------------------------------------------------ memory helpers
    def activation_memory(self, rid: int) -> int:
        """Memory a waiting request would hold if activated now (its kept progress included)."""
        return self.memory_of(rid, self.g0[rid] if self.keep else 0)

    def generated(self, rid: int, t: int) -> int:
        """Tokens the active request ``rid`` has generated by the start of slot ``t``."""
        return self.g0[rid] + (t - self.act_slot[rid])

    def current_memory(self, rid: int) -> int:
        """Memory the active request ``rid`` holds this slot."""
        return self.memory_of(rid, self.generated(rid, self.t))

    def remaining(self, rid: int) -> int:
        """Slots left including the current one (clairvoyant policies only)."""
        g = self.generated(rid, self.t) if self.active[rid] else (self.g0[rid] if self.keep else 0)
        return self.O[rid] - g

    def active_ids(self):
        """The active request ids in activation order."""
        return (i for i in self.stack if self.active[i])

    # ------------------------------------------------------------------ the run
    def run(self):
        self._python_state()
        self.S, self.O = self.S.tolist(), self.O.tolist()
        cfg = self.cfg
        t_slots, stride = cfg.slots, cfg.stride
        done_at: dict[int, list[tuple[int, int]]] = {}
        grow_at: dict[int, list[tuple[int, int]]] = {}  # block-boundary events (b > 1)
        traj = _Trajectory()
        step = cfg.step_time
        clock = 0.0
        self.clock_at = np.zeros(t_slots + 1)
        self.end_clock = np.zeros(t_slots)
        next_arrival = 0
        completed = 0
        total_evictions = 0
        total_dropped = 0
        tokens_generated = 0
        win_tokens = 0
        win_wasted = 0
        win_evictions = 0
        win_dropped = 0
        win_active_max = 0
        stack_dead = 0
        for t in range(t_slots):
            self.t = t
            self.clock_at[t] = clock
            next_arrival = self._arrive(t, clock, next_arrival)  # 1. arrivals
            # growth of the requests that stay active from the previous slot
            if self.block == 1:
                self.usage += self.n_active
            else:
                for rid, ep in grow_at.pop(t, ()):
                    if self.epoch[rid] == ep and self.active[rid]:
                        self.usage += self.block
                        self._schedule_growth(rid, t + self.block, grow_at)
            # 2. activation
            ids = self.queue.take(cfg.policy.select(self))
            prefill = 0
            base = len(self.stack)  # this slot's activations go on the stack above it
            for rid in ids:
                g = self.g0[rid] if self.keep else 0
                self.g0[rid] = g
                self.act_slot[rid] = t
                self.active[rid] = True
                self.n_active += 1
                self.usage += self.memory_of(rid, g)
                self.stack.append(rid)
                prefill += self.S[rid] + (g if self.keep else 0)
                done_at.setdefault(t + self.O[rid] - g - 1, []).append((rid, self.epoch[rid]))
                if self.block > 1:
                    self._schedule_growth(rid, t + 1, grow_at)
            # 3. overflow check, LIFO eviction (a request activated in this slot is dropped)
            evicted = dropped = 0
            in_window = t >= cfg.warmup
            while self.usage > self.memory_tokens:
                rid = self.stack.pop()
                if not self.active[rid]:
                    stack_dead -= 1
                    continue
                g = self.generated(rid, t)
                self.usage -= self.memory_of(rid, g)
                self.active[rid] = False
                self.n_active -= 1
                self.epoch[rid] += 1
                if self.act_slot[rid] == t:  # void activation: nothing emitted, nothing lost
                    self.n_drop[rid] += 1
                    dropped += 1
                    prefill -= self.S[rid] + g  # g = the kept progress g₀ (0 under recompute)
                else:
                    self.n_evict[rid] += 1
                    evicted += 1
                    if self.keep:
                        self.g0[rid] = g
                    else:
                        self.wasted[rid] += g
                        self.g0[rid] = 0
                        if in_window:
                            win_wasted += g
                if cfg.policy.requeue == "head":
                    self.queue.push_front(rid)
                else:
                    self.queue.push_back(rid)
            for rid in self.stack[base:]:  # this slot's activations that stay: they emit a token
                if self.first_act[rid] < 0:
                    self.first_act[rid] = t
                self.last_act[rid] = t
            total_evictions += evicted
            total_dropped += dropped
            self.total_evictions = total_evictions
            self.total_dropped = total_dropped
            if in_window:
                win_evictions += evicted
                win_dropped += dropped
                if self.n_active > win_active_max:
                    win_active_max = self.n_active
            if self.check is not None:
                self.check(self, t)
            # record (usage after eviction = memory used during this slot)
            if t % stride == 0:
                traj.slot.append(t)
                traj.usage.append(self.usage)
                traj.queue.append(len(self.queue))
                traj.active.append(self.n_active)
                traj.activations.append(len(ids) - dropped)
                traj.evictions.append(evicted)
                traj.dropped.append(dropped)
                traj.clock.append(clock)
                traj.prefill.append(prefill)
                traj.batch.append(self.n_active)
            batch, kv = self.n_active, self.usage
            # 4. one token per active request; completions free memory at the end of the slot
            tokens_generated += self.n_active
            if in_window:
                win_tokens += self.n_active
            for rid, ep in done_at.pop(t, ()):
                if self.epoch[rid] != ep or not self.active[rid]:
                    continue
                self.usage -= self.memory_of(rid, self.O[rid] - 1)
                self.active[rid] = False
                self.n_active -= 1
                self.done_slot[rid] = t
                completed += 1
                stack_dead += 1
            if stack_dead > 64 and stack_dead > len(self.stack) // 2:
                self.stack = [i for i in self.stack if self.active[i]]
                stack_dead = 0
            if step is not None:
                clock += float(step.seconds(batch, kv, prefill))
            self.end_clock[t] = clock
        self.clock_at[t_slots] = clock
        self.arrived = next_arrival
        self.completed = completed
        self.total_evictions = total_evictions
        self.total_dropped = total_dropped
        self.tokens_generated = tokens_generated
        self.win_tokens = win_tokens
        self.win_wasted = win_wasted
        self.win_evictions = win_evictions
        self.win_dropped = win_dropped
        self.win_active_max = win_active_max
        return traj

    def _arrive(self, t: int, clock: float, nxt: int) -> int:
        """Queue (FIFO) the requests from index ``nxt`` on that arrive in slot t: arrival slot t, or
        arrival time ≤ the slot's start clock (+ CLOCK_TOL_S), which then sets the arrival slot to t.
        Returns the index of the first request not yet arrived."""
        n = self.n_req
        while nxt < n and (self.arrival_slot[nxt] == t if self.arrival_time is None
                           else self.arrival_time[nxt] <= clock + CLOCK_TOL_S):
            self.arrival_slot[nxt] = t
            self.queue.push_back(nxt)
            nxt += 1
        return nxt

    def _schedule_growth(self, rid: int, t_from: int, grow_at) -> None:
        """Next slot ≥ t_from at which the request's memory crosses into a new block."""
        b = self.block
        g_from = self.generated(rid, t_from)
        tokens = self.S[rid] + g_from + 1  # tokens held in slot t_from
        # memory grows at the first slot whose token count is ≡ 1 (mod b)
        delta = (1 - tokens) % b
        grow_at.setdefault(t_from + delta, []).append((rid, self.epoch[rid]))


class _StepSim(_Sim):
    """The general step loop (docs/engines.md): explicit per-request progress, every batching option.

    Runs a config whose :attr:`SimConfig.uses_step_engine <numerics.sim.config.SimConfig.uses_step_engine>`
    is true (prefill-first or chunked batching, or no admission after a preemption); it also runs the
    paper's model exactly as :class:`_Sim` does (a test checks it), at O(active) per slot instead of
    O(1). Per request it keeps ``gen`` (tokens generated so far: before this slot's token, kept
    progress included), ``pf`` (KV tokens prefilled in the current activation, after this slot's
    chunk), ``target`` (the activation's prefill, S + kept progress), ``hold`` (memory held this
    slot), and for this slot ``chunk`` (prompt tokens prefilled), ``used`` (tokens of the step's
    budget) and ``emits`` (whether it emits a token). Memory: a request that emits holds
    m(S + g + 1), one that is still prefilling m(pf), a stalled one what it held before.
    """

    def __init__(self, cfg: SimConfig, check: Callable[[_Sim, int], None] | None = None) -> None:
        super().__init__(cfg, check)
        n = self.n_req
        self.gen = [0] * n
        self.pf = [0] * n
        self.target = [0] * n
        self.hold = [0] * n
        self.chunk = [0] * n
        self.used = [0] * n
        self.emits = [False] * n
        self.batching = cfg.batching
        self.budget = cfg.max_batched_tokens
        self.admit_after = cfg.admits_after_preemption

    # ------------------------------------------------------------------ what policies read
    def generated(self, rid: int, t: int) -> int:
        """Tokens ``rid`` has generated (kept progress included) before this slot's token."""
        return self.gen[rid]

    def current_memory(self, rid: int) -> int:
        """Memory the active request ``rid`` holds this slot, as scheduled so far."""
        return self.hold[rid]

    def remaining(self, rid: int) -> int:
        """Tokens ``rid`` still has to emit (clairvoyant policies only)."""
        return self.O[rid] - self.gen[rid]

    # ------------------------------------------------------------------ the slot's pieces
    def _set_hold(self, rid: int, tokens: int) -> None:
        h = self.mem(tokens)
        self.usage += h - self.hold[rid]
        self.hold[rid] = h

    def _schedule(self, rid: int, left: float) -> float:
        """Give the active ``rid`` its tokens of this slot from ``left`` (decode 1, or the next
        prompt chunk; a budget of ∞ serves everyone); return what is left."""
        pf, target = self.pf[rid], self.target[rid]
        self.chunk[rid] = 0
        if pf >= target:  # decoding
            ok = left >= 1
            self.used[rid] = int(ok)
            self.emits[rid] = ok
            if ok:
                self._set_hold(rid, self.S[rid] + self.gen[rid] + 1)
            return left - ok
        c = int(min(target - pf, left))
        self.chunk[rid] = self.used[rid] = c
        self.pf[rid] = pf + c
        self.emits[rid] = pf + c == target
        self._set_hold(rid, target + 1 if pf + c == target else pf + c)
        self.prefill += c
        return left - c

    def _stall(self, rid: int) -> None:
        self.chunk[rid] = self.used[rid] = 0
        self.emits[rid] = False

    def _fit(self, choice, left: float):
        """The policy's ``choice`` cut to what the step's token budget can take: prefill-first
        admits while the prompts fit (the first always), chunked while tokens are left."""
        if self.budget is None or self.batching == "mixed":
            return choice
        ids = list(itertools.islice(self.queue, choice)) if isinstance(choice, int | np.integer) \
            else list(choice)
        total, k = 0, 0
        for rid in ids:
            need = self.S[rid] + (self.g0[rid] if self.keep else 0)
            if self.batching == "prefill-first":
                if k and total + need > left:
                    break
            elif left - total <= 0:
                break
            else:
                need = max(need, 1)  # an empty prompt's first token is decoded: one token
            total += need
            k += 1
        if isinstance(choice, int | np.integer):
            return k
        return ids[:k]

    def _evict(self, t: int, in_window: bool) -> None:
        """Pop the active stack (LIFO) while memory exceeds M: a request activated in this slot is
        dropped on admission, an older one evicted; their tokens go back to the step's budget."""
        stack = self.stack
        while self.usage > self.memory_tokens:
            rid = stack.pop()
            self.usage -= self.hold[rid]
            self.hold[rid] = 0
            self.active[rid] = False
            self.n_active -= 1
            self.epoch[rid] += 1
            self.left += self.used[rid]
            self.prefill -= self.chunk[rid]
            self.pf[rid] = 0
            self.emits[rid] = False
            if self.act_slot[rid] == t:
                self.n_drop[rid] += 1
                self.slot_dropped += 1
            else:
                self.n_evict[rid] += 1
                self.slot_evicted += 1
                g = self.gen[rid]
                if self.keep:
                    self.g0[rid] = g
                else:
                    self.wasted[rid] += g
                    self.gen[rid] = self.g0[rid] = 0
                    if in_window:
                        self.win_wasted += g
            if self.cfg.policy.requeue == "head":
                self.queue.push_front(rid)
            else:
                self.queue.push_back(rid)

    # ------------------------------------------------------------------ the run
    def run(self):
        self._python_state()
        self.S, self.O = self.S.tolist(), self.O.tolist()
        cfg = self.cfg
        S, O, gen, hold, emits = self.S, self.O, self.gen, self.hold, self.emits
        mode, keep, step = self.batching, self.keep, cfg.step_time
        t_slots, stride = cfg.slots, cfg.stride
        budget = math.inf if self.budget is None else self.budget
        preempt_first = mode == "chunked" or (mode == "mixed" and not self.admit_after)
        traj = _Trajectory()
        clock = 0.0
        self.clock_at = np.zeros(t_slots + 1)
        self.end_clock = np.zeros(t_slots)
        next_arrival = 0
        completed = tokens_generated = 0
        self.total_evictions = self.total_dropped = 0
        self.win_tokens = self.win_wasted = self.win_evictions = self.win_dropped = 0
        self.win_active_max = 0
        for t in range(t_slots):
            self.t = t
            self.clock_at[t] = clock
            next_arrival = self._arrive(t, clock, next_arrival)  # 1. arrivals
            in_window = t >= cfg.warmup
            self.prefill = self.slot_evicted = self.slot_dropped = 0
            # 2. the running requests: decodes and prompt chunks in activation order (prefill-first
            # stalls them until it knows whether the step prefills)
            left = budget
            for rid in self.stack:
                if mode == "prefill-first":
                    self._stall(rid)
                else:
                    left = self._schedule(rid, left)
            self.left = left
            if preempt_first:  # preemption of running requests before admission (vLLM V1)
                self._evict(t, in_window)
            # 3. admission: the policy's choice, cut to the step's budget
            choice = cfg.policy.select(self)
            if self.slot_evicted and not self.admit_after:
                choice = 0  # no admission in a step that preempted
            ids = self.queue.take(self._fit(choice, self.left))
            base = len(self.stack)
            for rid in ids:
                g = self.g0[rid] if keep else 0
                self.g0[rid] = gen[rid] = g
                self.act_slot[rid] = t
                self.active[rid] = True
                self.n_active += 1
                self.stack.append(rid)
                self.target[rid] = S[rid] + g
                self.pf[rid] = 0
                hold[rid] = 0
                self.left = self._schedule(rid, self.left if mode == "chunked" else math.inf)
            # 4. overflow check, LIFO (this slot's activations first: drops on admission)
            self._evict(t, in_window)
            if mode == "prefill-first" and len(self.stack) <= base:  # no prefill: a decode step
                for rid in self.stack:
                    self._schedule(rid, math.inf)
                self._evict(t, in_window)
            for rid in self.stack:  # first token of an activation: TTFT's slot
                if emits[rid] and gen[rid] == self.g0[rid]:
                    if self.first_act[rid] < 0:
                        self.first_act[rid] = t
                    self.last_act[rid] = t
            evicted, dropped = self.slot_evicted, self.slot_dropped
            self.total_evictions += evicted
            self.total_dropped += dropped
            if in_window:
                self.win_evictions += evicted
                self.win_dropped += dropped
                self.win_active_max = max(self.win_active_max, self.n_active)
            if self.check is not None:
                self.check(self, t)
            batch = kv = 0
            for rid in self.stack:
                if emits[rid]:
                    batch += 1
                if emits[rid] or self.used[rid]:
                    kv += hold[rid]
            if t % stride == 0:
                traj.slot.append(t)
                traj.usage.append(self.usage)
                traj.queue.append(len(self.queue))
                traj.active.append(self.n_active)
                traj.activations.append(max(len(self.stack) - base, 0))
                traj.evictions.append(evicted)
                traj.dropped.append(dropped)
                traj.clock.append(clock)
                traj.prefill.append(self.prefill)
                traj.batch.append(batch)
            # 5. tokens; a request that emits its O-th token completes and frees its memory
            tokens_generated += batch
            if in_window:
                self.win_tokens += batch
            kept = []
            for rid in self.stack:
                if emits[rid]:
                    gen[rid] += 1
                    if gen[rid] == O[rid]:
                        self.usage -= hold[rid]
                        hold[rid] = 0
                        self.pf[rid] = 0
                        self.active[rid] = False
                        self.n_active -= 1
                        self.done_slot[rid] = t
                        completed += 1
                        continue
                kept.append(rid)
            self.stack = kept
            if step is not None:
                clock += float(step.seconds(batch, kv, self.prefill))
            self.end_clock[t] = clock
        self.clock_at[t_slots] = clock
        self.arrived = next_arrival
        self.completed = completed
        self.tokens_generated = tokens_generated
        return traj


def _trace_classes(trace, n: int, n_classes: int) -> np.ndarray:
    """The class of every replayed request: ``trace.class_index`` when the trace has one, else 0.

    Raises :class:`~numerics.errors.WorkloadError` when the labels do not index the workload's
    ``n_classes`` classes (one integer in [0, n_classes) per request).
    """
    labels = getattr(trace, "class_index", None)
    if labels is None:
        return np.zeros(n, dtype=np.int64)
    arr = np.asarray(labels)
    if arr.shape != (n,) or (n and not np.issubdtype(arr.dtype, np.integer)):
        raise WorkloadError(f"the trace's class_index must hold one integer class per request "
                            f"({n}), got an array of shape {arr.shape} and dtype {arr.dtype}")
    if n and (arr.min() < 0 or arr.max() >= n_classes):
        raise WorkloadError(f"the trace's class labels run from {arr.min()} to {arr.max()}, but the "
                            f"workload has {n_classes} classes; replay it with the trace's own "
                            "workload (Trace.to_workload) or relabel the classes 0..K-1")
    return arr.astype(np.int64)


def run(cfg: SimConfig, check: Callable[[_Sim, int], None] | None = None,
        loop: Literal["auto", "event", "step"] = "auto") -> tuple[_Sim, _Trajectory]:
    """Run one simulation on the Python engine → (final run state, recorded trajectory); see
    :func:`numerics.sim.simulate` for the public entry point.

    ``loop``: the event-driven loop of the paper's model (``event``), the general step loop of
    every batching option (``step``, :class:`_StepSim`), or the one the config needs (``auto``).
    """
    if loop not in ("auto", "event", "step"):
        raise WorkloadError(f"loop must be auto, event or step, got {loop!r}")
    if loop == "event" and cfg.uses_step_engine:
        raise WorkloadError(f"the event-driven loop runs the paper's model only, not batching "
                            f"{cfg.batching!r} with admission after preemption "
                            f"{cfg.admits_after_preemption}")
    stepped = loop == "step" or (loop == "auto" and cfg.uses_step_engine)
    sim = (_StepSim if stepped else _Sim)(cfg, check)
    traj = sim.run()
    return sim, traj
