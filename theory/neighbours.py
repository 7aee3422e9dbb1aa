r"""Neighbouring results: convex order of budgets, decay of overflow, heavy tails, other papers.

Numeric twin: :mod:`numerics.analysis.neighbours` (functions of the same names; ``tests/test_twins.py`` checks
that they agree).

* ``thm:convex-order`` — per cohort the log-PGF of the budget at φ = E[z^X] is ordered
  :math:`r\log\varphi \le \lfloor r\rfloor\log\varphi + \log(1-f+f\varphi) \le r(\varphi-1)`
  (deterministic ≤ randomised ≤ Poisson at equal mean r, f = r − ⌊r⌋; the first is an equality
  at integer r). The integer two-point law is the minimum in convex order among integer laws with
  mean r, compounding with i.i.d. non-negative terms keeps the order, so the saturated memory U
  is ordered in convex order: every E e^{θU} (hence every Chernoff bound), Var U and expected
  overflow E(U − M)^+ is smallest for the deterministic budget and largest for Poisson.
* ``thm:overflow-exp-decay`` — Bernstein: :math:`P(U > M) \le e^{-I(\Delta)}` with
  :math:`I(\Delta) = \Delta^2/(2(V + c\Delta/3))` and :math:`I(\Delta)/\Delta \to 3/(2c)`: the
  overflow probability (and the expected number of overflow slots T·P) decays exponentially in
  the slack Δ = M − r E[W] for bounded terms.
* ``prop:pareto-poly-decay`` — Zipf(a) decode, 3 < a ≤ 4 (tail index α = a − 1 ∈ (2, 3]):
  E[W] < ∞, yet :math:`E e^{\theta O} = \infty` for every θ > 0 and
  :math:`P(U > M) \ge P(B \ge 1)\,P(O > M) \sim M^{-\alpha}/(\alpha\zeta(a))` — polynomial decay
  only (a request of age M alone holds S + M + 1 > M tokens).
* ``thm:heavy-tail-clip`` — Pareto(α) decode (P(O > x) = x^{−α}, x ≥ 1) clipped at L:
  :math:`E[\min(O,L)^2] = 1 + 2(L^{2-\alpha}-1)/(2-\alpha)`, so for α < 2
  :math:`\lambda_{\max}(L) = M/E[W_L] \asymp L^{-(2-\alpha)} \to 0`.
* ``cor:nie-capacity`` — Nie–Si–Zhou: :math:`\mu = M/(\bar b\,E[g])`,
  :math:`g = (1 + s/\hat s)s/2 + s o + o(o+1)/2`; with one-chunk prefill g = s + W, and with the
  prefill area dropped μ is ``thm:compute-capacity`` at a constant step time b̄.
* ``thm:token-budget-capacity`` — Li–Dai–Peng: token budget b_max per iteration, staircase batch
  time :math:`t_b = c + a\lceil b/b_0\rceil`: stable iff
  :math:`\lambda < \lambda^* = b_{\max}/(t_{b_{\max}}(m_p + m_d))` (work-conserving policies).

Examples
--------
>>> token_budget_capacity(512, 100, 100, sp.Rational("11.28"), sp.Rational("35.47"), 128)
64/3829
>>> nie_memory_time(7, 3, 7) - 7  # one-chunk prefill: g − s = W = 7·3 + 3·4/2
27
"""

from __future__ import annotations

import sympy as sp

from theory.registry import Result, register
from theory.symbols import BudgetKind, Quantity

__all__ = [
    "budget_log_pgf",
    "nie_critical_rate",
    "nie_memory_time",
    "overflow_decay_exponent",
    "pareto_clipped_second_moment",
    "staircase_batch_time",
    "token_budget_capacity",
    "zipf_survival",
]


def budget_log_pgf(kind: BudgetKind, rate: Quantity, phi: Quantity) -> sp.Expr:
    """log E[φ^B] for the budget law with mean ``rate`` (deterministic, randomized, poisson)."""
    r, phi = sp.sympify(rate), sp.sympify(phi)
    if kind == "deterministic":
        return r * sp.log(phi)
    if kind == "randomized":
        k = sp.floor(r)
        f = r - k
        return k * sp.log(phi) + sp.log(1 - f + f * phi)
    if kind == "poisson":
        return r * (phi - 1)
    raise ValueError(f"unknown budget law {kind!r} (deterministic, randomized, poisson)")


def overflow_decay_exponent(slack: Quantity, variance: Quantity, increment: Quantity) -> sp.Expr:
    """I(Δ) = Δ² / (2(V + cΔ/3)): the Bernstein bound is exp(−I(Δ))."""
    d, v, c = (sp.sympify(x) for x in (slack, variance, increment))
    return d**2 / (2 * (v + c * d / 3))


def zipf_survival(a_param: Quantity, x: Quantity) -> sp.Expr:
    """P(O > x) for Zipf(a) on {1, 2, ...}: ζ(a, x + 1) / ζ(a) (Hurwitz zeta).

    Left unevaluated (``evaluate=False``): for integer a and x sympy would otherwise expand
    ζ(a, x + 1) = ζ(a) − Σ_{k ≤ x} k^(−a) into an exact rational with x terms; ``evalf`` is fast.
    """
    a_param, x = sp.sympify(a_param), sp.sympify(x)
    return sp.zeta(a_param, x + 1, evaluate=False) / sp.zeta(a_param)


def pareto_clipped_second_moment(alpha: Quantity, clip: Quantity) -> sp.Expr:
    """E[min(O, L)²] for P(O > x) = x^(−α), x ≥ 1: ∫_0^L 2x P(O > x) dx, integrated by sympy."""
    alpha, clip = sp.sympify(alpha), sp.sympify(clip)
    x = sp.Symbol("x", positive=True)
    return sp.simplify(1 + sp.integrate(2 * x * x ** (-alpha), (x, 1, clip)))


def nie_memory_time(prompt: Quantity, decode: Quantity, chunk: Quantity) -> sp.Expr:
    """Nie–Si–Zhou's g(s, o) = (1 + s/ŝ)·s/2 + s·o + (1 + o)·o/2."""
    s, o, c = (sp.sympify(x) for x in (prompt, decode, chunk))
    return (1 + s / c) * s / 2 + s * o + (1 + o) * o / 2


def nie_critical_rate(memory_tokens: Quantity, mean_g: Quantity, batch_time: Quantity) -> sp.Expr:
    """μ = M / (b̄·E[g]) requests per second."""
    return sp.sympify(memory_tokens) / (sp.sympify(batch_time) * sp.sympify(mean_g))


def staircase_batch_time(tokens: Quantity, c: Quantity, a: Quantity, b0: Quantity) -> sp.Expr:
    """t_b = c + a·⌈b / b0⌉."""
    return sp.sympify(c) + sp.sympify(a) * sp.ceiling(sp.sympify(tokens) / sp.sympify(b0))


def token_budget_capacity(b_max: Quantity, mean_prompt: Quantity, mean_decode: Quantity, c: Quantity,
                          a: Quantity, b0: Quantity) -> sp.Expr:
    """λ* = b_max / (t_{b_max}·(m_p + m_d)) requests per time unit of t."""
    tb = staircase_batch_time(b_max, c, a, b0)
    return sp.sympify(b_max) / (tb * (sp.sympify(mean_prompt) + sp.sympify(mean_decode)))


for _r in (
    Result(
        "thm:convex-order",
        "Convex order of budget laws: deterministic ≤ randomised ≤ Poisson",
        "At equal mean r, log E[φ^B] is ordered deterministic ≤ randomised {⌊r⌋,⌈r⌉} ≤ Poisson "
        "for every φ > 0, so the saturated memory U is ordered in convex order: log E e^{θU}, "
        "every Chernoff bound, Var U and the expected overflow E(U − M)^+ are smallest for "
        "deterministic budgets and largest for Poisson admission.",
        ("i.i.d. budgets with equal mean", "saturated U", "independent non-negative terms"),
        "docs/theory.md §8.2 (derived: convex order of compound sums); docs/theory.md §9 items 6–7",
        r"\log P_{\rm det}(\varphi)\le\log P_{\rm rand}(\varphi)\le\log P_{\rm Pois}(\varphi)",
        "budget_log_pgf",
    ),
    Result(
        "thm:overflow-exp-decay",
        "Overflow decays exponentially in the slack",
        "For bounded prompt and decode, P(U^sat > M) ≤ exp(−I(Δ)), I(Δ) = Δ²/(2(V + cΔ/3)) with "
        "I(Δ)/Δ → 3/(2c): overflow probability and expected overflow slots (≤ T·P) decay "
        "exponentially in the slack Δ = M − r·E[W] (also for geometric decode, via Chernoff).",
        ("bounded (or light-tailed) terms", "saturated U dominates the stable system's U"),
        "Dong & Cao abstract (exponential decay in the slack); docs/theory.md §8.2",
        r"P(U>M)\le e^{-I(\Delta)},\ \ I(\Delta)/\Delta\to\tfrac{3}{2c}",
        "overflow_decay_exponent",
    ),
    Result(
        "prop:pareto-poly-decay",
        "Pareto tails with 2 < α ≤ 3: only polynomial decay",
        "Zipf(a) decode with 3 < a ≤ 4 (α = a − 1): E[W] < ∞ but E e^{θO} = ∞ for every θ > 0, "
        "and P(U > M) ≥ P(B ≥ 1)·P(O > M) ~ M^{−α}: no exponential bound in the slack exists.",
        ("saturated flow control", "P(B ≥ 1) > 0"),
        "docs/theory.md §8.5 (derived)",
        r"P(U>M)\ \ge\ P(B\ge1)\,P(O>M)\ \asymp\ M^{-\alpha}",
        "zipf_survival",
    ),
    Result(
        "thm:heavy-tail-clip",
        "Heavy tails under max_tokens clipping",
        "Pareto(α) decode clipped at L: E[min(O,L)²] = 1 + 2(L^{2−α} − 1)/(2 − α), so for "
        "α < 2, λ_max(L) = M/E[W_L] ≍ L^{−(2−α)} → 0 as L → ∞.",
        ("cor:heavy-tail", "P(O > x) = x^{−α} for x ≥ 1"),
        "docs/theory.md §8.5 (derived); docs/theory.md §9 item 11",
        r"\lambda_{\max}(L) \asymp M\,L^{-(2-\alpha)}",
        "pareto_clipped_second_moment",
    ),
    Result(
        "cor:nie-capacity",
        "Nie–Si–Zhou's critical rate as a special case",
        "μ = M/(b̄·E[g]), g(s,o) = (1 + s/ŝ)s/2 + s·o + o(o+1)/2; with ŝ = s, g = s + W; "
        "without the prefill area μ = thm:compute-capacity under a constant step time b̄.",
        ("thm:compute-capacity", "constant batch time b̄"),
        "Nie, Si, Zhou (arXiv:2605.04595) Thm. 4.1; docs/theory.md §2, §9 item 16",
        r"\mu = \frac{M}{\bar b\,E[g(s,o)]}",
        "nie_critical_rate",
    ),
    Result(
        "thm:token-budget-capacity",
        "Li–Dai–Peng token-budget capacity",
        "With a token budget b_max per iteration and staircase batch time t_b = c + a⌈b/b0⌉, "
        "work-conserving scheduling is stable iff λ(m_p + m_d) < b_max/t_{b_max}; above, the "
        "token backlog grows at λ(m_p + m_d) − b_max/t_{b_max}. CodeLlama-34B/A100: "
        "λ* = 0.016715 req/ms for (100, 100).",
        ("work-conserving policy", "b_max a multiple of b0 (full batches are the fastest)"),
        "Li, Dai, Peng (arXiv:2504.07347) Thm. 2; docs/theory.md §3, §9 item 17",
        r"\lambda^* = \frac{b_{\max}}{t_{b_{\max}}(m_p+m_d)},\ t_b = c + a\lceil b/b_0\rceil",
        "token_budget_capacity",
    ),
):
    register(_r)
