"""flowstab — queueing theory of LLM inference scheduling under a KV-cache memory limit.

The front door: the public API of :mod:`numerics` (workloads, laws, conditions, bounds, planning)
re-exported, plus the ``flowstab`` command line (:mod:`flowstab.cli`). The symbolic theory is in
:mod:`theory`.

Examples
--------
>>> import flowstab as fs
>>> wl = fs.Workload.single(fs.parse_law("100"), fs.parse_law("geom:mean=200"))
>>> round(fs.lambda_max(wl, 50_000), 12)
0.833333333333
"""

from numerics import (
    BudgetLaw,
    FlowstabError,
    FlowTails,
    IndependentLengths,
    JointLengths,
    Plan,
    RequestClass,
    SpecError,
    StepTimeModel,
    TokenLaw,
    TraceError,
    UnstableWorkloadError,
    Workload,
    WorkloadError,
    compute_coupled_capacity,
    flow_rate,
    lambda_max,
    make_plan,
    mean_memory_time,
    memory_time,
    necessary_condition,
    parse_law,
)

__version__ = "0.1.0"


def load_workload(spec: str) -> Workload:
    """A preset name, a workload .toml file or ``trace:PATH`` (see :mod:`numerics.data.loaders`)."""
    from numerics.data.loaders import load_workload as _load

    return _load(spec)


__all__ = [
    "BudgetLaw",
    "FlowTails",
    "FlowstabError",
    "IndependentLengths",
    "JointLengths",
    "Plan",
    "RequestClass",
    "SpecError",
    "StepTimeModel",
    "TokenLaw",
    "TraceError",
    "UnstableWorkloadError",
    "Workload",
    "WorkloadError",
    "__version__",
    "compute_coupled_capacity",
    "flow_rate",
    "lambda_max",
    "load_workload",
    "make_plan",
    "mean_memory_time",
    "memory_time",
    "necessary_condition",
    "parse_law",
]
