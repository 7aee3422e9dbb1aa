r"""From slots to seconds: the compute-coupled capacity and per-second rates.

Symbolic twin: :mod:`theory.capacity` (functions of the same names; ``tests/test_twins.py``
checks that they agree).

With a step-time model τ(B, K, P) (:mod:`numerics.model.steptime`) the memory constraint at the fluid
fixed point reads :math:`\lambda_s E[W] \le M` with :math:`\lambda_s = \Lambda \bar\tau` requests
per slot, and at full memory the batch holds :math:`B_M = M E[O]/E[W]` requests, :math:`K = M`
tokens and :math:`P_M = M E[S]/E[W]` prefill tokens per slot. Hence the largest stable arrival
rate in requests per second is (docs/theory.md §8.6, ``thm:compute-capacity``)

.. math:: \Lambda^* = \frac{M}{E[W]\,\tau(B_M, M, P_M)},

which is Nie–Si–Zhou's :math:`\mu = M/(\bar b\,E[g])` with :math:`\bar b` the step time at full
memory. A per-slot rate r at fill r·E[W] runs at :math:`r/\tau(rE[O], rE[W], rE[S])` per second.

Examples
--------
>>> from numerics.model.specs import parse_law
>>> from numerics.model.workload import Workload
>>> from numerics.model.steptime import StepTimeModel
>>> wl = Workload.single(parse_law("100"), parse_law("geom:mean=200"))
>>> round(compute_coupled_capacity(wl, 50_000, StepTimeModel("const", c0=0.05)), 6)
16.666667
"""

from __future__ import annotations

import math

from numerics.errors import SettingError
from numerics.model.steptime import StepTimeModel
from numerics.model.workload import Workload

__all__ = ["compute_coupled_capacity", "rate_per_second"]


def compute_coupled_capacity(
    workload: Workload, memory_tokens: int, step_time: StepTimeModel
) -> float:
    """Λ* = M / (E[W]·τ(B_M, M, P_M)) requests per second."""
    w = workload.mean_memory_time
    batch = memory_tokens * workload.mean_decode / w
    prefill = memory_tokens * workload.mean_prompt / w
    tau = float(step_time.seconds(batch, memory_tokens, prefill))
    return memory_tokens / (w * tau)


def rate_per_second(workload: Workload, rate_per_slot: float, step_time: StepTimeModel) -> float:
    """Requests per second at a per-slot activation rate r, with the step time at fill r·E[W]."""
    if isinstance(rate_per_slot, bool) or not math.isfinite(rate_per_slot) or rate_per_slot < 0:
        raise SettingError(f"`rate_per_slot` must be a finite number ≥ 0 of requests per slot, got "
                           f"{rate_per_slot!r}", "rate_per_slot")
    tau = float(
        step_time.seconds(
            rate_per_slot * workload.mean_decode,
            rate_per_slot * workload.mean_memory_time,
            rate_per_slot * workload.mean_prompt,
        )
    )
    return rate_per_slot / tau
