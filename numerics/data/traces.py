r"""Request traces: observed (prompt S, decode O, arrival time) records read from files.

A :class:`Trace` holds one row per request: prompt length :math:`S_i`, decode length
:math:`O_i \ge 1` and, when the file has them, arrival times in seconds since the first request.
It turns into the project's one currency in two ways:

* :meth:`Trace.lengths` — the joint empirical law of the pairs,
  :math:`P(S = s, O = o) = \#\{i : (S_i, O_i) = (s, o)\} / n`
  (a :class:`~numerics.model.workload.JointLengths`, which keeps the S–O dependence);
* :meth:`Trace.to_workload` — a one-class :class:`~numerics.model.workload.Workload` over that law,
  whose class carries the trace's mean arrival rate ``rate_per_s`` = (n − 1) / (t_n − t_1).

:func:`load_trace` reads three formats, recognised by their header (CSV) or keys (JSON lines):

==============  ===========================================  ==================================
format          columns / keys                               timestamps
==============  ===========================================  ==================================
``azure``       ``TIMESTAMP,ContextTokens,GeneratedTokens``  ``YYYY-MM-DD HH:MM:SS.fffffff``
``mooncake``    ``timestamp``, ``input_length``,             milliseconds
                ``output_length`` (other keys ignored)
``lengths``     ``num_prefill_tokens,num_decode_tokens``     none
                (other columns ignored)
==============  ===========================================  ==================================

The first is the Azure LLM inference trace 2023 (Patel et al., Splitwise, ISCA 2024), the second
the Mooncake conversation trace (FAST'25), the third the ShareGPT length table of sarathi-serve.
Every problem with a file raises :class:`~numerics.errors.TraceError` with a one-line message that
says what is wrong and where.

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
"""

from __future__ import annotations

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

__all__ = ["TRACE_FORMATS", "Trace", "TraceFormat", "load_trace"]

#: The formats :func:`load_trace` recognises.
TraceFormat = Literal["azure", "mooncake", "lengths"]
TRACE_FORMATS: tuple[TraceFormat, ...] = get_args(TraceFormat)

#: Columns (CSV) or keys (JSON lines) of each format: (timestamp, prompt, decode).
_COLUMNS: dict[str, tuple[str | None, str, str]] = {
    "azure": ("TIMESTAMP", "ContextTokens", "GeneratedTokens"),
    "mooncake": ("timestamp", "input_length", "output_length"),
    "lengths": (None, "num_prefill_tokens", "num_decode_tokens"),
}
_EXPECTED = (
    "expected an Azure LLM trace CSV (TIMESTAMP,ContextTokens,GeneratedTokens), a lengths CSV "
    "(num_prefill_tokens,num_decode_tokens) or Mooncake JSON lines "
    "(timestamp,input_length,output_length)"
)
#: Token counts above this are not plausible and would lose precision as float64 (2**53).
_MAX_COUNT = 2**53


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
    """

    prompt: np.ndarray
    decode: np.ndarray
    timestamps_s: np.ndarray | None
    source: str
    format: TraceFormat

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
        for name, arr in arrays.items():
            arr = np.array(arr, copy=True)
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)

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

    def lengths(self) -> JointLengths:
        """The joint empirical law of the (prompt, decode) pairs."""
        return JointLengths.from_samples(
            self.prompt, self.decode, label=f"trace {Path(self.source).name}"
        )

    def to_workload(self, name: str | None = None) -> Workload:
        """A one-class workload over the trace's joint empirical (S, O) law.

        The class has no per-slot arrival rate (``rate_per_slot`` is None: slots are a model unit,
        the trace's is seconds); its ``rate_per_s`` is :attr:`rate_per_s`.

        Parameters
        ----------
        name : str, optional
            Workload (and class) name; the file's stem by default.
        """
        name = name or self.name
        cls = RequestClass(self.lengths(), None, name, self.rate_per_s)
        return Workload(
            (cls,),
            name,
            source=f"trace {self.source} ({self.format}, {self.n_requests} requests)",
        )

    def __repr__(self) -> str:
        rate = "" if self.rate_per_s is None else f", {self.rate_per_s:.3g} req/s"
        return f"Trace({self.source!r}, {self.format}, {self.n_requests} requests{rate})"


# ---------------------------------------------------------------------- loading
def load_trace(path: str | os.PathLike) -> Trace:
    """Read a trace file, recognising its format by its header or keys.

    Parameters
    ----------
    path : str or path-like
        An Azure LLM inference CSV, a Mooncake JSON-lines file or a two-column lengths CSV (see
        the module docstring).

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
        holds non-numeric, non-integer or negative lengths, decode lengths < 1, or timestamps that
        cannot be parsed.
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
    try:
        with p.open("rb") as fh:
            head = fh.read(4096)
    except OSError as exc:
        raise TraceError(f"{p}: cannot read the file ({exc.strerror or exc})") from None
    head = head.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte-order mark
    if not head.strip():
        raise TraceError(f"{p} is empty; {_EXPECTED}")
    if head.lstrip().startswith(b"{"):
        return _load_jsonl(p)
    return _load_csv(p)


def _read_text_error(p: Path, exc: Exception) -> TraceError:
    if isinstance(exc, UnicodeDecodeError):
        return TraceError(f"{p}: not a UTF-8 text file (byte {exc.start}); {_EXPECTED}")
    if isinstance(exc, OSError):
        return TraceError(f"{p}: cannot read the file ({exc.strerror or exc})")
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return TraceError(f"{p}: malformed CSV ({first})")


def _load_csv(p: Path) -> Trace:
    try:
        with warnings.catch_warnings():
            # A first row longer than the header would silently become an index: make it an error.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            df = pd.read_csv(
                p, dtype=str, keep_default_na=False, index_col=False, skip_blank_lines=True
            )
    except pd.errors.EmptyDataError:
        raise TraceError(f"{p} is empty; {_EXPECTED}") from None
    except (pd.errors.ParserError, pd.errors.ParserWarning, UnicodeDecodeError, OSError,
            ValueError) as exc:
        raise _read_text_error(p, exc) from None
    df.columns = [str(c).strip() for c in df.columns]
    fmt = _detect(p, set(df.columns), "columns", ("azure", "lengths"))
    t_col, s_col, o_col = _COLUMNS[fmt]
    if len(df) == 0:
        raise TraceError(f"{p} has a header but no rows")
    lines = np.arange(len(df)) + 2  # line 1 is the header
    prompt = _token_counts(p, df[s_col], s_col, lines)
    decode = _token_counts(p, df[o_col], o_col, lines)
    times = None
    if t_col is not None:
        times = _azure_seconds(p, df[t_col], t_col, lines)
    return _build(p, prompt, decode, times, fmt, lines)


def _load_jsonl(p: Path) -> Trace:
    t_key, s_key, o_key = _COLUMNS["mooncake"]
    records: dict[str, list] = {t_key: [], s_key: [], o_key: []}
    lines: list[int] = []
    try:
        with p.open(encoding="utf-8-sig") as fh:
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
                missing = [k for k in records if k not in rec]
                if missing:
                    raise TraceError(
                        f"{p}, line {number}: missing key(s) {', '.join(missing)}; every line "
                        "needs timestamp, input_length and output_length"
                    )
                for key, column in records.items():
                    column.append(rec[key])
                lines.append(number)
    except (UnicodeDecodeError, OSError) as exc:
        raise _read_text_error(p, exc) from None
    if not lines:
        raise TraceError(f"{p} is empty; {_EXPECTED}")
    at = np.asarray(lines)
    prompt = _token_counts(p, pd.Series(records[s_key], dtype=object), s_key, at)
    decode = _token_counts(p, pd.Series(records[o_key], dtype=object), o_key, at)
    ms = _numbers(pd.Series(records[t_key], dtype=object))
    bad = ~np.isfinite(ms)
    if bad.any():
        raise _bad_rows(
            p, bad, at, records[t_key], f"a {t_key!r} that is not a number",
            "Mooncake timestamps are milliseconds",
        )
    return _build(p, prompt, decode, (ms - ms.min()) / 1000.0, "mooncake", at)


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
) -> Trace:
    short = decode < 1
    if short.any():
        first = int(np.flatnonzero(short)[0])
        raise TraceError(
            f"{p}: {int(short.sum())} row(s) have decode length < 1 (first at line "
            f"{int(lines[first])}); decode lengths must be ≥ 1: drop those rows"
        )
    if times is not None and np.any(np.diff(times) < 0):
        order = np.argsort(times, kind="stable")
        prompt, decode, times = prompt[order], decode[order], times[order]
    try:
        return Trace(prompt, decode, times, str(p), fmt)
    except WorkloadError as exc:  # pragma: no cover - the checks above catch every case
        raise TraceError(f"{p}: {exc}") from None
