"""The result of an exact tail computation: P(U > M) in log space, with its convergence evidence."""

from __future__ import annotations

import contextlib
import contextvars
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

__all__ = ["ExactTail", "TailMethod"]

#: How an :class:`ExactTail` was computed: ``fft`` (full window), ``lobe`` (main lobe only),
#: ``circle`` (the lobe integral over all frequencies), ``sure`` (U ≤ M surely, or U > M surely:
#: no inversion), ``chernoff`` (E U ≥ M and the Chernoff bound on the lower tail,
#: P(U ≤ M) ≤ δ, is below double-precision resolution: P(U > M) = 1 − δ/2 ± δ/2), ``series``
#: (light load, one class: the full-window FFT with the product over ages done by FFTs),
#: ``chernoff-upper`` (E U < M, the exact inversion would cost more than its budget and the
#: Chernoff bound δ ≥ P(U > M) is below the caller's negligible level: P(U > M) = δ/2 ± δ/2),
#: ``bracket`` (request sizes rounded up and down to a lattice of b tokens: P(U⁻ > M) ≤ P(U > M)
#: ≤ P(U⁺ > M), both ends inverted on the lattice; the answer is the upper end).
TailMethod = Literal["fft", "lobe", "circle", "sure", "chernoff", "series", "chernoff-upper",
                     "bracket"]

_METHOD_TEXT = {
    "fft": "tilted FFT over a full window",
    "lobe": "inversion integral over the main lobe of the tilted transform",
    "circle": "inversion integral over the whole circle",
    "sure": "no inversion: the support of U decides",
    "chernoff": "Chernoff bound on P(U ≤ M)",
    "chernoff-upper": "Chernoff bound δ ≥ P(U > M), no inversion (the exact one was too costly and "
                      "P(U > M) is below the negligible level)",
    "series": "tilted FFT over a full window, the ages' product by a log-series of FFTs",
    "bracket": "bracket by rounding request sizes to a lattice of b tokens",
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
    method : {"fft", "lobe", "circle", "sure", "chernoff", "series", "chernoff-upper", "bracket"}
    abs_error : float or None
        A proved bound on |prob − P(U > M)| where the method gives one (``sure``: 0,
        ``chernoff`` and ``chernoff-upper``: δ/2, ``bracket``: the bracket's width plus its ends'
        convergence tolerances); None for the inversions, whose evidence is ``relative_change``
        (for ``series`` on one grid: the proved bound on the tilted law's mass beyond the window,
        relative to the answer).
    lower : float or None
        ``bracket`` only: the lower end P(U⁻ > M) (``prob`` is the upper end P(U⁺ > M)).
    lattice : int or None
        ``bracket`` only: b, the lattice (in tokens) the request sizes were rounded to.
    """

    log_prob: float
    grid_points: int
    theta: float
    relative_change: float  # between the last two grid sizes
    method: TailMethod = "fft"
    abs_error: float | None = None
    lower: float | None = None
    lattice: int | None = None

    @property
    def prob(self) -> float:
        """P(U > M) itself (0.0 below the smallest double, where only ``log_prob`` is meaningful)."""
        return math.exp(self.log_prob) if self.log_prob > -745 else 0.0

    @property
    def description(self) -> str:
        """One line: how P(U > M) was obtained and what its error is."""
        text = _METHOD_TEXT.get(self.method, self.method)
        if self.method == "bracket" and self.lower is None:
            return (f"bracket:b={self.lattice}: {text}, upper end only: P(U > M) ≤ {self.prob:.4g} "
                    "(proved)")
        if self.method == "bracket":
            width = self.prob - (self.lower or 0.0)
            rel = f", relative width {width / self.prob:.2g}" if self.prob > 0 else ""
            return (f"bracket:b={self.lattice}: {text}, {self.lower:.4g} ≤ P(U > M) ≤ "
                    f"{self.prob:.4g}{rel} (the upper end is reported); |error| ≤ "
                    f"{self.abs_error:.3g} (proved)")
        if self.abs_error is not None:
            return f"{text}; |error| ≤ {self.abs_error:.3g} (proved)"
        side = "lower tail P(U ≤ M) inverted, " if self.theta < 0 else ""
        return (f"{text} ({side}θ = {self.theta:.4g}, {self.grid_points} grid points); relative "
                f"change between the last two grids {self.relative_change:.2g}")


class _OutOfTime(Exception):
    """The wall-clock budget of an exact computation (``max_seconds``) ran out."""


_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("exact_deadline", default=None)


@contextlib.contextmanager
def _time_budget(seconds: float | None) -> Iterator[None]:
    """Run the block under a deadline ``seconds`` from now (None: no limit); an enclosing budget
    (a rate search's) is kept where it ends sooner."""
    outer = _DEADLINE.get()
    mine = None if seconds is None else time.monotonic() + seconds
    deadline = mine if outer is None else (outer if mine is None else min(outer, mine))
    token = _DEADLINE.set(deadline)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def _check_time() -> None:
    """Raise _OutOfTime once the current deadline has passed (called in the inversions' loops)."""
    deadline = _DEADLINE.get()
    if deadline is not None and time.monotonic() > deadline:
        raise _OutOfTime


def _time_left() -> float:
    """Seconds left before the current deadline (+∞ without one)."""
    deadline = _DEADLINE.get()
    return math.inf if deadline is None else deadline - time.monotonic()
