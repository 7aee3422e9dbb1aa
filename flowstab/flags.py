"""The command-line names of the settings that the configs check (one map for every front end).

Settings are validated once, where they are defined (:class:`numerics.sim.SimConfig`,
:func:`numerics.model.workload.ensure_memory`); their :class:`~numerics.errors.SettingError` names
each setting, and the front ends rename it to the flag a user types with :func:`as_flags`.

Examples
--------
>>> from numerics.errors import SettingError
>>> str(as_flags(SettingError("`slots` 0 must be ≥ 1", "slots")))
'--slots 0 must be ≥ 1'
"""

from __future__ import annotations

from numerics.errors import SettingError, WorkloadError

__all__ = ["FLAG_OF_SETTING", "as_flags"]

#: The flag of each run setting.
FLAG_OF_SETTING = {
    "memory": "--memory", "slots": "--slots", "warmup": "--warmup", "seed": "--seed",
    "block_size": "--block-size", "arrival_rate": "--arrival-rate", "arrivals": "--arrivals",
    "eviction": "--eviction", "step_time": "--step-time", "batching": "--batching",
    "max_batched_tokens": "--max-batched-tokens",
    "admit_after_preemption": "--[no-]admit-after-preemption",
}


def as_flags(exc: SettingError) -> WorkloadError:
    """The same error, its settings named by their flags (raise it ``from None``)."""
    return WorkloadError(exc.named(FLAG_OF_SETTING))
