"""The model's symbols (sympy), with the assumptions the results need.

S prompt length, O decode length (O ≥ 1), M KV-cache tokens, λ arrival rate per slot, r mean
activation rate per slot, θ Chernoff parameter, Δ slack, V variance; and the types the
functions of :mod:`theory` take (:data:`Quantity`, :data:`BudgetKind`).
"""

from __future__ import annotations

from typing import Literal

import sympy as sp

__all__ = [
    "DELTA",
    "THETA",
    "A",
    "BudgetKind",
    "M",
    "O",
    "Quantity",
    "S",
    "V",
    "a",
    "j",
    "k",
    "lam",
    "p",
    "r",
    "z",
]

S = sp.Symbol("S", integer=True, nonnegative=True)
O = sp.Symbol("O", integer=True, positive=True)
M = sp.Symbol("M", positive=True)
lam = sp.Symbol("lambda", positive=True)
r = sp.Symbol("r", positive=True)
THETA = sp.Symbol("theta", positive=True)
DELTA = sp.Symbol("Delta", positive=True)
V = sp.Symbol("V", positive=True)
A = sp.Symbol("A", positive=True)  # a generic positive parameter
p = sp.Symbol("p", positive=True)
z = sp.Symbol("z", positive=True)
a = sp.Symbol("a", integer=True, nonnegative=True)
j = sp.Symbol("j", integer=True, nonnegative=True)
k = sp.Symbol("k", integer=True, positive=True)

#: A quantity the functions of :mod:`theory` take: a sympy expression or a Python number (``int``
#: and sympy ``Rational`` arguments keep every result exact).
Quantity = sp.Expr | int | float
#: The budget laws by name (the names :class:`numerics.model.budget.BudgetLaw` takes).
BudgetKind = Literal["deterministic", "randomized", "poisson"]
