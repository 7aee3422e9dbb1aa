r"""Admissible arrival-rate regions for multi-class workloads.

* **Necessary polytope** (any scheduler, Prop. 3.2): :math:`\{\lambda \ge 0 : \sum_k \lambda_k
  E[W_k] \le M\}`.
* **Algorithm 1 integer-budget region** (known lengths): :math:`\{\lambda : \exists b \in
  \mathbb Z_+^K,\ b_k > \lambda_k,\ \sum_k b_k w_k \le M\}` — a union of boxes
  :math:`[0, b_1) \times \dots`, a staircase strictly inside the simplex (the integrality gap).
* **Flow-control ε-region** (Algorithm 2, one global budget, FIFO): along each class mix π the
  admissible total rate is r*(ε) of the π-mixture workload, so the boundary is
  :math:`\{ r^*_\pi(\varepsilon)\,\pi \}`; randomised budgets make every mean rate available.

Two-class regions come as plot-ready arrays.

Examples
--------
Dong & Cao §4.1 with two of its classes (w = 410 and 1220, M = 16492):

>>> corners = alg1_staircase([410, 1220], 16492)
>>> corners[:3].tolist()
[[0, 13], [1, 13], [2, 12]]
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from numerics.analysis.bounds import FlowTails
from numerics.errors import WorkloadError
from numerics.model.budget import BudgetKind
from numerics.model.workload import RequestClass, Workload, ensure_memory

__all__ = [
    "alg1_admissible",
    "alg1_maximal_budgets",
    "alg1_randomized_boundary",
    "alg1_staircase",
    "flow_region_boundary",
    "necessary_vertices",
]


def _weights(memory_times: ArrayLike) -> np.ndarray:
    w = np.asarray(memory_times, dtype=float)
    if w.ndim != 1 or w.size == 0 or np.any(~np.isfinite(w)) or np.any(w <= 0):
        raise WorkloadError(f"memory-times must be positive and finite, got {memory_times!r}")
    return w


def necessary_vertices(memory_times: ArrayLike, memory_tokens: int) -> np.ndarray:
    """Vertices of the necessary polytope: 0 and M/E[W_k] on each axis (rows)."""
    w = _weights(memory_times)
    m = ensure_memory(memory_tokens)
    verts = np.zeros((w.size + 1, w.size))
    verts[1:] = np.diag(m / w)
    return verts


def alg1_maximal_budgets(memory_times: ArrayLike, memory_tokens: int) -> np.ndarray:
    """All maximal integer budget vectors b with Σ b_k w_k ≤ M (two classes: one per b_1)."""
    w = _weights(memory_times)
    m = ensure_memory(memory_tokens)
    if w.size != 2:
        raise WorkloadError("alg1_maximal_budgets enumerates two-class budgets; got "
                            f"{w.size} classes")
    b1 = np.arange(0, math.floor(m / w[0]) + 1)
    b2 = np.floor((m - b1 * w[0]) / w[1]).astype(np.int64)
    return np.stack([b1, b2], axis=1)


def alg1_staircase(memory_times: ArrayLike, memory_tokens: int) -> np.ndarray:
    """Corner points of the two-class Algorithm 1 region ∪_b [0, b_1) × [0, b_2).

    Row i is the budget pair (b_1, b_2) with b_2 maximal for b_1 = i; λ is admissible iff
    λ_1 < b_1 and λ_2 < b_2 for some row.
    """
    return alg1_maximal_budgets(memory_times, memory_tokens)


def alg1_admissible(rates: ArrayLike, memory_times: ArrayLike, memory_tokens: int) -> bool:
    """True when some integer budget vector has b_k > λ_k and Σ b_k w_k ≤ M (two classes)."""
    lam = np.asarray(rates, dtype=float)
    budgets = alg1_maximal_budgets(memory_times, memory_tokens)
    return bool(np.any(np.all(budgets > lam[None, :], axis=1)))


#: A class share below this is the rounding of cos(π/2): the direction leaves that class out.
_MIX_ZERO = 1e-12


def _mix_at(phi: float) -> np.ndarray:
    """The two-class mix π = (cos φ, sin φ)/(cos φ + sin φ)."""
    weights = np.clip(np.array([math.cos(phi), math.sin(phi)]), 0.0, None)
    return weights / weights.sum()


def _class_mixes(n_directions: int) -> list[np.ndarray]:
    """Two-class mixes π = (cos φ, sin φ)/(cos φ + sin φ), φ evenly spaced in [0, π/2]."""
    return [_mix_at(phi) for phi in np.linspace(0.0, math.pi / 2, n_directions)]


#: :func:`flow_region_boundary` refines until no chord between neighbouring points lies more than
#: this (relative) outside the boundary along the middle direction, or it has this many points.
BOUNDARY_CHORD_RTOL = 0.01
BOUNDARY_MAX_POINTS = 257


def _chord_excess(a: np.ndarray, b: np.ndarray, p: np.ndarray) -> float:
    """How far (relative to |p|) the chord a–b lies beyond the point p, along p's direction.

    The chord meets the ray t·p at t = (a × b)/(p × (b − a)) (2-d cross products); the excess
    is t − 1 (≤ 0 when the chord passes inside p, as for a convex region).
    """
    d = b - a
    den = p[0] * d[1] - p[1] * d[0]
    if den == 0:
        return 0.0
    return float((a[0] * b[1] - a[1] * b[0]) / den) - 1.0


def flow_region_boundary(workload: Workload, memory_tokens: int, epsilon: float = 1e-6,
                         n_directions: int = 17, budget: BudgetKind = "randomized",
                         rtol: float = BOUNDARY_CHORD_RTOL) -> np.ndarray:
    """Boundary of the two-class flow-control ε-region: rows (λ_1, λ_2) = r*_π(ε)·π.

    Directions π = (cos φ, sin φ)/(cos φ + sin φ), starting from ``n_directions`` angles φ evenly
    spaced in [0, π/2], then refined: between neighbouring points the middle angle is added while
    the straight segment joining them lies more than ``rtol`` (relative) outside the boundary
    point of that middle direction — so that the polyline the rows draw does not overstate the
    region by more than about ``rtol`` — up to :data:`BOUNDARY_MAX_POINTS` rows. Rows are in order
    of increasing φ (from the class-1 axis to the class-2 axis).
    """
    if len(workload.classes) != 2:
        raise WorkloadError(f"flow_region_boundary needs two classes, got {len(workload.classes)}")
    if not (isinstance(rtol, float | int) and rtol > 0):
        raise WorkloadError(f"rtol must be a positive number, got {rtol!r}")

    def point(phi: float) -> np.ndarray:
        mix = _mix_at(phi)
        keep = mix > _MIX_ZERO
        classes = tuple(
            RequestClass(c.lengths, float(p), c.name)
            for c, p, k in zip(workload.classes, mix, keep, strict=True) if k
        )
        wl = Workload(classes, workload.name)
        return FlowTails(wl, memory_tokens).flow_rate(epsilon, budget).rate_per_slot * mix

    phis = list(np.linspace(0.0, math.pi / 2, n_directions))
    pts = [point(phi) for phi in phis]
    i = 0
    while i < len(pts) - 1 and len(pts) < BOUNDARY_MAX_POINTS:
        mid = 0.5 * (phis[i] + phis[i + 1])
        p = point(mid)
        if _chord_excess(pts[i], pts[i + 1], p) > rtol:
            phis.insert(i + 1, mid)
            pts.insert(i + 1, p)  # look at the left half again
        else:
            i += 1
    return np.array(pts)


#: Relative width at which the bisection for a randomised-budget boundary point stops.
_BOUNDARY_RTOL = 1e-3


def alg1_randomized_boundary(workload: Workload, memory_tokens: int, epsilon: float = 1e-6,
                             n_directions: int = 17) -> np.ndarray:
    r"""Boundary of the two-class ε-region of Algorithm 1 with **randomised** per-class budgets.

    Class k activates :math:`B_{k,t} \in \{\lfloor r_k \rfloor, \lceil r_k \rceil\}` requests per
    slot with mean r_k, so every mean rate is available, not only integers: λ is admissible when
    some r > λ has P(U > M) ≤ ε, U the memory of the saturated per-class budgets (computed exactly
    by :func:`numerics.analysis.exact.exact_tail_per_class`). The region contains the integer staircase
    (r_k slightly below b_k never draws more than b_k, so U ≤ Σ b_k w_k ≤ M surely) and closes the
    integrality gap toward the simplex Σ λ_k w_k ≤ M as M/w grows. Rows are
    (λ_1, λ_2) = t*·π along the same directions π as :func:`flow_region_boundary`.
    """
    from numerics.analysis.exact import exact_tail_per_class

    if len(workload.classes) != 2:
        raise WorkloadError(f"alg1_randomized_boundary needs two classes, got {len(workload.classes)}")
    if not (isinstance(epsilon, float | int) and 0 < epsilon < 1):
        raise WorkloadError(f"epsilon must lie in (0, 1), got {epsilon!r}")
    m = ensure_memory(memory_tokens)
    w = workload.mean_memory_times
    log_eps = math.log(epsilon)
    out = []
    for pi in _class_mixes(n_directions):
        pi[pi < _MIX_ZERO] = 0.0
        lo, hi = 0.0, m / float(pi @ w)  # the simplex: E U = M there, so P(U > M) > ε
        while hi - lo > _BOUNDARY_RTOL * hi:
            mid = 0.5 * (lo + hi)
            if exact_tail_per_class(workload, m, mid * pi, "randomized").log_prob <= log_eps:
                lo = mid
            else:
                hi = mid
        out.append(lo * pi)
    return np.array(out)
