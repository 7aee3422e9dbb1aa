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
statistics (numpy's default).

Changed meanings (issue 12, fair accounting): ``latency_mean_slots``/``latency_p95_slots`` (and
``_s``) and ``ttft_mean_slots``/``ttft_mean_s`` were statistics of the *finished* window arrivals;
they are now censored over all window arrivals (the finished-only latency figures are
``latency_finished_*``). ``evictions`` and ``wasted_tokens`` no longer count drops on admission;
``activations`` in the time series counts only activations that produced a token; TTFT runs to
the first activation that produced a token; the records' unfinished/never-activated entries are
``<NA>``, no longer −1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from numerics.errors import WorkloadError
from numerics.sim.config import EngineName, SimConfig, check_engine
from numerics.sim.engine import _Sim, run

__all__ = ["SimResult", "simulate"]


@dataclass(frozen=True, eq=False)
class SimResult:
    """The outputs of one run (see the module docstring)."""

    config: SimConfig
    records: pd.DataFrame
    timeseries: pd.DataFrame
    summary: dict


def _slope(y: np.ndarray) -> float:
    """Least-squares slope per slot of y over its index."""
    if y.size < 2:
        return 0.0
    x = np.arange(y.size, dtype=float)
    return float(np.polyfit(x, y.astype(float), 1)[0])


def _nullable(values: np.ndarray, missing: np.ndarray) -> pd.arrays.IntegerArray:
    """An ``Int64`` array: ``values`` where present, ``<NA>`` where ``missing``."""
    return pd.arrays.IntegerArray(np.where(missing, 0, values).astype(np.int64), missing)


def _stats(x: np.ndarray, prefix: str, unit: str, quantiles: tuple[int, ...]) -> dict:
    """``{prefix}_mean_{unit}`` and ``{prefix}_p{q}_{unit}`` of x (NaN when x is empty)."""
    nan = float("nan")
    out = {f"{prefix}_mean_{unit}": float(x.mean()) if x.size else nan}
    for q in quantiles:
        out[f"{prefix}_p{q}_{unit}"] = float(np.quantile(x, q / 100)) if x.size else nan
    return out


def _window_stats(latency: np.ndarray, finished: np.ndarray, latency_censored: np.ndarray,
                  ttft_censored: np.ndarray, unit: str) -> dict:
    """Latency (censored, then finished-only) and TTFT (censored) statistics of the window."""
    out = _stats(latency_censored, "latency", unit, (95, 99))
    if unit == "slots":  # the same fraction in seconds: reported once
        out["latency_censored_fraction"] = float((~finished).mean()) if finished.size else float("nan")
    out |= _stats(latency[finished], "latency_finished", unit, (95, 99))
    out |= _stats(ttft_censored, "ttft", unit, (99,))
    return out


def simulate(cfg: SimConfig, check: Callable[[object, int], None] | None = None,
             engine: EngineName = "auto") -> SimResult:
    """Run one simulation.

    Parameters
    ----------
    cfg : SimConfig
    check : callable, optional
        ``check(sim, t)`` is called every slot after eviction (Python engine only).
    engine : {"auto", "python", "fast"}
        ``fast`` is the compiled twin (:mod:`numerics.sim.fast`; same results for the same seed)
        for the FIFO policies with block size 1; ``auto`` uses it when possible and numba is
        installed, else the Python engine.

    Returns
    -------
    SimResult
        Records, time series and summary, with the accounting of the module docstring: latency
        and TTFT statistics over every window arrival, the unfinished ones (never activated ones,
        for TTFT) censored at the horizon.
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
        raise WorkloadError("the fast engine runs flow/greedy/alpha/reserve with block_size 1 only")
    if use_fast:
        sim = _Sim(cfg)
        traj = fast.run_fast(sim)
        waiting_end = sim.queue_length_end
    else:
        sim, traj = run(cfg, check)
        traj = asdict(traj)
        waiting_end = len(sim.queue)
    n = sim.n_req
    arrival_all = np.asarray(sim.arrival_slot[:n], dtype=np.int64)
    seen = arrival_all >= 0  # trace replay: requests beyond the horizon never arrive
    arrival = arrival_all[seen]
    first = np.asarray(sim.first_act, dtype=np.int64)[seen]
    last = np.asarray(sim.last_act, dtype=np.int64)[seen]
    done = np.asarray(sim.done_slot, dtype=np.int64)[seen]
    started, finished = first >= 0, done >= 0
    ttft = first - arrival + 1
    latency = done - arrival + 1
    rec = pd.DataFrame(
        {
            "request": np.arange(n)[seen],
            "cls": np.asarray(sim.cls, dtype=np.int64)[seen],
            "prompt": np.asarray(sim.S, dtype=np.int64)[seen],
            "decode": np.asarray(sim.O, dtype=np.int64)[seen],
            "arrival_slot": arrival,
            "first_activation_slot": _nullable(first, ~started),
            "last_activation_slot": _nullable(last, ~started),
            "completion_slot": _nullable(done, ~finished),
            "evictions": np.asarray(sim.n_evict, dtype=np.int64)[seen],
            "dropped_on_admission": np.asarray(sim.n_drop, dtype=np.int64)[seen],
            "wasted_tokens": np.asarray(sim.wasted, dtype=np.int64)[seen],
            "ttft_slots": _nullable(ttft, ~started),
            "latency_slots": _nullable(latency, ~finished),
        }
    )
    step = cfg.step_time is not None
    horizon = cfg.slots
    if step:
        if sim.arrival_time is not None:
            arr_s = np.asarray(sim.arrival_time[:n], dtype=float)[seen]
        else:
            arr_s = sim.clock_at[arrival]
        end_clock = sim.end_clock
        ttft_s = np.where(started, end_clock[np.maximum(first, 0)] - arr_s, np.nan)
        latency_s = np.where(finished, end_clock[np.maximum(done, 0)] - arr_s, np.nan)
        rec["arrival_s"] = arr_s
        rec["ttft_s"] = ttft_s
        rec["latency_s"] = latency_s
    ts_slot = np.asarray(traj["slot"], dtype=np.int64)
    ts_kv = np.asarray(traj["usage"], dtype=np.int64)
    ts_queue = np.asarray(traj["queue"], dtype=np.int64)
    ts = pd.DataFrame(
        {
            "slot": ts_slot,
            "kv_tokens": ts_kv,
            "queue": ts_queue,
            "active": np.asarray(traj["active"], dtype=np.int64),
            "activations": np.asarray(traj["activations"], dtype=np.int64),
            "evictions": np.asarray(traj["evictions"], dtype=np.int64),
            "dropped_on_admission": np.asarray(traj["dropped"], dtype=np.int64),
            "clock_s": np.asarray(traj["clock"], dtype=float),
        }
    )
    w = cfg.warmup
    window = cfg.slots - w
    in_win = arrival >= w
    fin_w = finished[in_win]
    lat_w = latency[in_win]
    arr_w = arrival[in_win]
    lat_cens = np.where(fin_w, lat_w, horizon - arr_w)
    ttft_cens = np.where(started[in_win], ttft[in_win], horizon - arr_w)
    n_done_in_win = int(np.count_nonzero(done >= w))
    ts_win = ts_slot >= w
    kv_w = ts_kv[ts_win]
    util = kv_w / cfg.memory_tokens
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
        "completed_fraction": float(fin_w.mean()) if fin_w.size else nan,
        **_window_stats(lat_w, fin_w, lat_cens, ttft_cens, "slots"),
        "kv_util_mean": float(util.mean()) if util.size else nan,
        "kv_util_std": float(util.std()) if util.size else nan,
        "kv_peak_tokens": int(kv_w.max()) if kv_w.size else 0,
        "active_max": int(sim.win_active_max),
        "evictions": int(sim.win_evictions),
        "dropped_on_admission": int(sim.win_dropped),
        "wasted_tokens": int(sim.win_wasted),
        "queue_slope": _slope(ts_queue[ts_slot >= cfg.slots // 2]) / cfg.stride,
    }
    if step:
        seconds = float(sim.clock_at[cfg.slots] - sim.clock_at[w])
        end_s = float(sim.clock_at[cfg.slots])
        arr_s_w = arr_s[in_win]
        lat_s_w = latency_s[in_win]
        ttft_s_w = ttft_s[in_win]
        summary.update(
            {
                "duration_s": end_s,
                "throughput_requests_per_s": n_done_in_win / seconds if seconds > 0 else nan,
                "throughput_tokens_per_s": (sim.win_tokens - sim.win_wasted) / seconds
                if seconds > 0 else nan,
                **_window_stats(lat_s_w, fin_w, np.where(fin_w, lat_s_w, end_s - arr_s_w),
                                np.where(started[in_win], ttft_s_w, end_s - arr_s_w), "s"),
            }
        )
    return SimResult(cfg, rec, ts, summary)
