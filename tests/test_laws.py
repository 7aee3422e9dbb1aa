"""Tests of :mod:`numerics.model.laws`: the :class:`TokenLaw` constructors, transforms and exact moments.

Oracles are exact wherever the answer is rational (``fractions.Fraction`` sums over small PMFs,
drawn by Hypothesis), closed forms otherwise (named beside each), and Hurwitz zeta values for the
heavy-tailed Zipf law.
"""

from __future__ import annotations

import math
from collections import Counter
from fractions import Fraction
from functools import cache

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from scipy import special, stats

from numerics.errors import UnstableWorkloadError, WorkloadError
from numerics.model.laws import MAX_SUPPORT, TAIL_EPS, TokenLaw

# ---------------------------------------------------------------------------------- tolerances
EXACT_RTOL = 1e-12  # a few dozen float operations on masses rounded to double (ε ≈ 1.1e-16 each)
FAMILY_RTOL = 1e-11  # pairwise sums of ≤ 7e5 scipy pmf values (a few ulps each), renormalised;
#                      the worst error seen over 1500 random parameter sets was 1.6e-14
ZIPF_RTOL = 1e-6  # Pareto tail correction beyond N = 2**21 is exact to O(1/N) ≈ 5e-7 relative on
#                   a tail term worth ≤ 5 % of E[X] at a = 2.2 (observed error 1e-8 there)
TAIL_EXTRAPOLATION_RTOL = 1e-5  # P(X > N) extrapolated as p(N)·N/α: Euler–Maclaurin says the
#                                 relative error is ~(a + 1)/(2N) ≈ 1e-6 at N = 2**21
MC_Z = 5.0  # 5 standard errors: two-sided normal false alarm ~5.7e-7 per check (seeds are fixed)
MC_DRAWS = 40_000  # draws per Monte Carlo check


# ---------------------------------------------------------------------------------- strategies
@st.composite
def small_pmfs(draw, lo: int = 0, hi: int = 30, max_size: int = 6) -> dict[int, Fraction]:
    """A PMF on ≤ max_size distinct points of {lo, ..., hi} with rational masses w_i / Σ w."""
    values = draw(st.lists(st.integers(lo, hi), min_size=1, max_size=max_size, unique=True))
    weights = draw(st.lists(st.integers(1, 50), min_size=len(values), max_size=len(values)))
    total = sum(weights)
    return {v: Fraction(w, total) for v, w in zip(values, weights, strict=True)}


def law_of(pmf: dict[int, Fraction], label: str = "pmf") -> TokenLaw:
    return TokenLaw.from_pmf(list(pmf), [float(p) for p in pmf.values()], label)


def exact_moment(pmf: dict[int, Fraction], k: int) -> Fraction:
    return sum((p * v**k for v, p in pmf.items()), Fraction(0))


@cache
def zipf_law(a: float) -> TokenLaw:
    """Zipf(a) on {1, 2, ...}, built once per module run (≈ 0.7 s: the support is 2**21 points)."""
    return TokenLaw.from_scipy(stats.zipf(a))


# ---------------------------------------------------------------------------------- constructors
@given(st.integers(0, 10**9))
@example(0)
@example(1)
def test_deterministic_is_an_atom(n):
    law = TokenLaw.deterministic(n)
    assert law.mean == n
    assert law.second_moment == float(n * n)  # one IEEE multiplication: n² correctly rounded
    # Var X = E[X²] - E[X]² cancels: its error is on the scale of one ulp of E[X²].
    assert abs(law.var) <= EXACT_RTOL * law.second_moment
    assert law.bounded
    assert law.min_value == law.max_value == n
    assert law.prob_zero() == (1.0 if n == 0 else 0.0)
    assert law.sf(n - 1) == 1.0
    assert law.sf(n) == 0.0


def test_variance_is_never_negative():
    law = TokenLaw.deterministic(108_052_983)  # n² ≈ 1.2e16 > 2**53: an ulp of E[X²] is 2
    assert law.var >= 0.0


@pytest.mark.parametrize("n", [-1, 2.5, -0.5, "x", None, float("inf")])
def test_deterministic_rejects_non_counts(n):
    with pytest.raises(WorkloadError, match="non-negative integer"):
        TokenLaw.deterministic(n)


def test_from_pmf_merges_duplicates_and_drops_zero_masses():
    law = TokenLaw.from_pmf([3, 1, 3, 2, 7], [0.1, 0.2, 0.3, 0.4, 0.0])
    assert_array_equal(law.values, [1, 2, 3])
    assert_allclose(law.probs, [0.2, 0.4, 0.4], rtol=EXACT_RTOL)
    assert law.max_value == 3  # the zero mass at 7 is gone


@given(
    st.lists(st.tuples(st.integers(0, 8), st.integers(1, 20)), min_size=1, max_size=15),
)
@example([(5, 1), (5, 3)])
def test_from_pmf_merges_like_an_exact_tally(pairs):
    # Values drawn from a small range repeat often; the merged law must equal the exact tally.
    total = sum(w for _, w in pairs)
    tally: Counter[int] = Counter()
    for v, w in pairs:
        tally[v] += w
    law = TokenLaw.from_pmf([v for v, _ in pairs], [w / total for _, w in pairs])
    assert_array_equal(law.values, sorted(tally))
    assert_allclose(law.probs, [tally[v] / total for v in sorted(tally)], rtol=EXACT_RTOL)


@pytest.mark.parametrize(
    ("values", "probs", "match"),
    [
        ([1.5, 2], [0.5, 0.5], "integers"),
        ([-1, 2], [0.5, 0.5], "non-negative"),
        ([1, 2], [0.5, 0.6], "sum to"),
        ([1, 2], [0.4, 0.5], "sum to"),
        ([1, 2], [0.5], "equal length"),
        ([], [], "equal length"),
        ([[1, 2]], [[0.5, 0.5]], "1-d"),
    ],
)
def test_from_pmf_validation(values, probs, match):
    with pytest.raises(WorkloadError, match=match):
        TokenLaw.from_pmf(values, probs)


@pytest.mark.parametrize(
    ("values", "probs", "match"),
    [
        # Regressions: masses used to be merged before they were checked, so a NaN mass was
        # dropped (NaN > 0 is False), a negative one merged into a duplicate, and an infinite
        # value cast to int64 (RuntimeWarning, garbage) instead of raising.
        ([1, 2], [1.0, math.nan], "finite and non-negative"),
        ([1, 2, 2], [0.5, 0.7, -0.2], "finite and non-negative"),
        ([1, math.inf], [0.5, 0.5], "finite integers"),
    ],
)
def test_from_pmf_rejects_bad_masses_before_merging(values, probs, match):
    with pytest.raises(WorkloadError, match=match):
        TokenLaw.from_pmf(values, probs)


@given(st.lists(st.integers(0, 40), min_size=1, max_size=60))
@example([7])
def test_from_samples_is_the_empirical_law(samples):
    law = TokenLaw.from_samples(samples)
    counts = Counter(samples)
    n = len(samples)
    assert_array_equal(law.values, sorted(counts))
    assert_allclose(law.probs, [counts[v] / n for v in sorted(counts)], rtol=EXACT_RTOL)
    # Its mean is the sample mean (exact rational oracle).
    assert_allclose(law.mean, float(Fraction(sum(samples), n)), rtol=EXACT_RTOL)


@pytest.mark.parametrize(
    ("samples", "match"),
    [
        ([], "non-empty"),
        ([[1, 2], [3, 4]], "1-d"),
        ([1, 2, -3], "non-negative"),
        ([1, 2.5], "integers"),
        ([1, math.nan], "integers"),
    ],
)
def test_from_samples_validation(samples, match):
    with pytest.raises(WorkloadError, match=match):
        TokenLaw.from_samples(samples)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"values": [2, 1], "probs": [0.5, 0.5]}, "sorted and distinct"),
        ({"values": [1, 1], "probs": [0.5, 0.5]}, "sorted and distinct"),
        ({"values": [1, 2], "probs": [1.5, -0.5]}, "non-negative"),
        ({"values": [1, 2], "probs": [0.5, math.nan]}, "finite"),
        ({"values": [1, math.nan], "probs": [0.5, 0.5]}, "integers"),
        ({"values": [1, 2], "probs": [0.5, 0.5], "tail_mass": 0.1}, "sum to"),
        ({"values": [1, 2], "probs": [0.5, 0.4]}, "sum to"),
        ({"values": [1, 2, 3], "probs": [0.5, 0.5]}, "equal length"),
        ({"values": [], "probs": []}, "non-empty"),
    ],
)
def test_constructor_validation(kwargs, match):
    with pytest.raises(WorkloadError, match=match):
        TokenLaw(np.asarray(kwargs.pop("values")), np.asarray(kwargs.pop("probs")), **kwargs)


def test_constructor_accepts_the_tail_in_the_mass_balance():
    law = TokenLaw(np.array([1, 2]), np.array([0.5, 0.25]), "t", tail_mass=0.25)
    assert not law.bounded
    assert law.max_value == math.inf


def test_laws_are_immutable():
    law = TokenLaw.from_pmf([1, 2], [0.5, 0.5])
    assert not law.values.flags.writeable
    assert not law.probs.flags.writeable
    with pytest.raises(AttributeError):
        law.label = "other"  # type: ignore[misc]


@given(st.integers(1, 60), st.fractions(0, 1, max_denominator=64))
@example(1, Fraction(1))
@example(5, Fraction(0))
def test_from_scipy_discrete_binomial_pmf(n, p):
    # Binomial(n, p): P(X = k) = C(n, k) p^k (1 - p)^(n - k), exact in rationals.
    law = TokenLaw.from_scipy(stats.binom(n, float(p)))
    exact = {k: math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)}
    support = [k for k, q in exact.items() if q > 0]
    assert law.bounded
    assert law.values[0] == support[0]
    # Masses below ~1e-300 may be dropped as zeros; every stored value carries its exact mass.
    assert_allclose(law.probs, [float(exact[int(k)]) for k in law.values], rtol=FAMILY_RTOL)
    assert_allclose(law.mean, float(n * p), rtol=FAMILY_RTOL)


def test_from_scipy_infinite_support_keeps_its_tail_accounts():
    law = TokenLaw.from_scipy(stats.poisson(5.0))
    assert law.values[0] == 0
    assert 0.0 <= law.tail_mass <= TAIL_EPS
    assert law.sf(law.values[-1]) == law.tail_mass
    assert law.tail_index is None
    # Poisson(μ): E[X] = μ, E[X²] = μ(μ + 1).
    assert_allclose([law.mean, law.second_moment], [5.0, 30.0], rtol=FAMILY_RTOL)


@given(st.integers(1, 400), st.integers(0, 50))
@example(1, 0)
def test_from_scipy_continuous_uniform_by_ceiling_is_discrete_uniform(width, loc):
    # Y ~ U(loc, loc + width) with integer ends: P(⌈Y⌉ = n) = 1/width for n = loc+1..loc+width.
    law = TokenLaw.from_scipy(stats.uniform(loc=loc, scale=width))
    assert_array_equal(law.values, np.arange(loc + 1, loc + width + 1))
    assert_allclose(law.probs, 1.0 / width, rtol=FAMILY_RTOL)
    assert law.bounded


@given(st.floats(0.2, 400.0))
@example(1.0)
@example(200.0)
def test_from_scipy_continuous_exponential_by_ceiling_is_geometric(scale):
    # Y ~ Exp(mean β): P(⌈Y⌉ = n) = e^{-(n-1)/β} - e^{-n/β} = p q^{n-1} with q = e^{-1/β};
    # geometric on {1, 2, ...}: E[X] = 1/p, E[X²] = (2 - p)/p².
    law = TokenLaw.from_scipy(stats.expon(scale=scale))
    q = math.exp(-1.0 / scale)
    p = -math.expm1(-1.0 / scale)
    head = law.values[:50]
    assert head[0] == 1
    assert_allclose(law.probs[:50], p * q ** (head - 1.0), rtol=FAMILY_RTOL)
    assert_allclose(law.mean, 1 / p, rtol=FAMILY_RTOL)
    assert_allclose(law.second_moment, (2 - p) / p**2, rtol=FAMILY_RTOL)


@pytest.mark.parametrize(
    ("dist", "match"),
    [
        (stats.poisson, "frozen"),  # the class, not a frozen law
        ("poisson", "frozen"),
        (stats.poisson(5, loc=-2), "non-negative"),
        (stats.norm(), "non-negative"),
        (stats.randint(0, MAX_SUPPORT + 10), "larger than"),
    ],
)
def test_from_scipy_rejects(dist, match):
    with pytest.raises(WorkloadError, match=match):
        TokenLaw.from_scipy(dist)


# ---------------------------------------------------------------------------------- transforms
@given(small_pmfs(), st.integers(0, 35))
@example({3: Fraction(1)}, 3)
@example({3: Fraction(1)}, 0)
@example({1: Fraction(1, 2), 9: Fraction(1, 2)}, 5)
def test_clip_moves_the_mass_above_into_an_atom(pmf, m):
    law = law_of(pmf).clip(m)
    clipped: dict[int, Fraction] = Counter()
    for v, p in pmf.items():
        clipped[min(v, m)] += p
    assert_array_equal(law.values, sorted(clipped))
    assert_allclose(law.probs, [float(clipped[v]) for v in sorted(clipped)], rtol=EXACT_RTOL)
    at_or_above = sum((p for v, p in pmf.items() if v >= m), Fraction(0))
    if at_or_above:
        assert law.max_value == m
        assert_allclose(law.probs[-1], float(at_or_above), rtol=EXACT_RTOL)
    for k in (1, 2):
        assert_allclose(law.moment(k), float(exact_moment(clipped, k)), rtol=EXACT_RTOL)
    assert law.label.endswith(f",max={m}")


def test_clip_counts_the_tail_mass():
    # Stored {1: 1/2, 2: 1/4} plus 1/4 beyond the stored support.
    law = TokenLaw(np.array([1, 2]), np.array([0.5, 0.25]), "t", tail_mass=0.25)
    wide = law.clip(5)
    assert_array_equal(wide.values, [1, 2, 5])
    assert_array_equal(wide.probs, [0.5, 0.25, 0.25])
    assert wide.bounded
    assert wide.tail_mass == 0.0
    tight = law.clip(2)
    assert_array_equal(tight.values, [1, 2])
    assert_array_equal(tight.probs, [0.5, 0.5])


def test_clip_of_a_geometric_law_matches_its_closed_form():
    # Geometric(p) on {1, 2, ...} with q = 1 - p: P(X ≥ m) = q^{m-1},
    # E[min(X, m)] = Σ_{n<m} P(X > n) = (1 - q^m)/p, E[min(X, m)²] = Σ_{n<m} (2n + 1) q^n.
    p, m = Fraction(0.005), 300  # the exact rational of the double scipy receives
    q = 1 - p
    law = TokenLaw.from_scipy(stats.geom(float(p))).clip(m)
    assert law.max_value == m
    assert_allclose(law.probs[-1], float(q ** (m - 1)), rtol=FAMILY_RTOL)
    assert_allclose(law.mean, float((1 - q**m) / p), rtol=FAMILY_RTOL)
    second = sum((2 * n + 1) * q**n for n in range(m))
    assert_allclose(law.second_moment, float(second), rtol=FAMILY_RTOL)


@pytest.mark.parametrize("m", [-1, 2.5])
def test_clip_validation(m):
    with pytest.raises(WorkloadError, match="max_tokens"):
        TokenLaw.deterministic(5).clip(m)


@given(small_pmfs(), st.integers(0, 1000))
@example({0: Fraction(1)}, 0)
def test_shift_adds_a_constant(pmf, k):
    law = law_of(pmf, "base")
    shifted = law.shift(k)
    assert_array_equal(shifted.values, law.values + k)
    assert_array_equal(shifted.probs, law.probs)
    moved = {v + k: p for v, p in pmf.items()}
    for j in (1, 2):
        assert_allclose(shifted.moment(j), float(exact_moment(moved, j)), rtol=EXACT_RTOL)
    assert shifted.label == ("base" if k == 0 else f"base,shift={k}")


def test_shift_keeps_the_tail_accounts():
    law = TokenLaw(np.array([1, 2]), np.array([0.5, 0.25]), "t", 0.25, 3.0, None)
    shifted = law.shift(4)
    assert shifted.tail_mass == 0.25
    assert shifted.tail_excess == 3.0
    assert shifted.sf(6) == 0.25


@pytest.mark.parametrize(("k", "match"), [(1.5, "integer"), (-2, "non-negative")])
def test_shift_validation(k, match):
    with pytest.raises(WorkloadError, match=match):
        TokenLaw.from_pmf([1, 3], [0.5, 0.5]).shift(k)


# ---------------------------------------------------------------------------------- sf, ages, mgf
@given(small_pmfs(), st.lists(st.floats(-3.0, 40.0), min_size=1, max_size=8))
@example({2: Fraction(1)}, [1.0, 1.5, 2.0, 2.5])
def test_sf_is_the_exceedance_probability(pmf, xs):
    law = law_of(pmf)
    expected = [float(sum((p for v, p in pmf.items() if v > x), Fraction(0))) for x in xs]
    assert_allclose(law.sf(np.array(xs)), expected, rtol=EXACT_RTOL)
    scalar = law.sf(xs[0])
    assert isinstance(scalar, float)
    assert_allclose(scalar, expected[0], rtol=EXACT_RTOL)


def test_sf_includes_the_tail_beyond_the_stored_support():
    law = TokenLaw(np.array([1, 2]), np.array([0.5, 0.25]), "t", tail_mass=0.25)
    assert_allclose(law.sf([0, 1, 2, 10**6]), [1.0, 0.5, 0.25, 0.25], rtol=EXACT_RTOL)


@given(small_pmfs(), st.integers(1, 45))
def test_survival_by_age_is_sf_on_0_to_n_minus_1(pmf, n_ages):
    law = law_of(pmf)
    g = law.survival_by_age(n_ages)
    assert g.shape == (n_ages,)
    expected = [float(sum((p for v, p in pmf.items() if v > a), Fraction(0))) for a in range(n_ages)]
    assert_allclose(g, expected, rtol=EXACT_RTOL)


@given(small_pmfs(), st.floats(-1.0, 1.0))
@example({0: Fraction(1)}, 0.0)
def test_log_mgf_of_a_finite_law(pmf, theta):
    law = law_of(pmf)
    expected = math.log(math.fsum(float(p) * math.exp(theta * v) for v, p in pmf.items()))
    # log of the sum: an absolute error ~1e-15 when the mgf is near 1, so compare with rtol + atol.
    assert_allclose(law.log_mgf(theta), expected, rtol=EXACT_RTOL, atol=EXACT_RTOL)


@given(st.floats(0.01, 0.9), st.floats(-1.0, 0.9))
@example(0.005, 0.0)
def test_log_mgf_of_a_geometric_law(p, fraction):
    # Geometric(p) on {1, 2, ...}: E[e^{θX}] = p e^θ / (1 - q e^θ) for θ < -log q; θ is built as a
    # fraction of that limit, so the stored support (to a tail of 1e-300) misses < 1e-30 of it.
    q = 1 - p
    theta = fraction * -math.log(q)
    law = TokenLaw.from_scipy(stats.geom(p))
    expected = math.log(p) + theta - math.log1p(-q * math.exp(theta))
    assert_allclose(law.log_mgf(theta), expected, rtol=FAMILY_RTOL, atol=FAMILY_RTOL)


def test_log_mgf_of_shifted_poisson_and_deterministic():
    # k + Poisson(μ): log E[e^{θ(k+X)}] = θk + μ(e^θ - 1).
    law = TokenLaw.from_scipy(stats.poisson(7.0)).shift(3)
    for theta in (-0.5, 0.0, 0.3):
        expected = 3 * theta + 7.0 * math.expm1(theta)
        assert_allclose(law.log_mgf(theta), expected, rtol=FAMILY_RTOL, atol=FAMILY_RTOL)
    assert_allclose(TokenLaw.deterministic(20).log_mgf(0.25), 5.0, rtol=EXACT_RTOL)


# ---------------------------------------------------------------------------------- moments
@given(small_pmfs(hi=10_000))
@example({0: Fraction(1)})
def test_moments_of_a_finite_law_are_exact(pmf):
    law = law_of(pmf)
    m1, m2 = exact_moment(pmf, 1), exact_moment(pmf, 2)
    assert_allclose(law.mean, float(m1), rtol=EXACT_RTOL)
    assert_allclose(law.second_moment, float(m2), rtol=EXACT_RTOL)
    assert_allclose(law.moment(3), float(exact_moment(pmf, 3)), rtol=EXACT_RTOL)
    # Var X = E[X²] - E[X]² cancels: compare against the exact variance on the scale of E[X²].
    assert_allclose(law.var, float(m2 - m1**2), rtol=0, atol=EXACT_RTOL * float(m2))
    assert law.min_value == min(pmf)
    assert law.max_value == max(pmf)


# ---------------------------------------------------------------------------------- sampling
@pytest.mark.parametrize("seed", [0, 12345])
def test_sample_is_reproducible(seed):
    law = TokenLaw.from_scipy(stats.geom(0.01))
    a = law.sample(1000, rng=seed)
    b = law.sample(1000, rng=np.random.default_rng(seed))
    assert_array_equal(a, b)
    assert not np.array_equal(a, law.sample(1000, rng=seed + 1))
    shaped = law.sample((3, 4), rng=seed)
    assert shaped.shape == (3, 4)


@given(small_pmfs(), st.integers(0, 2**32 - 1))
def test_samples_lie_on_the_support(pmf, seed):
    law = law_of(pmf)
    draws = law.sample(200, rng=seed)
    assert set(np.unique(draws)) <= set(pmf)
    assert_array_equal(draws, law.sample(200, rng=seed))


def test_sample_frequencies_match_the_masses():
    law = TokenLaw.from_pmf([1, 2, 5, 40], [0.1, 0.2, 0.3, 0.4])
    draws = law.sample(MC_DRAWS, rng=2024)
    for v, p in zip(law.values, law.probs, strict=True):
        freq = np.mean(draws == v)
        se = math.sqrt(p * (1 - p) / MC_DRAWS)  # binomial standard error of a frequency
        assert abs(freq - p) <= MC_Z * se


# ---------------------------------------------------------------------------------- heavy tails
@pytest.mark.parametrize("a", [2.2, 2.5, 3.5, 5.0])
def test_zipf_mean_is_a_zeta_ratio(a):
    # Zipf(a) on {1, 2, ...}: P(k) = k^-a / ζ(a), E[X] = ζ(a - 1)/ζ(a) (finite for a > 2).
    law = zipf_law(a)
    assert_allclose(law.mean, special.zeta(a - 1) / special.zeta(a), rtol=ZIPF_RTOL)


@pytest.mark.parametrize("a", [3.5, 5.0])
def test_zipf_second_moment_is_a_zeta_ratio_when_a_exceeds_3(a):
    # E[X²] = ζ(a - 2)/ζ(a), finite for a > 3.
    law = zipf_law(a)
    assert_allclose(law.second_moment, special.zeta(a - 2) / special.zeta(a), rtol=ZIPF_RTOL)


@pytest.mark.parametrize("a", [2.2, 2.5, 3.0])
def test_zipf_second_moment_is_infinite_when_a_is_at_most_3(a):
    law = zipf_law(a)
    assert law.second_moment == math.inf
    assert law.var == math.inf
    with pytest.raises(UnstableWorkloadError, match="max="):
        law.require_finite_second_moment()


def test_zipf_tail_bookkeeping():
    a = 2.5
    law = zipf_law(a)
    n = int(law.values[-1])
    assert n == MAX_SUPPORT  # the support starts at 1 and is cut at MAX_SUPPORT points
    assert not law.bounded
    assert law.max_value == math.inf
    # p(n) ∝ n^-a exactly, so the tail index of P(X > x) ~ x^-(a-1) is read off exactly.
    assert_allclose(law.tail_index, a - 1, rtol=EXACT_RTOL)
    # P(X > N) = ζ(a, N + 1)/ζ(a) (Hurwitz zeta).
    assert_allclose(law.tail_mass, special.zeta(a, n + 1) / special.zeta(a), rtol=TAIL_EXTRAPOLATION_RTOL)


def test_zipf_2_5_is_unstable_and_the_error_suggests_a_clip():
    law = zipf_law(2.5)
    with pytest.raises(UnstableWorkloadError, match="max=") as info:
        law.require_finite_second_moment("decode")
    message = str(info.value)
    assert "E[O²] is infinite" in message
    assert law.label in message


def test_zipf_2_5_clipped_at_1000_is_finite_and_exact():
    # min(X, L) for Zipf(a): E[min(X, L)^j] = Σ_{k<L} k^{j-a}/ζ(a) + L^j ζ(a, L)/ζ(a).
    a, cap = 2.5, 1000
    law = zipf_law(a).clip(cap)
    law.require_finite_second_moment()  # must not raise
    assert law.bounded
    assert law.max_value == cap
    k = np.arange(1, cap, dtype=float)
    above = special.zeta(a, cap) / special.zeta(a)
    assert_allclose(law.probs[-1], above, rtol=FAMILY_RTOL)  # the tail mass is in the atom
    for j in (1, 2):
        exact = math.fsum(k ** (j - a)) / special.zeta(a) + cap**j * above
        assert_allclose(law.moment(j), exact, rtol=FAMILY_RTOL)


def _sampling_laws():
    rng = np.random.default_rng(12)
    big = rng.pareto(1.5, 2**21) + 1e-3  # the largest support the module stores
    zeros = np.array([0.2, 0.0, 0.3, 0.0, 0.0, 0.5])  # zero masses inside the support
    return [
        TokenLaw.deterministic(7),
        TokenLaw.from_pmf([1, 5, 9], [0.2, 0.5, 0.3]),
        TokenLaw(np.arange(6), zeros, "zero masses"),
        TokenLaw(np.array([3, 4]), np.array([0.25, 0.5]), "tail", tail_mass=0.25, tail_excess=1.0),
        TokenLaw.from_scipy(stats.geom(0.005)),
        TokenLaw.from_samples(np.ceil(rng.lognormal(6, 1.2, 200_000)).astype(int)),
        TokenLaw(np.arange(big.size), big / big.sum(), "2**21 points"),
    ]


@pytest.mark.parametrize("law", _sampling_laws(), ids=lambda law: law.label[:20])
def test_sample_is_numpy_choice_exactly(law):
    """Same values, dtype and shape as rng.choice(values, p=probs/sum), and the same generator
    state after: every seeded result is the same whichever of the two draws it."""
    p = law.probs / law.probs.sum()
    for seed in range(4):
        mine, ref = np.random.default_rng(seed), np.random.default_rng(seed)
        for size in (0, 1, 10, (3, 4), 100_000, 0, 300_000, 10):
            got = law.sample(size, mine)
            want = ref.choice(law.values, size=size, p=p)
            assert got.dtype == want.dtype
            assert got.shape == want.shape
            assert_array_equal(got, want)
            assert mine.bit_generator.state == ref.bit_generator.state
        assert law.sample(None, mine) == ref.choice(law.values, p=p)
        assert mine.bit_generator.state == ref.bit_generator.state


# ------------------------------------------------------------------ from_functions
def test_from_functions_is_the_engine_of_from_scipy():
    # The same pmf/sf/mean as scipy's geometric, handed over as plain callables: the same law.
    dist = stats.geom(0.01)
    calls = []

    def frozen():
        calls.append(1)
        return dist

    for cap in (None, 500):
        law = TokenLaw.from_functions(dist.pmf, dist.sf, 1, math.inf, "g", cap, mean=dist.mean,
                                      frozen=frozen)
        ref = TokenLaw.from_scipy(dist, "g", cap)
        assert np.array_equal(law.values, ref.values)
        assert np.array_equal(law.probs, ref.probs)
        assert (law.tail_mass, law.tail_excess) == (ref.tail_mass, ref.tail_excess)
    assert not calls  # the tail beyond the stored support is below TAIL_EPS: no scipy moments


def test_from_functions_asks_for_the_scipy_law_only_for_a_visible_tail():
    # geom(1e-4) is cut at MAX_SUPPORT with P(X > N) ≈ 1e-91 > TAIL_EPS: its moments come from scipy
    dist = stats.geom(1e-4)
    law = TokenLaw.from_functions(dist.pmf, dist.sf, 1, math.inf, "g", mean=dist.mean,
                                  frozen=lambda: dist)
    ref = TokenLaw.from_scipy(dist, "g")
    assert law.tail_mass > TAIL_EPS
    assert law.tail_moments == ref.tail_moments is not None
    bare = TokenLaw.from_functions(dist.pmf, dist.sf, 1, math.inf, "g", mean=dist.mean)
    assert bare.tail_moments is None
    assert np.array_equal(bare.probs, ref.probs)
