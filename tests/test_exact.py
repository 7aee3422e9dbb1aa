"""Exact tails by tilted FFT against direct convolution, the bounds, and tails below 1e-300."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_bounds import exact_tail as convolution_tail

from numerics.analysis.bounds import VALID_BOUNDS, FlowTails
from numerics.analysis.exact import exact_tail
from numerics.errors import WorkloadError
from numerics.model.budget import BudgetLaw
from numerics.model.laws import TokenLaw
from numerics.model.specs import parse_law
from numerics.model.workload import JointLengths, RequestClass, Workload

CONV_ATOL = 1e-12  # the direct convolution sums ~1e4 FFT outputs: absolute error ~1e-13
TILT_RTOL = 1e-6  # tilted FFT converged to 1e-8 between grid sizes; margin for the reference


def test_reference_geometric_row():
    # docs/theory.md §8.2 row 3; direct truncated convolution in tests/test_bounds.py: 4.83e-6
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
    # uniform O ∈ {1..100}, s = 20, M = 65 536 (docs/theory.md §8.2); r = 10 gives P ≈ 1e-306
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


LOBE_RTOL = 1e-7  # both methods converge to 1e-8 between their own grid sizes


@settings(max_examples=20)
@given(wl=small, rho=st.floats(0.2, 1.2), kind=st.sampled_from(["randomized", "poisson"]))
def test_main_lobe_inversion_equals_the_full_window_fft(wl, rho, kind):
    # two evaluations of the same inversion formula, at ~100 lobe frequencies vs a full window
    r = 3.3
    memory = max(1, int(rho * r * wl.mean_memory_time))
    fft = exact_tail(wl, memory, r, kind, method="fft")
    try:
        lobe = exact_tail(wl, memory, r, kind, method="lobe")
    except WorkloadError as exc:  # a near-lattice law: the lobe method must say so, not guess
        lobe = None
        message = str(exc)
    if lobe is None:
        assert "side peak" in message or "did not converge" in message
        return
    # far below capacity (E U ≫ M) the lobe path may answer by the certified Chernoff method
    # (P = 1 − δ/2, error ≤ δ/2 ≤ 1e-17): the same probability, checked against the FFT below
    assert lobe.method in ("lobe", "sure", "chernoff")
    assert lobe.prob == pytest.approx(fft.prob, rel=LOBE_RTOL, abs=CONV_ATOL)


def test_lattice_valued_memory_is_divided_out():
    # O ≡ 1 and S ∈ {4, 9}: every held value is 5 or 10, so U lives on 5ℤ
    wl = Workload.single(TokenLaw.from_pmf([4, 9], [0.5, 0.5]), parse_law("1"))
    budget = BudgetLaw("randomized", 4.5)
    direct = convolution_tail(wl, 37, budget)
    lobe = exact_tail(wl, 37, 4.5, "randomized", method="lobe")
    assert lobe.prob == pytest.approx(direct, rel=LOBE_RTOL)


def test_scale_target_runs_with_the_lobe_method():
    # M = 10^6 with decode support 10^4 (issue 4's scale target); the Chernoff bound dominates
    wl = Workload.single(parse_law("500"), parse_law("geom:mean=2000,max=10000"))
    memory = 10**6
    r = 0.8 * memory / wl.mean_memory_time
    got = exact_tail(wl, memory, r)
    assert got.method == "lobe"
    assert got.relative_change <= 1e-8
    bound = FlowTails(wl, memory).log_bound("chernoff", BudgetLaw("randomized", r))
    assert got.log_prob <= bound
    assert 1e-6 < got.prob < 1e-2  # a tail the bound overstates by ~10x here


@pytest.mark.parametrize(("kwargs", "needle"), [({"method": "magic"}, "method"),
                                                ({"rtol": 0.0}, "rtol")])
def test_bad_options_are_errors(kwargs, needle):
    wl = Workload.single(parse_law("5"), parse_law("uniform:1,20"))
    with pytest.raises(WorkloadError, match=needle):
        exact_tail(wl, 500, 2.0, **kwargs)


def test_heavy_tailed_clipped_law_tilts_by_the_tilted_spread():
    # Lomax(2.5) decode clipped at 3000 with a small mean: the tilted law is far wider than the
    # untilted one. A lobe sized by the untilted σ once returned log P = +16888 (paper_figs F2).
    # Reference: the full-window FFT, method="fft" (19 s): log P = −2.872224628883547.
    wl = Workload.single(parse_law("20"), parse_law("scipy:lomax(c=2.5,scale=5),max=3000"))
    memory = int(wl.mean_memory_time) + 100
    got = exact_tail(wl, memory, 1, "deterministic", method="lobe")
    assert got.log_prob == pytest.approx(-2.872224628883547, rel=LOBE_RTOL)


def test_joint_law_that_cannot_overflow_is_sure():
    # pairs (S, O) = (7, 1) and (1, 13), one activation per slot: at most 8 + Σ_{a=1}^{12} (a + 2)
    # = 110 tokens are held, below M = 118. The check once paired the longest prompt with the
    # longest decode (182 > 118), tilted at a θ where nothing converges, and warned of overflow.
    wl = Workload((RequestClass(JointLengths.from_samples(np.array([7, 1]), np.array([1, 13]))),))
    assert float(np.sum(wl.max_held_by_age())) == 110
    got = exact_tail(wl, 118, 1, "deterministic")
    assert got.method == "sure"
    assert got.prob == 0.0
    assert exact_tail(wl, 109, 1, "deterministic").prob > 0  # one token less and it can


def test_tails_below_the_smallest_double_are_tilted_at_the_chernoff_minimiser():
    # s = 20, O ~ U{1..100}, deterministic r = 10, M = 70 000: the Chernoff bound is below e^−745,
    # where its search used to stop early and hand the exact tail a θ that was not the minimiser.
    # Both inversions agree, and the bound (clipped at −745) stays above the exact log tail.
    wl = Workload.single(parse_law("20"), parse_law("uniform:1,100"))
    lobe = exact_tail(wl, 70_000, 10, "deterministic", method="lobe")
    fft = exact_tail(wl, 70_000, 10, "deterministic", method="fft")
    assert lobe.log_prob == pytest.approx(fft.log_prob, rel=LOBE_RTOL)
    assert lobe.log_prob < -745
    assert FlowTails(wl, 70_000).log_bound("chernoff", BudgetLaw("deterministic", 10)) >= lobe.log_prob
