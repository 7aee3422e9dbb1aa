"""The paper's policies: :class:`FlowControl` (Algorithm 2) and :class:`ClassBudgets` (Algorithm 1).

Part of :mod:`numerics.sim.policies`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from numerics.errors import SpecError, WorkloadError
from numerics.model.budget import BUDGET_LAWS, BudgetLaw, as_budget, is_law_spec
from numerics.sim.policies.base import BudgetKind, Policy, _draw_budget
from numerics.sim.state import KernelCode, KernelParams, SlotState


def _flow_budget(policy: Policy, rate: float | None, budget: str) -> float:
    """Validate a flow policy's (rate, budget) and cache its :class:`BudgetLaw`; the rate
    (a budget law's mean when ``rate`` is None)."""
    name = policy.spec_name
    if not isinstance(budget, str):
        raise SpecError(f"{name} budget must be a string, got {budget!r}")
    if is_law_spec(budget):
        try:
            law = as_budget(budget, rate)
        except WorkloadError as exc:
            raise SpecError(f"{name}: {exc}") from None
        object.__setattr__(policy, "_budget_law", law)
        return law.rate_per_slot
    rate = 1.0 if rate is None else rate
    if isinstance(rate, bool) or not isinstance(rate, int | float | np.integer | np.floating) or (
            not math.isfinite(rate) or rate < 0):
        raise SpecError(f"{name} rate must be ≥ 0 requests per slot, got {rate}")
    if budget not in BUDGET_LAWS:
        raise SpecError(f"{name} budget must be one of {', '.join(BUDGET_LAWS)} or a length law in "
                        f"parentheses such as (uniform:0,6), got {budget!r}")
    if budget == "deterministic" and rate != int(rate):
        raise SpecError(f"a deterministic budget needs an integer rate, got {rate}")
    object.__setattr__(policy, "_budget_law", BudgetLaw(budget, float(rate)))
    return rate


def _flow_spec(name: str, rate: float, budget: str) -> str:
    """``NAME:rate=R,budget=KIND`` or, for a budget law (which fixes the rate), ``NAME:budget=(LAW)``."""
    if is_law_spec(budget):
        return f"{name}:budget={budget.strip()}"
    return f"{name}:rate={rate:g},budget={budget}"


@dataclass(frozen=True)
class _BudgetedFlow(Policy):
    """The activation budget B_t of Algorithm 2, shared by :class:`FlowControl` and
    :class:`~numerics.sim.policies.beyond.FlowFit`: its ``rate`` and ``budget`` law, validated
    once, and the draws (one per slot, or every slot's up front from the same stream)."""

    rate: float | None = None
    budget: BudgetKind | str = "randomized"

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "rate", _flow_budget(self, self.rate, self.budget))

    @property
    def budget_law(self) -> BudgetLaw:
        """The budget law B_t is drawn from (:class:`~numerics.model.budget.BudgetLaw`)."""
        return self._budget_law

    def draw_budget(self, rng: np.random.Generator) -> int:
        """One budget B_t (as :meth:`draw_budgets` draws each slot's)."""
        if self._budget_law.kind == "law":
            return int(self._budget_law.sample(1, rng)[0])
        return _draw_budget(rng, self.rate, self.budget)

    def draw_budgets(self, rng: np.random.Generator, slots: int) -> np.ndarray:
        """B_1..B_slots, consuming the generator exactly as ``slots`` calls of :meth:`draw_budget`."""
        r = self.rate
        if self.budget == "deterministic":
            return np.full(slots, int(r), dtype=np.int64)
        if self.budget == "randomized":
            k = math.floor(r)
            return k + (rng.random(slots) < r - k).astype(np.int64)
        if self.budget == "poisson":
            return rng.poisson(r, slots).astype(np.int64)
        return self._budget_law.sample(slots, rng)  # one uniform per slot, as draw_budget draws


@dataclass(frozen=True)
class FlowControl(_BudgetedFlow):
    """Algorithm 2: activate B_t requests FIFO, B_t from a budget law with mean ``rate``.

    ``budget`` is a named law (``randomized``, ``deterministic``, ``poisson``) or any length law in
    parentheses, ``"(uniform:0,6)"`` (:func:`numerics.model.budget.as_budget`); a law fixes the
    rate (its mean: ``rate`` may be left out, None, or must equal it). ``rate`` defaults to 1.
    """

    kernel_caps_seqs: ClassVar[bool] = True  # its compiled rule applies max_seqs
    kernel_code: ClassVar[KernelCode | None] = KernelCode.BUDGET

    def kernel_params(self, sim: SlotState, slots: int) -> KernelParams:
        """Every budget drawn up front from the run's generator (:meth:`draw_budgets`)."""
        return KernelParams(self.kernel_code, self.draw_budgets(self._rng, slots), (0.0, 0.0))

    def select(self, sim: SlotState) -> int:
        b = self.draw_budget(self._rng)
        room = self.seq_room(sim)
        return min(b, len(sim.queue)) if room == math.inf else min(b, len(sim.queue), int(room))

    def spec(self) -> str:
        return f"{_flow_spec('flow', self.rate, self.budget)},requeue={self.requeue}{self._seqs_spec()}"


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

