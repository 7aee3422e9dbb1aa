"""Workloads as users hold them: :func:`as_law` (a law from an int, a spec, a scipy law or samples)
and the table builder behind :meth:`numerics.model.workload.Workload.from_frame`.

Part of :mod:`numerics.model` (re-exported by :mod:`numerics.model.workload`).
"""

from __future__ import annotations

import numbers

import numpy as np

from numerics.errors import WorkloadError
from numerics.model.laws import TokenLaw

__all__ = ["as_law", "workload_from_frame"]


def as_law(law: object, what: str = "law") -> TokenLaw:
    """A :class:`~numerics.model.laws.TokenLaw` from anything that describes a length law.

    Accepted, wherever a law is: a ``TokenLaw`` (as it is); an integer (the constant: ``100``); a
    spec string (``"geom:mean=200,max=2048"``, :func:`numerics.model.specs.parse_law`); a frozen
    scipy.stats law (``scipy.stats.geom(0.005)``, :meth:`TokenLaw.from_scipy`); or a 1-d array,
    list or Series of observed token counts (their empirical law, :meth:`TokenLaw.from_samples`).

    Raises
    ------
    WorkloadError
        For anything else, naming ``what`` and the accepted forms (a spec string's own errors are
        :class:`~numerics.errors.SpecError`, a subclass).

    Examples
    --------
    >>> from scipy import stats
    >>> as_law(100).mean, as_law("uniform:1,3").mean, round(as_law(stats.geom(0.5)).mean, 6)
    (100.0, 2.0, 2.0)
    >>> as_law([1, 1, 2, 4]).mean
    2.0
    """
    if isinstance(law, TokenLaw):
        return law
    if isinstance(law, bool):
        pass  # not a length: falls through to the error
    elif isinstance(law, numbers.Integral) or (isinstance(law, numbers.Real) and float(law).is_integer()):
        return TokenLaw.deterministic(int(law))
    elif isinstance(law, str):
        from numerics.model.specs import parse_law  # specs builds on this module

        return parse_law(law)
    elif hasattr(law, "dist") and hasattr(law, "sf"):
        return TokenLaw.from_scipy(law)
    elif not isinstance(law, dict | set) and np.ndim(law) == 1:
        values = np.asarray(law)
        if values.dtype.kind in "iuf":
            return TokenLaw.from_samples(values, f"empirical {what} ({values.size} samples)")
    raise WorkloadError(
        f"{what}: expected a length law — a TokenLaw, an integer, a spec string such as "
        f"'geom:mean=200', a frozen scipy.stats law or a 1-d array of token counts; got "
        f"{type(law).__name__}"
    )


def workload_from_frame(cls, frame, prompt: str = "prompt", decode: str = "decode", *,
                        class_column: str | None = None, joint: bool = True, name: str = "frame"):
    """:meth:`Workload.from_frame <numerics.model.workload.Workload.from_frame>` (``cls`` is the
    workload class; see there for the parameters)."""
    from numerics.model.workload import IndependentLengths, JointLengths, RequestClass

    cols = list(frame.columns if hasattr(frame, "columns") else frame.keys())
    for col in (prompt, decode, *(() if class_column is None else (class_column,))):
        if col not in cols:
            have = ", ".join(map(str, cols))
            raise WorkloadError(f"from_frame: no column {col!r}; the table has {have}")

    def column(col: str) -> np.ndarray:
        x = np.asarray(frame[col])
        if x.ndim != 1 or x.size == 0:
            raise WorkloadError(f"from_frame: column {col!r} must be a non-empty 1-d column")
        return x

    s, o = column(prompt), column(decode)
    for col, x in ((prompt, s), (decode, o)):
        if x.dtype.kind not in "iuf":
            raise WorkloadError(f"from_frame: column {col!r} must hold token counts (numbers), got "
                                f"{x.dtype} values such as {x[0]!r}")
    if s.size != o.size:
        raise WorkloadError(f"from_frame: columns {prompt!r} and {decode!r} differ in length")
    if class_column is None:
        labels, index = [name], np.zeros(s.size, dtype=np.int64)
    else:
        raw = column(class_column)
        if raw.size != s.size:
            raise WorkloadError(f"from_frame: column {class_column!r} differs in length")
        uniq, first, index = np.unique(raw.astype(str), return_index=True, return_inverse=True)
        order = np.argsort(first)  # classes in order of first appearance
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        labels, index = [str(u) for u in uniq[order]], rank[index]
    classes, counts = [], []
    for k, label in enumerate(labels):
        sk, ok = s[index == k], o[index == k]
        lengths = (JointLengths.from_samples(sk, ok, f"{label} (joint empirical, {sk.size} rows)")
                   if joint else IndependentLengths(as_law(sk, "prompt"), as_law(ok, "decode")))
        classes.append(RequestClass(lengths, None, label))
        counts.append(sk.size)
    return cls(tuple(classes), name, source=f"table ({s.size} rows)",
               weights=None if len(classes) == 1 else tuple(counts))
