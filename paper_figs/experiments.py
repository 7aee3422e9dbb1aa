r"""The experiments behind the paper figures: each computes one results file.

Every experiment is a pure function of its *config* (a JSON-able dict built by
:func:`experiment_config` from ``quick``) and writes ``results/<name>.json``::

    {"name": ..., "provenance": {"git_sha", "git_dirty", "versions", "seed", "config", "quick",
                                 "created", "seconds"},
     "data": {...}}

so that a figure script (``fig_<name>.py``) only loads and plots. The same config and seed give the
same ``data`` (replications use ``SeedSequence(seed).spawn(n)`` through
:func:`numerics.sim.replicate`). :func:`load_or_run` reuses an existing file whose config, seed and
``quick`` flag match, unless told to recompute.

What each experiment computes (with the toolkit, nothing re-derived):

* ``f1_region`` — two classes of Dong & Cao §4.1 (known lengths (10, 20), (10, 40); M = 16 492):
  the necessary polytope :math:`\lambda_1 w_1 + \lambda_2 w_2 \le M`, the Algorithm 1 staircase
  (maximal integer budgets, :func:`numerics.analysis.regions.alg1_staircase`) and the flow-control
  ε-boundaries :math:`r^*_\pi(\varepsilon)\,\pi` (:func:`numerics.analysis.regions.flow_region_boundary`).
* ``f2_tails`` — the saturated flow-control memory U at a fixed rate r: P(U > M) as M varies, i.e.
  against the slack Δ = M − r E[W]: exact (:func:`numerics.analysis.exact.exact_tail`), the bounds of
  :class:`numerics.analysis.bounds.FlowTails`, the Gaussian approximation, and the empirical frequency of
  U > M in saturated simulations (M huge, arrivals faster than r, so the waiting queue never
  empties and nothing is evicted).
* ``f3_synthetic`` — Dong & Cao §4.1: three classes (10, 20), (10, 40), (10, 60), M = 16 492,
  Algorithm 1 budgets b = (4, 4, 4), Poisson arrivals λ per class; per-class waiting queues and KV
  usage per slot (the queues follow the Lindley recursion, the saturated KV equals Σ b_k w_k).
* ``f4_kv`` — KV utilisation over time per policy on the ``azure-conv`` preset near capacity.
* ``f5_rates`` — token and request throughput, mean and p95 latency against the arrival rate per
  policy, with Student-t 95 % intervals over independent replications.
* ``f6_sensitivity`` — flow control at activation rate r, swept, at a fixed λ: throughput, latency,
  evictions.
* ``f7_greedy`` — greedy admission with LIFO eviction against flow control in saturation, one
  homogeneous request type (s, d): the fluid cycle (:func:`numerics.chains.fluid.greedy_fluid_cycle`)
  against simulation, and the throughput of each policy relative to the eviction-free equilibrium
  d·M/W as d/s grows, against the closed form (s + (d + 1)/2)/(s + d)
  (:func:`numerics.chains.fluid.greedy_throughput_ratio`).
* ``f8_heavy`` — λ_max = M / E[W] against the max_tokens clip L for Pareto (Lomax) decode tails
  P(O > x) = (1 + x/σ)^{-α}: λ_max(L) ≍ L^{-(2-α)} for α < 2, ≍ 1/log L at α = 2, bounded for α > 2.
* ``f9_traces`` — λ_max and r*(ε) for each trace preset across KV-cache sizes, with the sizes of
  common GPUs marked.
* ``f10_seconds`` — the headline comparison in requests per second: Poisson arrivals in seconds
  replayed through a measured step-time model that charges every prefill, *including the
  re-prefill of an evicted request* (c_p per prompt token), so greedy's evictions cost time;
  throughput and latency per policy against the offered rate, Λ* = M/(E[W]·τ) marked.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import platform
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from numerics.errors import FlowstabError

__all__ = [
    "EXPERIMENTS",
    "ResultsError",
    "experiment_config",
    "file_sha256",
    "load_or_run",
    "load_results",
    "provenance",
    "run_experiment",
]

#: An exact tail is plotted only when its FFT grid converged to this relative change and it is a
#: probability (log ≤ 0); numerics.analysis.exact's own default target is 1e-8, 1e-6 leaves room for
#: rounding on the deepest tails.
EXACT_RTOL = 1e-6
#: Root seed of every experiment (each experiment adds its index so that streams differ).
BASE_SEED = 20260413
#: Target overflow probabilities whose flow-control rates r*(ε) the policy line-ups use: the
#: certified one ``flowstab compare`` runs (COMPARE_EPSILON) and a looser one.
EPS_CERTIFIED = 1e-6
#: KV-cache size of the azure-conv experiments: 2^19 tokens (64 GiB of KV at 128 KiB per token,
#: Llama-3-8B in fp16: 2 × 32 layers × 8 KV heads × 128 dims × 2 bytes).
AZURE_MEMORY_TOKENS = 2**19
#: Bytes of KV cache per token for the GPU-size axis of F9 (Llama-3-8B, fp16; see above), and
#: the weights it leaves out (8.0 B parameters × 2 bytes).
KV_BYTES_PER_TOKEN = 131_072
WEIGHTS_BYTES = 16.06e9
#: GPUs marked on F9's memory axis: name → device memory in GB (10^9 bytes).
GPUS = {"L4 24GB": 24, "A100 40GB": 40, "L40S 48GB": 48, "A100/H100 80GB": 80, "H200 141GB": 141}
#: Fraction of device memory a server gives to weights + KV cache (vLLM's default
#: gpu_memory_utilization).
GPU_MEMORY_UTILIZATION = 0.9


class ResultsError(FlowstabError):
    """A results file is missing, unreadable or not from this experiment."""


# ------------------------------------------------------------------------------ provenance
def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10,
                             cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("numpy", "scipy", "pandas", "numba", "matplotlib", "flowstab"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def provenance(config: dict, seed: int, quick: bool) -> dict:
    """Where a result came from: git sha (and whether the tree was dirty), versions, seed, config,
    the ``quick`` flag and the UTC creation time."""
    status = _git("status", "--porcelain")
    return {
        "git_sha": _git("rev-parse", "HEAD"),
        "git_dirty": None if status is None else bool(status),
        "versions": _versions(),
        "seed": int(seed),
        "config": config,
        "quick": bool(quick),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }


def _clean(obj):
    """JSON-ready: numpy scalars and arrays to Python, non-finite floats to None."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _clean(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ------------------------------------------------------------------------------ helpers
def _azure(memory_tokens: int = AZURE_MEMORY_TOKENS):
    """The azure-conv preset, its λ_max and the flow rates r*(ε) at the certified ε."""
    from numerics.analysis.bounds import FlowTails
    from numerics.data.presets import load_preset

    wl = load_preset("azure-conv")
    tails = FlowTails(wl, memory_tokens)
    return wl, tails


def _policy_lineup(lam_max: float, r_certified: float, cfg: dict,
                   epsilon: float = EPS_CERTIFIED) -> list[dict]:
    """The default line-up of ``flowstab compare`` (flow at r*(ε), greedy, alpha:0.1, and
    reserve:max=L where the config gives ``reserve_max``), plus flow at a fixed fraction of λ_max
    (an uncertified, stable-at-high-load setting), and MC-SF where the config asks for it."""
    out = [
        {"label": f"flow, r = r*({epsilon:g})", "spec": f"flow:rate={r_certified:.6g}"},
        {"label": f"flow, r = {cfg['flow_fraction']:g} λ_max",
         "spec": f"flow:rate={cfg['flow_fraction'] * lam_max:.6g}"},
        {"label": "greedy (vLLM)", "spec": "greedy"},
        {"label": "α-protection, α = 0.1", "spec": "alpha:0.1"},
    ]
    if cfg.get("reserve_max"):
        out.append({"label": f"reserve (max = {cfg['reserve_max']})",
                    "spec": f"reserve:max={cfg['reserve_max']}"})
    if cfg.get("mcsf"):
        out.append({"label": "MC-SF (clairvoyant)", "spec": "mcsf"})
    return out


def _downsample(y: np.ndarray, points: int) -> tuple[np.ndarray, np.ndarray]:
    """Block means of y over consecutive slots so that at most ``points`` remain: (x, y)."""
    y = np.asarray(y, dtype=float)
    k = max(1, math.ceil(y.size / points))
    m = (y.size // k) * k
    x = np.arange(m).reshape(-1, k).mean(axis=1)
    return x, y[:m].reshape(-1, k).mean(axis=1)


_CI_METRICS = (
    "throughput_tokens_per_slot",
    "throughput_requests_per_slot",
    "latency_mean_slots",
    "latency_p95_slots",
    "evictions",
    "wasted_tokens",
    "kv_util_mean",
    "kv_util_std",
    "queue_slope",
)


def _replicated(config, n: int, seed: int) -> dict[str, dict[str, float]]:
    """Mean and 95 % Student-t interval of the main metrics over ``n`` replications."""
    from numerics.sim import ci, replicate

    table = ci(replicate(config, n, seed=seed, processes=1))
    out = {}
    for metric in _CI_METRICS:
        row = table.loc[metric]
        out[metric] = {"mean": float(row["mean"]), "low": float(row["low"]),
                       "high": float(row["high"])}
    return out


# ------------------------------------------------------------------------------ configs
def _config_f1(quick: bool) -> dict:
    return {
        "prompts": [10, 10],
        "decodes": [20, 40],
        "memory_tokens": 16492,
        "epsilons": [1e-2, 1e-4, 1e-6],
        "budget": "randomized",
        "directions": 9 if quick else 61,
    }


def _config_f2(quick: bool) -> dict:
    return {
        "budget": "deterministic",
        "laws": [
            {"name": "geometric", "prompt": "20", "decode": "geom:mean=20,max=200", "rate": 16,
             "z_max": 8.0, "log_slack": False},
            {"name": "uniform", "prompt": "20", "decode": "uniform:1,100", "rate": 20,
             "z_max": 8.0, "log_slack": False},
            # E[O²] < ∞ = E[O³] before the clip: the bulk is narrow (sd ≈ 90 tokens) and a single
            # long request carries the tail, P(U > M) ≈ r Σ_{a ≥ Δ} P(O > a) ∝ Δ^{-(α-1)}, until
            # Δ reaches the clip
            {"name": "Pareto", "prompt": "20", "decode": "scipy:lomax(c=2.5,scale=5),max=3000",
             "rate": 1, "z_max": 60.0, "log_slack": True, "tail_index": 2.5},
        ],
        "exact_points": 5 if quick else 13,
        "bound_points": 40 if quick else 121,
        "sim_replications": 2 if quick else 8,
        "sim_slots": 30_000 if quick else 150_000,
        "sim_warmup": 2_000,
        "sim_overload": 1.05,  # arrivals at 1.05 r: the waiting queue never empties
        "min_exceedances": 10,  # simulated points shown only with at least this many slots U > M
    }


def _config_f3(quick: bool) -> dict:
    return {
        "prompts": [10, 10, 10],
        "decodes": [20, 40, 60],
        "memory_tokens": 16492,
        "budgets": [4, 4, 4],
        "rates_per_class": [3.5, 5.0],
        "slots": 600 if quick else 2000,
    }


def _config_f4(quick: bool) -> dict:
    return {
        "preset": "azure-conv",
        "memory_tokens": AZURE_MEMORY_TOKENS,
        "load": 0.9,  # λ / λ_max
        "epsilon": EPS_CERTIFIED,
        "flow_fraction": 0.95,
        "reserve_max": 1000,
        "mcsf": not quick,
        "slots": 2_000 if quick else 6_000,
        "points": 600 if quick else 1500,
    }


def _config_f5(quick: bool) -> dict:
    loads = [0.5, 0.7, 0.85, 0.95, 1.05] if quick else [round(x, 2) for x in np.arange(0.4, 1.126, 0.05)]
    return {
        "preset": "azure-conv",
        "memory_tokens": AZURE_MEMORY_TOKENS,
        "loads": loads,
        "epsilon": EPS_CERTIFIED,
        "flow_fraction": 0.95,
        "reserve_max": 1000,
        "replications": 2 if quick else 6,
        "slots": 4_000 if quick else 30_000,
        "warmup": 1_000 if quick else 3_000,
    }


def _config_f10(quick: bool) -> dict:
    loads = [0.6, 0.9, 1.0] if quick else [0.5, 0.7, 0.8, 0.9, 0.95, 1.0, 1.05]
    return {
        "prompt": "lognormal:median=600,sigma=0.6,max=4000",
        "decode": "geom:mean=400,max=4000",
        "memory_tokens": 65_536,
        # numerics.calibration.fit on splitwise-sim's perf_model.csv: llama2-70b, H100, TP 4
        # (decode c0, cb, ck; prefill cp), as reported in the issue-7 closing note
        "step_time": "linear:c0=0.0288,cb=0.000282,ck=9.4e-08,cp=0.000107",
        "epsilon": 1e-3,
        "flow_fraction": 0.95,
        "loads": loads,  # fractions of Λ* (requests/s)
        "requests": 500 if quick else 3_000,
        "replications": 1 if quick else 3,
    }


def _config_f6(quick: bool) -> dict:
    n = 9 if quick else 26
    return {
        "preset": "azure-conv",
        "memory_tokens": AZURE_MEMORY_TOKENS,
        "load": 0.8,
        "rate_fractions": [round(x, 3) for x in np.linspace(0.6, 1.6, n)],  # r / λ_max
        "epsilons": [1e-2, EPS_CERTIFIED],
        "replications": 2 if quick else 6,
        "slots": 4_000 if quick else 30_000,
        "warmup": 1_000 if quick else 3_000,
    }


def _config_f7(quick: bool) -> dict:
    return {
        "cycle": {"prompt": 20, "decode": 100 if quick else 200, "memory_tokens": 20_000,
                  "periods": 3},
        "prompt": 20,
        "ratios_d_over_s": [0.25, 1, 4, 16] if quick else [0.25, 0.5, 1, 2, 4, 8, 16],
        "memory_tokens": 1_000_000,
        "periods": 4 if quick else 8,  # simulated horizon, in greedy cycles (d slots each)
        "fluid_max_decode": 100 if quick else 320,  # the exact fluid iteration costs ~d² operations
        "closed_form_max_d_over_s": 128,
        "policy": "greedy:watermark=0",
    }


def _config_f8(quick: bool) -> dict:
    clips = np.unique(np.round(np.logspace(2, 6 if not quick else 5, 9 if quick else 25)).astype(int))
    return {
        "prompt": 100,
        "alphas": [1.5, 2.0, 2.5, 3.0],
        "scale": 100,
        "clips": clips.tolist(),
        "memory_tokens": AZURE_MEMORY_TOKENS,
        "light_tail": "geom:mean=200",
    }


def _config_f9(quick: bool) -> dict:
    n = 4 if quick else 17
    mem = np.unique(np.round(np.logspace(np.log10(2**15), np.log10(2**22), n)).astype(int))
    gpus = {}
    for name, gb in GPUS.items():
        kv = GPU_MEMORY_UTILIZATION * gb * 1e9 - WEIGHTS_BYTES
        gpus[name] = int(kv // KV_BYTES_PER_TOKEN)
    return {
        # mooncake's prompts reach 126k tokens: each r*(ε) takes ~7 s there, so quick leaves it out
        "presets": ["azure-code", "azure-conv", "sharegpt"] + ([] if quick else ["mooncake"]),
        "memory_tokens": mem.tolist(),
        "epsilon": EPS_CERTIFIED,
        "budget": "randomized",
        "gpus_memory_tokens": gpus,
        "kv_bytes_per_token": KV_BYTES_PER_TOKEN,
        "weights_bytes": WEIGHTS_BYTES,
        "gpu_memory_utilization": GPU_MEMORY_UTILIZATION,
    }


# ------------------------------------------------------------------------------ experiments
def exp_f1_region(cfg: dict, seed: int) -> dict:
    """Two-class regions: necessary polytope, Algorithm 1 staircase (integer and randomised budgets),
    flow ε-boundaries."""
    from numerics.analysis.regions import (
        alg1_randomized_boundary,
        alg1_staircase,
        flow_region_boundary,
        necessary_vertices,
    )
    from numerics.model.specs import parse_law
    from numerics.model.workload import IndependentLengths, RequestClass, Workload

    classes = tuple(
        RequestClass(IndependentLengths(parse_law(str(s)), parse_law(str(o))), None, f"({s}, {o})")
        for s, o in zip(cfg["prompts"], cfg["decodes"], strict=True)
    )
    wl = Workload(classes, "two-class")
    w = wl.mean_memory_times
    m = cfg["memory_tokens"]
    return {
        "classes": [c.name for c in classes],
        "mean_memory_times": w,
        "necessary_vertices": necessary_vertices(w, m),
        "alg1_staircase": alg1_staircase(w, m),
        "alg1_randomized": {
            "epsilon": min(cfg["epsilons"]),
            "points": alg1_randomized_boundary(wl, m, min(cfg["epsilons"]), cfg["directions"]),
        },
        "flow_boundaries": [
            {"epsilon": eps, "points": flow_region_boundary(wl, m, eps, cfg["directions"], cfg["budget"])}
            for eps in cfg["epsilons"]
        ],
    }


def _saturated_sim(wl, rate: float, cfg: dict, seed: int, grid: np.ndarray) -> dict:
    """Empirical P(U > m) on ``grid`` from saturated flow-control runs (one per replication)."""
    from numerics.sim import SimConfig, parse_policy, simulate
    from numerics.sim.replicate import replication_seeds

    policy = parse_policy(f"flow:rate={rate:g},budget={cfg['budget']}")
    exceed = np.zeros((cfg["sim_replications"], grid.size))
    slots = 0
    for i, s in enumerate(replication_seeds(seed, cfg["sim_replications"])):
        sc = SimConfig(wl, 10**11, policy, slots=cfg["sim_slots"], warmup=cfg["sim_warmup"],
                       arrival_rate=cfg["sim_overload"] * rate, arrivals="deterministic", seed=s)
        res = simulate(sc)
        u = res.timeseries.kv_tokens.to_numpy()[cfg["sim_warmup"]:]
        slots = u.size
        u = np.sort(u)
        exceed[i] = u.size - np.searchsorted(u, grid, side="right")  # #slots with U > m
    total = exceed.sum(axis=0)
    frac = exceed / slots
    return {
        "prob": total / (slots * exceed.shape[0]),
        "prob_low": frac.min(axis=0),
        "prob_high": frac.max(axis=0),
        "exceedances": total,
        "slots_per_replication": slots,
    }


def exp_f2_tails(cfg: dict, seed: int) -> dict:
    """P(U > M) against the slack for three decode laws: exact, bounds, simulation."""
    from numerics.analysis.bounds import BOUNDS, FlowTails
    from numerics.analysis.exact import exact_tail
    from numerics.model.budget import BudgetLaw
    from numerics.model.specs import parse_law
    from numerics.model.workload import Workload

    out = []
    for k, law in enumerate(cfg["laws"]):
        wl = Workload.single(parse_law(law["prompt"]), parse_law(law["decode"]))
        r = law["rate"]
        mean = r * wl.mean_memory_time
        budget = BudgetLaw(cfg["budget"], r)
        sd = math.sqrt(FlowTails(wl, max(1, int(mean))).variance(budget))
        top = mean + law["z_max"] * sd
        if law["log_slack"]:
            grid = np.unique(np.round(mean + np.geomspace(0.5 * sd, top - mean, cfg["bound_points"]))
                             .astype(np.int64))
            exact_grid = np.unique(np.round(mean + np.geomspace(sd, top - mean, cfg["exact_points"]))
                                   .astype(np.int64))
        else:
            grid = np.unique(np.round(np.linspace(mean, top, cfg["bound_points"])).astype(np.int64))
            exact_grid = np.unique(np.round(np.linspace(mean + sd, top, cfg["exact_points"]))
                                   .astype(np.int64))
        bounds: dict[str, list] = {name: [] for name in BOUNDS}
        for m in grid:
            values = FlowTails(wl, int(m)).bounds(r, cfg["budget"])
            for name in BOUNDS:
                bounds[name].append(values[name])
        exact = [exact_tail(wl, int(m), r, cfg["budget"]) for m in exact_grid]
        # keep only converged answers that are probabilities (see EXACT_RTOL)
        ok = [e.log_prob <= 0 and e.relative_change <= EXACT_RTOL for e in exact]
        sim = _saturated_sim(wl, r, cfg, seed + k, grid)
        out.append({
            "name": law["name"],
            "prompt": law["prompt"],
            "decode": law["decode"],
            "rate_per_slot": r,
            "mean_memory_time": wl.mean_memory_time,
            "mean_memory": mean,
            "sd_memory": sd,
            "memory_grid": grid,
            "slack": grid - mean,
            "bounds": bounds,
            "log_slack": law["log_slack"],
            "tail_index": law.get("tail_index"),
            "exact_memory": exact_grid,
            "exact_slack": exact_grid - mean,
            "exact_log_prob": [e.log_prob for e in exact],
            "exact_relative_change": [e.relative_change for e in exact],
            "exact_valid": ok,
            "simulation": sim,
        })
    return {"laws": out}


def exp_f3_synthetic(cfg: dict, seed: int) -> dict:
    """Dong & Cao §4.1 under Algorithm 1: per-class queues and KV usage per slot."""
    from numerics.analysis.conditions import alg1_peak_memory, memory_time
    from numerics.model.specs import parse_law
    from numerics.model.workload import IndependentLengths, RequestClass, Workload
    from numerics.sim import SimConfig, parse_policy, simulate

    w = [memory_time(s, o) for s, o in zip(cfg["prompts"], cfg["decodes"], strict=True)]
    policy = parse_policy("budgets:" + ",".join(str(b) for b in cfg["budgets"]))
    runs = []
    for i, lam in enumerate(cfg["rates_per_class"]):
        classes = tuple(
            RequestClass(IndependentLengths(parse_law(str(s)), parse_law(str(o))), float(lam),
                         f"(l, o) = ({s}, {o})")
            for s, o in zip(cfg["prompts"], cfg["decodes"], strict=True)
        )
        wl = Workload(classes, "dong-cao-4.1")
        res = simulate(SimConfig(wl, cfg["memory_tokens"], policy, slots=cfg["slots"], seed=seed + i))
        rec = res.records
        t = np.arange(cfg["slots"])
        queues = []
        for k in range(len(classes)):
            rk = rec[rec.cls == k]
            arrived = np.searchsorted(np.sort(rk.arrival_slot.to_numpy()), t, side="right")
            fa = rk.first_activation_slot.to_numpy()
            started = np.searchsorted(np.sort(fa[fa >= 0]), t, side="right")
            queues.append(arrived - started)
        ts = res.timeseries
        if not np.array_equal(np.sum(queues, axis=0), ts.queue.to_numpy()):
            raise ResultsError("f3: per-class queues do not add up to the simulator's queue")
        runs.append({
            "rate_per_class": lam,
            "class_names": [c.name for c in classes],
            "queues": queues,
            "kv_tokens": ts.kv_tokens.to_numpy(),
            "evictions": int(res.summary["evictions"]),
        })
    return {
        "memory_times": w,
        "budget_memory": alg1_peak_memory(cfg["budgets"], w),
        "lambda_star": cfg["memory_tokens"] / sum(w),
        "runs": runs,
    }


def exp_f4_kv(cfg: dict, seed: int) -> dict:
    """KV utilisation over time per policy on azure-conv near capacity (same arrivals)."""
    from numerics.sim import SimConfig, parse_policy, simulate

    wl, tails = _azure(cfg["memory_tokens"])
    lam_max = tails.lambda_max
    r_cert = tails.flow_rate(cfg["epsilon"]).rate_per_slot
    lam = cfg["load"] * lam_max
    series = []
    for pol in _policy_lineup(lam_max, r_cert, cfg):
        res = simulate(SimConfig(wl, cfg["memory_tokens"], parse_policy(pol["spec"]),
                                 slots=cfg["slots"], arrival_rate=lam, warmup=cfg["slots"] // 10,
                                 seed=seed))
        ts = res.timeseries
        x, util = _downsample(ts.kv_tokens.to_numpy() / cfg["memory_tokens"], cfg["points"])
        _, queue = _downsample(ts.queue.to_numpy(), cfg["points"])
        s = res.summary
        series.append({**pol, "slot": x, "kv_util": util, "queue": queue,
                       "kv_util_mean": s["kv_util_mean"], "kv_util_std": s["kv_util_std"],
                       "evictions": s["evictions"]})
    return {
        "lambda_max": lam_max,
        "arrival_rate": lam,
        "flow_rate_certified": r_cert,
        "mean_memory_time": tails.mean_memory_time,
        "series": series,
    }


def exp_f5_rates(cfg: dict, seed: int) -> dict:
    """Throughput and latency against λ per policy, with replication intervals."""
    from numerics.sim import SimConfig, parse_policy

    wl, tails = _azure(cfg["memory_tokens"])
    lam_max = tails.lambda_max
    r_cert = tails.flow_rate(cfg["epsilon"]).rate_per_slot
    policies = _policy_lineup(lam_max, r_cert, cfg)
    rates = [load * lam_max for load in cfg["loads"]]
    out = []
    for pol in policies:
        policy = parse_policy(pol["spec"])
        points = []
        for j, lam in enumerate(rates):
            sc = SimConfig(wl, cfg["memory_tokens"], policy, slots=cfg["slots"], arrival_rate=lam,
                           warmup=cfg["warmup"])
            points.append(_replicated(sc, cfg["replications"], seed + j))  # common seeds per λ
        out.append({**pol, "metrics": {m: {k: [p[m][k] for p in points] for k in ("mean", "low", "high")}
                                       for m in _CI_METRICS}})
    return {
        "lambda_max": lam_max,
        "flow_rate_certified": r_cert,
        "mean_decode": wl.mean_decode,
        "arrival_rates": rates,
        "policies": out,
        "note": "MC-SF is left out of the sweep: the clairvoyant reference runs on the Python "
                "engine (~10 ms per slot at this load), too slow for replications at every λ.",
    }


def exp_f6_sensitivity(cfg: dict, seed: int) -> dict:
    """Flow control swept over its activation rate r at a fixed λ; greedy as the reference."""
    from numerics.sim import SimConfig, parse_policy

    wl, tails = _azure(cfg["memory_tokens"])
    lam_max = tails.lambda_max
    lam = cfg["load"] * lam_max
    base = {"slots": cfg["slots"], "arrival_rate": lam, "warmup": cfg["warmup"]}
    flow = []
    for frac in cfg["rate_fractions"]:
        sc = SimConfig(wl, cfg["memory_tokens"], parse_policy(f"flow:rate={frac * lam_max:.6g}"), **base)
        flow.append(_replicated(sc, cfg["replications"], seed))  # common random numbers across r
    greedy = _replicated(SimConfig(wl, cfg["memory_tokens"], parse_policy("greedy"), **base),
                         cfg["replications"], seed)
    return {
        "lambda_max": lam_max,
        "arrival_rate": lam,
        "rates": [f * lam_max for f in cfg["rate_fractions"]],
        "flow_rates_by_epsilon": {f"{eps:g}": tails.flow_rate(eps).rate_per_slot for eps in cfg["epsilons"]},
        "flow": {m: {k: [p[m][k] for p in flow] for k in ("mean", "low", "high")} for m in _CI_METRICS},
        "greedy": greedy,
        "window_slots": cfg["slots"] - cfg["warmup"],
    }


def exp_f7_greedy(cfg: dict, seed: int) -> dict:
    """Greedy + LIFO vs flow control in saturation: fluid cycle vs simulation, and the ratio."""
    from numerics.analysis.conditions import memory_time
    from numerics.chains.fluid import greedy_fluid_cycle, greedy_throughput_ratio
    from numerics.model.specs import parse_law
    from numerics.model.workload import Workload
    from numerics.sim import SimConfig, parse_policy, simulate

    def saturated(s: int, d: int, m: int, spec: str, slots: int):
        """A run whose waiting queue never empties: deterministic arrivals at twice the rate at
        which either policy can admit (greedy: a cohort M/(s + 1) per cycle of d slots)."""
        wl = Workload.single(parse_law(str(s)), parse_law(str(d)))
        rate = 2.0 * max(m / memory_time(s, d), m / ((s + 1) * d)) + 1.0
        return simulate(SimConfig(wl, m, parse_policy(spec), slots=slots, warmup=slots // 4,
                                  arrival_rate=rate, arrivals="deterministic", seed=seed))

    c = cfg["cycle"]
    s, d, m = c["prompt"], c["decode"], c["memory_tokens"]
    slots = c["periods"] * d
    greedy = saturated(s, d, m, cfg["policy"], slots)
    b_flow = m // memory_time(s, d)  # eviction-free deterministic budget ⌊M/W⌋
    flow = saturated(s, d, m, f"flow:rate={b_flow},budget=deterministic", slots)
    fc = greedy_fluid_cycle(s, d, m)
    cycle = {
        "prompt": s, "decode": d, "memory_tokens": m, "flow_budget": b_flow,
        "slot": greedy.timeseries.slot.to_numpy(),
        "kv_tokens": greedy.timeseries.kv_tokens.to_numpy(),
        "active": greedy.timeseries.active.to_numpy(),
        "flow_kv_tokens": flow.timeseries.kv_tokens.to_numpy(),
        "flow_active": flow.timeseries.active.to_numpy(),
        "fluid": fc.to_dict(),
    }
    ratios = []
    s, m = cfg["prompt"], cfg["memory_tokens"]
    for q in cfg["ratios_d_over_s"]:
        d = max(1, round(q * s))
        w = memory_time(s, d)
        slots = max(60, cfg["periods"] * d)
        g = saturated(s, d, m, cfg["policy"], slots)
        f = saturated(s, d, m, f"flow:rate={m // w},budget=deterministic", slots)
        eq = d * m / w  # tokens per slot of the eviction-free equilibrium (the fluid optimum)
        item = {
            "decode": d,
            "d_over_s": d / s,
            "equilibrium_tokens_per_slot": eq,
            "greedy_ratio": g.summary["throughput_tokens_per_slot"] / eq,
            "flow_ratio": f.summary["throughput_tokens_per_slot"] / eq,
            "greedy_evictions": g.summary["evictions"],
            "flow_evictions": f.summary["evictions"],
            "window_slots": slots - slots // 4,
        }
        if d <= cfg["fluid_max_decode"]:
            item["fluid_ratio"] = float(greedy_fluid_cycle(s, d, m).throughput_ratio)
        ratios.append(item)
    q = np.geomspace(min(cfg["ratios_d_over_s"]), cfg["closed_form_max_d_over_s"], 200)
    dd = np.maximum(1, np.round(q * s)).astype(int)
    closed = {"d_over_s": dd / s, "ratio": [float(greedy_throughput_ratio(s, int(x))) for x in dd]}
    return {"cycle": cycle, "ratios": ratios, "closed_form": closed}


def exp_f8_heavy(cfg: dict, seed: int) -> dict:
    """λ_max against the max_tokens clip for Lomax (Pareto II) decode tails."""
    from numerics.analysis.conditions import lambda_max
    from numerics.model.specs import parse_law
    from numerics.model.workload import Workload

    prompt = parse_law(str(cfg["prompt"]))
    clips = cfg["clips"]
    top = max(clips)
    curves = []
    for alpha in cfg["alphas"]:
        law = parse_law(f"scipy:lomax(c={alpha:g},scale={cfg['scale']:g}),max={top}")
        lm = []
        for clip in clips:
            clipped = law.clip(int(clip)) if clip < top else law
            lm.append(lambda_max(Workload.single(prompt, clipped), cfg["memory_tokens"]))
        curves.append({"alpha": alpha, "lambda_max": lm})
    light = parse_law(cfg["light_tail"])
    light_lm = [lambda_max(Workload.single(prompt, light.clip(int(c)) if c < light.max_value else light),
                           cfg["memory_tokens"]) for c in clips]
    return {"clips": clips, "curves": curves,
            "light_tail": {"decode": cfg["light_tail"], "lambda_max": light_lm}}


def exp_f9_traces(cfg: dict, seed: int) -> dict:
    """λ_max and r*(ε) per trace preset across KV-cache sizes."""
    from numerics.analysis.bounds import FlowTails
    from numerics.analysis.plan import HARD_CAP_TOL
    from numerics.data.presets import PRESETS, load_preset

    out = []
    for name in cfg["presets"]:
        wl = load_preset(name)
        lam, rstar, bound, cap = [], [], [], []
        for m in cfg["memory_tokens"]:
            p_cap = wl.prob_total_exceeds(m)
            cap.append(p_cap)
            if p_cap > HARD_CAP_TOL:  # some request cannot fit at all: no rate is stable
                lam.append(math.nan)
                rstar.append(math.nan)
                bound.append(None)
                continue
            tails = FlowTails(wl, int(m))
            fr = tails.flow_rate(cfg["epsilon"], cfg["budget"])
            lam.append(tails.lambda_max)
            rstar.append(fr.rate_per_slot)
            bound.append(fr.bound)
        out.append({
            "preset": name,
            "mean_memory_time": wl.mean_memory_time,
            "max_request_tokens": float(wl.max_prompt + wl.max_decode),
            "rate_per_s": PRESETS[name].rate_per_s,
            "lambda_max": lam,
            "flow_rate": rstar,
            "bound": bound,
            "hard_cap_violation": cap,
        })
    return {"memory_tokens": cfg["memory_tokens"], "presets": out}


def exp_f10_seconds(cfg: dict, seed: int) -> dict:
    """Throughput and latency in seconds per policy, re-prefill charged by the step-time model."""
    from scipy import stats

    from numerics.analysis.plan import make_plan
    from numerics.calibration.compare import poisson_trace, simulate_trace, window_metrics
    from numerics.model.specs import parse_law
    from numerics.model.steptime import StepTimeModel
    from numerics.model.workload import Workload
    from numerics.sim import parse_policy
    from numerics.sim.replicate import replication_seeds

    wl = Workload.single(parse_law(cfg["prompt"]), parse_law(cfg["decode"]))
    m = cfg["memory_tokens"]
    step = StepTimeModel.from_spec(cfg["step_time"])
    plan = make_plan(wl, m, cfg["epsilon"], step_time=step)
    lineup = _policy_lineup(plan.lambda_max, plan.flow_rate, cfg, cfg["epsilon"])
    rates = [load * plan.lambda_max_per_s for load in cfg["loads"]]
    keys = ("throughput_rps", "latency_mean_s", "latency_p95_s", "evictions")
    out = []
    for pol in lineup:
        policy = parse_policy(pol["spec"])
        series = {k: {"mean": [], "low": [], "high": []} for k in keys}
        for j, rate in enumerate(rates):
            rows = []
            for s in replication_seeds(seed + j, cfg["replications"]):  # common arrivals per rate
                trace = poisson_trace(wl, rate, cfg["requests"], s)
                horizon = float(trace.timestamps_s[-1])
                rec, ts = simulate_trace(trace, wl, m, policy, step, 1, s, horizon)
                rows.append(window_metrics(rec, ts, m, horizon))
            for k in keys:
                x = np.array([r[k] for r in rows], dtype=float)
                half = (stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size)
                        if x.size > 1 else 0.0)
                series[k]["mean"].append(float(x.mean()))
                series[k]["low"].append(float(x.mean() - half))
                series[k]["high"].append(float(x.mean() + half))
        out.append({**pol, "metrics": series})
    return {
        "lambda_max_per_slot": plan.lambda_max,
        "capacity_per_s": plan.lambda_max_per_s,
        "flow_rate_per_s": plan.flow_rate_per_s,
        "offered_rps": rates,
        "policies": out,
    }


#: name → (experiment function, config builder, seed offset). Figure ``fig_<name>.py`` plots
#: ``results/<name>.json``.
EXPERIMENTS: dict[str, tuple[Callable[[dict, int], dict], Callable[[bool], dict], int]] = {
    "f1_region": (exp_f1_region, _config_f1, 1),
    "f2_tails": (exp_f2_tails, _config_f2, 2),
    "f3_synthetic": (exp_f3_synthetic, _config_f3, 3),
    "f4_kv": (exp_f4_kv, _config_f4, 4),
    "f5_rates": (exp_f5_rates, _config_f5, 5),
    "f6_sensitivity": (exp_f6_sensitivity, _config_f6, 6),
    "f7_greedy": (exp_f7_greedy, _config_f7, 7),
    "f8_heavy": (exp_f8_heavy, _config_f8, 8),
    "f9_traces": (exp_f9_traces, _config_f9, 9),
    "f10_seconds": (exp_f10_seconds, _config_f10, 10),
}


def experiment_config(name: str, quick: bool) -> tuple[dict, int]:
    """(config, seed) of experiment ``name`` in quick or full mode."""
    if name not in EXPERIMENTS:
        raise ResultsError(f"unknown experiment {name!r}; known: {', '.join(EXPERIMENTS)}")
    _, make, offset = EXPERIMENTS[name]
    return _clean(make(quick)), BASE_SEED + offset


def run_experiment(name: str, quick: bool, results_dir: str | Path) -> Path:
    """Compute experiment ``name`` and write ``<results_dir>/<name>.json``; return the path."""
    fn = EXPERIMENTS[name][0]
    config, seed = experiment_config(name, quick)
    start = time.perf_counter()
    data = fn(config, seed)
    seconds = time.perf_counter() - start
    prov = provenance(config, seed, quick)
    prov["seconds"] = round(seconds, 3)
    doc = {"name": name, "provenance": prov, "data": _clean(data)}
    folder = Path(results_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=1, allow_nan=False) + "\n")
    tmp.replace(path)
    return path


def load_results(path: str | Path) -> dict:
    """Read a results file written by :func:`run_experiment`."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text())
    except FileNotFoundError:
        raise ResultsError(f"{p}: no such results file; run `python -m paper_figs` to create it") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ResultsError(f"{p}: cannot read the results file ({exc}); delete it and rerun") from None
    if not isinstance(doc, dict) or not {"name", "provenance", "data"} <= set(doc):
        raise ResultsError(f"{p}: not a paper_figs results file (needs name, provenance, data)")
    return doc


def load_or_run(name: str, quick: bool, results_dir: str | Path, rerun: bool = False) -> tuple[Path, bool]:
    """The results file of ``name``: reused when its config, seed and quick flag match (and
    ``rerun`` is False), else recomputed. Returns (path, reused)."""
    path = Path(results_dir) / f"{name}.json"
    if not rerun and path.is_file():
        config, seed = experiment_config(name, quick)
        try:
            prov = load_results(path)["provenance"]
        except ResultsError:
            prov = {}
        if prov.get("config") == config and prov.get("seed") == seed and prov.get("quick") == quick:
            return path, True
    return run_experiment(name, quick, results_dir), False
