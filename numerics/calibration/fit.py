r"""Fit step-time models τ(batch, kv_tokens, prefill_tokens) to measured iteration times.

A measurements table has one row per timed iteration: ``batch`` B (requests decoding),
``kv_tokens`` K (tokens resident in the KV cache), ``prefill_tokens`` P (prompt tokens processed in
the iteration) and ``seconds``. The three model forms are exactly those of
:class:`numerics.model.steptime.StepTimeModel`, so a fit *is* a ``StepTimeModel``:

* ``const``: :math:`\hat\tau = c_0` with :math:`c_0` the mean (least squares);
* ``linear``: :math:`\hat\tau = c_0 + c_b B + c_k K + c_p P`, non-negative least squares (NNLS,
  Lawson–Hanson) on the columns that vary in the table (a column that is constant, e.g. P = 0 in
  a decode-only table, is left out and its coefficient is 0; it would be collinear with
  :math:`c_0`). Non-negativity is physical (no work makes an iteration faster) and is what
  ``StepTimeModel`` accepts;
* ``staircase``: :math:`\hat\tau = c + a\lceil (B + P)/b_0\rceil`; for each :math:`b_0` on a grid
  (every integer up to 64, then a log grid up to the largest load) :math:`(c, a) \ge 0` by NNLS,
  and the :math:`b_0` with the smallest residual sum of squares wins.

Quality: :math:`R^2 = 1 - \sum r_i^2 / \sum (\tau_i - \bar\tau)^2` with residuals
:math:`r_i = \tau_i - \hat\tau_i` (so ``const`` has :math:`R^2 = 0`), and the RMSE.

:func:`load_splitwise` turns the measured A100/H100 table of splitwise-sim (``perf_model.csv``:
per-token decode time ``token_time`` and prefill time ``prompt_time``, both in ms, for llama2-70b
and bloom-176b as batch size and prompt size vary) into two measurement tables per (model,
hardware, tensor parallelism):

* decode: B = ``batch_size``, K = B·(``prompt_size`` + (``token_size`` + 1)/2) (the mean context
  over the ``token_size`` generated tokens: the k-th decode step holds S + k tokens per request),
  P = 0, τ = ``token_time``/1000;
* prefill: B = 0, K = 0, P = ``batch_size``·``prompt_size``, τ = ``prompt_time``/1000.

Examples
--------
>>> import pandas as pd
>>> table = pd.DataFrame({"batch": [1, 2, 4, 8], "kv_tokens": [100, 300, 400, 900],
...                       "prefill_tokens": 0, "seconds": [0.0111, 0.0123, 0.0144, 0.0189]})
>>> fit = fit_step_time(table, "linear")
>>> fit.model.kind, round(fit.r2, 3)
('linear', 1.0)
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from numerics.errors import FlowstabError, TraceError
from numerics.files import atomic_path
from numerics.model.steptime import StepTimeModel

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "FEATURES",
    "KINDS",
    "SPLITWISE_SUSPECT",
    "CalibrationError",
    "FitResult",
    "combine_linear",
    "fit_slot",
    "fit_splitwise",
    "fit_step_time",
    "load_splitwise",
    "plot_residuals",
    "save_figure",
]

KINDS = ("const", "linear", "staircase")
#: The columns of a measurements table that a model may use, with their linear coefficient names.
FEATURES = {"batch": "cb", "kv_tokens": "ck", "prefill_tokens": "cp"}
#: Staircase step widths b0 tried: every integer up to this value, then a log grid.
_B0_DENSE = 64
_B0_LOG_POINTS = 256

#: Rows of splitwise-sim's perf_model.csv dropped by default (model, tensor_parallel, batch_size):
#: llama2-70b at TP = 2 with batch 64 (prompt 512) reports a *shorter* prefill for 32,768 tokens
#: than for 16,384 tokens on every GPU (A100 796 vs 6,607 ms; H100 361 vs 2,394 ms) and an
#: end-to-end time 10-20x its prefill + 128 decode steps, so those runs did not do what their
#: columns say (70B weights on two GPUs leave no room for a 32k-token prefill).
SPLITWISE_SUSPECT = (("llama2-70b", 2, 64),)

_SPLITWISE_COLUMNS = ("model", "hardware", "prompt_size", "batch_size", "token_size",
                      "prompt_time", "token_time", "tensor_parallel")


class CalibrationError(FlowstabError):
    """Calibration input is unusable (too few measurements, missing torch for a GPU probe, ...)."""


@dataclass(frozen=True, eq=False)
class FitResult:
    """A fitted step-time model and how well it fits.

    Attributes
    ----------
    kind : str
    model : StepTimeModel
    coefficients : dict
        The model's parameters (seconds, seconds per request / token).
    r2 : float
        Coefficient of determination (1 − SS_res/SS_tot; NaN when every τ is equal).
    rmse_s : float
    n : int
        Number of measurements.
    features : tuple of str
        The table columns the model uses.
    fitted, residuals : ndarray
        τ̂ and τ − τ̂ per measurement (seconds).
    """

    kind: str
    model: StepTimeModel
    coefficients: dict
    r2: float
    rmse_s: float
    n: int
    features: tuple[str, ...] = ()
    fitted: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    residuals: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)

    @property
    def spec(self) -> str:
        """The model's spec string (``StepTimeModel.from_spec`` parses it back)."""
        return self.model.to_spec()

    def to_dict(self) -> dict:
        """A JSON-ready summary (no per-row arrays)."""
        return {
            "kind": self.kind,
            "spec": self.spec,
            "coefficients": {k: float(v) for k, v in self.coefficients.items()},
            "r2": float(self.r2),
            "rmse_s": float(self.rmse_s),
            "n": int(self.n),
            "features": list(self.features),
        }


def _table_arrays(table) -> tuple[dict[str, np.ndarray], np.ndarray]:
    if not isinstance(table, pd.DataFrame):
        table = pd.DataFrame(table)
    if "seconds" not in table.columns:
        raise CalibrationError(
            "a measurements table needs a 'seconds' column (and some of batch, kv_tokens, "
            f"prefill_tokens); got columns {list(table.columns)}"
        )
    n = len(table)
    cols = {}
    for name in FEATURES:
        col = table[name] if name in table.columns else pd.Series(np.zeros(n))
        cols[name] = np.asarray(col, dtype=float)
    y = np.asarray(table["seconds"], dtype=float)
    for name, arr in [*cols.items(), ("seconds", y)]:
        if not np.all(np.isfinite(arr)) or np.any(arr < 0):
            raise CalibrationError(f"measurements: column {name!r} must be finite and ≥ 0")
    return cols, y


def _r2(y: np.ndarray, yhat: np.ndarray) -> float:
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    ss_res = float(np.sum((y - yhat) ** 2))
    return float("nan") if ss_tot == 0 else 1.0 - ss_res / ss_tot


def _nnls(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    from scipy.optimize import nnls

    # scale columns to unit norm so that seconds-per-token and seconds live on one footing
    scale = np.linalg.norm(x, axis=0)
    scale[scale == 0] = 1.0
    beta, _ = nnls(x / scale, y)
    return beta / scale


def fit_step_time(table, kind: str = "linear", features: Sequence[str] | None = None) -> FitResult:
    """Fit one step-time model form to a measurements table.

    Parameters
    ----------
    table : DataFrame or mapping of columns
        ``seconds`` plus any of ``batch``, ``kv_tokens``, ``prefill_tokens`` (missing ones are 0).
    kind : {"const", "linear", "staircase"}
    features : sequence of str, optional
        For ``linear``: the columns to use (default: those that vary in the table).

    Returns
    -------
    FitResult

    Raises
    ------
    CalibrationError
        Unknown kind or feature, bad values, or fewer measurements than parameters.
    """
    if kind not in KINDS:
        raise CalibrationError(f"step-time kind must be one of {', '.join(KINDS)}, got {kind!r}")
    cols, y = _table_arrays(table)
    n = y.size
    if kind == "const":
        if n < 1:
            raise CalibrationError("fitting a constant step time needs at least one measurement")
        c0 = float(y.mean())
        if c0 <= 0:
            raise CalibrationError("every measured step time is 0 s; nothing to fit")
        model = StepTimeModel("const", c0=c0)
        coef = {"c0": c0}
        used: tuple[str, ...] = ()
    elif kind == "linear":
        if features is None:
            used = tuple(f for f in FEATURES if np.ptp(cols[f]) > 0) if n else ()
        else:
            bad = [f for f in features if f not in FEATURES]
            if bad:
                raise CalibrationError(
                    f"unknown feature(s) {bad}; choose from {', '.join(FEATURES)}"
                )
            used = tuple(features)
        if n < len(used) + 1:
            raise CalibrationError(
                f"a linear step time in {', '.join(used) or 'nothing'} needs at least "
                f"{len(used) + 1} measurements, got {n}"
            )
        x = np.column_stack([np.ones(n)] + [cols[f] for f in used])
        beta = _nnls(x, y)
        coef = {"c0": float(beta[0])} | {FEATURES[f]: float(b) for f, b in zip(used, beta[1:], strict=True)}
        model = StepTimeModel("linear", **coef)
        coef = {k: getattr(model, k) for k in ("c0", "cb", "ck", "cp")}
    else:
        load = cols["batch"] + cols["prefill_tokens"]
        if n < 3:
            raise CalibrationError(f"a staircase step time needs at least 3 measurements, got {n}")
        if not np.any(load > 0):
            raise CalibrationError("a staircase needs measurements with batch + prefill_tokens > 0")
        top = float(load.max())
        grid = np.unique(np.concatenate([
            np.arange(1, min(_B0_DENSE, top) + 1),
            np.ceil(np.geomspace(1, top, _B0_LOG_POINTS)),
        ]))
        best = None
        for b0 in grid:
            x = np.column_stack([np.ones(n), np.ceil(load / b0)])
            beta = _nnls(x, y)
            sse = float(np.sum((y - x @ beta) ** 2))
            if best is None or sse < best[0] - 1e-15 * max(1.0, best[0]):
                best = (sse, float(b0), beta)
        _, b0, beta = best
        c, a = float(beta[0]), float(beta[1])
        if c + a <= 0:
            raise CalibrationError("the staircase fit is identically 0 s; check the measurements")
        model = StepTimeModel("staircase", c=c, a=a, b0=b0)
        coef = {"c": c, "a": a, "b0": b0}
        used = ("batch", "prefill_tokens")
    yhat = np.asarray(model.seconds(cols["batch"], cols["kv_tokens"], cols["prefill_tokens"]), dtype=float)
    yhat = np.broadcast_to(yhat, y.shape).astype(float)
    res = y - yhat
    rmse = float(np.sqrt(np.mean(res**2))) if n else float("nan")
    r2 = 0.0 if kind == "const" and n and np.ptp(y) > 0 else _r2(y, yhat)
    return FitResult(kind, model, coef, r2, rmse, int(n), used, yhat, res)


def combine_linear(decode: FitResult, prefill: FitResult) -> StepTimeModel:
    """One slot model from separate fits: c0, cb, ck of the decode fit and cp of the prefill fit.

    This is the cost of a *mixed* iteration (decode steps and prefill tokens in one forward pass,
    the weights read once), so the prefill fit's intercept is not added.
    """
    if decode.kind != "linear" or prefill.kind != "linear":
        raise CalibrationError("combine_linear takes two linear fits")
    d = decode.model
    return StepTimeModel("linear", c0=d.c0, cb=d.cb, ck=d.ck, cp=prefill.model.cp)


def fit_slot(decode_table, prefill_table) -> FitResult:
    r"""The slot model in two stages: decode terms first, then the price of a prefill token.

    :math:`c_0, c_b, c_k` are the linear decode fit (τ in B and K on decode-only iterations);
    :math:`c_p \ge 0` is then the least-squares slope, through the origin, of what iterations with
    prefill cost beyond that decode model, :math:`\tau - (c_0 + c_b B + c_k K)`, against P. A
    joint fit over all rows would let the few prefill rows (B = 1, K = P + 1) pull the intercept
    and the KV slope; the stages keep each coefficient where its data are. Quality (R², residuals)
    is reported on all rows together.
    """
    dec = fit_step_time(decode_table, "linear", ("batch", "kv_tokens"))
    cols, y = _table_arrays(prefill_table)
    base = np.asarray(dec.model.seconds(cols["batch"], cols["kv_tokens"]), dtype=float)
    p = cols["prefill_tokens"]
    if not np.any(p > 0):
        raise CalibrationError("fit_slot: the prefill table has no iteration with prefill tokens")
    cp = max(0.0, float(np.dot(p, y - base) / np.dot(p, p)))
    d = dec.model
    model = StepTimeModel("linear", c0=d.c0, cb=d.cb, ck=d.ck, cp=cp)
    both = pd.concat([pd.DataFrame(decode_table), pd.DataFrame(prefill_table)], ignore_index=True)
    both = both.fillna({c: 0.0 for c in FEATURES if c in both.columns})
    allc, ally = _table_arrays(both)
    yhat = np.asarray(model.seconds(allc["batch"], allc["kv_tokens"], allc["prefill_tokens"]), dtype=float)
    res = ally - yhat
    coef = {k: getattr(model, k) for k in ("c0", "cb", "ck", "cp")}
    return FitResult("linear", model, coef, _r2(ally, yhat), float(np.sqrt(np.mean(res**2))), int(ally.size),
                     tuple(FEATURES), yhat, res)


# ------------------------------------------------------------------------------------ splitwise
def load_splitwise(path: str | os.PathLike, drop_suspect: bool = True) -> pd.DataFrame:
    """Read splitwise-sim's ``perf_model.csv`` into a tidy measurements table.

    Returns one row per measurement with columns ``model, hardware, tensor_parallel, phase``
    (``decode`` or ``prefill``), ``batch, kv_tokens, prefill_tokens, seconds`` (see the module
    docstring for how the columns map). ``drop_suspect`` leaves out :data:`SPLITWISE_SUSPECT`.

    Raises
    ------
    TraceError
        The file is missing or lacks the expected columns.
    """
    p = Path(path)
    if not p.is_file():
        raise TraceError(f"{p}: no such file (the splitwise-sim perf_model.csv; see data/README.md)")
    try:
        raw = pd.read_csv(p)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        what = "empty" if isinstance(exc, pd.errors.EmptyDataError) else "not a readable CSV file"
        raise TraceError(f"{p}: {what}; give splitwise-sim's perf_model.csv (see data/README.md)") from None
    missing = [c for c in _SPLITWISE_COLUMNS if c not in raw.columns]
    if missing:
        raise TraceError(f"{p}: missing column(s) {', '.join(missing)}; is this perf_model.csv?")
    if drop_suspect:
        bad = np.zeros(len(raw), dtype=bool)
        for model, tp, batch in SPLITWISE_SUSPECT:
            bad |= ((raw.model == model) & (raw.tensor_parallel == tp) & (raw.batch_size == batch)).to_numpy()
        raw = raw[~bad]
    keys = raw[["model", "hardware", "tensor_parallel"]].reset_index(drop=True)
    b = raw.batch_size.to_numpy(dtype=float)
    s = raw.prompt_size.to_numpy(dtype=float)
    t = raw.token_size.to_numpy(dtype=float)
    decode = keys.assign(phase="decode", batch=b, kv_tokens=b * (s + (t + 1) / 2), prefill_tokens=0.0,
                         seconds=raw.token_time.to_numpy(dtype=float) / 1000)
    prefill = keys.assign(phase="prefill", batch=0.0, kv_tokens=0.0, prefill_tokens=b * s,
                          seconds=raw.prompt_time.to_numpy(dtype=float) / 1000)
    return pd.concat([decode, prefill], ignore_index=True)


def fit_splitwise(table: pd.DataFrame, kinds: Sequence[str] = KINDS) -> pd.DataFrame:
    """Fit every kind per (model, hardware, tensor_parallel, phase) of :func:`load_splitwise`.

    Returns a DataFrame with one row per fit: the group keys, ``kind``, ``n``, ``r2``,
    ``rmse_ms``, the coefficients (``c0, cb, ck, cp, c, a, b0``) and ``spec``; the FitResult
    objects are in ``DataFrame.attrs["fits"]`` keyed by the row's (keys..., kind) tuple.
    """
    rows, fits = [], {}
    groups = ["model", "hardware", "tensor_parallel", "phase"]
    for key, sub in table.groupby(groups, sort=True):
        for kind in kinds:
            fit = fit_step_time(sub, kind)
            m = fit.model
            fits[(*key, kind)] = fit
            rows.append(dict(zip(groups, key, strict=True)) | {
                "kind": kind, "n": fit.n, "r2": fit.r2, "rmse_ms": 1000 * fit.rmse_s,
                "c0": m.c0, "cb": m.cb, "ck": m.ck, "cp": m.cp, "c": m.c, "a": m.a, "b0": m.b0,
                "spec": fit.spec,
            })
    out = pd.DataFrame(rows)
    out.attrs["fits"] = fits
    return out


# ------------------------------------------------------------------------------------ plotting
def plot_residuals(fits: Mapping[str, FitResult], path: str | os.PathLike, title: str = "") -> Path:
    """Residuals τ − τ̂ (ms) against τ̂ (ms), one panel per fit, saved as a figure.

    matplotlib is imported here (Agg canvas), never at import time.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not fits:
        raise CalibrationError("plot_residuals: no fits to plot")
    n = len(fits)
    ncols = min(3, n)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(4.2 * ncols, 3.3 * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax, (label, fit) in zip(axes, fits.items(), strict=False):
        ax.axhline(0, color="0.5", lw=0.8)
        ax.plot(1000 * fit.fitted, 1000 * fit.residuals, "o", ms=3, color="#0072B2", alpha=0.7)
        ax.set_title(f"{label}\n{fit.kind}: R² = {fit.r2:.4f}, RMSE = {1000 * fit.rmse_s:.3g} ms",
                     fontsize="small")
        ax.set_xlabel("fitted τ̂ (ms)")
        ax.set_ylabel("residual τ − τ̂ (ms)")
    for ax in axes[n:]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    return save_figure(fig, path, "the residual plot")


def save_figure(fig: Figure, path: str | os.PathLike, what: str) -> Path:
    """Save the matplotlib figure ``fig`` to ``path`` at 120 dpi and return the path; a file that
    cannot be written is a :class:`CalibrationError` "cannot write {what} {path}: {reason}"."""
    out = Path(path)
    with atomic_path(out, what) as tmp:
        fig.savefig(tmp, dpi=120)
    return out
