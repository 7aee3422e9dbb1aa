"""Jaillet et al.'s future-memory policies: :class:`MC` (FCFS) and MC-SF with *predicted* lengths.

Part of :mod:`numerics.sim.policies`. Source: Jaillet, Jiang, Mellou, Molinaro, Podimata, Zhou,
"Online Scheduling for LLM Inference with KV Cache Constraints", arXiv:2502.07115.

* The **future-memory check** is the paper's: a set of requests is admissible when, with each
  request's decode length known, the memory it will use stays ≤ M at every future slot, which
  it suffices to check at each completion time (usage is piecewise linear between completions;
  :func:`~numerics.sim.policies.base._future_feasible`). In flowstab's slot model a request with
  m tokens this slot and ℓ slots left holds m + τ tokens τ slots from now, τ < ℓ.
* **MC-SF** (the paper's algorithm, :class:`~numerics.sim.policies.practice.MCSF`): keep every
  running request, sort the waiting ones by (predicted) decode length and admit the longest prefix
  that passes the check.
* **MC** (the paper's "MC-Benchmark", its experiments' memory-aware baseline): the same check,
  first-come first-served — admit the head of the queue while the check passes and stop at the
  first request that fails it (no skipping). The name and the rule (FCFS with the same
  future-memory check) are from the paper's experiments section as summarised in secondary notes;
  the paper's own pseudocode for it was not readable here.
* **Predictions** (``predict=...``): real systems know a prediction Ô, not O. The paper's model
  gives MC-SF a prediction; here every future check uses Ô in place of the true O (the prompt S is
  known). Kinds: ``exact`` (Ô = O, the clairvoyant reference), ``over:c`` (Ô = ⌈c·O⌉, c ≥ 1: a
  conservative over-estimate, never overflows) and ``noisy:σ`` (Ô = max(1, round(O·e^{σZ})),
  Z ~ N(0, 1): a log-normal multiplicative error, unbiased in log). An under-estimate can
  overflow; the engine then evicts LIFO as for every policy (docs/model.md, step 3). A running
  request that has outlived its prediction is assumed to end this slot (1 slot left). Every
  prediction is clipped to M − S (the most a request can generate in memory M, a serving
  engine's max_tokens cap; without it an over-estimate beyond M would never be admitted).

The noise is drawn once per request, reproducibly: :meth:`reset` spawns a child generator from
the run's generator (``Generator.spawn``, which leaves the parent's stream, and so the run's
arrivals and lengths, unchanged) and request i's Z is the i-th draw of a stream seeded by it, so a
request's prediction does not depend on when the policy first looks at it. A policy reads the
true O only through :meth:`~numerics.sim.state.SlotState.remaining` (clairvoyant), once, when it
first sees the request waiting and fresh.

A_min (Chen, Ye, Zhou, arXiv:2508.14544, a benchmark of Dong & Cao) is not here: only its
abstract-level description was readable ("treat the predicted lower bound as the output length
and refine the estimate during inference"); its refinement and overflow rules were not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import numpy as np

from numerics.errors import SpecError
from numerics.sim.policies.base import Policy, _future_feasible
from numerics.sim.policies.practice import MCSF
from numerics.sim.state import SlotState

__all__ = ["MC", "PREDICTION_KINDS", "MCSFPredicted", "Prediction", "PredictionKind"]

#: The kinds of decode-length prediction a future-memory policy can use.
PredictionKind = Literal["exact", "over", "noisy"]
PREDICTION_KINDS: tuple[PredictionKind, ...] = ("exact", "over", "noisy")


@dataclass(frozen=True)
class Prediction:
    """How a future-memory policy predicts a request's decode length O.

    Parameters
    ----------
    kind : {"exact", "over", "noisy"}
        ``exact``: Ô = O; ``over``: Ô = ⌈value·O⌉ (value ≥ 1); ``noisy``: Ô = max(1,
        round(O·exp(value·Z))), Z standard normal (value = σ ≥ 0).
    value : float
        The factor c of ``over`` or the log-scale σ of ``noisy`` (ignored by ``exact``).
    """

    kind: PredictionKind = "exact"
    value: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in PREDICTION_KINDS:
            raise SpecError(f"predict must be exact, over:C or noisy:SIGMA, got {self.kind!r}")
        v = self.value
        if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating) \
                or not math.isfinite(v):
            raise SpecError(f"predict={self.kind}: the value must be a finite number, got {v!r}")
        if self.kind == "over" and v < 1:
            raise SpecError(f"predict=over:C needs C ≥ 1 (an over-estimate), got {v:g}; use "
                            "noisy:SIGMA for errors both ways")
        if self.kind == "noisy" and v < 0:
            raise SpecError(f"predict=noisy:SIGMA needs SIGMA ≥ 0, got {v:g}")
        object.__setattr__(self, "value", float(v) if self.kind != "exact" else 0.0)

    @classmethod
    def parse(cls, text: str, spec: str = "") -> Prediction:
        """``exact``, ``over:C`` or ``noisy:SIGMA`` → a :class:`Prediction`.

        >>> Prediction.parse("noisy:0.3"), Prediction.parse("exact").spec()
        (Prediction(kind='noisy', value=0.3), 'exact')
        """
        kind, _, arg = text.strip().partition(":")
        kind = kind.lower()
        where = f"policy {spec!r}: " if spec else ""
        if kind == "exact":
            if arg:
                raise SpecError(f"{where}predict=exact takes no value, got {text!r}")
            return cls()
        if kind not in ("over", "noisy") or not arg:
            raise SpecError(f"{where}predict must be exact, over:C (C ≥ 1) or noisy:SIGMA, got {text!r}")
        try:
            value = float(arg)
        except ValueError:
            raise SpecError(f"{where}predict={kind}: {arg!r} is not a number") from None
        return cls(kind, value)

    def spec(self) -> str:
        """The spec text: ``exact``, ``over:C`` or ``noisy:SIGMA``."""
        return "exact" if self.kind == "exact" else f"{self.kind}:{self.value:g}"

    def predict(self, o: int, z: float) -> int:
        """Ô for a true decode length ``o`` and the request's standard-normal draw ``z``."""
        if self.kind == "exact":
            return int(o)
        if self.kind == "over":
            return math.ceil(self.value * o - 1e-9)
        return max(1, round(o * math.exp(self.value * z)))


EXACT = Prediction()


class _Predictor:
    """Per-run state: each request's true O (read once) and its prediction Ô."""

    def __init__(self, prediction: Prediction, rng: np.random.Generator | None) -> None:
        self.prediction = prediction
        self.true: dict[int, int] = {}
        self.pred: dict[int, int] = {}
        self._z = np.zeros(0)
        self._gen = None
        if prediction.kind == "noisy":
            child = rng.spawn(1)[0] if rng is not None else np.random.default_rng(0)
            self._gen = child

    def _draw(self, rid: int) -> float:
        if rid >= self._z.size:  # extend in request order: the i-th draw is request i's
            need = max(rid + 1 - self._z.size, 256)
            self._z = np.concatenate([self._z, self._gen.standard_normal(need)])
        return float(self._z[rid])

    def see_waiting(self, sim: SlotState, rid: int) -> None:
        """Record O and Ô of a waiting request the first time the policy sees it (it is fresh then:
        a request is seen waiting before it can ever be activated, so ``remaining`` is O)."""
        if rid not in self.true:
            o = int(sim.remaining(rid))
            self.true[rid] = o
            z = self._draw(rid) if self._gen is not None else 0.0
            # clipped to M − S, the most a request can generate (a serving engine's max_tokens cap):
            # a prediction beyond it would make the request inadmissible for ever
            cap = max(int(sim.memory_tokens) - int(sim.S[rid]), 1)
            self.pred[rid] = min(self.prediction.predict(o, z), cap)

    def left(self, sim: SlotState, rid: int) -> int:
        """Predicted slots left for ``rid`` (this one included, at least 1)."""
        if self.prediction.kind == "exact" or rid not in self.true:
            return int(sim.remaining(rid))
        generated = self.true[rid] - int(sim.remaining(rid))
        return max(self.pred[rid] - generated, 1)


class _PredictingMixin:
    """Shared by the policies with a ``predict`` field: the run's :class:`_Predictor`."""

    def reset(self, rng: np.random.Generator) -> None:
        super().reset(rng)  # type: ignore[misc]
        object.__setattr__(self, "_predictor", _Predictor(self.predict, rng))  # type: ignore[attr-defined]

    def _pred(self) -> _Predictor:
        p = self.__dict__.get("_predictor")
        if p is None:  # used without reset (a bare state in a unit test): exact until reset
            p = _Predictor(self.predict, None)  # type: ignore[attr-defined]
            object.__setattr__(self, "_predictor", p)
        return p

    def _check_predict(self) -> None:
        pred = self.predict  # type: ignore[attr-defined]
        if not isinstance(pred, Prediction):
            raise SpecError(f"{self.spec_name} predict must be a Prediction (e.g. "  # type: ignore[attr-defined]
                            f"Prediction('over', 1.5)), got {pred!r}")

    def _predict_spec(self) -> str:
        pred = self.predict  # type: ignore[attr-defined]
        return "" if pred.kind == "exact" else f",predict={pred.spec()}"


@dataclass(frozen=True)
class MC(_PredictingMixin, Policy):
    """Jaillet et al.'s MC-Benchmark: FCFS with the future-memory check (module docstring).

    Admit the head of the waiting queue, in order, while the running requests and those admitted
    (with their — predicted — decode lengths) keep memory ≤ M at every future slot; stop at the
    first that does not fit. With ``predict=exact`` (the default) it never overflows.

    Parameters
    ----------
    requeue : {"head", "tail"}
    predict : Prediction
        The decode lengths used in the check (default: the true ones).
    max_seqs : int or None
        Keyword-only cap on the active requests.
    """

    predict: Prediction = field(default=EXACT)
    #: With ``predict=exact`` the compiled kernels run it (their rule 6), max_seqs included.
    kernel_caps_seqs: ClassVar[bool] = True

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check_predict()

    def select(self, sim: SlotState) -> int:
        room = self.seq_room(sim)
        if room == 0 or len(sim.queue) == 0:
            return 0
        pred = self._pred()
        m = sim.memory_tokens
        items = [(sim.current_memory(i), pred.left(sim, i)) for i in sim.active_ids()]
        # candidates: the head requests whose prompts alone fit this slot (an upper bound on k)
        usage, head = sim.usage, []
        for rid in sim.queue:
            if len(head) >= room:
                break
            need = sim.activation_memory(rid)
            if usage + need > m:
                break
            usage += need
            pred.see_waiting(sim, rid)
            head.append((need, pred.left(sim, rid)))
        lo, hi = 0, len(head)
        while lo < hi:  # the longest feasible prefix (feasibility is monotone in the prefix)
            mid = (lo + hi + 1) // 2
            if _future_feasible(items + head[:mid], m):
                lo = mid
            else:
                hi = mid - 1
        return lo

    def spec(self) -> str:
        tail = (self._predict_spec() + self._seqs_spec())[1:]
        req = "" if self.requeue == "head" else ("," if tail else "") + "requeue=tail"
        return "mc" + (":" + tail + req if tail or req else "")


@dataclass(frozen=True)
class MCSFPredicted(_PredictingMixin, MCSF):
    """MC-SF with predicted decode lengths: :class:`~numerics.sim.policies.practice.MCSF`'s rule
    (shortest predicted first, longest prefix that passes the future check) on Ô instead of O."""

    predict: Prediction = field(default=EXACT)

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check_predict()

    def select(self, sim: SlotState) -> list[int]:
        room = self.seq_room(sim)
        waiting = list(sim.queue)
        if not waiting or room == 0:
            return []
        pred = self._pred()
        for rid in waiting:
            pred.see_waiting(sim, rid)
        left = {i: pred.left(sim, i) for i in waiting}
        waiting.sort(key=lambda i: (left[i], i))
        active = [(sim.current_memory(i), pred.left(sim, i)) for i in sim.active_ids()]
        lo, hi = 0, min(len(waiting), int(room) if math.isfinite(room) else len(waiting))
        while lo < hi:
            mid = (lo + hi + 1) // 2
            cand = active + [(sim.activation_memory(i), left[i]) for i in waiting[:mid]]
            if _future_feasible(cand, sim.memory_tokens):
                lo = mid
            else:
                hi = mid - 1
        return waiting[:lo]

    def spec(self) -> str:
        tail = (self._predict_spec() + self._seqs_spec())[1:]
        req = "" if self.requeue == "head" else ("," if tail else "") + "requeue=tail"
        return "mcsf" + (":" + tail + req if tail or req else "")
