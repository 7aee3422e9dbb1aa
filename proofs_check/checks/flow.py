r"""Checks of :mod:`theory.flow`: mean and variance of the saturated flow-control memory.

* ``prop:flow-mean`` — Σ_a E[X_a] = E[W] by summation (symbolic); the simulated time-average U
  against r·E[W] (z-test on batch means) and an exact DTMC's E[U] = throughput·E[W] (empirical);
* ``prop:flow-variance`` — the §8.4 geometric numbers exactly (symbolic); sampled saturated U
  against Var U per budget law (empirical, z-test).
"""

from __future__ import annotations

import math

import numpy as np
import sympy as sp

import theory
from proofs_check import support as kit
from proofs_check.ledger import check

__all__: list[str] = []


# -------------------------------------------------------------------------- prop:flow-mean


@check("prop:flow-mean", "symbolic", "Σ_a E[X_a] = E[W] by summation (deterministic, geometric)")
def _flow_mean_symbolic(p, flow_saturated_mean=theory.flow_saturated_mean):
    from theory.symbols import O, S, a, r

    per_age = sp.summation(S + a + 1, (a, 0, O - 1))  # deterministic O: X_a = S + a + 1, a < O
    mean = flow_saturated_mean(r, per_age)
    kit.require(sp.simplify(mean - r * theory.memory_time(S, O)) == 0, f"r Σ_a μ_a = {mean}")
    pp = sp.Symbol("p", positive=True)
    q = sp.Symbol("q", positive=True)
    from theory.closed_forms import _first_branch

    geo = _first_branch(sp.summation((S + a + 1) * q**a, (a, 0, sp.oo))).subs(q, 1 - pp)
    kit.require(sp.simplify(geo - (S / pp + 1 / pp**2)) == 0, f"geometric Σ_a μ_a = {geo}")
    return "sympy: r·Σ_{a<O}(S+a+1) = r·W(S,O); geometric: Σ_a (S+a+1)(1−p)^a = S/p + 1/p² = E[W]"


@check("prop:flow-mean", "empirical", "simulated saturated flow control: time-average U vs r·E[W]",
       quick={"slots": 40000}, thorough={"slots": 400000})
def _flow_mean_empirical(p, flow_saturated_mean=theory.flow_saturated_mean):
    rows = []
    for s, spec, r, budget, ew in (
        (20, "uniform:1,60", 3, "deterministic", theory.mean_memory_time("uniform", 20, low=1, high=60)),
        (5, "geom:p=0.1", sp.Rational(5, 2), "randomized", theory.mean_memory_time("geometric", 5,
                                                                                    p=sp.Rational(1, 10))),
    ):
        expected = float(flow_saturated_mean(r, ew))
        res = kit.run_simulation(kit.single_workload(s, spec), 10**9, f"flow:rate={float(r)},budget={budget}",
                                 p["slots"], kit.SEED, arrival_rate=float(r) * 1.5, warmup=2000)
        u = res.timeseries.kv_tokens.to_numpy()[2000:].astype(float)
        mean, se = kit.batch_means(u, 40)  # batches of ≥ 950 slots ≫ the memory's correlation time
        z = kit.require_z(mean, expected, se,
                          f"{spec}: time-average U {mean:.1f} vs r·E[W] = {expected:.1f}")
        rows.append(f"{spec}, r = {float(r)} {budget}: {mean:.1f} ± {se:.1f} vs {expected:.1f} "
                    f"({z:+.2f} s.e.)")
    return (f"M = 10⁹ (no overflow), arrivals 1.5 r (saturated), {p['slots']} slots, seed {kit.SEED}, "
            f"40 batch means: " + "; ".join(rows) + f"; {kit.FA_TEXT}")


@check("prop:flow-mean", "empirical", "exact DTMC of a small stable system: E[U] = throughput·E[W]")
def _flow_mean_dtmc(p, flow_saturated_mean=theory.flow_saturated_mean):
    from numerics.chains.dtmc import exact_system
    from numerics.model.laws import TokenLaw
    from numerics.model.workload import Workload
    from numerics.sim.policies import FlowControl

    # S = 4, O ~ U{1,2,3}: at most one activation per slot holds ≤ Σ_{a<3}(4+a+1) = 18 ≤ M = 40
    # tokens, so no evictions: memory Little's law must hold exactly (docs/theory.md §9 item 5)
    wl = Workload.single(TokenLaw.deterministic(4), TokenLaw.from_pmf([1, 2, 3], [1 / 3] * 3))
    ew = theory.mean_memory_time("uniform", mean_prompt=4, low=1, high=3)
    rows = []
    for lam, rate in ((0.5, 0.8), (0.3, 0.6)):
        law = exact_system(wl, 40, FlowControl(rate=rate), lam, queue_cap=40)
        kit.require(law.evictions_per_slot == 0, f"evictions {law.evictions_per_slot} at M = 40")
        thr = law.throughput_requests_per_slot
        expected = float(flow_saturated_mean(sp.nsimplify(thr), ew))
        usage = law.kv_util_mean * 40
        # the chain's solve residual is ≤ 1e-9 (numerics.chains.dtmc), so means agree to ~1e-8
        kit.require(abs(usage - expected) <= 1e-7 * max(1.0, expected),
                    f"λ = {lam}: E[U] = {usage:.10f} vs throughput·E[W] = {expected:.10f}")
        rows.append(f"λ = {lam}, r = {rate}: E[U] = {usage:.6f} = {thr:.6f} × {ew}")
    return ("exact chain (numerics.chains.dtmc), S = 4, O ~ U{1,2,3}, M = 40, Bernoulli arrivals, flow "
            "control (randomised): " + "; ".join(rows) + " (deterministic computation)")


# ---------------------------------------------------------------------- prop:flow-variance


@check("prop:flow-variance", "symbolic", "geometric s = 20, p = 1/20, r = 3: 87,711 vs 118,800")
def _flow_variance_symbolic(p, flow_saturated_variance=theory.flow_saturated_variance):
    from theory.flow import geometric_age_sum

    s, pp, r = 20, sp.Rational(1, 20), 3
    q = 1 - pp
    f_q, f_q2 = geometric_age_sum(s + 1, q), geometric_age_sum(s + 1, q**2)
    det = flow_saturated_variance(r, f_q - f_q2, f_q2, "deterministic")
    poi = flow_saturated_variance(r, f_q - f_q2, f_q2, "poisson")
    kit.require(f_q == 39600, f"F(c, q) = {f_q}, docs/theory.md §8.4 says 39600")
    kit.require(sp.floor(det) == 87711, f"deterministic Var U = {det}, docs/theory.md says 87,711")
    kit.require(poi == 118800, f"Poisson Var U = {poi}, docs/theory.md says λ·F(c,q) = 118,800")
    rand = flow_saturated_variance(sp.Rational(5, 2), f_q - f_q2, f_q2, "randomized")
    lo = flow_saturated_variance(sp.Rational(5, 2), f_q - f_q2, f_q2, "poisson")
    kit.require(rand < lo, "randomised variance not below Poisson at r = 5/2")
    return f"exact: F(21, 19/20) = 39600; Var U = {det} (⌊·⌋ = 87,711) deterministic, 118,800 " \
           "Poisson at r = 3; randomised < Poisson at r = 5/2"


@check("prop:flow-variance", "empirical", "sampled saturated U: variance per budget law",
       quick={"n": 40000}, thorough={"n": 1_000_000})
def _flow_variance_empirical(p, flow_saturated_variance=None):
    import numerics

    rng = np.random.default_rng(kit.SEED)
    rows = []
    s, decode = 10, {o: 1 / 40 for o in range(1, 41)}
    g = np.clip(kit.survival_by_age(decode), 0.0, 1.0)  # float sums of 1/40 may exceed 1 by 1 ulp
    wl = kit.single_workload(s, "uniform:1,40")
    for r, kind in ((3, "deterministic"), (2.4, "randomized"), (2.4, "poisson")):
        if flow_saturated_variance is None:
            expected = numerics.flow_saturated_variance(wl, r, kind)
        else:
            mu = np.array([(s + a + 1) * ga for a, ga in enumerate(g)])
            nu = np.array([(s + a + 1) ** 2 * ga for a, ga in enumerate(g)])
            expected = float(flow_saturated_variance(r, float(np.sum(nu - mu**2)),
                                                     float(np.sum(mu**2)), kind))
        u = kit.sample_saturated_memory(s, g, r, kind, p["n"], rng)
        var = u.var(ddof=1)
        c = u - u.mean()
        se = math.sqrt(max(np.mean(c**4) - var**2, 0.0) / u.size)  # s.e. of a sample variance
        z = kit.require_z(var, expected, se,
                          f"{kind} r = {r}: sampled Var U {var:.0f} vs formula {expected:.0f}")
        rows.append(f"{kind} r={r}: {var:.0f} vs {expected:.0f} ({z:+.2f} s.e.)")
    return (f"S ≡ 10, O ~ U{{1..40}}, n = {p['n']:,} independent draws of U = Σ_a (s+a+1)·N_a "
            f"(binomial/Poisson thinning), seed {kit.SEED}: " + "; ".join(rows) + f"; {kit.FA_TEXT}")
