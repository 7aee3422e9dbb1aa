"""The simulator: the paper's policies against the practical ones, slot by slot.

Entry points: :func:`simulate` (one run → :class:`SimResult`), :func:`replicate` (independent
replications in parallel processes → a DataFrame with confidence intervals), and
:func:`parse_policy` for policy spec strings.
"""

from numerics.sim.engine import ARRIVALS, EVICTION_MODES, SimConfig, WaitingQueue
from numerics.sim.policies import (
    MCSF,
    AlphaProtection,
    ClassBudgets,
    FlowControl,
    Greedy,
    Policy,
    Reserve,
    parse_policy,
)
from numerics.sim.replicate import ci, replicate
from numerics.sim.results import SimResult, simulate

__all__ = [
    "ARRIVALS",
    "EVICTION_MODES",
    "MCSF",
    "AlphaProtection",
    "ClassBudgets",
    "FlowControl",
    "Greedy",
    "Policy",
    "Reserve",
    "SimConfig",
    "SimResult",
    "WaitingQueue",
    "ci",
    "parse_policy",
    "replicate",
    "simulate",
]
