"""Simulation outputs: per-request records, time series and a summary.

:func:`simulate` runs one :class:`~numerics.sim.engine.SimConfig` and returns a
:class:`SimResult` with

* ``records`` — one row per request: arrival, first and last activation, completion (−1 while
  unfinished), evictions, wasted tokens, TTFT and latency in slots (and seconds with a step time);
* ``timeseries`` — per recorded slot: KV tokens in use (after eviction), queue length, active
  requests, activations, evictions, wall clock;
* ``summary`` — the dict that ``flowstab simulate --json`` prints.

Latency of a request is completion − arrival + 1 slots (it emits its last token in its completion
slot); TTFT is first activation − arrival + 1. Statistics cover requests that arrived at or after
``warmup`` and slots at or after ``warmup``; counts of evictions and wasted tokens cover the
window too.
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
    arrival = np.asarray(sim.arrival_slot[:n], dtype=np.int64)
    first = np.asarray(sim.first_act, dtype=np.int64)
    done = np.asarray(sim.done_slot, dtype=np.int64)
    seen = arrival >= 0  # trace replay: requests beyond the horizon never arrive
    rec = pd.DataFrame(
        {
            "request": np.arange(n),
            "cls": np.asarray(sim.cls, dtype=np.int64),
            "prompt": np.asarray(sim.S, dtype=np.int64),
            "decode": np.asarray(sim.O, dtype=np.int64),
            "arrival_slot": arrival,
            "first_activation_slot": first,
            "last_activation_slot": np.asarray(sim.act_slot, dtype=np.int64),
            "completion_slot": done,
            "evictions": np.asarray(sim.n_evict, dtype=np.int64),
            "wasted_tokens": np.asarray(sim.wasted, dtype=np.int64),
        }
    )[seen].reset_index(drop=True)
    finished = rec.completion_slot >= 0
    rec["ttft_slots"] = np.where(rec.first_activation_slot >= 0,
                                 rec.first_activation_slot - rec.arrival_slot + 1, -1)
    rec["latency_slots"] = np.where(finished, rec.completion_slot - rec.arrival_slot + 1, -1)
    step = cfg.step_time is not None
    if step:
        start = sim.clock_at
        arr_s = start[rec.arrival_slot.to_numpy()]
        if sim.arrival_time is not None:
            arr_s = sim.arrival_time[: n][seen]
        end_clock = sim.end_clock
        rec["arrival_s"] = arr_s
        fa = rec.first_activation_slot.to_numpy()
        cs = rec.completion_slot.to_numpy()
        rec["ttft_s"] = np.where(fa >= 0, end_clock[np.maximum(fa, 0)] - arr_s, np.nan)
        rec["latency_s"] = np.where(cs >= 0, end_clock[np.maximum(cs, 0)] - arr_s, np.nan)
    ts = pd.DataFrame(
        {
            "slot": np.asarray(traj["slot"], dtype=np.int64),
            "kv_tokens": np.asarray(traj["usage"], dtype=np.int64),
            "queue": np.asarray(traj["queue"], dtype=np.int64),
            "active": np.asarray(traj["active"], dtype=np.int64),
            "activations": np.asarray(traj["activations"], dtype=np.int64),
            "evictions": np.asarray(traj["evictions"], dtype=np.int64),
            "clock_s": np.asarray(traj["clock"], dtype=float),
        }
    )
    w = cfg.warmup
    window = cfg.slots - w
    in_win = rec.arrival_slot >= w
    fin = rec[in_win & finished]
    done_in_win = rec[(rec.completion_slot >= w)]
    tsw = ts[ts.slot >= w]
    util = tsw.kv_tokens.to_numpy() / cfg.memory_tokens
    second_half = ts[ts.slot >= cfg.slots // 2]
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
        "throughput_requests_per_slot": len(done_in_win) / window,
        "throughput_tokens_per_slot": (sim.win_tokens - sim.win_wasted) / window,
        "latency_mean_slots": float(fin.latency_slots.mean()) if len(fin) else float("nan"),
        "latency_p95_slots": float(fin.latency_slots.quantile(0.95)) if len(fin) else float("nan"),
        "ttft_mean_slots": float(fin.ttft_slots.mean()) if len(fin) else float("nan"),
        "kv_util_mean": float(util.mean()) if util.size else float("nan"),
        "kv_util_std": float(util.std()) if util.size else float("nan"),
        "kv_peak_tokens": int(tsw.kv_tokens.max()) if len(tsw) else 0,
        "evictions": int(sim.win_evictions),
        "wasted_tokens": int(sim.win_wasted),
        "queue_slope": _slope(second_half["queue"].to_numpy()) / cfg.stride,
    }
    if step:
        seconds = float(sim.clock_at[cfg.slots] - sim.clock_at[w])
        summary.update(
            {
                "duration_s": float(sim.clock_at[cfg.slots]),
                "throughput_requests_per_s": len(done_in_win) / seconds if seconds > 0 else float("nan"),
                "throughput_tokens_per_s": (sim.win_tokens - sim.win_wasted) / seconds
                if seconds > 0 else float("nan"),
                "latency_mean_s": float(fin.latency_s.mean()) if len(fin) else float("nan"),
                "latency_p95_s": float(fin.latency_s.quantile(0.95)) if len(fin) else float("nan"),
                "ttft_mean_s": float(fin.ttft_s.mean()) if len(fin) else float("nan"),
            }
        )
    return SimResult(cfg, rec, ts, summary)
