"""The result of an exact tail computation: P(U > M) in log space, with its convergence evidence."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

__all__ = ["ExactTail", "TailMethod"]

#: How an :class:`ExactTail` was computed: ``fft`` (full window), ``lobe`` (main lobe only),
#: ``circle`` (the lobe integral over all frequencies), ``sure`` (U ≤ M surely, or U > M surely:
#: no inversion), ``chernoff`` (E U ≥ M and the Chernoff bound on the lower tail,
#: P(U ≤ M) ≤ δ, is below double-precision resolution: P(U > M) = 1 − δ/2 ± δ/2), ``series``
#: (light load, one class: the full-window FFT with the product over ages done by FFTs).
TailMethod = Literal["fft", "lobe", "circle", "sure", "chernoff", "series"]

_METHOD_TEXT = {
    "fft": "tilted FFT over a full window",
    "lobe": "inversion integral over the main lobe of the tilted transform",
    "circle": "inversion integral over the whole circle",
    "sure": "no inversion: the support of U decides",
    "chernoff": "Chernoff bound on P(U ≤ M)",
    "series": "tilted FFT over a full window, the ages' product by a log-series of FFTs",
}


@dataclass(frozen=True)
class ExactTail:
    """P(U > M) for the saturated memory, with its convergence evidence.

    Attributes
    ----------
    log_prob : float
        Natural log of P(U > M).
    grid_points : int
        Points of the last grid (0 when no inversion ran).
    theta : float
        The tilt used (negative when the lower tail P(U ≤ M) was inverted, E U ≥ M).
    relative_change : float
        Relative change of P(U > M) between the last two grid sizes (the convergence evidence of
        ``fft``, ``lobe`` and ``circle``; 0 where nothing was inverted).
    method : {"fft", "lobe", "circle", "sure", "chernoff", "series"}
    abs_error : float or None
        A proved bound on |prob − P(U > M)| where the method gives one (``sure``: 0,
        ``chernoff``: δ/2); None for the inversions, whose evidence is ``relative_change``.
    """

    log_prob: float
    grid_points: int
    theta: float
    relative_change: float  # between the last two grid sizes
    method: TailMethod = "fft"
    abs_error: float | None = None

    @property
    def prob(self) -> float:
        """P(U > M) itself (0.0 below the smallest double, where only ``log_prob`` is meaningful)."""
        return math.exp(self.log_prob) if self.log_prob > -745 else 0.0

    @property
    def description(self) -> str:
        """One line: how P(U > M) was obtained and what its error is."""
        text = _METHOD_TEXT.get(self.method, self.method)
        if self.abs_error is not None:
            return f"{text}; |error| ≤ {self.abs_error:.3g} (proved)"
        side = "lower tail P(U ≤ M) inverted, " if self.theta < 0 else ""
        return (f"{text} ({side}θ = {self.theta:.4g}, {self.grid_points} grid points); relative "
                f"change between the last two grids {self.relative_change:.2g}")
