r"""The activation queue (bulk-service queue) and its Kingman-type bound (sympy).

Numeric twin: :mod:`numerics.chains.queues` (functions of the same names; ``tests/test_twins.py`` checks
that they agree).

The waiting queue of flow control, and of each class under Algorithm 1, recorded after
activation, is the reflected random walk :math:`Q' = (Q + X)^+` with :math:`X = A - B`, i.i.d.
arrivals A (mean λ, variance :math:`\sigma_A^2`; Poisson: :math:`\sigma_A^2 = \lambda`) and budgets
B (mean r, variance :math:`\sigma_B^2`). Write :math:`Y = (Q + X)^-` for the budget left unused.
Then :math:`Q' = Q + X + Y`, and since :math:`(x^+)^2 = x^2 - (x^-)^2`, stationarity gives

.. math:: 0 = E[Q'^2] - E[Q^2] = 2E[Q]E[X] + E[X^2] - E[Y^2], \qquad E[Y] = -E[X] = r - \lambda,

so (``thm:bulk-queue-mean``, exact)

.. math:: E[Q] = \frac{\sigma_A^2 + \sigma_B^2 + (r - \lambda)^2 - E[Y^2]}{2(r - \lambda)},

and, because :math:`E[Y^2] \ge (E Y)^2 = (r-\lambda)^2`, the Kingman-type bound
(``bound:kingman``)

.. math:: E[Q] \le \frac{\sigma_A^2 + \sigma_B^2}{2(r - \lambda)}.

For r = 1 (deterministic) Y ∈ {0, 1}, so :math:`E[Y^2] = E[Y] = 1 - \lambda` and
:math:`E[Q] = \lambda^2 / (2(1 - \lambda))` in closed form.

Examples
--------
>>> import sympy as sp
>>> kingman_bound(3, 4)  # docs/theory.md §8.3: Poisson(3) arrivals, budget 4
3/2
>>> bulk_queue_mean(sp.Rational(1, 2), 1, sp.Rational(1, 2))  # r = 1: λ²/(2(1 − λ)) = 1/4
1/4
"""

from __future__ import annotations

import sympy as sp

from theory.registry import Result, register
from theory.symbols import Quantity

__all__ = ["bulk_queue_mean", "bulk_queue_mean_unit_budget", "kingman_bound"]


def bulk_queue_mean(arrival_rate: Quantity, rate: Quantity, unused_second_moment: Quantity,
                    arrival_variance: Quantity | None = None, budget_variance: Quantity = 0) -> sp.Expr:
    """E[Q] = (σ_A² + σ_B² + (r − λ)² − E[Y²]) / (2(r − λ)); σ_A² defaults to λ (Poisson)."""
    lam, r, ey2 = (sp.sympify(x) for x in (arrival_rate, rate, unused_second_moment))
    var_a = lam if arrival_variance is None else sp.sympify(arrival_variance)
    drift = r - lam
    return sp.simplify((var_a + sp.sympify(budget_variance) + drift**2 - ey2) / (2 * drift))


def bulk_queue_mean_unit_budget(arrival_rate: Quantity) -> sp.Expr:
    """E[Q] for B ≡ 1: E[Y²] = E[Y] = 1 − λ gives λ² / (2(1 − λ))."""
    lam = sp.sympify(arrival_rate)
    return bulk_queue_mean(lam, 1, 1 - lam)


def kingman_bound(arrival_rate: Quantity, rate: Quantity, arrival_variance: Quantity | None = None,
                  budget_variance: Quantity = 0) -> sp.Expr:
    """(σ_A² + σ_B²) / (2(r − λ)) ≥ E[Q]; σ_A² defaults to λ (Poisson arrivals)."""
    lam, r = sp.sympify(arrival_rate), sp.sympify(rate)
    var_a = lam if arrival_variance is None else sp.sympify(arrival_variance)
    return (var_a + sp.sympify(budget_variance)) / (2 * (r - lam))


for _r in (
    Result(
        "thm:bulk-queue-mean",
        "Mean of the activation (bulk-service) queue",
        "For Q' = (Q + A − B)^+ with E[A] = λ < r = E[B], the stationary mean is "
        "E[Q] = (σ_A² + σ_B² + (r−λ)² − E[Y²])/(2(r−λ)), Y the unused budget; for B ≡ 1 and "
        "Poisson arrivals E[Q] = λ²/(2(1−λ)). λ = 3, r = 4 gives E[Q] = 0.8009.",
        ("i.i.d. arrivals and budgets", "λ < r (Loynes)", "queue recorded after activation"),
        "docs/theory.md §8.3 (derived; E[Q] = 0.8009 matches the Concourse.jl reproduction)",
        r"E[Q] = \frac{\sigma_A^2+\sigma_B^2+(r-\lambda)^2-E[Y^2]}{2(r-\lambda)}",
        "bulk_queue_mean",
    ),
    Result(
        "bound:kingman",
        "Kingman-type bound on the activation queue",
        "E[Q] ≤ (σ_A² + σ_B²)/(2(r − λ)); Poisson(λ) arrivals and a deterministic budget r give "
        "λ/(2(r − λ)) (1.5 at λ = 3, r = 4). Little's law turns it into a wait bound E[Q]/λ.",
        ("thm:bulk-queue-mean",),
        "docs/theory.md §8.3; Kingman (1962) for the discrete reflected walk",
        r"E[Q] \le \frac{\sigma_A^2+\sigma_B^2}{2(r-\lambda)}",
        "kingman_bound",
    ),
):
    register(_r)
