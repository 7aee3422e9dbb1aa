"""Exceptions for people: each says what was wrong and what to do about it.

Every error the toolkit raises on bad input derives from :class:`FlowstabError`, so a front end
(the CLI) can catch that one class, print the message on one line and exit with status 2.
"""

from __future__ import annotations

__all__ = [
    "FlowstabError",
    "OutputError",
    "SettingError",
    "SpecError",
    "TraceError",
    "UnstableWorkloadError",
    "WorkloadError",
]


class FlowstabError(ValueError):
    """Base class of every input error raised by flowstab."""


class WorkloadError(FlowstabError):
    """A workload, a length law or a parameter is invalid (negative rate, mass at 0, ...)."""


class SettingError(WorkloadError):
    """A setting of a run is invalid or beyond a limit; the message names the setting.

    Settings are validated once, where they are defined (e.g. :class:`numerics.sim.SimConfig`),
    and the message names each setting between backticks in ``template``. ``str(exc)`` names them
    as the config does; a front end calls :meth:`named` with its own names for them (the CLI's
    flags), so the one check serves every caller.

    Examples
    --------
    >>> exc = SettingError("`slots` = 0 must be ≥ 1; raise `slots`", "slots")
    >>> str(exc)
    'slots = 0 must be ≥ 1; raise slots'
    >>> exc.named({"slots": "--slots"})
    '--slots = 0 must be ≥ 1; raise --slots'
    """

    def __init__(self, template: str, *settings: str) -> None:
        self.template = template
        self.settings = settings
        super().__init__(self.named({}))

    def named(self, names: dict[str, str]) -> str:
        """The message with each setting called ``names.get(setting, setting)``."""
        out = self.template
        for s in self.settings:
            out = out.replace(f"`{s}`", names.get(s, s))
        return out

    def __reduce__(self):
        return (type(self), (self.template, *self.settings))


class SpecError(WorkloadError):
    """A spec string (``geom:mean=200``, ``linear:c0=..``) or a workload file could not be parsed."""


class TraceError(WorkloadError):
    """A trace file is missing, unreadable or lacks the expected columns."""


class UnstableWorkloadError(WorkloadError):
    """No arrival rate is stable for this workload and memory (E[O²] = ∞, or P(S + O > M) > 0)."""


class OutputError(FlowstabError):
    """An output file or folder (``--plot``, ``--out``, a results file) cannot be written."""
