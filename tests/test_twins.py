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
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

import numerics
import theory
from numerics.errors import SpecError
from numerics.model.specs import parse_law
from numerics.model.steptime import StepTimeModel
from numerics.model.workload import JointLengths, RequestClass, Workload
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
    if a <= 2:
        # E[O] = ∞ too: no such law is accepted unclipped (issue 15: the spec asks for max=L), and
        # the theory agrees that no rate is stable
        assert sym is True
        with pytest.raises(SpecError, match="E\\[X\\] is infinite"):
            _workload(1, f"zipf:a={float(a)}")
        return
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


@settings(max_examples=25)  # each example solves a truncated chain (~0.1 s)
@given(rho=st.fractions(Fraction(1, 20), Fraction(19, 20), max_denominator=20),
       r=st.integers(1, 5), kind=st.sampled_from(["deterministic", "poisson"]))
def check_bulk_queue_mean(rho, r, kind):
    # numeric: the DTMC's stationary mean; symbolic: the exact identity fed with E[Y²] of that law
    from numerics.chains.queues import activation_queue, unused_budget_moments

    lam = rho * r
    law = activation_queue(float(lam), kind, r)
    _ey, ey2 = unused_budget_moments(law)
    var_b = r if kind == "poisson" else 0
    sym = theory.bulk_queue_mean(lam, r, sp.nsimplify(ey2), budget_variance=var_b)
    assert_allclose(numerics.bulk_queue_mean(float(lam), r, kind), float(sym), rtol=1e-8)


@given(rho=st.fractions(Fraction(1, 50), Fraction(49, 50), max_denominator=50), r=st.integers(1, 20))
def check_kingman_bound(rho, r):
    lam = rho * r
    assert_allclose(numerics.kingman_bound(float(lam), r), float(theory.kingman_bound(lam, r)),
                    rtol=TWIN_RTOL)


@given(r=fractions, phi=st.fractions(Fraction(1, 20), 20, max_denominator=20),
       kind=st.sampled_from(["randomized", "poisson"]))
def check_budget_log_pgf(r, phi, kind):
    num = numerics.budget_log_pgf(kind, float(r), float(phi))
    assert_allclose(num, float(theory.budget_log_pgf(kind, r, phi)), rtol=TWIN_RTOL, atol=1e-12)


@given(d=fractions, v=fractions, c=fractions)
def check_overflow_decay_exponent(d, v, c):
    num = numerics.overflow_decay_exponent(float(d), float(v), float(c))
    assert_allclose(num, float(theory.overflow_decay_exponent(d, v, c)), rtol=TWIN_RTOL)


@given(a=st.fractions(Fraction(21, 10), 5, max_denominator=10), x=st.integers(0, 10_000))
def check_zipf_survival(a, x):
    sym = theory.zipf_survival(sp.Rational(a.numerator, a.denominator), x)
    assert_allclose(numerics.zipf_survival(float(a), x), float(sym.evalf(30)), rtol=1e-9)


@given(alpha=st.fractions(Fraction(1, 10), Fraction(19, 10), max_denominator=10),
       clip=st.integers(1, 10**6))
def check_pareto_clipped_second_moment(alpha, clip):
    sym = theory.pareto_clipped_second_moment(sp.Rational(alpha.numerator, alpha.denominator), clip)
    num = numerics.pareto_clipped_second_moment(float(alpha), clip)
    assert_allclose(num, float(sym), rtol=1e-8)  # adaptive quadrature of a smooth power: ~1e-10


@given(m=st.integers(1, 10**6), g=fractions, b=fractions)
def check_nie_critical_rate(m, g, b):
    assert_allclose(numerics.nie_critical_rate(m, float(g), float(b)),
                    float(theory.nie_critical_rate(m, g, b)), rtol=TWIN_RTOL)


@given(b_max=st.integers(1, 4096), mp=st.integers(1, 2000), md=st.integers(1, 2000),
       c=fractions, a=fractions, b0=st.integers(1, 512))
def check_token_budget_capacity(b_max, mp, md, c, a, b0):
    sym = theory.token_budget_capacity(b_max, mp, md, c, a, b0)
    num = numerics.token_budget_capacity(b_max, mp, md, float(c), float(a), b0)
    assert_allclose(num, float(sym), rtol=TWIN_RTOL)


@given(s=st.integers(0, 10_000), d=st.integers(1, 10_000))
def check_greedy_throughput_ratio(s, d):
    sym = theory.greedy_throughput_ratio(s, d)
    num = numerics.greedy_throughput_ratio(s, d)
    assert Fraction(num) == Fraction(int(sym.p), int(sym.q))  # exact on Fractions


@given(s=st.integers(0, 30), o=st.integers(1, 60), r10=st.integers(2, 40),
       frac=st.fractions(Fraction(7, 10), Fraction(3, 2), max_denominator=20),
       kind=st.sampled_from(["randomized", "poisson"]))
def check_waste_bound(s, o, r10, frac, kind):
    from numerics.analysis.waste import waste_certificate

    wl = _workload(s, f"uniform:1,{o}")
    r = r10 / 10
    m = max(s + o, int(float(frac) * r * wl.mean_memory_time) + 1)
    cert = waste_certificate(wl, m, r, kind)
    sym = theory.waste_bound([sp.Rational(float(v)) for v in cert.tail_probs],
                             [sp.Rational(float(v)) for v in cert.excess_means], cert.min_prompt)
    num = numerics.waste_bound(wl, m, r, kind)
    assert_allclose(num, float(sym), rtol=TWIN_RTOL, atol=1e-300)


@given(usage=st.integers(0, 500), needs=st.lists(st.integers(1, 200), max_size=8),
       m=st.integers(0, 1500), cap=st.integers(0, 9))
def check_fit_admission_count(usage, needs, m, cap):
    sym = int(theory.fit_admission_count(usage, needs, m, cap))
    assert numerics.fit_admission_count(usage, needs, m, cap) == sym


@given(pc=st.lists(st.tuples(st.fractions(0, 1, max_denominator=40), st.integers(1, 60)), min_size=1,
                   max_size=8), m=st.integers(0, 400), theta=st.fractions(0, 1, max_denominator=50))
def check_lookahead_chernoff(pc, m, theta):
    probs, costs = [p for p, _ in pc], [c for _, c in pc]
    sym = theory.lookahead_chernoff([sp.Rational(p.numerator, p.denominator) for p in probs], costs, m,
                                    sp.Rational(theta.numerator, theta.denominator))
    num = numerics.lookahead_chernoff([float(p) for p in probs], costs, m, float(theta))
    assert_allclose(num, float(sym), rtol=TWIN_RTOL)


@given(classes=st.lists(st.tuples(st.integers(0, 200), st.integers(1, 300), st.integers(1, 5)),
                        min_size=1, max_size=3),
       m=st.integers(1, 200_000))
def check_wait_thresholds(classes, m):
    # exact: π_k = rate_k/Σ rate, w_k = s_k o_k + o_k(o_k + 1)/2 for deterministic lengths
    wl = Workload(tuple(RequestClass.independent(parse_law(str(s)), parse_law(str(o)), float(r), f"c{k}")
                        for k, (s, o, r) in enumerate(classes)))
    total = sum(r for _, _, r in classes)
    mix = [sp.Rational(r, total) for _, _, r in classes]
    ws = [s * o + sp.Rational(o * (o + 1), 2) for s, o, _ in classes]
    n = numerics.wait_thresholds(wl, m)
    assert n == tuple(int(k) for k in theory.wait_thresholds(mix, ws, m))
    assert_allclose(numerics.wait_stability_rate(wl, n), float(theory.wait_stability_rate(mix, n)),
                    rtol=TWIN_RTOL)


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
    "thm:bulk-queue-mean": check_bulk_queue_mean,
    "bound:kingman": check_kingman_bound,
    "thm:convex-order": check_budget_log_pgf,
    "thm:overflow-exp-decay": check_overflow_decay_exponent,
    "prop:pareto-poly-decay": check_zipf_survival,
    "thm:heavy-tail-clip": check_pareto_clipped_second_moment,
    "cor:nie-capacity": check_nie_critical_rate,
    "thm:token-budget-capacity": check_token_budget_capacity,
    "thm:greedy-throughput-loss": check_greedy_throughput_ratio,
    "bound:waste": check_waste_bound,
    "thm:flowfit-no-drop": check_fit_admission_count,
    "thm:lookahead-no-drop": check_fit_admission_count,
    "prop:flowfit-is-flow": check_fit_admission_count,
    "bound:lookahead": check_lookahead_chernoff,
    "thm:wait-no-eviction": check_wait_thresholds,
    "prop:wait-stability": check_wait_thresholds,
}


def test_every_registered_result_has_a_twin_check():
    assert set(CHECKERS) == set(REGISTRY)
    for rid, res in REGISTRY.items():
        assert callable(getattr(theory, res.twin, None)), f"{rid}: theory.{res.twin} missing"
        assert callable(getattr(numerics, res.twin, None)), f"{rid}: numerics.{res.twin} missing"


@pytest.mark.parametrize("rid", sorted(CHECKERS))
def test_twins_agree(rid):
    CHECKERS[rid]()
