"""A compiled (numba) twin of the slot engine.

Same semantics and the same random stream as :mod:`numerics.sim.engine`, so the same seed gives
*identical* records, time series and summary (tests check it, also under hypothesis). It covers
``flow``, ``greedy``, ``alpha``, ``reserve``, per-class budgets (``budgets``, Algorithm 1) and
``mcsf``; paged blocks (any block size); recompute or keep-progress eviction; Poisson /
deterministic / Bernoulli arrivals and trace replay (the arrivals mapped to slots by the kernel's
own step-time clock); a step-time clock; and ``max_seqs`` on every rule (the kernel applies it;
a config runs here when its policy declares so, ``kernel_caps_seqs``).

The batching options beyond the paper's model (docs/engines.md: ``batching`` prefill-first or
chunked with ``max_batched_tokens``, ``admit_after_preemption=False``; :attr:`SimConfig.uses_step_engine
<numerics.sim.config.SimConfig.uses_step_engine>`) run on a second compiled loop,
:mod:`numerics.sim._kernel_step`, the twin of the Python engine's step loop
(:class:`numerics.sim.engine._StepSim`): every rule above (the same five), both eviction modes,
any block size, trace replay, every step-time kind and ``max_seqs``; a test checks records, time
series and summary equal to the Python step loop's (tests/test_step_fast.py). The paper's model
(mixed batching, admission after preemption) stays on the event-driven kernel. What neither
covers runs on the Python engine: per-slot invariant checks (``check=``) and policies with a
decision rule of their own (or ``max_seqs`` on a rule that does not declare ``kernel_caps_seqs``).

Which policies it covers is the policies' own declaration: a policy with a ``kernel_code``
(:class:`~numerics.sim.state.KernelCode`) hands the kernel its inputs through ``kernel_params``;
per-class budgets, MC-SF and MC, whose inputs are their own fields, are the kernel's rules
:data:`CLASS_BUDGETS`, :data:`MCSF_RULE` and :data:`MC_RULE` for exactly those classes (MC only with
its true lengths, ``predict=exact``; a subclass runs on the Python engine).

``records=False`` keeps only what the summary needs (:func:`numerics.sim.simulate`): no
per-request records beyond the first-activation and completion slots (int32), no time series
beyond the KV usage of the recorded window slots and the queue of the second half.

numba is imported only when a fast run is requested.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CLASS_BUDGETS", "MCSF_RULE", "MC_RULE", "fast_supported", "kernel_rule", "run_fast"]

#: The kernel's codes of the step-time kinds (-1: no clock).
_STEP_CODES = {None: -1, "const": 0, "linear": 1, "staircase": 2}
#: The kernel's rule codes beyond :class:`~numerics.sim.state.KernelCode` (0–2): Algorithm 1's
#: per-class budgets and MC-SF (the values of :data:`numerics.sim._kernel.CLASS_BUDGETS` / ``MCSF``).
CLASS_BUDGETS = 3
MCSF_RULE = 4
#: MC with the true lengths (the value of :data:`numerics.sim._kernel.MC`).
MC_RULE = 6
_KERNEL = None


def kernel_rule(policy) -> int | None:
    """The kernel's activation rule for ``policy``: its ``kernel_code``, or :data:`CLASS_BUDGETS`
    / :data:`MCSF_RULE` for exactly :class:`~numerics.sim.policies.ClassBudgets` /
    :class:`~numerics.sim.policies.MCSF`; None when only the Python engine runs it."""
    code = policy.kernel_code
    if code is not None:
        return int(code)
    from numerics.sim.policies import MCSF, ClassBudgets

    if type(policy) is ClassBudgets:
        return CLASS_BUDGETS
    if type(policy) is MCSF:
        return MCSF_RULE
    from numerics.sim.policies.clairvoyant import MC

    if type(policy) is MC and policy.predict.kind == "exact":
        return MC_RULE
    return None


def fast_supported(cfg) -> bool:
    """True when :func:`run_fast` can run this configuration: a rule of the kernels
    (:func:`kernel_rule`), ``max_seqs`` only on a rule that declares it applies it
    (``kernel_caps_seqs``); the paper's model runs on the event-driven kernel, the batching
    options beyond it (:attr:`SimConfig.uses_step_engine
    <numerics.sim.config.SimConfig.uses_step_engine>`) on the step kernel, which has every rule."""
    pol = cfg.policy
    rule = kernel_rule(pol)
    if rule is None or (pol.max_seqs is not None and not pol.kernel_caps_seqs):
        return False
    return not cfg.uses_step_engine or rule in _STEP_RULES


#: The rules of the step kernel (:mod:`numerics.sim._kernel_step`): all of the event kernel's.
_STEP_RULES = frozenset({0, 1, 2, CLASS_BUDGETS, MCSF_RULE, 5, MC_RULE})  # 5: KernelCode.BUDGET_FIT
#: The step kernel's codes of the batching modes.
_MODE_CODES = {"mixed": 0, "prefill-first": 1, "chunked": 2}
_STEP_KERNEL = None


def _kernel():
    global _KERNEL
    if _KERNEL is None:
        from numerics.sim._kernel import kernel

        _KERNEL = kernel
    return _KERNEL


def _step_kernel():
    global _STEP_KERNEL
    if _STEP_KERNEL is None:
        from numerics.sim._kernel_step import step_kernel

        _STEP_KERNEL = step_kernel
    return _STEP_KERNEL


#: The Python engine's per-request lists, not used by the kernel: freed before it runs.
_PYTHON_STATE = ("act_slot", "g0", "first_act", "last_act", "done_slot", "n_evict", "n_drop",
                 "wasted", "epoch", "active", "queue", "stack")


def run_fast(sim, records: bool = True) -> dict:
    """Run the compiled kernel on a prepared :class:`numerics.sim.engine._Sim`; fill its state
    (the step kernel when the config uses the step loop, see :func:`fast_supported`).

    Returns the recorded series: ``kv_win`` (KV tokens of the recorded slots ≥ warm-up) and
    ``queue_half`` (queue of the recorded slots ≥ slots // 2), and with ``records`` every column
    of the time series (``slot``, ``usage``, ``queue``, ``active``, ``activations``,
    ``evictions``, ``dropped``, ``clock``). Without ``records`` the per-request ``last_act``,
    ``n_evict``, ``n_drop`` and ``wasted`` are None.
    """
    from numerics.sim.engine import CLOCK_TOL_S

    cfg = sim.cfg
    pol = cfg.policy
    slots = cfg.slots
    rule = kernel_rule(pol)
    budgets = np.zeros(1, np.int64)
    pparams = np.zeros(2)
    class_budgets = np.zeros(1, np.int64)
    if rule == CLASS_BUDGETS:
        pol.check_classes(sim.n_classes)
        class_budgets = np.asarray(pol.budgets, np.int64)
    elif rule not in (MCSF_RULE, MC_RULE):
        kp = pol.kernel_params(sim, slots)
        if kp.budgets is not None:
            budgets = np.asarray(kp.budgets, np.int64)
        pparams = np.array(kp.params, dtype=float)
    # max_seqs caps every rule of the kernel (greedy's and alpha's parameters carry it already)
    pparams[1] = 0 if getattr(pol, "max_seqs", None) is None else pol.max_seqs
    st = cfg.step_time
    sparams = np.zeros(7)
    kind = _STEP_CODES[None if st is None else st.kind]
    if st is not None:
        sparams[:] = [st.c0, st.cb, st.ck, st.cp, st.c, st.a, st.b0]
    trace = cfg.arrivals == "trace"
    arrival_time = np.asarray(sim.arrival_time, dtype=float) if trace else np.zeros(0)
    for name in _PYTHON_STATE:  # the Python engine's lists (~100 bytes per request)
        setattr(sim, name, None)
    args = (
        np.asarray(sim.S, np.int64), np.asarray(sim.O, np.int64),
        np.asarray(sim.arrival_slot, np.int64), budgets, rule, pparams,
        cfg.eviction == "keep-progress", pol.requeue == "head", int(cfg.memory_tokens), slots,
        int(cfg.warmup), int(cfg.stride), kind, sparams,
        np.asarray(sim.cls, np.int64), class_budgets, int(cfg.block_size), trace, arrival_time,
        CLOCK_TOL_S, bool(records),
    )
    if cfg.uses_step_engine:  # the batching options: the compiled step loop
        budget = -1 if cfg.max_batched_tokens is None else int(cfg.max_batched_tokens)
        out = _step_kernel()(*args, _MODE_CODES[cfg.batching], budget,
                             bool(cfg.admits_after_preemption))
    else:
        out = _kernel()(*args)
    (first_act, last_act, _act_slot, done_slot, n_evict, n_drop, wasted, ts_usage, ts_queue,
     ts_active, ts_act, ts_ev, ts_drop, ts_clock, clock_at, end_clock, nxt, completed, total_ev,
     total_drop, tokens, win_tokens, win_wasted, qlen, n_active, win_ev, win_drop,
     win_active_max) = out
    sim.first_act, sim.done_slot = first_act, done_slot
    if records:
        sim.last_act, sim.n_evict, sim.n_drop, sim.wasted = last_act, n_evict, n_drop, wasted
    sim.clock_at, sim.end_clock = clock_at, end_clock
    sim.arrived, sim.completed, sim.total_evictions = int(nxt), int(completed), int(total_ev)
    sim.total_dropped = int(total_drop)
    sim.tokens_generated, sim.win_tokens, sim.win_wasted = int(tokens), int(win_tokens), int(win_wasted)
    sim.n_active = int(n_active)
    sim.win_evictions, sim.win_dropped = int(win_ev), int(win_drop)
    sim.win_active_max = int(win_active_max)
    sim.queue_length_end = int(qlen)
    stride = cfg.stride
    if not records:
        return {"kv_win": ts_usage, "queue_half": ts_queue}
    jw0 = -(-int(cfg.warmup) // stride)
    jh0 = -(-(slots // 2) // stride)
    return {
        "slot": np.arange(0, slots, stride), "usage": ts_usage, "queue": ts_queue, "active": ts_active,
        "activations": ts_act, "evictions": ts_ev, "dropped": ts_drop, "clock": ts_clock,
        "kv_win": ts_usage[jw0:], "queue_half": ts_queue[jh0:],
    }
