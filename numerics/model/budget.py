r"""The activation budget of flow control (Algorithm 2): how many requests may join per slot.

Each slot flow control activates :math:`B_t` requests, i.i.d. from a *budget law* with mean r:

* ``deterministic``: :math:`B \equiv r` (r an integer), :math:`\sigma_B^2 = 0`;
* ``randomized``: :math:`B \in \{\lfloor r\rfloor, \lceil r\rceil\}` with mean r,
  :math:`\sigma_B^2 = f(1-f)`, f = r − ⌊r⌋;
* ``poisson``: :math:`B \sim \mathrm{Poisson}(r)`, :math:`\sigma_B^2 = r`.

The law is part of the model (the simulator's ``flow`` policy draws from it) and of the analysis
(its generating function enters the saturated memory law, :mod:`numerics.analysis.flow`).

Examples
--------
>>> BudgetLaw("randomized", 2.25).variance
0.1875
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

from numerics.errors import WorkloadError

__all__ = ["BUDGET_LAWS", "BudgetKind", "BudgetLaw"]

#: The budget laws by name (the ``kind`` of a :class:`BudgetLaw`, the ``budget`` option everywhere).
BudgetKind = Literal["deterministic", "randomized", "poisson"]
BUDGET_LAWS: tuple[BudgetKind, ...] = get_args(BudgetKind)


@dataclass(frozen=True)
class BudgetLaw:
    """The activation budget B per slot: ``kind`` with mean ``rate_per_slot``."""

    kind: BudgetKind
    rate_per_slot: float

    def __post_init__(self) -> None:
        if self.kind not in BUDGET_LAWS:
            raise WorkloadError(
                f"budget law must be one of {', '.join(BUDGET_LAWS)}, got {self.kind!r}"
            )
        r = self.rate_per_slot
        if not math.isfinite(r) or r < 0:
            raise WorkloadError(f"activation rate must be finite and ≥ 0, got {r!r}")
        if self.kind == "deterministic" and r != int(r):
            raise WorkloadError(
                f"a deterministic budget must be an integer, got {r}; use the randomized law "
                "for a fractional mean rate"
            )

    @property
    def variance(self) -> float:
        """σ_B²."""
        r = self.rate_per_slot
        if self.kind == "deterministic":
            return 0.0
        if self.kind == "randomized":
            f = r - math.floor(r)
            return f * (1 - f)
        return r

    @property
    def max_count(self) -> float:
        """The largest budget a slot can draw (∞ for Poisson)."""
        if self.kind == "poisson":
            return math.inf
        return math.ceil(self.rate_per_slot)

    def log_pgf_of_log(self, log_phi: np.ndarray) -> np.ndarray:
        """log E[φ^B] given log φ (elementwise), computed without overflow."""
        r = self.rate_per_slot
        if self.kind == "deterministic":
            return r * log_phi
        if self.kind == "randomized":
            k = math.floor(r)
            f = r - k
            if f == 0:
                return k * log_phi
            # log(1 - f + f φ) = logaddexp(log(1-f), log f + log φ)
            return k * log_phi + np.logaddexp(math.log1p(-f), math.log(f) + log_phi)
        # Poisson: r (φ - 1) = r · expm1(log φ)
        with np.errstate(over="ignore"):
            return r * np.expm1(np.minimum(log_phi, 700.0))

    def sample(self, size: int | tuple[int, ...],
               rng: np.random.Generator | int | None = None) -> np.ndarray:
        """``size`` i.i.d. budgets B (an int array); ``rng`` a Generator or a seed."""
        rng = np.random.default_rng(rng)
        r = self.rate_per_slot
        if self.kind == "deterministic":
            return np.full(size, int(r))
        if self.kind == "randomized":
            k = math.floor(r)
            return k + (rng.random(size) < r - k).astype(np.int64)
        return rng.poisson(r, size)
