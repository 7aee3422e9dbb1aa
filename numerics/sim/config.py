r"""The settings of one simulation run, :class:`SimConfig`, with every check and size limit of a run.

A :class:`SimConfig` that constructs is a run that can start: ``__post_init__`` checks each field,
their combinations (warm-up below the horizon, a rate for every arrival process but trace replay,
a Bernoulli rate ≤ 1, a step time for trace replay, the policy's needs of the workload) and the
size limits below, and raises a :class:`~numerics.errors.SettingError` that names the setting (or a
:class:`~numerics.errors.SpecError` for the policy). The front ends (``flowstab simulate``/``compare``,
sweeps, the report) build a SimConfig and let it check; the CLI renames the settings to its flags
(:meth:`SettingError.named <numerics.errors.SettingError.named>`).

Size limits of one run, so that an impossible request is a one-line error rather than a
MemoryError or an int64 overflow: the engine keeps ~80 bytes of arrays per slot and ~150 bytes
per request (10^8 of either is ~10 GB), and the compiled kernel counts tokens in int64.

* :data:`MAX_SLOTS` slots;
* :data:`MAX_EXPECTED_REQUESTS` expected arrivals, λ × slots;
* :data:`~numerics.model.workload.MAX_MEMORY_TOKENS` tokens of KV cache (checked by
  :func:`~numerics.model.workload.ensure_memory`, the one memory check of the package).

Real-engine batching (docs/engines.md): ``batching`` is ``"mixed"`` (the paper's model, the
default: prefill is instant and shares the slot with the decodes), ``"prefill-first"`` (vLLM V0:
a step that prefills decodes nothing) or ``"chunked"`` (vLLM V1 / Sarathi-Serve: prompts are
prefilled in chunks under the per-step token budget ``max_batched_tokens``, which it needs);
``admit_after_preemption=False`` is vLLM V1's rule that a step which preempted admits nothing
(None, the default, means: False for ``chunked``, as in V1, True otherwise).

Examples
--------
>>> from numerics.model.specs import parse_law
>>> from numerics.model.workload import Workload
>>> from numerics.sim.policies import parse_policy
>>> wl = Workload.single(parse_law("20"), parse_law("geom:mean=10"))
>>> cfg = SimConfig(wl, 2000, parse_policy("greedy"), slots=1000, arrival_rate=0.5)
>>> cfg.total_rate, cfg.expected_requests
(0.5, 500.0)
>>> try:
...     SimConfig(wl, 2000, parse_policy("greedy"), slots=10**9, arrival_rate=0.5)
... except WorkloadError as exc:
...     print(exc)
slots 1,000,000,000 is beyond the simulator's limit of 1e+08 slots per run; lower slots
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from numerics.errors import SettingError, WorkloadError
from numerics.model.steptime import StepTimeModel
from numerics.model.workload import MAX_MEMORY_TOKENS, Workload, ensure_memory
from numerics.sim.policies import REQUEUE, Policy, parse_policy

__all__ = [
    "ARRIVALS",
    "BATCHING_MODES",
    "ENGINES",
    "EVICTION_MODES",
    "MAX_EXPECTED_REQUESTS",
    "MAX_MEMORY_TOKENS",
    "MAX_SLOTS",
    "Arrivals",
    "Batching",
    "EngineName",
    "EvictionMode",
    "SimConfig",
    "check_engine",
    "check_policy",
]

#: Per-slot arrival processes; "trace" replays a trace's timestamps through the step time.
Arrivals = Literal["poisson", "deterministic", "bernoulli", "trace"]
ARRIVALS: tuple[Arrivals, ...] = ("poisson", "deterministic", "bernoulli", "trace")
#: What an evicted request keeps: nothing (``recompute``) or its generated tokens.
EvictionMode = Literal["recompute", "keep-progress"]
EVICTION_MODES: tuple[EvictionMode, ...] = ("recompute", "keep-progress")
#: How a step batches prefills with decodes: the paper's model, vLLM V0, vLLM V1 (docs/engines.md).
Batching = Literal["mixed", "prefill-first", "chunked"]
BATCHING_MODES: tuple[Batching, ...] = ("mixed", "prefill-first", "chunked")
#: Which engine runs a config: the compiled twin when it can (``auto``), or one of the two.
EngineName = Literal["auto", "fast", "python"]
ENGINES: tuple[EngineName, ...] = ("auto", "fast", "python")

#: Most slots of one run (the engine keeps ~80 bytes of arrays per slot: 10^8 slots ≈ 8 GB).
MAX_SLOTS = 10**8
#: Most expected arrivals λ × slots of one run (~150 bytes per request: 10^8 ≈ 15 GB).
MAX_EXPECTED_REQUESTS = 10**8

_INT_FIELDS = ("slots", "block_size", "stride", "warmup")


def _is_int(v) -> bool:
    ok = isinstance(v, int | float | np.integer) and not isinstance(v, bool)
    return ok and math.isfinite(v) and int(v) == v


def check_policy(policy: Policy, workload: Workload) -> None:
    """Everything ``policy`` needs of ``workload``, including what a run would only find at its
    first slot (the number of per-class budgets); raise :class:`~numerics.errors.SpecError`.

    :class:`SimConfig` runs the policy's own :meth:`~numerics.sim.policies.Policy.check_workload`;
    front ends that want every mismatch before anything runs call this.
    """
    policy.check_workload(workload)
    policy.check_classes(len(workload.classes))


def check_engine(engine: str) -> EngineName:
    """``engine`` if it is one of :data:`ENGINES`; else a :class:`~numerics.errors.WorkloadError`."""
    if engine not in ENGINES:
        raise WorkloadError(f"engine must be auto, python or fast, got {engine!r}")
    return engine


@dataclass(frozen=True, eq=False)
class SimConfig:
    """Everything one simulation run needs (a frozen, picklable value), checked on construction.

    Parameters
    ----------
    workload : Workload
    memory_tokens : int
        M, the KV-cache size in tokens (≤ :data:`~numerics.model.workload.MAX_MEMORY_TOKENS`).
    policy : Policy or str
        The admission policy, or its spec string (:func:`~numerics.sim.policies.parse_policy`).
    slots : int
        Number of slots simulated (1 … :data:`MAX_SLOTS`).
    arrival_rate : float or None
        Total arrival rate per slot (the class mix is kept); None uses the classes' own rates.
        λ × slots must stay ≤ :data:`MAX_EXPECTED_REQUESTS`.
    arrivals : {"poisson", "deterministic", "bernoulli", "trace"}
        Per-slot arrival process; "trace" replays ``trace`` timestamps through the step time.
    warmup : int
        Slots excluded from the summary statistics, in [0, slots).
    seed : int or None
    block_size : int
        Memory is counted in blocks of this many tokens.
    eviction : {"recompute", "keep-progress"}
    step_time : StepTimeModel or None
        Keeps a wall clock so metrics exist in seconds too.
    stride : int
        Record the time series every ``stride`` slots.
    trace : numerics.data.traces.Trace or None
        For ``arrivals="trace"``: prompts, decodes and timestamps (seconds) to replay.
    batching : {"mixed", "prefill-first", "chunked"}
        How a step batches prefills with decodes (docs/engines.md); "mixed" is the paper's model.
    max_batched_tokens : int or None
        vLLM's ``max_num_batched_tokens``, the tokens one step may process: needed by
        ``chunked`` (decodes first, then prompt chunks), a cap on the prefill tokens of a step
        for ``prefill-first`` (a longer prompt runs alone), not allowed with ``mixed``; at least
        the policy's ``max_seqs`` (vLLM's own check).
    admit_after_preemption : bool or None
        False: a step that evicted a running request admits nothing (vLLM V1). None: False for
        ``chunked``, True otherwise (:attr:`admits_after_preemption`).

    Raises
    ------
    WorkloadError
        A field is invalid or beyond a limit (the message names it and says what to change).
    SpecError
        The policy cannot serve the workload (:meth:`Policy.check_workload
        <numerics.sim.policies.Policy.check_workload>`, e.g. ``reserve`` without ``max=L`` on an
        unbounded decode law).
    """

    workload: Workload
    memory_tokens: int
    policy: Policy
    slots: int = 10_000
    arrival_rate: float | None = None
    arrivals: Arrivals = "poisson"
    warmup: int = 0
    seed: int | None = 0
    block_size: int = 1
    eviction: EvictionMode = "recompute"
    step_time: StepTimeModel | None = None
    stride: int = 1
    trace: object = None
    batching: Batching = "mixed"
    max_batched_tokens: int | None = None
    admit_after_preemption: bool | None = None

    def __post_init__(self) -> None:
        ensure_memory(self.memory_tokens)
        if isinstance(self.policy, str):  # a spec, as the CLI takes it: "greedy", "flow:rate=2"
            object.__setattr__(self, "policy", parse_policy(self.policy))
        if not isinstance(self.policy, Policy):
            raise WorkloadError(f"policy must be a Policy or a policy spec string such as 'greedy' "
                                f"(see parse_policy), got {self.policy!r}")
        for name in _INT_FIELDS:
            v = getattr(self, name)
            if not _is_int(v) or v < (0 if name == "warmup" else 1):
                kind = "a non-negative" if name == "warmup" else "a positive"
                raise SettingError(f"`{name}` must be {kind} integer, got {v!r}", name)
            object.__setattr__(self, name, int(v))
        if self.slots > MAX_SLOTS:
            raise SettingError(f"`slots` {self.slots:,} is beyond the simulator's limit of "
                               f"{MAX_SLOTS:.0e} slots per run; lower `slots`", "slots")
        if self.warmup >= self.slots:
            raise SettingError(f"`warmup` {self.warmup} must be less than `slots` {self.slots}",
                               "warmup", "slots")
        seed = self.seed
        if seed is not None and (
            isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0
        ):
            raise SettingError(f"`seed` must be a non-negative integer or None, got {seed!r}", "seed")
        if self.policy.requeue not in REQUEUE:
            raise WorkloadError(f"the policy's requeue must be head or tail, got {self.policy.requeue!r}")
        self.policy.check_workload(self.workload)
        if self.arrivals not in ARRIVALS:
            raise SettingError(f"`arrivals` must be one of {', '.join(ARRIVALS)}, got {self.arrivals!r}",
                               "arrivals")
        if self.eviction not in EVICTION_MODES:
            raise SettingError(f"`eviction` must be one of {', '.join(EVICTION_MODES)}, got "
                               f"{self.eviction!r}", "eviction")
        if self.step_time is not None and not isinstance(self.step_time, StepTimeModel):
            raise SettingError("`step_time` must be a StepTimeModel (e.g. "
                               f"StepTimeModel.from_spec('const:0.02')) or None, got {self.step_time!r}",
                               "step_time")
        self._check_batching()
        if self.arrivals == "trace":
            self._check_trace()
            return
        rate = self.arrival_rate
        if rate is None and self.workload.rates_per_slot is None:
            raise SettingError(
                f"give an arrival rate (`arrival_rate`, requests per slot): the classes of workload "
                f"{self.workload.name!r} carry no rates", "arrival_rate"
            )
        if rate is not None and (
            isinstance(rate, bool) or not isinstance(rate, int | float | np.integer | np.floating)
            or not math.isfinite(rate) or rate <= 0
        ):
            raise SettingError("the arrival rate (`arrival_rate`) must be > 0 requests per slot, "
                               f"got {rate!r}", "arrival_rate")
        total = self.total_rate
        if total * self.slots > MAX_EXPECTED_REQUESTS:
            raise SettingError(
                f"λ × slots = {total:g} × {self.slots:,} ≈ {total * self.slots:.3g} requests is beyond "
                f"the simulator's limit of {MAX_EXPECTED_REQUESTS:.0e} per run; lower `slots` or "
                "`arrival_rate`", "slots", "arrival_rate"
            )
        if self.arrivals == "bernoulli" and total > 1:
            raise SettingError(f"Bernoulli arrivals need a total rate ≤ 1 per slot, got {total:g} "
                               "(`arrivals` bernoulli admits at most 1 request per slot; lower "
                               "`arrival_rate`)", "arrivals", "arrival_rate")

    def _check_batching(self) -> None:
        """The batching mode, its token budget and the admission rule, alone and together."""
        if self.batching not in BATCHING_MODES:
            raise SettingError(f"`batching` must be one of {', '.join(BATCHING_MODES)}, got "
                               f"{self.batching!r}", "batching")
        budget = self.max_batched_tokens
        if budget is not None:
            if not _is_int(budget) or budget < 1:
                raise SettingError("`max_batched_tokens` must be a positive integer (tokens per step), "
                                   f"got {budget!r}", "max_batched_tokens")
            object.__setattr__(self, "max_batched_tokens", int(budget))
            if self.batching == "mixed":
                raise SettingError("`max_batched_tokens` is a per-step token budget of `batching` "
                                   "prefill-first or chunked; mixed (the paper's model) prefills "
                                   "instantly, without one", "max_batched_tokens", "batching")
            seqs = self.policy.max_seqs
            if seqs is not None and budget < seqs:
                raise SettingError(f"`max_batched_tokens` {budget} must be at least the policy's "
                                   f"max_seqs {seqs} (one token per running request, as vLLM checks)",
                                   "max_batched_tokens")
        elif self.batching == "chunked":
            raise SettingError("`batching` chunked prefills under a per-step token budget: give "
                               "`max_batched_tokens` (e.g. 2048)", "batching", "max_batched_tokens")
        admit = self.admit_after_preemption
        if admit is not None and not isinstance(admit, bool | np.bool_):
            raise SettingError(f"`admit_after_preemption` must be True, False or None, got {admit!r}",
                               "admit_after_preemption")
        if admit is False and self.batching == "prefill-first":
            # a prefill-first step pauses the running requests instead of growing them, so no
            # running request is ever preempted before admission: the rule would do nothing
            raise SettingError("`admit_after_preemption` False has no effect under `batching` "
                               "prefill-first (its prefill steps preempt no running request); use it "
                               "with mixed or chunked", "admit_after_preemption", "batching")

    @property
    def admits_after_preemption(self) -> bool:
        """Whether a step that evicted a running request may still admit: ``admit_after_preemption``,
        or by default False for ``chunked`` (vLLM V1) and True otherwise."""
        if self.admit_after_preemption is None:
            return self.batching != "chunked"
        return bool(self.admit_after_preemption)

    @property
    def uses_step_engine(self) -> bool:
        """True when the run needs the general step loop (any batching option beyond the paper's
        model: a batching mode other than mixed, or no admission after a preemption; Python, or
        its compiled twin :mod:`numerics.sim._kernel_step`); the paper's model runs on the
        event-driven loop (or its compiled twin)."""
        return self.batching != "mixed" or not self.admits_after_preemption

    @property
    def needs_python_engine(self) -> bool:
        """True when an option of this run exists in the Python engine only: the step loop
        (:attr:`uses_step_engine`) or ``max_seqs`` on a policy whose compiled rule does not cap."""
        policy = self.policy
        return self.uses_step_engine or (policy.max_seqs is not None and not policy.kernel_caps_seqs)

    def _check_trace(self) -> None:
        """Trace replay: a trace with timestamps, a step time to map them, and no arrival rate."""
        if self.trace is None:
            raise SettingError("`arrivals` trace replays a trace: give one", "arrivals")
        if getattr(self.trace, "timestamps_s", None) is None:
            source = getattr(self.trace, "source", "the trace")
            raise SettingError(f"{source} has no timestamps to replay with `arrivals` trace", "arrivals")
        if self.step_time is None:
            raise SettingError("`arrivals` trace maps seconds to slots: give `step_time`",
                               "arrivals", "step_time")
        if self.arrival_rate is not None:
            raise SettingError("`arrivals` trace takes its arrival times from the trace; drop "
                               f"`arrival_rate` (got {self.arrival_rate!r})", "arrivals", "arrival_rate")

    @property
    def total_rate(self) -> float:
        """Total arrival rate per slot (NaN for trace replay, whose rate depends on the clock)."""
        if self.arrivals == "trace":
            return float("nan")
        if self.arrival_rate is not None:
            return float(self.arrival_rate)
        return float(self.workload.rates_per_slot.sum())

    @property
    def expected_requests(self) -> float:
        """λ × slots, the expected number of arrivals (NaN for trace replay)."""
        return self.total_rate * self.slots
