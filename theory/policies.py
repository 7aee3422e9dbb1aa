r"""The admission policies beyond the paper: ``flowfit``, ``lookahead``, and WAIT (sympy).

Numeric twins: :mod:`numerics.sim.policies.lookahead` (``fit_admission_count`` and
``lookahead_chernoff``) and :mod:`numerics.sim.policies.wait` (``wait_thresholds`` and
``wait_stability_rate``), the same quantities in integers and floats; ``tests/test_twins.py``
checks that they agree.

* ``thm:flowfit-no-drop`` — in the slot model flowfit never loses an admission in its own slot;
* ``thm:lookahead-no-drop`` — nor does lookahead;
* ``prop:flowfit-is-flow`` — when memory never binds, flowfit makes flow control's choices;
* ``bound:lookahead`` — lookahead's per-decision union-Chernoff bound is an upper bound on the
  probability that the active set overflows within its horizon (docs/theory.md §14);
* ``thm:wait-no-eviction`` — WAIT (Ao, Luo, Simchi-Levi & Wang, arXiv:2504.11320; rules in
  docs/neighbours_wait.md) with deterministic per-class lengths never holds more than
  Σ_k n_k w_k ≤ M tokens, so it never evicts;
* ``prop:wait-stability`` — WAIT's class-k queue is stable iff λπ_k < n_k, so WAIT is stable
  below min_k n_k/π_k ≤ M/E[W] and its queue grows at Σ_k (λπ_k − n_k)^+ per slot above.

What is only *measured*, not claimed: their throughput and latency against greedy and against
flow control (docs/theory.md §14.5).

Examples
--------
>>> fit_admission_count(10, [5, 5, 5], 21)
2
>>> lookahead_chernoff([sp.Rational(1, 2)], [3], 2, 0)
1
"""

from __future__ import annotations

from collections.abc import Sequence

import sympy as sp

from theory.registry import Result, register
from theory.symbols import Quantity

__all__ = ["fit_admission_count", "lookahead_chernoff", "wait_stability_rate", "wait_thresholds"]


def fit_admission_count(usage: Quantity, needs: Sequence[Quantity], memory: Quantity,
                        cap: Quantity = sp.oo) -> sp.Integer:
    """The largest k ≤ cap with usage + Σ_{j<k} needs_j ≤ M (FIFO: the first k of ``needs``)."""
    total, k = sp.sympify(usage), 0
    for need in needs:
        if k >= cap or total + need > memory:
            break
        total += need
        k += 1
    return sp.Integer(k)


def lookahead_chernoff(probs: Sequence[Quantity], costs: Sequence[Quantity], memory: Quantity,
                       theta: Quantity) -> sp.Expr:
    r"""min(1, e^{−θ(M+1)} Π_i (1 − p_i + p_i e^{θ c_i})) — exact, for Rational inputs."""
    theta = sp.sympify(theta)
    value = sp.exp(-theta * (sp.sympify(memory) + 1))
    for p, c in zip(probs, costs, strict=True):
        p = sp.sympify(p)
        value *= 1 - p + p * sp.exp(theta * sp.sympify(c))
    return sp.Min(value, 1)


def wait_thresholds(mix: Sequence[Quantity], mean_w: Sequence[Quantity], memory: Quantity) -> tuple:
    r"""WAIT's thresholds n_k = max(1, ⌊π_k M / E[W]⌋), E[W] = Σ_k π_k E[W_k] (exact)."""
    mix = [sp.nsimplify(p) for p in mix]
    ew = sum(p * sp.nsimplify(w) for p, w in zip(mix, mean_w, strict=True))
    return tuple(sp.Max(1, sp.floor(p * sp.sympify(memory) / ew)) for p in mix)


def wait_stability_rate(mix: Sequence[Quantity], thresholds: Sequence[Quantity]) -> sp.Expr:
    r"""min_k n_k / π_k: the total arrival rate below which every class-k queue is stable."""
    return sp.Min(*(sp.sympify(n) / sp.nsimplify(p) for n, p in zip(thresholds, mix, strict=True)))


_SLOT_MODEL = "the slot model (batching mixed), any block size, either eviction mode"

register(Result(
    "thm:flowfit-no-drop",
    "flowfit never drops an admission in its own slot",
    "In the slot model flowfit activates at most min(B_t, max_seqs − n_active) FIFO head requests "
    "and stops at the first whose activation memory does not fit: U_t + Σ_{j≤k} m(S_j + g0_j + 1) ≤ "
    "M, with U_t the usage after this slot's growth. The overflow check of slot t then finds usage "
    "≤ M and evicts nothing, so no request activated in slot t is dropped in slot t.",
    (_SLOT_MODEL,),
    "derived here (docs/theory.md §14.4)",
    r"U_t+\sum_{j\le k}m(S_j+g_{0,j}+1)\le M\;\Rightarrow\;\text{no drop on admission}",
    "fit_admission_count",
))

register(Result(
    "thm:lookahead-no-drop",
    "lookahead never drops an admission in its own slot",
    "lookahead admits FIFO head requests only while each fits now (U_t + Σ_{j≤k} m(S_j + g0_j + 1) "
    "≤ M) and its bound allows it; as for flowfit, the overflow check of slot t then evicts "
    "nothing, so no request activated in slot t is dropped in slot t.",
    (_SLOT_MODEL,),
    "derived here (docs/theory.md §14.4)",
    r"U_t+\sum_{j\le k}m(S_j+g_{0,j}+1)\le M\;\Rightarrow\;\text{no drop on admission}",
    "fit_admission_count",
))

register(Result(
    "prop:flowfit-is-flow",
    "flowfit equals flow control when memory never binds",
    "With the same seed and budget law, flowfit draws the same budgets B_t as flow control; when "
    "U_t + Σ m(S + g0 + 1) over the first min(B_t, |queue|) waiting requests never exceeds M, the "
    "fit check never stops it, so both activate the same requests in every slot and the runs "
    "coincide.",
    (_SLOT_MODEL, "memory never binds: U_t plus the budgeted activations stays ≤ M every slot"),
    "derived here (docs/theory.md §14.4)",
    r"U_t+\sum_{j\le\min(B_t,Q_t)}m(S_j+1)\le M\;\forall t\;\Rightarrow\;k_t^{\mathrm{fit}}="
    r"\min(B_t,Q_t)",
    "fit_admission_count",
))

register(Result(
    "bound:lookahead",
    "Lookahead's overflow bound: union over a grid of Chernoff bounds",
    "Given active requests with prompts S_i and progress g_i, independent decode lengths with "
    "P(O_i > g_i + h | O_i > g_i) = p_i(h), and no further admissions, for a grid 1 = h_0 < ... < "
    "h_J = H + 1: P(∃h ∈ [1, H]: U_{t+h} > M) ≤ Σ_j min_{θ≥0} e^{−θ(M+1)} Π_i (1 − p_i(h_j) + "
    "p_i(h_j) e^{θ m(S_i + g_i + h_{j+1})}) (docs/theory.md §14.2). With blocks, g_i the largest "
    "progress consistent with the memory held and p_i(h) the largest over the consistent g.",
    ("independent decode lengths, each with its class's law, conditioned on its progress",
     "no admissions and no evictions after the decision (future arrivals are not counted)",
     "block size b: the memory term is m(·) = b⌈·/b⌉"),
    "derived here (docs/theory.md §14)",
    r"P\big(\max_{1\le h\le H}U_{t+h}>M\big)\le\sum_{j<J}\min_{\theta\ge0}e^{-\theta(M+1)}"
    r"\prod_i\big(1-p_i(h_j)+p_i(h_j)e^{\theta\,m(S_i+g_i+h_{j+1})}\big)",
    "lookahead_chernoff",
))

register(Result(
    "thm:wait-no-eviction",
    "WAIT never evicts with deterministic per-class lengths",
    "With S_k ≡ s_k and O_k ≡ o_k, WAIT activates at most n_k class-k requests per slot, each "
    "active for o_k slots holding s_k + a + 1 tokens at age a, so the active memory is at most "
    "Σ_k n_k Σ_{a<o_k} (s_k + a + 1) = Σ_k n_k w_k, w_k = s_k o_k + o_k(o_k + 1)/2. With "
    "n_k = ⌊π_k M / E[W]⌋ ≥ 1, Σ_k n_k w_k ≤ Σ_k π_k M w_k / E[W] = M: no overflow, no eviction.",
    (_SLOT_MODEL + ", block size 1",
     "deterministic lengths per class (class k: S ≡ s_k, O ≡ o_k), class visible to the policy",
     "every π_k M / E[W] ≥ 1 (else n_k = 1 comes from the max and the sum may exceed M)"),
    "Ao, Luo, Simchi-Levi & Wang, arXiv:2504.11320 (the rule); the slot-model bound derived here "
    "(docs/neighbours_wait.md)",
    r"U_t\le\sum_k n_k w_k\le M,\quad n_k=\Big\lfloor\frac{\pi_k M}{E[W]}\Big\rfloor",
    "wait_thresholds",
))

register(Result(
    "prop:wait-stability",
    "WAIT is stable iff λπ_k < n_k for every class",
    "Class k's waiting queue gains Poisson(λπ_k) arrivals and, whenever at least n_k wait, loses "
    "exactly n_k per slot (a bulk-service queue), so it is stable iff λπ_k < n_k; WAIT is stable "
    "below λ_W = min_k n_k/π_k and its total queue grows at Σ_k (λπ_k − n_k)^+ per slot above. "
    "With n_k = ⌊π_k M/E[W]⌋, λ_W ≤ M/E[W] = λ_max (integrality gap < max_k 1/π_k).",
    (_SLOT_MODEL, "Poisson arrivals, classes drawn i.i.d. with mix π",
     "thresholds from wait_thresholds, every π_k M / E[W] ≥ 1"),
    "Ao, Luo, Simchi-Levi & Wang, arXiv:2504.11320 (asymptotic optimality of WAIT); the slot-model "
    "threshold derived here (docs/neighbours_wait.md)",
    r"\text{stable}\iff\lambda<\lambda_W=\min_k\frac{n_k}{\pi_k}\le\frac{M}{E[W]}",
    "wait_stability_rate",
))
