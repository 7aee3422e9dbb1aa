"""Tests of :func:`numerics.model.specs.parse_law`: every documented spec form, its ``max=`` and ``shift=``
modifiers, the malformed specs it must refuse, and the exact moments of every family against
closed forms (rational where possible), an independent tail-sum oracle, and Monte Carlo draws from
numpy's own samplers.
"""

from __future__ import annotations

import math
from fractions import Fraction
from functools import cache

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from scipy import special, stats

from numerics.errors import SpecError, UnstableWorkloadError, WorkloadError
from numerics.model.laws import TokenLaw
from numerics.model.specs import parse_law

# ---------------------------------------------------------------------------------- tolerances
EXACT_RTOL = 1e-12  # a few float operations on masses rounded to double (ε ≈ 1.1e-16 each)
FAMILY_RTOL = 1e-11  # pairwise sums of ≤ 7e5 scipy pmf values (a few ulps each), renormalised;
#                      the worst error seen over 1500 random parameter sets was 1.6e-14
ORACLE_RTOL = 1e-11  # library PMF sums vs the tail-sum oracle Σ P(Y > n) (math.fsum of scipy sf
#                      values, each good to a few ulps): agreement seen over 30 random lognormal
#                      laws was ≤ 1.1e-15; the oracle's truncation is charged separately
ZIPF_RTOL = 1e-6  # Pareto tail correction beyond N = 2**21 is exact to O(1/N) ≈ 5e-7 relative on
#                   the tail term (observed error 6e-11 at a = 2.5)
MC_Z = 5.0  # 5 standard errors: two-sided normal false alarm ~5.7e-7 per check (seeds are fixed)
MC_DRAWS = 40_000  # draws per Monte Carlo check
ORACLE_TERMS = 2**21  # terms of the tail-sum oracle (as many as the library stores at most)

#: Slow properties run a tenth of the profile's examples (each example costs ~1 s).
SLOW_EXAMPLES = max(3, settings().max_examples // 10)


@cache
def law(spec: str) -> TokenLaw:
    """parse_law, memoised: Zipf and log-normal laws store 2**21 points (≈ 0.5–0.7 s each)."""
    return parse_law(spec)


# A heavy tail cut at MAX_SUPPORT carries an extrapolated tail mass (1.6e-10 for zipf(2.5)) that is
# renormalised into the stored masses; clipping while building (max=) skips that step, so the two
# routes agree to ~1e-11 rather than to rounding.
CUT_TAIL_RTOL = 1e-10


def same_law(a: TokenLaw, b: TokenLaw, rtol: float = EXACT_RTOL) -> None:
    assert_array_equal(a.values, b.values)
    assert_allclose(a.probs, b.probs, rtol=rtol)
    assert a.tail_mass == b.tail_mass


# ---------------------------------------------------------------------------------- oracles
def sum_squares(n: int) -> int:
    """Σ_{k=1}^{n} k² = n(n + 1)(2n + 1)/6."""
    return n * (n + 1) * (2 * n + 1) // 6


def geometric_moments(p: Fraction) -> tuple[Fraction, Fraction]:
    """Geometric on {1, 2, ...}: E[O] = 1/p, E[O²] = (2 - p)/p²."""
    return 1 / p, (2 - p) / p**2


def uniform_moments(a: int, b: int) -> tuple[Fraction, Fraction]:
    """Uniform on {a, ..., b}: E[O] = (a + b)/2, E[O²] = (S(b) - S(a - 1))/(b - a + 1)."""
    n = b - a + 1
    return Fraction(a + b, 2), Fraction(sum_squares(b) - sum_squares(max(a - 1, 0)), n)


def shifted_moments(k, mean, second):
    """k + X: E = k + E[X], E[(k + X)²] = k² + 2k E[X] + E[X²]."""
    return k + mean, k * k + 2 * k * mean + second


def ceiling_oracle(dist, partial_moment, n_terms: int = ORACLE_TERMS) -> tuple[float, float, float, float]:
    """E[⌈Y⌉], E[⌈Y⌉²] for a continuous Y ≥ 0 by the tail-sum formulas, with remainder bounds.

    X = ⌈Y⌉ has P(X > n) = P(Y > n), so E[X] = Σ_{n≥0} P(Y > n) and E[X²] = Σ_{n≥0} (2n+1) P(Y > n)
    (a different formula from the library's Σ x P(X = x), using only scipy's sf). The sums stop at
    N = n_terms; what they miss is at most E[Y; Y > N-1] and E[(Y+1)²; Y > N-1] respectively,
    computed from the closed-form partial moments ``partial_moment(k, t) = E[Y^k; Y > t]``.
    """
    n = np.arange(n_terms, dtype=float)
    sf = dist.sf(n)
    m1 = math.fsum(sf)
    m2 = math.fsum((2 * n + 1) * sf)
    t = n_terms - 1.0
    r1 = partial_moment(1, t)
    r2 = partial_moment(2, t) + 2 * partial_moment(1, t) + partial_moment(0, t)
    return m1, m2, r1, r2


def lognormal_oracle(median: float, sigma: float):
    # Y = median·e^{σZ}: E[Y^k; Y > t] = median^k e^{k²σ²/2} Φ((ln(median/t) + kσ²)/σ).
    def partial(k, t):
        z = (math.log(median / t) + k * sigma**2) / sigma
        return median**k * math.exp(k * k * sigma**2 / 2) * special.ndtr(z)

    return ceiling_oracle(stats.lognorm(s=sigma, scale=median), partial)


def gamma_oracle(shape: float, scale: float):
    # Y ~ Gamma(a, θ): E[Y^k; Y > t] = θ^k Γ(a + k)/Γ(a) · Q(a + k, t/θ) (regularised upper Γ).
    def partial(k, t):
        return (
            scale**k
            * math.exp(special.gammaln(shape + k) - special.gammaln(shape))
            * float(special.gammaincc(shape + k, t / scale))
        )

    # A light (exponential) tail: 2**17 terms leave a remainder below 1e-300 for these scales.
    return ceiling_oracle(stats.gamma(shape, scale=scale), partial, n_terms=2**17)


def assert_matches_oracle(got: TokenLaw, oracle) -> None:
    m1, m2, r1, r2 = oracle
    # The oracle misses at most r_k beyond its N terms, the library at most as much beyond its
    # stored 2**21 points (its Pareto correction there is of that size): allow twice the bound.
    assert abs(got.mean - m1) <= ORACLE_RTOL * m1 + 2 * r1
    assert abs(got.second_moment - m2) <= ORACLE_RTOL * m2 + 2 * r2


# ---------------------------------------------------------------------------------- the table
#: Every row of the documented table, with its closed-form (E[O], E[O²]).
DOCUMENTED = {
    "20": (20, 400),
    "geom:mean=200": geometric_moments(Fraction(1, 200)),  # (200, 79800)
    "geom:p=0.005": geometric_moments(Fraction(1, 200)),
    "uniform:1,100": uniform_moments(1, 100),  # (101/2, 6767/2)
    # 1 + Poisson(μ): E[X] = μ, E[X²] = μ(μ + 1).
    "poisson:mean=50,shift=1": shifted_moments(1, 50, 50 * 51),  # (51, 2651)
    # 1 + NegBin(n, p) failures: E[X] = n(1-p)/p = 198, Var X = n(1-p)/p² = 19800.
    "nbinom:n=2,p=0.01,shift=1": shifted_moments(1, 198, 19800 + 198**2),  # (199, 59401)
    # BetaBinomial(n, a, b): mean na/(a+b) = 40, variance nab(a+b+n)/((a+b)²(a+b+1)) = 420.
    "scipy:betabinom(n=100,a=2,b=3)": (40, 420 + 40**2),
}


@pytest.mark.parametrize(("spec", "moments"), list(DOCUMENTED.items()))
def test_documented_forms_have_their_closed_form_moments(spec, moments):
    got = law(spec)
    assert_allclose([got.mean, got.second_moment], [float(m) for m in moments], rtol=FAMILY_RTOL)
    assert got.label == spec


def test_documented_lognormal_form():
    assert_matches_oracle(law("lognormal:median=120,sigma=0.8"), lognormal_oracle(120.0, 0.8))


def test_documented_zipf_form():
    got = law("zipf:a=2.5")
    # Zipf(a): E[X] = ζ(a - 1)/ζ(a); E[X²] = ∞ for a ≤ 3.
    assert_allclose(got.mean, special.zeta(1.5) / special.zeta(2.5), rtol=ZIPF_RTOL)
    assert got.second_moment == math.inf
    with pytest.raises(UnstableWorkloadError, match="max="):
        got.require_finite_second_moment()


def test_documented_zipf_form_clipped_at_1000_is_finite():
    got = law("zipf:a=2.5,max=1000")
    got.require_finite_second_moment()
    # E[min(X, L)²] = Σ_{k<L} k^{2-a}/ζ(a) + L² ζ(a, L)/ζ(a) (Hurwitz zeta for the clipped tail).
    a, cap = 2.5, 1000
    k = np.arange(1, cap, dtype=float)
    exact = (math.fsum(k ** (2 - a)) + cap**2 * special.zeta(a, cap)) / special.zeta(a)
    assert_allclose(got.second_moment, exact, rtol=FAMILY_RTOL)


def test_documented_scipy_continuous_form():
    assert_matches_oracle(law("scipy:gamma(a=2,scale=50)"), gamma_oracle(2.0, 50.0))


def test_module_docstring_examples():
    assert law("geom:mean=200").mean == pytest.approx(200.0, rel=FAMILY_RTOL)
    assert parse_law("uniform:1,100,max=50").max_value == 50


@pytest.mark.parametrize(
    ("variant", "canonical"),
    [
        ("uniform:low=1,high=100", "uniform:1,100"),
        ("uniform:1,high=100", "uniform:1,100"),
        ("poisson:50,shift=1", "poisson:mean=50,shift=1"),
        ("GEOM:mean=200", "geom:mean=200"),
        ("  geom : mean = 200  ", "geom:mean=200"),
        ("scipy:betabinom(100,2,3)", "scipy:betabinom(n=100,a=2,b=3)"),
        ("1e3", "1000"),
        ("20.0", "20"),
    ],
)
def test_equivalent_spellings_give_the_same_law(variant, canonical):
    same_law(parse_law(variant), law(canonical))


def test_an_int_is_a_deterministic_spec():
    got = parse_law(20)
    assert_array_equal(got.values, [20])
    assert got.label == "20"


def test_geom_with_p_1_is_the_constant_1():
    for spec in ("geom:p=1", "geom:mean=1"):
        got = parse_law(spec)
        assert_array_equal(got.values, [1])
        assert got.mean == 1.0


#: Each documented form with a clip that bites (P(O ≥ L) > 0).
CLIPS = {
    "20": 10,
    "geom:mean=200": 300,
    "geom:p=0.005": 300,
    "uniform:1,100": 50,
    "poisson:mean=50,shift=1": 55,
    "nbinom:n=2,p=0.01,shift=1": 400,
    "lognormal:median=120,sigma=0.8": 500,
    "zipf:a=2.5": 1000,
    "scipy:betabinom(n=100,a=2,b=3)": 70,
    "scipy:gamma(a=2,scale=50)": 80,
}


@pytest.mark.parametrize(("spec", "cap"), list(CLIPS.items()))
def test_max_clips_every_form(spec, cap):
    full = f"{spec},max={cap}"
    got = law(full)
    rtol = CUT_TAIL_RTOL if law(spec).tail_index is not None else EXACT_RTOL
    same_law(got, law(spec).clip(cap), rtol)
    assert got.max_value == cap
    assert got.bounded
    assert got.label == full
    # The atom at the cap carries P(O ≥ cap), the stored tail included.
    assert_allclose(got.probs[-1], law(spec).sf(cap - 1), rtol=rtol)


def test_max_above_a_bounded_support_changes_nothing():
    same_law(parse_law("20,max=30"), law("20"))
    same_law(parse_law("uniform:1,100,max=1000"), law("uniform:1,100"))


@pytest.mark.parametrize(
    "spec",
    [
        "20",
        "geom:mean=200",
        "uniform:1,100",
        "poisson:mean=50",
        "nbinom:n=2,p=0.01",
        "scipy:betabinom(n=100,a=2,b=3)",
        "scipy:gamma(a=2,scale=50)",
    ],
)
def test_shift_adds_to_every_form(spec):
    got = parse_law(f"{spec},shift=3")
    base = parse_law(spec)
    same_law(got, base.shift(3))
    assert_allclose(got.mean, base.mean + 3, rtol=EXACT_RTOL)


def test_shift_and_max_commute_in_the_spec():
    # Keyword order does not matter: shift is applied, then the clip.
    a = parse_law("geom:mean=10,shift=5,max=20")
    b = parse_law("geom:mean=10,max=20,shift=5")
    same_law(a, b)
    same_law(a, parse_law("geom:mean=10").shift(5).clip(20))


# ---------------------------------------------------------------------------------- malformed
MALFORMED = [
    # not a spec at all
    "",
    "   ",
    # unknown family / not a number
    "foo:1",
    "normal:mean=3",
    "abc",
    "20.5",
    "-5",
    "1e400",
    # geom
    "geom:",
    "geom:200",
    "geom:mean=200,p=0.5",
    "geom:mean=0.5",
    "geom:mean=0",
    "geom:mean=-3",
    "geom:p=0",
    "geom:p=-0.1",
    "geom:p=1.5",
    "geom:mean=abc",
    "geom:mean=",
    "geom:=5",
    "geom:1x=5",
    "geom:mean=nan",
    "geom:mean=inf",
    "geom:foo=1",
    "geom:mean=200,foo=1",
    "geom:mean=200,max=300,max=400",
    # stray commas
    "geom:mean=200,",
    "geom:,mean=200",
    "geom:mean=200,,max=5",
    "uniform:1,,100",
    ",20",
    "scipy:poisson(mu=5,)",
    "scipy:poisson(,mu=5)",
    "scipy:poisson(mu=5),,max=3",
    # uniform
    "uniform:1",
    "uniform:1,2,3",
    "uniform:100,1",
    "uniform:-1,5",
    "uniform:1.5,3",
    "uniform:low=1,100",
    "uniform:1,100,a=3",
    # poisson
    "poisson:",
    "poisson:mean=0",
    "poisson:mean=-1",
    "poisson:1,2",
    "poisson:lambda=3",
    # nbinom
    "nbinom:n=2",
    "nbinom:p=0.5",
    "nbinom:2,0.5",
    "nbinom:n=0,p=0.5",
    "nbinom:n=-1,p=0.5",
    "nbinom:n=2,p=0",
    "nbinom:n=2,p=1.5",
    "nbinom:n=2,p=0.5,q=3",
    # lognormal
    "lognormal:median=120",
    "lognormal:sigma=0.8",
    "lognormal:120,0.8",
    "lognormal:median=0,sigma=1",
    "lognormal:median=-1,sigma=1",
    "lognormal:median=120,sigma=0",
    "lognormal:median=120,sigma=-0.5",
    "lognormal:median=120,sigma=0.8,mu=3",
    # zipf
    "zipf:",
    "zipf:a=1",
    "zipf:a=0.5",
    "zipf:s=2",
    # scipy
    "scipy:",
    "scipy:poisson",
    "scipy:1abc(a=1)",
    "scipy:nosuch(a=1)",
    "scipy:rv_continuous(a=1)",
    "scipy:poisson(foo=1)",
    "scipy:poisson(mu=-1)",
    "scipy:poisson(mu=abc)",
    "scipy:poisson(mu=nan)",
    "scipy:poisson(mu=5),3",
    "scipy:poisson(mu=5),foo=1",
    "scipy:poisson(mu=5)max=3",
    "scipy:poisson(mu=5) junk",
    # max= and shift=
    "geom:mean=200,max=0",
    "geom:mean=200,max=-5",
    "geom:mean=200,max=1.5",
    "geom:mean=200,max=abc",
    "geom:mean=200,shift=1.5",
    "geom:mean=200,shift=-2",
    "20,shift=-21",
    "20,5",
    "20,foo=1",
]


@pytest.mark.parametrize("spec", MALFORMED)
def test_malformed_specs_raise_spec_error(spec):
    with pytest.raises(SpecError):
        parse_law(spec)


@pytest.mark.parametrize("spec", [None, 2.5, True, [], b"20"])
def test_non_string_specs_raise_spec_error(spec):
    with pytest.raises(SpecError, match="non-empty string"):
        parse_law(spec)


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("foo:1", "geom:"),  # the message lists the families
        ("geom:mean=200,p=0.5", "mean=M or p=P"),
        ("uniform:1", "uniform:1,100"),
        ("geom:mean=200,foo=1", "unknown foo"),
        ("geom:mean=200,", "stray comma"),
        ("scipy:nosuch(a=1)", "nosuch"),
        ("scipy:poisson", "scipy:NAME"),
        ("geom:p=1.5", r"\(0, 1\]"),
        ("uniform:100,1", "low ≤ high"),
        ("geom:mean=200,max=0", "max must be ≥ 1"),
        ("20,shift=-21", "non-negative"),
    ],
)
def test_spec_errors_say_what_to_do(spec, match):
    with pytest.raises(SpecError, match=match):
        parse_law(spec)


#: Regressions: each of these used to be accepted or to escape as another exception type.
REGRESSIONS = [
    # A trailing stray comma after an integer or after scipy:NAME(...) was read as "no params".
    ("20,", "stray comma"),
    ("scipy:poisson(mu=5),", "stray comma"),
    # A parameter given both positionally and by name was silently resolved.
    ("poisson:3,mean=5", "not both"),
    ("zipf:9,a=2.5", "not both"),
    ("uniform:1,low=100", "given both positionally and by name"),
    # WorkloadError from building the law escaped unconverted.
    ("scipy:norm(loc=0,scale=1)", "non-negative"),
    ("scipy:expon(loc=-1)", "non-negative"),
    ("scipy:poisson(mu=5,loc=-3)", "non-negative"),
    ("uniform:0,3000000", "larger than"),
    # Integers beyond int64 became Python ints and numpy raised TypeError / OverflowError.
    ("1e300", "too large"),
    ("uniform:1,1e300", "too large"),
    ("20,max=1e300", "too large"),
    ("20,shift=1e300", "too large"),
]


@pytest.mark.parametrize(("spec", "match"), REGRESSIONS)
def test_former_escapes_raise_spec_error(spec, match):
    with pytest.raises(SpecError, match=match):
        parse_law(spec)


# ---------------------------------------------------------------------------------- families
@given(st.floats(1.0, 500.0))
@example(1.0)
@example(200.0)
def test_geom_mean_moments(mean):
    got = parse_law(f"geom:mean={mean!r}")
    m1, m2 = geometric_moments(Fraction(1.0 / mean))  # the double the parser computes
    assert_allclose([got.mean, got.second_moment], [float(m1), float(m2)], rtol=FAMILY_RTOL)


@given(st.floats(0.002, 1.0))
@example(1.0)
@example(0.005)
def test_geom_p_moments(p):
    got = parse_law(f"geom:p={p!r}")
    m1, m2 = geometric_moments(Fraction(p))
    assert_allclose([got.mean, got.second_moment], [float(m1), float(m2)], rtol=FAMILY_RTOL)
    assert got.min_value == 1


@given(st.integers(0, 500), st.integers(0, 2000))
@example(0, 0)
@example(1, 99)
def test_uniform_moments(low, width):
    high = low + width
    got = parse_law(f"uniform:{low},{high}")
    m1, m2 = uniform_moments(low, high)
    assert_allclose([got.mean, got.second_moment], [float(m1), float(m2)], rtol=FAMILY_RTOL)
    assert got.min_value == low
    assert got.max_value == high


@given(st.floats(0.01, 300.0), st.integers(0, 100))
@example(50.0, 1)
@example(0.01, 0)
def test_poisson_moments(mu, k):
    got = parse_law(f"poisson:mean={mu!r},shift={k}")
    m = Fraction(mu)
    m1, m2 = shifted_moments(k, m, m * (m + 1))  # E[(k+X)²] = k² + 2kμ + μ(μ+1)
    assert_allclose([got.mean, got.second_moment], [float(m1), float(m2)], rtol=FAMILY_RTOL)


@given(st.floats(0.5, 20.0), st.floats(0.01, 1.0), st.integers(0, 50))
@example(2.0, 0.01, 1)
@example(3.0, 1.0, 0)
def test_nbinom_moments(n, p, k):
    got = parse_law(f"nbinom:n={n!r},p={p!r},shift={k}")
    nn, pp = Fraction(n), Fraction(p)
    mean, var = nn * (1 - pp) / pp, nn * (1 - pp) / pp**2  # failures before the n-th success
    m1, m2 = shifted_moments(k, mean, var + mean**2)
    assert_allclose([got.mean, got.second_moment], [float(m1), float(m2)], rtol=FAMILY_RTOL)


@given(st.integers(0, 10**6), st.integers(0, 100))
def test_deterministic_spec_moments(n, k):
    got = parse_law(f"{n},shift={k}")
    assert got.mean == n + k
    assert got.second_moment == float((n + k) ** 2)


@given(st.integers(1, 300), st.floats(0.001, 1.0))
@example(100, 0.5)
def test_scipy_discrete_binomial_moments(n, p):
    got = parse_law(f"scipy:binom(n={n},p={p!r})")
    pp = Fraction(p)
    mean = n * pp
    assert_allclose(
        [got.mean, got.second_moment],
        [float(mean), float(n * pp * (1 - pp) + mean**2)],
        rtol=FAMILY_RTOL,
    )


@given(st.floats(0.2, 400.0), st.integers(0, 20))
@example(100.0, 0)
def test_scipy_continuous_exponential_moments(scale, k):
    # ⌈Exp(mean β)⌉ is geometric on {1, 2, ...} with p = 1 - e^{-1/β}.
    got = parse_law(f"scipy:expon(scale={scale!r}),shift={k}")
    p = -math.expm1(-1.0 / scale)
    m1, m2 = shifted_moments(k, 1 / p, (2 - p) / p**2)
    assert_allclose([got.mean, got.second_moment], [m1, m2], rtol=FAMILY_RTOL)


@pytest.mark.parametrize(("median", "sigma"), [(120.0, 0.8), (20.0, 1.0), (500.0, 0.3)])
def test_lognormal_moments_match_the_tail_sum_oracle(median, sigma):
    got = law(f"lognormal:median={median!r},sigma={sigma!r}")
    assert_matches_oracle(got, lognormal_oracle(median, sigma))


@pytest.mark.slow
@settings(max_examples=SLOW_EXAMPLES)
@given(st.floats(5.0, 300.0), st.floats(0.2, 1.0))
def test_lognormal_moments_random_parameters(median, sigma):
    got = parse_law(f"lognormal:median={median!r},sigma={sigma!r}")
    assert_matches_oracle(got, lognormal_oracle(median, sigma))


@pytest.mark.parametrize(("shape", "scale"), [(2.0, 50.0), (0.5, 10.0)])
def test_scipy_continuous_gamma_matches_the_tail_sum_oracle(shape, scale):
    got = parse_law(f"scipy:gamma(a={shape!r},scale={scale!r})")
    assert_matches_oracle(got, gamma_oracle(shape, scale))


@pytest.mark.parametrize("a", [2.5, 4.5])
def test_zipf_moments(a):
    got = law(f"zipf:a={a!r}")
    assert_allclose(got.mean, special.zeta(a - 1) / special.zeta(a), rtol=ZIPF_RTOL)
    if a > 3:
        assert_allclose(got.second_moment, special.zeta(a - 2) / special.zeta(a), rtol=ZIPF_RTOL)
    else:
        assert got.second_moment == math.inf


# ---------------------------------------------------------------------------------- Monte Carlo
#: numpy's own samplers for each family: an implementation independent of the library's PMFs.
INDEPENDENT_SAMPLERS = {
    "20": lambda rng, n: np.full(n, 20),
    "geom:mean=200": lambda rng, n: rng.geometric(1 / 200, n),
    "geom:mean=200,max=300": lambda rng, n: np.minimum(rng.geometric(1 / 200, n), 300),
    "uniform:1,100": lambda rng, n: rng.integers(1, 101, n),
    "poisson:mean=50,shift=1": lambda rng, n: 1 + rng.poisson(50, n),
    "nbinom:n=2,p=0.01,shift=1": lambda rng, n: 1 + rng.negative_binomial(2, 0.01, n),
    "lognormal:median=120,sigma=0.8": lambda rng, n: np.ceil(rng.lognormal(np.log(120), 0.8, n)),
    "zipf:a=4.5": lambda rng, n: rng.zipf(4.5, n),
    "scipy:betabinom(n=100,a=2,b=3)": lambda rng, n: rng.binomial(100, rng.beta(2, 3, n)),
    "scipy:gamma(a=2,scale=50)": lambda rng, n: np.ceil(rng.gamma(2.0, 50.0, n)),
}


def assert_moments_near(draws: np.ndarray, got: TokenLaw) -> None:
    """Sample mean (and mean square, when E[X⁴] < ∞) within MC_Z standard errors of exact."""
    draws = draws.astype(float)
    n = draws.size
    assert abs(draws.mean() - got.mean) <= MC_Z * math.sqrt(got.var / n)
    m4 = got.moment(4)
    if math.isfinite(m4):
        se2 = math.sqrt((m4 - got.second_moment**2) / n)
        assert abs(np.mean(draws**2) - got.second_moment) <= MC_Z * se2


@pytest.mark.parametrize("spec", list(INDEPENDENT_SAMPLERS))
def test_exact_moments_agree_with_independent_monte_carlo(spec):
    draws = INDEPENDENT_SAMPLERS[spec](np.random.default_rng(20240601), MC_DRAWS)
    assert_moments_near(draws, law(spec))


@pytest.mark.parametrize("spec", list(INDEPENDENT_SAMPLERS))
def test_exact_moments_agree_with_the_law_own_sampler(spec):
    got = law(spec)
    assert_moments_near(got.sample(MC_DRAWS, rng=7), got)


def test_heavy_zipf_tail_probabilities_agree_with_monte_carlo():
    # E[O²] = ∞ for a = 2.5, so compare exceedance frequencies (binomial standard errors).
    got = law("zipf:a=2.5")
    draws = np.random.default_rng(99).zipf(2.5, MC_DRAWS)
    for k in (1, 2, 5, 10, 100, 1000):
        p = got.sf(k)
        assert abs(np.mean(draws > k) - p) <= MC_Z * math.sqrt(p * (1 - p) / MC_DRAWS)


# ------------------------------------------------------- families built without scipy.stats
def _same_law(a: TokenLaw, b: TokenLaw) -> bool:
    """Bit for bit: support, masses, tail accounts, moment source."""
    return (a.values.dtype == b.values.dtype and np.array_equal(a.values, b.values)
            and np.array_equal(a.probs, b.probs) and a.tail_mass == b.tail_mass
            and a.tail_excess == b.tail_excess and a.tail_index == b.tail_index
            and a.tail_moments == b.tail_moments and a.moment_source == b.moment_source)


def _same_build(ours, ref) -> bool:
    """Both builders give the same law bit for bit, or both refuse with the same message."""
    def build(f):
        try:
            return f()
        except WorkloadError as exc:
            return str(exc)

    a, b = build(ours), build(ref)
    return a == b if isinstance(b, str) or isinstance(a, str) else _same_law(a, b)


#: Caps: none, below/at the first support points, the presets' (max − shift), and one beyond
#: MAX_SUPPORT (the build-then-clip branch); uncapped laws store up to 2**21 points (slow).
NATIVE_CAPS = (pytest.param(None, marks=pytest.mark.slow), 1, 2, 7, 1000, 14_048, 125_304,
               pytest.param(3 * 2**21, marks=pytest.mark.slow))  # the slow ones: up to ~1 s


@pytest.mark.parametrize("p", [1e-4, 3e-4, 0.001, 0.005, 1 / 150, 0.0123, 0.25, 0.5, 0.999])
@pytest.mark.parametrize("cap", NATIVE_CAPS)
def test_native_geom_is_bitwise_the_scipy_law(p, cap):
    # 1e-4 and 3e-4: the support stops at MAX_SUPPORT with visible tail (scipy's moments are used)
    from numerics.model.specs import _geom

    assert _same_build(lambda: _geom(p, "g", cap), lambda: TokenLaw.from_scipy(stats.geom(p), "g", cap))


@pytest.mark.parametrize(("low", "high"), [(0, 0), (0, 1), (1, 100), (3, 3), (10, 500),
                                           (0, 2**21 - 1), (7, 2**21 + 6)])
@pytest.mark.parametrize("cap", NATIVE_CAPS)
def test_native_uniform_is_bitwise_the_scipy_law(low, high, cap):
    from numerics.model.specs import _randint

    assert _same_build(lambda: _randint(low, high + 1, "u", cap),
                       lambda: TokenLaw.from_scipy(stats.randint(low, high + 1), "u", cap))


@pytest.mark.parametrize("mu", [1e-3, 0.5, 5.0, 80.0, 1234.5, 1e5, 2e6])
@pytest.mark.parametrize("cap", NATIVE_CAPS)
def test_native_poisson_is_bitwise_the_scipy_law(mu, cap):
    from numerics.model.specs import _poisson

    assert _same_build(lambda: _poisson(mu, "p", cap),
                       lambda: TokenLaw.from_scipy(stats.poisson(mu), "p", cap))


@pytest.mark.parametrize(("n", "p"), [
    (1.329, 0.001152), (1.496, 0.007273), (0.9169, 0.0004472), (0.5094, 0.02275),  # the presets
    (0.7872, 0.0003364), (1.704, 0.003887), (0.4937, 0.00004429), (1.113, 0.003241),
    (2, 0.01), (1, 1.0), (0.05, 1e-4), (30, 0.3)])
@pytest.mark.parametrize("cap", NATIVE_CAPS)
def test_native_nbinom_is_bitwise_the_scipy_law(n, p, cap):
    from numerics.model.specs import _nbinom

    assert _same_build(lambda: _nbinom(n, p, "nb", cap),
                       lambda: TokenLaw.from_scipy(stats.nbinom(n, p), "nb", cap))


@pytest.mark.parametrize("spec", ["geom:mean=200", "uniform:1,100,max=50", "poisson:mean=80,shift=1",
                                  "nbinom:n=0.4937,p=0.00004429,shift=891,max=126195"])
def test_common_families_do_not_import_scipy_stats(spec):
    # A fresh interpreter: parsing these specs (and importing the CLI) leaves scipy.stats unloaded.
    import subprocess
    import sys

    code = ("import sys, flowstab.cli; from numerics.model.specs import parse_law; "
            f"parse_law({spec!r}); print('scipy.stats' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_other_families_still_use_scipy_stats():
    law = parse_law("lognormal:median=120,sigma=0.8,max=4096")
    ref = TokenLaw.from_scipy(stats.lognorm(s=0.8, scale=120), "l", 4096)
    assert_array_equal(law.probs, ref.probs)
