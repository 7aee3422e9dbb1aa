r"""F11 — which scheduler wins where: a phase diagram of flow control against the practice.

The paper (Dong & Cao) argues that flow control (activation-rate control, ``flow:rate=R``) beats
the practice (vLLM-style greedy admission). This figure answers it cell by cell. The experiment
(:func:`experiment`) runs, on one prompt law (S = 20 tokens) and one KV cache (M = 5 000 tokens),
over

* **decode-length variability**: laws with a common mean of 100 tokens, ordered by their
  coefficient of variation CV = sd(O)/E[O] — deterministic (0), uniform 1…199 (0.57), the
  azure-conv fit's shape (0.79), geometric (0.99) and the azure-code fit's shape (1.10). The two
  trace shapes are the fitted negative-binomial laws of :data:`numerics.data.presets.PRESETS`
  with their dispersion ``n`` kept and their scale (``p``, shift, clip) moved so that the mean is
  100 (:data:`LAWS`);
* **load**: 0.8 … 1.3 × the capacity — λ_max = M/E[W] requests/slot in slots, the compute-coupled
  Λ* = M/(E[W]·τ(B_M, M, P_M)) requests/s in seconds (:mod:`numerics.analysis.capacity`);
* **eviction**: ``recompute`` (the paper) and ``keep-progress`` (vLLM);
* **time model**: ``slots`` (the paper's model, Poisson arrivals per slot, requests/slot), and
  seconds with each batching mode of docs/engines.md — ``mixed``, ``prefill-first`` (vLLM V0),
  ``chunked`` (vLLM V1, 2 048 tokens per step) — with Poisson arrivals in seconds replayed through
  F10's step-time model (requests/s).

Policies: greedy (watermark 0.01); flow control at the best of {0.9, 0.95, 0.98} × λ_max (best by
mean throughput *on the same seeds* that are reported, an in-sample choice that flatters it
slightly); ``flowfit`` at the rate flow control chose; ``adaptive``; and ``lookahead`` when
``parse_policy("lookahead")`` knows it — in the slot model under recompute only
(``lookahead_cells``: its Python rule cost ~1 ms a slot with ~250 requests active, and the full
run must stay within 20 minutes on one core). In a cell every policy sees the same arrivals and lengths
(common random numbers: the same seeds, the same traces). Per cell: each policy's mean
throughput and p99 latency over the seeds with 95 % Student-t intervals, the winner (the argmax
of mean throughput; a tie goes to greedy), the ratios best-new/greedy and flow/greedy of
throughput, the p99 ratio best-new/greedy, and a paired 95 % interval of best-new − greedy.

The figure (:func:`plot`, from ``results/f11_phase.json``): one heat map per (eviction, time
model), decode CV (rows) × load (columns), coloured by log₂(best-new/greedy throughput), each cell
labelled with the winner's initial and its ratio to greedy. :func:`table` gives the compact table
(one row per cell) and :func:`write_table` writes it as CSV; the results file holds the same rows
under ``data["table"]``.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from paper_figs.style import label, new_figure, plotting

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = ["LAWS", "POLICY_INITIALS", "SEED_OFFSET", "TIME_MODELS", "config", "experiment",
           "lookahead_available", "plot", "table", "write_table"]

#: The experiment's seed is ``paper_figs.io.BASE_SEED + SEED_OFFSET``.
SEED_OFFSET = 11
#: Decode laws with mean 100 (±0.03 %), in increasing CV. The trace shapes keep the fitted
#: dispersion n of azure-conv (``nbinom:n=1.496,p=0.007273,shift=7,max=1000``, mean 210.9) and
#: azure-code (``nbinom:n=0.5094,p=0.02275,shift=6,max=1899``, mean 27.9); shift and clip are
#: scaled by 100/mean and p is solved so that the clipped mean is 100.
LAWS = (
    {"name": "deterministic", "decode": "100"},
    {"name": "uniform", "decode": "uniform:1,199"},
    {"name": "azure-conv shape", "decode": "nbinom:n=1.496,p=0.01516,shift=3,max=474"},
    {"name": "geometric", "decode": "geom:mean=100"},
    {"name": "azure-code shape", "decode": "nbinom:n=0.5094,p=0.006488,shift=22,max=6811"},
)
#: Time models: the paper's slots, and seconds under each batching mode (docs/engines.md).
TIME_MODELS = ("slots", "mixed", "prefill-first", "chunked")
#: One-letter names of the policy families in the heat map.
POLICY_INITIALS = {"greedy": "G", "flow": "F", "flowfit": "f", "adaptive": "A", "lookahead": "L"}


def lookahead_available() -> bool:
    """Whether this checkout's :func:`numerics.sim.policies.parse_policy` knows ``lookahead``."""
    from numerics.errors import FlowstabError
    from numerics.sim.policies import parse_policy

    try:
        parse_policy("lookahead")
    except FlowstabError:
        return False
    return True


def config(quick: bool) -> dict:
    """The experiment's parameters (JSON-able); ``quick``: the tiny run of CI (a few seconds)."""
    families = ["greedy", "flow", "flowfit", "adaptive"] + (["lookahead"] if lookahead_available() else [])
    full = {
        "prompt": "20",
        # 5 000 tokens (λ_max ≈ 0.4–0.7 requests/slot, ~70 requests active): small enough that
        # the seconds runs span ~40 decode lengths within the time budget; issue 14's numbers are
        # on 20 000 (tests/test_fig_phase.py reproduces them there)
        "memory_tokens": 5_000,
        "laws": list(LAWS),
        "loads": [0.8, 0.9, 1.0, 1.1, 1.2, 1.3],
        "evictions": ["recompute", "keep-progress"],
        "time_models": list(TIME_MODELS),
        # F10's step time: numerics.calibration.fit on splitwise-sim's perf_model.csv (llama2-70b,
        # H100, TP 4): decode c0, cb, ck and prefill cp
        "step_time": "linear:c0=0.0288,cb=0.000282,ck=9.4e-08,cp=0.000107",
        "max_batched_tokens": 2048,
        "greedy": "greedy:watermark=0.01",
        "flow_fractions": [0.9, 0.95, 0.98],
        "families": families,
        # lookahead costs ~1 ms per slot in Python with ~250 requests active (its overflow bound
        # sums over the active set and a 64-point horizon grid): within the 20-minute budget it
        # runs in these cells only
        "lookahead_cells": {"time_models": ["slots"], "evictions": ["recompute"]},
        "replications": 3,
        "slots": 4_000,  # slots model: run length and warm-up
        "warmup": 1_000,
        "requests": 2_000,  # seconds: requests per Poisson trace, the first 20 % of its span warm-up
        "warmup_share": 0.2,
    }
    if not quick:
        return full
    return full | {
        "laws": [LAWS[0], LAWS[3]],
        "loads": [0.9, 1.2],
        "time_models": ["slots", "mixed"],
        "lookahead_cells": {"time_models": [], "evictions": []},  # tests/test_fig_phase.py runs one
        "replications": 2,
        "slots": 1_500,
        "warmup": 500,
        "requests": 800,
    }


# ------------------------------------------------------------------------------ one run
def _t_interval(values) -> dict[str, float]:
    """Mean and 95 % Student-t interval (the mean alone for one value; NaNs dropped)."""
    from scipy import stats

    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return {"mean": math.nan, "low": math.nan, "high": math.nan}
    half = float(stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size)) if x.size > 1 else 0.0
    return {"mean": float(x.mean()), "low": float(x.mean() - half), "high": float(x.mean() + half)}


def _seconds_metrics(res, horizon_s: float, warmup_share: float) -> tuple[float, float]:
    """(throughput in requests/s, censored p99 latency in s) over [w, H], H the trace's last
    arrival (or the run's end if earlier) and w = ``warmup_share``·H: completions in the window per
    second, and the p99 over the window's arrivals with the unfinished counted up to H."""
    rec = res.records
    end = min(horizon_s, float(res.summary["duration_s"]))
    w = warmup_share * end
    arr = rec.arrival_s.to_numpy(dtype=float)
    comp = arr + rec.latency_s.to_numpy(dtype=float)
    done = np.isfinite(comp) & (comp <= end)
    thr = float(np.count_nonzero(done & (comp >= w))) / (end - w)
    window = (arr >= w) & (arr <= end)
    lat = (np.where(done, comp, end) - arr)[window]
    return thr, float(np.quantile(lat, 0.99)) if lat.size else math.nan


def _run(cfg: dict, wl, spec: str, cell: dict, seed: int, trace) -> tuple[float, float]:
    """One policy in one cell on one seed: (throughput, p99 latency) in the cell's unit."""
    from numerics.model.steptime import StepTimeModel
    from numerics.sim import SimConfig, parse_policy, simulate

    m, policy, ev = cfg["memory_tokens"], parse_policy(spec), cell["eviction"]
    if cell["time_model"] == "slots":
        sim = SimConfig(wl, m, policy, slots=cfg["slots"], warmup=cfg["warmup"], seed=seed,
                        arrival_rate=cell["rate"], eviction=ev)
        s = simulate(sim, records=False).summary
        return float(s["throughput_requests_per_slot"]), float(s["latency_p99_slots"])
    step = StepTimeModel.from_spec(cfg["step_time"])
    mode = cell["time_model"]
    horizon = float(trace.timestamps_s[-1])
    # every step lasts at least c0, so H/c0 slots always reach the trace's last arrival
    slots = int(horizon / float(step.seconds(0, 0, 0))) + 100
    sim = SimConfig(wl, m, policy, slots=slots, arrivals="trace", trace=trace, seed=seed,
                    step_time=step, eviction=ev, batching=mode,
                    max_batched_tokens=cfg["max_batched_tokens"] if mode == "chunked" else None)
    return _seconds_metrics(simulate(sim, engine="python"), horizon, cfg["warmup_share"])


def _families(cfg: dict, cell: dict) -> list[str]:
    """The policy families of a cell: ``cfg["families"]``, lookahead only in the time models and
    evictions of ``cfg["lookahead_cells"]``."""
    where = cfg["lookahead_cells"]
    here = cell["time_model"] in where["time_models"] and cell["eviction"] in where["evictions"]
    return [f for f in cfg["families"] if f != "lookahead" or here]


def _cell(cfg: dict, wl, cell: dict, seeds: list[int], lam_max: float) -> dict:
    """Every policy of one cell on common seeds; the best rate per family, winner and ratios."""
    from numerics.calibration.compare import poisson_trace

    traces = ([poisson_trace(wl, cell["rate"], cfg["requests"], s) for s in seeds]
              if cell["time_model"] != "slots" else [None] * len(seeds))

    def run(spec: str) -> dict[str, Any]:
        thr, p99 = zip(*(_run(cfg, wl, spec, cell, s, tr) for s, tr in zip(seeds, traces, strict=True)),
                       strict=True)
        return {"spec": spec, "thr": list(thr), "p99": list(p99)}

    fams = _families(cfg, cell)
    tried = [run(f"flow:rate={f * lam_max:.6g}") for f in cfg["flow_fractions"]]
    flow = max(tried, key=lambda o: float(np.mean(o["thr"])))  # the rate of largest mean throughput
    runs = {"flow": flow | {"tried": [o["spec"] for o in tried],
                            "tried_throughput": [float(np.mean(o["thr"])) for o in tried]}}
    for fam in fams:
        if fam == "greedy":
            runs[fam] = run(cfg["greedy"])
        elif fam == "flowfit":
            runs[fam] = run(flow["spec"].replace("flow:", "flowfit:", 1))
        elif fam != "flow":
            runs[fam] = run(fam)
    policies = {}
    for fam in fams:
        r = runs[fam]
        policies[fam] = {"spec": r["spec"], "throughput": _t_interval(r["thr"]), "p99": _t_interval(r["p99"]),
                         "throughput_seeds": r["thr"], "p99_seeds": r["p99"]} | (
                             {k: r[k] for k in ("tried", "tried_throughput")} if "tried" in r else {})
    return cell | {"policies": policies} | _verdict(policies, fams)


def _verdict(policies: dict, families: list[str]) -> dict:
    """Winner (argmax of mean throughput, ties to the earlier family: greedy first), the best
    non-greedy policy, its throughput and p99 ratios to greedy, flow/greedy, and the paired 95 %
    interval of best-new − greedy over the common seeds."""
    thr = [policies[f]["throughput"]["mean"] for f in families]
    winner = families[int(np.nanargmax(thr))]
    new = [f for f in families if f != "greedy"]
    best_new = max(new, key=lambda f: policies[f]["throughput"]["mean"])
    g = policies["greedy"]

    def ratio(a: float, b: float) -> float:
        return a / b if b > 0 else math.nan

    diff = np.subtract(policies[best_new]["throughput_seeds"], g["throughput_seeds"])
    ci = _t_interval(diff)
    return {
        "winner": winner,
        "best_new": best_new,
        "ratio_best_new": ratio(policies[best_new]["throughput"]["mean"], g["throughput"]["mean"]),
        "ratio_flow": ratio(policies["flow"]["throughput"]["mean"], g["throughput"]["mean"]),
        "p99_ratio_best_new": ratio(policies[best_new]["p99"]["mean"], g["p99"]["mean"]),
        "diff_best_new": ci,
        # the paired interval excludes 0: best-new and greedy differ at the 5 % level
        "separated": bool(ci["low"] > 0 or ci["high"] < 0),
    }


def _say(msg: str) -> None:
    print(f"paper_figs: f11_phase: {msg}", file=sys.stderr, flush=True)


def experiment(cfg: dict, seed: int) -> dict:
    """Every cell of the grid (law × load × eviction × time model), with progress on stderr."""
    from numerics.analysis.capacity import compute_coupled_capacity
    from numerics.analysis.conditions import lambda_max
    from numerics.model.specs import parse_law
    from numerics.model.steptime import StepTimeModel
    from numerics.model.workload import Workload
    from numerics.sim.replicate import replication_seeds

    step = StepTimeModel.from_spec(cfg["step_time"])
    m = cfg["memory_tokens"]
    seeds = replication_seeds(seed, cfg["replications"])  # the same seeds in every cell
    laws, cells = [], []
    n_cells = len(cfg["laws"]) * len(cfg["loads"]) * len(cfg["evictions"]) * len(cfg["time_models"])
    start = time.perf_counter()
    for law in cfg["laws"]:
        decode = parse_law(law["decode"])
        wl = Workload.single(parse_law(cfg["prompt"]), decode)
        lam, cap_s = lambda_max(wl, m), compute_coupled_capacity(wl, m, step)
        laws.append(law | {"mean": decode.mean, "cv": math.sqrt(decode.var) / decode.mean,
                           "lambda_max": lam, "capacity_per_s": cap_s})
        for tm in cfg["time_models"]:
            for ev in cfg["evictions"]:
                for load in cfg["loads"]:
                    rate = load * (lam if tm == "slots" else cap_s)
                    cell = {"law": law["name"], "time_model": tm, "eviction": ev, "load": load,
                            "rate": rate, "unit": "requests/slot" if tm == "slots" else "requests/s"}
                    cells.append(_cell(cfg, wl, cell, seeds, lam))
                    c = cells[-1]
                    _say(f"cell {len(cells)}/{n_cells} ({time.perf_counter() - start:.0f} s): "
                         f"{law['name']}, {tm}, {ev}, load {load:g}: {c['winner']} wins, "
                         f"best-new/greedy {c['ratio_best_new']:.3f}")
    return {"laws": laws, "seeds": seeds, "cells": cells, "table": _rows(cells, laws)}


# ------------------------------------------------------------------------------ the table
#: Columns of the compact table (one row per cell).
TABLE_COLUMNS = ("law", "cv", "time_model", "eviction", "load", "unit", "winner", "best_new",
                 "ratio_best_new", "ratio_flow", "p99_ratio_best_new", "separated")


def _rows(cells: list[dict], laws: list[dict]) -> list[dict[str, Any]]:
    cv = {law["name"]: law["cv"] for law in laws}
    rows = []
    for c in cells:
        row = {k: c[k] for k in TABLE_COLUMNS if k in c} | {"cv": cv[c["law"]]}
        for fam, p in c["policies"].items():
            row[f"thr_{fam}"] = p["throughput"]["mean"]
            row[f"p99_{fam}"] = p["p99"]["mean"]
            if fam in ("flow", "flowfit"):
                row[f"rate_{fam}"] = p["spec"].split("rate=", 1)[1]
        rows.append(row)
    return rows


def table(results: dict) -> pd.DataFrame:
    """The compact table of a loaded results file: one row per cell, :data:`TABLE_COLUMNS` then
    each policy's mean throughput ``thr_<family>``, p99 ``p99_<family>`` and, for flow and
    flowfit, the chosen rate ``rate_<family>`` (requests/slot)."""
    import pandas as pd

    rows = results["data"]["table"]
    df = pd.DataFrame(rows)
    first = [c for c in TABLE_COLUMNS if c in df.columns]
    return df[first + [c for c in df.columns if c not in first]]


def write_table(results: dict, path: str | Path) -> Path:
    """Write :func:`table` as CSV to ``path`` (e.g. ``paper_figs/out/f11_phase.csv``)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    table(results).to_csv(p, index=False, float_format="%.6g")
    return p


# ------------------------------------------------------------------------------ the figure
_TM_TITLE = {"slots": "slots (paper)", "mixed": "seconds, mixed",
             "prefill-first": "seconds, prefill-first (V0)", "chunked": "seconds, chunked (V1)"}


def plot(results: dict) -> Figure:
    """The figure from a loaded results file (a pure function of ``results``)."""
    from matplotlib.colors import TwoSlopeNorm

    d = results["data"]
    cfg = results["provenance"]["config"]
    laws = sorted(d["laws"], key=lambda law: law["cv"])
    names = [law["name"] for law in laws]
    loads, evs, tms = cfg["loads"], cfg["evictions"], cfg["time_models"]
    index = {(c["law"], c["time_model"], c["eviction"], c["load"]): c for c in d["cells"]}
    span = 1.0  # colour scale: log2 ratio in [−1, 1], i.e. greedy or new up to 2× ahead
    with plotting():
        fig, axes = new_figure("page", 1.35 + 1.45 * len(evs), len(evs), len(tms), sharex=True, sharey=True)
        image = None
        for i, ev in enumerate(evs):
            for j, tm in enumerate(tms):
                ax = axes[i, j]
                z = np.full((len(names), len(loads)), np.nan)
                for a, name in enumerate(names):
                    for b, load in enumerate(loads):
                        c = index.get((name, tm, ev, load))
                        if c is None or c["ratio_best_new"] is None:
                            continue
                        z[a, b] = math.log2(c["ratio_best_new"])
                        ratio = c["ratio_best_new"] if c["winner"] != "greedy" else 1 / c["ratio_best_new"]
                        mark = "" if c["separated"] else "?"
                        initial = POLICY_INITIALS.get(c["winner"], c["winner"][:1])
                        ax.text(b, a, f"{initial}{mark}\n{ratio:.2f}",
                                ha="center", va="center", fontsize=4.6, linespacing=0.9,
                                color="white" if abs(z[a, b]) > 0.6 * span else "black")
                image = ax.imshow(z, cmap="PuOr", norm=TwoSlopeNorm(0.0, -span, span), aspect="auto",
                                  origin="lower")
                ax.grid(False)
                ax.set_title(f"{_TM_TITLE.get(tm, tm)}\n{ev}", fontsize=6.5)
                ax.set_xticks(range(len(loads)), [f"{x:g}" for x in loads])
                ax.set_yticks(range(len(names)), [f"{law['name']} ({law['cv']:.2f})" for law in laws])
                if i == len(evs) - 1:
                    ax.set_xlabel(label("load", "× capacity"), fontsize=6.5)
            axes[i, 0].set_ylabel("decode law (CV)", fontsize=6.5)
        cb = fig.colorbar(image, ax=axes, shrink=0.8, pad=0.01)
        cb.set_label("log₂(best new / greedy throughput)", fontsize=6)
        cb.ax.tick_params(labelsize=5.5)
        fig.suptitle("Cell: the winner by mean throughput (G greedy, F flow, f flowfit, A adaptive, "
                     "L lookahead) and its throughput over\nthe other side's (greedy against the best new "
                     "policy); '?': the paired 95 % interval of best-new − greedy includes 0.\n"
                     f"S = {cfg['prompt']}, M = {cfg['memory_tokens']:,} tokens, mean decode 100, "
                     f"{cfg['replications']} seeds; flow and flowfit at the best of "
                     + ", ".join(f"{f:g}" for f in cfg["flow_fractions"]) + " × λ_max",
                     fontsize=6, x=0.01, ha="left")
    return fig
