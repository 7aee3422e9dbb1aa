"""Greedy's multi-class fluid cycle and the survival-polynomial criterion (numerics.chains.greedy_cycle).

Provenance: the criterion (ρ < 1 ⇔ the eviction-free equilibrium is locally stable) is our
reconstruction from the abstract of Ao, Dong, Luo & Simchi-Levi (arXiv:2606.15555), whose body
could not be read; it is checked here against (i) the homogeneous fluid map of
numerics.chains.fluid (the paper's 50 % figure as reconstructed in docs/theory.md §5), (ii) the
multi-class fluid map iterated from two starts, and (iii) the slot simulator (greedy, watermark 0,
recompute, saturated Poisson arrivals of deterministic classes).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from numerics.chains.fluid import greedy_fluid_cycle
from numerics.chains.greedy_cycle import (
    greedy_multiclass_cycle,
    greedy_multiclass_step,
    survival_polynomial,
    survival_radius,
)
from numerics.errors import WorkloadError
from numerics.model.specs import parse_law
from numerics.model.workload import RequestClass, Workload
from numerics.sim import SimConfig, parse_policy, simulate


@pytest.mark.parametrize(("s", "d", "m"), [(2, 5, 700), (0, 3, 50), (10, 8, 2000), (20, 4, 20000)])
def test_one_class_is_the_homogeneous_fluid_cycle(s, d, m):
    ref = greedy_fluid_cycle(s, d, m)  # exact rational iteration of numerics.chains.fluid
    got = greedy_multiclass_cycle(s, [d], [1.0], float(m))
    assert got.period == ref.cycle_length == d
    assert 1 - got.throughput_loss == pytest.approx(float(ref.throughput_ratio), rel=1e-9)
    assert 1 - got.throughput_loss == pytest.approx((s + (d + 1) / 2) / (s + d), rel=1e-9)
    assert not got.settles
    assert not got.predicted_settles


@pytest.mark.parametrize(("s", "d"), [(0, 2), (5, 3), (20, 4), (200, 7), (1000, 30)])
def test_one_class_radius_exceeds_one(s, d):
    # Eneström–Kakeya: every zero has |z| ≥ min_a (s + a + 1)/(s + a) > 1
    rho = survival_radius(s, [d], [1.0])
    assert rho >= (s + d) / (s + d - 1) - 1e-9
    assert rho > 1


def test_polynomial_coefficients():
    # S = 3, o = (2, 4), π = (¼, ¾): G = (1, 1, ¾, ¾), c_a = (S + a + 1) G(a)
    c = survival_polynomial(3, [2, 4], [1, 3])
    assert c == pytest.approx([4, 5, 0.75 * 6, 0.75 * 7])


def test_step_conserves_and_caps_memory():
    s, o, p = 5, np.array([3, 6]), np.array([0.4, 0.6])
    state = np.zeros((2, 6))
    for _ in range(40):
        state, rec = greedy_multiclass_step(state, s, o, p, 500.0)
        assert rec["memory"] <= 500.0 * (1 + 1e-12)
        assert np.all(state >= 0)
        assert np.all(state[0, 3:] == 0)


# Agreement of the criterion with the fluid map: on the grid S ∈ {5, 20, 50, 100, 200},
# (o_1, o_2) ∈ {(3,5), (4,7), (4,6), (5,8), (6,9), (3,4), (2,5), (5,6), (7,10)}, π_1 ∈ {0.3, 0.5, 0.7}
# minus |ρ − 1| < 0.003, 127 cases, the map settled exactly when ρ < 1 from both starts (127/127;
# the slow test below). A few cases on each side here. (S = 20, o = (4, 7) is coprime but has
# ρ = 1.0125 — the input does not dominate — and its map wanders without an exact period within
# 50 000 slots, averaging 1.1 % throughput loss: not a fast case.)
CASES = [  # (S, decodes, weights, ρ < 1)
    (200, [4, 7], [0.5, 0.5], True),   # ρ = 0.9750
    (50, [4, 7], [0.5, 0.5], True),    # ρ = 0.9885
    (30, [3, 5, 7], [1, 1, 1], True),  # ρ = 0.9327
    (300, [5, 8], [0.5, 0.5], True),   # ρ = 0.9850
    (20, [10, 15], [0.5, 0.5], False),  # ρ = 1.0386
    (200, [4, 6], [0.5, 0.5], False),  # ρ = 1.0049: gcd 2
]


@pytest.mark.parametrize(("s", "o", "w", "stable"), CASES)
@pytest.mark.parametrize("start", ["empty", "perturbed"])
def test_criterion_against_the_fluid_map(s, o, w, stable, start):
    rho = survival_radius(s, o, w)
    assert (rho < 1) == stable
    got = greedy_multiclass_cycle(s, o, w, 1e4, start=start, max_slots=20_000)
    assert got.settles == stable
    if stable:
        assert got.period == 1
        assert got.evictions_per_cycle == 0
        assert abs(got.throughput_loss) < 1e-3
    else:
        assert got.period >= 1
        assert got.evictions_per_cycle > 0
        assert got.throughput_loss > 0


@pytest.mark.parametrize(("s", "o", "g"), [(200, [4, 6], 2), (300, [6, 9], 3), (100, [10, 15], 5),
                                           (20, [10, 15], 5)])
def test_common_divisor_gives_a_synchronised_cycle_of_period_gcd(s, o, g):
    assert math.gcd(*o) == g
    got = greedy_multiclass_cycle(s, o, [0.5, 0.5], 2e4)
    assert got.period == g
    assert not got.settles


def test_input_dominated_limit_coprime_vs_common_divisor():
    # S → ∞: Q/S → Σ π_k (z^{o_k} − 1)/(z − 1); unit-circle zeros iff gcd > 1
    big = 10**6
    assert survival_radius(big, [4, 6], [0.5, 0.5]) > 1 - 1e-6  # z = −1 is a common root
    assert survival_radius(big, [4, 7], [0.5, 0.5]) < 0.99
    assert survival_radius(big, [3, 5, 7], [1, 1, 1]) < 0.99


def test_bad_inputs():
    for args in ((-1, [3], [1]), (2, [0], [1]), (2, [3, 4], [1]), (2, [3], [0]), (2, [2.5], [1])):
        with pytest.raises(WorkloadError):
            survival_radius(*args)
    with pytest.raises(WorkloadError):
        greedy_multiclass_cycle(5, [10], [1], 12.0)  # M ≤ S + o
    with pytest.raises(WorkloadError):
        greedy_multiclass_cycle(5, [10], [1], 1e3, start="middle")


@pytest.mark.slow
def test_criterion_on_the_whole_grid():
    n = agree = 0
    for s in (5, 20, 50, 100, 200):
        for o1, o2 in [(3, 5), (4, 7), (4, 6), (5, 8), (6, 9), (3, 4), (2, 5), (5, 6), (7, 10)]:
            for w1 in (0.3, 0.5, 0.7):
                rho = survival_radius(s, [o1, o2], [w1, 1 - w1])
                if abs(rho - 1) < 0.003:
                    continue
                got = greedy_multiclass_cycle(s, [o1, o2], [w1, 1 - w1], 1e4, start="perturbed",
                                              max_slots=20_000)
                n += 1
                agree += got.settles == (rho < 1)
    assert n == agree == 127


# The simulator: M = 20000, saturated Poisson arrivals (λ = 2·M/E[W]), 3000 slots, statistics over
# the second half. Measured (seed 1): settled cases 0 evictions and throughput/(M/E[W]) ≥ 0.9968;
# cycles: evictions per slot 26.267 vs the fluid's 26.273 (S = 20, o = 10, 15), 29.750 vs 29.762
# (S = 20, o = 4), 1.450 vs 1.453 (S = 100, o = 10, 15); throughput ratios 0.9306, 0.9371, 0.9798 vs
# 1 − loss = 0.9310, 0.9375, 0.9816. Tolerances: 3 % on evictions per slot, 0.01 on the ratio — a
# wide margin over the seed-to-seed spread seen (the saturated dynamics are nearly deterministic).
# Not resolved at this M: the weakly unstable cases (ρ ≤ 1.005, fluid evictions < 0.25 per slot),
# where the simulator shows about 0 evictions — the fluid's cycle is below one request per slot.
M_SIM = 20000
SIM_CASES = [(200, [4, 7], [0.5, 0.5]), (30, [3, 5, 7], [1 / 3] * 3), (20, [10, 15], [0.5, 0.5]),
             (20, [4], [1.0]), (100, [10, 15], [0.5, 0.5])]


def _workload(s, o, w, lam):
    return Workload(tuple(RequestClass.independent(parse_law(str(s)), parse_law(str(ok)), lam * wk, f"o{ok}")
                          for ok, wk in zip(o, w, strict=True)))


@pytest.mark.parametrize(("s", "o", "w"), SIM_CASES)
@pytest.mark.parametrize("seed", [1, 2])
def test_against_the_simulator(s, o, w, seed):
    fl = greedy_multiclass_cycle(s, o, w, float(M_SIM))
    slots = 3000
    cfg = SimConfig(_workload(s, o, w, 2 * fl.equilibrium_throughput), M_SIM,
                    parse_policy("greedy:watermark=0"), slots=slots, seed=seed, warmup=slots // 2,
                    eviction="recompute")
    res = simulate(cfg)
    ev = float(res.timeseries["evictions"].iloc[slots // 2:].mean())
    ratio = res.summary["throughput_requests_per_slot"] / fl.equilibrium_throughput
    if fl.predicted_settles:
        assert fl.settles
        assert ev <= 0.01
        assert ratio >= 0.99
    else:
        assert ev == pytest.approx(fl.evictions_per_cycle / fl.period, rel=0.03)
        assert ratio == pytest.approx(1 - fl.throughput_loss, abs=0.01)
