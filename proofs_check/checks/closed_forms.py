r"""Checks of :mod:`theory.closed_forms`: the memory-time W and its mean E[W].

* ``def:memory-time`` — sympy sums Σ_{k=1}^{O}(S + k) to S·O + O(O+1)/2 (symbolic); the numeric
  W equals the slot-by-slot token count at random (S, O) (property);
* ``thm:mean-memory-time`` — E[W] by summation over each family's PMF equals the closed-form table
  (symbolic); Monte Carlo means of W agree with it in a z-test (empirical).
"""

from __future__ import annotations

import math

import numpy as np
import sympy as sp

import theory
from proofs_check import support as kit
from proofs_check.ledger import ClaimViolated, check

__all__: list[str] = []


# ------------------------------------------------------------------------- def:memory-time


@check("def:memory-time", "symbolic", "Σ_{k=1}^{O}(S+k) summed by sympy equals S·O + O(O+1)/2")
def _memory_time_symbolic(p, memory_time=theory.memory_time):
    from theory.closed_forms import memory_time_by_summation
    from theory.symbols import O, S

    diff = sp.simplify(memory_time_by_summation() - memory_time(S, O))
    kit.require(diff == 0, f"Σ(S+k) − W(S, O) simplifies to {diff}, not 0")
    return "sympy: simplify(Σ_{k=1}^{O}(S+k) − (S·O + O(O+1)/2)) = 0 for symbolic S, O"


@check("def:memory-time", "property", "numeric W equals the slot-by-slot token count",
       quick={"examples": 60}, thorough={"examples": 1000})
def _memory_time_property(p, memory_time=None):
    import hypothesis.strategies as st
    from hypothesis import target

    memory_time = kit.numeric_twin(memory_time, "memory_time")

    def body(s, o):
        target(float(o))
        counted = sum(s + k for k in range(1, o + 1))  # the engine's accounting, slot by slot
        if memory_time(s, o) != counted:
            raise ClaimViolated(f"W({s}, {o}) = {memory_time(s, o)} but slots hold {counted}")

    n = kit.run_property(body, {"s": st.integers(0, 4000), "o": st.integers(1, 4000)}, p["examples"])
    return f"{n} random (S, O) pairs: W equals the per-slot sum Σ(S+k) exactly"


# ------------------------------------------------------------------- thm:mean-memory-time


#: sympy's summation of the shifted Poisson moments takes ~8 s: thorough mode only
_QUICK_FAMILIES = ("geometric", "uniform", "deterministic")
_ALL_FAMILIES = (*_QUICK_FAMILIES, "shifted_poisson")


@check("thm:mean-memory-time", "symbolic", "closed forms of E[W] (docs/theory.md §8.4 table)",
       quick={"families": _QUICK_FAMILIES}, thorough={"families": _ALL_FAMILIES})
def _mean_memory_time_symbolic(p, mean_memory_time=theory.mean_memory_time):
    es, pp, n, mu, o = sp.symbols("ES p n mu o", positive=True)
    table = {  # docs/theory.md §8.4, E[W] = E S·E[O] + E[O(O+1)/2]
        ("geometric", "p"): (dict(p=pp), es / pp + 1 / pp**2),
        ("uniform", "n"): (dict(low=1, high=n), es * (n + 1) / 2 + (n + 1) * (n + 2) / 6),
        ("shifted_poisson", "mu"): (dict(mu=mu, shift=1), es * (1 + mu) + mu**2 / 2 + 2 * mu + 1),
        ("deterministic", "o"): (dict(o=o), es * o + o * (o + 1) / 2),
    }
    from theory.closed_forms import PARAMETERS

    done = []
    for (family, _), (params, expected) in table.items():
        if family not in p["families"]:
            continue
        subs = {v: PARAMETERS[family][k] for k, v in params.items() if isinstance(v, sp.Symbol)}
        got = mean_memory_time(family, mean_prompt=es, **{
            k: (PARAMETERS[family][k] if isinstance(v, sp.Symbol) else v) for k, v in params.items()
        })
        diff = sp.simplify(got - expected.subs(subs))
        kit.require(diff == 0, f"{family}: E[W] − table = {diff}")
        done.append(family)
    # the geometric identity E[O(O+1)/2] = 1/p² (docs/theory.md §9 item 8)
    geo = sp.simplify(mean_memory_time("geometric", mean_prompt=0, p=pp).subs(
        PARAMETERS["geometric"]["p"], pp))
    kit.require(sp.simplify(geo - 1 / pp**2) == 0, f"geometric E[O(O+1)/2] = {geo}, not 1/p²")
    return (f"sympy: E[W] by summation over the PMF equals the §8.4 table for {', '.join(done)}; "
            "E[O(O+1)/2] = 1/p² for geometric(p)")


@check("thm:mean-memory-time", "empirical", "Monte Carlo mean of W against the closed form",
       quick={"n": 200_000, "families": _QUICK_FAMILIES},
       thorough={"n": 4_000_000, "families": _ALL_FAMILIES})
def _mean_memory_time_empirical(p, mean_memory_time=theory.mean_memory_time):
    rng = np.random.default_rng(kit.SEED)
    rows = []
    for family, spec, params, s in (
        ("geometric", "geom:p=0.05", {"p": sp.Rational(1, 20)}, 20),
        ("uniform", "uniform:1,100", {"low": 1, "high": 100}, 20),
        ("shifted_poisson", "poisson:mean=30,shift=1", {"mu": 30, "shift": 1}, 7),
    ):
        if family not in p["families"]:
            continue
        wl = kit.single_workload(s, spec)
        prompts, decodes = wl.classes[0].lengths.sample(p["n"], rng)
        w = prompts * decodes + decodes * (decodes + 1) / 2
        exact = float(mean_memory_time(family, mean_prompt=s, **params))
        se = w.std(ddof=1) / math.sqrt(w.size)
        z = kit.require_z(w.mean(), exact, se, f"{family}: Monte Carlo E[W] = {w.mean():.2f} vs "
                          f"closed form {exact:.2f}")
        rows.append(f"{family} {w.mean():.1f} vs {exact:.1f} ({z:+.2f} s.e.)")
    return f"n = {p['n']:,} draws each, seed {kit.SEED}: " + "; ".join(rows) + f"; {kit.FA_TEXT} each"
