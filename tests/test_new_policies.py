"""The policies beyond the paper: ``flowfit`` (flow control with a fit check) and ``adaptive``.

Spec round trips, the Python engine, the per-slot invariants under hypothesis in both eviction
modes, no drop on admission, and ``flowfit`` = ``flow`` when memory never binds.
"""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import run_checked
from hypothesis import given, settings
from hypothesis import strategies as st

from numerics.errors import SpecError
from numerics.model.specs import parse_law
from numerics.model.workload import Workload
from numerics.sim import SimConfig, parse_policy, simulate
from numerics.sim.fast import fast_supported
from numerics.sim.policies import AdaptiveFlow, FlowFit

SPECS = ["flowfit:rate=2", "flowfit:rate=3,budget=deterministic,requeue=tail",
         "flowfit:rate=1.5,budget=poisson,max_seqs=4", "adaptive", "adaptive:target=0.05,margin=0.2",
         "adaptive:requeue=tail,max_seqs=6"]


@pytest.mark.parametrize("spec", SPECS)
def test_spec_round_trip_and_engine(spec):
    # flowfit has a compiled rule (BUDGET_FIT, tests/test_sim_fast.py checks the twin); adaptive
    # runs on the Python engine only
    pol = parse_policy(spec)
    assert isinstance(pol, FlowFit | AdaptiveFlow)
    assert (pol.kernel_code is None) == isinstance(pol, AdaptiveFlow)
    assert parse_policy(pol.spec()) == pol
    wl = Workload.single(parse_law("10"), parse_law("uniform:1,20"))
    assert fast_supported(SimConfig(wl, 200, pol, slots=10, arrival_rate=1.0)) == isinstance(pol, FlowFit)


@pytest.mark.parametrize("spec", ["flowfit", "flowfit:rate=-1", "flowfit:rate=1.5,budget=deterministic",
                                  "flowfit:rate=1,budget=odd", "adaptive:target=-1", "adaptive:rate=2",
                                  "flowfit:rate=1,max_seqs=0"])
def test_bad_specs(spec):
    with pytest.raises(SpecError):
        parse_policy(spec)


@st.composite
def configs(draw) -> SimConfig:
    prompt = draw(st.sampled_from(["5", "uniform:1,30", "geom:mean=8,max=40"]))
    decode = draw(st.sampled_from(["10", "uniform:1,40", "geom:mean=15,max=80"]))
    wl = Workload.single(parse_law(prompt), parse_law(decode))
    block = draw(st.sampled_from([1, 4, 16]))
    memory = draw(st.integers(40, 1500))
    rate = draw(st.floats(0.1, 3.0))
    if draw(st.booleans()):
        budget = draw(st.sampled_from(["randomized", "poisson"]))
        spec = f"flowfit:rate={draw(st.floats(0.2, 4))!r},budget={budget}"
    else:
        spec = f"adaptive:target={draw(st.sampled_from([0.0, 0.01, 0.2]))}"
    seqs = draw(st.none() | st.integers(1, 8))
    spec += f",requeue={draw(st.sampled_from(['head', 'tail']))}"
    spec += "" if seqs is None else f",max_seqs={seqs}"
    slots = draw(st.integers(50, 300))
    return SimConfig(wl, memory, parse_policy(spec), slots=slots, arrival_rate=rate,
                     warmup=draw(st.integers(0, slots - 1)), seed=draw(st.integers(0, 2**32 - 1)),
                     block_size=block, eviction=draw(st.sampled_from(["recompute", "keep-progress"])))


@settings(max_examples=60, deadline=None)
@given(cfg=configs())
def test_invariants_every_slot_and_no_drop_on_admission(cfg):
    res = run_checked(cfg, fifo=True, repeat=True)
    assert res.summary["dropped_on_admission"] == 0
    assert int(res.records["dropped_on_admission"].sum()) == 0


@pytest.mark.parametrize("budget", ["randomized", "poisson", "deterministic"])
def test_flowfit_is_flow_when_memory_never_binds(budget):
    wl = Workload.single(parse_law("uniform:1,20"), parse_law("uniform:1,30"))
    rate = "2" if budget == "deterministic" else "1.7"
    runs = [simulate(SimConfig(wl, 10**7, parse_policy(f"{name}:rate={rate},budget={budget}"), slots=400,
                               arrival_rate=1.5, seed=7), engine="python") for name in ("flow", "flowfit")]
    pd.testing.assert_frame_equal(runs[0].records, runs[1].records)
    pd.testing.assert_frame_equal(runs[0].timeseries, runs[1].timeseries)


def test_adaptive_tracks_the_arrival_rate_below_capacity():
    wl = Workload.single(parse_law("10"), parse_law("20"))
    pol = parse_policy("adaptive")
    res = simulate(SimConfig(wl, 10**6, pol, slots=3000, arrival_rate=1.2, seed=1), engine="python")
    assert 1.2 < pol.rate_now() < 1.2 * 1.1 * 1.25  # λ̂·(1 + margin), memory never binds
    assert res.summary["completed_fraction"] > 0.95


def test_adaptive_tracks_a_time_varying_arrival_rate_in_trace_replay():
    # Issue 14: adaptive sets its rate online and must follow a trace whose arrival rate changes.
    # Replay (1 s per slot) of Poisson arrivals at 1 request/s for 3 000 s, then 2 requests/s for
    # 3 000 s; memory never binds, so r_t should settle at λ̂(1 + margin) of the current rate. A
    # fixed flow rate set for the first half (1.1) cannot serve the second: its queue grows.
    import numpy as np

    from numerics.data.traces import Trace
    from numerics.model.steptime import StepTimeModel

    rng = np.random.default_rng(5)
    times = np.concatenate([np.sort(rng.uniform(0, 3000, rng.poisson(3000))),
                            np.sort(rng.uniform(3000, 6000, rng.poisson(6000)))])
    n = times.size
    trace = Trace(np.full(n, 10), np.full(n, 20), times, "two-rate", "lengths")
    wl = trace.to_workload()
    run = dict(slots=6000, warmup=0, arrivals="trace", trace=trace, seed=1,
               step_time=StepTimeModel("const", c0=1.0))
    pol = parse_policy("adaptive")
    half = SimConfig(wl, 10**6, pol, **(run | {"slots": 3000}))
    simulate(half, engine="python")
    assert 1.0 < pol.rate_now() < 1.0 * 1.1 * 1.25  # the first rate, before the change
    res = simulate(SimConfig(wl, 10**6, pol, **run), engine="python")
    assert 2.0 < pol.rate_now() < 2.0 * 1.1 * 1.25  # the second rate, after it
    assert res.summary["completed_fraction"] > 0.98
    fixed = simulate(SimConfig(wl, 10**6, parse_policy("flow:rate=1.1"), **run))
    assert fixed.summary["completed_fraction"] < 0.8
    assert fixed.summary["queue_slope"] > 0.5  # it grows at about 2 − 1.1 per slot
