"""The symbolic theory: closed forms derived by sympy = exact PMF sums = Monte Carlo.

Reference values and their provenance:
* worked example (issue "Foundation"): S = 100, O ~ geometric(mean 200), M = 50 000 ⇒
  E[W] = 100·200 + (79 800 + 200)/2 = 60 000 and λ_max = 5/6;
* Dong & Cao §4.1 (quoted by the Concourse.jl reproduction, docs/theory.md §1.5): classes
  (l, o) = (10, 20), (10, 40), (10, 60): w = (410, 1220, 2430), Σ b w = 16 240 for b = 4;
* docs/theory.md §8.4: geometric p = 0.05, s = 20, r = 3 ⇒ Var U = 87 711 (deterministic budget),
  118 800 (Poisson).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import sympy as sp
from hypothesis import example, given
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from numerics.model.specs import parse_law
from theory import closed_forms as memory_time
from theory import conditions, flow
from theory.bounds import hoeffding_sum_of_squares
from theory.registry import REGISTRY

PMF_RTOL = 1e-10  # float PMF sums of ≤ 2·10^5 terms: rounding ~1e-13, truncation tail < 1e-290
MC_Z = 5.0  # Monte Carlo within 5 standard errors: two-sided false alarm ~6e-7 per check
MC_N = 200_000
MC_SEED = 20261124


def _spec_and_params(family: str, draw_params: dict) -> tuple[str, dict]:
    """A parse_law spec for the same law as theory's family parameters."""
    d = draw_params
    if family == "deterministic":
        return str(d["o"]), d
    if family == "geometric":
        return f"geom:p={float(d['p'])!r}", d
    if family == "uniform":
        return f"uniform:{d['low']},{d['high']}", d
    if family == "shifted_poisson":
        return f"poisson:mean={float(d['mu'])!r},shift={d['shift']}", d
    return f"nbinom:n={float(d['n'])!r},p={float(d['p'])!r},shift={d['shift']}", d


FAMILY_PARAMS = {
    "deterministic": st.fixed_dictionaries({"o": st.integers(1, 5000)}),
    "geometric": st.fixed_dictionaries(
        {"p": st.fractions(Fraction(1, 2000), Fraction(1, 1), max_denominator=2000)}
    ),
    "uniform": st.integers(1, 400).flatmap(
        lambda lo: st.fixed_dictionaries({"low": st.just(lo), "high": st.integers(lo, lo + 500)})
    ),
    "shifted_poisson": st.fixed_dictionaries(
        {"mu": st.fractions(Fraction(1, 10), 300, max_denominator=100), "shift": st.integers(1, 50)}
    ),
    "shifted_nbinom": st.fixed_dictionaries(
        {
            "n": st.fractions(Fraction(1, 2), 10, max_denominator=10),
            "p": st.fractions(Fraction(1, 200), Fraction(99, 100), max_denominator=200),
            "shift": st.integers(1, 20),
        }
    ),
}


def test_memory_time_identity_by_summation():
    from theory.symbols import O as o
    from theory.symbols import S as s

    assert sp.simplify(memory_time.memory_time_by_summation() - memory_time.memory_time(s, o)) == 0


def test_worked_example_exact():
    ew = memory_time.mean_memory_time("geometric", mean_prompt=100, p=sp.Rational(1, 200))
    assert ew == 60000
    assert conditions.lambda_max(50000, ew) == sp.Rational(5, 6)


@pytest.mark.parametrize("family", list(FAMILY_PARAMS))
@given(data=st.data())
def test_closed_forms_equal_pmf_sums(family, data):
    params = data.draw(FAMILY_PARAMS[family])
    spec, _ = _spec_and_params(family, params)
    m1, m2 = memory_time.decode_moments(family, **params)
    law = parse_law(spec)
    assert_allclose([law.mean, law.second_moment], [float(m1), float(m2)], rtol=PMF_RTOL)


@given(lo=st.integers(1, 60), width=st.integers(0, 60), s=st.integers(0, 100))
@example(lo=1, width=99, s=20)
def test_uniform_closed_form_is_exact_in_rationals(lo, width, s):
    hi = lo + width
    exact = sum(Fraction(s * o) + Fraction(o * (o + 1), 2) for o in range(lo, hi + 1))
    exact /= width + 1
    sym = memory_time.mean_memory_time("uniform", mean_prompt=s, low=lo, high=hi)
    assert sym == sp.Rational(exact.numerator, exact.denominator)


@pytest.mark.parametrize(
    ("family", "params"),
    [
        ("deterministic", {"o": 37}),
        ("geometric", {"p": sp.Rational(1, 200)}),
        ("uniform", {"low": 1, "high": 100}),
        ("shifted_poisson", {"mu": 50, "shift": 1}),
        ("shifted_nbinom", {"n": 2, "p": sp.Rational(1, 100), "shift": 1}),
    ],
)
def test_closed_forms_match_monte_carlo(family, params):
    spec, _ = _spec_and_params(family, params)
    law = parse_law(spec)
    x = law.sample(MC_N, np.random.default_rng(MC_SEED)).astype(float)
    m1, m2 = (float(v) for v in memory_time.decode_moments(family, **params))
    for sample, mean in ((x, m1), (x * x, m2)):
        se = sample.std(ddof=1) / np.sqrt(MC_N)
        assert abs(sample.mean() - mean) <= MC_Z * se + 1e-12 * abs(mean)


def test_dong_cao_section_4_1_constants():
    w = [memory_time.memory_time(10, o) for o in (20, 40, 60)]
    assert w == [410, 1220, 2430]
    assert conditions.alg1_peak_memory([4, 4, 4], [10] * 3, [20, 40, 60]) == 16240
    assert conditions.alg1_memory_safe([4, 4, 4], [10] * 3, [20, 40, 60], 16492) == sp.true
    assert conditions.lambda_max(16492, sum(w)) == sp.Rational(16492, 4060)
    # λ = 5 per class violates the necessary condition (Σλw = 20 300 > M): an overload study.
    assert conditions.necessary_condition([5, 5, 5], w, 16492) == sp.false
    assert conditions.alg1_stable([4] * 3, [3] * 3, [10] * 3, [20, 40, 60], 16492) == sp.true
    assert conditions.alg1_stable([4] * 3, [4] * 3, [10] * 3, [20, 40, 60], 16492) == sp.false


@pytest.mark.parametrize(("a", "infinite"), [(sp.Rational(5, 2), True), (3, True),
                                              (sp.Rational(7, 2), False), (5, False)])
def test_heavy_tail_corollary(a, infinite):
    assert conditions.heavy_tail_no_stable_rate(a) is infinite
    law = parse_law(f"zipf:a={float(a)}")
    assert (not np.isfinite(law.second_moment)) is infinite


def test_flow_variance_geometric_reference_values():
    p = sp.Rational(1, 20)
    det = flow.flow_saturated_variance_geometric(20, p, 3, "deterministic")
    poi = flow.flow_saturated_variance_geometric(20, p, 3, "poisson")
    assert sp.floor(det) == 87711
    assert poi == 118800
    # F(c, q) with c = s + 1 = 21, q = 0.95: Σ ν_a = 39 600 (docs/theory.md §8.4)
    assert flow.geometric_age_sum(21, 1 - p) == 39600
    rnd = flow.flow_saturated_variance_geometric(20, p, sp.Rational(5, 2), "randomized")
    det_part = flow.flow_saturated_variance_geometric(20, p, sp.Rational(5, 2), "deterministic")
    assert rnd - det_part == sp.Rational(1, 4) * flow.geometric_age_sum(21, (1 - p) ** 2)


@given(s=st.integers(0, 50), o=st.integers(1, 80))
def test_hoeffding_sum_of_squares_brute_force(s, o):
    assert hoeffding_sum_of_squares(s, o) == sum((s + a + 1) ** 2 for a in range(o))


def test_registry_entries_are_complete():
    assert len(REGISTRY) >= 16
    for rid, res in REGISTRY.items():
        assert rid == res.id
        for text in (res.statement, res.source, res.latex, res.twin):
            assert text
        assert rid.split(":")[0] in {"def", "thm", "prop", "cor", "cond", "bound", "approx"}
    assert REGISTRY["approx:gaussian"].is_bound is False
