"""Load a :class:`~numerics.model.workload.Workload` from a preset name, a TOML file or a trace.

:func:`load_workload` takes one string, as the CLI's ``--workload`` does:

* a preset name (``azure-conv``, ``azure-code``, ``sharegpt``, ``mooncake``; see
  :mod:`numerics.data.presets`);
* ``trace:PATH`` — the joint empirical law of a trace file (:func:`numerics.data.traces.load_trace`);
  one class per label when the trace has a ``class`` column, each weighing its share of the
  requests (:meth:`numerics.data.traces.Trace.to_workload`);
* a path ending in ``.toml`` — a workload file::

    name = "chat-and-code"          # optional (default: the file's stem)
    memory_tokens = 500000          # optional KV-cache size M in tokens

    [[class]]
    name = "chat"
    prompt = "lognormal:median=1000,sigma=0.9,max=8192"   # spec string or integer
    decode = "geom:mean=200,max=1000"
    rate = 0.02                     # requests per slot; every class or none

    [[class]]
    name = "code"
    trace = "traces/code.csv"       # instead of prompt/decode; relative to this file's folder
    rate = 0.01

    [[class]]
    name = "batch"
    trace = "traces/mixed.csv"      # a trace with a class column: pick one class with label
    label = "batch"
    rate = 0.01

Errors name the file and the class, e.g. ``workload.toml, class 'chat': decode: 'geom:mean=0':
a geometric on {1, 2, ...} has mean ≥ 1``.

Examples
--------
>>> load_workload("azure-code").name
'azure-code'
>>> import pathlib, tempfile
>>> path = pathlib.Path(tempfile.mkdtemp()) / "two.toml"
>>> _ = path.write_text('''
... [[class]]
... name = "short"
... prompt = 100
... decode = "geom:mean=50"
... rate = 0.3
...
... [[class]]
... name = "long"
... prompt = "uniform:1000,2000"
... decode = "geom:mean=400,max=2000"
... rate = 0.1
... ''')
>>> wl = load_workload(str(path))
>>> [c.name for c in wl.classes], wl.mix.tolist()
(['short', 'long'], [0.75, 0.25])
"""

from __future__ import annotations

import math
import os
import tomllib
from pathlib import Path
from typing import Any

from numerics.data.presets import PRESETS, load_preset
from numerics.data.traces import Trace, load_trace
from numerics.errors import SpecError, TraceError, WorkloadError
from numerics.model.specs import parse_law
from numerics.model.workload import IndependentLengths, RequestClass, Workload

__all__ = ["load_workload", "load_workload_file"]

_TOP_KEYS = ("name", "memory_tokens", "class")
_CLASS_KEYS = ("name", "prompt", "decode", "rate", "trace", "label")


def _what_is_accepted() -> str:
    return f"not a preset ({', '.join(PRESETS)}), a .toml file or trace:PATH"


def load_workload(spec: str | os.PathLike) -> Workload:
    """A workload from a preset name, ``trace:PATH`` or a ``.toml`` workload file.

    Parameters
    ----------
    spec : str or path-like
        See the module docstring.

    Raises
    ------
    SpecError
        When ``spec`` is none of the three, or the TOML file is malformed.
    TraceError
        When a trace cannot be read.
    WorkloadError
        When the described workload is invalid.
    """
    text = os.fspath(spec) if isinstance(spec, os.PathLike) else spec
    if not isinstance(text, str) or not text.strip():
        raise SpecError(f"a workload must be a non-empty string, got {spec!r}: "
                        f"{_what_is_accepted()}")
    text = text.strip()
    if text in PRESETS:
        return load_preset(text)
    if text.startswith("trace:"):
        path = text[len("trace:"):].strip()
        if not path:
            raise SpecError("trace: needs a file, e.g. trace:AzureLLMInferenceTrace_conv.csv")
        return load_trace(path).to_workload()
    if text.lower().endswith(".toml"):
        return load_workload_file(text)
    hint = ""
    if text.lower().endswith((".csv", ".jsonl", ".json")):
        hint = f"; to read a trace file write trace:{text}"
    raise SpecError(f"{text!r}: {_what_is_accepted()}{hint}")


def _rewrap(exc: WorkloadError, context: str) -> WorkloadError:
    """The same kind of error with ``context`` in front of its message."""
    return type(exc)(f"{context}: {exc}")


def load_workload_file(path: str | os.PathLike) -> Workload:
    """Read a TOML workload file (format in the module docstring).

    Raises
    ------
    WorkloadError
        When the file is missing or describes an invalid workload.
    SpecError
        When it is not valid TOML, has unknown keys or a malformed length spec.
    TraceError
        When a class's trace cannot be read.
    """
    try:
        p = Path(os.fspath(path))
        exists, is_dir = p.exists(), p.is_dir()
    except (OSError, TypeError, ValueError) as exc:  # a name too long, a NUL byte, not a path
        raise WorkloadError(f"{path!r} is not a usable file path ({exc})") from None
    where = p.name
    if not exists:
        raise WorkloadError(f"workload file {p} not found; check the path")
    if is_dir:
        raise WorkloadError(f"{p} is a directory; pass a .toml workload file")
    try:
        doc = tomllib.loads(p.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise WorkloadError(f"{p}: cannot read the file ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise SpecError(f"{where}: not a UTF-8 text file (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{where}: not valid TOML ({exc})") from None
    unknown = sorted(set(doc) - set(_TOP_KEYS))
    if unknown:
        raise SpecError(
            f"{where}: unknown key(s) {', '.join(unknown)}; a workload file has name, "
            "memory_tokens and [[class]] tables"
        )
    name = doc.get("name", p.stem)
    if not isinstance(name, str) or not name.strip():
        raise SpecError(f"{where}: name must be a non-empty string, got {name!r}")
    memory = doc.get("memory_tokens")
    if memory is not None and (isinstance(memory, bool) or not isinstance(memory, int)
                               or memory <= 0):
        raise SpecError(
            f"{where}: memory_tokens must be a positive integer number of tokens, got {memory!r}"
        )
    tables = doc.get("class")
    if isinstance(tables, dict):
        raise SpecError(f"{where}: write each class as [[class]] (double brackets), not [class]")
    if not tables:
        raise SpecError(
            f"{where}: no [[class]] tables; add at least one with name, prompt and decode "
            "(or trace)"
        )
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise SpecError(f"{where}: 'class' must be a list of [[class]] tables")
    classes = [_read_class(t, i, where, p.parent) for i, t in enumerate(tables)]
    names = [c.name for c in classes]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SpecError(f"{where}: class names must be distinct; repeated: {', '.join(dupes)}")
    with_rate = [c.name for c in classes if c.rate_per_slot is not None]
    if with_rate and len(with_rate) < len(classes):
        without = [c.name for c in classes if c.rate_per_slot is None]
        raise SpecError(
            f"{where}: class(es) {', '.join(map(repr, without))} give no rate but "
            f"{', '.join(map(repr, with_rate))} do; give every class a rate (requests per slot) "
            "or none (then the classes weigh equally)"
        )
    try:
        return Workload(tuple(classes), name.strip(), memory, source=f"workload file {p}")
    except WorkloadError as exc:  # pragma: no cover - the checks above catch what Workload does
        raise _rewrap(exc, where) from None


def _trace_class(trace: Trace, table: dict[str, Any], rate: float | None, name: str,
                 context: str) -> RequestClass:
    """The class of a ``trace =`` table: the whole trace, or its class ``label``."""
    label = table.get("label")
    if label is None:
        if trace.class_names is not None:
            raise SpecError(
                f"{context}: trace {trace.source} has a class column (classes "
                f"{', '.join(map(repr, trace.class_names))}); pick one with label = "
                f"\"{trace.class_names[0]}\", or load the whole trace as a multi-class workload "
                "with trace:PATH"
            )
        return RequestClass(trace.lengths(), rate, name, trace.rate_per_s)
    if isinstance(label, bool) or not isinstance(label, str | int) or not str(label).strip():
        raise SpecError(f"{context}: label must be a class name (a string or an integer), got {label!r}")
    label = str(label).strip()
    if trace.class_names is None:
        raise SpecError(f"{context}: label {label!r} picks a class, but trace {trace.source} has no "
                        "class column; drop label, or add a class column to the trace")
    if label not in trace.class_names:
        raise SpecError(f"{context}: trace {trace.source} has no class {label!r}; its classes are "
                        f"{', '.join(map(repr, trace.class_names))}")
    rates = trace.class_rates_per_s()
    k = trace.class_names.index(label)
    return RequestClass(trace.lengths(label), rate, name, None if rates is None else float(rates[k]))


def _read_class(table: dict[str, Any], index: int, where: str, folder: Path) -> RequestClass:
    name = table.get("name", f"class{index + 1}")
    if not isinstance(name, str) or not name.strip():
        raise SpecError(
            f"{where}, class #{index + 1}: name must be a non-empty string, got {name!r}"
        )
    name = name.strip()
    context = f"{where}, class {name!r}"
    unknown = sorted(set(table) - set(_CLASS_KEYS))
    if unknown:
        raise SpecError(
            f"{context}: unknown key(s) {', '.join(unknown)}; a class has name, prompt, decode, "
            "rate, or trace (with label for a trace with classes) instead of prompt and decode"
        )
    rate = table.get("rate")
    if rate is not None and (
        isinstance(rate, bool)
        or not isinstance(rate, int | float)
        or not math.isfinite(rate)
        or rate <= 0
    ):
        raise SpecError(
            f"{context}: rate must be a positive number of requests per slot, got {rate!r}"
        )
    rate = None if rate is None else float(rate)
    if "trace" in table:
        if "prompt" in table or "decode" in table:
            raise SpecError(f"{context}: give either trace or prompt and decode, not both")
        file = table["trace"]
        if not isinstance(file, str) or not file.strip():
            raise SpecError(f"{context}: trace must be a file path string, got {file!r}")
        trace_path = Path(file.strip())
        if not trace_path.is_absolute():
            trace_path = folder / trace_path
        try:
            trace = load_trace(trace_path)
        except TraceError as exc:
            raise _rewrap(exc, f"{context}: trace") from None
        return _trace_class(trace, table, rate, name, context)
    if "label" in table:
        raise SpecError(f"{context}: label picks a class of a trace; give trace = \"PATH\" too, or "
                        "drop label")
    missing = [k for k in ("prompt", "decode") if k not in table]
    if missing:
        raise SpecError(
            f"{context}: missing {' and '.join(missing)}; give prompt and decode length specs "
            "(e.g. prompt = 100, decode = \"geom:mean=200\") or trace = \"PATH\""
        )
    laws = {}
    for key in ("prompt", "decode"):
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise SpecError(
                f"{context}: {key}: expected a spec string or an integer, got {value!r}"
            )
        try:
            laws[key] = parse_law(value)
        except WorkloadError as exc:
            raise _rewrap(exc, f"{context}: {key}") from None
    try:
        lengths = IndependentLengths(laws["prompt"], laws["decode"])
        return RequestClass(lengths, rate, name)
    except WorkloadError as exc:
        raise _rewrap(exc, context) from None
