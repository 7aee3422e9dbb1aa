"""The policies beyond the paper: :class:`FlowFit`, :class:`AdaptiveFlow` (and :class:`Lookahead`,
in :mod:`numerics.sim.policies.lookahead`).

Part of :mod:`numerics.sim.policies`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from numerics.errors import SpecError
from numerics.sim.policies.base import Policy, _admit_fcfs, _draw_budget, _head
from numerics.sim.policies.paper import _BudgetedFlow, _flow_spec
from numerics.sim.state import KernelCode, KernelParams, SlotState


@dataclass(frozen=True)
class FlowFit(_BudgetedFlow):
    """Flow control with a fit check: B_t as in :class:`FlowControl` (same laws, same draws), and
    FIFO activation of at most min(B_t, max_seqs − n_active) head requests, stopping at the first
    whose activation memory does not fit: U + Σ m(S + g₀ + 1) ≤ M, with U this slot's usage after
    the active set's growth. In the slot model no admission is therefore dropped in its own slot;
    when memory never binds it makes exactly :class:`FlowControl`'s choices."""

    #: The compiled rule: flow's pre-drawn budgets with the FCFS fit check under M.
    kernel_code: ClassVar[KernelCode | None] = KernelCode.BUDGET_FIT
    kernel_caps_seqs: ClassVar[bool] = True

    def select(self, sim: SlotState) -> int:
        return _admit_fcfs(sim, sim.memory_tokens, min(self.draw_budget(self._rng), self.seq_room(sim)))

    def kernel_params(self, sim: SlotState, slots: int) -> KernelParams:
        """Every budget drawn up front, as :class:`FlowControl` draws them (the same stream as
        ``slots`` calls of :meth:`select`); the fit limit is M itself (watermark 0)."""
        return KernelParams(self.kernel_code, self.draw_budgets(self._rng, slots), (0.0, 0.0))

    def spec(self) -> str:
        return f"{_flow_spec('flowfit', self.rate, self.budget)},requeue={self.requeue}{self._seqs_spec()}"


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
        if not (isinstance(self.target, int | float) and 0 <= self.target <= 1):
            raise SpecError(f"adaptive target is an overflow rate per slot: give 0 ≤ target ≤ 1 (0: back "
                            f"off at every eviction), got {self.target}")
        if not math.isfinite(self.margin) or self.margin < 0:
            raise SpecError(f"adaptive margin must be a finite number ≥ 0, got {self.margin}")

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
