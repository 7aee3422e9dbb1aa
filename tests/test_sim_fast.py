"""The compiled engine is a twin of the Python engine: same seed ⇒ identical outputs.

Both engines consume the random stream identically (requests first, then one budget draw per
slot), so every record, every time-series row and every summary value must be equal — not close:
the drops on admission, the first activations that produced a token, the censored latency
statistics and the largest active count included.
"""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numerics.errors import WorkloadError
from numerics.model.specs import parse_law
from numerics.model.steptime import StepTimeModel
from numerics.model.workload import RequestClass, Workload
from numerics.sim import SimConfig, parse_policy, simulate
from numerics.sim.fast import fast_supported

policies = st.one_of(
    st.builds(lambda r, b, q: f"flow:rate={r},budget={b},requeue={q}",
              st.sampled_from([0.5, 1.5, 2.0, 3.7]), st.sampled_from(["randomized", "poisson"]),
              st.sampled_from(["head", "tail"])),
    st.builds(lambda r: f"flow:rate={r},budget=deterministic", st.integers(1, 4)),
    st.builds(lambda w: f"greedy:watermark={w}", st.sampled_from([0.0, 0.01, 0.1])),
    st.builds(lambda n: f"greedy:max_seqs={n}", st.integers(1, 40)),
    st.builds(lambda a: f"alpha:{a}", st.sampled_from([0.05, 0.2])),
    st.builds(lambda m: f"reserve:max={m}", st.integers(30, 120)),
)
workloads = st.one_of(
    st.builds(lambda s, o: Workload.single(parse_law(s), parse_law(o)),
              st.sampled_from(["5", "uniform:1,30", "geom:mean=10,max=60"]),
              st.sampled_from(["8", "uniform:1,40", "geom:mean=15,max=100"])),
    st.just(Workload((
        RequestClass.independent(parse_law("10"), parse_law("20"), 0.3, "a"),
        RequestClass.independent(parse_law("uniform:1,20"), parse_law("geom:mean=30,max=90"), 0.2, "b"),
    ))),
)


@settings(max_examples=40)
@given(wl=workloads, pol=policies, memory=st.integers(150, 2000), rate=st.floats(0.05, 3.0),
       arrivals=st.sampled_from(["poisson", "deterministic"]),
       eviction=st.sampled_from(["recompute", "keep-progress"]),
       stride=st.sampled_from([1, 3]), seed=st.integers(0, 2**31), timed=st.booleans())
def test_fast_engine_is_identical(wl, pol, memory, rate, arrivals, eviction, stride, seed, timed):
    max_total = wl.max_prompt + wl.max_decode
    memory = max(memory, int(max_total) + 1)  # build, not filter: every request fits alone
    step = StepTimeModel.from_spec("linear:c0=0.01,cb=1e-4,ck=1e-6,cp=1e-5") if timed else None
    cfg = SimConfig(wl, memory, parse_policy(pol), slots=600, arrival_rate=rate, arrivals=arrivals,
                    warmup=50, seed=seed, eviction=eviction, stride=stride, step_time=step)
    assert fast_supported(cfg)
    _assert_identical(simulate(cfg, engine="python"), simulate(cfg, engine="fast"))


def _assert_identical(a, b) -> None:
    pd.testing.assert_frame_equal(a.records, b.records)
    pd.testing.assert_frame_equal(a.timeseries, b.timeseries)
    assert a.summary.keys() == b.summary.keys()
    for key, value in a.summary.items():
        assert value == b.summary[key] or (value != value and b.summary[key] != b.summary[key]), key


@pytest.mark.parametrize("eviction", ["recompute", "keep-progress"])
@pytest.mark.parametrize("spec", ["flow:rate=3.7,budget=poisson,requeue=tail", "flow:rate=1000",
                                  "flow:rate=2,budget=deterministic", "greedy:watermark=0,max_seqs=5"])
def test_fast_engine_is_identical_with_drops_and_evictions(spec, eviction):
    # a tight memory (some requests never fit: they cycle through activation and drop) and an
    # overload, so that drops on admission, real evictions, censored latencies and requests never
    # activated all occur; with a step time that charges prefill
    wl = Workload.single(parse_law("uniform:1,30"), parse_law("geom:mean=15,max=100"))
    step = StepTimeModel.from_spec("linear:c0=0.01,cb=1e-4,ck=1e-6,cp=1e-3")
    cfg = SimConfig(wl, 120, parse_policy(spec), slots=800, arrival_rate=1.5, warmup=80, seed=5,
                    eviction=eviction, step_time=step)
    a = simulate(cfg, engine="python")
    b = simulate(cfg, engine="fast")
    _assert_identical(a, b)
    assert a.summary["evictions"] > 0
    assert a.summary["completed_fraction"] < 1
    assert a.records.first_activation_slot.isna().any()
    if spec.startswith("flow"):
        assert a.summary["dropped_on_admission"] > 0
    else:
        assert a.summary["active_max"] <= 5


def test_fast_engine_refuses_what_it_cannot_run():
    wl = Workload.single(parse_law("5"), parse_law("10"))
    for spec, block in (("mcsf", 1), ("budgets:2", 1), ("greedy", 16)):
        cfg = SimConfig(wl, 500, parse_policy(spec), slots=50, arrival_rate=0.5, block_size=block)
        assert not fast_supported(cfg)
        with pytest.raises(WorkloadError, match="fast engine"):
            simulate(cfg, engine="fast")
        simulate(cfg)  # auto falls back to the Python engine


def test_kernel_support_is_declared_by_the_policy():
    from dataclasses import dataclass

    from numerics.sim.policies import Greedy
    from numerics.sim.state import KernelCode

    @dataclass(frozen=True)
    class Cautious(Greedy):  # a new decision rule: the kernel must not run it as greedy
        def select(self, sim):
            return min(1, super().select(sim))

    @dataclass(frozen=True)
    class Tuned(Greedy):  # greedy's rule with other defaults: still the kernel's
        watermark: float = 0.2

    wl = Workload.single(parse_law("5"), parse_law("10"))
    assert Greedy.kernel_code is KernelCode.FCFS_MEMORY
    assert Cautious.kernel_code is None
    cautious = SimConfig(wl, 500, Cautious(), slots=50, arrival_rate=0.5)
    tuned = SimConfig(wl, 500, Tuned(), slots=50, arrival_rate=0.5)
    assert not fast_supported(cautious)
    assert fast_supported(tuned)
    with pytest.raises(WorkloadError, match="fast engine"):
        simulate(cautious, engine="fast")
    pd.testing.assert_frame_equal(simulate(tuned, engine="python").records,
                                  simulate(tuned, engine="fast").records)
