"""The result of an exact tail computation: P(U > M) in log space, with its convergence evidence."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

__all__ = ["ExactTail", "TailMethod"]

#: How an :class:`ExactTail` was computed: ``fft`` (full window), ``lobe`` (main lobe only),
#: ``circle`` (the lobe integral over all frequencies), ``sure`` (U ≤ M surely: no inversion).
TailMethod = Literal["fft", "lobe", "circle", "sure"]


@dataclass(frozen=True)
class ExactTail:
    """P(U > M) for the saturated memory, with its convergence evidence."""

    log_prob: float  # natural log of P(U > M)
    grid_points: int
    theta: float
    relative_change: float  # between the last two grid sizes
    method: TailMethod = "fft"

    @property
    def prob(self) -> float:
        """P(U > M) itself (0.0 below the smallest double, where only ``log_prob`` is meaningful)."""
        return math.exp(self.log_prob) if self.log_prob > -745 else 0.0
