r"""Markov chains: the activation queue of flow control (bulk-service queue).

Symbolic twin: :mod:`theory.queues` (functions of the same names; ``tests/test_twins.py``
checks that they agree).

Under flow control (and per class under Algorithm 1) the waiting queue, recorded after activation,
is the reflected random walk

.. math:: Q_{t+1} = (Q_t + A_t - B_t)^+,

with i.i.d. arrivals A (Poisson(λ) by default) and budgets B (deterministic r, randomised
{⌊r⌋, ⌈r⌉}, or Poisson(r)). It is positive recurrent iff E[A] < E[B] (Loynes). Its stationary law
is computed here on the truncated space {0, …, N} by a sparse linear solve; the truncation is
chosen with the Kingman–Lundberg bound :math:`P(Q \ge n) \le e^{-\theta^* n}`, where θ* > 0 solves
:math:`E[e^{\theta^*(A - B)}] = 1`, so the mass cut off is at most ``tol``. Little's law gives the
mean wait before activation, E[Q]/λ slots.

Examples
--------
Poisson(3) arrivals and a deterministic budget 4 (docs/theory.md §8.3: E[Q] = 0.8009, Kingman
bound Var A / (2(r − λ)) = 1.5):

>>> law = activation_queue(3.0, "deterministic", 4)
>>> round(law.mean, 4), law.kingman_bound
(0.8009, 1.5)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, sparse, special, stats
from scipy.sparse import linalg as splinalg

from numerics.errors import UnstableWorkloadError, WorkloadError
from numerics.model.budget import BudgetKind, BudgetLaw

__all__ = ["QueueLaw", "activation_queue"]

#: Increments are truncated where their own tail mass is below this (far under any tolerance).
_INCREMENT_TAIL = 1e-18


@dataclass(frozen=True, eq=False)
class QueueLaw:
    """Stationary law of the activation queue on {0, …, N}."""

    pmf: np.ndarray
    arrival_rate: float
    budget: BudgetLaw
    truncation_bound: float  # P(Q > N) ≤ this (Kingman–Lundberg)
    decay_rate: float  # θ* of P(Q ≥ n) ≤ exp(−θ* n)

    @property
    def mean(self) -> float:
        """E[Q] (requests waiting after activation)."""
        return float(np.dot(np.arange(self.pmf.size), self.pmf))

    @property
    def waiting_time_slots(self) -> float:
        """Mean wait before activation, E[Q]/λ slots (Little's law)."""
        return self.mean / self.arrival_rate

    @property
    def kingman_bound(self) -> float | None:
        """Var(A) / (2(r − λ)) ≥ E[Q] for a deterministic budget (None otherwise)."""
        if self.budget.kind != "deterministic":
            return None
        return self.arrival_rate / (2 * (self.budget.rate_per_slot - self.arrival_rate))


def _pmf_on_support(dist, tail: float) -> tuple[np.ndarray, int]:
    hi = int(dist.mean() + 10 * math.sqrt(dist.mean()) + 10)
    while dist.sf(hi) > tail:
        hi *= 2
    values = np.arange(0, hi + 1)
    return dist.pmf(values), hi


def activation_queue(
    arrival_rate: float, budget: BudgetKind | BudgetLaw, rate_per_slot: float | None = None,
    tol: float = 1e-12,
) -> QueueLaw:
    """Stationary law of Q' = (Q + A − B)^+ with A ~ Poisson(λ) and B from the budget law.

    Parameters
    ----------
    arrival_rate : float
        λ, mean arrivals per slot (Poisson).
    budget : str or BudgetLaw
        ``"deterministic"``, ``"randomized"`` or ``"poisson"`` (then give ``rate_per_slot``), or a
        :class:`~numerics.analysis.flow.BudgetLaw`.
    tol : float
        Bound on the stationary mass beyond the truncation.

    Raises
    ------
    UnstableWorkloadError
        When λ ≥ E[B]: the queue is not positive recurrent.
    """
    law = budget if isinstance(budget, BudgetLaw) else BudgetLaw(budget, rate_per_slot)
    lam, r = float(arrival_rate), law.rate_per_slot
    if not math.isfinite(lam) or lam <= 0:
        raise WorkloadError(f"arrival rate must be > 0 per slot, got {arrival_rate!r}")
    if not 0 < tol < 1:
        raise WorkloadError(f"tol must lie in (0, 1), got {tol!r}")
    if lam >= r:
        raise UnstableWorkloadError(
            f"λ = {lam:g} ≥ E[B] = {r:g}: the activation queue grows without bound; raise the "
            "activation rate above the arrival rate"
        )
    a_pmf, a_hi = _pmf_on_support(stats.poisson(lam), _INCREMENT_TAIL)
    if law.kind == "poisson":
        b_pmf, b_hi = _pmf_on_support(stats.poisson(r), _INCREMENT_TAIL)
    else:
        k = math.floor(r)
        f = r - k
        b_hi = k + (1 if f > 0 else 0)
        b_pmf = np.zeros(b_hi + 1)
        b_pmf[k] += 1 - f
        if f > 0:
            b_pmf[k + 1] += f
    # increment D = A − B on {−b_hi, …, a_hi}
    d_pmf = np.convolve(a_pmf, b_pmf[::-1])
    d_vals = np.arange(-b_hi, a_hi + 1)

    def lundberg(theta: float) -> float:
        # log E e^{θ(A−B)} as a log-sum-exp: e^{θ d} overflows for large increments and θ
        return float(special.logsumexp(theta * d_vals, b=d_pmf))

    hi = 1.0
    while lundberg(hi) < 0:
        hi *= 2
    theta_star = optimize.brentq(lundberg, 1e-12 * hi + 1e-12, hi) if lundberg(1e-9) < 0 else 0.0
    if theta_star <= 0:  # pragma: no cover - excluded by λ < E[B]
        raise UnstableWorkloadError("no positive Lundberg root: the queue is not stable")
    n_max = max(math.ceil(-math.log(tol) / theta_star), b_hi + a_hi + 1)
    size = n_max + 1
    rows, cols, vals = [], [], []
    for i in range(size):
        j = i + d_vals
        p = d_pmf.copy()
        below = j <= 0
        above = j >= n_max
        rows_i = []
        vals_i = []
        if below.any():
            rows_i.append(0)
            vals_i.append(p[below].sum())
        mid = ~below & ~above
        rows_i.extend(j[mid].tolist())
        vals_i.extend(p[mid].tolist())
        if above.any():
            rows_i.append(n_max)
            vals_i.append(p[above].sum())
        rows.extend([i] * len(rows_i))
        cols.extend(rows_i)
        vals.extend(vals_i)
    trans = sparse.csr_matrix((vals, (rows, cols)), shape=(size, size))
    # π (P − I) = 0 with Σ π = 1: replace one equation by the normalisation
    system = (trans.T - sparse.identity(size, format="csr")).tolil()
    system[0, :] = np.ones(size)
    rhs = np.zeros(size)
    rhs[0] = 1.0
    pi = splinalg.spsolve(system.tocsc(), rhs)
    pi = np.clip(pi, 0.0, None)
    pi /= pi.sum()
    return QueueLaw(pi, lam, law, math.exp(-theta_star * n_max), theta_star)


# ---------------------------------------------------------------------------------------------
# Numeric twins of the queue results registered in theory.queues (same names there; checked
# against each other in tests/test_twins.py).
# ---------------------------------------------------------------------------------------------


def kingman_bound(arrival_rate: float, rate_per_slot: float, budget: BudgetKind = "deterministic") -> float:
    """(σ_A² + σ_B²) / (2(r − λ)) ≥ E[Q] for Poisson(λ) arrivals (``bound:kingman``).

    >>> kingman_bound(3.0, 4)
    1.5
    """
    law = BudgetLaw(budget, rate_per_slot)
    lam = float(arrival_rate)
    if not 0 < lam < law.rate_per_slot:
        raise UnstableWorkloadError(
            f"the Kingman bound needs 0 < λ < r, got λ = {lam:g}, r = {law.rate_per_slot:g}"
        )
    return (lam + law.variance) / (2 * (law.rate_per_slot - lam))


def unused_budget_moments(law: QueueLaw) -> tuple[float, float]:
    """(E[Y], E[Y²]) of the unused budget Y = (Q + A − B)^- under the stationary law."""
    lam, budget = law.arrival_rate, law.budget
    b_max = int(budget.max_count) if math.isfinite(budget.max_count) else int(
        budget.rate_per_slot + 12 * math.sqrt(budget.rate_per_slot) + 12
    )
    b_vals = np.arange(b_max + 1)
    if budget.kind == "poisson":
        b_pmf = stats.poisson(budget.rate_per_slot).pmf(b_vals)
    else:
        k = math.floor(budget.rate_per_slot)
        f = budget.rate_per_slot - k
        b_pmf = np.zeros(b_max + 1)
        b_pmf[k] += 1 - f
        if f > 0:
            b_pmf[k + 1] += f
    q_vals = np.arange(min(law.pmf.size, b_max + 1))
    a_vals = np.arange(b_max + 1)
    a_pmf = stats.poisson(lam).pmf(a_vals)
    # Y > 0 needs q + a < b ≤ b_max: a finite triple sum
    short = b_vals[None, None, :] - q_vals[:, None, None] - a_vals[None, :, None]
    y = np.clip(short, 0, None).astype(float)
    weight = law.pmf[q_vals][:, None, None] * a_pmf[None, :, None] * b_pmf[None, None, :]
    return float(np.sum(weight * y)), float(np.sum(weight * y * y))


def bulk_queue_mean(arrival_rate: float, rate_per_slot: float,
                    budget: BudgetKind = "deterministic") -> float:
    """E[Q] of the activation queue by its stationary law (``thm:bulk-queue-mean``).

    >>> round(bulk_queue_mean(3.0, 4), 4)
    0.8009
    """
    return activation_queue(arrival_rate, budget, rate_per_slot).mean


__all__ += [  # the twins above
    "bulk_queue_mean",
    "kingman_bound",
    "unused_budget_moments",
]
