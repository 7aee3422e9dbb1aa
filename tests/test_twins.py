"""Same name in two layers: each registered result's sympy function and numeric twin agree.

For every ID in :data:`theory.registry.REGISTRY` there is a checker here that evaluates the
symbolic result (exact Rationals) and its numeric twin (floats, from :mod:`numerics`) at random
rational points drawn by hypothesis. A meta-test fails when a registered ID has no checker or
when the twin's name is missing from either layer.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import sympy as sp
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose

import numerics
import theory
from numerics.specs import parse_law
from numerics.steptime import StepTimeModel
from numerics.workload import JointLengths, RequestClass, Workload
from theory.registry import REGISTRY

TWIN_RTOL = 1e-9  # float evaluation of the same formula: rounding in sums of ≤ 10^5 terms

small_pos = st.integers(1, 300)
fractions = st.fractions(Fraction(1, 50), 50, max_denominator=50)


def _workload(s: int, o_spec: str) -> Workload:
    return Workload.single(parse_law(str(s)), parse_law(o_spec))


@given(s=st.integers(0, 5000), o=st.integers(1, 5000))
def check_memory_time(s, o):
    assert numerics.memory_time(s, o) == theory.memory_time(s, o)


@given(s=st.integers(0, 500), p=st.fractions(Fraction(1, 500), 1, max_denominator=500))
def check_mean_memory_time(s, p):
    sym = theory.mean_memory_time("geometric", mean_prompt=s, p=p)
    num = numerics.mean_memory_time(_workload(s, f"geom:p={float(p)!r}"))
    assert_allclose(num, float(sym), rtol=TWIN_RTOL)


@given(rates=st.lists(fractions, min_size=1, max_size=4), data=st.data())
def check_necessary_condition(rates, data):
    ws = data.draw(st.lists(small_pos, min_size=len(rates), max_size=len(rates)))
    m = data.draw(st.integers(1, 20000))
    sym = bool(theory.necessary_condition(rates, ws, m))
    assert numerics.necessary_condition([float(x) for x in rates], ws, m) is sym


@given(s=st.integers(0, 200), lo=st.integers(1, 50), width=st.integers(0, 200),
       m=st.integers(1, 100_000))
def check_lambda_max(s, lo, width, m):
    hi = lo + width
    ew = theory.mean_memory_time("uniform", mean_prompt=s, low=lo, high=hi)
    num = numerics.lambda_max(_workload(s, f"uniform:{lo},{hi}"), m)
    assert_allclose(num, float(theory.lambda_max(m, ew)), rtol=TWIN_RTOL)


@given(pairs=st.lists(st.tuples(st.integers(0, 60), st.integers(1, 60), st.integers(1, 9)),
                      min_size=1, max_size=12), m=st.integers(1, 130))
def check_hard_cap_violation(pairs, m):
    total = sum(w for _, _, w in pairs)
    sym = theory.hard_cap_violation(
        [((s, o), sp.Rational(w, total)) for s, o, w in pairs], m
    )
    joint = JointLengths(
        np.array([s for s, _, _ in pairs]),
        np.array([o for _, o, _ in pairs]),
        np.array([w / total for _, _, w in pairs]),
    )
    num = numerics.hard_cap_violation(Workload((RequestClass(joint),)), m)
    assert_allclose(num, float(sym), rtol=TWIN_RTOL, atol=1e-15)


@given(a=st.sampled_from([Fraction(3, 2), Fraction(2), Fraction(5, 2), Fraction(3),
                          Fraction(13, 4), Fraction(7, 2), Fraction(9, 2)]))
def check_heavy_tail_no_stable_rate(a):
    sym = theory.heavy_tail_no_stable_rate(sp.Rational(a.numerator, a.denominator))
    num = numerics.heavy_tail_no_stable_rate(_workload(1, f"zipf:a={float(a)}"))
    assert num is sym


@given(classes=st.lists(st.tuples(st.integers(0, 9), st.integers(0, 50), st.integers(1, 60)),
                        min_size=1, max_size=4))
def check_alg1_peak_memory(classes):
    b = [c[0] for c in classes]
    length = [c[1] for c in classes]
    o = [c[2] for c in classes]
    w = [numerics.memory_time(x, y) for x, y in zip(length, o, strict=True)]
    assert numerics.alg1_peak_memory(b, w) == theory.alg1_peak_memory(b, length, o)


@given(classes=st.lists(st.tuples(st.integers(0, 9), fractions, st.integers(0, 50),
                                  st.integers(1, 60)), min_size=1, max_size=4),
       m=st.integers(1, 30000))
def check_alg1_stable(classes, m):
    b, lam, length, o = (list(x) for x in zip(*classes, strict=True))
    w = [numerics.memory_time(x, y) for x, y in zip(length, o, strict=True)]
    sym = bool(theory.alg1_stable(b, lam, length, o, m))
    assert numerics.alg1_stable(b, [float(x) for x in lam], w, m) is sym


@given(s=st.integers(0, 100), lo=st.integers(1, 30), width=st.integers(0, 100), r=fractions)
def check_flow_saturated_mean(s, lo, width, r):
    hi = lo + width
    ew = theory.mean_memory_time("uniform", mean_prompt=s, low=lo, high=hi)
    num = numerics.flow_saturated_mean(_workload(s, f"uniform:{lo},{hi}"), float(r))
    assert_allclose(num, float(theory.flow_saturated_mean(r, ew)), rtol=TWIN_RTOL)


@given(s=st.integers(0, 100), p=st.fractions(Fraction(1, 100), Fraction(9, 10), max_denominator=100),
       r=fractions, kind=st.sampled_from(["randomized", "poisson"]))
def check_flow_saturated_variance(s, p, r, kind):
    from theory.flow import flow_saturated_variance_geometric

    sym = flow_saturated_variance_geometric(s, p, r, kind)
    num = numerics.flow_saturated_variance(_workload(s, f"geom:p={float(p)!r}"), float(r), kind)
    assert_allclose(num, float(sym), rtol=1e-7)  # geometric stored to a 1e-300 tail: ~1e-12


def _bounded_case(draw):
    s = draw(st.integers(0, 60))
    o = draw(st.integers(2, 80))  # o ≥ 2: Var U > 0, so the Gaussian is not degenerate
    r = draw(st.integers(1, 6))
    ew = theory.mean_memory_time("uniform", mean_prompt=s, low=1, high=o)
    m = draw(st.integers(math.ceil(float(r * ew)) + 1, math.ceil(float(r * ew)) * 3 + 10))
    return s, o, r, m, ew


def _variance_case(draw, budget: str):
    """A bounded case with the saturated variance as an exact Rational (for the sympy side)."""
    s, o, r, m, ew = _bounded_case(draw)
    wl = _workload(s, f"uniform:1,{o}")
    v = numerics.flow_saturated_variance(wl, r, budget)
    return wl, s, o, r, m, m - r * ew, sp.nsimplify(v)


@given(data=st.data())
def check_hoeffding_bound(data):
    s, o, r, m, ew = _bounded_case(data.draw)
    num = numerics.hoeffding_bound(_workload(s, f"uniform:1,{o}"), m, r, "deterministic")
    sym = theory.hoeffding_bound(m - r * ew, r, s, o)
    assert_allclose(num, float(sym), rtol=TWIN_RTOL, atol=1e-300)


@given(data=st.data())
def check_bernstein_bound(data):
    wl, s, o, r, m, slack, v = _variance_case(data.draw, "deterministic")
    num = numerics.bernstein_bound(wl, m, r, "deterministic")
    sym = theory.bernstein_bound(slack, v, s + o)
    assert_allclose(num, float(sym), rtol=1e-7, atol=1e-300)


@given(data=st.data())
def check_cantelli_bound(data):
    wl, _s, _o, r, m, slack, v = _variance_case(data.draw, "poisson")
    num = numerics.cantelli_bound(wl, m, r, "poisson")
    sym = theory.cantelli_bound(slack, v)
    assert_allclose(num, float(sym), rtol=1e-7)


@given(data=st.data())
def check_gaussian_approximation(data):
    wl, _s, _o, r, m, slack, v = _variance_case(data.draw, "randomized")
    num = numerics.gaussian_approximation(wl, m, r, "randomized")
    sym = theory.gaussian_approximation(slack, v)
    assert_allclose(num, float(sym), rtol=1e-7, atol=1e-300)


@given(o=st.integers(1, 40), r=st.integers(1, 5), extra=st.integers(1, 200))
def check_chernoff_bound(o, r, extra):
    # S ≡ 0 and O ≡ o with a deterministic budget: U is the constant r·o(o+1)/2, so the
    # numeric Chernoff bound must be 0 above it; with a Poisson budget each age a < o adds a
    # Poisson(r)·(a+1) term and the symbolic bound for the single age a = 0 (o = 1) is closed.
    w = o * (o + 1) // 2
    wl = _workload(0, str(o))
    assert numerics.chernoff_bound(wl, r * w + extra, r, "deterministic") <= 1e-300
    theta = sp.Symbol("theta", positive=True)
    m = r + extra
    sym = theory.chernoff_bound(m, r * (sp.exp(theta) - 1), theta)  # Poisson(r) tail at m
    num = numerics.chernoff_bound(_workload(0, "1"), m, r, "poisson")
    # numerical minimisation over θ: 1e-6; below 1e-300 both are underflow noise
    assert_allclose(num, float(sym), rtol=1e-6, atol=1e-300)


@given(s=st.integers(0, 500), p=st.fractions(Fraction(1, 400), Fraction(1, 2), max_denominator=400),
       m=st.integers(10_000, 500_000), c0=fractions, cb=fractions, ck=fractions)
def check_compute_coupled_capacity(s, p, m, c0, cb, ck):
    ew = theory.mean_memory_time("geometric", mean_prompt=s, p=p)
    sym = theory.compute_coupled_capacity(m, ew, 1 / p, s, c0=c0 / 100, cb=cb / 1e4, ck=ck / 1e7)
    step = StepTimeModel("linear", c0=float(c0 / 100), cb=float(cb / 10**4), ck=float(ck / 10**7))
    num = numerics.compute_coupled_capacity(_workload(s, f"geom:p={float(p)!r}"), m, step)
    assert_allclose(num, float(sym), rtol=1e-9)


CHECKERS = {
    "def:memory-time": check_memory_time,
    "thm:mean-memory-time": check_mean_memory_time,
    "prop:necessary": check_necessary_condition,
    "cor:lambda-max": check_lambda_max,
    "cond:hard-cap": check_hard_cap_violation,
    "cor:heavy-tail": check_heavy_tail_no_stable_rate,
    "thm:alg1-safe": check_alg1_peak_memory,
    "thm:alg1-stable": check_alg1_stable,
    "prop:flow-mean": check_flow_saturated_mean,
    "prop:flow-variance": check_flow_saturated_variance,
    "bound:hoeffding": check_hoeffding_bound,
    "bound:bernstein": check_bernstein_bound,
    "bound:chernoff": check_chernoff_bound,
    "bound:cantelli": check_cantelli_bound,
    "approx:gaussian": check_gaussian_approximation,
    "thm:compute-capacity": check_compute_coupled_capacity,
}


def test_every_registered_result_has_a_twin_check():
    assert set(CHECKERS) == set(REGISTRY)
    for rid, res in REGISTRY.items():
        assert callable(getattr(theory, res.twin, None)), f"{rid}: theory.{res.twin} missing"
        assert callable(getattr(numerics, res.twin, None)), f"{rid}: numerics.{res.twin} missing"


@pytest.mark.parametrize("rid", sorted(CHECKERS))
def test_twins_agree(rid):
    CHECKERS[rid]()
