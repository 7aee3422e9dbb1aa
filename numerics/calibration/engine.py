r"""A continuous-batching engine on a real KV pool that runs the simulator's policy objects.

Each slot is one real forward pass of a :class:`~numerics.calibration.backends.Backend`, with the
slot semantics of the simulator (docs/model.md):

1. requests whose arrival time is ≤ the clock join the FIFO waiting queue;
2. the policy (``policy.select(engine)``: the *same* objects as :mod:`numerics.sim.policies`)
   activates waiting requests; an activated request is prefilled in this slot;
3. while the memory U = Σ m(S + g + 1) (g tokens generated, m rounding up to whole blocks) exceeds
   M the most recently activated request is evicted (LIFO): its KV blocks are freed, its progress
   is lost (recompute) and it rejoins the queue at the policy's ``requeue`` end;
4. one forward pass: new requests prefill their prompt, the others decode one token; every active
   request emits one token, and one that has emitted O tokens completes and frees its blocks.

Decode lengths O are forced (end-of-sequence ignored, as serving benchmarks do). The physical pool
has M/b blocks of b tokens and every request holds ⌈(S + g)/b⌉ ≤ m(S + g + 1)/b of them, so the
scheduler's accounting (the simulator's) always fits the pool.

The clock is the measured wall time of each slot (policy, bookkeeping and forward pass); when the
engine is empty it jumps to the next arrival instead of sleeping. The engine implements
:class:`~numerics.sim.state.SlotState`, the interface every policy reads (the simulator's run
state implements the same one), with the same :class:`~numerics.sim.state.WaitingQueue` and
:class:`~numerics.sim.state.PagedMemory` accounting.

Examples
--------
>>> from numerics.calibration.backends import MODEL_PRESETS, make_backend
>>> from numerics.sim.policies import Greedy
>>> from numerics.data.traces import Trace
>>> be = make_backend("cpu", MODEL_PRESETS["tiny"], n_blocks=32, block_size=4)
>>> tr = Trace([5, 3, 8], [4, 2, 3], [0.0, 0.0, 0.001], "example", "lengths")
>>> res = run_engine(be, tr, memory_tokens=128, policy=Greedy())
>>> res.summary["completed"], int(res.records.evictions.sum())
(3, 0)
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from numerics.calibration.fit import CalibrationError
from numerics.sim.engine import CLOCK_TOL_S
from numerics.sim.policies import Policy
from numerics.sim.state import PagedMemory, SlotState, WaitingQueue

__all__ = ["EngineResult", "run_engine"]


@dataclass(frozen=True, eq=False)
class EngineResult:
    """``records`` (one row per request), ``timeseries`` (one row per slot) and ``summary``."""

    records: pd.DataFrame
    timeseries: pd.DataFrame
    summary: dict


class _Engine(PagedMemory, SlotState):
    """Run state; what policies read (:class:`~numerics.sim.state.SlotState`) has the simulator's
    names and meanings."""

    def __init__(self, backend, trace, memory_tokens: int, policy: Policy, seed: int,
                 max_decode: int | None) -> None:
        b = backend.allocator.block_size
        if memory_tokens % b or memory_tokens > backend.allocator.capacity_tokens:
            raise CalibrationError(
                f"memory M = {memory_tokens} tokens must be a multiple of the block size {b} and at "
                f"most the pool's {backend.allocator.capacity_tokens} tokens"
            )
        if not isinstance(policy, Policy):
            raise CalibrationError(f"policy must be a numerics.sim Policy, got {policy!r}")
        self.backend = backend
        self.memory_tokens = int(memory_tokens)
        self.block = b
        self.policy = policy
        self.rng = np.random.default_rng(seed)  # the policy's alone, as in the simulator
        policy.reset(self.rng)
        token_rng = np.random.default_rng([seed, 1])
        n = trace.n_requests
        self.n_req = n
        self.S = [int(v) for v in trace.prompt]
        self.O = [int(v) for v in trace.decode]
        if any(s + o > self.memory_tokens for s, o in zip(self.S, self.O, strict=True)):
            raise CalibrationError("a request has S + O > M: it can never complete; raise M or clip the laws")
        self.arrival = np.asarray(trace.timestamps_s, dtype=float)
        self.n_classes = 1
        self.queue = WaitingQueue(1, [0] * n)
        self.max_decode = max_decode if max_decode is not None else max(self.O, default=1)
        self.usage = 0
        self.n_active = 0
        self.stack: list[int] = []
        self.active = [False] * n
        self.g = [0] * n
        self.t = 0
        vocab = backend.config.vocab
        self.prompt_tokens = [token_rng.integers(vocab, size=max(s, 1)) for s in self.S]
        self.last_token = [0] * n
        self.first_act = np.full(n, np.nan)
        self.done = np.full(n, np.nan)
        self.n_evict = [0] * n
        self.wasted = [0] * n

    # ------------------------------------------------------------------ what policies read
    def activation_memory(self, rid: int) -> int:
        """Memory ``rid`` would hold if activated now (no progress is kept: recompute)."""
        return self.memory_of(rid, 0)

    def current_memory(self, rid: int) -> int:
        """Memory the active request ``rid`` holds this slot."""
        return self.memory_of(rid, self.g[rid])

    def remaining(self, rid: int) -> int:
        """Slots ``rid`` still needs, this one included."""
        return self.O[rid] - (self.g[rid] if self.active[rid] else 0)

    def active_ids(self):
        """The active request ids in activation order."""
        return (i for i in self.stack if self.active[i])

    # ------------------------------------------------------------------ the run
    def _release(self, rid: int) -> None:
        """Take ``rid`` out of the active set and back to the queue (head or tail)."""
        self.usage -= self.memory_of(rid, self.g[rid])
        self.backend.free(rid)
        self.active[rid] = False
        self.n_active -= 1
        (self.queue.push_front if self.policy.requeue == "head" else self.queue.push_back)(rid)

    def _evict(self, rid: int) -> None:
        self.n_evict[rid] += 1
        self.wasted[rid] += self.g[rid]
        self._release(rid)
        self.g[rid] = 0

    def _drop(self, rid: int) -> None:
        """Activated and evicted in the same slot, before any token: never activated (no
        eviction, no prefill, no first activation), counted as a drop on admission."""
        self._release(rid)
        if self.first_act[rid] == -1.0:
            self.first_act[rid] = np.nan

    def run(self, horizon_s: float, max_slots: int) -> pd.DataFrame:
        n, clock, nxt = self.n_req, 0.0, 0
        rows = []
        while self.t < max_slots and clock < horizon_s:
            t0 = time.perf_counter()
            while nxt < n and self.arrival[nxt] <= clock + CLOCK_TOL_S:
                self.queue.push_back(nxt)
                nxt += 1
            if self.n_active == 0 and len(self.queue) == 0:
                if nxt >= n:
                    break
                clock = max(clock, float(self.arrival[nxt]))  # idle: jump to the next arrival
                continue
            self.stack = [i for i in self.stack if self.active[i]]
            self.usage = sum(self.memory_of(i, self.g[i]) for i in self.stack)
            ids = self.queue.take(self.policy.select(self))
            new = set(ids)
            for rid in ids:
                self.active[rid] = True
                self.n_active += 1
                self.g[rid] = 0
                self.stack.append(rid)
                self.usage += self.memory_of(rid, 0)
                if np.isnan(self.first_act[rid]):
                    self.first_act[rid] = -1.0  # set to this slot's end below
            evicted = dropped = 0
            while self.usage > self.memory_tokens:
                rid = self.stack.pop()
                if not self.active[rid]:
                    continue
                if rid in new:
                    self._drop(rid)
                    new.discard(rid)
                    dropped += 1
                else:
                    self._evict(rid)
                    evicted += 1
            batch, kv = self.n_active, self.usage
            prefill = {rid: self.prompt_tokens[rid] for rid in self.stack if rid in new}
            decode = {rid: self.last_token[rid] for rid in self.stack if self.active[rid] and rid not in new}
            t1 = time.perf_counter()
            out = self.backend.step(prefill, decode)
            step_s = time.perf_counter() - t1
            finished = []
            for rid, tok in out.items():
                self.last_token[rid] = tok
                self.g[rid] += 1
                if self.g[rid] >= self.O[rid]:
                    finished.append(rid)
            for rid in finished:
                self.usage -= self.memory_of(rid, self.g[rid] - 1)
                self.backend.free(rid)
                self.active[rid] = False
                self.n_active -= 1
            slot_s = time.perf_counter() - t0
            end = clock + slot_s
            for rid in ids:
                if self.first_act[rid] == -1.0:
                    self.first_act[rid] = end
            for rid in finished:
                self.done[rid] = end
            rows.append((self.t, clock, slot_s, step_s, batch, kv, sum(len(v) for v in prefill.values()),
                         len(ids) - dropped, evicted, dropped, len(self.queue)))
            clock = end
            self.t += 1
        for rid in list(self.backend.lengths):
            self.backend.free(rid)
        self.arrived = nxt
        self.end_clock = clock
        return pd.DataFrame(rows, columns=["slot", "clock_s", "slot_s", "step_s", "batch", "kv_tokens",
                                           "prefill_tokens", "activations", "evictions",
                                           "dropped_on_admission", "queue"])


def run_engine(backend, trace, memory_tokens: int, policy: Policy, seed: int = 0,
               horizon_s: float | None = None, max_slots: int = 10**7,
               max_decode: int | None = None) -> EngineResult:
    """Serve a trace (arrival times in seconds, prompt and decode lengths) on ``backend``.

    Parameters
    ----------
    backend : Backend
        Its pool must hold ≥ ``memory_tokens`` tokens.
    trace : numerics.data.traces.Trace
        With timestamps (seconds).
    memory_tokens : int
        M, a multiple of the backend's block size.
    policy : Policy
        Any :mod:`numerics.sim.policies` object (``keep-progress`` eviction is not offered).
    seed : int
        Prompt token ids and the policy's generator.
    horizon_s : float, optional
        Stop when the clock passes it (default: run until every request has completed).
    max_slots : int
        Stop after this many slots.
    max_decode : int, optional
        The cap L that ``reserve`` uses (default: the trace's largest decode length).

    Returns
    -------
    EngineResult
        ``records``: request, prompt, decode, arrival_s, first_activation_s (end of the first
        activation slot), completion_s (NaN if unfinished), ttft_s, latency_s, evictions,
        wasted_tokens. ``timeseries``: slot, clock_s (start), slot_s, step_s (forward pass only),
        batch, kv_tokens, prefill_tokens, activations (that produced a token), evictions,
        dropped_on_admission (activated and evicted in the same slot: never activated), queue.
        ``summary``: counts.
    """
    if trace.timestamps_s is None:
        raise CalibrationError("the engine needs arrival timestamps in the trace")
    eng = _Engine(backend, trace, memory_tokens, policy, seed, max_decode)
    ts = eng.run(math.inf if horizon_s is None else float(horizon_s), int(max_slots))
    arr = eng.arrival
    rec = pd.DataFrame({
        "request": np.arange(eng.n_req), "prompt": eng.S, "decode": eng.O, "arrival_s": arr,
        "first_activation_s": np.where(eng.first_act < 0, np.nan, eng.first_act),
        "completion_s": eng.done, "evictions": eng.n_evict, "wasted_tokens": eng.wasted,
    })
    rec["ttft_s"] = rec.first_activation_s - rec.arrival_s
    rec["latency_s"] = rec.completion_s - rec.arrival_s
    summary = {
        "policy": policy.spec(), "memory_tokens": eng.memory_tokens, "block_size": eng.block,
        "slots": int(eng.t), "duration_s": float(eng.end_clock), "arrived": int(eng.arrived),
        "completed": int(np.isfinite(eng.done).sum()), "evictions": int(sum(eng.n_evict)),
        "dropped_on_admission": int(ts.dropped_on_admission.sum()) if len(ts) else 0,
        "kv_peak_tokens": int(ts.kv_tokens.max()) if len(ts) else 0,
        "step_share_of_slot": float(ts.step_s.sum() / ts.slot_s.sum()) if len(ts) else float("nan"),
    }
    return EngineResult(rec, ts, summary)
