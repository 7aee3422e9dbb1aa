"""The simulator: the paper's policies against the practical ones, slot by slot.

Entry points: :func:`simulate` (one run → :class:`SimResult`), :func:`replicate` (independent
replications in parallel processes → a DataFrame with confidence intervals), and
:func:`parse_policy` for policy spec strings. A run is described by a :class:`SimConfig`
(:mod:`numerics.sim.config`: every check and size limit of a run); policies see the engine through
the :class:`SlotState` protocol (:mod:`numerics.sim.state`).
"""

from numerics.sim.config import (
    ARRIVALS,
    ENGINES,
    EVICTION_MODES,
    MAX_EXPECTED_REQUESTS,
    MAX_MEMORY_TOKENS,
    MAX_SLOTS,
    SimConfig,
    check_policy,
)
from numerics.sim.policies import (
    MCSF,
    AdaptiveFlow,
    AlphaProtection,
    ClassBudgets,
    FlowControl,
    FlowFit,
    Greedy,
    Lookahead,
    Policy,
    Reserve,
    parse_policy,
)
from numerics.sim.replicate import ci, replicate
from numerics.sim.results import SimResult, simulate
from numerics.sim.state import SlotState, WaitingQueue

__all__ = [
    "ARRIVALS",
    "ENGINES",
    "EVICTION_MODES",
    "MAX_EXPECTED_REQUESTS",
    "MAX_MEMORY_TOKENS",
    "MAX_SLOTS",
    "MCSF",
    "AdaptiveFlow",
    "AlphaProtection",
    "ClassBudgets",
    "FlowControl",
    "FlowFit",
    "Greedy",
    "Lookahead",
    "Policy",
    "Reserve",
    "SimConfig",
    "SimResult",
    "SlotState",
    "WaitingQueue",
    "check_policy",
    "ci",
    "parse_policy",
    "replicate",
    "simulate",
]
