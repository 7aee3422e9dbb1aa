"""Exact tails by tilted FFT against direct convolution, the bounds, and tails below 1e-300."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_bounds import exact_tail as convolution_tail

from numerics.bounds import VALID_BOUNDS, FlowTails
from numerics.exact import exact_tail
from numerics.flow import BudgetLaw
from numerics.specs import parse_law
from numerics.workload import JointLengths, RequestClass, Workload

CONV_ATOL = 1e-12  # the direct convolution sums ~1e4 FFT outputs: absolute error ~1e-13
TILT_RTOL = 1e-6  # tilted FFT converged to 1e-8 between grid sizes; margin for the reference


def test_reference_geometric_row():
    # theory brief §8.2 row 3; direct truncated convolution in tests/test_bounds.py: 4.83e-6
    wl = Workload.single(parse_law("20"), parse_law("geom:p=0.05"))
    got = exact_tail(wl, 16000, 16, "deterministic")
    assert got.prob == pytest.approx(4.8315e-6, rel=1e-4)
    assert got.relative_change <= 1e-8


small = st.one_of(
    st.builds(lambda s, lo, w: Workload.single(parse_law(str(s)), parse_law(f"uniform:{lo},{lo + w}")),
              st.integers(0, 12), st.integers(1, 6), st.integers(0, 10)),
    st.builds(lambda pairs: Workload((RequestClass(JointLengths.from_samples(
        np.array([x for x, _ in pairs]), np.array([y for _, y in pairs]))),)),
        st.lists(st.tuples(st.integers(0, 10), st.integers(1, 14)), min_size=1, max_size=8)),
)


@settings(max_examples=25)
@given(wl=small, rho=st.floats(0.1, 0.9), mfrac=st.floats(0.0, 0.5),
       kind=st.sampled_from(["deterministic", "randomized"]))
def test_tilted_fft_equals_direct_convolution(wl, rho, mfrac, kind):
    ew = wl.mean_memory_time
    r = rho * 400 / ew
    if kind == "deterministic":
        r = max(1, math.floor(r))
    budget = BudgetLaw(kind, r)
    u_max = budget.max_count * sum(int(wl.max_prompt) + a + 1 for a in range(wl.n_ages))
    memory = int(r * ew + mfrac * max(u_max - r * ew, 0)) + 1
    direct = convolution_tail(wl, memory, budget)
    tilted = exact_tail(wl, memory, r, kind).prob
    assert abs(tilted - direct) <= CONV_ATOL + TILT_RTOL * direct


@pytest.mark.parametrize("r", [10, 20, 22])
def test_bounds_dominate_the_exact_tail_far_below_double_precision(r):
    # uniform O ∈ {1..100}, s = 20, M = 65 536 (theory brief §8.2); r = 10 gives P ≈ 1e-306
    wl = Workload.single(parse_law("20"), parse_law("uniform:1,100"))
    exact = exact_tail(wl, 65536, r, "deterministic")
    tails = FlowTails(wl, 65536)
    for name in VALID_BOUNDS:
        log_bound = tails.log_bound(name, BudgetLaw("deterministic", r))
        assert log_bound >= exact.log_prob - 1e-9, name
    if r == 20:  # the Gaussian approximation is *below* the exact tail here: not a bound
        assert tails.log_bound("gaussian", BudgetLaw("deterministic", r)) < exact.log_prob
    if r == 10:
        assert -710 < exact.log_prob < -700


def test_poisson_budget_against_monte_carlo():
    wl = Workload.single(parse_law("5"), parse_law("uniform:1,20"))
    r, memory = 3.0, 520
    exact = exact_tail(wl, memory, r, "poisson").prob
    rng = np.random.default_rng(2)
    n = 200_000
    u = np.zeros(n)
    for a in range(20):
        counts = rng.poisson(r, n)
        alive = rng.binomial(counts, (20 - a) / 20)
        u += alive * (5 + a + 1)
    hits = np.mean(u > memory)
    se = math.sqrt(exact * (1 - exact) / n)
    assert abs(hits - exact) <= 5 * se  # 5 standard errors: false alarm ~6e-7
    assert 1e-3 < exact < 0.2  # a tail Monte Carlo can resolve
