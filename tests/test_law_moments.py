"""Moments of laws whose moments are known, and specs that used to be accepted wrongly (issue 15).

A log-normal law has every moment finite, E[Y^k] = exp(kμ + k²σ²/2); its tail beyond the 2^21
stored points was once extrapolated with a Pareto tail index (≈ 1.51 at σ = 2.5), which declared
E[O²] infinite and refused the law (at σ = 2 the second moment was 16 % off). The stored law is the
ceiling X = ⌈Y⌉, so Y^k ≤ X^k ≤ (Y + 1)^k: the reference interval [E Y^k, E (Y + 1)^k] is exact,
and the computed moment (stored sums plus the closed-form tail, whose ceiling effect is at most
k/(2·2^21) relative) must lie inside it.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from numerics.errors import SpecError
from numerics.model.laws import MAX_SUPPORT
from numerics.model.specs import parse_law


def _lognormal_moment(median: float, sigma: float, k: int) -> float:
    return math.exp(k * math.log(median) + k * k * sigma * sigma / 2)


@pytest.mark.parametrize("sigma", [2.0, 2.5, 3.0])
def test_lognormal_moments_are_the_closed_forms(sigma):
    law = parse_law(f"lognormal:median=120,sigma={sigma}")
    assert law.tail_mass > 1e-10  # the support really is cut, with visible mass beyond it
    for k in (1, 2, 3):
        ey = [_lognormal_moment(120, sigma, j) for j in range(k + 1)]
        lower = ey[k]
        upper = math.fsum(math.comb(k, j) * ey[j] for j in range(k + 1))  # E[(Y + 1)^k]
        assert lower <= law.moment(k) <= upper, (k, law.moment(k), lower, upper)
    law.require_finite_second_moment()  # σ = 2.5 used to raise "E[O²] is infinite"
    assert "closed form" in law.description


def test_lognormal_sigma_2_5_second_moment_value():
    # E[Y²] = 120² e^{2·2.5²} = 3.864e9; the ceiling adds at most 2 E[Y] + 1 = 2.7e3.
    law = parse_law("lognormal:median=120,sigma=2.5")
    assert law.second_moment == pytest.approx(120**2 * math.exp(12.5), rel=1e-5)


def test_shifted_lognormal_moments_follow_the_shift():
    base = parse_law("lognormal:median=120,sigma=2.5")
    shifted = parse_law("lognormal:median=120,sigma=2.5,shift=3")
    assert shifted.mean == pytest.approx(base.mean + 3, rel=1e-12)
    assert shifted.second_moment == pytest.approx(base.second_moment + 6 * base.mean + 9, rel=1e-12)


def test_discrete_law_with_visible_tail_uses_its_own_moments():
    # geom(mean 2e6) keeps mass 0.35 beyond the stored 2^21 points; its moments are scipy's closed
    # forms, E X = 1/p, E X² = (2 − p)/p², not a tail-index guess (which called them infinite).
    law = parse_law("geom:mean=2e6")
    p = 1 / 2e6
    assert law.tail_mass > 0.3
    assert law.mean == pytest.approx(1 / p, rel=1e-9)
    assert law.second_moment == pytest.approx((2 - p) / p**2, rel=1e-9)
    assert "own moments" in law.description


def test_zipf_moments_stay_infinite_where_they_diverge():
    assert parse_law("zipf:a=2.5").second_moment == math.inf
    assert math.isfinite(parse_law("zipf:a=3.5").second_moment)


# ------------------------------------------------------------------------ specs refused clearly
@pytest.mark.parametrize(("spec", "match"), [
    ("scipy:norm(loc=100)", "non-negative.*truncnorm"),
    ("geom:mean=1e300", "largest supported mean"),
    ("geom:p=1e-300", "largest supported mean"),
    ("poisson:mean=1e12", "largest supported mean"),
    ("scipy:poisson(mu=5,loc=0.5)", "integer"),
    ("lognormal:median=1e300,sigma=1", "beyond"),
    ("zipf:a=1.01", "beyond"),
    ("lognormal:median=120,sigma=2.5,max=100000000", "max ≤"),
    ("zipf:a=2", "E\\[X\\] is infinite.*max="),  # E X = Σ k^{1−a}/ζ(a) diverges for a ≤ 2
])
def test_out_of_range_laws_raise_one_clear_error(spec, match):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning on the way (poisson:mean=1e12 had some)
        with pytest.raises(SpecError, match=match):
            parse_law(spec)


def test_a_clip_beyond_the_stored_support_of_a_light_tail_is_exact():
    law = parse_law("geom:mean=200,max=10000000")
    assert law.mean == pytest.approx(200.0, rel=1e-12)
    assert law.values.size <= MAX_SUPPORT + 1


# --------------------------------------------------------------------- property: accepted specs
_SPECS = st.one_of(
    st.builds("geom:mean={:.6g}".format, st.floats(1.0, 5e6)),
    st.builds("poisson:mean={:.6g},shift=1".format, st.floats(0.01, 3e6)),
    st.builds("nbinom:n={:.4g},p={:.4g},shift=1".format, st.floats(0.05, 20), st.floats(1e-7, 1.0)),
    st.builds("lognormal:median={:.4g},sigma={:.3g}".format, st.floats(1.0, 1e5), st.floats(0.05, 3.5)),
    st.builds("zipf:a={:.3g}".format, st.floats(1.001, 6.0)),
    st.builds("uniform:{},{}".format, st.integers(0, 50), st.integers(50, 5000)),
    st.builds("scipy:gamma(a={:.3g},scale={:.4g})".format, st.floats(0.1, 10), st.floats(0.1, 1e4)),
    st.builds("scipy:norm(loc={:.4g},scale={:.3g})".format, st.floats(-10, 1e4), st.floats(0.1, 100)),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_SPECS, st.one_of(st.none(), st.integers(1, 10**7)))
def test_every_accepted_spec_is_a_proper_token_law(spec, cap):
    if cap is not None:
        spec = f"{spec},max={cap}"
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        try:
            law = parse_law(spec)
        except SpecError:
            return  # refused with a SpecError: fine (what is refused is tested above)
    assert law.values.min() >= 0
    assert law.values.dtype.kind == "i"
    total = float(law.probs.sum()) + law.tail_mass
    assert abs(total - 1.0) <= 1e-9  # the tolerance TokenLaw itself enforces
    assert math.isfinite(law.mean)
    assert law.mean >= 0
    m2 = law.second_moment
    assert m2 == math.inf or (math.isfinite(m2) and m2 >= law.mean**2 * (1 - 1e-9))


def test_scipy_names_pmf_cdf_rvs():
    # Issue 15: laws lacked the pmf / cdf / rvs names users of scipy.stats expect
    from scipy import stats

    from numerics.model.specs import parse_law

    law = parse_law("uniform:1,6")
    assert law.pmf(3) == pytest.approx(1 / 6)
    assert law.pmf(0) == 0.0
    assert law.pmf(7) == 0.0
    np.testing.assert_allclose(law.pmf([1, 2, 9]), [1 / 6, 1 / 6, 0.0])
    np.testing.assert_allclose(law.cdf([0, 1, 3.5, 6, 10]), [0, 1 / 6, 0.5, 1, 1])
    assert law.cdf(2) + law.sf(2) == pytest.approx(1.0)
    draws = law.rvs(size=1000, random_state=3)
    assert draws.shape == (1000,)
    np.testing.assert_array_equal(draws, law.sample(1000, 3))  # the same stream
    geom = parse_law("geom:mean=4")  # against scipy's own geometric law (p = 1/4)
    np.testing.assert_allclose(geom.pmf(np.arange(1, 30)), stats.geom(0.25).pmf(np.arange(1, 30)),
                               rtol=1e-9)
    np.testing.assert_allclose(geom.cdf(np.arange(1, 30)), stats.geom(0.25).cdf(np.arange(1, 30)),
                               rtol=1e-9)
