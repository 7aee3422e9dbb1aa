"""The practical policies: :class:`Greedy` (vLLM), :class:`AlphaProtection`, :class:`Reserve`
(TensorRT-LLM) and the clairvoyant reference :class:`MCSF`.

Part of :mod:`numerics.sim.policies`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from numerics.errors import SpecError, WorkloadError
from numerics.sim.policies.base import Policy, _admit_fcfs, _future_feasible
from numerics.sim.state import KernelCode, KernelParams, SlotState

if TYPE_CHECKING:
    from numerics.model.workload import Workload


@dataclass(frozen=True)
class Greedy(Policy):
    """vLLM-style: admit FCFS while usage + S + 1 ≤ (1 − watermark)·M and active < max_seqs."""

    watermark: float = 0.01
    kernel_code: ClassVar[KernelCode | None] = KernelCode.FCFS_MEMORY
    kernel_caps_seqs: ClassVar[bool] = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.watermark < 1:
            raise SpecError(f"greedy watermark must lie in [0, 1), got {self.watermark}")

    def kernel_params(self, sim: SlotState, slots: int) -> KernelParams:
        """(watermark, max_seqs or 0 for no cap)."""
        seqs = 0 if self.max_seqs is None else self.max_seqs
        return KernelParams(self.kernel_code, None, (float(self.watermark), float(seqs)))

    def select(self, sim: SlotState) -> int:
        return _admit_fcfs(sim, (1 - self.watermark) * sim.memory_tokens, self.seq_room(sim))

    def spec(self) -> str:
        return f"greedy:watermark={self.watermark:g}{self._seqs_spec()}"


@dataclass(frozen=True)
class AlphaProtection(Policy):
    """α-protection greedy: admit FCFS while the usage after admission stays ≤ (1 − α)·M."""

    alpha: float = 0.1
    kernel_code: ClassVar[KernelCode | None] = KernelCode.FCFS_MEMORY
    kernel_caps_seqs: ClassVar[bool] = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.alpha < 1:
            raise SpecError(f"alpha must lie in [0, 1), got {self.alpha}")

    def kernel_params(self, sim: SlotState, slots: int) -> KernelParams:
        """(α, max_seqs or 0 for no cap): greedy's rule with watermark α."""
        seqs = 0 if self.max_seqs is None else self.max_seqs
        return KernelParams(self.kernel_code, None, (float(self.alpha), float(seqs)))

    def select(self, sim: SlotState) -> int:
        return _admit_fcfs(sim, (1 - self.alpha) * sim.memory_tokens, self.seq_room(sim))

    def spec(self) -> str:
        return f"alpha:{self.alpha:g}{self._seqs_spec()}"


@dataclass(frozen=True)
class Reserve(Policy):
    """TensorRT-LLM GUARANTEED_NO_EVICT: reserve S + max_tokens per request; never overflows."""

    kernel_caps_seqs: ClassVar[bool] = True  # its compiled rule applies max_seqs

    max_tokens: int | None = None
    kernel_code: ClassVar[KernelCode | None] = KernelCode.RESERVE

    def __post_init__(self) -> None:
        super().__post_init__()
        cap = self.max_tokens
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int | np.integer) or cap < 1):
            raise SpecError(f"reserve max must be a positive integer number of decode tokens "
                            f"(e.g. reserve:max=2048), got {cap!r}")

    def check_workload(self, workload: Workload) -> None:
        if self.max_tokens is None and not math.isfinite(workload.max_decode):
            raise SpecError(
                f"reserve needs max=L: the decode lengths are unbounded (workload {workload.name!r}); "
                "give the reservation per request, e.g. reserve:max=2048"
            )

    def _cap(self, sim: SlotState) -> int:
        """L, the decode tokens reserved per request: ``max_tokens`` or the law's maximum."""
        cap = self.max_tokens if self.max_tokens is not None else sim.max_decode
        if cap is None:
            raise WorkloadError("reserve needs max=L when the decode law is unbounded (reserve:max=L)")
        return cap

    def kernel_params(self, sim: SlotState, slots: int) -> KernelParams:
        """(L, 0)."""
        return KernelParams(self.kernel_code, None, (float(self._cap(sim)), 0.0))

    def select(self, sim: SlotState) -> int:
        cap = self._cap(sim)
        # a request never holds more than m(S + L) tokens (m rounds up to whole blocks)
        reserved = sum(sim.mem(sim.S[i] + cap) for i in sim.active_ids())
        room = self.seq_room(sim)
        k = 0
        for rid in sim.queue:
            if k >= room:
                break
            need = sim.mem(sim.S[rid] + cap)
            if reserved + need > sim.memory_tokens:
                break
            reserved += need
            k += 1
        return k

    def spec(self) -> str:
        args = ("" if self.max_tokens is None else f",max={self.max_tokens}") + self._seqs_spec()
        return "reserve" + (":" + args[1:] if args else "")


@dataclass(frozen=True)
class MCSF(Policy):
    """Clairvoyant Memory-Constrained Shortest-First (knows O): a reference, not deployable.

    Sort the waiting requests by remaining decode length and admit the longest prefix for which
    memory stays ≤ M at every future completion time of the active and admitted requests.
    """

    kernel_caps_seqs: ClassVar[bool] = True  # its compiled rule applies max_seqs

    def select(self, sim: SlotState) -> list[int]:
        waiting = list(sim.queue)
        if not waiting or self.seq_room(sim) == 0:
            return []
        waiting.sort(key=lambda i: (sim.remaining(i), i))
        active = [(sim.current_memory(i), sim.remaining(i)) for i in sim.active_ids()]
        lo, hi = 0, len(waiting)
        while lo < hi:  # largest feasible prefix (feasibility is monotone in the prefix)
            mid = (lo + hi + 1) // 2
            cand = active + [(sim.activation_memory(i), sim.remaining(i)) for i in waiting[:mid]]
            if _future_feasible(cand, sim.memory_tokens):
                lo = mid
            else:
                hi = mid - 1
        room = self.seq_room(sim)
        return waiting[:lo] if room >= lo else waiting[:int(room)]

    def spec(self) -> str:
        return "mcsf" + (":" + self._seqs_spec()[1:] if self.max_seqs is not None else "")
