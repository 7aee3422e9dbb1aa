"""The paper's policies: :class:`FlowControl` (Algorithm 2) and :class:`ClassBudgets` (Algorithm 1).

Part of :mod:`numerics.sim.policies`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from numerics.errors import SpecError
from numerics.model.budget import BUDGET_LAWS
from numerics.sim.policies.base import BudgetKind, Policy
from numerics.sim.state import KernelCode, KernelParams, SlotState


@dataclass(frozen=True)
class FlowControl(Policy):
    """Algorithm 2: activate B_t requests FIFO, B_t from a budget law with mean ``rate``."""

    kernel_caps_seqs: ClassVar[bool] = True  # its compiled rule applies max_seqs

    rate: float = 1.0
    budget: BudgetKind = "randomized"
    kernel_code: ClassVar[KernelCode | None] = KernelCode.BUDGET

    def __post_init__(self) -> None:
        super().__post_init__()
        if not math.isfinite(self.rate) or self.rate < 0:
            raise SpecError(f"flow rate must be ≥ 0 requests per slot, got {self.rate}")
        if self.budget not in BUDGET_LAWS:
            raise SpecError(f"flow budget must be one of {', '.join(BUDGET_LAWS)}, got {self.budget!r}")
        if self.budget == "deterministic" and self.rate != int(self.rate):
            raise SpecError(f"a deterministic budget needs an integer rate, got {self.rate}")

    def draw_budgets(self, rng: np.random.Generator, slots: int) -> np.ndarray:
        """B_1..B_slots, consuming the generator exactly as ``slots`` calls of :meth:`select`."""
        r = self.rate
        if self.budget == "deterministic":
            return np.full(slots, int(r), dtype=np.int64)
        if self.budget == "randomized":
            k = math.floor(r)
            return k + (rng.random(slots) < r - k).astype(np.int64)
        return rng.poisson(r, slots).astype(np.int64)

    def kernel_params(self, sim: SlotState, slots: int) -> KernelParams:
        """Every budget drawn up front from the run's generator (:meth:`draw_budgets`)."""
        return KernelParams(self.kernel_code, self.draw_budgets(self._rng, slots), (0.0, 0.0))

    def select(self, sim: SlotState) -> int:
        r = self.rate
        rng = self._rng
        if self.budget == "deterministic":
            b = int(r)
        elif self.budget == "randomized":
            k = math.floor(r)
            b = k + (1 if rng.random() < r - k else 0)
        else:
            b = int(rng.poisson(r))
        room = self.seq_room(sim)
        return min(b, len(sim.queue)) if room == math.inf else min(b, len(sim.queue), int(room))

    def spec(self) -> str:
        return f"flow:rate={self.rate:g},budget={self.budget},requeue={self.requeue}{self._seqs_spec()}"


@dataclass(frozen=True)
class ClassBudgets(Policy):
    """Algorithm 1: up to ``budgets[k]`` class-k requests per slot, FIFO within each class."""

    kernel_caps_seqs: ClassVar[bool] = True  # its compiled rule applies max_seqs

    budgets: tuple[int, ...] = (1,)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.budgets or any(int(b) != b or b < 0 for b in self.budgets):
            raise SpecError(f"budgets must be non-negative integers, got {self.budgets}")

    def check_classes(self, n_classes: int) -> None:
        if len(self.budgets) != n_classes:
            raise SpecError(
                f"budgets: {len(self.budgets)} budgets for a workload with {n_classes} classes; "
                "give one per class"
            )

    def select(self, sim: SlotState) -> list[int]:
        self.check_classes(sim.n_classes)
        room = self.seq_room(sim)
        if room != math.inf:  # the chosen requests in global queue order, as many as fit
            return sim.queue.first_of_classes([int(b) for b in self.budgets], int(room))
        out: list[int] = []
        for k, b in enumerate(self.budgets):
            out.extend(sim.queue.head_of_class(k, int(b)))
        return out

    def spec(self) -> str:
        return "budgets:" + ",".join(str(int(b)) for b in self.budgets) + self._seqs_spec()

