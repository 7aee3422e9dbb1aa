r"""Algorithm 2 (flow control) in saturation: the law of the active-set memory.

Symbolic twin: :mod:`theory.flow` (functions of the same names; ``tests/test_twins.py``
checks that they agree).

Each slot flow control activates :math:`B_t` requests, i.i.d. from a *budget law* with mean r:

* ``deterministic``: :math:`B \equiv r` (r an integer), :math:`\sigma_B^2 = 0`;
* ``randomized``: :math:`B \in \{\lfloor r\rfloor, \lceil r\rceil\}` with mean r,
  :math:`\sigma_B^2 = f(1-f)`, f = r − ⌊r⌋;
* ``poisson``: :math:`B \sim \mathrm{Poisson}(r)`, :math:`\sigma_B^2 = r`;
* ``(LAW)``: any length law on {0, 1, ...} in parentheses, ``(uniform:0,6)``; r is its mean
  (:func:`numerics.model.budget.as_budget`).

Saturated (always enough waiting requests) and ignoring evictions, the memory in use is a sum of
independent cohort terms :math:`U = \sum_{a \ge 0} \sum_{m=1}^{B_{t-a}} X_{a,m}`, with
:math:`X_a = (S + a + 1)\mathbf 1\{O > a\}`, :math:`\mu_a = E X_a`, :math:`\nu_a = E X_a^2`. Then

.. math::

    E[U] = r\,E[W], \qquad
    \operatorname{Var} U = r \sum_a (\nu_a - \mu_a^2) + \sigma_B^2 \sum_a \mu_a^2,

(``prop:flow-mean``, ``prop:flow-variance``), and the cumulant generating function is
:math:`\log E e^{\theta U} = \sum_a \log P_B(\varphi_a(\theta))` with
:math:`\varphi_a(\theta) = 1 - G(a) + E[e^{\theta X_a}; O > a]` and :math:`P_B` the budget's
probability generating function. Below saturation (λ < r) the memory is pathwise smaller, so every
tail bound on the saturated U is a bound for the stable system (docs/theory.md §8.2).

Examples
--------
>>> from numerics.model.specs import parse_law
>>> from numerics.model.workload import Workload
>>> wl = Workload.single(parse_law("20"), parse_law("geom:p=0.05"))
>>> round(flow_saturated_variance(wl, 3, "deterministic"))  # docs/theory.md §8.4: 87,711
87711
>>> round(flow_saturated_variance(wl, 3, "poisson"))  # λ·F(c, q) = 3·39600
118800
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from numerics.errors import WorkloadError
from numerics.model.budget import BudgetKind, BudgetLaw, as_budget
from numerics.model.workload import Workload

__all__ = [
    "age_sums",
    "flow_log_mgf",
    "flow_saturated_mean",
    "flow_saturated_variance",
    "log_mgf_from_ages",
    "log_mgf_from_log_phi",
    "log_phi_by_age",
    "log_stay_by_age",
]

def _budget(budget: BudgetKind | str | BudgetLaw, rate: float) -> BudgetLaw:
    return as_budget(budget, rate)


def _check_rate(rate_per_slot: float) -> float:
    """The activation rate r as a float; :class:`WorkloadError` unless finite and ≥ 0."""
    real = isinstance(rate_per_slot, numbers.Real) and not isinstance(rate_per_slot, bool)
    r = float(rate_per_slot) if real else math.nan
    if not math.isfinite(r) or r < 0:
        raise WorkloadError(f"activation rate must be a finite number ≥ 0 requests per slot, got "
                            f"{rate_per_slot!r}")
    return r


def flow_saturated_mean(workload: Workload, rate_per_slot: float) -> float:
    """E[U] = r·E[W] (memory analogue of Little's law); r must be finite and ≥ 0."""
    return _check_rate(rate_per_slot) * workload.mean_memory_time


def age_sums(mu: np.ndarray, nu: np.ndarray) -> tuple[float, float]:
    """(Σ_a (ν_a − μ_a²), Σ_a μ_a²) from the per-age moments μ_a = E X_a, ν_a = E X_a²."""
    return float(np.sum(nu - mu * mu)), float(np.sum(mu * mu))


def flow_saturated_variance(workload: Workload, rate_per_slot: float,
                            budget: BudgetKind | str | BudgetLaw = "randomized") -> float:
    """Var U = r Σ_a (ν_a − μ_a²) + σ_B² Σ_a μ_a² for the given budget law (a budget law
    ``"(LAW)"`` fixes r: ``rate_per_slot`` must be its mean)."""
    law = _budget(budget, _check_rate(rate_per_slot))
    if not math.isfinite(workload.decode_second_moment):
        return math.inf
    _g, mu, nu = workload.age_moments()
    within, between = age_sums(mu, nu)
    return law.rate_per_slot * within + law.variance * between


def log_stay_by_age(g: np.ndarray) -> np.ndarray:
    """log P(O ≤ a) from G(a) = P(O > a) (−∞ where every request is still active)."""
    with np.errstate(divide="ignore"):
        return np.log1p(-np.minimum(g, 1.0))


def log_phi_by_age(log_stay: np.ndarray, log_alive: np.ndarray) -> np.ndarray:
    """log φ_a(θ) = logaddexp(log P(O ≤ a), log E[e^{θX_a}; O > a]): one row per row of
    ``log_alive`` (it does not depend on the budget, so it can be kept across rates).

    Computed as max + log1p(exp(min − max)), which is what ``np.logaddexp`` computes, in
    vectorised passes (several times faster than that ufunc on long arrays).
    """
    hi = np.maximum(log_stay, log_alive)
    with np.errstate(invalid="ignore"):
        out = hi + np.log1p(np.exp(np.minimum(log_stay, log_alive) - hi))
    return np.where(np.isneginf(hi), -np.inf, out)  # both −∞ (∞ − ∞ above)


def _log_pgf_of_log(budget: BudgetLaw, log_phi: np.ndarray) -> np.ndarray:
    """:meth:`BudgetLaw.log_pgf_of_log`, with the randomized law's log(1 − f + fφ) computed as
    log1p(f·expm1(log φ)) — the same function, free of ``np.logaddexp``'s cost (and of its
    cancellation near φ = 1); past log φ = 700, where expm1 overflows, it is log f + log φ."""
    if budget.kind != "randomized" or budget.rate_per_slot == math.floor(budget.rate_per_slot):
        return budget.log_pgf_of_log(log_phi)
    k = math.floor(budget.rate_per_slot)
    f = budget.rate_per_slot - k
    with np.errstate(over="ignore", invalid="ignore"):
        part = np.log1p(f * np.expm1(np.minimum(log_phi, 700.0)))
    big = log_phi > 700.0
    if np.any(big):
        part = np.where(big, math.log(f) + log_phi, part)
    return k * log_phi + part


def log_mgf_from_log_phi(log_phi: np.ndarray, budget: BudgetLaw) -> float | np.ndarray:
    """Σ_a log P_B(φ_a(θ)) over the last axis: a float for one θ, an array for rows of θ."""
    out = np.sum(_log_pgf_of_log(budget, np.asarray(log_phi, dtype=float)), axis=-1)
    return float(out) if np.ndim(out) == 0 else out


def log_mgf_from_ages(log_stay: np.ndarray, log_alive: np.ndarray,
                      budget: BudgetLaw) -> float | np.ndarray:
    """Σ_a log P_B(φ_a(θ)) with log φ_a = logaddexp(log P(O ≤ a), log E[e^{θX_a}; O > a]); rows of
    ``log_alive`` (one per θ) give one value per row."""
    return log_mgf_from_log_phi(log_phi_by_age(log_stay, log_alive), budget)


def flow_log_mgf(workload: Workload, theta: float, budget: BudgetLaw) -> float:
    """log E[e^{θU}] of the saturated memory over the stored ages (θ ≥ 0)."""
    g, _mu, _nu = workload.age_moments()
    return log_mgf_from_ages(log_stay_by_age(g), workload.age_log_mgf(theta), budget)
