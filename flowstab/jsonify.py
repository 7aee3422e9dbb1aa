"""JSON output of the front ends: numpy values to Python, non-finite floats to null.

The ``--json`` outputs of the command line and the data block of the HTML report go through
:func:`json_ready` (or :func:`json_default` as ``json.dumps(..., default=...)``), so that the same
values print the same way everywhere.

Examples
--------
>>> import math
>>> import numpy as np
>>> json_ready({"n": np.int64(3), "x": (np.float64(0.5), math.inf), 1: "a"})
{'n': 3, 'x': [0.5, None], '1': 'a'}
>>> json_default(np.float32(0.25)), json_default(object)
(0.25, "<class 'object'>")
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["json_default", "json_ready"]


def json_ready(obj: Any) -> Any:
    """``obj`` made JSON-ready, recursively: dict keys to ``str``, tuples to lists, numpy scalars
    (anything with ``.item()``) to Python scalars, and NaN and ±∞ to None (JSON ``null``)."""
    if isinstance(obj, dict):
        return {str(k): json_ready(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_ready(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, str):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def json_default(x: Any) -> float | str:
    """The ``default=`` of :func:`json.dumps`: ``float(x)`` when that works, else ``str(x)``."""
    try:
        return float(x)
    except (TypeError, ValueError):
        return str(x)
