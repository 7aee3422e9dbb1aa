"""theory — the stability theory of KV-cache-limited LLM serving, in sympy.

Every result is registered once in :data:`theory.registry.REGISTRY` with its ID, statement,
hypotheses, source and LaTeX, and has a numeric twin of the same name in :mod:`numerics`. The
modules mirror their numeric twins by name: :mod:`theory.conditions` ↔
:mod:`numerics.analysis.conditions`, :mod:`theory.capacity` ↔ :mod:`numerics.analysis.capacity`,
:mod:`theory.flow` ↔ :mod:`numerics.analysis.flow`, :mod:`theory.bounds` ↔
:mod:`numerics.analysis.bounds`, :mod:`theory.neighbours` ↔ :mod:`numerics.analysis.neighbours`,
:mod:`theory.queues` ↔ :mod:`numerics.chains.queues`, :mod:`theory.fluid` ↔
:mod:`numerics.chains.fluid`, :mod:`theory.waste` ↔ :mod:`numerics.analysis.waste` and
:mod:`theory.policies` ↔ :mod:`numerics.sim.policies.lookahead`;
:mod:`theory.closed_forms` holds the memory-time closed forms (twins in
:mod:`numerics.analysis.conditions`). This package imports sympy only.
"""

from theory import (
    bounds,
    capacity,
    closed_forms,
    conditions,
    flow,
    fluid,
    neighbours,
    policies,
    queues,
    waste,
)
from theory.bounds import (
    bernstein_bound,
    cantelli_bound,
    chernoff_bound,
    gaussian_approximation,
    hoeffding_bound,
)
from theory.capacity import compute_coupled_capacity
from theory.closed_forms import decode_moments, mean_memory_time, memory_time
from theory.conditions import (
    alg1_memory_safe,
    alg1_peak_memory,
    alg1_stable,
    hard_cap_violation,
    heavy_tail_no_stable_rate,
    lambda_max,
    necessary_condition,
)
from theory.flow import flow_saturated_mean, flow_saturated_variance
from theory.fluid import greedy_throughput_ratio
from theory.neighbours import (
    budget_log_pgf,
    nie_critical_rate,
    overflow_decay_exponent,
    pareto_clipped_second_moment,
    token_budget_capacity,
    zipf_survival,
)
from theory.policies import fit_admission_count, lookahead_chernoff, wait_stability_rate, wait_thresholds
from theory.queues import bulk_queue_mean, kingman_bound
from theory.registry import REGISTRY, Result, get
from theory.waste import waste_bound

__all__ = [
    "REGISTRY",
    "Result",
    "alg1_memory_safe",
    "alg1_peak_memory",
    "alg1_stable",
    "bernstein_bound",
    "bounds",
    "budget_log_pgf",
    "bulk_queue_mean",
    "cantelli_bound",
    "capacity",
    "chernoff_bound",
    "closed_forms",
    "compute_coupled_capacity",
    "conditions",
    "decode_moments",
    "fit_admission_count",
    "flow",
    "flow_saturated_mean",
    "flow_saturated_variance",
    "fluid",
    "gaussian_approximation",
    "get",
    "greedy_throughput_ratio",
    "hard_cap_violation",
    "heavy_tail_no_stable_rate",
    "hoeffding_bound",
    "kingman_bound",
    "lambda_max",
    "lookahead_chernoff",
    "mean_memory_time",
    "memory_time",
    "necessary_condition",
    "neighbours",
    "nie_critical_rate",
    "overflow_decay_exponent",
    "pareto_clipped_second_moment",
    "policies",
    "queues",
    "token_budget_capacity",
    "wait_stability_rate",
    "wait_thresholds",
    "waste",
    "waste_bound",
    "zipf_survival",
]
