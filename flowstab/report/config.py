"""What one report covers: :class:`ReportConfig`, its defaults and validation, and the output folder.

The defaults are chosen so that ``flowstab report`` with no flags covers the embedded default
workload on a 131 072-token KV cache in about a minute: :data:`DEFAULT_SLOTS` slots per run,
:data:`DEFAULT_REPLICATIONS` replications per policy and arrival rate, and the step-time model
:data:`DEFAULT_STEP_TIME` fitted to measured decode iterations (see :data:`STEP_TIME_PROVENANCE`).

Examples
--------
>>> from numerics.model.specs import parse_law
>>> from numerics.model.workload import Workload
>>> wl = Workload.single(parse_law("100"), parse_law("200"), name="example")
>>> ReportConfig(wl, 50_000, arrival_rates=[1, 0.5]).arrival_rates
(1.0, 0.5)
>>> ReportConfig(wl, 50_000, epsilon=2.0)
Traceback (most recent call last):
...
numerics.errors.WorkloadError: epsilon must lie in (0, 1), got 2.0
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from numerics.errors import FlowstabError, WorkloadError
from numerics.model.steptime import StepTimeModel
from numerics.model.workload import Workload

__all__ = [
    "CI_LEVEL",
    "DEFAULT_MEMORY_TOKENS",
    "DEFAULT_REPLICATIONS",
    "DEFAULT_SLOTS",
    "DEFAULT_STEP_TIME",
    "DEFAULT_STEP_TIME_SPEC",
    "DEFAULT_WASTE_TARGET",
    "LOAD_OF_FLOW_RATE",
    "LOAD_OF_LAMBDA_MAX",
    "SAME_RATE_RTOL",
    "STEP_TIME_PROVENANCE",
    "Budget",
    "ReportConfig",
    "ReportOutputError",
    "check_out_dir",
]

DEFAULT_MEMORY_TOKENS = 131_072
#: Slots per simulated run: ~100 mean decode lengths of the default workload (E[O] ≈ 211), and
#: MC-SF (Python engine, ~0.1–0.2 ms per slot) still fits in the report's time budget.
DEFAULT_SLOTS = 20_000
#: Independent replications per policy and arrival rate (for 95% Student-t intervals).
DEFAULT_REPLICATIONS = 5
CI_LEVEL = 0.95
#: The default arrival rates simulated, as fractions of r*(ε) (inside flow control's admissible
#: range) and of λ_max (heavy traffic, where only a memory-aware greedy policy can keep up).
LOAD_OF_FLOW_RATE = 0.9
LOAD_OF_LAMBDA_MAX = 0.9
#: δ of the waste-certified rate shown beside r*(ε) (docs/theory.md §13): at most 1% of the
#: tokens emitted are thrown away by recompute evictions.
DEFAULT_WASTE_TARGET = 0.01
#: Two default rates closer than this (relative) are simulated once.
SAME_RATE_RTOL = 0.02

#: τ = c0 + cb·B seconds per decode iteration with B requests in the batch.
DEFAULT_STEP_TIME_SPEC = "linear:c0=0.02891,cb=0.0003343"
DEFAULT_STEP_TIME = StepTimeModel.from_spec(DEFAULT_STEP_TIME_SPEC)
#: Where :data:`DEFAULT_STEP_TIME` comes from (shown in the report).
STEP_TIME_PROVENANCE = (
    "least-squares fit of token_time (ms per decode iteration) on batch_size over the 105 rows "
    "model = llama2-70b, hardware = h100-80gb, tensor_parallel = 4 of splitwise-sim's measured "
    "data/perf_model.csv (Mutinifni/splitwise-sim @ 8f99e7d, MIT; Patel et al., Splitwise, "
    "ISCA 2024): c0 = 28.91 ms, cb = 0.3343 ms per request, R² = 0.968. Batches of 1–64 were "
    "measured, so larger batches extrapolate; the time per iteration hardly changes with the "
    "prompt length at batch 1 (128–8 192 tokens), so no KV-token term (ck) is fitted."
)

#: Budget laws of flow control a report may use.
Budget = Literal["randomized", "deterministic", "poisson"]


class ReportOutputError(FlowstabError):
    """The report's output folder cannot be created or written."""


@dataclass(frozen=True, eq=False)
class ReportConfig:
    """What one report covers.

    Parameters
    ----------
    workload : Workload
    memory_tokens : int
        KV-cache size M in tokens.
    epsilon : float
        Target overflow probability per slot for r*(ε), in (0, 1).
    waste_target : float or None
        δ in (0, 1) for the waste-certified rate shown beside r*(ε): the largest rate whose
        certified fraction of emitted tokens thrown away by recompute evictions is at most δ
        (docs/theory.md §13); None leaves it out. Not applicable (and said so) for unbounded laws.
    budget : {"randomized", "deterministic", "poisson"}
        Activation budget law of flow control.
    step_time : StepTimeModel or None
        Maps slots to seconds; None leaves out every per-second number.
    arrival_rates : tuple of float or None
        Total arrival rates (requests/slot) to simulate; None: the workload's own rate if its
        classes carry rates, else :data:`LOAD_OF_FLOW_RATE`·r*(ε) and :data:`LOAD_OF_LAMBDA_MAX`·λ_max.
    slots, replications, seed : int
        Per simulated run; replication i of every policy uses the i-th child seed of
        ``SeedSequence(seed)`` (common random numbers across policies).
    simulate, verify : bool
        Run the simulation and the claims ledger.
    claims : tuple of str or None
        Claim IDs to verify; None: :func:`flowstab.report.compute.report_claims`.
    command : str
        The command line shown in the report's provenance.
    """

    workload: Workload
    memory_tokens: int = DEFAULT_MEMORY_TOKENS
    epsilon: float = 1e-6
    waste_target: float | None = DEFAULT_WASTE_TARGET
    budget: Budget = "randomized"
    step_time: StepTimeModel | None = DEFAULT_STEP_TIME
    arrival_rates: tuple[float, ...] | None = None
    slots: int = DEFAULT_SLOTS
    replications: int = DEFAULT_REPLICATIONS
    seed: int = 0
    simulate: bool = True
    verify: bool = True
    claims: tuple[str, ...] | None = None
    command: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.workload, Workload):
            raise WorkloadError(f"workload must be a Workload, got {type(self.workload).__name__}")
        if not (isinstance(self.epsilon, float | int) and 0 < self.epsilon < 1):
            raise WorkloadError(f"epsilon must lie in (0, 1), got {self.epsilon!r}")
        wt = self.waste_target
        if wt is not None and (isinstance(wt, bool) or not isinstance(wt, float | int) or not 0 < wt < 1):
            raise WorkloadError(f"the waste target must lie in (0, 1) or be None, got {wt!r}")
        if self.budget not in get_args(Budget):
            raise WorkloadError(f"budget must be randomized, deterministic or poisson, got {self.budget!r}")
        for name, least in (("slots", 1), ("replications", 1), ("seed", 0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < least:
                raise WorkloadError(f"{name} must be an integer ≥ {least}, got {v!r}")
        if self.arrival_rates is not None:
            rates = tuple(float(r) for r in self.arrival_rates)
            if not rates or any(not math.isfinite(r) or r <= 0 for r in rates):
                raise WorkloadError(
                    f"arrival rates must be positive numbers of requests per slot, got {self.arrival_rates!r}"
                )
            object.__setattr__(self, "arrival_rates", rates)
        if self.claims is not None:
            object.__setattr__(self, "claims", tuple(self.claims))


def check_out_dir(out_dir: str | os.PathLike, overwrite: bool = True) -> Path:
    """Create ``out_dir`` if needed and check that ``report.html`` can be written there.

    Raises :class:`ReportOutputError` (before anything is computed) when ``out_dir`` is a file,
    cannot be created, or is not writable, or (without ``overwrite``) already holds a
    ``report.html``.
    """
    path = Path(out_dir)
    if path.exists() and not path.is_dir():
        raise ReportOutputError(f"--out {path}: exists and is not a folder; give a folder name")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportOutputError(f"--out {path}: cannot create the folder ({exc.strerror or exc})") from None
    target = path / "report.html"
    if not os.access(path, os.W_OK | os.X_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise ReportOutputError(f"--out {path}: not writable; choose another folder with --out")
    if target.exists() and not overwrite:
        raise ReportOutputError(f"--out {path}: {target} exists; pass --overwrite to replace it, or "
                                "choose another folder with --out")
    return path
