"""Tail bounds on the saturated flow-control memory: every bound ≥ the exact tail.

The exact law of U is computed here by direct FFT convolution of the per-age cohort laws (an
independent method: the bounds use moments and cumulants, never this PMF). For bounded laws and
bounded budgets U ≤ ⌈r⌉·Σ_a (s_max + a + 1), so a grid of that size has no aliasing.

Reference values (docs/theory.md §8.2 table, computed there with numpy):
uniform O ∈ {1..100}, s = 20, M = 65 536, deterministic r = 20: Hoeffding 9e-10, Bernstein 3e-12,
Chernoff 3e-14, Normal 3e-16; r = 22: 8e-3, 1e-3, 6e-4, 5e-5.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from numerics.analysis.bounds import CHERNOFF_LOG_TOL, VALID_BOUNDS, FlowTails, _convex_gap, flow_rate
from numerics.analysis.flow import flow_saturated_variance
from numerics.errors import WorkloadError
from numerics.model.budget import BudgetLaw
from numerics.model.specs import parse_law
from numerics.model.workload import IndependentLengths, JointLengths, RequestClass, Workload

EXACT_SLACK = 1e-9  # FFT convolution round-off on probabilities (~1e-13), with margin
MC_Z = 5.0  # Monte Carlo within 5 standard errors: one-sided false alarm ~3e-7 per check


def exact_tail(workload: Workload, memory: int, budget: BudgetLaw) -> float:
    """P(U > M) by FFT convolution of the per-age laws (bounded laws, bounded budgets)."""
    assert workload.bounded
    assert budget.kind != "poisson"
    n_ages = workload.n_ages
    s_max = int(workload.max_prompt)
    size = int(budget.max_count * sum(s_max + a + 1 for a in range(n_ages))) + 1
    nfft = 1 << (size - 1).bit_length()
    total = np.ones(nfft // 2 + 1, dtype=complex)
    k = math.floor(budget.rate_per_slot)
    f = budget.rate_per_slot - k
    for a in range(n_ages):
        # law of one term X_a = (S + a + 1)·1{O > a}, mixing over classes and joint pairs
        pmf = np.zeros(nfft)
        for c, w in zip(workload.classes, workload.mix, strict=True):
            lengths = c.lengths
            if isinstance(lengths, JointLengths):
                s_vals, o_vals, p = lengths.prompt_values, lengths.decode_values, lengths.probs
            else:
                s_law, o_law = lengths.prompt, lengths.decode
                s_vals = np.repeat(s_law.values, o_law.values.size)
                o_vals = np.tile(o_law.values, s_law.values.size)
                p = np.outer(s_law.probs, o_law.probs).ravel()
            alive = o_vals > a
            np.add.at(pmf, s_vals[alive] + a + 1, w * p[alive])
            pmf[0] += w * p[~alive].sum()
        phi = np.fft.rfft(pmf)
        total *= phi**k * ((1 - f) + f * phi)
    law = np.fft.irfft(total, nfft)[:size]
    return float(max(0.0, law[memory + 1 :].sum()))


def test_reference_table_uniform():
    wl = Workload.single(parse_law("20"), parse_law("uniform:1,100"))
    tails = FlowTails(wl, 65536)
    ref = {  # docs/theory.md §8.2, one significant digit
        20: {"hoeffding": 9e-10, "bernstein": 3e-12, "chernoff": 3e-14, "gaussian": 3e-16},
        22: {"hoeffding": 8e-3, "bernstein": 1e-3, "chernoff": 6e-4, "gaussian": 5e-5},
    }
    for r, table in ref.items():
        got = tails.bounds(r, "deterministic")
        for name, value in table.items():
            assert float(f"{got[name]:.0e}") == value, (r, name, got[name])


def test_geometric_chernoff_is_valid_and_gaussian_is_not_a_bound():
    # s = 20, geometric p = 0.05, M = 16 000, deterministic r = 16 (docs/theory.md §8.2 row 3).
    # Exact tail by truncated convolution (ages with P(O > a) < 1e-18 dropped): 4.83e-6.
    s, p, r, m = 20, 0.05, 16, 16000
    poly = np.zeros(m + 1)
    poly[0] = 1.0
    nfft = 1 << (2 * (m + 1)).bit_length()
    from scipy.stats import binom

    for a in range(2000):
        g = (1 - p) ** a
        if g < 1e-18:
            break
        f = np.zeros(m + 1)
        j = np.arange(r + 1)
        idx = j * (s + a + 1)
        ok = idx <= m
        f[idx[ok]] = binom.pmf(j[ok], r, g)
        poly = np.fft.irfft(np.fft.rfft(poly, nfft) * np.fft.rfft(f, nfft), nfft)[: m + 1]
    exact = 1 - poly.sum()
    assert 4.5e-6 < exact < 5.2e-6
    wl = Workload.single(parse_law(str(s)), parse_law(f"geom:p={p}"))
    got = FlowTails(wl, m).bounds(r, "deterministic")
    assert got["chernoff"] >= exact
    assert got["cantelli"] >= exact
    assert got["gaussian"] < exact  # the normal approximation is optimistic here: NOT a bound
    assert got["hoeffding"] is None  # unbounded decode law
    assert got["bernstein"] is None


small_lengths = st.one_of(
    st.builds(
        lambda s, lo, w: Workload.single(parse_law(str(s)), parse_law(f"uniform:{lo},{lo + w}")),
        st.integers(0, 12), st.integers(1, 6), st.integers(0, 10),
    ),
    st.builds(
        lambda pairs: Workload((RequestClass(JointLengths.from_samples(
            np.array([x for x, _ in pairs]), np.array([y for _, y in pairs]))),)),
        st.lists(st.tuples(st.integers(0, 10), st.integers(1, 14)), min_size=1, max_size=8),
    ),
)


@given(wl=small_lengths, rho=st.floats(0.05, 0.95), mfrac=st.floats(0.0, 0.6),
       kind=st.sampled_from(["deterministic", "randomized"]))
def test_every_bound_dominates_the_exact_tail(wl, rho, mfrac, kind):
    # Build (not filter): M between r·E[W] and the largest possible U.
    ew = wl.mean_memory_time
    m = 400
    r = rho * m / ew
    if kind == "deterministic":
        r = max(1, math.floor(r))
    budget = BudgetLaw(kind, r)
    u_max = budget.max_count * sum(int(wl.max_prompt) + a + 1 for a in range(wl.n_ages))
    mean_u = r * ew
    memory = int(mean_u + mfrac * max(u_max - mean_u, 0)) + 1
    exact = exact_tail(wl, memory, budget)
    bounds = FlowTails(wl, memory).bounds(r, kind)
    for name in VALID_BOUNDS:
        assert bounds[name] is not None
        assert bounds[name] + EXACT_SLACK >= exact, (name, bounds[name], exact)


@given(wl=small_lengths, r=st.floats(0.2, 6.0))
def test_variance_ordering_and_exact_variance(wl, r):
    v = {k: flow_saturated_variance(wl, r, k) for k in ("randomized", "poisson")}
    v["deterministic"] = flow_saturated_variance(wl, math.floor(r), "deterministic")
    assert v["randomized"] <= v["poisson"] * (1 + 1e-12)
    # the randomized law adds f(1-f)·Σμ² to the deterministic variance at the same mean
    within = flow_saturated_variance(wl, 1.0, "deterministic")
    assert v["randomized"] >= r * within * (1 - 1e-12)


def test_variance_matches_monte_carlo():
    # Sample the saturated active set directly: each age a holds B i.i.d. cohort members.
    wl = Workload.single(parse_law("uniform:5,15"), parse_law("uniform:1,30"))
    rng = np.random.default_rng(7)
    n = 20000
    for kind, r in (("deterministic", 3), ("randomized", 2.5), ("poisson", 2.5)):
        budget = BudgetLaw(kind, r)
        u = np.zeros(n)
        for a in range(wl.n_ages):
            counts = budget.sample(n, rng)
            total = int(counts.sum())
            _, s, o = wl.sample(total, rng)
            x = np.where(o > a, s + a + 1, 0)
            u += np.bincount(np.repeat(np.arange(n), counts), weights=x, minlength=n)
        var = flow_saturated_variance(wl, r, kind)
        # Var of the sample variance ≈ (μ4 − σ⁴)/n; bound it with the sample fourth moment.
        se = np.sqrt(np.mean((u - u.mean()) ** 4) - u.var() ** 2) / np.sqrt(n)
        assert abs(u.var(ddof=1) - var) <= MC_Z * se
        assert abs(u.mean() - r * wl.mean_memory_time) <= MC_Z * u.std() / np.sqrt(n)


def test_flow_rate_is_the_largest_certified_rate():
    wl = Workload.single(parse_law("100"), parse_law("geom:mean=200,max=4000"))
    tails = FlowTails(wl, 50000)
    for budget in ("randomized", "poisson"):
        fr = tails.flow_rate(1e-6, budget)
        assert 0 < fr.rate_per_slot < tails.lambda_max
        assert fr.overflow_bound <= 1e-6
        above = fr.rate_per_slot * (1 + 1e-6)
        assert tails.bound(fr.bound, above, budget) > 1e-6 or fr.bound != "chernoff"
    loose = flow_rate(wl, 50000, 1e-3).rate_per_slot
    tight = flow_rate(wl, 50000, 1e-9).rate_per_slot
    assert tight < loose < tails.lambda_max


def test_deterministic_budget_searches_integers():
    wl = Workload.single(parse_law("10"), parse_law("uniform:1,20"))
    fr = flow_rate(wl, 20000, 1e-6, "deterministic")
    assert fr.rate_per_slot == int(fr.rate_per_slot) >= 1
    tails = FlowTails(wl, 20000)
    best_next = min(
        v for k, v in tails.bounds(fr.rate_per_slot + 1, "deterministic").items()
        if v is not None and k != "gaussian"
    )
    assert best_next > 1e-6


def test_bad_inputs():
    wl = Workload.single(parse_law("10"), parse_law("uniform:1,20"))
    with pytest.raises(WorkloadError, match="epsilon"):
        flow_rate(wl, 20000, 1.5)
    with pytest.raises(WorkloadError, match="integer"):
        BudgetLaw("deterministic", 2.5)
    with pytest.raises(WorkloadError, match="budget law"):
        BudgetLaw("greedy", 2.0)
    with pytest.raises(WorkloadError, match="unknown bound"):
        FlowTails(wl, 20000).bound("markov", 1.0)


@pytest.mark.parametrize("rate", [-1.0, float("nan"), float("inf"), "2", True])
def test_saturated_moments_refuse_a_bad_rate(rate):
    # Issue 15 (more of the same kind): flow_saturated_mean(wl, -1) returned E[U] = −2727 and NaN
    # passed through
    from numerics.analysis.flow import flow_saturated_mean, flow_saturated_variance
    from numerics.errors import WorkloadError
    from numerics.model.workload import Workload

    wl = Workload.single(20, "uniform:1,100")
    with pytest.raises(WorkloadError, match="activation rate must be a finite number"):
        flow_saturated_mean(wl, rate)
    with pytest.raises(WorkloadError, match="activation rate must be a finite number"):
        flow_saturated_variance(wl, rate)


def test_flow_rate_broadcasts_over_epsilon():
    # Issue 15: flow_rate(eps=array) raised instead of broadcasting
    from numerics.analysis.bounds import flow_rate
    from numerics.model.workload import Workload

    wl = Workload.single(20, "uniform:1,100")
    eps = np.array([[1e-2, 1e-4], [1e-6, 1e-9]])
    fr = flow_rate(wl, 20_000, eps)
    assert fr.rate_per_slot.shape == fr.bound.shape == fr.overflow_bound.shape == eps.shape
    for idx in np.ndindex(eps.shape):
        one = flow_rate(wl, 20_000, float(eps[idx]))
        assert fr.rate_per_slot[idx] == one.rate_per_slot
        assert fr.bound[idx] == one.bound
    assert np.all(np.diff(fr.rate_per_slot.ravel()) < 0)  # smaller ε, smaller certified rate


# ---------------------------------------------------------------------- the Chernoff θ search
# Issue 15: the search of FlowTails._chernoff_log is a certified stencil-Newton search (with warm
# starts, kept log φ_a(θ), and the negligible far ages bounded instead of summed). These tests
# check its value against an independent dense-grid minimisation of the same objective.
REF_SLACK = 1e-10  # the reference's own inexactness and rounding on the log scale (values ≲ 745)


def _reference_h(tails: FlowTails, budget: BudgetLaw, theta: np.ndarray) -> np.ndarray:
    """h(θ) = −θM + Σ_a log P_B(φ_a(θ)) over every stored age, by numpy's logaddexp and the
    budget's own generating function (none of the search's shortcuts)."""
    g = tails.workload.age_moments()[0]
    with np.errstate(divide="ignore"):
        log_stay = np.log1p(-np.minimum(g, 1.0))
    rows = np.logaddexp(log_stay, tails.workload.age_log_mgf(np.atleast_1d(theta)))
    with np.errstate(over="ignore", invalid="ignore"):
        k = np.sum(budget.log_pgf_of_log(rows), axis=-1)
        out = -np.atleast_1d(theta) * tails.memory_tokens + k
    return np.where(np.isfinite(out), out, np.inf)


def _reference_min(tails: FlowTails, budget: BudgetLaw) -> float:
    """inf_θ h(θ) by a dense geometric grid, refined by bounded Brent between the grid points
    next to the best one (h is convex), clipped as the bound is: to [log of the smallest double, 0]."""
    from scipy import optimize

    grid = np.geomspace(1e-10, 1.0, 97)
    vals = _reference_h(tails, budget, grid)
    k = int(np.argmin(vals))
    lo, hi = (grid[k - 1] if k > 0 else 0.0), grid[min(k + 1, grid.size - 1)]
    res = optimize.minimize_scalar(lambda t: float(_reference_h(tails, budget, np.array([t]))[0]),
                                   bounds=(lo, hi), method="bounded", options={"xatol": hi * 1e-12})
    return min(max(float(res.fun) if res.fun < vals[k] else float(vals[k]), -745.0), 0.0)


CHERNOFF_CASES = {
    "uniform bounded": (lambda: Workload.single(parse_law("20"), parse_law("uniform:1,100")), 65536),
    "geometric, unbounded (6.6k stored ages)": (
        lambda: Workload.single(parse_law("10"), parse_law("geom:mean=10")), 1500),
    "zipf a=3.5 decode clipped at 5000 (polynomial tail)": (
        lambda: Workload.single(parse_law("uniform:1,50"), parse_law("zipf:a=3.5,max=5000")), 2000),
    "log-normal prompt and decode, clipped": (
        lambda: Workload.single(parse_law("lognormal:median=200,sigma=1.5,max=20000"),
                                parse_law("lognormal:median=50,sigma=1.2,max=1500")), 400_000),
    "two classes": (lambda: Workload((
        RequestClass(IndependentLengths(parse_law("10"), parse_law("uniform:1,30")), 1.0, "a"),
        RequestClass(IndependentLengths(parse_law("uniform:100,400"), parse_law("geom:mean=60,max=900")),
                     0.25, "b"))), 30_000),
    "joint trace pairs": (lambda: Workload((RequestClass(JointLengths.from_samples(
        np.array([5, 40, 300, 12, 7, 900]), np.array([200, 3, 60, 1, 45, 500]))),)), 20_000),
}
#: rates as fractions of λ_max: far below (θ* near the edge of the MGF's domain) to within 1e-4
FRACTIONS = (1e-3, 0.05, 0.3, 0.7, 0.95, 0.9999)


SLOW_CHERNOFF_CASES = {
    "geometric, unbounded (27k stored ages)": (
        lambda: Workload.single(parse_law("10"), parse_law("geom:mean=40")), 5000),
    "zipf a=4.5 decode, unclipped (25k stored ages)": (
        lambda: Workload.single(parse_law("uniform:1,50"), parse_law("zipf:a=4.5")), 2000),
}


@pytest.mark.parametrize("case", [*CHERNOFF_CASES, *(
    pytest.param(name, marks=pytest.mark.slow) for name in SLOW_CHERNOFF_CASES)])
def test_chernoff_search_matches_a_dense_grid(case):
    build, memory = {**CHERNOFF_CASES, **SLOW_CHERNOFF_CASES}[case]
    wl = build()
    shared = FlowTails(wl, memory)  # one search history across every budget and rate (warm starts)
    for kind in ("randomized", "poisson", "deterministic"):
        for frac in FRACTIONS:
            r = frac * shared.lambda_max
            if kind == "deterministic":
                r = math.floor(r)
                if r < 1 or r * wl.mean_memory_time >= memory:
                    continue
            budget = BudgetLaw(kind, r)
            ref = _reference_min(shared, budget)
            for tails in (shared, FlowTails(wl, memory)):  # warm and cold
                got = tails._chernoff_log(budget)
                assert ref - REF_SLACK <= got <= ref + CHERNOFF_LOG_TOL + REF_SLACK, (
                    case, kind, frac, got, ref)


def test_chernoff_bound_is_zero_log_at_and_above_capacity():
    wl = Workload.single(parse_law("10"), parse_law("geom:mean=40"))
    tails = FlowTails(wl, 5000)
    for factor in (1.0, 1.5, 100.0):
        assert tails.log_bound("chernoff", BudgetLaw("poisson", factor * tails.lambda_max)) == 0.0
        assert tails.bound("chernoff", factor * tails.lambda_max, "randomized") == 1.0


def test_chernoff_values_bound_the_full_sum_from_above():
    # the far ages (log E[e^{θX_a}; O > a] < log 1e-30) are bounded, not summed: the value may
    # only exceed the full sum, and by far less than the search tolerance
    wl = Workload.single(parse_law("100"), parse_law("geom:mean=200"))
    tails = FlowTails(wl, 50_000)
    budget = BudgetLaw("randomized", 0.4)
    theta = [1e-5, 1e-3, 3e-3, 4.9e-3]
    got = tails._chernoff_values(theta, budget)
    full = _reference_h(tails, budget, np.array(theta))
    scale = np.array(theta) * 50_000 + 1.0
    assert np.all(got >= full - 1e-13 * scale)
    assert np.all(got <= full + 1e-13 * scale + 1e-20)


def test_vectorised_age_log_mgf_matches_one_theta_at_a_time():
    theta = np.array([-0.01, 0.0, 1e-4, 0.02])
    for build, _memory in CHERNOFF_CASES.values():
        wl = build()
        rows = wl.age_log_mgf(theta)
        assert rows.shape == (theta.size, wl.n_ages)
        for t, row in zip(theta, rows, strict=True):
            np.testing.assert_allclose(row, wl.age_log_mgf(float(t)), rtol=1e-13, atol=1e-13)


@given(centre=st.floats(1e-6, 1e3), curv=st.floats(1e-3, 1e6), growth=st.floats(0.0, 50.0),
       xs=st.lists(st.floats(1e-3, 10.0), min_size=2, max_size=8, unique=True))
def test_convex_gap_never_certifies_too_early(centre, curv, growth, xs):
    # h(θ) = curv·(θ − c)²/2 + e^{growth·θ} − 1 − curv·c²/2 is convex, h(0) = 0; its minimum on a
    # fine grid (convex: the true minimum is at most 1e-6 below the grid's on this scale) must
    # not lie below fs[i] − gap
    c = centre / 1e3

    def h(t: np.ndarray) -> np.ndarray:
        return curv * (t - c) ** 2 / 2 + np.expm1(growth * t) - curv * c * c / 2

    pts = np.array(sorted({0.0, *(x * c for x in xs)}))
    fs = h(pts)
    i = int(np.argmin(fs))
    gap = _convex_gap(pts.tolist(), fs.tolist(), i)
    fine = np.linspace(0.0, pts[-1], 200_001)
    true_min = float(np.min(h(fine)))
    assert fs[i] - gap <= true_min + 1e-9 * (1 + abs(true_min))
