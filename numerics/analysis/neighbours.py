"""Neighbouring results, numerically: the twins of :mod:`theory.neighbours`.

Symbolic twin: :mod:`theory.neighbours` (functions of the same names; ``tests/test_twins.py``
checks that they agree).

Budget-law PGFs (convex order), the Bernstein decay exponent, Zipf and clipped-Pareto tails (heavy
tails), Nie–Si–Zhou's critical rate and Li–Dai–Peng's token-budget capacity.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from numerics.model.budget import BudgetKind, BudgetLaw

__all__ = [
    "budget_log_pgf",
    "nie_critical_rate",
    "overflow_decay_exponent",
    "pareto_clipped_second_moment",
    "token_budget_capacity",
    "zipf_survival",
]


def budget_log_pgf(kind: BudgetKind, rate_per_slot: float, phi: ArrayLike) -> np.ndarray | float:
    """log E[φ^B] of the budget law with mean r, elementwise in φ > 0 (``thm:convex-order``)."""
    law = BudgetLaw(kind, rate_per_slot)
    return law.log_pgf_of_log(np.log(np.asarray(phi, dtype=float)))


def overflow_decay_exponent(slack: float, variance: float, increment: float) -> float:
    """I(Δ) = Δ² / (2(V + cΔ/3)), the Bernstein exponent (``thm:overflow-exp-decay``)."""
    return slack * slack / (2 * (variance + increment * slack / 3))


def zipf_survival(a_param: float, x: float) -> float:
    """P(O > x) for Zipf(a) on {1, 2, ...}: ζ(a, x + 1)/ζ(a) (``prop:pareto-poly-decay``)."""
    from scipy import special

    return float(special.zeta(a_param, x + 1) / special.zeta(a_param, 1))


def pareto_clipped_second_moment(alpha: float, clip: float) -> float:
    """E[min(O, L)²] for P(O > x) = x^(−α), x ≥ 1, by quadrature of 2x·P(O > x) on [0, L]."""
    from scipy import integrate

    head = 1.0  # ∫_0^1 2x dx
    # epsrel 1e-13: the twin check compares with sympy's closed form at rtol 1e-8
    tail, _err = integrate.quad(lambda x: 2 * x ** (1 - alpha), 1.0, clip, limit=500,
                                epsabs=0.0, epsrel=1e-13)
    return head + tail


def nie_critical_rate(memory_tokens: float, mean_g: float, batch_time: float) -> float:
    """Nie–Si–Zhou's μ = M / (b̄·E[g]) (``cor:nie-capacity``)."""
    return memory_tokens / (batch_time * mean_g)


def token_budget_capacity(b_max: int, mean_prompt: float, mean_decode: float,
                          c: float, a: float, b0: int) -> float:
    """Li–Dai–Peng λ* = b_max / ((c + a⌈b_max/b0⌉)(m_p + m_d)) (``thm:token-budget-capacity``).

    >>> round(token_budget_capacity(512, 100, 100, 11.28, 35.47, 128), 6)
    0.016715
    """
    tb = c + a * math.ceil(b_max / b0)
    return b_max / (tb * (mean_prompt + mean_decode))
