r"""The report's "Trace comparison in seconds": a small §4.2-style comparison for its own workload.

For the report's workload, KV cache and step time, a small grid in *seconds* — Poisson arrivals at
load × Λ* (:data:`LOADS`; Λ* = M/(E[W]·τ(B_M, M, P_M)), the compute-coupled capacity) ×
eviction ``recompute`` / ``keep-progress`` × batching ``mixed`` / ``chunked`` (2 048 tokens a
step) — runs the compiled policies of the line-up (:func:`policy_specs`): greedy (watermark 0.01),
reserve at the largest decode length (bounded laws only), α-protection (α = 0.1), flow control at
0.95 λ_max and the clairvoyant MC-SF reference. Every policy of a cell sees the same arrivals
(the report's first :data:`REPLICATIONS` seeds, :data:`REQUESTS` requests each). The
Python-engine policies of the full comparison (MC, MC-SF with predicted lengths, WAIT, Nested WAIT)
are left out to keep the report within its time budget; the full comparison on the Azure and
ShareGPT traces is paper figure F12 (``python -m paper_figs --only f12``).

Metrics of a run (:func:`window_metrics`), over [w, H], H the last arrival and w = 0.2·H:
request and token throughput of the completions in the window, latency and TTFT mean, p95 and
p99 over the window's arrivals with the unfinished ones censored at H, KV utilisation mean and
standard deviation (time-weighted over the window's steps), evictions in the window and the
censored share. :func:`seconds_run` runs one policy on one arrival trace.

Examples
--------
>>> from numerics.model.specs import parse_law
>>> from numerics.model.steptime import StepTimeModel
>>> from numerics.model.workload import Workload
>>> wl = Workload.single(parse_law("20"), parse_law("geom:mean=10,max=100"))
>>> grid = section42_grid(wl, 2_000, StepTimeModel.from_spec("const:0.02"), seeds=[1], requests=100,
...                       loads=(1.2,), evictions=("recompute",), batchings=("mixed",))
>>> sorted(grid["cells"][0]["policies"]) == sorted(grid["specs"])
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

__all__ = ["BATCHINGS", "EVICTIONS", "FALLBACK_STEP_TIME", "LOADS", "MAX_BATCHED_TOKENS", "REPLICATIONS",
           "REQUESTS", "WARMUP_SHARE", "policy_specs", "report_section42", "seconds_run", "section42_grid",
           "section42_html", "window_metrics"]

#: Loads of the grid, as fractions of Λ* (requests/s).
LOADS = (0.9, 1.1)
#: Eviction semantics and batching modes of the grid (docs/engines.md).
EVICTIONS: tuple[Literal["recompute", "keep-progress"], ...] = ("recompute", "keep-progress")
BATCHINGS: tuple[Literal["mixed", "prefill-first", "chunked"], ...] = ("mixed", "chunked")
#: vLLM's max_num_batched_tokens of the chunked mode.
MAX_BATCHED_TOKENS = 2048
#: Requests per arrival trace and replications (the report's first seeds).
REQUESTS = 1_200
REPLICATIONS = 2
#: The share of the arrival span left out as warm-up.
WARMUP_SHARE = 0.2
#: The step time used when the report has none: paper figure F12's fitted H100 model
#: (numerics.calibration.fit on splitwise-sim's perf model, llama2-70b, H100, TP 4).
FALLBACK_STEP_TIME = "linear:c0=0.0288,cb=0.000282,ck=9.4e-08,cp=0.000107"
#: What a cell names a winner for, and which way is better.
_WINS = {"throughput_rps": "max", "latency_p99_s": "min", "ttft_p99_s": "min"}


def window_metrics(res, horizon_s: float, warmup_share: float, memory_tokens: int) -> dict[str, float]:
    """The metrics of the module docstring over [``warmup_share``·H, H], H = ``horizon_s``, from a
    :class:`~numerics.sim.SimResult` with records and a step time."""
    rec, ts = res.records, res.timeseries
    end, w = horizon_s, warmup_share * horizon_s
    span = end - w
    arr = rec.arrival_s.to_numpy(dtype=float)
    comp = arr + rec.latency_s.to_numpy(dtype=float)
    first = arr + rec.ttft_s.to_numpy(dtype=float)
    decode = rec.decode.to_numpy(dtype=float)
    done = np.isfinite(comp) & (comp <= end)
    out_w = done & (comp >= w)
    window = (arr >= w) & (arr <= end)
    lat = (np.where(done, comp, end) - arr)[window]
    started = np.isfinite(first) & (first <= end)
    ttft = (np.where(started, first, end) - arr)[window]
    clock = ts.clock_s.to_numpy(dtype=float)
    dur = np.diff(np.append(clock, float(res.summary["duration_s"])))
    inw = (clock >= w) & (clock < end)
    d, u = dur[inw], ts.kv_tokens.to_numpy(dtype=float)[inw] / memory_tokens
    u_mean = float(np.sum(d * u) / d.sum()) if d.sum() > 0 else math.nan
    u_std = float(math.sqrt(np.sum(d * (u - u_mean) ** 2) / d.sum())) if d.sum() > 0 else math.nan
    nan = math.nan

    def q(x: np.ndarray, p: float) -> float:
        return float(np.quantile(x, p)) if x.size else nan

    return {
        "throughput_rps": float(np.count_nonzero(out_w)) / span,
        "throughput_tps": float(decode[out_w].sum()) / span,
        "latency_mean_s": float(lat.mean()) if lat.size else nan,
        "latency_p95_s": q(lat, 0.95),
        "latency_p99_s": q(lat, 0.99),
        "ttft_mean_s": float(ttft.mean()) if ttft.size else nan,
        "ttft_p95_s": q(ttft, 0.95),
        "ttft_p99_s": q(ttft, 0.99),
        "kv_util_mean": u_mean,
        "kv_util_std": u_std,
        "evictions": float(ts.evictions.to_numpy()[inw].sum()),
        "censored_fraction": float(np.count_nonzero(~done[window]) / lat.size) if lat.size else nan,
    }


def seconds_run(workload, memory_tokens: int, spec: str, trace, seed: int,
                eviction: Literal["recompute", "keep-progress"],
                batching: Literal["mixed", "prefill-first", "chunked"], step_time,
                max_batched_tokens: int = MAX_BATCHED_TOKENS,
                warmup_share: float = WARMUP_SHARE) -> dict[str, float]:
    """One policy ``spec`` on one arrival ``trace`` (a :class:`~numerics.data.traces.Trace` with
    timestamps) under ``eviction`` and ``batching``, priced by ``step_time``: its
    :func:`window_metrics`. The run lasts until the trace's last arrival at least (every step
    lasts at least τ(0, 0, 0) = c0); ``max_batched_tokens`` is used by ``chunked`` only."""
    from numerics.sim import SimConfig, parse_policy, simulate

    horizon = float(trace.timestamps_s[-1])
    slots = int(horizon / float(step_time.seconds(0, 0, 0))) + 100
    sim = SimConfig(workload, memory_tokens, parse_policy(spec), slots=slots, arrivals="trace",
                    trace=trace, seed=int(seed), step_time=step_time, eviction=eviction, batching=batching,
                    max_batched_tokens=max_batched_tokens if batching == "chunked" else None)
    return window_metrics(simulate(sim), horizon, warmup_share, memory_tokens)


def policy_specs(workload, memory_tokens: int) -> dict[str, str]:
    """The compiled line-up of the module docstring: name → spec (reserve only for a bounded
    decode law)."""
    from numerics.analysis.conditions import lambda_max

    lam = lambda_max(workload, memory_tokens)
    specs = {"greedy": "greedy:watermark=0.01"}
    if math.isfinite(workload.max_decode):
        specs["reserve"] = f"reserve:max={int(workload.max_decode)}"
    specs |= {"alpha": "alpha:0.1", "flow": f"flow:rate={0.95 * lam:.6g}", "mcsf": "mcsf"}
    return specs


def section42_grid(workload, memory_tokens: int, step_time, seeds: Sequence[int], *,
                   requests: int = REQUESTS, loads: Sequence[float] = LOADS,
                   evictions: Sequence[str] = EVICTIONS,
                   batchings: Sequence[str] = BATCHINGS) -> dict[str, Any]:
    """The grid of the module docstring.

    Returns
    -------
    dict
        ``capacity_per_s`` (Λ*), ``lambda_max``, ``step_time`` (spec), ``requests``, ``seeds``,
        ``specs`` (name → spec) and ``cells``: one per (load, eviction, batching) with
        ``offered_rps``, ``policies`` (name → mean of each metric over the seeds) and ``winners``
        (metric → name: throughput max, p99 latency and p99 TTFT min, ties to the earlier policy;
        MC-SF is clairvoyant and is left out of the winners).
    """
    from numerics.analysis.capacity import compute_coupled_capacity
    from numerics.analysis.conditions import lambda_max
    from numerics.calibration.compare import poisson_trace

    specs = policy_specs(workload, memory_tokens)
    cap = compute_coupled_capacity(workload, memory_tokens, step_time)
    cells = []
    for load in loads:
        arrivals = [poisson_trace(workload, load * cap, int(requests), int(s)) for s in seeds]
        for ev in evictions:
            for bt in batchings:
                pols = {}
                for name, spec in specs.items():
                    runs = [seconds_run(workload, memory_tokens, spec, a, s, ev, bt, step_time)
                            for a, s in zip(arrivals, seeds, strict=True)]
                    pols[name] = {k: float(np.nanmean([r[k] for r in runs])) for k in runs[0]}
                winners = {}
                for metric, way in _WINS.items():
                    pool = [n for n in pols if n != "mcsf"]
                    sign = 1.0 if way == "max" else -1.0
                    winners[metric] = max(pool, key=lambda n, m=metric, s=sign: (
                        s * pols[n][m] if math.isfinite(pols[n][m]) else -math.inf, -pool.index(n)))
                cells.append({"load": float(load), "offered_rps": load * cap, "eviction": ev, "batching": bt,
                              "policies": pols, "winners": winners})
    return {"capacity_per_s": cap, "lambda_max": lambda_max(workload, memory_tokens),
            "step_time": step_time.to_spec(), "requests": int(requests), "seeds": [int(s) for s in seeds],
            "specs": specs, "cells": cells}


def report_section42(config, seeds: Sequence[int]) -> dict[str, Any]:
    """The grid for a :class:`~flowstab.report.config.ReportConfig`: its workload, KV cache and
    step time (:data:`FALLBACK_STEP_TIME` when it has none), the first :data:`REPLICATIONS` of
    its simulation ``seeds``."""
    from numerics.model.steptime import StepTimeModel

    step = config.step_time if config.step_time is not None else StepTimeModel.from_spec(FALLBACK_STEP_TIME)
    grid = section42_grid(config.workload, config.memory_tokens, step, list(seeds)[:REPLICATIONS])
    return grid | {"step_time_is_fallback": config.step_time is None}


def section42_html(grid: dict[str, Any] | None) -> str:
    """The report section (HTML fragment, ``<section id="section42">``) for ``grid``; a "not run"
    note when ``grid`` is None."""
    from flowstab.report import html as H

    title = "4c. Trace comparison in seconds"
    if grid is None:
        return H.section("section42", title, "<p>Not run (<code>--no-sim</code>).</p>")
    names = list(grid["specs"])
    rows = []
    for c in grid["cells"]:
        p, w = c["policies"], c["winners"]
        rows.append([H.esc(f"{c['load']:g}"), H.esc(c["eviction"]), H.esc(c["batching"]),
                     H.esc(H.fmt(c["offered_rps"], sig=4)),
                     *(H.esc(H.fmt(p[n]["throughput_rps"], sig=4)) for n in names),
                     *(H.esc(f"{w[m]} ({H.fmt(p[w[m]][m], sig=3)})") for m in _WINS)])
    head = ["load\n× Λ*", "eviction", "batching", "offered\nreq/s", *(f"{n}\nreq/s" for n in names),
            "best throughput\n(req/s)", "best p99 latency\n(s)", "best p99 TTFT\n(s)"]
    numeric = [True, False, False, True, *([True] * len(names)), False, False, False]
    table = H.table(head, rows, numeric=numeric, raw=True, cls="sim")
    specs = ", ".join(f"{n} <code>{H.esc(s)}</code>" for n, s in grid["specs"].items())
    fallback = (" (the report has no step time: paper figure F12's fitted H100 model)"
                if grid.get("step_time_is_fallback") else "")
    lead = (f"Seconds, Poisson arrivals at load × Λ* = {H.fmt(grid['capacity_per_s'], sig=4)} requests/s, "
            f"step time <code>{H.esc(grid['step_time'])}</code>{fallback}; {len(grid['seeds'])} runs of "
            f"{grid['requests']:,} requests per policy and cell on the same arrivals, the first 20 % of the "
            "arrival span warm-up; latency and TTFT censored at the last arrival. Policies: "
            f"{specs} (MC-SF is clairvoyant and is not counted among the winners). MC, MC-SF with "
            "predicted lengths, WAIT and Nested WAIT run on the Python engine and are left out here; the "
            "full comparison on the Azure conversation and code traces and ShareGPT, with every policy, "
            "prefill-first batching and 95 % intervals, is paper figure F12 "
            "(<code>python -m paper_figs --only f12</code>).")
    return H.section("section42", title, table, lead)
