r"""What a policy may see of an engine: the :class:`SlotState` protocol and its shared parts.

Every slot an engine calls ``policy.select(state)`` with itself as ``state``. The policy may read
exactly the members of :class:`SlotState` — the waiting queue, the memory in use, the number of
active requests, the memory size M, the prompt lengths and a few memory helpers — and nothing
else. Two engines implement it: the simulator's run state (:mod:`numerics.sim.engine`, whose
compiled twin :mod:`numerics.sim.fast` takes each policy's :class:`KernelParams` instead) and the
real-hardware engine of :mod:`numerics.calibration.engine`. Both build on
:class:`WaitingQueue` and :class:`PagedMemory`, defined here so that the two count memory alike:
a request that has generated g tokens holds :math:`m(S + g + 1)` tokens,
:math:`m(x) = b\lceil x/b\rceil` for blocks of b tokens.

Examples
--------
>>> q = WaitingQueue(2, [0, 1, 0])  # requests 0 and 2 of class 0, request 1 of class 1
>>> q.push_back(0); q.push_back(1)
>>> q.push_front(2)  # an evicted request rejoins at the head
>>> list(q), q.head_of_class(0, 5), len(q)
([2, 0, 1], [2, 0], 3)
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from enum import IntEnum
from typing import NamedTuple, Protocol, runtime_checkable

import numpy as np

__all__ = [
    "SLOT_STATE_MEMBERS",
    "KernelCode",
    "KernelParams",
    "PagedMemory",
    "SlotState",
    "WaitingQueue",
    "missing_members",
]


class WaitingQueue:
    """FIFO waiting queue with per-class access; evicted requests may be pushed to the head.

    Entries carry a sequence key: new arrivals count up from 0, head pushes count down from −1, so
    the global FIFO order is the order of keys (a head push goes before everything waiting).

    Parameters
    ----------
    n_classes : int
        Number of request classes.
    cls : list of int
        The class of every request id.
    """

    def __init__(self, n_classes: int, cls: list[int]) -> None:
        self._q = [deque() for _ in range(n_classes)]
        self._cls = cls
        self._back = 0
        self._front = -1
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def push_back(self, rid: int) -> None:
        """Append ``rid`` at the tail (an arrival, or an eviction with ``requeue="tail"``)."""
        self._q[self._cls[rid]].append((self._back, rid))
        self._back += 1
        self._n += 1

    def push_front(self, rid: int) -> None:
        """Put ``rid`` at the head, before everything waiting (an eviction with ``requeue="head"``)."""
        self._q[self._cls[rid]].appendleft((self._front, rid))
        self._front -= 1
        self._n += 1

    def __iter__(self) -> Iterator[int]:
        if len(self._q) == 1:
            return (rid for _, rid in self._q[0])
        return (rid for _, rid in heapq.merge(*self._q))

    def pop_head(self) -> int:
        """Remove and return the request at the head of the global FIFO order."""
        qs = self._q
        best = qs[0] if len(qs) == 1 else min((q for q in qs if q), key=lambda q: q[0][0])
        self._n -= 1
        return best.popleft()[1]

    def take(self, choice: int | Iterable[int]) -> list[int]:
        """Remove and return what a policy's ``select`` chose: the ``choice`` requests at the head
        (an int), or the listed waiting ids (in the order listed)."""
        if isinstance(choice, int | np.integer):
            return [self.pop_head() for _ in range(int(choice))]
        ids = list(choice)
        self.remove(ids)
        return ids

    def head_of_class(self, k: int, n: int) -> list[int]:
        """The first ``n`` waiting requests of class ``k`` (fewer if fewer wait), head first."""
        q = self._q[k]
        return [q[i][1] for i in range(min(n, len(q)))]

    def first_of_classes(self, counts: Sequence[int], n: int) -> list[int]:
        """The first ``counts[k]`` waiting requests of each class k, in global FIFO order, and of
        those only the first ``n`` (per-class budgets under a cap on the batch).

        >>> q = WaitingQueue(2, [0, 1, 0, 1]); [q.push_back(i) for i in range(4)] and None
        >>> q.first_of_classes([2, 2], 3), q.first_of_classes([1, 2], 2)
        ([0, 1, 2], [0, 1])
        """
        heads = [[q[i] for i in range(min(int(c), len(q)))] for q, c in zip(self._q, counts, strict=False)]
        out: list[int] = []
        for _, rid in heapq.merge(*heads):
            if len(out) >= n:
                break
            out.append(rid)
        return out

    def remove(self, ids: Iterable[int]) -> None:
        """Remove arbitrary waiting ids (class-head prefixes are popped in O(1) each)."""
        wanted = set(ids)
        for q in self._q:
            while q and q[0][1] in wanted:
                wanted.discard(q.popleft()[1])
                self._n -= 1
        if wanted:
            for i, q in enumerate(self._q):
                kept = deque(e for e in q if e[1] not in wanted)
                self._n -= len(q) - len(kept)
                self._q[i] = kept

    def class_of(self, rid: int) -> int:
        """The class of request ``rid`` (waiting or not)."""
        return self._cls[rid]

    def length_of_class(self, k: int) -> int:
        """Number of waiting requests of class ``k``."""
        return len(self._q[k])


class PagedMemory:
    """Memory accounting the policies read, shared by the simulator and the real-hardware engine
    (:mod:`numerics.calibration.engine`): a request that has generated g tokens holds
    m(S + g + 1) tokens, m(x) = b·⌈x/b⌉ for blocks of ``block`` tokens; ``S`` holds the prompts."""

    block: int
    S: Sequence[int]

    def mem(self, tokens: int) -> int:
        """m(tokens): ``tokens`` rounded up to whole blocks."""
        b = self.block
        return tokens if b == 1 else -(-tokens // b) * b

    def memory_of(self, rid: int, generated: int) -> int:
        """Memory of ``rid`` in a slot where it has already generated ``generated`` tokens."""
        return self.mem(self.S[rid] + generated + 1)


@runtime_checkable
class SlotState(Protocol):
    """Everything a policy's ``select(state)`` may read or call on an engine, at one slot.

    The slot is the current one: the arrivals of this slot are in ``queue``, the requests that
    stay active from the previous slot have grown by one token, and nothing has been activated yet.
    (That is the paper's model. Under prefill-first batching the running requests have not grown
    — a step that admits decodes nothing — and under chunked batching they hold this step's
    decode tokens and prompt chunks, after its preemptions; docs/engines.md.)
    """

    #: The waiting requests, FIFO (with per-class access).
    queue: WaitingQueue
    #: Number of request classes of the workload (the length of a per-class budget vector).
    n_classes: int
    #: U, the tokens the active requests hold this slot before activation: Σ m(S + g + 1).
    usage: int
    #: Number of active requests.
    n_active: int
    #: M, the KV-cache size in tokens.
    memory_tokens: int
    #: Prompt length S of every request id.
    S: Sequence[int]
    #: The largest decode length the workload can draw, or None when the decode law is unbounded.
    max_decode: int | None

    def mem(self, tokens: int) -> int:
        """m(tokens) = b·⌈tokens/b⌉: what ``tokens`` tokens occupy in blocks of b."""
        ...

    def activation_memory(self, rid: int) -> int:
        """Memory the waiting request ``rid`` would hold if activated now (kept progress included)."""
        ...

    def current_memory(self, rid: int) -> int:
        """Memory the active request ``rid`` holds this slot."""
        ...

    def remaining(self, rid: int) -> int:
        """Slots ``rid`` still needs, this one included (it reveals O: clairvoyant policies only)."""
        ...

    def active_ids(self) -> Iterator[int]:
        """The active request ids in activation order (oldest first)."""
        ...


#: The names of :class:`SlotState`'s members: its attributes, then its methods, as declared.
SLOT_STATE_MEMBERS: tuple[str, ...] = tuple(SlotState.__annotations__) + tuple(
    name for name, value in vars(SlotState).items() if callable(value) and not name.startswith("_")
)


def missing_members(obj: object) -> list[str]:
    """The :class:`SlotState` members that ``obj`` lacks (methods must be callable); [] if none.

    ``isinstance(obj, SlotState)`` says the same for the presence of the names; this also checks
    that the methods are methods.
    """
    out = []
    for name in SLOT_STATE_MEMBERS:
        method = callable(getattr(SlotState, name, None))
        if not hasattr(obj, name) or (method and not callable(getattr(obj, name))):
            out.append(name)
    return out


class KernelCode(IntEnum):
    """How the compiled kernel (:mod:`numerics.sim._kernel`) activates requests each slot."""

    #: Activate min(B_t, queue) head-of-queue requests, B_t a per-slot budget drawn up front.
    BUDGET = 0
    #: FCFS while usage + m(S + g + 1) ≤ (1 − params[0])·M and active < params[1] (0: no cap).
    FCFS_MEMORY = 1
    #: FCFS while Σ_active (S + L) + S_new + L ≤ M, with L = params[0].
    RESERVE = 2
    #: BUDGET and FCFS_MEMORY at once: at most B_t head requests, stopping at the first whose
    #: m(S + g + 1) does not fit under M (params[0] = 0): flow control with a fit check.
    BUDGET_FIT = 5


class KernelParams(NamedTuple):
    """What a policy hands the compiled kernel: its code, per-slot budgets and two numbers."""

    code: KernelCode
    #: B_1..B_slots for :attr:`KernelCode.BUDGET` (None for the other codes).
    budgets: np.ndarray | None
    #: The code's two parameters (unused ones are 0).
    params: tuple[float, float]
