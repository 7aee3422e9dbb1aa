"""The base class :class:`Policy`, the shared activation helpers and the spec-parsing helpers.

Part of :mod:`numerics.sim.policies` (the package docstring describes the policies).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np

from numerics.errors import SpecError
from numerics.sim.state import KernelCode, KernelParams, SlotState

if TYPE_CHECKING:
    from numerics.model.workload import Workload

#: Where an evicted request rejoins the waiting queue.
Requeue = Literal["head", "tail"]
REQUEUE: tuple[Requeue, ...] = ("head", "tail")
#: The budget laws of flow control (:data:`numerics.model.budget.BUDGET_LAWS`).
BudgetKind = Literal["deterministic", "randomized", "poisson"]
#: The spec name of each built-in policy class (for messages).
_SPEC_NAMES = {"FlowControl": "flow", "ClassBudgets": "budgets", "Greedy": "greedy",
               "AlphaProtection": "alpha", "Reserve": "reserve", "MCSF": "mcsf",
               "FlowFit": "flowfit", "AdaptiveFlow": "adaptive", "Lookahead": "lookahead",
               "MC": "mc", "MCSFPredicted": "mcsf",
               "Wait": "wait", "NestedWait": "nested-wait"}


@dataclass(frozen=True)
class Policy:
    """Base class. ``requeue``: where evicted requests rejoin the queue (head or tail);
    ``max_seqs`` (keyword-only): the most active requests, vLLM's ``max_num_seqs`` (None: no cap).

    Attributes
    ----------
    kernel_code : KernelCode or None
        The compiled kernel's activation rule for this policy; None: Python engine only.
    """

    requeue: Requeue = "head"
    #: Most active requests (vLLM's ``max_num_seqs``); None: no cap. Keyword-only.
    max_seqs: int | None = field(default=None, kw_only=True)
    kernel_code: ClassVar[KernelCode | None] = None
    #: Whether the compiled kernel's rule for this policy applies ``max_seqs`` (else a capped
    #: policy runs on the Python engine).
    kernel_caps_seqs: ClassVar[bool] = False

    def __post_init__(self) -> None:
        seqs = self.max_seqs
        if seqs is not None and (
            isinstance(seqs, bool) or not isinstance(seqs, int | float | np.integer)
            or not math.isfinite(seqs) or int(seqs) != seqs or seqs < 1
        ):
            raise SpecError(f"{self.spec_name} max_seqs must be a positive integer, got {seqs}")
        if seqs is not None:
            object.__setattr__(self, "max_seqs", int(seqs))

    @property
    def spec_name(self) -> str:
        """The policy's name in specs (``flow``, ``greedy``, ...), for messages."""
        return _SPEC_NAMES.get(type(self).__name__, type(self).__name__)

    def seq_room(self, sim: SlotState) -> float:
        """How many more requests ``max_seqs`` lets this slot activate: ``max_seqs − n_active``
        (never below 0), or ∞ without a cap."""
        return math.inf if self.max_seqs is None else max(self.max_seqs - sim.n_active, 0)

    def _seqs_spec(self) -> str:
        """``,max_seqs=N`` when capped, else ``""`` (the tail of :meth:`spec`)."""
        return "" if self.max_seqs is None else f",max_seqs={self.max_seqs}"

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        # a new decision rule is not the kernel's unless the subclass says so
        if "select" in cls.__dict__ and "kernel_code" not in cls.__dict__:
            cls.kernel_code = None

    @property
    def name(self) -> str:
        return type(self).__name__

    def select(self, sim: SlotState) -> int | list[int]:  # pragma: no cover - abstract
        """The requests to activate this slot: a count k (the k at the head of the FIFO queue) or
        a list of waiting request ids."""
        raise NotImplementedError

    def reset(self, rng: np.random.Generator) -> None:
        """Called once before a run with the run's generator (for randomised policies)."""
        object.__setattr__(self, "_rng", rng)

    def check_workload(self, workload: Workload) -> None:
        """Raise :class:`~numerics.errors.SpecError` when this policy cannot serve ``workload``
        at all (:class:`~numerics.sim.config.SimConfig` calls it); the base accepts any."""

    def check_classes(self, n_classes: int) -> None:
        """Raise :class:`~numerics.errors.SpecError` when this policy cannot serve ``n_classes``
        request classes (checked when a run starts and by
        :func:`~numerics.sim.config.check_policy`); the base accepts any number."""

    def kernel_params(self, sim: SlotState, slots: int) -> KernelParams:
        """The compiled kernel's inputs for a run of ``slots`` slots (called once, after
        :meth:`reset`, in place of every :meth:`select`); only for a ``kernel_code``."""
        raise NotImplementedError(f"{self.name} has no compiled kernel (kernel_code is None)")

    def spec(self) -> str:  # pragma: no cover - overridden
        return self.name


def _draw_budget(rng: np.random.Generator, r: float, budget: BudgetKind) -> int:
    """One budget B_t with mean ``r`` from ``budget``'s law (as :meth:`FlowControl.select` draws)."""
    if budget == "deterministic":
        return int(r)
    if budget == "randomized":
        k = math.floor(r)
        return k + (1 if rng.random() < r - k else 0)
    return int(rng.poisson(r))


def _head(sim: SlotState, k: int) -> list[int]:
    """The first ``k`` waiting request ids in FIFO order."""
    out = []
    for rid in sim.queue:
        if len(out) >= k:
            break
        out.append(rid)
    return out


def _admit_fcfs(sim: SlotState, limit: float, cap: float = math.inf) -> int:
    """How many head-of-queue requests fit, in FIFO order, with this slot's memory ≤ ``limit``."""
    usage = sim.usage
    k = 0
    for rid in sim.queue:
        if k >= cap:
            break
        need = sim.activation_memory(rid)
        if usage + need > limit:
            break
        usage += need
        k += 1
    return k


def _future_feasible(items: list[tuple[int, int]], memory: int) -> bool:
    """items: (memory this slot, slots left incl. this one); check Σ memory ≤ M at each future slot.

    A request using m tokens now with ℓ slots left uses m + τ tokens τ slots from now (τ < ℓ).
    Usage is piecewise linear between completions, so checking τ = 0 and each τ = ℓ_j − 1 suffices.
    """
    if not items:
        return True
    mem = np.array([m for m, _ in items], dtype=np.int64)
    left = np.array([ell for _, ell in items], dtype=np.int64)
    taus = np.unique(np.concatenate([[0], left - 1]))
    alive = left[None, :] > taus[:, None]
    usage = (alive * (mem[None, :] + taus[:, None])).sum(axis=1)
    return bool(np.all(usage <= memory))


def _split_top(text: str, spec: str) -> list[str]:
    """``text`` split at the commas outside parentheses (a budget law ``(uniform:0,6)`` is one part)."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise SpecError(f"policy {spec!r}: unbalanced ')'")
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth:
        raise SpecError(f"policy {spec!r}: unbalanced '('; close the budget law, e.g. (uniform:0,6)")
    return [*parts, text[start:]]


def _kv(text: str, spec: str) -> tuple[list[str], dict[str, str]]:
    pos, kw = [], {}
    for part in filter(None, (p.strip() for p in _split_top(text, spec))):
        if "=" in part:
            k, _, v = part.partition("=")
            kw[k.strip()] = v.strip()
        else:
            pos.append(part)
    return pos, kw


def _num(text: str, spec: str, integer: bool = False) -> float:
    try:
        v = float(text)
    except ValueError:
        raise SpecError(f"policy {spec!r}: {text!r} is not a number") from None
    if integer and v != int(v):
        raise SpecError(f"policy {spec!r}: {text!r} must be an integer")
    return int(v) if integer else v

