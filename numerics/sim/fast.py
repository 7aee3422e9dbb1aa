"""A compiled (numba) twin of the slot engine for the FIFO policies.

Same semantics and the same random stream as :mod:`numerics.sim.engine`, so the same seed gives
*identical* records and time series (a test checks it); it covers ``flow``, ``greedy``, ``alpha``
and ``reserve`` with block size 1, recompute or keep-progress eviction, Poisson / deterministic /
Bernoulli arrivals, and a step-time clock. Everything else (per-class budgets, MC-SF, paged blocks,
trace replay, per-slot invariant checks) runs on the Python engine.

Which policies it covers is the policies' own declaration: a policy with a ``kernel_code``
(:class:`~numerics.sim.state.KernelCode`) hands the kernel its inputs through ``kernel_params``.

numba is imported only when a fast run is requested.
"""

from __future__ import annotations

import numpy as np

__all__ = ["fast_supported", "run_fast"]

#: The kernel's codes of the step-time kinds (-1: no clock).
_STEP_CODES = {None: -1, "const": 0, "linear": 1, "staircase": 2}
_KERNEL = None


def fast_supported(cfg) -> bool:
    """True when :func:`run_fast` can run this configuration."""
    return (
        cfg.policy.kernel_code is not None
        and cfg.block_size == 1
        and cfg.arrivals != "trace"
    )


def _kernel():
    global _KERNEL
    if _KERNEL is None:
        from numerics.sim._kernel import kernel

        _KERNEL = kernel
    return _KERNEL


def run_fast(sim):
    """Run the compiled kernel on a prepared :class:`numerics.sim.engine._Sim`; fill its state."""
    cfg = sim.cfg
    pol = cfg.policy
    slots = cfg.slots
    kp = pol.kernel_params(sim, slots)
    budgets = np.zeros(slots, np.int64) if kp.budgets is None else np.asarray(kp.budgets, np.int64)
    pparams = np.asarray(kp.params, dtype=float)
    st = cfg.step_time
    sparams = np.zeros(7)
    kind = _STEP_CODES[None if st is None else st.kind]
    if st is not None:
        sparams[:] = [st.c0, st.cb, st.ck, st.cp, st.c, st.a, st.b0]
    out = _kernel()(
        np.asarray(sim.S, np.int64), np.asarray(sim.O, np.int64),
        np.asarray(sim.arrival_slot, np.int64), budgets, int(kp.code), pparams,
        cfg.eviction == "keep-progress", pol.requeue == "head", int(cfg.memory_tokens), slots,
        int(cfg.warmup), int(cfg.stride), kind, sparams,
    )
    (first_act, last_act, act_slot, done_slot, n_evict, n_drop, wasted, ts_usage, ts_queue,
     ts_active, ts_act, ts_ev, ts_drop, ts_clock, clock_at, end_clock, nxt, completed, total_ev,
     total_drop, tokens, win_tokens, win_wasted, qlen, n_active, win_ev, win_drop,
     win_active_max) = out
    sim.first_act, sim.last_act, sim.act_slot, sim.done_slot = first_act, last_act, act_slot, done_slot
    sim.n_evict, sim.n_drop, sim.wasted = n_evict, n_drop, wasted
    sim.clock_at, sim.end_clock = clock_at, end_clock
    sim.arrived, sim.completed, sim.total_evictions = int(nxt), int(completed), int(total_ev)
    sim.total_dropped = int(total_drop)
    sim.tokens_generated, sim.win_tokens, sim.win_wasted = int(tokens), int(win_tokens), int(win_wasted)
    sim.n_active = int(n_active)
    sim.win_evictions, sim.win_dropped = int(win_ev), int(win_drop)
    sim.win_active_max = int(win_active_max)
    sim.queue_length_end = int(qlen)
    stride = cfg.stride
    slots_rec = np.arange(0, slots, stride)
    return {
        "slot": slots_rec, "usage": ts_usage, "queue": ts_queue, "active": ts_active,
        "activations": ts_act, "evictions": ts_ev, "dropped": ts_drop, "clock": ts_clock,
    }
