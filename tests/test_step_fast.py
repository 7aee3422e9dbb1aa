"""The compiled step loop is a twin of the Python step loop: same seed ⇒ identical outputs.

:mod:`numerics.sim._kernel_step` runs the batching options of docs/engines.md (prefill-first,
chunked under a token budget, no admission in a step that preempted) for every rule of the
compiled engine. Both engines consume the random stream identically (requests first, then one
budget draw per slot, the slots whose choice is discarded included), so every record, every
time-series row and every summary value must be equal — not close — to the Python step loop's
(:class:`numerics.sim.engine._StepSim`), in both ``records`` modes. The grid below crosses each
batching mode with both evictions, block sizes 1 and 4, an overload (memory tight enough that
requests are evicted, dropped on admission and some never fit alone in one step's budget) and an
underload; the policies rotate through the grid and each is also run in every mode, and
hypothesis draws the rest (empty prompts, budgets down to max_seqs, trace replay).
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_batching import TWO, batching_configs
from test_sim_fast import _assert_identical, any_policy, traces

from numerics.model.steptime import StepTimeModel
from numerics.sim import SimConfig, fast, parse_policy, simulate
from numerics.sim.fast import fast_supported

#: A step time that charges every term: the clock depends on the batch, the KV and the prefill.
LINEAR = StepTimeModel.from_spec("linear:c0=0.02,cb=1e-4,ck=1e-6,cp=5e-4")
STAIRCASE = StepTimeModel.from_spec("staircase:c=0.01,a=0.02,b0=16")
#: Every rule of the compiled kernels, with and without max_seqs, both requeues.
SPECS = ["greedy", "greedy:watermark=0,max_seqs=5", "flow:rate=1.3",
         "flow:rate=2,budget=poisson,requeue=tail", "flow:rate=2,budget=deterministic,max_seqs=6",
         "budgets:2,1", "budgets:2,2,max_seqs=4,requeue=tail", "alpha:0.1", "alpha:0.05,max_seqs=7",
         "reserve:max=40", "reserve:max=40,max_seqs=3", "mcsf", "mcsf:max_seqs=4,requeue=tail",
         "mc", "mc:max_seqs=4,requeue=tail"]
#: (batching, max_batched_tokens, admit_after_preemption): V0 without and with a prefill cap,
#: V1 (no admission after preemption, its default), V0 with chunked prefill, mixed under V1's rule.
MODES = [("prefill-first", None, None), ("prefill-first", 24, True), ("chunked", 16, None),
         ("chunked", 40, True), ("mixed", None, False)]
#: (memory, arrival rate): an overload that evicts and drops, an underload that rarely does.
LOADS = {"overload": (150, 1.5), "underload": (500, 0.25)}
GRID = list(itertools.product(MODES, ["recompute", "keep-progress"], [1, 4], LOADS))


def _config(spec, mode, eviction, block, load, seed=11, slots=160, **kw) -> SimConfig:
    batching, budget, admit = mode
    memory, rate = LOADS[load]
    return SimConfig(TWO, memory, parse_policy(spec), slots=slots, arrival_rate=rate, warmup=20,
                     seed=seed, block_size=block, eviction=eviction, batching=batching,
                     max_batched_tokens=budget, admit_after_preemption=admit, **kw)


def _same(cfg: SimConfig):
    assert cfg.uses_step_engine
    assert fast_supported(cfg)
    a = simulate(cfg, engine="python")
    _assert_identical(a, simulate(cfg, engine="fast"))
    return a


@pytest.mark.parametrize(("mode", "eviction", "block", "load"), GRID)
def test_the_step_kernel_is_identical_on_the_grid(mode, eviction, block, load):
    i = GRID.index((mode, eviction, block, load))
    spec = SPECS[i % len(SPECS)]
    a = _same(_config(spec, mode, eviction, block, load, seed=i, step_time=LINEAR, stride=1 + i % 3))
    assert a.summary["completed"] > 0
    if load == "overload" and not spec.startswith(("reserve", "mc")):
        # the overload reaches the preemption paths (reserve and MC-SF plan not to overflow)
        assert a.summary["evictions"] + a.summary["dropped_on_admission"] > 0, spec


@pytest.mark.parametrize("mode", MODES, ids=lambda m: f"{m[0]}-{m[1]}-{m[2]}")
@pytest.mark.parametrize("spec", SPECS)
def test_every_rule_of_the_step_kernel_in_every_mode(spec, mode):
    # keep-progress in blocks of 4 under the overload, a staircase clock: every rule, every mode
    _same(_config(spec, mode, "keep-progress", 4, "overload", step_time=STAIRCASE))


@pytest.mark.parametrize("eviction", ["recompute", "keep-progress"])
def test_a_prompt_longer_than_the_budget_runs_in_chunks_and_alone(eviction):
    # prompts of 30 under budgets of 8: chunked prefills over ⌈30/8⌉ steps or more, prefill-first
    # runs each long prompt in a step of its own; no clock, the slot counts alone
    for mode in (("chunked", 8, None), ("prefill-first", 8, None)):
        cfg = _config("greedy:max_seqs=8", mode, eviction, 1, "overload", slots=200)
        a = _same(cfg)
        assert a.summary["completed"] > 0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg=batching_configs(modes=("prefill-first", "chunked", "mixed")))
def test_the_step_kernel_is_identical_on_drawn_configs(cfg):
    if not cfg.uses_step_engine:  # mixed with admission after preemption: the event kernel
        return
    _same(cfg)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), trace=traces(), memory=st.integers(40, 600), block=st.sampled_from([1, 4]),
       eviction=st.sampled_from(["recompute", "keep-progress"]), mode=st.sampled_from(MODES),
       slots=st.integers(20, 300))
def test_the_step_kernel_is_identical_in_trace_replay(data, trace, memory, block, eviction, mode, slots):
    # the clock runs inside the kernel, priced per step from its own batch, KV and prefill, so
    # each arrival's slot depends on the schedule
    wl = trace.to_workload()
    spec = data.draw(any_policy(len(wl.classes)))
    batching, budget, admit = mode
    if budget is not None:
        budget = max(budget, parse_policy(spec).max_seqs or 1)
    cfg = SimConfig(wl, memory, parse_policy(spec), slots=slots, arrivals="trace", trace=trace,
                    warmup=slots // 5, step_time=LINEAR, block_size=block, eviction=eviction,
                    batching=batching, max_batched_tokens=budget, admit_after_preemption=admit)
    _same(cfg)


def test_the_papers_model_still_runs_on_the_event_kernel(monkeypatch):
    # the default (mixed batching, admission after preemption) must not reach the step kernel,
    # and a batching option must
    def refuse():
        raise AssertionError("the step kernel was called")

    monkeypatch.setattr(fast, "_step_kernel", refuse)
    paper = SimConfig(TWO, 150, parse_policy("greedy"), slots=100, arrival_rate=1.5, step_time=LINEAR)
    assert not paper.uses_step_engine
    assert fast_supported(paper)
    _assert_identical(simulate(paper, engine="python"), simulate(paper, engine="fast"))
    for mode in MODES:
        cfg = _config("greedy", mode, "recompute", 1, "overload", slots=50)
        assert fast_supported(cfg)
        with pytest.raises(AssertionError, match="step kernel"):
            simulate(cfg)  # auto: the compiled step loop


def test_what_the_step_kernel_does_not_run_stays_on_python():
    from dataclasses import dataclass

    from numerics.errors import WorkloadError
    from numerics.sim.checks import InvariantChecker
    from numerics.sim.policies import Greedy

    @dataclass(frozen=True)
    class Cautious(Greedy):  # a decision rule of its own
        def select(self, sim):
            return min(1, super().select(sim))

    cfg = SimConfig(TWO, 300, Cautious(), slots=40, arrival_rate=1.0, batching="chunked",
                    max_batched_tokens=32)
    assert not fast_supported(cfg)
    with pytest.raises(WorkloadError, match="fast engine"):
        simulate(cfg, engine="fast")
    assert simulate(cfg).summary["arrived"] > 0  # auto: the Python step loop
    checked = _config("greedy", MODES[2], "recompute", 1, "overload", slots=40)
    with pytest.raises(WorkloadError, match="fast engine"):
        simulate(checked, check=InvariantChecker(), engine="fast")
