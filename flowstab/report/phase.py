"""The report's "Which scheduler wins" grid: greedy against flow control, flowfit and adaptive.

For the report's own workload and KV cache, a small grid in the slot model — load 0.8 … 1.3 ×
λ_max (:data:`PHASE_LOADS`) × eviction ``recompute`` / ``keep-progress`` — runs

* greedy (vLLM, watermark 0.01),
* flow control at the best of {0.9, 0.95, 0.98} × λ_max (:data:`FLOW_FRACTIONS`; best by mean
  throughput on the same seeds that are reported, an in-sample choice),
* ``flowfit`` at flow's chosen rate, and
* ``adaptive`` (no rate to tune),

each on the same arrivals (common random numbers: the report's first :data:`PHASE_REPLICATIONS`
seeds), in runs of at most :data:`PHASE_SLOTS` slots (the report's ``slots`` when smaller) with a
quarter of warm-up. Per cell: mean throughput (requests/slot) and censored p99 latency (slots) per
policy, the winner (argmax of mean throughput; ties go to greedy), and the ratios best-new/greedy
of throughput and p99. The full diagram across decode laws and time models is the paper figure
F11 (``python -m paper_figs --only f11``); ``flowstab tune`` picks a policy for one workload.

Examples
--------
>>> from numerics.model.specs import parse_law
>>> from numerics.model.workload import Workload
>>> wl = Workload.single(parse_law("20"), parse_law("100"))
>>> grid = phase_grid(wl, 20_000, seeds=[1], slots=600, loads=(1.2,), evictions=("recompute",))
>>> cell = grid["cells"][0]
>>> cell["winner"], cell["ratio_best_new"] > 1.2  # deterministic decode: flow control wins
('flow', True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["FLOW_FRACTIONS", "PHASE_LOADS", "PHASE_REPLICATIONS", "PHASE_SLOTS", "phase_grid",
           "phase_section_html", "report_phase"]

#: Loads of the grid, as fractions of λ_max.
PHASE_LOADS = (0.8, 0.9, 1.0, 1.1, 1.2, 1.3)
#: Flow control's rates tried, as fractions of λ_max (the best by throughput is reported).
FLOW_FRACTIONS = (0.9, 0.95, 0.98)
#: Most slots per run of the grid, and replications (the report's first seeds).
PHASE_SLOTS = 4_000
PHASE_REPLICATIONS = 2
#: The eviction semantics of the grid (docs/engines.md).
PHASE_EVICTIONS = ("recompute", "keep-progress")
#: The greedy baseline (vLLM's admission with its default 1 % watermark).
GREEDY_SPEC = "greedy:watermark=0.01"


def _runs(workload, memory_tokens: int, spec: str, rate: float, eviction: str, seeds: Sequence[int],
          slots: int) -> dict[str, list[float]]:
    from numerics.sim import SimConfig, parse_policy, simulate

    thr, p99 = [], []
    for s in seeds:
        cfg = SimConfig(workload, memory_tokens, parse_policy(spec), slots=slots, warmup=slots // 4,
                        arrival_rate=rate, seed=int(s), eviction=eviction)
        summary = simulate(cfg, records=False).summary
        thr.append(float(summary["throughput_requests_per_slot"]))
        p99.append(float(summary["latency_p99_slots"]))
    return {"throughput": thr, "p99": p99}


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else math.nan


def phase_grid(workload, memory_tokens: int, seeds: Sequence[int], slots: int = PHASE_SLOTS,
               loads: Sequence[float] = PHASE_LOADS,
               evictions: Sequence[str] = PHASE_EVICTIONS) -> dict[str, Any]:
    """The grid of the module docstring for ``workload`` on ``memory_tokens`` tokens.

    Parameters
    ----------
    workload : numerics.model.workload.Workload
    memory_tokens : int
    seeds : sequence of int
        One run per seed and policy, the same seeds for every policy and cell.
    slots : int
        Slots per run (a quarter of them warm-up).
    loads : sequence of float
        Arrival rates as fractions of λ_max.
    evictions : sequence of {"recompute", "keep-progress"}

    Returns
    -------
    dict
        ``lambda_max``, ``slots``, ``seeds``, ``policies`` (family → spec template) and ``cells``:
        one per (eviction, load) with ``eviction``, ``load``, ``arrival_rate``, ``policies``
        (family → ``spec``, mean ``throughput`` and ``p99``), ``winner``, ``best_new``,
        ``ratio_best_new``, ``ratio_flow`` and ``p99_ratio_best_new``.
    """
    from numerics.analysis.conditions import lambda_max

    lam = lambda_max(workload, memory_tokens)
    cells = []
    for ev in evictions:
        for load in loads:
            rate = load * lam
            pols: dict[str, dict[str, Any]] = {}
            g = _runs(workload, memory_tokens, GREEDY_SPEC, rate, ev, seeds, slots)
            pols["greedy"] = {"spec": GREEDY_SPEC, **g}
            flows = [(f"flow:rate={f * lam:.6g}", _runs(workload, memory_tokens, f"flow:rate={f * lam:.6g}",
                                                         rate, ev, seeds, slots)) for f in FLOW_FRACTIONS]
            spec, best = max(flows, key=lambda x: float(np.mean(x[1]["throughput"])))
            pols["flow"] = {"spec": spec, **best}
            fit = spec.replace("flow:", "flowfit:", 1)
            pols["flowfit"] = {"spec": fit, **_runs(workload, memory_tokens, fit, rate, ev, seeds, slots)}
            pols["adaptive"] = {"spec": "adaptive", **_runs(workload, memory_tokens, "adaptive", rate, ev,
                                                            seeds, slots)}
            means = {k: {"spec": v["spec"], "throughput": float(np.mean(v["throughput"])),
                         "p99": float(np.mean(v["p99"]))} for k, v in pols.items()}
            fams = list(means)
            winner = fams[int(np.argmax([means[f]["throughput"] for f in fams]))]
            best_new = max(fams[1:], key=lambda f: means[f]["throughput"])
            gm = means["greedy"]
            cells.append({
                "eviction": ev, "load": float(load), "arrival_rate": rate, "policies": means,
                "winner": winner, "best_new": best_new,
                "ratio_best_new": _ratio(means[best_new]["throughput"], gm["throughput"]),
                "ratio_flow": _ratio(means["flow"]["throughput"], gm["throughput"]),
                "p99_ratio_best_new": _ratio(means[best_new]["p99"], gm["p99"]),
            })
    return {"lambda_max": lam, "slots": int(slots), "seeds": [int(s) for s in seeds],
            "policies": {"greedy": GREEDY_SPEC, "flow": "flow:rate=f·λ_max, best f of "
                         + ", ".join(f"{f:g}" for f in FLOW_FRACTIONS),
                         "flowfit": "flowfit at flow's rate", "adaptive": "adaptive"},
            "cells": cells}


def report_phase(config, seeds: Sequence[int]) -> dict[str, Any]:
    """The grid for a :class:`~flowstab.report.config.ReportConfig`: its workload and KV cache,
    the first :data:`PHASE_REPLICATIONS` of its simulation ``seeds``, runs of
    min(``config.slots``, :data:`PHASE_SLOTS`) slots."""
    return phase_grid(config.workload, config.memory_tokens, list(seeds)[:PHASE_REPLICATIONS],
                      slots=min(int(config.slots), PHASE_SLOTS))


def phase_section_html(grid: dict[str, Any] | None) -> str:
    """The report section (HTML fragment, with its ``<section id="phase">``) for ``grid``; a
    "not run" note when ``grid`` is None."""
    from flowstab.report import html as H

    title = "4b. Which scheduler wins"
    if grid is None:
        return H.section("phase", title, "<p>Not run (<code>--no-sim</code>).</p>")
    rows = []
    for c in grid["cells"]:
        p = c["policies"]
        win = c["winner"]
        ratio = c["ratio_best_new"]
        verdict = (H.badge(f"{win} +{(ratio - 1):.1%}", "ok") if win != "greedy"
                   else H.badge(f"greedy +{(1 / ratio - 1):.1%}" if ratio > 0 else "greedy", "warn"))
        rows.append([H.esc(c["eviction"]), H.esc(f"{c['load']:g}"),
                     *(H.esc(H.fmt(p[f]["throughput"], sig=4))
                       for f in ("greedy", "flow", "flowfit", "adaptive")),
                     H.esc(p["flow"]["spec"].split("rate=", 1)[1]), verdict,
                     H.esc(f"{c['ratio_best_new']:.3f}"), H.esc(f"{c['ratio_flow']:.3f}"),
                     H.esc(f"{c['p99_ratio_best_new']:.3f}")])
    head = ["eviction", "load\n× λ_max", "greedy\nreq/slot", "flow\nreq/slot", "flowfit\nreq/slot",
            "adaptive\nreq/slot", "flow rate\nreq/slot", "winner", "best new /\ngreedy", "flow /\ngreedy",
            "p99 best new /\ngreedy"]
    table = H.table(head, rows, numeric=[False, True, True, True, True, True, True, False, True, True, True],
                    raw=True, cls="sim")
    wins = [c for c in grid["cells"] if c["winner"] != "greedy"]
    gains = [c["ratio_best_new"] for c in wins]
    losses = [1 / c["ratio_best_new"] for c in grid["cells"]
              if c["winner"] == "greedy" and c["ratio_best_new"] > 0]
    summary = (f"<p>A new policy beats greedy in {len(wins)} of {len(grid['cells'])} cells"
               + (f" (by up to {max(gains) - 1:.1%})" if gains else "")
               + (f"; greedy wins the other {len(losses)} (by up to {max(losses) - 1:.1%})" if losses else "")
               + ". Differences of a few per cent are within the run-to-run noise of runs this short, "
               "whose throughput can even exceed λ_max by a few per cent (requests that started in the "
               "warm-up finish in the window, long ones still running at the end are not charged).</p>")
    lead = (f"Slot model, λ_max = {H.fmt(grid['lambda_max'])} requests/slot; {len(grid['seeds'])} runs "
            f"of {grid['slots']:,} slots per policy and cell (a quarter warm-up), the same seeds for every "
            "policy. Flow control at the best of 0.9, 0.95, 0.98 × λ_max by mean throughput on these "
            "seeds; flowfit at that rate; adaptive sets its rate online. Winner: the largest mean "
            "throughput. p99: censored latency in slots. The diagram across decode laws, batching modes "
            "and seconds is paper figure F11 (<code>python -m paper_figs --only f11</code>); "
            "<code>flowstab tune</code> picks a policy for one workload.")
    return H.section("phase", title, summary + table, lead)
