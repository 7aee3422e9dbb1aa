r"""The waste certificate of saturated flow control under LIFO recompute eviction (sympy).

Numeric twin: :mod:`numerics.analysis.waste` (``waste_bound``, the same combination of the same
ingredients; ``tests/test_twins.py`` checks that they agree).

* ``bound:waste`` (docs/theory.md §13) — under the fresh-attempt hypothesis, the expected tokens
  thrown away per slot satisfy

  .. math:: E[\text{waste}] \le \bar W = \sum_{b \ge 0}
            \Big[P_b\,\frac{s+b+1}{s+b+2} + \frac{X_b}{s+b+2}\Big],

  with :math:`P_b \ge P(U_{>b} > M)`, :math:`X_b \ge \min(E(U_{>b} - M)^+, E[N_{old}; U_{>b} > M])`
  for the free saturated memory and s the smallest prompt; the waste fraction is at most
  :math:`\bar W/(rE[O] - \hat L)`.

The ingredients of the proof that sympy can check are here too: the count of LIFO victims
(:func:`victim_count_bound`) and the stop-loss constant of the Chernoff-type bound
:math:`x^+ \le e^{\theta x}/(e\theta)` (:func:`stop_loss_constant`).

Examples
--------
>>> waste_bound([sp.Rational(1, 10)], [sp.Integer(3)], 0)
31/20
>>> stop_loss_constant(sp.Integer(2))
exp(-1)/2
"""

from __future__ import annotations

from collections.abc import Sequence

import sympy as sp

from theory.registry import Result, register
from theory.symbols import Quantity

__all__ = ["stop_loss_constant", "victim_count_bound", "waste_bound", "waste_fraction_bound"]


def waste_bound(tail_probs: Sequence[Quantity], excess_means: Sequence[Quantity],
                min_prompt: Quantity) -> sp.Expr:
    """W̄ = Σ_b [P_b (s+b+1)/(s+b+2) + X_b/(s+b+2)], b = 0 .. len − 1 (exact for Rationals)."""
    if len(tail_probs) != len(excess_means):
        raise ValueError("give one tail probability and one excess mean per age threshold b")
    s = sp.sympify(min_prompt)
    return sp.Add(*[sp.sympify(p) * (s + b + 1) / (s + b + 2) + sp.sympify(x) / (s + b + 2)
                    for b, (p, x) in enumerate(zip(tail_probs, excess_means, strict=True))])


def victim_count_bound(excess: Quantity, min_hold: Quantity) -> sp.Expr:
    """1 + (D − 1)/h: the most LIFO victims, each holding ≥ h tokens, that an excess D ≥ 1 needs.

    All victims but the last are evicted while the memory still exceeds M, so they hold at most
    D − 1 tokens together.
    """
    return 1 + (sp.sympify(excess) - 1) / sp.sympify(min_hold)


def stop_loss_constant(theta: Quantity) -> sp.Expr:
    """sup_{x > 0} x e^{−θx} = 1/(eθ), found by sympy: so x⁺ ≤ e^{θx}/(eθ) for every real x."""
    x = sp.Symbol("x", positive=True)
    th = sp.sympify(theta)
    f = x * sp.exp(-th * x)
    (crit,) = sp.solve(sp.diff(f, x), x)
    return sp.simplify(f.subs(x, crit))


def waste_fraction_bound(waste: Quantity, offered: Quantity, lost: Quantity) -> sp.Expr:
    """W̄ / (r·E[O] − L̂): the waste fraction bound (∞ when the denominator is ≤ 0)."""
    den = sp.sympify(offered) - sp.sympify(lost)
    return sp.sympify(waste) / den if den.is_positive else sp.oo


register(Result(
    "bound:waste",
    "Waste certificate: tokens lost to LIFO recompute evictions under saturated flow control",
    "Under saturated flow control at mean rate r (block size 1, LIFO eviction with recompute, "
    "drops on admission wasting nothing), if every activation draws a fresh (S, O) independent "
    "of the past, then E[tokens thrown away per slot] ≤ Σ_b [P(U_{>b} > M)(s+b+1)/(s+b+2) + "
    "min(E(U_{>b}−M)^+, E[N_old; U_{>b} > M])/(s+b+2)], where U_{>b} is the free saturated memory "
    "of the requests older than b slots, N_old the number of requests of age ≥ 1 and s the "
    "smallest prompt; and waste/tokens emitted ≤ that bound / (r E[O] − L̂), L̂ the tokens drops "
    "and evictions take away (docs/theory.md §13.4).",
    ("saturated flow control (the queue never runs dry)", "LIFO eviction with recompute, block size 1",
     "fresh attempts: each activation's (S, O) is independent of the past (exact for new "
     "requests; not for re-activated evicted ones, which the ledger measures)",
     "bounded prompt and decode laws"),
    "docs/theory.md §13 (derived here)",
    r"E[\mathrm{waste}]\le\sum_{b\ge0}\Big[P(U_{>b}>M)\tfrac{s+b+1}{s+b+2}"
    r"+\tfrac{\min(E(U_{>b}-M)^+,\,E[N_{old};U_{>b}>M])}{s+b+2}\Big]",
    "waste_bound",
))
