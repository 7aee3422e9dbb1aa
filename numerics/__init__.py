"""numerics — workloads, length laws, stability conditions, tail bounds, exact tails and planning.

The numeric twins of :mod:`theory`: every registered result has a function of the same name here.
The package is built in layers, each importing only those below it: :mod:`numerics.model`
(workloads and laws), :mod:`numerics.data` (traces, presets, files), :mod:`numerics.analysis`
(conditions, bounds, exact tails, planning, regions, design), :mod:`numerics.sim` (the simulator),
then :mod:`numerics.chains`, :mod:`numerics.sweep` and :mod:`numerics.calibration`.
Importing this package loads numpy, scipy and pandas only (never cvxpy, matplotlib, torch, numba):
the names in ``_LAZY`` are imported on first use.
"""

from numerics.analysis.bounds import (
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
from numerics.analysis.capacity import compute_coupled_capacity, rate_per_second
from numerics.analysis.conditions import (
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
from numerics.analysis.flow import flow_saturated_mean, flow_saturated_variance
from numerics.analysis.plan import Plan, make_plan
from numerics.errors import (
    FlowstabError,
    SpecError,
    TraceError,
    UnstableWorkloadError,
    WorkloadError,
)
from numerics.model.budget import BudgetLaw
from numerics.model.laws import TokenLaw
from numerics.model.specs import parse_law
from numerics.model.steptime import StepTimeModel
from numerics.model.workload import IndependentLengths, JointLengths, RequestClass, Workload

_LAZY = {
    "DesignInfeasibleError": "numerics.analysis.design",
    "DesignResult": "numerics.analysis.design",
    "design_budgets": "numerics.analysis.design",
    "design_exact_overflow": "numerics.analysis.design",
    "design_rates": "numerics.analysis.design",
    "worst_case_memory_times": "numerics.analysis.design",
    "ExactTail": "numerics.analysis.exact",
    "exact_flow_rate": "numerics.analysis.exact",
    "exact_overflow": "numerics.analysis.exact",
    "exact_tail": "numerics.analysis.exact",
    "exact_tail_per_class": "numerics.analysis.exact",
    "alg1_admissible": "numerics.analysis.regions",
    "alg1_maximal_budgets": "numerics.analysis.regions",
    "alg1_randomized_boundary": "numerics.analysis.regions",
    "alg1_staircase": "numerics.analysis.regions",
    "flow_region_boundary": "numerics.analysis.regions",
    "necessary_vertices": "numerics.analysis.regions",
    "load_workload": "numerics.data.loaders",
    "load_preset": "numerics.data.presets",
    "PRESETS": "numerics.data.presets",
    "DEFAULT_PRESET": "numerics.data.presets",
    "load_trace": "numerics.data.traces",
    "Trace": "numerics.data.traces",
    "budget_log_pgf": "numerics.analysis.neighbours",
    "bulk_queue_mean": "numerics.chains.queues",
    "greedy_throughput_ratio": "numerics.chains.fluid",
    "kingman_bound": "numerics.chains.queues",
    "nie_critical_rate": "numerics.analysis.neighbours",
    "overflow_decay_exponent": "numerics.analysis.neighbours",
    "pareto_clipped_second_moment": "numerics.analysis.neighbours",
    "token_budget_capacity": "numerics.analysis.neighbours",
    "zipf_survival": "numerics.analysis.neighbours",
    "WasteBound": "numerics.analysis.waste",
    "WasteRate": "numerics.analysis.waste",
    "waste_bound": "numerics.analysis.waste",
    "waste_certificate": "numerics.analysis.waste",
    "waste_rate": "numerics.analysis.waste",
    "fit_admission_count": "numerics.sim.policies.lookahead",
    "lookahead_chernoff": "numerics.sim.policies.lookahead",
    "wait_stability_rate": "numerics.sim.policies.wait",
    "wait_thresholds": "numerics.sim.policies.wait",
}


def __getattr__(name: str) -> object:
    """Import a name of ``_LAZY`` from its module on first use."""
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
    "DesignInfeasibleError",
    "DesignResult",
    "ExactTail",
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
    "WasteBound",
    "WasteRate",
    "Workload",
    "WorkloadError",
    "alg1_admissible",
    "alg1_maximal_budgets",
    "alg1_memory_safe",
    "alg1_peak_memory",
    "alg1_randomized_boundary",
    "alg1_stable",
    "alg1_staircase",
    "bernstein_bound",
    "budget_log_pgf",
    "bulk_queue_mean",
    "cantelli_bound",
    "chernoff_bound",
    "compute_coupled_capacity",
    "design_budgets",
    "design_exact_overflow",
    "design_rates",
    "exact_flow_rate",
    "exact_overflow",
    "exact_tail",
    "exact_tail_per_class",
    "fit_admission_count",
    "flow_rate",
    "flow_region_boundary",
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
    "lookahead_chernoff",
    "make_plan",
    "mean_memory_time",
    "memory_time",
    "necessary_condition",
    "necessary_vertices",
    "nie_critical_rate",
    "overflow_decay_exponent",
    "pareto_clipped_second_moment",
    "parse_law",
    "rate_per_second",
    "token_budget_capacity",
    "wait_stability_rate",
    "wait_thresholds",
    "waste_bound",
    "waste_certificate",
    "waste_rate",
    "worst_case_memory_times",
    "zipf_survival",
]
