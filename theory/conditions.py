r"""Stability conditions (sympy): necessary condition, hard cap, heavy tails, Algorithm 1.

Numeric twin: :mod:`numerics.analysis.conditions` (functions of the same names; ``tests/test_twins.py`` checks
that they agree).

* ``prop:necessary`` — any scheduler: :math:`\sum_k \lambda_k E[W_k] \le M`;
* ``cor:lambda-max`` — single mix: :math:`\lambda_{max} = M / E[W]`;
* ``cond:hard-cap`` — :math:`P(S + O \le M) = 1`;
* ``cor:heavy-tail`` — :math:`E[O^2] = \infty \Rightarrow E[W] = \infty \Rightarrow` no λ > 0;
* ``thm:alg1-safe`` — Algorithm 1 saturated peak memory is exactly :math:`\sum_k b_k w_k`,
  memory-safe iff :math:`\le M` (inequality (2));
* ``thm:alg1-stable`` — stable if also :math:`b_k > \lambda_k` for all k (Theorem 3.3).

Examples
--------
>>> lambda_max(50000, 60000)
5/6
>>> heavy_tail_no_stable_rate(sp.Rational(5, 2))  # zipf(a = 5/2): E[O²] = Σ o^(2-a)/ζ(a) = ∞
True
>>> alg1_peak_memory([4, 4, 4], [10, 10, 10], [20, 40, 60])  # Dong & Cao §4.1
16240
"""

from __future__ import annotations

from collections.abc import Iterable

import sympy as sp
from sympy.logic.boolalg import Boolean

from theory.registry import Result, register
from theory.symbols import O, Quantity, j

__all__ = [
    "alg1_memory_safe",
    "alg1_peak_memory",
    "alg1_stable",
    "hard_cap_violation",
    "heavy_tail_no_stable_rate",
    "lambda_max",
    "necessary_condition",
    "zipf_decode_second_moment",
]


def necessary_condition(rates: Iterable[Quantity], mean_memory_times: Iterable[Quantity],
                        memory_tokens: Quantity) -> Boolean:
    """The relation Σ_k λ_k E[W_k] ≤ M (a sympy Relational, or a bool at numbers)."""
    lhs = sum(sp.sympify(x) * sp.sympify(w) for x, w in zip(rates, mean_memory_times, strict=True))
    return sp.Le(lhs, sp.sympify(memory_tokens))


def lambda_max(memory_tokens: Quantity, mean_memory_time: Quantity) -> sp.Expr:
    """M / E[W]: the largest rate meeting the necessary condition."""
    return sp.sympify(memory_tokens) / sp.sympify(mean_memory_time)


def hard_cap_violation(pairs_with_probs: Iterable[tuple[tuple[Quantity, Quantity], Quantity]],
                       memory_tokens: Quantity) -> sp.Expr:
    """P(S + O > M) for a finite law given as ((s, o), prob) pairs (exact)."""
    m = sp.sympify(memory_tokens)
    return sum((sp.sympify(pr) for (s, o), pr in pairs_with_probs if s + o > m), sp.Integer(0))


def zipf_decode_second_moment(a_param: Quantity) -> sp.Expr:
    """E[O²] for Zipf(a) on {1, 2, ...}: Σ o^(2-a)/ζ(a), left unevaluated when divergent."""
    a_param = sp.sympify(a_param)
    return sp.Sum(O ** (2 - a_param), (O, 1, sp.oo)) / sp.zeta(a_param)


def heavy_tail_no_stable_rate(a_param: Quantity) -> bool:
    """True when the Zipf(a) decode law has E[O²] = ∞ (so E[W] = ∞: no stable rate)."""
    series = sp.Sum(O ** (2 - sp.sympify(a_param)), (O, 1, sp.oo))
    return not bool(series.is_convergent())


def alg1_peak_memory(budgets: Iterable[Quantity], prompts: Iterable[Quantity],
                     decodes: Iterable[Quantity]) -> sp.Expr:
    """Σ_k b_k Σ_{j=1}^{o_k} (l_k + j), summed by sympy (= Σ_k b_k w_k)."""
    total = sp.Integer(0)
    for b, length, o in zip(budgets, prompts, decodes, strict=True):
        total += sp.sympify(b) * sp.summation(sp.sympify(length) + j, (j, 1, sp.sympify(o)))
    return sp.simplify(total)


def alg1_memory_safe(budgets: Iterable[Quantity], prompts: Iterable[Quantity], decodes: Iterable[Quantity],
                     memory_tokens: Quantity) -> Boolean:
    """Inequality (2): Σ_k b_k w_k ≤ M."""
    return sp.Le(alg1_peak_memory(budgets, prompts, decodes), sp.sympify(memory_tokens))


def alg1_stable(budgets: Iterable[Quantity], rates: Iterable[Quantity], prompts: Iterable[Quantity],
                decodes: Iterable[Quantity], memory_tokens: Quantity) -> Boolean:
    """Theorem 3.3: inequality (2) and b_k > λ_k for every class (a sympy And)."""
    strict = [sp.Gt(sp.sympify(b), sp.sympify(x)) for b, x in zip(budgets, rates, strict=True)]
    return sp.And(alg1_memory_safe(budgets, prompts, decodes, memory_tokens), *strict)


for _r in (
    Result(
        "prop:necessary",
        "Necessary condition for stability (any scheduler)",
        "If a scheduler keeps the system stable then Σ_k λ_k E[W_k] ≤ M; above it queues grow "
        "linearly under every policy.",
        ("Poisson (or stationary ergodic) arrivals per slot", "memory in use ≤ M every slot"),
        "Dong & Cao (arXiv:2604.11001) Prop. 3.2; docs/theory.md §8.1",
        r"\sum_k \lambda_k\,E[W_k] \le M",
        "necessary_condition",
    ),
    Result(
        "cor:lambda-max",
        "Largest stable rate for a fixed class mix",
        "With class mix π, no rate above λ_max = M / Σ_k π_k E[W_k] is stable.",
        ("prop:necessary",),
        "corollary of Dong & Cao Prop. 3.2",
        r"\lambda_{\max} = M \big/ \textstyle\sum_k \pi_k E[W_k]",
        "lambda_max",
    ),
    Result(
        "cond:hard-cap",
        "Hard cap",
        "A request with S + O > M can never finish, so stability needs P(S + O ≤ M) = 1.",
        ("a request's whole context must be resident to emit its last token",),
        "docs/theory.md §8.1 (derived)",
        r"P(S + O \le M) = 1",
        "hard_cap_violation",
    ),
    Result(
        "cor:heavy-tail",
        "Heavy tails: no stable rate",
        "If E[O²] = ∞ then E[W] = ∞ and no arrival rate λ > 0 meets Prop. 3.2 (e.g. Zipf(a) "
        "decode with a ≤ 3); capacity then depends on a max_tokens clip.",
        ("prop:necessary",),
        "docs/theory.md §8.5 (derived)",
        r"E[O^2] = \infty \;\Rightarrow\; E[W] = \infty \;\Rightarrow\; \lambda_{\max} = 0",
        "heavy_tail_no_stable_rate",
    ),
    Result(
        "thm:alg1-safe",
        "Algorithm 1 memory safety",
        "With known lengths and per-class budgets b_k, the saturated peak memory is exactly "
        "Σ_k b_k w_k; Algorithm 1 never overflows iff Σ_k b_k w_k ≤ M.",
        ("known (l_k, o_k) per class", "activate ≤ b_k class-k requests per slot"),
        "Dong & Cao inequality (2); Concourse.jl reproduction (peak 16240 for §4.1)",
        r"\sum_k b_k w_k \le M,\quad w_k = l_k o_k + \tfrac{o_k(o_k+1)}{2}",
        "alg1_peak_memory",
    ),
    Result(
        "thm:alg1-stable",
        "Algorithm 1 stability",
        "If Σ_k b_k w_k ≤ M and b_k > λ_k for every class, Algorithm 1 is stable (each class "
        "queue is the Lindley recursion Q' = (Q + A − b_k)^+).",
        ("thm:alg1-safe", "i.i.d. arrivals with mean λ_k per slot"),
        "Dong & Cao Theorem 3.3",
        r"\sum_k b_k w_k \le M \;\wedge\; b_k > \lambda_k\ \forall k",
        "alg1_stable",
    ),
):
    register(_r)
