r"""Request traces: observed (prompt S, decode O, arrival time, class) records read from files.

A :class:`Trace` holds one row per request: prompt length :math:`S_i`, decode length
:math:`O_i \ge 1` and, when the file has them, arrival times in seconds since the first request
and class labels. It turns into the project's one currency in two ways:

* :meth:`Trace.lengths` — the joint empirical law of the pairs,
  :math:`P(S = s, O = o) = \#\{i : (S_i, O_i) = (s, o)\} / n`
  (a :class:`~numerics.model.workload.JointLengths`, which keeps the S–O dependence), of all
  requests or of one class's;
* :meth:`Trace.to_workload` — without class labels, a one-class
  :class:`~numerics.model.workload.Workload` over that law, whose class carries the trace's mean
  arrival rate ``rate_per_s`` = (n − 1) / (t_n − t_1); with class labels, a multi-class
  :class:`~numerics.model.workload.Workload` (``weights`` = the class shares) with one class per
  label k: the joint empirical law of its :math:`n_k` requests, the weight :math:`\pi_k = n_k / n`
  and the rate :math:`\pi_k \cdot` ``rate_per_s``.

:func:`load_trace` reads four formats, recognised by their header (CSV) or keys (JSON lines):

==============  ===========================================  ==================================
format          columns / keys                               timestamps
==============  ===========================================  ==================================
``azure``       ``TIMESTAMP,ContextTokens,GeneratedTokens``  ``YYYY-MM-DD HH:MM:SS.fffffff``
``mooncake``    ``timestamp``, ``input_length``,             milliseconds
                ``output_length`` (other keys ignored)
``vidur``       ``arrived_at,num_prefill_tokens,``           seconds (``arrived_at``)
                ``num_decode_tokens`` (other columns
                ignored)
``lengths``     ``num_prefill_tokens,num_decode_tokens``     none
                (other columns ignored)
==============  ===========================================  ==================================

The first is the Azure LLM inference trace 2023 (Patel et al., Splitwise, ISCA 2024), the second
the Mooncake conversation trace (FAST'25), the third the request trace CSV of the vidur simulator,
the fourth the ShareGPT length table of sarathi-serve. Every format takes an optional ``class``
column (CSV) or key (JSON lines, then on every line) labelling each request's class with a string
or an integer; the classes are ordered numerically when every label is an integer, else by first
appearance in the file (:attr:`Trace.class_names`). Every problem with a file raises
:class:`~numerics.errors.TraceError` with a one-line message that says what is wrong and where.

Examples
--------
>>> import pathlib, tempfile
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> path = folder / "tiny.csv"
>>> _ = path.write_text(
...     "TIMESTAMP,ContextTokens,GeneratedTokens\n"
...     "2023-11-16 18:15:46.6805900,374,44\n"
...     "2023-11-16 18:15:47.6805900,396,109\n"
...     "2023-11-16 18:15:48.6805900,100,1\n"
... )
>>> trace = load_trace(path)
>>> trace.format, trace.n_requests, trace.rate_per_s
('azure', 3, 1.0)
>>> round(trace.to_workload().mean_decode, 4)
51.3333

A ``class`` column makes the workload multi-class, each class with its own empirical law, weight
and rate:

>>> path = folder / "classes.csv"
>>> _ = path.write_text(
...     "arrived_at,num_prefill_tokens,num_decode_tokens,class\n"
...     "0.0,10,20,chat\n0.5,10,40,code\n1.0,10,20,chat\n1.5,12,20,chat\n"
... )
>>> trace = load_trace(path)
>>> trace.format, trace.class_names, trace.class_index.tolist()
('vidur', ('chat', 'code'), [0, 1, 0, 0])
>>> wl = trace.to_workload()
>>> [c.name for c in wl.classes], wl.mix.tolist(), [c.rate_per_s for c in wl.classes]
(['chat', 'code'], [0.75, 0.25], [1.5, 0.5])
"""

from __future__ import annotations

import gzip
import json
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import pandas as pd

from numerics.errors import TraceError, WorkloadError
from numerics.model.workload import JointLengths, RequestClass, Workload

__all__ = ["CLASS_COLUMN", "TRACE_FORMATS", "Trace", "TraceFormat", "load_trace"]

#: The formats :func:`load_trace` recognises.
TraceFormat = Literal["azure", "mooncake", "lengths", "vidur"]
TRACE_FORMATS: tuple[TraceFormat, ...] = get_args(TraceFormat)

#: The optional column (CSV) or key (JSON lines) that labels each request's class.
CLASS_COLUMN = "class"

#: Columns (CSV) or keys (JSON lines) of each format: (timestamp, prompt, decode).
_COLUMNS: dict[str, tuple[str | None, str, str]] = {
    "azure": ("TIMESTAMP", "ContextTokens", "GeneratedTokens"),
    "mooncake": ("timestamp", "input_length", "output_length"),
    "lengths": (None, "num_prefill_tokens", "num_decode_tokens"),
    "vidur": ("arrived_at", "num_prefill_tokens", "num_decode_tokens"),
}
_EXPECTED = (
    "expected an Azure LLM trace CSV (TIMESTAMP,ContextTokens,GeneratedTokens), a lengths CSV "
    "(num_prefill_tokens,num_decode_tokens) or Mooncake JSON lines "
    "(timestamp,input_length,output_length); a vidur trace CSV adds arrived_at (seconds) to a "
    "lengths CSV, and any of them may add a class column"
)
#: Token counts above this are not plausible and would lose precision as float64 (2**53).
_MAX_COUNT = 2**53
#: The first two bytes of a gzip stream.
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True, eq=False)
class Trace:
    """Observed requests: prompt and decode lengths and, optionally, arrival times.

    Parameters
    ----------
    prompt : array of int
        Prompt lengths S_i ≥ 0, one per request (in arrival order when timestamps are given).
    decode : array of int
        Decode lengths O_i ≥ 1.
    timestamps_s : array of float or None
        Arrival times in seconds since the first request (so the smallest is 0), or None when the
        file has no timestamps.
    source : str
        The file the trace was read from.
    format : str
        One of :data:`TRACE_FORMATS`.
    class_names : tuple of str or None
        The class labels, in the order of the classes of :meth:`to_workload` (None: no labels).
        Every class has at least one request.
    class_index : array of int or None
        Each request's class, an index into ``class_names`` (None exactly when ``class_names``
        is).
    """

    prompt: np.ndarray
    decode: np.ndarray
    timestamps_s: np.ndarray | None
    source: str
    format: TraceFormat
    class_names: tuple[str, ...] | None = None
    class_index: np.ndarray | None = None

    def __post_init__(self) -> None:
        where = self.source or "trace"
        s = np.asarray(self.prompt)
        o = np.asarray(self.decode)
        if s.ndim != 1 or s.shape != o.shape or s.size == 0:
            raise TraceError(
                f"{where}: prompt and decode must be non-empty 1-d arrays of equal length"
            )
        for name, arr in (("prompt", s), ("decode", o)):
            if not np.issubdtype(arr.dtype, np.number) or np.any(~np.isfinite(arr)):
                raise TraceError(f"{where}: {name} lengths must be finite numbers")
            if np.any(arr != np.round(arr)):
                raise TraceError(f"{where}: {name} lengths must be integers")
        if np.any(s < 0):
            raise TraceError(f"{where}: {int(np.sum(s < 0))} prompt lengths are negative")
        if np.any(o < 1):
            raise TraceError(
                f"{where}: {int(np.sum(o < 1))} rows have decode length < 1; decode lengths must "
                "be ≥ 1 (drop those rows)"
            )
        if self.format not in TRACE_FORMATS:
            raise TraceError(f"{where}: format must be one of {', '.join(TRACE_FORMATS)}")
        arrays = {"prompt": s.astype(np.int64), "decode": o.astype(np.int64)}
        if self.timestamps_s is not None:
            t = np.asarray(self.timestamps_s, dtype=float)
            if t.shape != s.shape or np.any(~np.isfinite(t)):
                raise TraceError(f"{where}: need one finite timestamp per request")
            arrays["timestamps_s"] = t
        if self.class_names is not None or self.class_index is not None:
            arrays["class_index"] = self._checked_classes(where, s.shape)
        for name, arr in arrays.items():
            arr = np.array(arr, copy=True)
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)

    def _checked_classes(self, where: str, shape: tuple[int, ...]) -> np.ndarray:
        """Validate ``class_names``/``class_index``, store the names as a tuple, return the index."""
        if self.class_names is None or self.class_index is None:
            raise TraceError(f"{where}: give class_names and class_index together, or neither")
        names = tuple(self.class_names)
        if not names or not all(isinstance(n, str) and n.strip() for n in names):
            raise TraceError(f"{where}: class_names must be non-empty strings, got {names!r}")
        if len(set(names)) != len(names):
            raise TraceError(f"{where}: class_names must be distinct, got {names!r}")
        idx = np.asarray(self.class_index)
        if idx.shape != shape or not np.issubdtype(idx.dtype, np.integer):
            raise TraceError(f"{where}: class_index needs one integer per request")
        if idx.min() < 0 or idx.max() >= len(names):
            raise TraceError(f"{where}: class_index values must lie in 0..{len(names) - 1} (one per name)")
        empty = [n for n, c in zip(names, np.bincount(idx, minlength=len(names)), strict=True) if not c]
        if empty:
            raise TraceError(f"{where}: class(es) {', '.join(map(repr, empty))} have no requests; drop "
                             "them from class_names")
        object.__setattr__(self, "class_names", names)
        return idx.astype(np.int64)

    @property
    def n_requests(self) -> int:
        """The number of requests (rows)."""
        return int(self.prompt.size)

    @property
    def span_s(self) -> float | None:
        """Seconds from the first to the last arrival (None without timestamps)."""
        if self.timestamps_s is None:
            return None
        return float(self.timestamps_s.max() - self.timestamps_s.min())

    @property
    def rate_per_s(self) -> float | None:
        """Mean arrival rate (n − 1) / span in requests per second.

        None without timestamps, or when every request arrives at the same instant.
        """
        span = self.span_s
        if span is None or span <= 0 or self.n_requests < 2:
            return None
        return (self.n_requests - 1) / span

    @property
    def name(self) -> str:
        """The file's stem (``AzureLLMInferenceTrace_conv``)."""
        return Path(self.source).stem or "trace"

    @property
    def n_classes(self) -> int:
        """The number of classes of :meth:`to_workload` (1 without class labels)."""
        return 1 if self.class_names is None else len(self.class_names)

    @property
    def class_counts(self) -> np.ndarray:
        """Requests per class, :math:`n_k` (``[n]`` without class labels)."""
        if self.class_index is None:
            return np.array([self.n_requests], dtype=np.int64)
        return np.bincount(self.class_index, minlength=self.n_classes).astype(np.int64)

    def lengths(self, label: str | None = None) -> JointLengths:
        """The joint empirical law of the (prompt, decode) pairs: of all requests, or of the class
        named ``label`` (one of :attr:`class_names`) only."""
        where = f"trace {Path(self.source).name}"
        if label is None:
            return JointLengths.from_samples(self.prompt, self.decode, label=where)
        if label not in (self.class_names or ()):
            listed = "no class labels" if self.class_names is None else (
                "classes " + ", ".join(map(repr, self.class_names)))
            raise TraceError(f"{self.source or 'trace'} has no class {label!r}; it has {listed}")
        rows = self.class_index == self.class_names.index(label)
        return JointLengths.from_samples(
            self.prompt[rows], self.decode[rows], label=f"{where}, class {label}"
        )

    def class_rates_per_s(self) -> np.ndarray | None:
        r"""Class rates :math:`(n_k / n) \cdot` :attr:`rate_per_s`, summing to it (None without it)."""
        total = self.rate_per_s
        return None if total is None else total * self.class_counts / self.n_requests

    def to_workload(self, name: str | None = None) -> Workload:
        r"""A workload over the trace's joint empirical (S, O) law(s).

        Without class labels: one class over all requests, named ``name``. With class labels
        (:attr:`class_names`): a multi-class :class:`~numerics.model.workload.Workload`
        (``weights`` = the class shares) with one class per label, in that order, over the joint
        empirical law of that class's :math:`n_k` requests, weighing
        :math:`\pi_k = n_k / n`. No class has a per-slot arrival rate (``rate_per_slot`` is None:
        slots are a model unit, the trace's is seconds); each class's ``rate_per_s`` is its share
        of :attr:`rate_per_s` (:meth:`class_rates_per_s`), None without timestamps.

        Parameters
        ----------
        name : str, optional
            Workload name (and the class name of a one-class trace); the file's stem by default.
        """
        name = name or self.name
        if self.class_names is None:
            cls = RequestClass(self.lengths(), None, name, self.rate_per_s)
            return Workload(
                (cls,),
                name,
                source=f"trace {self.source} ({self.format}, {self.n_requests} requests)",
            )
        rates = self.class_rates_per_s()
        classes = tuple(
            RequestClass(self.lengths(label), None, label, None if rates is None else float(rates[k]))
            for k, label in enumerate(self.class_names)
        )
        source = f"trace {self.source} ({self.format}, {self.n_requests} requests, {self.n_classes} classes)"
        return Workload(classes, name, source=source,
                        weights=tuple((self.class_counts / self.n_requests).tolist()))

    def __repr__(self) -> str:
        rate = "" if self.rate_per_s is None else f", {self.rate_per_s:.3g} req/s"
        classes = "" if self.class_names is None else f", {self.n_classes} classes"
        return f"Trace({self.source!r}, {self.format}, {self.n_requests} requests{classes}{rate})"


# ---------------------------------------------------------------------- loading
def load_trace(path: str | os.PathLike) -> Trace:
    """Read a trace file, recognising its format by its header or keys.

    Parameters
    ----------
    path : str or path-like
        An Azure LLM inference CSV, a Mooncake JSON-lines file, a vidur trace CSV or a lengths CSV,
        each with an optional ``class`` column or key (see the module docstring), plain or
        gzip-compressed (``.csv.gz``, ``.jsonl.gz``: recognised by the gzip header, whatever the
        name).

    Returns
    -------
    Trace
        Rows in arrival order (stably sorted by timestamp when the file has timestamps).

    Notes
    -----
    Error messages point at the first bad row by its line in the file, counting the header as
    line 1 (and, in CSV files, skipping blank lines).

    Raises
    ------
    TraceError
        When the file is missing, is a directory, is empty or unreadable, has unknown columns,
        holds non-numeric, non-integer or negative lengths, decode lengths < 1, timestamps that
        cannot be parsed, or a class column with an empty label or a label that is neither a
        string nor an integer (or, in JSON lines, a class key on some lines only).
    """
    try:
        p = Path(os.fspath(path))
        exists, is_dir = p.exists(), p.is_dir()
    except (OSError, TypeError, ValueError) as exc:  # a name too long, a NUL byte, not a path
        raise TraceError(f"{path!r} is not a usable file path ({exc})") from None
    if not exists:
        raise TraceError(f"trace file {p} not found; check the path (relative to {Path.cwd()})")
    if is_dir:
        raise TraceError(f"{p} is a directory; pass a trace file (.csv or .jsonl)")
    gz = False
    try:
        with p.open("rb") as fh:
            head = fh.read(4096)
        gz = head.startswith(_GZIP_MAGIC)
        if gz:  # a gzip-compressed trace (.csv.gz, .jsonl.gz): read through the decompression
            with gzip.open(p, "rb") as fh:
                head = fh.read(4096)
    except (OSError, EOFError) as exc:
        what = "a damaged gzip file" if gz else "cannot read the file"
        raise TraceError(f"{p}: {what} ({getattr(exc, 'strerror', None) or exc})") from None
    head = head.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte-order mark
    if not head.strip():
        raise TraceError(f"{p} is empty; {_EXPECTED}")
    if head.lstrip().startswith(b"{"):
        return _load_jsonl(p, gz)
    return _load_csv(p, gz)


def _read_text_error(p: Path, exc: Exception) -> TraceError:
    if isinstance(exc, UnicodeDecodeError):
        return TraceError(f"{p}: not a UTF-8 text file (byte {exc.start}); {_EXPECTED}")
    if isinstance(exc, OSError | EOFError):  # EOFError: a gzip stream cut short
        return TraceError(f"{p}: cannot read the file ({getattr(exc, 'strerror', None) or exc})")
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return TraceError(f"{p}: malformed CSV ({first})")


def _load_csv(p: Path, gz: bool = False) -> Trace:
    try:
        with warnings.catch_warnings():
            # A first row longer than the header would silently become an index: make it an error.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            df = pd.read_csv(
                p, dtype=str, keep_default_na=False, index_col=False, skip_blank_lines=True,
                compression="gzip" if gz else None,
            )
    except pd.errors.EmptyDataError:
        raise TraceError(f"{p} is empty; {_EXPECTED}") from None
    except (pd.errors.ParserError, pd.errors.ParserWarning, UnicodeDecodeError, OSError, EOFError,
            ValueError) as exc:
        raise _read_text_error(p, exc) from None
    df.columns = [str(c).strip() for c in df.columns]
    fmt = _detect(p, set(df.columns), "columns", ("azure", "lengths"))
    if fmt == "lengths" and _COLUMNS["vidur"][0] in df.columns:
        fmt = "vidur"
    t_col, s_col, o_col = _COLUMNS[fmt]
    if len(df) == 0:
        raise TraceError(f"{p} has a header but no rows")
    lines = np.arange(len(df)) + 2  # line 1 is the header
    prompt = _token_counts(p, df[s_col], s_col, lines)
    decode = _token_counts(p, df[o_col], o_col, lines)
    times = None
    if fmt == "azure":
        times = _azure_seconds(p, df[t_col], t_col, lines)
    elif fmt == "vidur":
        times = _plain_seconds(p, df[t_col], t_col, lines, "vidur's arrived_at is seconds", 1.0)
    classes = None
    if CLASS_COLUMN in df.columns:
        classes = _class_labels(p, df[CLASS_COLUMN].tolist(), lines)
    return _build(p, prompt, decode, times, fmt, lines, classes)


def _load_jsonl(p: Path, gz: bool = False) -> Trace:
    t_key, s_key, o_key = _COLUMNS["mooncake"]
    records: dict[str, list] = {t_key: [], s_key: [], o_key: []}
    lines: list[int] = []
    labels: list | None = None  # class labels, when the first line has the key
    try:
        with (gzip.open(p, "rt", encoding="utf-8-sig") if gz else p.open(encoding="utf-8-sig")) as fh:
            for number, text in enumerate(fh, start=1):
                if not text.strip():
                    continue
                try:
                    rec = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise TraceError(
                        f"{p}, line {number}: not valid JSON ({exc.msg}); expected one object per "
                        "line with keys timestamp, input_length, output_length"
                    ) from None
                if not isinstance(rec, dict):
                    raise TraceError(
                        f"{p}, line {number}: expected a JSON object with keys timestamp, "
                        f"input_length, output_length, got {type(rec).__name__}"
                    )
                if not lines:
                    _detect(p, set(rec), "keys", ("mooncake",))
                    if CLASS_COLUMN in rec:
                        labels = []
                missing = [k for k in records if k not in rec]
                if missing:
                    raise TraceError(
                        f"{p}, line {number}: missing key(s) {', '.join(missing)}; every line "
                        "needs timestamp, input_length and output_length"
                    )
                if (CLASS_COLUMN in rec) != (labels is not None):
                    has = "has no" if labels is not None else "has a"
                    raise TraceError(
                        f"{p}, line {number} {has} {CLASS_COLUMN!r} key but line {lines[0]} "
                        f"{'does' if labels is not None else 'does not'}; give every line a "
                        f"{CLASS_COLUMN} or none"
                    )
                for key, column in records.items():
                    column.append(rec[key])
                if labels is not None:
                    labels.append(rec[CLASS_COLUMN])
                lines.append(number)
    except (UnicodeDecodeError, OSError, EOFError) as exc:
        raise _read_text_error(p, exc) from None
    if not lines:
        raise TraceError(f"{p} is empty; {_EXPECTED}")
    at = np.asarray(lines)
    prompt = _token_counts(p, pd.Series(records[s_key], dtype=object), s_key, at)
    decode = _token_counts(p, pd.Series(records[o_key], dtype=object), o_key, at)
    times = _plain_seconds(p, pd.Series(records[t_key], dtype=object), t_key, at,
                           "Mooncake timestamps are milliseconds", 1000.0)
    classes = None if labels is None else _class_labels(p, labels, at)
    return _build(p, prompt, decode, times, "mooncake", at, classes)


def _detect(p: Path, found: set[str], what: str, formats: tuple[str, ...]) -> str:
    """The format whose columns are all present, else a TraceError naming what is missing."""
    best, best_hits = None, 0
    for fmt in formats:
        needed = [c for c in _COLUMNS[fmt] if c is not None]
        hits = sum(c in found for c in needed)
        if hits == len(needed):
            return fmt
        if hits > best_hits:
            best, best_hits = fmt, hits
    shown = ", ".join(sorted(found)) if found else "none"
    if best is not None:
        needed = [c for c in _COLUMNS[best] if c is not None]
        missing = [c for c in needed if c not in found]
        raise TraceError(
            f"{p}: looks like a {best} trace but lacks {what} {', '.join(missing)} "
            f"(found {shown}); a {best} trace needs {', '.join(needed)}"
        )
    raise TraceError(f"{p}: unrecognised {what} ({shown}); {_EXPECTED}")


def _numbers(raw: pd.Series) -> np.ndarray:
    """Float values of ``raw``: NaN where a value is not a number, ±inf where it is too large.

    Strings are stripped and parsed; booleans, lists and other objects (JSON values) count as
    not numbers.
    """

    def clean(v):
        if isinstance(v, str):
            return v.strip()
        if isinstance(v, bool) or not isinstance(v, int | float):
            return None
        if isinstance(v, int) and abs(v) > 2**1000:  # float(v) would overflow
            return math.inf if v > 0 else -math.inf
        return v

    cleaned = raw.astype(object).map(clean)
    values = pd.to_numeric(cleaned, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return np.array(values, dtype=float, copy=True)


def _bad_rows(
    p: Path, bad: np.ndarray, lines: np.ndarray, raw, what: str, advice: str = ""
) -> TraceError:
    first = int(np.flatnonzero(bad)[0])
    value = raw.iloc[first] if isinstance(raw, pd.Series) else raw[first]
    return TraceError(
        f"{p}: {int(bad.sum())} row(s) have {what} (first at line {int(lines[first])}: "
        f"{value!r}){'; ' + advice if advice else ''}"
    )


def _token_counts(p: Path, raw: pd.Series, column: str, lines: np.ndarray) -> np.ndarray:
    values = _numbers(raw)
    for bad, what in (
        (np.isnan(values), f"a non-numeric {column!r}"),
        (values != np.round(values), f"a non-integer {column!r}"),
        (values < 0, f"a negative {column!r}"),
        (values > _MAX_COUNT, f"an infinite or implausibly large {column!r} (> 2**53)"),
    ):
        if bad.any():  # the first check raises on NaN, so the later ones see none
            raise _bad_rows(p, bad, lines, raw, what, "token counts must be integers ≥ 0")
    return values.astype(np.int64)


def _plain_seconds(
    p: Path, raw: pd.Series, column: str, lines: np.ndarray, advice: str, per_second: float
) -> np.ndarray:
    """Seconds since the earliest of numeric timestamps counted ``per_second`` to the second."""
    values = _numbers(raw)
    bad = ~np.isfinite(values)
    if bad.any():
        raise _bad_rows(p, bad, lines, raw, f"a {column!r} that is not a number", advice)
    return (values - values.min()) / per_second


def _class_labels(p: Path, raw: list, lines: np.ndarray) -> tuple[tuple[str, ...], np.ndarray]:
    """(class names, each row's index into them) from the labels of a class column.

    Labels are strings (stripped) or integers; when every label is an integer the classes are
    ordered numerically (names in canonical form, ``"07"`` → ``"7"``), else by first appearance.
    """
    text = []
    for i, v in enumerate(raw):
        if isinstance(v, str):
            text.append(v.strip())
        elif v is None:
            text.append("")
        elif isinstance(v, int) and not isinstance(v, bool):
            text.append(str(v))
        else:
            raise TraceError(
                f"{p}, line {int(lines[i])}: class label {v!r} is a {type(v).__name__}; class "
                "labels must be strings or integers"
            )
    labels = pd.Series(text, dtype=object)
    empty = (labels == "").to_numpy()
    if empty.any():
        raise _bad_rows(
            p, empty, lines, raw, f"an empty {CLASS_COLUMN!r} label",
            f"give every row a class label, or drop the {CLASS_COLUMN} column for a one-class trace",
        )
    if labels.str.fullmatch(r"[+-]?[0-9]+").all():
        values = labels.map(int)
        names_int = sorted(set(values))
        position = {v: k for k, v in enumerate(names_int)}
        return tuple(str(v) for v in names_int), values.map(position).to_numpy(dtype=np.int64)
    codes, uniques = pd.factorize(labels, sort=False)
    return tuple(str(u) for u in uniques), codes.astype(np.int64)


def _azure_seconds(p: Path, raw: pd.Series, column: str, lines: np.ndarray) -> np.ndarray:
    """Seconds since the earliest timestamp, from ``YYYY-MM-DD HH:MM:SS.fffffff`` strings."""
    text = raw.str.strip()
    try:
        # ISO8601 takes any number of fractional digits (the Azure files have 7) and is
        # vectorised; utc=True makes zone-aware and naive stamps comparable.
        stamps = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)
    except (ValueError, TypeError, OverflowError) as exc:
        raise TraceError(
            f"{p}: cannot parse the {column!r} timestamps ({str(exc).splitlines()[0]}); expected "
            "YYYY-MM-DD HH:MM:SS.fffffff"
        ) from None
    bad = stamps.isna().to_numpy()
    if bad.any():
        raise _bad_rows(
            p, bad, lines, raw, f"an unparseable {column!r}",
            "expected timestamps like 2023-11-16 18:15:46.6805900",
        )
    ns = stamps.to_numpy(dtype="datetime64[ns]").astype(np.int64)
    return (ns - ns.min()) / 1e9


def _build(
    p: Path,
    prompt: np.ndarray,
    decode: np.ndarray,
    times: np.ndarray | None,
    fmt: TraceFormat,
    lines: np.ndarray,
    classes: tuple[tuple[str, ...], np.ndarray] | None = None,
) -> Trace:
    short = decode < 1
    if short.any():
        first = int(np.flatnonzero(short)[0])
        raise TraceError(
            f"{p}: {int(short.sum())} row(s) have decode length < 1 (first at line "
            f"{int(lines[first])}); decode lengths must be ≥ 1: drop those rows"
        )
    names, index = classes if classes is not None else (None, None)
    if times is not None and np.any(np.diff(times) < 0):
        order = np.argsort(times, kind="stable")
        prompt, decode, times = prompt[order], decode[order], times[order]
        if index is not None:
            index = index[order]
    try:
        return Trace(prompt, decode, times, str(p), fmt, names, index)
    except WorkloadError as exc:  # pragma: no cover - the checks above catch every case
        raise TraceError(f"{p}: {exc}") from None
