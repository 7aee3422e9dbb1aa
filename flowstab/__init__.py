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

import numerics as _numerics
from flowstab._version import __version__
from numerics import (  # noqa: F401 (re-exported: __all__ is built from these names, see _reexported)
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


#: The :mod:`numerics` modules whose names are re-exported lazily: exact tails, budget design and
#: rate regions, imported (through ``numerics.__getattr__``) on first use.
_LAZY_MODULES = ("numerics.analysis.design", "numerics.analysis.exact", "numerics.analysis.regions",
                 "numerics.analysis.waste")
#: The names of :data:`_LAZY_MODULES`, as ``numerics`` lists them for its own lazy import.
_LAZY = tuple(name for name, module in _numerics._LAZY.items() if module in _LAZY_MODULES)


def __getattr__(name: str) -> object:
    """Resolve a name of ``_LAZY`` from :mod:`numerics` on first use."""
    if name in _LAZY:
        return getattr(_numerics, name)
    raise AttributeError(f"module 'flowstab' has no attribute {name!r}")


def _reexported() -> list[str]:
    """The names of ``numerics.__all__`` served here: the objects imported above, and ``_LAZY``."""
    mine, theirs = globals(), vars(_numerics)
    return [name for name in _numerics.__all__
            if name in _LAZY or (name in theirs and mine.get(name) is theirs[name])]


__all__ = ["__version__", "load_workload", *_reexported()]
__all__.sort()
