"""Simulation outputs: per-request records, time series and a summary.

:func:`simulate` runs one :class:`~numerics.sim.engine.SimConfig` and returns a
:class:`SimResult` with

* ``records`` — one row per request that arrived within the horizon: class, lengths, arrival,
  first and last activation, completion, evictions, drops on admission, wasted tokens, TTFT and
  latency in slots (and arrival, TTFT and latency in seconds with a step time). A value that does
  not exist is missing, never a sentinel: the slot columns and ``ttft_slots``/``latency_slots``
  are nullable integers (pandas ``Int64``, ``<NA>`` for a request never activated or not
  finished), the seconds columns NaN;
* ``timeseries`` — per recorded slot: KV tokens in use (after eviction), queue length, active
  requests, activations, evictions, drops on admission, wall clock;
* ``summary`` — the dict that ``flowstab simulate --json`` prints.

``simulate(cfg, records=False)`` is the summary-only mode: ``records`` and ``timeseries`` are None
and nothing per request is kept beyond what the summary needs (on the compiled engine: the first
activation and completion slots, 8 bytes per request, next to the drawn prompts, decodes and
arrival slots; per recorded slot, the KV usage of the window and the queue of the second half).
The summary is the same, value for value, in both modes.

Accounting (docs/model.md, "Accounting"):

* **Latency** of a request is completion − arrival + 1 slots (it emits its last token in its
  completion slot); **TTFT** is first activation − arrival + 1, where the first activation is the
  first one that produced a token.
* A request activated and evicted in the same slot, before it emitted a token, was never
  activated: no activation, no TTFT, no eviction, no prefill in seconds, no wasted tokens. It is
  counted on its own: ``dropped_on_admission`` (summary, time series, records).
* The window: statistics cover requests that arrived at or after ``warmup`` and slots at or after
  ``warmup``; evictions, drops, wasted tokens, tokens and completions are counted in the window.
* **Censoring.** Latency and TTFT statistics cover *every* window arrival. A request not finished
  at the horizon T counts with latency T − arrival slots (in seconds: the clock at the horizon −
  its arrival time), the latency it would have had finishing in the last slot — a lower bound; a
  request never activated counts with TTFT T − arrival the same way. ``latency_censored_fraction``
  says how many were censored (1 − ``completed_fraction``), and ``latency_finished_*`` give the
  statistics of the finished window arrivals alone. With no window arrival these are NaN.

Summary keys. Run: ``policy``, ``memory_tokens``, ``slots``, ``warmup``, ``seed``,
``arrival_rate_per_slot``. Counts over the run: ``arrived``, ``completed``, ``waiting_end``,
``active_end``. Window: ``throughput_requests_per_slot``, ``throughput_tokens_per_slot`` (emitted
minus wasted tokens), ``completed_fraction`` (of the window's arrivals), ``latency_mean_slots``,
``latency_p95_slots``, ``latency_p99_slots`` (censored), ``latency_censored_fraction``,
``latency_finished_mean_slots``, ``latency_finished_p95_slots``, ``latency_finished_p99_slots``,
``ttft_mean_slots``, ``ttft_p99_slots`` (censored), ``kv_util_mean``, ``kv_util_std``,
``kv_peak_tokens`` (over the recorded slots), ``active_max`` (the largest number of active
requests in a window slot, every slot), ``evictions``, ``dropped_on_admission``,
``wasted_tokens``, ``queue_slope`` (of the second half). With a step time also ``duration_s``,
``throughput_requests_per_s``, ``throughput_tokens_per_s`` and the latency and TTFT statistics
in seconds (``latency_mean_s`` … ``ttft_p99_s``). Percentiles interpolate linearly between order
statistics (numpy's default, the same as pandas' ``quantile``). ``queue_slope`` is the least-squares
slope of the recorded queue lengths over their slots, computed exactly in integers and rounded
once (the value ``np.polyfit`` approximates).

Changed meanings (issue 12, fair accounting): ``latency_mean_slots``/``latency_p95_slots`` (and
``_s``) and ``ttft_mean_slots``/``ttft_mean_s`` were statistics of the *finished* window arrivals;
they are now censored over all window arrivals (the finished-only latency figures are
``latency_finished_*``). ``evictions`` and ``wasted_tokens`` no longer count drops on admission;
``activations`` in the time series counts only activations that produced a token; TTFT runs to
the first activation that produced a token; the records' unfinished/never-activated entries are
``<NA>``, no longer −1.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from numerics.errors import WorkloadError
from numerics.sim.config import EngineName, SimConfig, check_engine
from numerics.sim.engine import _Sim, run

__all__ = ["SimResult", "quantiles", "simulate"]


@dataclass(frozen=True, eq=False)
class SimResult:
    """The outputs of one run (see the module docstring); ``records`` and ``timeseries`` are None
    in the summary-only mode (``simulate(cfg, records=False)``)."""

    config: SimConfig
    records: pd.DataFrame | None
    timeseries: pd.DataFrame | None
    summary: dict

    def __repr__(self) -> str:
        s = self.summary
        tables = "summary only" if self.records is None else (
            f"records {len(self.records):,} rows, timeseries {len(self.timeseries):,} rows")
        return (f"SimResult({s.get('policy')!r}, M = {s.get('memory_tokens')}, {s.get('slots'):,} slots, "
                f"{s.get('completed'):,} of {s.get('arrived'):,} requests completed, {tables})")


#: Limbs of :func:`_slope`'s exact sums: y is split into 16-bit digits, and chunks of 2**19
#: products x·digit (x < 2**27 slots) sum below 2**62, inside int64.
_LIMB_BITS = 16
_CHUNK = 2**19


def _slope(y: np.ndarray) -> float:
    """Least-squares slope per slot of the non-negative integers y over their index 0..n−1.

    With x̄ = (n − 1)/2: slope = Σ(x − x̄)y / Σ(x − x̄)² = (12 Σxy − 6(n − 1) Σy) / (n(n² − 1)),
    evaluated in exact integer arithmetic and rounded once (Python's int / int).
    """
    n = int(y.size)
    if n < 2:
        return 0.0
    y = np.asarray(y, dtype=np.int64)
    sy = 0
    sxy = 0
    for lo in range(0, n, _CHUNK):
        part = y[lo:lo + _CHUNK]
        x = np.arange(lo, lo + part.size, dtype=np.int64)
        sy += int(part.sum())
        shift = 0
        while part.size and part.max() > 0:
            sxy += int(np.dot(x, part & ((1 << _LIMB_BITS) - 1))) << shift
            part = part >> _LIMB_BITS
            shift += _LIMB_BITS
    return (12 * sxy - 6 * (n - 1) * sy) / (n * (n * n - 1))


def _mean_std(y: np.ndarray) -> tuple[float, float]:
    """Mean and population standard deviation of y (NaN, NaN when empty), as ``y.mean()`` and
    ``y.std()`` give them up to rounding: two compiled passes with float64 accumulators
    (:func:`numerics.sim._summary_kernel.mean_and_sq_dev`), no array-sized temporary."""
    from numerics.sim._summary_kernel import mean_and_sq_dev

    n = int(y.size)
    if n == 0:
        return float("nan"), float("nan")
    mean, ss = mean_and_sq_dev(y)
    return float(mean), math.sqrt(ss / n)


def _nullable(values: np.ndarray, missing: np.ndarray) -> pd.arrays.IntegerArray:
    """An ``Int64`` array: ``values`` where present, ``<NA>`` where ``missing``."""
    return pd.arrays.IntegerArray(np.where(missing, 0, values).astype(np.int64, copy=False), missing)


def quantiles(x: np.ndarray, probs: Sequence[float]) -> np.ndarray:
    """``np.quantile(x, probs)`` (numpy's default, linear method), the same floats.

    For integers whose range is at most half their number (latencies in slots), the order
    statistics come from counting the values (:func:`numerics.sim._summary_kernel.int_order_stats`,
    compiled) instead of a partition: the k-th smallest value (from 0) is the first v whose
    cumulative count exceeds k, and the interpolation is numpy's own (:math:`h = (n − 1)p`, the values at ⌊h⌋
    and ⌊h⌋ + 1, numpy's two-sided lerp).
    """
    n = int(x.size)
    if n == 0 or x.dtype.kind not in "iu":
        return np.quantile(x, probs)
    from numerics.sim._summary_kernel import int_order_stats, int_range

    x = np.asarray(x, dtype=np.int64)
    lo, hi = int_range(x)
    if hi - lo > n // 2:
        return np.quantile(x, probs)
    h = (n - 1) * np.asarray(probs, dtype=float)
    below = np.floor(h).astype(np.int64)
    above = np.minimum(below + 1, n - 1)
    stats = int_order_stats(x, np.concatenate([below, above]))
    a, b = stats[:below.size].astype(float), stats[below.size:].astype(float)
    t = h - below
    diff = b - a
    return np.where(t >= 0.5, b - diff * (1 - t), a + diff * t)


def _stats(x: np.ndarray, prefix: str, unit: str, quantile_list: tuple[int, ...]) -> dict:
    """``{prefix}_mean_{unit}`` and ``{prefix}_p{q}_{unit}`` of x (NaN when x is empty)."""
    nan = float("nan")
    out = {f"{prefix}_mean_{unit}": float(x.mean()) if x.size else nan}
    values = quantiles(x, [q / 100 for q in quantile_list]) if x.size else [nan] * len(quantile_list)
    for q, v in zip(quantile_list, values, strict=True):
        out[f"{prefix}_p{q}_{unit}"] = float(v)
    return out


def _window_stats(latency_censored: np.ndarray, latency_finished: np.ndarray,
                  ttft_censored: np.ndarray, unit: str) -> dict:
    """Latency (censored, then finished-only) and TTFT (censored) statistics of the window."""
    out = _stats(latency_censored, "latency", unit, (95, 99))
    if unit == "slots":  # the same fraction in seconds: reported once
        n = latency_censored.size
        out["latency_censored_fraction"] = (n - latency_finished.size) / n if n else float("nan")
    out |= _stats(latency_finished, "latency_finished", unit, (95, 99))
    out |= _stats(ttft_censored, "ttft", unit, (99,))
    return out


def simulate(cfg: SimConfig, check: Callable[[object, int], None] | None = None,
             engine: EngineName = "auto", *, records: bool = True) -> SimResult:
    """Run one simulation.

    Parameters
    ----------
    cfg : SimConfig
    check : callable, optional
        ``check(sim, t)`` is called every slot after eviction (Python engine only).
    engine : {"auto", "python", "fast"}
        ``fast`` is the compiled twin (:mod:`numerics.sim.fast`; same results for the same seed)
        for the built-in policies with a compiled rule (all but the adaptive and state-aware ones),
        every block size, arrival process and batching option (the step loop has its own compiled
        twin); ``auto`` uses it when possible and numba is installed, else the Python engine.
    records : bool
        Build the per-request ``records`` and the ``timeseries`` tables (default). False: the
        summary only (both None), with the memory of the run bounded by what the summary needs.

    Returns
    -------
    SimResult
        Records, time series and summary, with the accounting of the module docstring: latency
        and TTFT statistics over every window arrival, the unfinished ones (never activated ones,
        for TTFT) censored at the horizon. The summary does not depend on ``records``.
    """
    from numerics.sim import fast

    check_engine(engine)
    use_fast = check is None and engine != "python" and fast.fast_supported(cfg)
    if use_fast and engine == "auto":
        try:
            import numba  # noqa: F401
        except ImportError:  # pragma: no cover - numba is a dependency
            use_fast = False
    if engine == "fast" and not use_fast:
        raise WorkloadError("the fast engine runs the built-in policies that have a compiled rule, "
                            "without per-slot checks; use engine='python' (or 'auto')")
    if use_fast:
        sim = _Sim(cfg)
        traj = fast.run_fast(sim, records=records)
        waiting_end = sim.queue_length_end
    else:
        sim, trajectory = run(cfg, check)
        traj = _python_series(cfg, trajectory)
        waiting_end = len(sim.queue)
    summary = _summary(cfg, sim, traj, waiting_end)
    if not records:
        return SimResult(cfg, None, None, summary)
    return SimResult(cfg, _records(cfg, sim), _timeseries(traj), summary)


def _python_series(cfg: SimConfig, trajectory) -> dict:
    """The Python engine's recorded lists as arrays, with the summary's ``kv_win``/``queue_half``."""
    traj = {f.name: getattr(trajectory, f.name) for f in fields(trajectory)}
    slot = np.asarray(traj["slot"], dtype=np.int64)
    traj["slot"] = slot
    traj["usage"] = np.asarray(traj["usage"], dtype=np.int64)
    traj["queue"] = np.asarray(traj["queue"], dtype=np.int64)
    traj["kv_win"] = traj["usage"][slot >= cfg.warmup]
    traj["queue_half"] = traj["queue"][slot >= cfg.slots // 2]
    return traj


def _ints(values, m: int) -> np.ndarray:
    """The first ``m`` entries of a per-request list or array, as an array (no copy if possible)."""
    return np.asarray(values[:m])


def _records(cfg: SimConfig, sim) -> pd.DataFrame:
    """One row per request that arrived (the arrivals are the first ``sim.arrived`` ids)."""
    m = int(sim.arrived)
    arrival = np.asarray(sim.arrival_slot[:m], dtype=np.int64)
    first = _ints(sim.first_act, m)  # int32 from the kernel: _nullable and the sums widen them
    last = _ints(sim.last_act, m)
    done = _ints(sim.done_slot, m)
    started, finished = first >= 0, done >= 0
    rec = pd.DataFrame(
        {
            "request": np.arange(m, dtype=np.int64),
            "cls": np.asarray(sim.cls[:m], dtype=np.int64),
            "prompt": np.asarray(sim.S[:m], dtype=np.int64),
            "decode": np.asarray(sim.O[:m], dtype=np.int64),
            "arrival_slot": arrival,
            "first_activation_slot": _nullable(first, ~started),
            "last_activation_slot": _nullable(last, ~started),
            "completion_slot": _nullable(done, ~finished),
            "evictions": _ints(sim.n_evict, m).astype(np.int64),
            "dropped_on_admission": _ints(sim.n_drop, m).astype(np.int64),
            "wasted_tokens": _ints(sim.wasted, m).astype(np.int64),
            "ttft_slots": _nullable(first - arrival + 1, ~started),
            "latency_slots": _nullable(done - arrival + 1, ~finished),
        },
        copy=False,
    )
    if cfg.step_time is not None:
        arr_s = _arrival_seconds(sim, arrival)
        end_clock = sim.end_clock
        rec["arrival_s"] = arr_s
        rec["ttft_s"] = np.where(started, end_clock[np.maximum(first, 0)] - arr_s, np.nan)
        rec["latency_s"] = np.where(finished, end_clock[np.maximum(done, 0)] - arr_s, np.nan)
    return rec


def _timeseries(traj: dict) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "slot": np.asarray(traj["slot"], dtype=np.int64),
            "kv_tokens": np.asarray(traj["usage"], dtype=np.int64),
            "queue": np.asarray(traj["queue"], dtype=np.int64),
            "active": np.asarray(traj["active"], dtype=np.int64),
            "activations": np.asarray(traj["activations"], dtype=np.int64),
            "evictions": np.asarray(traj["evictions"], dtype=np.int64),
            "dropped_on_admission": np.asarray(traj["dropped"], dtype=np.int64),
            "clock_s": np.asarray(traj["clock"], dtype=float),
        },
        copy=False,
    )


def _arrival_seconds(sim, arrival: np.ndarray, start: int = 0) -> np.ndarray:
    """Arrival times in seconds of the requests ``start, start + 1, …`` with these arrival slots:
    the trace's timestamps in trace replay, else the clock at the start of the arrival slot."""
    if sim.arrival_time is not None:
        return np.asarray(sim.arrival_time[start:start + arrival.size], dtype=float)
    return sim.clock_at[arrival]


def _summary(cfg: SimConfig, sim, traj: dict, waiting_end: int) -> dict:
    """The summary (module docstring) from the per-request arrays and the recorded series alone.

    The arrivals are the first ``sim.arrived`` request ids, in non-decreasing arrival slot, so the
    window's arrivals are a contiguous range of ids: everything below works on views of it.
    """
    m = int(sim.arrived)
    arrival = np.asarray(sim.arrival_slot[:m], dtype=np.int64)
    w = cfg.warmup
    window = cfg.slots - w
    horizon = cfg.slots
    lo = int(np.searchsorted(arrival, w, side="left"))
    first_all = np.asarray(_ints(sim.first_act, m))  # int32 from the kernel, int64 from lists
    done_all = np.asarray(_ints(sim.done_slot, m))
    from numerics.sim._summary_kernel import slot_window

    lat_cens, lat_fin, ttft_cens, n_done_in_win = slot_window(arrival, first_all, done_all, lo, horizon, w)
    n_win = lat_cens.size
    kv_w = np.asarray(traj["kv_win"], dtype=np.int64)
    kv_mean, kv_std = _mean_std(kv_w)
    nan = float("nan")
    summary = {
        "policy": cfg.policy.spec(),
        "memory_tokens": int(cfg.memory_tokens),
        "slots": int(cfg.slots),
        "warmup": int(w),
        "seed": cfg.seed,
        "arrival_rate_per_slot": None if cfg.arrivals == "trace" else cfg.total_rate,
        "arrived": int(sim.arrived),
        "completed": int(sim.completed),
        "waiting_end": int(waiting_end),
        "active_end": int(sim.n_active),
        "throughput_requests_per_slot": n_done_in_win / window,
        "throughput_tokens_per_slot": (sim.win_tokens - sim.win_wasted) / window,
        "completed_fraction": lat_fin.size / n_win if n_win else nan,
        **_window_stats(lat_cens, lat_fin, ttft_cens, "slots"),
        "kv_util_mean": kv_mean / cfg.memory_tokens,
        "kv_util_std": kv_std / cfg.memory_tokens,
        "kv_peak_tokens": int(kv_w.max()) if kv_w.size else 0,
        "active_max": int(sim.win_active_max),
        "evictions": int(sim.win_evictions),
        "dropped_on_admission": int(sim.win_dropped),
        "wasted_tokens": int(sim.win_wasted),
        "queue_slope": _slope(np.asarray(traj["queue_half"])) / cfg.stride,
    }
    if cfg.step_time is not None:
        seconds = float(sim.clock_at[cfg.slots] - sim.clock_at[w])
        end_s = float(sim.clock_at[cfg.slots])
        arr_w, first_w, done_w = arrival[lo:], first_all[lo:], done_all[lo:]
        fin_w, started_w = done_w >= 0, first_w >= 0
        arr_s_w = _arrival_seconds(sim, arr_w, lo)
        end_clock = sim.end_clock
        lat_s_w = np.where(fin_w, end_clock[np.maximum(done_w, 0)] - arr_s_w, np.nan)
        ttft_s_w = np.where(started_w, end_clock[np.maximum(first_w, 0)] - arr_s_w, np.nan)
        summary.update(
            {
                "duration_s": end_s,
                "throughput_requests_per_s": n_done_in_win / seconds if seconds > 0 else nan,
                "throughput_tokens_per_s": (sim.win_tokens - sim.win_wasted) / seconds
                if seconds > 0 else nan,
                **_window_stats(np.where(fin_w, lat_s_w, end_s - arr_s_w), lat_s_w[fin_w],
                                np.where(started_w, ttft_s_w, end_s - arr_s_w), "s"),
            }
        )
    return summary
