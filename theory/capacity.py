r"""Compute-coupled capacity in requests per second (sympy).

Numeric twin: :mod:`numerics.analysis.capacity` (functions of the same names; ``tests/test_twins.py`` checks
that they agree).

With a linear step-time :math:`\tau(B, K, P) = c_0 + c_b B + c_k K + c_p P`, at full memory the
batch holds :math:`B_M = M E[O]/E[W]` requests, K = M tokens and :math:`P_M = M E[S]/E[W]` prefill
tokens per slot, and the largest stable rate per second is

.. math:: \Lambda^* = \frac{M}{E[W]\,\tau(B_M, M, P_M)}

(``thm:compute-capacity``; Nie–Si–Zhou's μ = M/(b̄ E[g]) when τ ≡ b̄).

Examples
--------
>>> compute_coupled_capacity(50000, 60000, 200, 100, c0=sp.Rational(1, 20))
50/3
"""

from __future__ import annotations

import sympy as sp

from theory.registry import Result, register
from theory.symbols import Quantity

__all__ = ["compute_coupled_capacity"]


def compute_coupled_capacity(memory_tokens: Quantity, mean_memory_time: Quantity, mean_decode: Quantity,
                             mean_prompt: Quantity, c0: Quantity = 0, cb: Quantity = 0, ck: Quantity = 0,
                             cp: Quantity = 0) -> sp.Expr:
    """Λ* = M / (E[W]·τ(B_M, M, P_M)) for the linear step-time model."""
    m, w, eo, es = (sp.sympify(x) for x in (memory_tokens, mean_memory_time, mean_decode,
                                            mean_prompt))
    c0, cb, ck, cp = (sp.sympify(x) for x in (c0, cb, ck, cp))
    tau = c0 + cb * m * eo / w + ck * m + cp * m * es / w
    return sp.simplify(m / (w * tau))


register(
    Result(
        "thm:compute-capacity",
        "Compute-coupled capacity (requests per second)",
        "Under a linear step time τ = c0 + cb·B + ck·K + cp·P, the fluid fixed point meets memory "
        "iff Λ ≤ Λ* = M/(E[W]·τ(B_M, M, P_M)), B_M = M·E[O]/E[W], P_M = M·E[S]/E[W].",
        ("fluid limit", "linear step-time model", "prop:necessary in slots"),
        "docs/theory.md §8.6 (derived); equals Nie–Si–Zhou μ = M/(b̄·E[g]) for constant b̄",
        r"\Lambda^* = \frac{M}{E[W]\,\tau(B_M, M, P_M)}",
        "compute_coupled_capacity",
    )
)
