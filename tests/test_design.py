"""Budget design (numerics.analysis.design): certificates, the exact tail at the design, the MILP, the CLI.

The workload is two bounded classes, small enough that every design solves in well under a second
and the exact tail of the designed memory is one FFT over its whole support:

* ``chat``: S = 8, O ~ uniform{1..16}, λ = 4 per slot  (E[W] = 119);
* ``code``: S = 32, O ~ uniform{1..32}, λ = 1 per slot (E[W] = 715);

with M = 4000 tokens and ε = 1e-4.
"""

from __future__ import annotations

import functools
import json
import math

import numpy as np
import pytest
from conftest import assert_one_line_cli_error
from hypothesis import given
from hypothesis import strategies as st

from numerics.analysis.design import (
    DesignInfeasibleError,
    OverflowConstraint,
    design_budgets,
    design_exact_overflow,
    design_rates,
    worst_case_memory_times,
)
from numerics.analysis.exact import exact_tail
from numerics.analysis.flow import flow_saturated_variance
from numerics.errors import WorkloadError
from numerics.model.specs import parse_law
from numerics.model.workload import JointLengths, RequestClass, Workload

M = 4000
EPS = 1e-4
#: CLARABEL's default feasibility / optimality tolerances are 1e-8 (relative); certificates built
#: from its output hold to a few times that. Relative to the scale of each quantity.
SOLVER_RTOL = 1e-6
#: Complementary slackness dual × slack, relative to (|dual| + 1)·(scale of the constraint): the
#: interior-point iterate stops at a duality gap of ~1e-8 of the objective.
CS_RTOL = 1e-6
#: The final linearisation point is the previous iterate, equal to the answer up to the
#: convex–concave stopping rule (objective change ≤ 1e-9): the true gradient differs by about that.
KKT_TRUE_RTOL = 1e-5
#: Two independent exact computations (FFTs of different sizes and tilts) agree to rounding.
EXACT_RTOL = 1e-9
#: Time-domain convolution (no FFT) against the tilted FFT: rounding of sums of ~100 terms.
CONV_ATOL = 1e-13


def two_class(rates=(4.0, 1.0)) -> Workload:
    return Workload((
        RequestClass.independent(parse_law("8"), parse_law("uniform:1,16"), rates[0], "chat"),
        RequestClass.independent(parse_law("32"), parse_law("uniform:1,32"), rates[1], "code"),
    ), "two")


WL = two_class()
DECODE_MEANS = np.array([8.5, 16.5])  # uniform{1..n}: (n + 1)/2


@functools.cache
def design(objective="throughput", budget="randomized", method="bernstein", eps=EPS, gamma=0.0):
    return design_rates(WL, M, eps, gamma=gamma, objective=objective, method=method, budget=budget)


# ---------------------------------------------------------------------------------- independent numpy
def class_sums(workload: Workload):
    """(m_k, D_k = Σ_a Var X_a, E_k = Σ_a μ_a²) per class, straight from the laws' age moments."""
    out = []
    for c in workload.classes:
        _g, mu, nu = c.lengths.age_moments(c.lengths.n_ages)
        out.append((c.mean_memory_time, float(np.sum(nu - mu**2)), float(np.sum(mu**2))))
    return np.array(out).T


def true_variance(workload: Workload, rates, budget: str) -> float:
    """Var U = Σ_k Var U_k with each class's own budget law (numerics.analysis.flow, one class at a time)."""
    return sum(
        flow_saturated_variance(Workload((RequestClass(c.lengths, None, c.name),)), r, budget)
        for c, r in zip(workload.classes, rates, strict=True)
    )


def bernstein_bound(workload: Workload, memory: int, rates, budget: str) -> float:
    """exp(−Δ²/(2(V + cΔ/3))) with the *true* variance and c = max_k (s_max + o_max)."""
    m, _d, _e = class_sums(workload)
    delta = memory - float(m @ np.asarray(rates))
    c = max(cl.lengths.max_prompt + cl.lengths.max_decode for cl in workload.classes)
    v = true_variance(workload, rates, budget)
    return math.exp(-(delta**2) / (2 * (v + c * delta / 3)))


def g_true(rates, budget="randomized", eps=EPS) -> float:
    """The Bernstein design constraint Σ r m + cL/3 + √((cL/3)² + 2L s(r)) in numpy."""
    m, d, e = class_sums(WL)
    r = np.asarray(rates, dtype=float)
    s = float((d + e) @ r) if budget == "poisson" else float(np.sum(np.minimum((d + e) * r, d * r + e / 4)))
    c, big_l = 64.0, math.log(1 / eps)  # c = max(8 + 16, 32 + 32)
    return float(m @ r) + c * big_l / 3 + math.sqrt((c * big_l / 3) ** 2 + 2 * big_l * s)


# ---------------------------------------------------------------------------------- the constraint
def test_class_sums_reference():
    # E[W] = s·E[O] + (E[O²] + E[O])/2: chat 8·8.5 + (93.5 + 8.5)/2 = 119; code 32·16.5 + 187 = 715
    m, _d, _e = class_sums(WL)
    np.testing.assert_allclose(m, [119.0, 715.0], rtol=1e-15)


@given(r1=st.floats(0.01, 40.0), r2=st.floats(0.01, 8.0))
def test_variance_bound(r1, r2):
    con = OverflowConstraint.build(WL, M, EPS, "bernstein", "randomized")
    poisson = OverflowConstraint.build(WL, M, EPS, "bernstein", "poisson")
    rates = [r1, r2]
    # Poisson: s(r) is the variance itself (λ·Σ ν_a per class; numerics.analysis.flow)
    assert poisson.variance_bound(rates) == pytest.approx(true_variance(WL, rates, "poisson"), rel=1e-12)
    # randomized: f(1 − f) ≤ min(r, 1/4) makes s(r) an upper bound, below the Poisson variance
    v = true_variance(WL, rates, "randomized")
    assert v <= con.variance_bound(rates) * (1 + 1e-12)
    assert con.variance_bound(rates) <= poisson.variance_bound(rates) * (1 + 1e-12)


@given(r=st.tuples(st.floats(0.01, 40.0), st.floats(0.01, 8.0)),
       at=st.tuples(st.floats(0.01, 40.0), st.floats(0.01, 8.0)),
       budget=st.sampled_from(["randomized", "poisson"]))
def test_tangent_is_conservative(r, at, budget):
    # h is concave, so its tangent at any point lies above g everywhere: the linearised
    # constraint implies the true one.
    con = OverflowConstraint.build(WL, M, EPS, "bernstein", budget)
    coef, offset = con.tangent(at)
    assert con.value(r) <= coef @ np.asarray(r) + offset + 1e-9 * M
    assert con.value(at) == pytest.approx(coef @ np.asarray(at) + offset, rel=1e-12)
    assert con.value(r) == pytest.approx(g_true(r, budget), rel=1e-12)


def test_not_convex_without_linearisation():
    # The module docstring's claim: {r : g(r) ≤ M} is not convex, so no cone constraint models it.
    budget = "poisson"
    ends = []
    for axis in range(2):
        lo, hi = 0.0, 100.0  # largest rate on each axis with the other class at ~0
        for _ in range(80):
            mid = 0.5 * (lo + hi)
            r = np.full(2, 1e-9)
            r[axis] = mid
            lo, hi = (mid, hi) if g_true(r, budget) <= M else (lo, mid)
        r = np.full(2, 1e-9)
        r[axis] = lo
        ends.append(r)
    assert g_true(0.5 * (ends[0] + ends[1]), budget) > M


# ---------------------------------------------------------------------------------- certificates
CASES = [(o, b) for o in ("throughput", "maxmin") for b in ("randomized", "poisson")]


@pytest.mark.parametrize(("objective", "budget"), CASES)
def test_certificates(objective, budget):
    d = design(objective, budget)
    r = d.rates_array
    assert d.status == "optimal"
    assert d.converged
    assert d.solver == "CLARABEL"
    assert d.guaranteed
    # primal feasibility, recomputed in numpy: the true Bernstein bound (true variance) ≤ ε
    assert np.all(r >= np.array(d.floors) * (1 - SOLVER_RTOL))
    assert g_true(r, budget) <= M * (1 + 1e-12)
    assert bernstein_bound(WL, M, r, budget) <= EPS * (1 + SOLVER_RTOL)
    coef = np.array(d.linearization["coefficients"])
    rhs = d.linearization["rhs"]
    assert coef @ r <= rhs + SOLVER_RTOL * M
    # dual signs: cvxpy gives ≥ 0 multipliers for both ≤ and ≥ constraints
    y = d.duals["overflow"]
    z = np.array(d.duals["floor"])
    assert y >= -SOLVER_RTOL
    assert np.all(z >= -SOLVER_RTOL)
    # complementary slackness: multiplier × slack ≈ 0
    assert abs(y * (rhs - coef @ r)) <= CS_RTOL * (abs(y) + 1) * M
    floors = np.array(d.floors)
    assert np.all(np.abs(z * (r - floors)) <= CS_RTOL * (np.abs(z) + 1) * np.maximum(floors, 1))
    # stationarity of the final program (Lagrangian of max f s.t. coef·r ≤ rhs, r ≥ floor, ...)
    if objective == "throughput":
        c = DECODE_MEANS  # weights 1
        np.testing.assert_allclose(c + z, y * coef, rtol=SOLVER_RTOL, atol=SOLVER_RTOL * c.max())
    else:
        u = np.array(d.duals["headroom"])
        lam = np.array(d.arrival_rates)
        assert np.all(u >= -SOLVER_RTOL)
        assert u @ lam == pytest.approx(1.0, rel=SOLVER_RTOL)  # ∂/∂t: 1 − Σ u_k λ_k = 0
        np.testing.assert_allclose(z + u, y * coef, rtol=SOLVER_RTOL, atol=SOLVER_RTOL * y * coef.max())


@pytest.mark.parametrize("budget", ["randomized", "poisson"])
def test_kkt_of_the_true_problem(budget):
    # At convergence the linearisation point is the answer, so the KKT conditions hold with the
    # true gradient of g (central differences in numpy; g is smooth here since r_k > 1/4).
    d = design("throughput", budget)
    r = d.rates_array
    step = 1e-4
    grad = np.array([(g_true(r + step * e, budget) - g_true(r - step * e, budget)) / (2 * step)
                     for e in np.eye(2)])
    y, z = d.duals["overflow"], np.array(d.duals["floor"])
    np.testing.assert_allclose(DECODE_MEANS + z, y * grad, rtol=KKT_TRUE_RTOL)
    assert "overflow" in d.binding
    assert g_true(r, budget) == pytest.approx(M, rel=KKT_TRUE_RTOL)


def test_throughput_against_a_grid():
    # Independent global search on the nonconvex set: for r_2 on a grid, the largest r_1 with
    # g ≤ M (g increases in r_1), then the best objective. The design must match it.
    d = design("throughput", "randomized")
    best = -math.inf
    for r2 in np.linspace(1.0, 4.0, 121):
        lo, hi = 4.0, 40.0
        if g_true([lo, r2]) > M:
            continue
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if g_true([mid, r2]) <= M else (lo, mid)
        best = max(best, DECODE_MEANS @ [lo, r2])
    assert d.objective_value >= best * (1 - SOLVER_RTOL)
    assert d.objective_value <= best * (1 + 1e-3)  # the grid's r_2 = 1 column holds the optimum


@pytest.mark.parametrize("budget", ["randomized", "poisson"])
def test_maxmin_is_the_ray_boundary(budget):
    # max–min of r_k/λ_k: g increases in every r_k, so the optimum is r = t*·λ with g(t*λ) = M
    # (bisection on the true constraint, independent of cvxpy).
    d = design("maxmin", budget)
    lam = np.array(d.arrival_rates)
    lo, hi = 1.0, 10.0
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if g_true(mid * lam, budget) <= M else (lo, mid)
    assert d.objective_value == pytest.approx(lo, rel=KKT_TRUE_RTOL)
    np.testing.assert_allclose(d.rates_array, lo * lam, rtol=KKT_TRUE_RTOL)


def test_gamma_and_weights():
    d = design("throughput", "randomized", gamma=0.5)
    assert np.all(d.rates_array >= 1.5 * np.array(d.arrival_rates) * (1 - SOLVER_RTOL))
    w = design_rates(WL, M, EPS, weights=[1.0, 10.0])  # code tokens worth 10×: code gets the room
    assert w.rates[1] > design().rates[1] + 1
    assert w.weights == (1.0, 10.0)


# ---------------------------------------------------------------------------------- exact tails
@pytest.mark.parametrize(("objective", "budget"), CASES)
def test_design_meets_eps_under_the_exact_tail(objective, budget):
    d = design(objective, budget)
    exact = design_exact_overflow(WL, M, d.rates, budget)
    assert exact <= EPS
    # conservative, but not absurdly: 25% more of every rate breaks ε under the exact tail
    # (measured: the exact ε-boundary lies 9–11% beyond the Bernstein design along its ray)
    assert design_exact_overflow(WL, M, 1.25 * d.rates_array, budget) > EPS


def test_cantelli_design_meets_eps():
    d = design("throughput", "randomized", method="cantelli", eps=0.05)
    assert d.guaranteed
    assert design_exact_overflow(WL, M, d.rates, "randomized") <= 0.05


def test_gaussian_design_is_flagged():
    d = design("throughput", "poisson", method="gaussian")
    assert not d.guaranteed
    assert any("not a bound" in n for n in d.notes)
    assert d.rates[0] > design("throughput", "poisson").rates[0]  # less conservative than Bernstein


def test_exact_routes_agree():
    # Poisson: one global Poisson budget split by the mix is the per-class system (thinning), so
    # exact_tail on the mixture and the per-class inversion compute the same number two ways.
    from numerics.analysis.exact import exact_tail_per_class

    for rates in ([10.3, 2.7], [16.0, 1.0]):
        classes = tuple(RequestClass(c.lengths, float(x), c.name)
                        for c, x in zip(WL.classes, rates, strict=True))
        mixture = exact_tail(Workload(classes, WL.name), M, float(sum(rates)), "poisson").prob
        ours = exact_tail_per_class(WL, M, rates, "poisson").prob
        assert ours == pytest.approx(mixture, rel=EXACT_RTOL)
    one = Workload((WL.classes[1],))
    for r in (3.3, 4.7):
        ours = exact_tail_per_class(one, M, [r], "randomized").prob
        assert ours == pytest.approx(exact_tail(one, M, r, "randomized").prob, rel=EXACT_RTOL)


def _direct_pmf(lengths, rate: float) -> np.ndarray:
    """PMF of one class's saturated U by time-domain convolution (np.convolve, no FFT)."""
    s, o = lengths.prompt, lengths.decode
    k, f = math.floor(rate), rate - math.floor(rate)
    out = np.array([1.0])
    for a in range(int(o.max_value)):
        x = np.zeros(int(s.max_value) + a + 2)
        alive = float(o.sf(a))
        x[0] = 1 - alive
        x[s.values + a + 1] += alive * s.probs
        for _ in range(k):
            out = np.convolve(out, x)
        mixed = f * x
        mixed[0] += 1 - f
        out = np.convolve(out, mixed)
    return out


def test_exact_against_direct_convolution():
    wl = Workload((
        RequestClass.independent(parse_law("uniform:1,3"), parse_law("uniform:1,4"), 1.0, "a"),
        RequestClass.independent(parse_law("5"), parse_law("uniform:1,6"), 1.0, "b"),
    ))
    rates = [2.5, 1.5]
    pmf = np.convolve(_direct_pmf(wl.classes[0].lengths, 2.5), _direct_pmf(wl.classes[1].lengths, 1.5))
    for memory in (60, 90, 120, 140):
        direct = float(pmf[memory + 1:].sum())
        got = design_exact_overflow(wl, memory, rates, "randomized")
        assert got == pytest.approx(direct, rel=1e-9, abs=CONV_ATOL)
    assert design_exact_overflow(wl, pmf.size, rates, "randomized") == 0.0  # beyond the support


# ---------------------------------------------------------------------------------- bad input
def test_infeasible_designs():
    with pytest.raises(DesignInfeasibleError, match="lower γ or the arrival rates"):
        design_rates(WL, 1500, EPS)
    with pytest.raises(DesignInfeasibleError, match=r"mean 4,766\.0"):  # 4·119 + 6·715
        design_rates(two_class((4.0, 6.0)), M, EPS)
    with pytest.raises(DesignInfeasibleError, match="lower γ"):
        design_rates(WL, M, EPS, gamma=3.0)
    assert issubclass(DesignInfeasibleError, WorkloadError)


@pytest.mark.parametrize("eps", [0, 1, -0.1, 1.5, math.nan, True])
def test_epsilon_outside_unit_interval(eps):
    with pytest.raises(WorkloadError, match=r"epsilon must lie in \(0, 1\)"):
        design_rates(WL, M, eps)


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"gamma": -0.1}, "gamma"),
    ({"gamma": math.inf}, "gamma"),
    ({"objective": "fastest"}, "objective must be one of"),
    ({"method": "hoeffding"}, "method must be one of"),
    ({"budget": "deterministic"}, "integer"),
    ({"weights": [1.0]}, "weights must be 2"),
    ({"weights": [1.0, -2.0]}, "weights must be 2"),
])
def test_bad_arguments(kwargs, needle):
    with pytest.raises(WorkloadError, match=needle):
        design_rates(WL, M, EPS, **kwargs)


def test_bad_workloads():
    no_rates = Workload.single(parse_law("8"), parse_law("uniform:1,16"))
    with pytest.raises(WorkloadError, match="per-class arrival rates"):
        design_rates(no_rates, M, EPS)
    unbounded = Workload.single(parse_law("8"), parse_law("geom:mean=10"), 1.0)
    with pytest.raises(WorkloadError, match="bounded"):
        design_rates(unbounded, M, EPS)
    with pytest.raises(WorkloadError, match="bounded"):
        design_budgets(unbounded, M)
    with pytest.raises(WorkloadError, match="memory"):
        design_rates(WL, -5, EPS)
    with pytest.raises(WorkloadError, match="P\\(S \\+ O > M\\)"):
        design_rates(WL, 50, EPS)  # code requests reach 64 tokens


# ---------------------------------------------------------------------------------- integer MILP
def brute_force(workload, memory, gamma=0.0, objective="throughput"):
    w = worst_case_memory_times(workload)
    lam = workload.rates_per_slot
    lo = np.floor((1 + gamma) * lam).astype(int) + 1
    dec = np.array([c.lengths.decode_law.mean for c in workload.classes])
    best = -math.inf
    hi = [int(memory // x) for x in w]
    for b1 in range(lo[0], hi[0] + 1):
        for b2 in range(lo[1], hi[1] + 1):
            b = np.array([b1, b2])
            if b @ w <= memory:
                val = dec @ b if objective == "throughput" else float(np.min(b / lam))
                best = max(best, val)
    return best


@pytest.mark.parametrize(("memory", "gamma", "objective"), [
    (5000, 0.0, "throughput"), (5000, 0.0, "maxmin"), (9000, 0.3, "throughput"),
    (9000, 0.3, "maxmin"), (20_000, 0.0, "maxmin"),
])
def test_milp_against_enumeration(memory, gamma, objective):
    b = design_budgets(WL, memory, gamma=gamma, objective=objective)
    budgets = b.rates_array
    w = worst_case_memory_times(WL)
    assert np.all(budgets == np.round(budgets))
    assert budgets @ w <= memory
    assert np.all(budgets > (1 + gamma) * np.array(b.arrival_rates))
    assert b.objective_value == pytest.approx(brute_force(WL, memory, gamma, objective), rel=1e-12)
    assert b.duals is None
    assert "not defined" in b.duals_note
    assert b.solver == "HIGHS"


def test_milp_dong_cao_reference():
    # Dong & Cao §4.1: (s, o) = (10, 20), (10, 40), (10, 60); w = 410, 1220, 2430; M = 16492.
    # With λ = 3.5 each the max–min budgets are (4, 4, 4): Σ b w = 16240 ≤ M and any 5 overflows.
    wl = Workload(tuple(
        RequestClass.independent(parse_law("10"), parse_law(str(o)), 3.5, f"o{o}") for o in (20, 40, 60)
    ))
    np.testing.assert_array_equal(worst_case_memory_times(wl), [410, 1220, 2430])
    b = design_budgets(wl, 16492, objective="maxmin")
    assert b.rates == (4.0, 4.0, 4.0)
    assert b.objective_value == pytest.approx(4 / 3.5, rel=1e-15)


def test_milp_infeasible():
    with pytest.raises(DesignInfeasibleError, match="Σ b_k w_k ≥ 4,424"):  # 5·264 + 2·1552
        design_budgets(WL, 4000)


def test_worst_case_memory_time_joint():
    # Pairs (s, o): (50, 2), (0, 5). Age 0, 1: max prompt 50 → 51, 52; ages 2..4: prompt 0 → 3, 4, 5.
    joint = JointLengths(np.array([50, 0]), np.array([2, 5]), np.array([0.5, 0.5]))
    wl = Workload((RequestClass(joint, 1.0, "j"),))
    assert worst_case_memory_times(wl).tolist() == [51 + 52 + 3 + 4 + 5]


# ---------------------------------------------------------------------------------- CLI
@pytest.fixture
def toml(tmp_path):
    path = tmp_path / "two.toml"
    path.write_text(
        'memory_tokens = 4000\n'
        '[[class]]\nname = "chat"\nprompt = 8\ndecode = "uniform:1,16"\nrate = 4.0\n'
        '[[class]]\nname = "code"\nprompt = 32\ndecode = "uniform:1,32"\nrate = 1.0\n'
    )
    return str(path)


def test_cli_json(capsys, toml):
    from flowstab.cli import main

    assert main(["design", "--workload", toml, "--eps", "1e-4", "--verify", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "optimal"
    assert out["rates"] == pytest.approx(list(design().rates), rel=1e-9)
    assert out["duals"]["overflow"] >= 0
    assert out["exact_overflow"] <= 1e-4
    assert main(["design", "--workload", toml, "--memory", "5000", "--integer", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rates"] == [7.0, 2.0]  # max 8.5 b_1 + 16.5 b_2, 264 b_1 + 1552 b_2 ≤ 5000, b > λ
    assert out["duals"] is None


def test_cli_text_and_total_rate(capsys):
    from flowstab.cli import main

    argv = ["design", "--prompt", "10", "--decode", "uniform:1,20", "--memory", "4000",
            "--arrival-rate", "3", "--eps", "1e-4", "--objective", "maxmin"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "flowstab design" in out
    assert "binding: overflow" in out


@pytest.mark.parametrize(("extra", "needle"), [
    (["--memory", "1000"], "lower γ or the arrival rates"),
    (["--eps", "1.5"], "must lie in (0, 1)"),
    (["--eps", "0"], "must be a positive number"),
    (["--gamma", "-1"], "must be a number ≥ 0"),
    (["--memory", "2000", "--integer"], "Σ b_k w_k"),
    (["--weights", "1,2,3"], "weights must be 2"),
])
def test_cli_errors(capsys, toml, extra, needle):
    assert_one_line_cli_error(capsys, ["design", "--workload", toml, *extra], needle)


def test_cli_needs_rates(capsys):
    assert_one_line_cli_error(
        capsys, ["design", "--prompt", "10", "--decode", "uniform:1,20", "--memory", "4000"],
        "per-class arrival rates")
    assert_one_line_cli_error(
        capsys, ["design", "--prompt", "10", "--decode", "geom:mean=20", "--memory", "4000",
                 "--arrival-rate", "1"], "bounded")
