r"""F12 — the §4.2 comparison rebuilt: three real traces, in seconds, every policy, both evictions.

Dong & Cao's §4.2 compares schedulers on real traces. This figure rebuilds that comparison with
the toolkit's accounting (docs/model.md, "Accounting") on

* **traces**: the Azure LLM inference 2023 conversation and code traces and the ShareGPT
  lengths (:data:`TRACES`). The workload of a trace is the *joint empirical law of its (prompt,
  decode) rows* (:meth:`numerics.data.traces.Trace.to_workload`); when the data folder
  (:func:`numerics.data.paths.data_dir`) is absent, the fitted preset of the same name
  (:mod:`numerics.data.presets`, independent laws) stands in and the results file says so;
* **arrivals and loads**: Poisson arrivals *in seconds* at ``load`` × Λ*, Λ* = M/(E[W]·τ(B_M, M,
  P_M)) the compute-coupled capacity (:func:`numerics.analysis.capacity.compute_coupled_capacity`),
  each request's (S, O) drawn i.i.d. from the trace's rows, replayed through the step-time model
  (``arrivals="trace"``). The traces' own timestamps are *not* replayed: ShareGPT has none, and
  the Azure traces' own rate (5.5 and 2.6 requests/s) is a single load; scaling a trace's
  inter-arrival times would keep its burstiness but give one load per scale and a different
  arrival law per trace, so Poisson at set fractions of Λ* it is (the same choice as F10/F11);
* **time model**: the fitted H100 step time of F10, τ = c0 + cb·B + ck·K + cp·P seconds per step
  (``numerics.calibration.fit`` on splitwise-sim's perf model, llama2-70b, H100, TP 4), every
  prefill charged, re-prefills after eviction included; the presets carry no step time;
* **KV cache**: M = 65 536 tokens (F10's; 20 GiB of llama2-70b KV at 320 KiB per token). A real
  4 × H100 node holds several times more; the small cache keeps the Python-engine policies (MC,
  MC-SF with predictions, WAIT) within the time budget;
* **eviction** ``recompute`` (the paper) and ``keep-progress`` (vLLM); **batching** ``mixed``,
  ``prefill-first`` (vLLM V0) and ``chunked`` (vLLM V1, 2 048 tokens a step) of docs/engines.md.

Policies (:data:`POLICIES`, spec per trace from :func:`policy_specs`): greedy (vLLM, watermark
0.01), reserve at the trace's largest decode length, α-protection (α = 0.1), flow control at
0.95 λ_max (λ_max = M/E[W] requests/slot) and at the certified r*(ε = 10⁻³), MC and MC-SF
(Jaillet et al.; *clairvoyant*: they read each request's true decode length), MC and MC-SF with a
log-normal prediction error σ = 0.3 (``predict=noisy:0.3``), WAIT and Nested WAIT (Ao et al.).
A_min (Chen, Ye & Zhou) is not in the line-up: its definition could not be read
(numerics/sim/policies/clairvoyant.py). Every policy of a cell sees the same arrivals and
lengths (common random numbers).

Metrics of one run over the window [w, H], H the last arrival and w = ``warmup_share``·H: request
and token throughput (completions in the window, and their decode tokens, per second), latency
and TTFT mean, p95 and p99 over the window's arrivals with the unfinished ones censored at H
(``latency`` and ``ttft`` lower bounds where a queue grows), KV utilisation mean and standard
deviation (time-weighted over the window's steps), evictions in the window, and the censored
share. Per (trace, load, eviction, batching, policy): the mean over the replications and the
half-width of its 95 % Student-t interval. Per cell and for throughput (max), p99 latency and p99
TTFT (min): the winner among all policies and among the non-clairvoyant ones, and whether it is
*clear* (the paired 95 % interval of winner − runner-up over the common seeds excludes 0).

:func:`table` gives the table (one row per trace × load × eviction × batching × policy),
:func:`write_table` writes it as CSV and Markdown (``paper_figs/out/f12_section42.csv|.md``) and
:func:`headline` says which policy wins where. The figure (:func:`plot`): per trace, throughput
over greedy's and p99 latency against the load, one panel column per eviction × batching.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from paper_figs.style import OKABE_ITO, label, new_figure, plotting

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = ["CLAIRVOYANT", "HEADLINE_METRICS", "METRICS", "POLICIES", "SEED_OFFSET", "TRACES", "WIN_METRICS",
           "config", "experiment", "headline", "markdown", "plot", "policy_specs", "table", "write_table"]

#: The experiment's seed is ``paper_figs.io.BASE_SEED + SEED_OFFSET``.
SEED_OFFSET = 12
#: The traces: name (the preset that stands in without data) and data file.
TRACES = (
    {"name": "azure-conv", "file": "AzureLLMInferenceTrace_conv.csv"},
    {"name": "azure-code", "file": "AzureLLMInferenceTrace_code.csv"},
    {"name": "sharegpt", "file": "sharegpt_8k_lengths_llama2.csv"},
)
#: The policy line-up, in drawing and tie-break order (an earlier policy wins a tie).
POLICIES = ("greedy", "reserve", "alpha", "flow", "flow-cert", "mc", "mcsf", "mc-noisy", "mcsf-noisy",
            "wait", "nested-wait")
#: The policies that read each request's true decode length (references, not deployable).
CLAIRVOYANT = frozenset({"mc", "mcsf"})
#: Per-run metrics: key → (label, unit).
METRICS = {
    "throughput_rps": ("throughput", "requests/s"),
    "throughput_tps": ("token throughput", "tokens/s"),
    "latency_mean_s": ("latency mean", "s"),
    "latency_p95_s": ("latency p95", "s"),
    "latency_p99_s": ("latency p99", "s"),
    "ttft_mean_s": ("TTFT mean", "s"),
    "ttft_p95_s": ("TTFT p95", "s"),
    "ttft_p99_s": ("TTFT p99", "s"),
    "kv_util_mean": ("KV utilisation mean", ""),
    "kv_util_std": ("KV utilisation std", ""),
    "evictions": ("evictions", "count"),
    "censored_fraction": ("censored share", ""),
}
#: The metrics a cell names a winner for, and which way is better.
WIN_METRICS = {"throughput_rps": "max", "latency_p99_s": "min", "ttft_p99_s": "min"}


def config(quick: bool) -> dict:
    """The experiment's parameters (JSON-able); ``quick``: the tiny run of CI (seconds).

    Full: 3 traces × 4 loads × 2 evictions × 3 batching modes × 11 policies × 3 replications of
    1 000 requests (about 20 minutes on one core, most of it in MC-SF with predictions on
    ShareGPT in overload: its Python rule sorts the whole queue every step).
    """
    full = {
        "traces": list(TRACES),
        "memory_tokens": 65_536,
        # numerics.calibration.fit on splitwise-sim's perf_model.csv: llama2-70b, H100, TP 4
        # (decode c0, cb, ck; prefill cp), as reported in the issue-7 closing note (F10's)
        "step_time": "linear:c0=0.0288,cb=0.000282,ck=9.4e-08,cp=0.000107",
        "max_batched_tokens": 2048,
        "loads": [0.8, 0.95, 1.05, 1.2],  # fractions of Λ* (requests/s)
        "evictions": ["recompute", "keep-progress"],
        "batchings": ["mixed", "prefill-first", "chunked"],
        "policies": list(POLICIES),
        "flow_fraction": 0.95,
        "epsilon": 1e-3,
        "alpha": 0.1,
        "noise_sigma": 0.3,
        "requests": 1_000,
        "replications": 3,
        "warmup_share": 0.2,
    }
    if not quick:
        return full
    return full | {"traces": [TRACES[1]], "loads": [0.9, 1.2], "batchings": ["mixed", "chunked"],
                   "requests": 150, "replications": 2}


# ------------------------------------------------------------------------------ workloads
def _workload(trace: dict) -> tuple[Any, str]:
    """The trace's joint empirical workload, or its fitted preset when the data file is absent."""
    from numerics.data.paths import data_file
    from numerics.data.presets import load_preset
    from numerics.data.traces import load_trace

    path = data_file(trace["file"])
    if path is None:
        return load_preset(trace["name"]), "preset fit (data file absent)"
    return load_trace(path).to_workload(trace["name"]), "trace rows (joint empirical law)"


def policy_specs(cfg: dict, workload, memory_tokens: int, step_time) -> dict[str, str]:
    """The policy spec of each key of ``cfg["policies"]`` for ``workload`` on ``memory_tokens``."""
    from numerics.analysis.conditions import lambda_max
    from numerics.analysis.plan import make_plan

    lam = lambda_max(workload, memory_tokens)
    sigma = cfg["noise_sigma"]
    specs = {
        "greedy": "greedy:watermark=0.01",
        "reserve": f"reserve:max={int(workload.max_decode)}",
        "alpha": f"alpha:{cfg['alpha']:g}",
        "flow": f"flow:rate={cfg['flow_fraction'] * lam:.6g}",
        "mc": "mc",
        "mcsf": "mcsf",
        "mc-noisy": f"mc:predict=noisy:{sigma:g}",
        "mcsf-noisy": f"mcsf:predict=noisy:{sigma:g}",
        "wait": "wait",
        "nested-wait": "nested-wait",
    }
    if "flow-cert" in cfg["policies"]:
        plan = make_plan(workload, memory_tokens, cfg["epsilon"], step_time=step_time)
        specs["flow-cert"] = f"flow:rate={plan.flow_rate:.6g}"
    return {k: specs[k] for k in cfg["policies"]}


# ------------------------------------------------------------------------------ one run
def _run(cfg: dict, wl, spec: str, trace, seed: int, eviction: str, batching: str) -> dict[str, float]:
    """One policy on one arrival trace under one eviction and batching mode: its metrics
    (:func:`flowstab.report.section42.seconds_run`, the report's "Trace comparison in seconds"
    shares it)."""
    from flowstab.report.section42 import seconds_run
    from numerics.model.steptime import StepTimeModel

    return seconds_run(wl, cfg["memory_tokens"], spec, trace, seed, eviction, batching,
                       StepTimeModel.from_spec(cfg["step_time"]), cfg["max_batched_tokens"],
                       cfg["warmup_share"])


def _t_half(values) -> tuple[float, float]:
    """Mean and the half-width of its 95 % Student-t interval (NaN for fewer than two values;
    NaNs dropped)."""
    from scipy import stats

    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return math.nan, math.nan
    if x.size < 2:
        return float(x.mean()), math.nan
    return float(x.mean()), float(stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))


def _winners(rows: list[dict], metrics: dict[str, str] = WIN_METRICS) -> dict[str, dict[str, Any]]:
    """Per metric of ``metrics`` (name → "max" or "min"): the winner among all rows of a cell and
    among the non-clairvoyant ones (ties to the earlier row), the runner-up and whether the paired
    95 % interval of winner − runner-up over the common seeds excludes 0."""
    out = {}
    for metric, way in metrics.items():
        sign = 1.0 if way == "max" else -1.0
        for scope in ("all", "deployable"):
            pool = [r for r in rows if scope == "all" or r["policy"] not in CLAIRVOYANT]
            score = [sign * r[metric] if math.isfinite(r[metric]) else -math.inf for r in pool]
            order = sorted(range(len(pool)), key=lambda i: (-score[i], i))
            best, second = pool[order[0]], pool[order[1]] if len(pool) > 1 else None
            clear = False
            if second is not None:
                diff = np.subtract(best["seeds"][metric], second["seeds"][metric]) * sign
                m, h = _t_half(diff)
                clear = bool(math.isfinite(h) and m - h > 0)
            out.setdefault(metric, {})[scope] = {"policy": best["policy"],
                                                 "runner_up": None if second is None else second["policy"],
                                                 "clear": clear}
    return out


def _say(msg: str) -> None:
    print(f"paper_figs: f12_section42: {msg}", file=sys.stderr, flush=True)


def experiment(cfg: dict, seed: int) -> dict:
    """Every cell (trace × load × eviction × batching) and policy, with progress on stderr."""
    from numerics.analysis.capacity import compute_coupled_capacity
    from numerics.analysis.conditions import lambda_max
    from numerics.calibration.compare import poisson_trace
    from numerics.model.steptime import StepTimeModel
    from numerics.sim.replicate import replication_seeds

    step = StepTimeModel.from_spec(cfg["step_time"])
    m = cfg["memory_tokens"]
    traces, rows, cells = [], [], []
    n_cells = len(cfg["traces"]) * len(cfg["loads"]) * len(cfg["evictions"]) * len(cfg["batchings"])
    start = time.perf_counter()
    for ti, tr in enumerate(cfg["traces"]):
        wl, lengths = _workload(tr)
        specs = policy_specs(cfg, wl, m, step)
        cap = compute_coupled_capacity(wl, m, step)
        traces.append({"name": tr["name"], "file": tr["file"], "lengths": lengths,
                       "mean_prompt": wl.mean_prompt, "mean_decode": wl.mean_decode,
                       "max_decode": wl.max_decode, "mean_memory_time": wl.mean_memory_time,
                       "lambda_max": lambda_max(wl, m), "capacity_per_s": cap, "specs": specs})
        for li, load in enumerate(cfg["loads"]):
            seeds = replication_seeds(seed + 1_000 * ti + li, cfg["replications"])
            arrivals = [poisson_trace(wl, load * cap, cfg["requests"], s) for s in seeds]
            for ev in cfg["evictions"]:
                for bt in cfg["batchings"]:
                    cell = {"trace": tr["name"], "load": load, "offered_rps": load * cap, "eviction": ev,
                            "batching": bt}
                    here = []
                    for key, spec in specs.items():
                        runs = [_run(cfg, wl, spec, a, s, ev, bt)
                                for a, s in zip(arrivals, seeds, strict=True)]
                        row = cell | {"policy": key, "spec": spec, "clairvoyant": key in CLAIRVOYANT,
                                      "seeds": {k: [r[k] for r in runs] for k in METRICS}}
                        for k in METRICS:
                            row[k], row[f"{k}_ci"] = _t_half(row["seeds"][k])
                        here.append(row)
                    win = _winners(here)
                    for row in here:
                        for metric, w in win.items():
                            row[f"win_{metric}"] = w["all"]["policy"] == row["policy"]
                            row[f"win_{metric}_deployable"] = w["deployable"]["policy"] == row["policy"]
                    rows += here
                    cells.append(cell | {"winners": win})
                    _say(f"cell {len(cells)}/{n_cells} ({time.perf_counter() - start:.0f} s): {tr['name']}, "
                         f"load {load:g}, {ev}, {bt}: throughput {win['throughput_rps']['all']['policy']}, "
                         f"p99 {win['latency_p99_s']['all']['policy']}")
    return {"traces": traces, "cells": cells, "rows": rows}


# ------------------------------------------------------------------------------ the table
#: The leading columns of the table (then each metric and its ``_ci``, then the win flags).
KEY_COLUMNS = ("trace", "load", "offered_rps", "eviction", "batching", "policy", "spec", "clairvoyant")


def table(results: dict) -> pd.DataFrame:
    """The table of a loaded results file: one row per trace × load × eviction × batching ×
    policy: :data:`KEY_COLUMNS`, each metric of :data:`METRICS` (the mean over the replications)
    and ``<metric>_ci`` (the half-width of its 95 % Student-t interval), and per metric of
    :data:`WIN_METRICS` the flags ``win_<metric>`` (the cell's winner) and
    ``win_<metric>_deployable`` (its winner among the non-clairvoyant policies)."""
    import pandas as pd

    cols = list(KEY_COLUMNS)
    for k in METRICS:
        cols += [k, f"{k}_ci"]
    for k in WIN_METRICS:
        cols += [f"win_{k}", f"win_{k}_deployable"]
    df = pd.DataFrame([{c: r.get(c) for c in cols} for r in results["data"]["rows"]], columns=cols)
    num = [c for c in cols if c not in KEY_COLUMNS and not c.startswith("win_")]
    df[num] = df[num].astype(float)
    return df


def _pm(mean: float, half: float, fmt: str) -> str:
    if mean is None or not math.isfinite(mean):
        return "–"
    text = format(mean, fmt)
    return text if half is None or not math.isfinite(half) else f"{text} ± {format(half, fmt)}"


#: The Markdown columns: (metric, header, format).
_MD_COLUMNS = (
    ("throughput_rps", "req/s", ".3f"), ("throughput_tps", "tok/s", ".0f"),
    ("latency_mean_s", "lat. mean s", ".3g"), ("latency_p95_s", "lat. p95 s", ".3g"),
    ("latency_p99_s", "lat. p99 s", ".3g"), ("ttft_mean_s", "TTFT mean s", ".3g"),
    ("ttft_p95_s", "TTFT p95 s", ".3g"), ("ttft_p99_s", "TTFT p99 s", ".3g"),
    ("kv_util_mean", "KV mean", ".3f"), ("kv_util_std", "KV std", ".3f"), ("evictions", "evictions", ".0f"),
)
_WIN_LETTER = {"throughput_rps": "T", "latency_p99_s": "L", "ttft_p99_s": "F"}


#: The metrics :func:`headline` names winners for: token throughput (the work done; request
#: throughput favours shortest-first orders) and :data:`WIN_METRICS`.
HEADLINE_METRICS = {"throughput_tps": "max", **WIN_METRICS}


def headline(results: dict) -> list[str]:
    """Which policy wins where: per trace and metric of :data:`HEADLINE_METRICS`, per load, the
    deployable (non-clairvoyant) winners and how many of the load's eviction × batching cells
    each wins ("k clear": the paired interval against the runner-up excludes 0); then per trace
    the range of a deployable policy's throughput over greedy's in a cell."""
    df = table(results)
    rows = results["data"]["rows"]
    out = []
    for trace in dict.fromkeys(r["trace"] for r in rows):
        mine = [r for r in rows if r["trace"] == trace]
        keys = list(dict.fromkeys((r["load"], r["eviction"], r["batching"]) for r in mine))
        wins = {k: _winners([r for r in mine if (r["load"], r["eviction"], r["batching"]) == k],
                            HEADLINE_METRICS) for k in keys}
        for metric, way in HEADLINE_METRICS.items():
            parts = []
            for load in dict.fromkeys(k[0] for k in keys):
                here = [wins[k][metric]["deployable"] for k in keys if k[0] == load]
                counts: dict[str, list[int]] = {}
                for w in here:
                    counts.setdefault(w["policy"], [0, 0])
                    counts[w["policy"]][0] += 1
                    counts[w["policy"]][1] += int(w["clear"])
                ranked = sorted(counts.items(), key=lambda kv: -kv[1][0])
                parts.append(f"load {load:g}: " + ", ".join(
                    f"{p} {n}/{len(here)}" + (f" ({c} clear)" if c else "") for p, (n, c) in ranked))
            out.append(f"{trace}, {METRICS[metric][0]} ({way}): " + "; ".join(parts) + ".")
        sub = df[df.trace == trace]
        for metric in ("throughput_rps", "throughput_tps"):
            g = sub[sub.policy == "greedy"].set_index(["load", "eviction", "batching"])[metric]
            dep = sub[~sub.clairvoyant & (sub.policy != "greedy")]
            ratio = dep[metric].to_numpy() / g.loc[list(zip(dep.load, dep.eviction, dep.batching,
                                                            strict=True))].to_numpy()
            if ratio.size:
                i, j = int(np.nanargmax(ratio)), int(np.nanargmin(ratio))
                r, q = dep.iloc[i], dep.iloc[j]
                out.append(f"{trace}, {METRICS[metric][0]} over greedy's: at best {r.policy} ×{ratio[i]:.3f} "
                           f"at load {r.load:g}, {r.eviction}, {r.batching}; at worst {q.policy} "
                           f"×{ratio[j]:.3f} at load {q.load:g}, {q.eviction}, {q.batching}.")
    return out


def markdown(results: dict) -> str:
    """The table as Markdown, with a heading, the notes and :func:`headline` above it."""
    df = table(results)
    cfg = results["provenance"]["config"]
    d = results["data"]
    lines = ["# F12 — the §4.2 comparison in seconds (mean ± 95 % CI half-width over "
             f"{cfg['replications']} replications)", ""]
    for t in d["traces"]:
        lines.append(f"- **{t['name']}** ({t['lengths']}): E[S] = {t['mean_prompt']:.1f}, E[O] = "
                     f"{t['mean_decode']:.1f}, λ_max = {t['lambda_max']:.4g} requests/slot, Λ* = "
                     f"{t['capacity_per_s']:.4g} requests/s; "
                     + ", ".join(f"{k} = `{v}`" for k, v in t["specs"].items()))
    lines += [
        "",
        f"M = {cfg['memory_tokens']:,} tokens; step time `{cfg['step_time']}` (s); Poisson arrivals in "
        f"seconds at load × Λ*, {cfg['requests']:,} requests a run, lengths i.i.d. from the trace's rows; "
        f"window: the last {1 - cfg['warmup_share']:.0%} of the arrival span; latency and TTFT censored at "
        "the last arrival. Chunked batching: "
        f"{cfg['max_batched_tokens']:,} tokens a step.",
        "Wins: T throughput (max), L p99 latency (min), F p99 TTFT (min); ★ the cell's winner, ☆ its "
        "winner among the non-clairvoyant policies where that differs. mc and mcsf are clairvoyant "
        "(true decode lengths). A_min (Chen, Ye & Zhou) is not in the line-up: its definition could not "
        "be read. Request throughput favours shortest-first orders (MC-SF completes the short requests "
        "and leaves the long ones queued: fewer tokens a second, a longer p99); token throughput is the "
        "work done. WAIT's thresholds are n = max(1, ⌊π M/E[W]⌋) requests a slot "
        "(docs/neighbours_wait.md): where M/E[W] < 2 (λ_max below 2 requests a slot, every trace "
        "here at this M) n = 1 and Nested WAIT's entry limit n_1 = 1 too, so both admit one waiting "
        "request a slot without a memory check and their runs coincide; this is WAIT in the slot "
        "model at small M, not the paper's large-M regime.",
        "", "## Which policy wins where", "", *[f"- {s}" for s in headline(results)], "",
        "## Table", "",
    ]
    head = ["trace", "load", "eviction", "batching", "policy"] + [h for _, h, _ in _MD_COLUMNS] + ["wins"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in df.iterrows():
        wins = []
        for metric, letter in _WIN_LETTER.items():
            if r[f"win_{metric}"]:
                wins.append(f"{letter}★")
            elif r[f"win_{metric}_deployable"]:
                wins.append(f"{letter}☆")
        cells = [r.trace, f"{r.load:g}", r.eviction, r.batching, r.policy]
        cells += [_pm(r[k], r[f"{k}_ci"], f) for k, _, f in _MD_COLUMNS]
        lines.append("| " + " | ".join(str(c) for c in [*cells, " ".join(wins)]) + " |")
    return "\n".join(lines) + "\n"


def write_table(results: dict, path: str | Path) -> list[Path]:
    """Write :func:`table` as CSV to ``path`` and :func:`markdown` beside it (``.md``); return
    both paths."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    table(results).to_csv(p, index=False, float_format="%.6g")
    md = p.with_suffix(".md")
    md.write_text(markdown(results))
    return [p, md]


# ------------------------------------------------------------------------------ the figure
#: Colour (Okabe–Ito index), marker and line style per policy: one colour per family, the
#: variant (certified rate, predicted lengths, Nested WAIT) dashed with an open marker.
_STYLE = {
    "greedy": (1, "s", "-"), "reserve": (3, "D", "-"), "alpha": (2, "^", "-"),
    "flow": (0, "o", "-"), "flow-cert": (0, "o", "--"),
    "mc": (4, "v", "-"), "mc-noisy": (4, "v", "--"),
    "mcsf": (6, "X", "-"), "mcsf-noisy": (6, "X", "--"),
    "wait": (5, "P", "-"), "nested-wait": (5, "P", "--"),
}


def _style(policy: str, i: int) -> dict[str, Any]:
    c, marker, ls = _STYLE.get(policy, (i % len(OKABE_ITO), ".", ":"))
    return {"color": OKABE_ITO[c], "marker": marker, "ls": ls,
            "mfc": "none" if ls == "--" else OKABE_ITO[c]}


def plot(results: dict) -> Figure:
    """The figure from a loaded results file (a pure function of ``results``)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    df = table(results)
    cfg = results["provenance"]["config"]
    traces = [t["name"] for t in results["data"]["traces"]]
    combos = [(ev, bt) for ev in cfg["evictions"] for bt in cfg["batchings"]]
    policies = list(dict.fromkeys(df.policy))
    with plotting():
        fig, axes = new_figure("page", 0.9 + 2.9 * len(traces), 2 * len(traces), len(combos), sharex=True)
        for ti, trace in enumerate(traces):
            sub = df[df.trace == trace]
            for j, (ev, bt) in enumerate(combos):
                cell = sub[(sub.eviction == ev) & (sub.batching == bt)]
                g = cell[cell.policy == "greedy"].set_index("load").throughput_rps
                ax_t, ax_l = axes[2 * ti, j], axes[2 * ti + 1, j]
                for i, pol in enumerate(policies):
                    p = cell[cell.policy == pol].sort_values("load")
                    st = _style(pol, i)
                    kw = {"color": st["color"], "marker": st["marker"], "ls": st["ls"], "mfc": st["mfc"],
                          "ms": 2.4, "lw": 0.8, "label": pol}
                    ax_t.plot(p.load, p.throughput_rps.to_numpy() / g.loc[p.load].to_numpy(), **kw)
                    ax_l.plot(p.load, p.latency_p99_s, **kw)
                ax_l.set_yscale("log")
                ax_l.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
                ax_l.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
                ax_l.yaxis.set_minor_formatter(NullFormatter())
                if ti == 0:
                    ax_t.set_title(f"{ev}\n{bt}", fontsize=6.5)
                if j == 0:
                    ax_t.set_ylabel(f"{trace}\nthroughput / greedy", fontsize=6.5)
                    ax_l.set_ylabel(f"{trace}\n" + label("p99 latency", "s"), fontsize=6.5)
                for ax in (ax_t, ax_l):
                    ax.tick_params(labelsize=5.5)
        for ax in axes[-1]:
            ax.set_xlabel(label("load", "× Λ*"), fontsize=6.5)
        handles, labels = axes[0, 0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncol=min(len(policies), 6), fontsize=6)
        fig.suptitle(f"Poisson arrivals in seconds at load × Λ*, lengths from each trace's rows; M = "
                     f"{cfg['memory_tokens']:,} tokens; step time {cfg['step_time']} s\n"
                     f"{cfg['replications']} seeds × {cfg['requests']:,} requests per policy and point "
                     "(common arrivals); request throughput over greedy's; p99 latency censored at the "
                     "last arrival; mc, mcsf clairvoyant", fontsize=6, x=0.01, ha="left")
    return fig
