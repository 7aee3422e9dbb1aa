"""The results registry: every proposition, bound and closed form, registered once.

Each :class:`Result` carries an ID (``"prop:necessary"``), its statement, hypotheses, source and
LaTeX, and the name of its *numeric twin*: the function of the same name in :mod:`numerics` that
computes the same quantity in floating point. The claims ledger (``proofs_check``) and the tests
iterate over :data:`REGISTRY`; a test fails when an ID has no twin or no check.

Examples
--------
>>> get("prop:necessary").twin
'necessary_condition'
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["REGISTRY", "Result", "get", "register"]


@dataclass(frozen=True)
class Result:
    """One registered result.

    Attributes
    ----------
    id : str
        Stable identifier, ``kind:name`` (def, thm, prop, cor, cond, bound, approx).
    title : str
    statement : str
        Plain-text statement.
    hypotheses : tuple of str
    source : str
        Where it comes from (paper and section, or "derived here").
    latex : str
        The statement in LaTeX (rendered in reports).
    twin : str
        Name of the numeric twin in :mod:`numerics` (and of the sympy function in :mod:`theory`).
    is_bound : bool
        False for approximations that must never be used as guarantees.
    """

    id: str
    title: str
    statement: str
    hypotheses: tuple[str, ...]
    source: str
    latex: str
    twin: str
    is_bound: bool = True


REGISTRY: dict[str, Result] = {}


def register(result: Result) -> Result:
    """Add a result; an ID may be registered only once."""
    if result.id in REGISTRY:
        raise ValueError(f"result {result.id!r} is already registered")
    REGISTRY[result.id] = result
    return result


def get(result_id: str) -> Result:
    """The registered result with this ID (KeyError lists the known IDs)."""
    try:
        return REGISTRY[result_id]
    except KeyError:
        raise KeyError(f"unknown result {result_id!r}; known: {', '.join(sorted(REGISTRY))}") from None
