r"""Checks of :mod:`theory.queues`: the activation (bulk-service) queue and its Kingman bound.

* ``thm:bulk-queue-mean`` — E[Q] from the stationarity of Q² (symbolic); the exact chain, the
  formula and the simulated Algorithm 1 queue agree (empirical);
* ``bound:kingman`` — bound − E[Q] = Var(Y)/(2(r − λ)) ≥ 0 (symbolic); the exact-chain E[Q] ≤ the
  bound at random λ = ρr (property).
"""

from __future__ import annotations

from fractions import Fraction

import sympy as sp

import theory
from proofs_check import support as kit
from proofs_check.ledger import ClaimViolated, check

__all__: list[str] = []


# -------------------------------------------------------------------- thm:bulk-queue-mean


@check("thm:bulk-queue-mean", "symbolic", "stationarity of Q² gives E[Q]; r = 1 closed form")
def _bulk_mean_symbolic(p, bulk_queue_mean=theory.bulk_queue_mean):
    eq, m, ex2, ey2, lam, r, var_a, var_b = sp.symbols("EQ m EX2 EY2 lambda r sigma_A2 sigma_B2")
    # (x^+)² = x² − (x^−)²: 0 = E Q'² − E Q² = 2 E[Q] m + E[X²] − E[Y²], m = λ − r, Q ⊥ X
    sol = sp.solve(sp.Eq(2 * eq * m + ex2 - ey2, 0), eq)[0]
    sol = sol.subs({ex2: var_a + var_b + m**2}).subs(m, lam - r)
    got = bulk_queue_mean(lam, r, ey2, arrival_variance=var_a, budget_variance=var_b)
    kit.require(sp.simplify(sol - got) == 0, f"derived {sol} vs registered {got}")
    lam1 = sp.Symbol("lambda", positive=True)
    unit = bulk_queue_mean(lam1, 1, 1 - lam1)  # B ≡ 1: Y ∈ {0, 1}, E[Y²] = E[Y] = 1 − λ
    kit.require(sp.simplify(unit - lam1**2 / (2 * (1 - lam1))) == 0, f"r = 1: {unit}")
    return "sympy: solving 2E[Q](λ−r) + E[X²] − E[Y²] = 0 gives the registered E[Q]; with B ≡ 1 " \
           "it is λ²/(2(1−λ))"


@check("thm:bulk-queue-mean", "empirical", "exact chain 0.8009 (λ=3, r=4); simulated queue agrees",
       quick={"slots": 30000}, thorough={"slots": 300000})
def _bulk_mean_empirical(p, bulk_queue_mean=theory.bulk_queue_mean):
    from numerics.chains.queues import activation_queue, unused_budget_moments

    law = activation_queue(3.0, "deterministic", 4)
    _ey, ey2 = unused_budget_moments(law)
    formula = float(bulk_queue_mean(3, 4, sp.nsimplify(ey2)))
    kit.require(round(law.mean, 4) == 0.8009, f"chain E[Q] = {law.mean:.5f}, docs/theory.md §8.3 0.8009")
    kit.require(abs(formula - law.mean) <= 1e-8,  # chain truncated at mass 1e-12: ≤ 1e-9 in E[Q]
                f"formula {formula:.6f} vs chain {law.mean:.6f}")
    unit = activation_queue(0.5, "deterministic", 1).mean
    kit.require(abs(unit - float(bulk_queue_mean(sp.Rational(1, 2), 1, sp.Rational(1, 2)))) <= 1e-8,
                f"r = 1, λ = 1/2: chain {unit:.6f} vs λ²/(2(1−λ)) = 1/4")
    res = kit.run_simulation(kit.single_workload(0, "1", 3.0), 10**6, "budgets:4", p["slots"], kit.SEED,
                             warmup=500)
    q = res.timeseries.queue.to_numpy()[500:].astype(float)
    mean, se = kit.batch_means(q, 40)
    z = kit.require_z(mean, law.mean, se, f"simulated E[Q] {mean:.4f} vs {law.mean:.4f}")
    return (f"exact chain λ = 3, r = 4: E[Q] = {law.mean:.4f} (docs/theory.md §8.3: 0.8009) = formula "
            f"with its "
            f"E[Y²] ({formula:.6f}); λ = 1/2, r = 1: {unit:.6f} = 1/4; simulated Algorithm 1 "
            f"queue {mean:.4f} ± {se:.4f} ({z:+.2f} s.e., {p['slots']} slots, seed {kit.SEED}, "
            f"{kit.FA_TEXT})")


# --------------------------------------------------------------------------- bound:kingman


@check("bound:kingman", "symbolic", "Kingman − E[Q] = Var(Y)/(2(r − λ)) ≥ 0")
def _kingman_symbolic(p, kingman_bound=theory.kingman_bound):
    lam, r, ey2 = sp.symbols("lambda r EY2", positive=True)
    gap = sp.simplify(kingman_bound(lam, r) - theory.bulk_queue_mean(lam, r, ey2))
    var_y = ey2 - (r - lam) ** 2  # E[Y] = r − λ
    kit.require(sp.simplify(gap - var_y / (2 * (r - lam))) == 0, f"bound − E[Q] = {gap}")
    kit.require(kingman_bound(3, 4) == sp.Rational(3, 2), f"λ=3, r=4: {kingman_bound(3, 4)}")
    return "sympy: bound − E[Q] = (E[Y²] − (r−λ)²)/(2(r−λ)) = Var(Y)/(2(r−λ)) ≥ 0 for λ < r; " \
           "λ = 3, r = 4 gives 3/2 (docs/theory.md §8.3)"


@check("bound:kingman", "property", "exact chain E[Q] ≤ Kingman at random λ = ρ r",
       quick={"examples": 25}, thorough={"examples": 400})
def _kingman_property(p, kingman_bound=None):
    import hypothesis.strategies as st
    from hypothesis import target

    from numerics.chains.queues import activation_queue

    bound_fn = kit.numeric_twin(kingman_bound, "kingman_bound")

    def body(rho, r10, kind):
        r = r10 if kind == "deterministic" else r10 / 4
        lam = float(rho) * r
        target(float(rho))  # heavy traffic: the bound is tight as ρ → 1
        mean = activation_queue(lam, kind, r).mean
        bound = bound_fn(lam, r, kind)
        if mean > bound * (1 + 1e-9):  # chain truncated at mass 1e-12
            raise ClaimViolated(f"λ = {lam:.4g}, r = {r} {kind}: E[Q] = {mean:.6g} > bound "
                                f"{bound:.6g}")

    strategies = {"rho": st.fractions(Fraction(1, 100), Fraction(97, 100), max_denominator=100),
                  "r10": st.integers(1, 12),
                  "kind": st.sampled_from(["deterministic", "randomized", "poisson"])}
    n = kit.run_property(body, strategies, p["examples"], shrink=p.get("shrink", True))
    return f"{n} random (λ = ρr, r, budget law), ρ ≤ 0.97 targeted at 1: exact-chain E[Q] ≤ " \
           "(σ_A² + σ_B²)/(2(r − λ)) every time"
