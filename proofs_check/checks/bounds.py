r"""Checks of :mod:`theory.bounds`: the tail bounds on overflow, and the Gaussian approximation.

* ``bound:hoeffding``, ``bound:bernstein``, ``bound:chernoff``, ``bound:cantelli`` — each bound's
  closed form by sympy (symbolic), and the bound ≥ the exact tail P(U > M) (FFT) at random bounded
  workloads (property, one table-driven check for all four); Chernoff also at the §8.2 geometric
  row (empirical);
* ``approx:gaussian`` — the Gaussian approximation falls below the exact tail: it is not a bound
  (empirical).
"""

from __future__ import annotations

import math
from fractions import Fraction

import sympy as sp

import theory
from proofs_check import support as kit
from proofs_check.ledger import ClaimViolated, check

__all__: list[str] = []


# ----------------------------------------------------------------- tail bounds vs exact tail

#: The bounds whose property check "bound ≥ exact tail" is registered from this table, with the
#: budget laws each one covers (Hoeffding needs bounded budgets).
_BOUND_KINDS = {
    "hoeffding": ("deterministic", "randomized"),
    "bernstein": ("deterministic", "randomized", "poisson"),
    "chernoff": ("deterministic", "randomized", "poisson"),
    "cantelli": ("deterministic", "randomized", "poisson"),
}


def _bound_property(name: str, p: dict, bound=None) -> str:
    """Hypothesis search for a bounded workload where ``bound`` falls below the exact tail."""
    import hypothesis.strategies as st
    from hypothesis import target

    from numerics.analysis.exact import exact_tail

    bound = kit.numeric_twin(bound, f"{name}_bound")
    worst = [0.0]

    def body(s, o, r10, kind, frac):
        r = r10 / 10 if kind != "deterministic" else max(1, r10 // 10)
        wl = kit.single_workload(s, f"uniform:1,{o}")
        mean = r * wl.mean_memory_time
        top = math.ceil(r) * (s + o) * o if kind != "poisson" else mean * 4 + 10 * (s + o)
        memory = int(mean + float(frac) * (top - mean)) + 1
        exact = exact_tail(wl, memory, r, kind).prob
        b = bound(wl, memory, r, kind)
        ratio = exact / b if b > 0 else (math.inf if exact > 0 else 0.0)
        worst[0] = max(worst[0], ratio)
        target(ratio)  # toward the cases where the bound is tightest
        if b < exact * (1 - kit.EXACT_RTOL):
            raise ClaimViolated(f"{name}: bound {b:.4g} < exact P(U > M) = {exact:.4g} for S ≡ {s}, "
                                f"O ~ U{{1..{o}}}, r = {r} {kind}, M = {memory}")

    strategies = {"s": st.integers(0, 10), "o": st.integers(1, 20), "r10": st.integers(5, 40),
                  "kind": st.sampled_from(_BOUND_KINDS[name]),
                  "frac": st.fractions(Fraction(1, 50), Fraction(49, 50), max_denominator=50)}
    n = kit.run_property(body, strategies, p["examples"])
    return (f"{n} random bounded workloads (S ≡ s ≤ 10, O ~ U{{1..o ≤ 20}}, r ∈ [0.5, 4], "
            f"{'/'.join(_BOUND_KINDS[name])} budgets, M from the mean to the maximum), target "
            f"exact/bound → 1: bound ≥ exact tail (FFT) every time; tightest exact/bound = "
            f"{worst[0]:.3g}")


def _register_bound_property(name: str) -> None:
    """Register the property check "<Name> ≥ exact tail" of ``bound:<name>``.

    Its function takes the bound under test as the keyword ``<name>_bound`` (default: the numeric
    twin ``numerics.<name>_bound``), like every check (:meth:`~proofs_check.ledger.Check.inject`).
    """
    keyword = f"{name}_bound"

    def bound_property(p, **formula):
        if set(formula) - {keyword}:
            raise TypeError(f"the {name} property check takes {keyword}=, got {', '.join(formula)}")
        return _bound_property(name, p, formula.get(keyword))

    bound_property.__name__ = bound_property.__qualname__ = f"_{name}_property"
    check(f"bound:{name}", "property", f"{name.capitalize()} ≥ exact tail",
          quick={"examples": 15}, thorough={"examples": 300})(bound_property)


def _brief_row(name: str, bound=None) -> str:
    """The geometric row of docs/theory.md §8.2: exact 4.83e-6 must lie under the bound."""
    from numerics.analysis.exact import exact_tail

    wl = kit.single_workload(20, "geom:p=0.05")
    exact = exact_tail(wl, 16000, 16, "deterministic").prob
    b = kit.numeric_twin(bound, f"{name}_bound")(wl, 16000, 16, "deterministic")
    kit.require(b >= exact, f"{name} bound {b:.3g} < exact {exact:.3g} (docs/theory.md §8.2 geometric row)")
    return f"docs/theory.md §8.2 geometric row (s = 20, p = 0.05, M = 16000, r = 16): bound {b:.3g} ≥ " \
           f"exact {exact:.3g}"


@check("bound:hoeffding", "symbolic", "Σ_{a<o}(s+a+1)² in closed form (sympy)")
def _hoeffding_symbolic(p, hoeffding_bound=theory.hoeffding_bound):
    from theory.bounds import hoeffding_sum_of_squares

    s, o = sp.symbols("s o", positive=True, integer=True)
    closed = o * (s + 1) ** 2 + (s + 1) * o * (o - 1) + (o - 1) * o * (2 * o - 1) / 6
    kit.require(sp.simplify(hoeffding_sum_of_squares(s, o) - closed) == 0, "sum of squares mismatch")
    val = hoeffding_bound(10996, 20, 20, 100)
    kit.require(bool(val.evalf() < sp.Float("1e-9")),
                f"docs/theory.md §8.2 row (uniform, r = 20): {float(val):.2g}")
    return "sympy: Σ_{a<o}(s+a+1)² = o(s+1)² + (s+1)o(o−1) + o(o−1)(2o−1)/6; docs/theory.md §8.2 uniform " \
           f"row r = 20: exp(−2Δ²/(rΣ)) = {float(val):.2g} (docs/theory.md §8.2: 9e-10)"


@check("bound:bernstein", "symbolic", "Bernstein exponent grows and is ~ 3Δ/(2c) for large slack")
def _bernstein_symbolic(p, bernstein_bound=theory.bernstein_bound):
    d, v, c = sp.symbols("Delta V c", positive=True)
    expo = -sp.log(bernstein_bound(d, v, c))
    expo = sp.simplify(sp.expand_log(expo, force=True))
    deriv = sp.simplify(sp.diff(expo, d))
    kit.require(sp.limit(expo / d, d, sp.oo) == sp.Rational(3, 2) / c, f"I(Δ)/Δ → {expo}")
    kit.require(bool(sp.simplify(deriv).is_positive), f"dI/dΔ = {deriv} not positive")
    return f"sympy: I(Δ) = {expo}, dI/dΔ = {sp.factor(deriv)} > 0, I(Δ)/Δ → 3/(2c)"


@check("bound:chernoff", "symbolic", "Poisson(r) Chernoff bound in closed form")
def _chernoff_symbolic(p, chernoff_bound=theory.chernoff_bound):
    theta = sp.Symbol("theta", positive=True)
    r, m = sp.Integer(3), sp.Integer(9)
    got = chernoff_bound(m, r * (sp.exp(theta) - 1), theta)
    classical = sp.exp(-r) * (sp.E * r / m) ** m  # e^{−r}(e r/m)^m, θ* = log(m/r)
    kit.require(sp.simplify(got - classical) == 0, f"Chernoff for Poisson(3) at 9: {got}")
    exact_tail = 1 - sum(sp.exp(-r) * r**k / sp.factorial(k) for k in range(0, m + 1))
    kit.require(bool(got > exact_tail), "Chernoff below the exact Poisson tail")
    return f"sympy: inf_θ e^(−9θ + 3(e^θ − 1)) = e^−3 (3e/9)^9 = {float(got):.4g} ≥ exact " \
           f"P(Poisson(3) > 9) = {float(exact_tail):.4g}"


@check("bound:cantelli", "symbolic", "Cantelli: min_t (V + t²)/(Δ + t)² = V/(V + Δ²)")
def _cantelli_symbolic(p, cantelli_bound=theory.cantelli_bound):
    d, v, t = sp.symbols("Delta V t", positive=True)
    markov = (v + t**2) / (d + t) ** 2  # P(X − μ ≥ Δ) ≤ E(X − μ + t)²/(Δ + t)² for t ≥ 0
    t_star = sp.solve(sp.diff(markov, t), t)
    kit.require(t_star == [v / d], f"stationary points {t_star}")
    kit.require(sp.simplify(markov.subs(t, v / d) - cantelli_bound(d, v)) == 0,
                f"Cantelli {cantelli_bound(d, v)} ≠ the optimised Markov bound")
    return "sympy: d/dt[(V+t²)/(Δ+t)²] = 0 at t = V/Δ, where it equals V/(V + Δ²)"


# each bound's property check after its symbolic one, Chernoff's before its empirical one
for _name in _BOUND_KINDS:
    _register_bound_property(_name)
del _name


@check("bound:chernoff", "empirical", "docs/theory.md §8.2 geometric row against the exact tail")
def _chernoff_empirical(p, chernoff_bound=None):
    return _brief_row("chernoff", chernoff_bound) + " (deterministic computation, no sampling)"


@check("approx:gaussian", "empirical", "the Gaussian is NOT a bound: below the exact tail")
def _gaussian_empirical(p, gaussian_approximation=None):
    import numerics
    from numerics.analysis.exact import exact_tail

    approx = kit.numeric_twin(gaussian_approximation, "gaussian_approximation")
    wl = kit.single_workload(20, "geom:p=0.05")
    exact = exact_tail(wl, 16000, 16, "deterministic").prob
    g = approx(wl, 16000, 16, "deterministic")
    kit.require(g < exact, f"Gaussian {g:.3g} ≥ exact {exact:.3g}: no counterexample to 'bound'")
    chern = numerics.chernoff_bound(wl, 16000, 16, "deterministic")
    return (f"docs/theory.md §8.2 geometric row: Gaussian {g:.3g} < exact {exact:.3g} < Chernoff "
            f"{chern:.3g} — optimistic by ×{exact / g:.1f}, so it is never used as a guarantee")
