"""The chains layer: Markov chains and fluid limits of the scheduled system.

The activation queue (:mod:`~numerics.chains.queues`), the exact chain of a small complete system
under the simulator's own policy objects (:mod:`~numerics.chains.dtmc`) and the fluid model
(:mod:`~numerics.chains.fluid`). Built on :mod:`numerics.model`, :mod:`numerics.analysis` and
:mod:`numerics.sim` (the chain runs the simulator's policies).
"""

__all__: list[str] = []
