r"""Step-time models: seconds per slot as a function of the batch.

One slot is one decode iteration; its wall-clock duration τ depends on what the iteration does:

* ``const``: :math:`\tau = c_0` (Nie–Si–Zhou's representative batch time :math:`\bar b`);
* ``linear``: :math:`\tau = c_0 + c_b B + c_k K + c_p P` with B the batch size (active
  requests), K the KV tokens resident and P the prefill tokens of the iteration (weights read,
  per-sequence overhead, KV reads, prefill compute);
* ``staircase``: :math:`\tau = c + a\lceil (B + P)/b_0 \rceil` in the iteration's token load
  (Li–Dai–Peng; decode tokens plus prefill tokens).

What B, K and P are in a step depends on how the engine batches (docs/engines.md): B is the
number of requests that emit a token in the step, K the KV tokens of the requests the step
processes, P the prompt tokens it prefills (re-prefills of S + g tokens after a keep-progress
eviction included). In the paper's model every active request emits, so B is the active count and
K all resident tokens; a prefill-first step (vLLM V0) that prefills emits only the new requests'
first tokens; a chunked step (vLLM V1) counts only the prompt chunk it processed.

Spec strings: ``const:0.05``, ``linear:c0=0.02,cb=1e-4,ck=1e-7[,cp=..]``,
``staircase:c=0.01128,a=0.03547,b0=128``.

Examples
--------
>>> tau = StepTimeModel.from_spec("linear:c0=0.02,cb=1e-4,ck=1e-7")
>>> round(float(tau.seconds(batch=100, kv_tokens=50_000)), 6)
0.035
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from numerics.errors import SpecError

__all__ = ["StepTimeKind", "StepTimeModel"]

#: The step-time model families (the ``kind`` of a :class:`StepTimeModel`).
StepTimeKind = Literal["const", "linear", "staircase"]

_PARAMS = {
    "const": ("c0",),
    "linear": ("c0", "cb", "ck", "cp"),
    "staircase": ("c", "a", "b0"),
}


@dataclass(frozen=True)
class StepTimeModel:
    """τ(batch, kv_tokens, prefill_tokens) in seconds per slot.

    Parameters
    ----------
    kind : {"const", "linear", "staircase"}
    c0, cb, ck, cp : float
        Linear coefficients (``const`` uses c0 only): seconds, seconds per request, per KV token,
        per prefill token.
    c, a, b0 : float
        Staircase: τ = c + a·⌈(batch + prefill)/b0⌉.
    """

    kind: StepTimeKind = "const"
    c0: float = 0.0
    cb: float = 0.0
    ck: float = 0.0
    cp: float = 0.0
    c: float = 0.0
    a: float = 0.0
    b0: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in _PARAMS:
            raise SpecError(f"step-time kind must be one of {', '.join(_PARAMS)}, got {self.kind!r}")
        for name in ("c0", "cb", "ck", "cp", "c", "a", "b0"):
            v = getattr(self, name)
            if not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
                raise SpecError(f"step-time coefficient {name} must be finite and ≥ 0, got {v!r}")
        if self.kind in ("const", "linear") and self.c0 <= 0 and self.kind == "const":
            raise SpecError(f"const step time must be > 0 seconds, got {self.c0!r}")
        if self.kind == "staircase" and (self.b0 <= 0 or self.c + self.a <= 0):
            raise SpecError("staircase step time needs b0 > 0 and c + a > 0")

    @classmethod
    def from_spec(cls, spec: str) -> StepTimeModel:
        """Parse ``const:SECONDS``, ``linear:c0=..,cb=..,ck=..[,cp=..]`` or ``staircase:c=..,a=..,b0=..``."""
        from numerics.model.specs import parse_params

        if not isinstance(spec, str) or ":" not in spec:
            raise SpecError(
                f"step time {spec!r}: expected const:SECONDS, linear:c0=..,cb=..,ck=.. or "
                "staircase:c=..,a=..,b0=.."
            )
        kind, _, args = spec.partition(":")
        kind = kind.strip().lower()
        if kind not in _PARAMS:
            raise SpecError(f"step time {spec!r}: unknown kind {kind!r} (const, linear, staircase)")
        pos, kw = parse_params(args, spec)
        allowed = _PARAMS[kind]
        if kind == "const" and pos:
            if len(pos) != 1 or kw:
                raise SpecError(f"step time {spec!r}: const takes one number of seconds")
            kw = {"c0": pos[0]}
        elif pos:
            raise SpecError(f"step time {spec!r}: give {kind} coefficients as key=value")
        extra = set(kw) - set(allowed)
        if extra:
            raise SpecError(
                f"step time {spec!r}: {kind} takes {', '.join(allowed)}; unknown {', '.join(sorted(extra))}"
            )
        if kind == "staircase" and set(kw) != set(allowed):
            raise SpecError(f"step time {spec!r}: staircase needs c, a and b0")
        if kind == "linear" and "c0" not in kw:
            raise SpecError(f"step time {spec!r}: linear needs at least c0")
        return cls(kind=kind, **kw)

    def seconds(self, batch: ArrayLike = 0.0, kv_tokens: ArrayLike = 0.0,
                prefill_tokens: ArrayLike = 0.0) -> np.ndarray | float:
        """τ for a slot with ``batch`` active requests, ``kv_tokens`` resident, ``prefill_tokens``.

        Elementwise over array arguments (broadcast); scalar arguments give a NumPy scalar.
        """
        if self.kind == "const":
            return self.c0 + 0.0 * np.asarray(batch, dtype=float)
        if self.kind == "linear":
            return (
                self.c0
                + self.cb * np.asarray(batch, dtype=float)
                + self.ck * np.asarray(kv_tokens, dtype=float)
                + self.cp * np.asarray(prefill_tokens, dtype=float)
            )
        load = np.asarray(batch, dtype=float) + np.asarray(prefill_tokens, dtype=float)
        return self.c + self.a * np.ceil(load / self.b0)

    def to_spec(self) -> str:
        """The spec string that :meth:`from_spec` parses back to this model."""
        names = _PARAMS[self.kind]
        return f"{self.kind}:" + ",".join(f"{n}={getattr(self, n):g}" for n in names)
