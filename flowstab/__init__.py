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

from flowstab._version import __version__
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


def load_workload(spec: str) -> Workload:
    """A preset name, a workload .toml file or ``trace:PATH`` (see :mod:`numerics.data.loaders`)."""
    from numerics.data.loaders import load_workload as _load

    return _load(spec)


#: Names of :mod:`numerics` re-exported lazily: exact tails, rate regions and budget design,
#: imported (through ``numerics.__getattr__``) on first use.
_LAZY = (
    "DesignInfeasibleError",
    "DesignResult",
    "ExactTail",
    "alg1_admissible",
    "alg1_maximal_budgets",
    "alg1_randomized_boundary",
    "alg1_staircase",
    "design_budgets",
    "design_exact_overflow",
    "design_rates",
    "exact_flow_rate",
    "exact_overflow",
    "exact_tail",
    "exact_tail_per_class",
    "flow_region_boundary",
    "necessary_vertices",
    "worst_case_memory_times",
)


def __getattr__(name: str) -> object:
    """Resolve a name of ``_LAZY`` from :mod:`numerics` on first use."""
    if name in _LAZY:
        import numerics

        return getattr(numerics, name)
    raise AttributeError(f"module 'flowstab' has no attribute {name!r}")


__all__ = [
    "BudgetLaw",
    "DesignInfeasibleError",
    "DesignResult",
    "ExactTail",
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
    "alg1_admissible",
    "alg1_maximal_budgets",
    "alg1_randomized_boundary",
    "alg1_staircase",
    "compute_coupled_capacity",
    "design_budgets",
    "design_exact_overflow",
    "design_rates",
    "exact_flow_rate",
    "exact_overflow",
    "exact_tail",
    "exact_tail_per_class",
    "flow_rate",
    "flow_region_boundary",
    "lambda_max",
    "load_workload",
    "make_plan",
    "mean_memory_time",
    "memory_time",
    "necessary_condition",
    "necessary_vertices",
    "parse_law",
    "worst_case_memory_times",
]
