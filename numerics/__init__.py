"""flowstab.numerics — workloads, length laws, stability conditions, tail bounds and planning.

The numeric twins of :mod:`theory`: every registered result has a function of the same name here.
Importing this package loads numpy, scipy and pandas only (never cvxpy, matplotlib, torch, numba).
"""

from numerics.bounds import (
    BOUNDS,
    VALID_BOUNDS,
    BoundNotApplicable,
    FlowRate,
    FlowTails,
    bernstein_bound,
    cantelli_bound,
    chernoff_bound,
    flow_rate,
    gaussian_approximation,
    hoeffding_bound,
)
from numerics.capacity import compute_coupled_capacity, rate_per_second
from numerics.errors import (
    FlowstabError,
    SpecError,
    TraceError,
    UnstableWorkloadError,
    WorkloadError,
)
from numerics.flow import BudgetLaw, flow_saturated_mean, flow_saturated_variance
from numerics.laws import TokenLaw
from numerics.plan import Plan, make_plan
from numerics.specs import parse_law
from numerics.stability import (
    alg1_memory_safe,
    alg1_peak_memory,
    alg1_stable,
    hard_cap_violation,
    heavy_tail_no_stable_rate,
    lambda_max,
    lambda_max_from,
    mean_memory_time,
    memory_time,
    necessary_condition,
)
from numerics.steptime import StepTimeModel
from numerics.workload import IndependentLengths, JointLengths, RequestClass, Workload

_LAZY = {
    "load_workload": "numerics.loaders",
    "load_preset": "numerics.presets",
    "PRESETS": "numerics.presets",
    "DEFAULT_PRESET": "numerics.presets",
    "load_trace": "numerics.traces",
    "Trace": "numerics.traces",
    "budget_log_pgf": "numerics.extensions",
    "bulk_queue_mean": "numerics.markov",
    "greedy_throughput_ratio": "numerics.fluid",
    "kingman_bound": "numerics.markov",
    "nie_critical_rate": "numerics.extensions",
    "overflow_decay_exponent": "numerics.extensions",
    "pareto_clipped_second_moment": "numerics.extensions",
    "token_budget_capacity": "numerics.extensions",
    "zipf_survival": "numerics.extensions",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'numerics' has no attribute {name!r}")


__all__ = [
    "BOUNDS",
    "DEFAULT_PRESET",
    "PRESETS",
    "VALID_BOUNDS",
    "BoundNotApplicable",
    "BudgetLaw",
    "FlowRate",
    "FlowTails",
    "FlowstabError",
    "IndependentLengths",
    "JointLengths",
    "Plan",
    "RequestClass",
    "SpecError",
    "StepTimeModel",
    "TokenLaw",
    "Trace",
    "TraceError",
    "UnstableWorkloadError",
    "Workload",
    "WorkloadError",
    "alg1_memory_safe",
    "alg1_peak_memory",
    "alg1_stable",
    "bernstein_bound",
    "budget_log_pgf",
    "bulk_queue_mean",
    "cantelli_bound",
    "chernoff_bound",
    "compute_coupled_capacity",
    "flow_rate",
    "flow_saturated_mean",
    "flow_saturated_variance",
    "gaussian_approximation",
    "greedy_throughput_ratio",
    "hard_cap_violation",
    "heavy_tail_no_stable_rate",
    "hoeffding_bound",
    "kingman_bound",
    "lambda_max",
    "lambda_max_from",
    "load_preset",
    "load_trace",
    "load_workload",
    "make_plan",
    "mean_memory_time",
    "memory_time",
    "necessary_condition",
    "nie_critical_rate",
    "overflow_decay_exponent",
    "pareto_clipped_second_moment",
    "parse_law",
    "rate_per_second",
    "token_budget_capacity",
    "zipf_survival",
]
