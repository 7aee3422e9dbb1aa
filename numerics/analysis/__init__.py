"""The analysis layer: what the theory says about a workload, computed.

Necessary conditions (:mod:`~numerics.analysis.conditions`), compute-coupled capacity
(:mod:`~numerics.analysis.capacity`), the saturated law of flow control's memory
(:mod:`~numerics.analysis.flow`), tail bounds (:mod:`~numerics.analysis.bounds`), exact tails
(:mod:`~numerics.analysis.exact`), the planner (:mod:`~numerics.analysis.plan`), rate regions
(:mod:`~numerics.analysis.regions`), budget design (:mod:`~numerics.analysis.design`) and the
neighbouring papers' results (:mod:`~numerics.analysis.neighbours`). Each module is the numeric
twin of the :mod:`theory` module of the same name. Built on :mod:`numerics.model`.
"""

__all__: list[str] = []
