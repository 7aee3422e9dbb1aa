r"""Checks of :mod:`theory.capacity`: the compute-coupled capacity Λ*.

* ``thm:compute-capacity`` — the fluid fixed point at full memory solves to Λ* (symbolic); the
  numeric Λ* equals the sympy formula at random geometric workloads and linear step times
  (property).
"""

from __future__ import annotations

import math
from fractions import Fraction

import sympy as sp

import theory
from proofs_check import support as kit
from proofs_check.ledger import ClaimViolated, check

__all__: list[str] = []


# ------------------------------------------------------------------- thm:compute-capacity


@check("thm:compute-capacity", "symbolic", "fluid fixed point at full memory solves to Λ*")
def _compute_capacity_symbolic(p, compute_coupled_capacity=theory.compute_coupled_capacity):
    m, w, eo, es, c0, cb, ck, cp, lam_s, big = sp.symbols("M W EO ES c0 cb ck cp lambda_s Lambda",
                                                          positive=True)
    tau = c0 + cb * lam_s * eo + ck * lam_s * w + cp * lam_s * es
    # per-slot rate λ_s = Λ·τ(λ_s E[O], λ_s E[W], λ_s E[S]); full memory λ_s E[W] = M
    sol = sp.solve(sp.Eq(lam_s, big * tau).subs(lam_s, m / w), big)
    kit.require(len(sol) == 1, f"solutions {sol}")
    diff = sp.simplify(sol[0] - compute_coupled_capacity(m, w, eo, es, c0, cb, ck, cp))
    kit.require(diff == 0, f"Λ from the fixed point − Λ* = {diff}")
    return "sympy: solving λ_s = Λ·τ(λ_s E[O], λ_s E[W], λ_s E[S]) at λ_s = M/E[W] gives " \
           "Λ = M/(E[W]·τ(B_M, M, P_M)) exactly"


@check("thm:compute-capacity", "property", "numeric Λ* equals the sympy formula",
       quick={"examples": 10}, thorough={"examples": 500})
def _compute_capacity_property(p, compute_coupled_capacity=theory.compute_coupled_capacity):
    import hypothesis.strategies as st

    import numerics
    from numerics.model.steptime import StepTimeModel

    def body(s, pp, m, c0, cb, ck):
        ew = theory.mean_memory_time("geometric", mean_prompt=s, p=pp)
        sym = compute_coupled_capacity(m, ew, 1 / kit.rational(pp), s, c0=kit.rational(c0) / 100,
                                       cb=kit.rational(cb) / 10**4, ck=kit.rational(ck) / 10**7)
        step = StepTimeModel("linear", c0=float(c0) / 100, cb=float(cb) / 1e4, ck=float(ck) / 1e7)
        num = numerics.compute_coupled_capacity(kit.single_workload(s, f"geom:p={float(pp)!r}"), m, step)
        if not math.isclose(num, float(sym), rel_tol=1e-9):  # float evaluation of one formula
            raise ClaimViolated(f"numeric Λ* {num} vs symbolic {float(sym)}")

    fr = st.fractions(Fraction(1, 50), 50, max_denominator=50)
    strategies = {"s": st.integers(0, 500), "pp": st.fractions(Fraction(1, 400), Fraction(1, 2),
                                                               max_denominator=400),
                  "m": st.integers(10_000, 500_000), "c0": fr, "cb": fr, "ck": fr}
    n = kit.run_property(body, strategies, p["examples"])
    return f"{n} random geometric workloads and linear step times: numeric Λ* = sympy Λ* (1e-9)"
