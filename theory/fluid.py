r"""Greedy admission in the fluid limit: the throughput lost to evictions (sympy).

Numeric twin: :mod:`numerics.chains.fluid` (functions of the same names; ``tests/test_twins.py`` checks
that they agree).

Homogeneous saturated requests (prompt s, decode d), greedy admit-all with LIFO eviction and
recompute. The eviction-free equilibrium runs M / W requests per slot, :math:`W = s d +
d(d+1)/2`; greedy's limit cycle fills memory with young requests and evicts before they finish,
and its throughput relative to that equilibrium tends (Ao, Dong, Luo, Simchi-Levi; docs/theory.md §9
item 13) to

.. math:: \rho(s, d) = \frac{s + (d+1)/2}{s + d},

which decreases to 1/2 as d/s → ∞ (the "50 % loss") and is 1 at d = 1. Flow control at
⌊M / W⌋ activations per slot never evicts.

Examples
--------
>>> greedy_throughput_ratio(0, 1)
1
>>> greedy_throughput_ratio(100, 100)
301/400
"""

from __future__ import annotations

import sympy as sp

from theory.registry import Result, register
from theory.symbols import Quantity

__all__ = ["greedy_throughput_ratio"]


def greedy_throughput_ratio(prompt: Quantity, decode: Quantity) -> sp.Expr:
    """(s + (d + 1)/2) / (s + d): greedy's fluid throughput over the eviction-free equilibrium."""
    s, d = sp.sympify(prompt), sp.sympify(decode)
    return sp.simplify((s + (d + 1) / 2) / (s + d))


register(
    Result(
        "thm:greedy-throughput-loss",
        "Greedy admission loses throughput to evictions (fluid limit)",
        "Homogeneous saturated (s, d) under greedy admit-all + LIFO recompute: throughput over "
        "the eviction-free equilibrium → (s + (d+1)/2)/(s + d), which tends to 1/2 as d/s → ∞; "
        "flow control at ⌊M/W⌋ per slot has no evictions.",
        ("homogeneous deterministic lengths", "saturated input", "fluid limit M → ∞"),
        "Ao, Dong, Luo, Simchi-Levi (arXiv:2606.15555); docs/theory.md §9 item 13",
        r"\frac{\text{thr}_{\rm greedy}}{\text{thr}_{\rm eq}} \to \frac{s+(d+1)/2}{s+d}",
        "greedy_throughput_ratio",
    )
)
