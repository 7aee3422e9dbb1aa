"""The model layer: what a workload *is*.

Length laws (:mod:`~numerics.model.laws`), their text specs (:mod:`~numerics.model.specs`), request
classes and workloads (:mod:`~numerics.model.workload`), the activation budget law
(:mod:`~numerics.model.budget`) and step-time models (:mod:`~numerics.model.steptime`).
It imports nothing above it: every other layer takes these objects.
"""

__all__: list[str] = []
