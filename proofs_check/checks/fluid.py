r"""Checks of :mod:`theory.fluid`: greedy admission's throughput loss in the fluid limit.

* ``thm:greedy-throughput-loss`` — ρ(s, d) ∈ [1/2, 1] with its limits (symbolic); simulated greedy
  against the fluid ratio, and flow control at ⌊M/W⌋ without evictions (empirical); the numeric
  twin equals the closed form exactly (property).
"""

from __future__ import annotations

from fractions import Fraction

import sympy as sp

import theory
from proofs_check import support as kit
from proofs_check.ledger import ClaimViolated, check

__all__: list[str] = []


# ---------------------------------------------------------------- thm:greedy-throughput-loss


@check("thm:greedy-throughput-loss", "symbolic", "ρ(s, d) ∈ [1/2, 1], ρ(s, 1) = 1, ρ → 1/2 as d/s → ∞")
def _greedy_symbolic(p, greedy_throughput_ratio=theory.greedy_throughput_ratio):
    s = sp.Symbol("s", nonnegative=True)
    d = sp.Symbol("d", positive=True)
    rho = greedy_throughput_ratio(s, d)
    kit.require(sp.limit(rho.subs(s, 0), d, sp.oo) == sp.Rational(1, 2), "d/s → ∞ limit ≠ 1/2")
    kit.require(sp.simplify(rho.subs(d, 1)) == 1, "ρ(s, 1) ≠ 1")
    kit.require(sp.simplify(rho - sp.Rational(1, 2) - (s + 1) / (2 * (s + d))) == 0,
                f"ρ − 1/2 = {sp.simplify(rho - sp.Rational(1, 2))}")
    kit.require(sp.simplify(1 - rho - (d - 1) / (2 * (s + d))) == 0,
                f"1 − ρ = {sp.simplify(1 - rho)}")
    return "sympy: ρ − 1/2 = (s+1)/(2(s+d)) > 0, 1 − ρ = (d−1)/(2(s+d)) ≥ 0, ρ(0, d) → 1/2"


@check("thm:greedy-throughput-loss", "empirical", "simulated greedy (admit-all, LIFO recompute) vs "
       "the fluid ratio; flow control at ⌊M/W⌋ never evicts", quick={"periods": 30},
       thorough={"periods": 200})
def _greedy_empirical(p, greedy_throughput_ratio=theory.greedy_throughput_ratio):
    rows = []
    for s, d in ((10, 100), (50, 50), (5, 200)):
        w = s * d + d * (d + 1) // 2
        memory = 40 * w  # 40 requests at the eviction-free equilibrium
        slots = p["periods"] * d
        wl = kit.single_workload(s, str(d))
        arrival = 2.0 * memory / w  # saturated input
        res = kit.run_simulation(wl, memory, "greedy:watermark=0", slots, kit.SEED, arrival_rate=arrival,
                                 warmup=slots // 3)
        ratio = res.summary["throughput_requests_per_slot"] / (memory / w)
        theory_ratio = float(greedy_throughput_ratio(s, d))
        # finite M (40 requests) and a finite window: completions are counted in whole requests
        # over (2/3)·periods·d slots, an error ≲ 1/(40·periods·2/3); the cycle's discreteness adds
        # O(1/40). Accept 3 %.
        kit.require(abs(ratio - theory_ratio) <= 0.03 and res.summary["evictions"] > 0,
                    f"(s, d) = ({s}, {d}): greedy ratio {ratio:.4f} vs fluid {theory_ratio:.4f}")
        flow = kit.run_simulation(wl, memory, f"flow:rate={memory // w},budget=deterministic", slots,
                                  kit.SEED, arrival_rate=arrival, warmup=slots // 3)
        kit.require(flow.summary["evictions"] == 0, f"flow control at ⌊M/W⌋ evicted ({s}, {d})")
        rows.append(f"({s}, {d}): {ratio:.4f} vs {theory_ratio:.4f}")
    return (f"M = 40·W, saturated deterministic (s, d), {p['periods']}·d slots, seed {kit.SEED}: "
            "greedy throughput / (M/W) = " + "; ".join(rows) + " (within 3 %: finite-M "
            "discreteness); flow control at ⌊M/W⌋: 0 evictions")


@check("thm:greedy-throughput-loss", "property", "numeric twin (numerics.chains.fluid) equals the closed "
       "form exactly", quick={"examples": 40}, thorough={"examples": 800})
def _greedy_property(p, greedy_throughput_ratio=theory.greedy_throughput_ratio):
    import hypothesis.strategies as st
    from hypothesis import target

    from numerics.chains.fluid import greedy_throughput_ratio as numeric

    def body(s, d):
        target(float(d) / (s + 1))
        sym = greedy_throughput_ratio(s, d)
        num = Fraction(numeric(s, d))
        if num != Fraction(int(sym.p), int(sym.q)):
            raise ClaimViolated(f"({s}, {d}): numerics.chains.fluid {num} vs closed form {sym}")

    n = kit.run_property(body, {"s": st.integers(0, 10_000), "d": st.integers(1, 10_000)},
                         p["examples"])
    return f"{n} random (s, d), d/s targeted large: numerics.chains.fluid.greedy_throughput_ratio equals " \
           "(s + (d+1)/2)/(s + d) exactly (Fractions)"
