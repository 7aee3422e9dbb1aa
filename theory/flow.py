r"""Algorithm 2 (flow control) in saturation: mean and variance of the memory in use (sympy).

Numeric twin: :mod:`numerics.analysis.flow` (functions of the same names; ``tests/test_twins.py`` checks
that they agree).

With i.i.d. budgets B (mean r, variance σ_B²) and per-age terms :math:`X_a = (S+a+1)1\{O>a\}`
(:math:`\mu_a = E X_a`, :math:`\nu_a = E X_a^2`), the saturated memory
:math:`U = \sum_a \sum_{m \le B_{t-a}} X_{a,m}` has

.. math:: E[U] = r\,E[W], \qquad \operatorname{Var} U = r\sum_a(\nu_a - \mu_a^2)
          + \sigma_B^2 \sum_a \mu_a^2

(``prop:flow-mean``, ``prop:flow-variance``), with σ_B² = 0 (deterministic), f(1 − f)
(randomised {⌊r⌋, ⌈r⌉}, f = r − ⌊r⌋) or r (Poisson). For S ≡ s and geometric O the sums close:
with c = s + 1 and :math:`F(c, x) = \sum_{a \ge 0}(c + a)^2 x^a` (summed by sympy),
Σ ν_a = F(c, q) and Σ μ_a² = F(c, q²).

Examples
--------
>>> import sympy as sp
>>> v = flow_saturated_variance_geometric(20, sp.Rational(1, 20), 3, "deterministic")
>>> v, sp.floor(v)
(1734312400/19773, 87711)
"""

from __future__ import annotations

from functools import cache

import sympy as sp

from theory.closed_forms import _first_branch
from theory.registry import Result, register
from theory.symbols import BudgetKind, Quantity, a

__all__ = [
    "budget_variance",
    "flow_saturated_mean",
    "flow_saturated_variance",
    "flow_saturated_variance_geometric",
    "geometric_age_sum",
]


def budget_variance(kind: BudgetKind, rate: Quantity) -> sp.Expr:
    """σ_B² of the budget law with mean ``rate``."""
    rate = sp.sympify(rate)
    if kind == "deterministic":
        return sp.Integer(0)
    if kind == "randomized":
        f = rate - sp.floor(rate)
        return f * (1 - f)
    if kind == "poisson":
        return rate
    raise ValueError(f"unknown budget law {kind!r} (deterministic, randomized, poisson)")


def flow_saturated_mean(rate: Quantity, mean_memory_time: Quantity) -> sp.Expr:
    """E[U] = r·E[W]."""
    return sp.sympify(rate) * sp.sympify(mean_memory_time)


def flow_saturated_variance(rate: Quantity, within: Quantity, between: Quantity,
                            kind: BudgetKind = "randomized") -> sp.Expr:
    """Var U = r·Σ(ν_a − μ_a²) + σ_B²·Σ μ_a² given the two age sums."""
    return sp.sympify(rate) * sp.sympify(within) + budget_variance(kind, rate) * sp.sympify(between)


_C, _X = sp.Symbol("c", positive=True), sp.Symbol("x", positive=True)


@cache
def _geometric_age_sum_closed() -> sp.Expr:
    return sp.simplify(_first_branch(sp.summation((_C + a) ** 2 * _X**a, (a, 0, sp.oo))))


def geometric_age_sum(c: Quantity, x: Quantity) -> sp.Expr:
    """F(c, x) = Σ_{a≥0} (c + a)² x^a for 0 < x < 1, summed by sympy (closed form cached)."""
    return sp.simplify(_geometric_age_sum_closed().subs({_C: sp.sympify(c), _X: sp.sympify(x)}))


def flow_saturated_variance_geometric(s: Quantity, p: Quantity, rate: Quantity,
                                      kind: BudgetKind = "randomized") -> sp.Expr:
    """Var U for S ≡ s, O ~ geometric(p) on {1, 2, ...}: r[F(c,q) − F(c,q²)] + σ_B² F(c,q²)."""
    s, p = sp.sympify(s), sp.sympify(p)
    q = 1 - p
    nu_sum = geometric_age_sum(s + 1, q)
    mu2_sum = geometric_age_sum(s + 1, q**2)
    return sp.simplify(flow_saturated_variance(rate, nu_sum - mu2_sum, mu2_sum, kind))


register(
    Result(
        "prop:flow-mean",
        "Saturated flow-control memory: mean",
        "Under Algorithm 2 with saturated queues and budget mean r, E[U] = r·E[W] (Little's law "
        "for memory), for every decode law.",
        ("i.i.d. budgets with mean r", "saturated waiting queue", "no evictions counted"),
        "docs/theory.md §8.2 (derived); Dong & Cao §3 (slack M − E[B]E[W])",
        r"E[U] = E[B]\,E[W]",
        "flow_saturated_mean",
    )
)
register(
    Result(
        "prop:flow-variance",
        "Saturated flow-control memory: variance per budget law",
        "Var U = r Σ_a (ν_a − μ_a²) + σ_B² Σ_a μ_a² with σ_B² = 0 (deterministic), f(1−f) "
        "(randomised), r (Poisson); so deterministic ≤ randomised ≤ Poisson at equal mean.",
        ("i.i.d. budgets", "saturated waiting queue", "independent requests"),
        "docs/theory.md §8.2 (derived; checked there by Monte Carlo)",
        r"\operatorname{Var}U = r\sum_a(\nu_a-\mu_a^2) + \sigma_B^2\sum_a\mu_a^2",
        "flow_saturated_variance",
    )
)
