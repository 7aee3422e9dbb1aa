"""flowstab.theory — the stability theory of KV-cache-limited LLM serving, in sympy.

Every result is registered once in :data:`theory.registry.REGISTRY` with its ID, statement,
hypotheses, source and LaTeX, and has a numeric twin of the same name in :mod:`numerics`.
This package imports sympy only.
"""

from theory import bounds, capacity, closed_forms, conditions, flow
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
from theory.registry import REGISTRY, Result, get

__all__ = [
    "REGISTRY",
    "Result",
    "alg1_memory_safe",
    "alg1_peak_memory",
    "alg1_stable",
    "bernstein_bound",
    "bounds",
    "cantelli_bound",
    "capacity",
    "chernoff_bound",
    "closed_forms",
    "compute_coupled_capacity",
    "conditions",
    "decode_moments",
    "flow",
    "flow_saturated_mean",
    "flow_saturated_variance",
    "gaussian_approximation",
    "get",
    "hard_cap_violation",
    "heavy_tail_no_stable_rate",
    "hoeffding_bound",
    "lambda_max",
    "mean_memory_time",
    "memory_time",
    "necessary_condition",
]
