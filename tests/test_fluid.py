"""Fluid models (numerics.chains.fluid): exact cycle algebra, fixed points, and the simulator at large M."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy import stats

from numerics.analysis.flow import flow_saturated_mean
from numerics.chains.fluid import (
    equilibrium_state,
    flow_fluid,
    greedy_fluid_cycle,
    greedy_fluid_step,
    greedy_throughput_ratio,
)
from numerics.chains.queues import activation_queue
from numerics.data.traces import Trace
from numerics.errors import WorkloadError
from numerics.model.laws import TokenLaw
from numerics.model.specs import parse_law
from numerics.model.steptime import StepTimeModel
from numerics.model.workload import Workload
from numerics.sim import SimConfig, simulate
from numerics.sim.policies import FlowControl, Greedy

#: Float fluid iterations: relative error of sums of ≤ ~100 terms in double precision.
FLOAT_REL = 1e-9


# ---------------------------------------------------------------- the throughput ratio
def test_ratio_exact_values():
    # closed form (s + (d+1)/2)/(s + d), evaluated by hand
    assert greedy_throughput_ratio(0, 1) == 1
    assert greedy_throughput_ratio(1, 3) == Fraction(3, 4)
    assert greedy_throughput_ratio(Fraction(1, 2), 2) == Fraction(4, 5)  # (1/2 + 3/2)/(5/2)
    assert isinstance(greedy_throughput_ratio(2, 5), Fraction)
    assert isinstance(greedy_throughput_ratio(2.0, 5), float)


@given(st.integers(0, 10_000), st.integers(1, 10_000))
@example(0, 1)
@example(0, 10_000)
def test_ratio_in_half_open_interval(s, d):
    r = greedy_throughput_ratio(s, d)
    assert Fraction(1, 2) < r <= 1
    assert (r == 1) == (d == 1)
    assert greedy_throughput_ratio(float(s), float(d)) == pytest.approx(float(r), rel=FLOAT_REL)


@settings(max_examples=15)  # sympy is slow; proofs_check runs the thorough version of this twin
@given(st.integers(0, 10_000), st.integers(1, 10_000))
def test_ratio_twin_of_theory(s, d):
    """Same name in two layers: theory.fluid (sympy) and numerics.chains.fluid agree exactly."""
    from theory.fluid import greedy_throughput_ratio as symbolic

    sym = symbolic(s, d)
    assert greedy_throughput_ratio(s, d) == Fraction(int(sym.p), int(sym.q))


def test_ratio_tends_to_one_half():
    # d ≫ s: the "up to 50 %" loss (docs/theory.md §5)
    assert greedy_throughput_ratio(0, 10**9) - Fraction(1, 2) == Fraction(1, 2 * 10**9)


# ---------------------------------------------------------------- greedy's synchronised cycle
@given(st.integers(0, 20), st.integers(1, 30), st.integers(0, 500))
@example(0, 1, 0)
def test_cycle_from_empty_is_the_synchronised_cycle(s, d, extra):
    memory = s + d + extra
    cyc = greedy_fluid_cycle(s, d, memory)
    assert cyc.exact
    assert cyc.transient_slots == 0
    assert cyc.cycle_length == d
    # the derivation in the module docstring: M/(s+d) complete every d slots
    assert cyc.throughput_requests_per_slot == Fraction(memory, d * (s + d))
    assert cyc.equilibrium_throughput == Fraction(memory) / (s * d + Fraction(d * (d + 1), 2))
    assert cyc.throughput_ratio == greedy_throughput_ratio(s, d)
    # the cache is full in every slot of the cycle and never over M
    assert np.allclose(cyc.series["memory"], memory, rtol=FLOAT_REL)


@given(st.integers(0, 20), st.integers(1, 30))
def test_equilibrium_is_a_fixed_point(s, d):
    memory = 1000
    cyc = greedy_fluid_cycle(s, d, memory, initial=equilibrium_state(s, d, memory))
    assert cyc.cycle_length == 1
    assert cyc.transient_slots == 0
    assert cyc.throughput_ratio == 1
    assert cyc.series["evicted"][0] == 0


@pytest.mark.parametrize(("s", "d"), [(2, 5), (4, 16), (1, 30)])
def test_perturbed_equilibrium_falls_into_the_worst_cycle(s, d):
    """Ao et al.: the equilibrium is unstable; trajectories converge to the synchronised cycle."""
    eq = [float(x) for x in equilibrium_state(s, d, 1000)]
    bumped = [x * (1 + 0.01 * ((i % 3) - 1)) for i, x in enumerate(eq)]
    cyc = greedy_fluid_cycle(s, d, 1000.0, initial=bumped)
    assert cyc.transient_slots > 0
    assert cyc.cycle_length == d
    assert cyc.throughput_ratio == pytest.approx(float(greedy_throughput_ratio(s, d)), rel=FLOAT_REL)


@pytest.mark.parametrize(("s", "d"), [(2, 5), (4, 16), (0, 30)])
def test_flow_at_m_over_w_is_the_equilibrium_greedy_misses(s, d):
    """Flow control at r = M/W: its fluid fixed point fills memory exactly (U → r·W = M) and runs
    M/W requests per slot — the eviction-free equilibrium; greedy's cycle reaches the ratio."""
    memory = 1000
    w = s * d + d * (d + 1) / 2
    wl = Workload.single(TokenLaw.deterministic(s), TokenLaw.deterministic(d))
    ff = flow_fluid(wl, memory, memory / w, 3 * d)
    assert ff.memory[-1] == pytest.approx(memory, rel=FLOAT_REL)
    assert ff.completions[-1] == pytest.approx(memory / w, rel=FLOAT_REL)
    cyc = greedy_fluid_cycle(s, d, memory)
    assert float(cyc.throughput_requests_per_slot) / ff.completions[-1] == pytest.approx(
        float(greedy_throughput_ratio(s, d)), rel=FLOAT_REL)


def test_watermark_keeps_the_cycle():
    cyc = greedy_fluid_cycle(4, 16, 1000, watermark=Fraction(1, 100))
    assert cyc.cycle_length == 16
    assert cyc.series["memory"].max() <= 1000


def test_step_conserves_mass():
    state = [Fraction(7), Fraction(3), Fraction(0), Fraction(11)]
    nxt, rec = greedy_fluid_step(state, 3, 5, Fraction(120))
    before = sum(state) + rec["admitted"]
    assert before - rec["evicted"] == rec["active"]
    assert rec["active"] - rec["completed"] == sum(nxt)
    assert rec["memory"] <= 120


#: Integer effects: the simulated cohort is ⌊M/(s+k+1)⌋ requests at age k (the fluid's M/(s+k+1)),
#: so completions per cycle are ⌊M/(s+d)⌋ vs M/(s+d): a relative shortfall below (s+d)/M.
@pytest.mark.parametrize(("s", "d", "memory", "lam"), [(4, 12, 3000, 50.0), (2, 24, 3000, 50.0)])
def test_greedy_cycle_vs_large_memory_simulation(s, d, memory, lam):
    """Poisson arrivals far above capacity (the queue saturates; the start is staggered): the
    simulator settles on the synchronised cycle and its throughput."""
    cyc = greedy_fluid_cycle(s, d, memory)
    wl = Workload.single(TokenLaw.deterministic(s), TokenLaw.deterministic(d))
    cfg = SimConfig(wl, memory, Greedy(watermark=0.0), slots=40 * d, arrival_rate=lam,
                    arrivals="poisson", warmup=20 * d, seed=3)
    res = simulate(cfg)
    sim = res.summary["throughput_requests_per_slot"]
    fluid = float(cyc.throughput_requests_per_slot)
    assert fluid * (1 - (s + d) / memory) <= sim <= fluid
    ratio = sim / float(cyc.equilibrium_throughput)
    assert ratio == pytest.approx(float(greedy_throughput_ratio(s, d)), rel=(s + d) / memory)
    # the active count runs through the cohort sizes ⌊M/(s+k+1)⌋, k = 0..d−1
    last = res.timeseries.active.to_numpy()[-d:]
    assert sorted(last.tolist(), reverse=True) == [memory // (s + k + 1) for k in range(d)]


# ---------------------------------------------------------------- flow control's fluid
@pytest.mark.parametrize("decode", ["uniform:1,20", "geom:mean=15,max=80", "7"])
def test_flow_fixed_point_is_r_times_mean_memory_time(decode):
    wl = Workload.single(parse_law("10"), parse_law(decode))
    r = 3.5
    ff = flow_fluid(wl, 10_000, r, 200)
    assert ff.fixed_point_memory == pytest.approx(flow_saturated_mean(wl, r), rel=FLOAT_REL)
    assert ff.memory[-1] == pytest.approx(flow_saturated_mean(wl, r), rel=FLOAT_REL)
    assert ff.active[-1] == pytest.approx(r * wl.mean_decode, rel=FLOAT_REL)
    assert ff.completions[-1] == pytest.approx(r, rel=FLOAT_REL)


def test_flow_queue_grows_linearly_above_the_rate():
    wl = Workload.single(parse_law("5"), parse_law("uniform:1,10"))
    ff = flow_fluid(wl, 10_000, 2.0, 50, 3.0)
    assert np.allclose(ff.queue, np.arange(1, 51) * 1.0, rtol=FLOAT_REL, atol=0)
    assert np.all(ff.activations == 2.0)
    below = flow_fluid(wl, 10_000, 2.0, 50, 1.5)
    assert np.all(below.queue == 0)
    assert below.memory[-1] == pytest.approx(1.5 * wl.mean_memory_time, rel=FLOAT_REL)


def test_flow_fluid_rejects_bad_input():
    wl = Workload.single(parse_law("5"), parse_law("uniform:1,10"))
    with pytest.raises(WorkloadError, match="horizon"):
        flow_fluid(wl, 1000, 1.0, 0)
    with pytest.raises(WorkloadError, match="activation rate"):
        flow_fluid(wl, 1000, -1.0, 10)
    with pytest.raises(WorkloadError, match="λ"):
        flow_fluid(wl, 1000, 1.0, 10, lambda t: -1.0)
    with pytest.raises(WorkloadError, match="integer"):
        greedy_fluid_cycle(2.5, 4, 100)
    with pytest.raises(WorkloadError, match="watermark"):
        greedy_fluid_cycle(2, 4, 100, watermark=1.0)
    with pytest.raises(WorkloadError, match="exceeds"):
        greedy_fluid_cycle(60, 50, 100)


#: Transient check, time-varying λ(t): 6/slot, then 14/slot on [60, 120), then 6/slot again,
#: deterministic budget r = 10, M far above r·E[W] (no evictions). At the chosen slots the fluid
#: is the exact mean of the simulator up to a small bias: E[min(r, Q + A)] differs from
#: min(r, q + λ) only while the queue is near empty, so the mean queue exceeds the fluid by at
#: most the stationary mean queue at λ = 6 (numerics.chains.queues.activation_queue) — the allowance
#: below — and the memory at slots in steady phases (all ages ≤ 20 inside one phase) is exact.
TRANSIENT_REPS = 20
TRANSIENT_ALPHA = 1e-5  # per comparison; 9 comparisons: family-wise ≤ 1e-4
TRANSIENT_T = float(stats.t.ppf(1 - TRANSIENT_ALPHA / 2, TRANSIENT_REPS - 1))
MEMORY_SLOTS = (59, 80, 119, 150, 239)
QUEUE_SLOTS = (80, 119, 130, 150)


def test_flow_transient_matches_simulation():
    wl = Workload.single(parse_law("10"), parse_law("uniform:1,20"))
    horizon, r, memory = 240, 10, 4000

    def lam(t):
        return 14.0 if 60 <= t < 120 else 6.0

    ff = flow_fluid(wl, memory, r, horizon, lam)
    queue_bias = activation_queue(6.0, "deterministic", r).mean
    mems, queues = [], []
    for child in np.random.SeedSequence(11).spawn(TRANSIENT_REPS):
        rng = np.random.default_rng(child)
        counts = rng.poisson([lam(t) for t in range(horizon)])
        stamps = np.repeat(np.arange(horizon, dtype=float), counts)  # slot t starts at t seconds
        s, o = wl.classes[0].lengths.sample(stamps.size, rng)
        trace = Trace(s, o, stamps, "synthetic λ(t)", "azure")
        cfg = SimConfig(wl, memory, FlowControl(rate=r, budget="deterministic"), slots=horizon,
                        arrivals="trace", trace=trace, step_time=StepTimeModel("const", c0=1.0))
        res = simulate(cfg)
        assert res.summary["evictions"] == 0
        mems.append(res.timeseries.kv_tokens.to_numpy())
        queues.append(res.timeseries.queue.to_numpy())
    mems, queues = np.array(mems, dtype=float), np.array(queues, dtype=float)
    for t in MEMORY_SLOTS:
        se = mems[:, t].std(ddof=1) / math.sqrt(TRANSIENT_REPS)
        assert abs(mems[:, t].mean() - ff.memory[t]) <= TRANSIENT_T * se, t
    for t in QUEUE_SLOTS:
        se = queues[:, t].std(ddof=1) / math.sqrt(TRANSIENT_REPS)
        assert abs(queues[:, t].mean() - ff.queue[t]) <= TRANSIENT_T * se + queue_bias, t
