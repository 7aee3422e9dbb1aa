"""Exceptions for people: each says what was wrong and what to do about it.

Every error the toolkit raises on bad input derives from :class:`FlowstabError`, so a front end
(the CLI) can catch that one class, print the message on one line and exit with status 2.
"""

from __future__ import annotations

__all__ = [
    "FlowstabError",
    "OutputError",
    "SpecError",
    "TraceError",
    "UnstableWorkloadError",
    "WorkloadError",
]


class FlowstabError(ValueError):
    """Base class of every input error raised by flowstab."""


class WorkloadError(FlowstabError):
    """A workload, a length law or a parameter is invalid (negative rate, mass at 0, ...)."""


class SpecError(WorkloadError):
    """A spec string (``geom:mean=200``, ``linear:c0=..``) or a workload file could not be parsed."""


class TraceError(WorkloadError):
    """A trace file is missing, unreadable or lacks the expected columns."""


class UnstableWorkloadError(WorkloadError):
    """No arrival rate is stable for this workload and memory (E[O²] = ∞, or P(S + O > M) > 0)."""


class OutputError(FlowstabError):
    """An output file or folder (``--plot``, ``--out``, a results file) cannot be written."""
