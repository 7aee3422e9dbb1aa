r"""Tail bounds on the saturated flow-control memory (sympy), and the Gaussian approximation.

Numeric twin: :mod:`numerics.analysis.bounds` (functions of the same names; ``tests/test_twins.py`` checks
that they agree).

For a sum U of independent terms with slack Δ = M − E[U] > 0:

* ``bound:hoeffding`` — terms in [0, s_max + a + 1], n per age a < o_max:
  :math:`P(U > M) \le \exp\!\big(-2\Delta^2 / (n\sum_{a=0}^{o_{max}-1}(s_{max}+a+1)^2)\big)`,
  the sum of squares closed by sympy;
* ``bound:bernstein`` — centred terms ≤ c, variance V:
  :math:`P \le \exp(-\Delta^2 / (2(V + c\Delta/3)))`;
* ``bound:chernoff`` — :math:`P \le \inf_{\theta>0}\exp(-\theta M + \log E e^{\theta U})`, with the
  cumulant :math:`\log E e^{\theta U} = \sum_a \log P_B(\varphi_a(\theta))`;
* ``bound:cantelli`` — one-sided Chebyshev: :math:`P \le V/(V + \Delta^2)`;
* ``approx:gaussian`` — :math:`\bar\Phi(\Delta/\sqrt V)`, **not a bound**.

Examples
--------
>>> hoeffding_sum_of_squares(20, 100)  # Σ_{a<100} (21 + a)²
580350
"""

from __future__ import annotations

import sympy as sp

from theory.registry import Result, register
from theory.symbols import Quantity, a

__all__ = [
    "bernstein_bound",
    "cantelli_bound",
    "chernoff_bound",
    "chernoff_objective",
    "gaussian_approximation",
    "hoeffding_bound",
    "hoeffding_sum_of_squares",
]


def hoeffding_sum_of_squares(s_max: Quantity, o_max: Quantity) -> sp.Expr:
    """Σ_{a=0}^{o_max−1} (s_max + a + 1)², summed by sympy."""
    return sp.summation((sp.sympify(s_max) + a + 1) ** 2, (a, 0, sp.sympify(o_max) - 1))


def hoeffding_bound(slack: Quantity, terms_per_age: Quantity, s_max: Quantity, o_max: Quantity) -> sp.Expr:
    """exp(−2Δ² / (n·Σ_{a<o_max}(s_max + a + 1)²)) for Δ > 0."""
    denom = sp.sympify(terms_per_age) * hoeffding_sum_of_squares(s_max, o_max)
    return sp.exp(-2 * sp.sympify(slack) ** 2 / denom)


def bernstein_bound(slack: Quantity, variance: Quantity, increment: Quantity) -> sp.Expr:
    """exp(−Δ² / (2(V + cΔ/3))) for Δ > 0."""
    d, v, c = (sp.sympify(x) for x in (slack, variance, increment))
    return sp.exp(-(d**2) / (2 * (v + c * d / 3)))


def cantelli_bound(slack: Quantity, variance: Quantity) -> sp.Expr:
    """V / (V + Δ²) for Δ > 0."""
    d, v = sp.sympify(slack), sp.sympify(variance)
    return v / (v + d**2)


def gaussian_approximation(slack: Quantity, variance: Quantity) -> sp.Expr:
    """Φ̄(Δ/√V) = erfc(Δ/√(2V))/2 — an approximation, NOT a bound."""
    d, v = sp.sympify(slack), sp.sympify(variance)
    return sp.erfc(d / sp.sqrt(2 * v)) / 2


def chernoff_objective(theta: Quantity, memory_tokens: Quantity, log_mgf: Quantity) -> sp.Expr:
    """−θM + log E e^{θU}: its exponential bounds P(U ≥ M) for every θ > 0."""
    return -sp.sympify(theta) * sp.sympify(memory_tokens) + sp.sympify(log_mgf)


def chernoff_bound(memory_tokens: Quantity, log_mgf: sp.Expr, theta: sp.Symbol) -> sp.Expr:
    """min over θ > 0 of exp(chernoff_objective), via the stationary point of the exponent.

    ``log_mgf`` is an expression in the symbol ``theta``. The objective is convex in θ; the
    root of its derivative (solved by sympy) is the minimiser when it is positive.
    """
    obj = chernoff_objective(theta, memory_tokens, log_mgf)
    roots = [t for t in sp.solve(sp.diff(obj, theta), theta) if t.is_positive]
    if not roots:
        return sp.Integer(1)
    return sp.Min(1, *[sp.exp(obj.subs(theta, t)) for t in roots])


for _r in (
    Result(
        "bound:hoeffding",
        "Hoeffding bound on flow-control overflow",
        "For bounded S ≤ s_max, O ≤ o_max and a bounded budget (n = ⌈r⌉ terms per age), "
        "P(U > M) ≤ exp(−2Δ²/(n Σ_{a<o_max}(s_max+a+1)²)), Δ = M − rE[W].",
        ("bounded prompt and decode laws", "bounded budget law", "saturated U (pathwise ≥ stable U)"),
        "docs/theory.md §8.2 (derived); Hoeffding (1963)",
        r"P(U>M)\le\exp\!\Big(-\tfrac{2\Delta^2}{n\sum_{a<o_{\max}}(s_{\max}+a+1)^2}\Big)",
        "hoeffding_bound",
    ),
    Result(
        "bound:bernstein",
        "Bernstein bound on flow-control overflow",
        "With increments bounded by c = s_max + o_max and V = Var U, "
        "P(U > M) ≤ exp(−Δ²/(2(V + cΔ/3))).",
        ("bounded prompt and decode laws", "independent terms (compound Poisson via Bennett)"),
        "docs/theory.md §8.2 (derived); Bernstein/Bennett inequality",
        r"P(U>M)\le\exp\!\Big(-\tfrac{\Delta^2}{2(V + c\Delta/3)}\Big)",
        "bernstein_bound",
    ),
    Result(
        "bound:chernoff",
        "Chernoff bound on flow-control overflow",
        "P(U > M) ≤ inf_{θ>0} exp(−θM + Σ_a log P_B(φ_a(θ))), φ_a(θ) = 1 − G(a) + "
        "E[e^{θ(S+a+1)}; O > a].",
        ("light-tailed terms (finite MGF near the optimum)", "independent cohorts"),
        "docs/theory.md §8.2 (derived); Chernoff (1952)",
        r"P(U>M)\le\inf_{\theta>0} e^{-\theta M}\,E\,e^{\theta U}",
        "chernoff_bound",
    ),
    Result(
        "bound:cantelli",
        "Cantelli (one-sided Chebyshev) bound on flow-control overflow",
        "P(U > M) ≤ V/(V + Δ²) whenever V = Var U < ∞ — the only valid bound left when the "
        "decode law has no exponential moments.",
        ("Var U < ∞ (E[O³] < ∞)",),
        "Cantelli's inequality; added here",
        r"P(U>M)\le \frac{V}{V+\Delta^2}",
        "cantelli_bound",
    ),
    Result(
        "approx:gaussian",
        "Gaussian approximation (NOT a bound)",
        "P(U > M) ≈ Φ̄(Δ/√V); square-root staffing r*E[W] + z_ε√(r v) = M. Optimistic for skewed "
        "decode laws: never used to certify a rate.",
        ("central-limit heuristics only",),
        "docs/theory.md §8.2",
        r"P(U>M)\approx \bar\Phi\big(\Delta/\sqrt{V}\big)",
        "gaussian_approximation",
        is_bound=False,
    ),
):
    register(_r)
