"""The data layer: workloads from real traces and files.

Trace readers (:mod:`~numerics.data.traces`), the embedded presets fitted from public traces
(:mod:`~numerics.data.presets`), workload files (:mod:`~numerics.data.loaders`), law fitting
(:mod:`~numerics.data.fitting`) and the one data-folder setting (:mod:`~numerics.data.paths`).
Built on :mod:`numerics.model` only.
"""

__all__: list[str] = []
