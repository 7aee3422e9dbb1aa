r"""Measured vs predicted: the real engine against the simulator driven by the calibrated τ.

Both sides serve the *same* requests: a Poisson arrival stream at Λ requests/s (timestamps in
seconds) with prompt and decode lengths drawn from the workload's laws
(:func:`poisson_trace`), the same policy object, the same M and block size. The measured side is
:func:`~numerics.calibration.engine.run_engine` on a backend; the predicted side is
:func:`numerics.sim.simulate` replaying the trace (``arrivals="trace"``) with the calibrated
step-time model as its clock. Metrics are computed by one function for both
(:func:`window_metrics`), over the window [w, T] with T the last arrival and w = ``WARMUP_SHARE``·T:

* throughput = completions in the window / (T − w) requests/s;
* latency (arrival to last token) mean and p95 over the requests that arrive in the window and
  finish by T;
* KV utilisation: time-weighted mean of U/M; evictions in the window;
* stable ⇔ throughput ≥ (1 − ``STABLE_TOL``)·(arrivals in the window)/(T − w).

The maximum stable rate on each side is found by geometric bisection on Λ with that test (the
same bracket and arrival streams on both sides; the bracket is [½, 2]× the theory's capacity,
which is Λ* = M/(E[W]·τ(B_M, M, P_M)) for work-conserving policies and r/τ(rE[O], rE[W], rE[S])
for flow control at r per slot, widened if needed) until hi/lo ≤ 1 + ``rate_rtol``; the estimate
is √(lo·hi), within a factor √(1 + rate_rtol) of any rate in the final bracket. Relative
difference d = (predicted − measured) / measured.

**Verdict** (:func:`check_verdict`), per policy against the target |d| ≤ ``target`` (10 %): the
two estimates are each within ±r = √(1 + rate_rtol) − 1 of their bracket, so d is known to about
±2r; PASS when |d| ≤ target − 2r, FAIL when |d| > target + 2r, and INCONCLUSIVE in between (the
search's resolution cannot tell; rerun with a smaller ``rate_rtol``). The whole check passes when
every policy passes. The diagnostics say in words which side is faster and what the step-time
model's error on the engine's own slots suggests.

Examples
--------
>>> from numerics.model.specs import parse_law
>>> from numerics.model.workload import Workload
>>> wl = Workload.single(parse_law("4"), parse_law("8"))
>>> tr = poisson_trace(wl, rate_per_s=100.0, n_requests=5, seed=1)
>>> tr.n_requests, float(tr.timestamps_s[0])
(5, 0.0)
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from numerics.calibration.engine import run_engine
from numerics.calibration.fit import CalibrationError, save_figure
from numerics.model.steptime import StepTimeModel
from numerics.model.workload import Workload

__all__ = [
    "CHECK_TARGET",
    "MIN_IDLE_S",
    "STABLE_TOL",
    "WARMUP_SHARE",
    "CheckConfig",
    "check_verdict",
    "plot_check",
    "poisson_trace",
    "predicted_capacity",
    "run_check",
    "simulate_trace",
    "slot_model_fit",
    "window_metrics",
    "write_check",
]

#: A run counts as stable when its throughput keeps up with arrivals within this fraction: above
#: capacity the shortfall grows with the horizon, while below it the backlog left at T is a
#: fluctuation of O(√n) requests (≈ 5 % of n = 400 at 95 % load for Poisson arrivals).
STABLE_TOL = 0.05
#: The first share of the arrival window is warm-up (left out of every metric).
WARMUP_SHARE = 0.2
#: The simulator's clock advances by τ(0, 0, 0) in an empty slot; a fitted intercept of 0 (NNLS at
#: its bound, seen with the numpy backend on a busy CPU) would stall trace replay, so the intercept
#: is raised to at least this, the order of the engine's own Python overhead per slot.
MIN_IDLE_S = 1e-4
#: The simulator's slot count is set from the horizon and the shortest step, capped here.
MAX_SIM_SLOTS = 2_000_000


@dataclass(frozen=True, eq=False)
class CheckConfig:
    """What the real-hardware check runs.

    Parameters
    ----------
    workload : Workload
        Length laws of the requests (arrival rates are set by the check).
    memory_tokens : int
        M used by both sides (a multiple of ``block_size``, ≤ the backend's pool).
    policies : sequence of str
        Policy specs (``parse_policy``); ``"flow"`` alone means flow control at the plan's
        r*(``flow_epsilon``).
    rate_fractions : sequence of float
        Arrival rates at which throughput and latency are compared, as fractions of the
        predicted maximum stable rate.
    n_requests : int
        Requests per run.
    rate_rtol : float
        The bisection for each maximum stable rate stops when hi/lo ≤ 1 + ``rate_rtol``.
    max_bisection_steps : int
        And after at most this many steps in any case (the resolution is then reported as is).
    block_size : int
    seed : int
    flow_epsilon : float
    """

    workload: Workload
    memory_tokens: int
    policies: tuple[str, ...] = ("flow", "greedy")
    rate_fractions: tuple[float, ...] = (0.5, 0.7, 0.9)
    n_requests: int = 400
    rate_rtol: float = 0.02
    max_bisection_steps: int = 12
    block_size: int = 16
    seed: int = 0
    flow_epsilon: float = 1e-3
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.memory_tokens % self.block_size:
            raise CalibrationError(
                f"check memory {self.memory_tokens} must be a multiple of the block size {self.block_size}"
            )
        if self.n_requests < 10:
            raise CalibrationError(f"the check needs ≥ 10 requests per run, got {self.n_requests}")
        if any(not f > 0 for f in self.rate_fractions):
            raise CalibrationError("rate fractions must be > 0")
        if not (isinstance(self.rate_rtol, float | int) and 0 < self.rate_rtol < 1):
            raise CalibrationError(f"rate_rtol must lie in (0, 1), got {self.rate_rtol!r}")


def poisson_trace(workload: Workload, rate_per_s: float, n_requests: int, seed: int | None):
    """n requests: Poisson arrivals at ``rate_per_s`` (first at 0 s), lengths from the laws."""
    from numerics.data.traces import Trace

    if not (math.isfinite(rate_per_s) and rate_per_s > 0):
        raise CalibrationError(f"arrival rate must be > 0 requests/s, got {rate_per_s!r}")
    rng = np.random.default_rng(seed)
    gaps = rng.exponential(1.0 / rate_per_s, n_requests)
    gaps[0] = 0.0
    _, s, o = workload.sample(n_requests, rng)
    return Trace(s, o, np.cumsum(gaps), f"poisson({rate_per_s:g}/s)", "lengths")


def _resolve_policy(spec: str, workload: Workload, memory_tokens: int, epsilon: float):
    from numerics.sim.policies import FlowControl, parse_policy

    if spec.strip().lower() == "flow":
        from numerics.analysis.plan import make_plan

        r = make_plan(workload, memory_tokens, epsilon).flow_rate
        if r <= 0:
            raise CalibrationError(f"the plan gives no flow rate > 0 for M = {memory_tokens}; raise M")
        return FlowControl(rate=float(r))
    return parse_policy(spec)


def predicted_capacity(policy, workload: Workload, memory_tokens: int, step_time: StepTimeModel) -> float:
    """The theory's maximum rate in requests/s (the bisection bracket's centre)."""
    from numerics.analysis.capacity import compute_coupled_capacity, rate_per_second
    from numerics.sim.policies import FlowControl

    if isinstance(policy, FlowControl):
        return rate_per_second(workload, policy.rate, step_time)
    return compute_coupled_capacity(workload, memory_tokens, step_time)


def simulate_trace(trace, workload: Workload, memory_tokens: int, policy, step_time: StepTimeModel,
                   block_size: int, seed: int, horizon_s: float):
    """The simulator on the trace with ``step_time`` as its clock → (records, timeseries)."""
    from numerics.sim import SimConfig, simulate

    tau_min = float(step_time.seconds(0, 0, 0))
    slots = MAX_SIM_SLOTS if tau_min <= 0 else min(MAX_SIM_SLOTS, int(horizon_s / tau_min * 1.2) + 100)
    cfg = SimConfig(workload, memory_tokens, policy, slots=slots, arrivals="trace", seed=seed,
                    block_size=block_size, step_time=step_time, trace=trace)
    res = simulate(cfg, engine="python")
    rec = res.records.rename(columns={"prompt": "prompt", "decode": "decode"})
    rec = rec.assign(completion_s=rec.arrival_s + rec.latency_s)
    ts = res.timeseries
    clock = ts.clock_s.to_numpy()
    dur = np.diff(np.append(clock, float(res.summary.get("duration_s", clock[-1] if len(clock) else 0))))
    ts = pd.DataFrame({"clock_s": clock, "slot_s": dur, "kv_tokens": ts.kv_tokens, "evictions": ts.evictions})
    return rec, ts


def slot_model_fit(ts: pd.DataFrame, step_time: StepTimeModel) -> dict:
    """How well the step-time model prices the engine's own slots.

    Every recorded engine slot has its batch, resident KV tokens and prefill tokens; the model's
    τ for those is compared with the measured slot time, separately for decode-only slots and
    slots with a prefill. A max-rate disagreement with a ratio far from 1 here is the slot
    model's misfit (e.g. a probe grid that does not cover the check's prompt lengths), not the
    policy or the engine.
    """
    model = np.asarray(step_time.seconds(ts.batch, ts.kv_tokens, ts.prefill_tokens), dtype=float)
    meas = ts.slot_s.to_numpy(dtype=float)
    out = {"slot_s_mean": float(meas.mean()) if meas.size else float("nan"),
           "slot_model_s_mean": float(model.mean()) if model.size else float("nan")}
    pre = ts.prefill_tokens.to_numpy() > 0
    for name, mask in (("decode", ~pre), ("prefill", pre)):
        ok = mask.any() and meas[mask].sum() > 0
        out[f"slot_model_ratio_{name}"] = float(model[mask].sum() / meas[mask].sum()) if ok else float("nan")
    return out


def window_metrics(records: pd.DataFrame, ts: pd.DataFrame, memory_tokens: int, horizon_s: float) -> dict:
    """Throughput, latency, KV utilisation, evictions and the stability verdict over [w, T].

    Latency follows the simulator's accounting: over every arrival in the window, an unfinished
    request censored at the horizon (its latency counted as T − arrival); the finished-only mean
    and the completed fraction are given beside it.
    """
    w = WARMUP_SHARE * horizon_s
    span = horizon_s - w
    comp = records.completion_s.to_numpy(dtype=float)
    arr = records.arrival_s.to_numpy(dtype=float)
    done = np.isfinite(comp) & (comp <= horizon_s)
    thr = float(np.sum(done & (comp >= w))) / span
    window = (arr >= w) & (arr <= horizon_s)
    offered = float(np.sum(window)) / span
    lat = np.where(done, comp, horizon_s)[window] - arr[window]
    finished = (comp - arr)[done & window]
    inwin = (ts.clock_s >= w) & (ts.clock_s < horizon_s)
    d = ts.slot_s[inwin].to_numpy(dtype=float)
    util = float(np.sum(d * ts.kv_tokens[inwin].to_numpy(dtype=float)) / (memory_tokens * d.sum())) \
        if d.sum() > 0 else float("nan")
    return {
        "offered_rps": offered,
        "throughput_rps": thr,
        "latency_mean_s": float(lat.mean()) if lat.size else float("nan"),
        "latency_p95_s": float(np.quantile(lat, 0.95)) if lat.size else float("nan"),
        "latency_finished_mean_s": float(finished.mean()) if finished.size else float("nan"),
        "completed_fraction": float(finished.size / lat.size) if lat.size else float("nan"),
        "kv_util_mean": util,
        "evictions": int(ts.evictions[inwin].sum()),
        "stable": bool(thr >= (1 - STABLE_TOL) * offered),
    }


class _Sides:
    """Runs one policy at a rate on both sides with the same trace."""

    def __init__(self, backend, step_time, cfg: CheckConfig, policy, index: int) -> None:
        self.backend, self.step, self.cfg, self.policy = backend, step_time, cfg, policy
        self.seed = int(np.random.SeedSequence([cfg.seed, index]).generate_state(1)[0])
        self.cache: dict = {}

    def run(self, side: str, rate: float) -> dict:
        key = (side, round(rate, 12))
        if key in self.cache:
            return self.cache[key]
        cfg = self.cfg
        trace = poisson_trace(cfg.workload, rate, cfg.n_requests, self.seed)
        horizon = float(trace.timestamps_s[-1])
        md = cfg.workload.max_decode
        if side == "measured":
            res = run_engine(self.backend, trace, cfg.memory_tokens, self.policy, seed=self.seed,
                             horizon_s=horizon, max_decode=int(md) if math.isfinite(md) else None)
            rec, ts = res.records, res.timeseries
        else:
            rec, ts = simulate_trace(trace, cfg.workload, cfg.memory_tokens, self.policy, self.step,
                                     cfg.block_size, self.seed, horizon)
        out = window_metrics(rec, ts, cfg.memory_tokens, horizon) | {"side": side, "rate_rps": rate}
        if side == "measured":
            out |= slot_model_fit(ts, self.step)
        self.cache[key] = out
        return out

    def max_rate(self, side: str, centre: float) -> tuple[float, float, list[dict]]:
        """(estimate √(lo·hi), final hi/lo − 1, the runs) of the maximum stable rate."""
        lo, hi = 0.5 * centre, 2.0 * centre
        runs = []
        for _ in range(4):  # widen until lo is stable and hi is not
            r = self.run(side, lo)
            runs.append(r)
            if r["stable"]:
                break
            lo /= 2
        for _ in range(4):
            r = self.run(side, hi)
            runs.append(r)
            if not r["stable"]:
                break
            hi *= 2
        for _ in range(self.cfg.max_bisection_steps):
            if hi / lo <= 1 + self.cfg.rate_rtol:
                break
            mid = math.sqrt(lo * hi)
            r = self.run(side, mid)
            runs.append(r)
            lo, hi = (mid, hi) if r["stable"] else (lo, mid)
        return math.sqrt(lo * hi), hi / lo - 1, runs


def run_check(backend, step_time: StepTimeModel, cfg: CheckConfig, progress=None) -> dict:
    """The real-hardware check (see the module docstring) → a JSON-ready dict.

    Keys: ``rates`` (rows: policy, side, rate_rps, the window metrics), ``max_rate`` (rows:
    policy, theory_rps, predicted_rps, measured_rps, rel_diff), ``config``.
    """
    rate_rows, max_rows = [], []
    floored = float(step_time.seconds(0, 0, 0)) < MIN_IDLE_S
    if floored:
        import dataclasses

        field_name = "c" if step_time.kind == "staircase" else "c0"
        step_time = dataclasses.replace(step_time, **{field_name: MIN_IDLE_S})
    for i, spec in enumerate(cfg.policies):
        policy = _resolve_policy(spec, cfg.workload, cfg.memory_tokens, cfg.flow_epsilon)
        sides = _Sides(backend, step_time, cfg, policy, i)
        theory = predicted_capacity(policy, cfg.workload, cfg.memory_tokens, step_time)
        found, width = {}, {}
        for side in ("predicted", "measured"):
            if progress is not None:
                progress(f"check {policy.spec()}: maximum stable rate, {side}")
            found[side], width[side], _ = sides.max_rate(side, theory)
        for frac in cfg.rate_fractions:
            rate = frac * found["predicted"]
            for side in ("predicted", "measured"):
                if progress is not None:
                    progress(f"check {policy.spec()}: {side} at {rate:.4g} requests/s")
                rate_rows.append({"policy": policy.spec(), "fraction": frac} | sides.run(side, rate))
        max_rows.append({
            "policy": policy.spec(), "theory_rps": theory, "predicted_rps": found["predicted"],
            "measured_rps": found["measured"],
            "rel_diff": (found["predicted"] - found["measured"]) / found["measured"],
            # each estimate is within a factor √(1 + width) of its final bracket
            "resolution": max(math.sqrt(1 + w) - 1 for w in width.values()),
        })
    return {
        "config": {"memory_tokens": cfg.memory_tokens, "block_size": cfg.block_size,
                   "n_requests": cfg.n_requests, "rate_rtol": cfg.rate_rtol,
                   "seed": cfg.seed, "workload": cfg.workload.describe(), "step_time": step_time.to_spec(),
                   "stable_tol": STABLE_TOL, "warmup_share": WARMUP_SHARE, "flow_epsilon": cfg.flow_epsilon,
                   "idle_floor_applied": floored}
        | cfg.extra,
        "rates": rate_rows,
        "max_rate": max_rows,
    }


#: The check's target: the simulator's maximum stable rate within this relative error of the engine's.
CHECK_TARGET = 0.10


def check_verdict(result: dict, target: float = CHECK_TARGET) -> tuple[str, list[str]]:
    """The verdict of a check (module docstring) and its diagnostics, in words.

    Returns ``(verdict, lines)``: verdict ``"PASS"``, ``"FAIL"`` or ``"INCONCLUSIVE"`` for the whole
    check (PASS only when every policy passes; FAIL when any fails), and one line per policy, then
    what the step-time model's error on the engine's own slots suggests.
    """
    verdicts, lines = [], []
    for row in result["max_rate"]:
        d, r = float(row["rel_diff"]), 2 * float(row.get("resolution", 0.0))
        v = "PASS" if abs(d) <= target - r else "FAIL" if abs(d) > target + r else "INCONCLUSIVE"
        verdicts.append(v)
        faster = "the simulator" if d > 0 else "the engine"
        lines.append(
            f"{v}: {row['policy']}: simulator {row['predicted_rps']:.4g}, engine {row['measured_rps']:.4g} "
            f"requests/s ({100 * d:+.1f} %, known to ±{100 * r:.1f} %; target ±{100 * target:g} %); "
            f"{faster} sustains the higher rate"
            + ("" if v != "INCONCLUSIVE" else " — within the search's resolution of the target: rerun "
               "with a smaller rate tolerance (no --quick)")
        )
    measured = [r for r in result.get("rates", []) if r.get("side") == "measured"]
    ratios = [x for x in (r.get("slot_model_ratio_decode") for r in measured)
              if x is not None and np.isfinite(x)]
    if ratios:
        mean = float(np.mean(ratios))
        if abs(mean - 1) > 0.1:
            way, clock, states = ("underestimates", "fast", "over") if mean < 1 else \
                ("overestimates", "slow", "under")
            lines.append(f"the step-time model {way} the engine's decode steps (model / measured = "
                         f"{mean:.3g} on average): the simulator's clock runs {clock}, so it "
                         f"{states}states the capacity; recalibrate on an idle machine, or without "
                         "--quick for more points")
        else:
            lines.append(f"the step-time model is within {100 * abs(mean - 1):.0f} % of the engine's decode "
                         "steps on average: a difference beyond that comes from scheduling, not the clock")
    verdict = "PASS" if all(v == "PASS" for v in verdicts) else "FAIL" if "FAIL" in verdicts else \
        "INCONCLUSIVE"
    return verdict, lines


def write_check(result: dict, stem: str | os.PathLike) -> dict[str, Path]:
    """Write ``<stem>_rates.csv``, ``<stem>_max_rate.csv`` and ``<stem>.json``; returns the paths."""
    from numerics.calibration.probe import write_calibration

    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = {"rates": stem.with_name(stem.name + "_rates.csv"),
             "max_rate": stem.with_name(stem.name + "_max_rate.csv"),
             "json": stem.with_name(stem.name + ".json")}
    pd.DataFrame(result["rates"]).to_csv(paths["rates"], index=False)
    pd.DataFrame(result["max_rate"]).to_csv(paths["max_rate"], index=False)
    from numerics.calibration.probe import SCHEMA

    write_calibration(result | {"schema": SCHEMA + "#check"}, paths["json"])
    return paths


def plot_check(result: dict, path: str | os.PathLike) -> Path:
    """Throughput and mean latency vs arrival rate (predicted vs measured), and the max rates."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    colours = ("#0072B2", "#D55E00", "#009E73", "#CC79A7")
    rates = pd.DataFrame(result["rates"])
    fig = Figure(figsize=(13, 4), layout="constrained")
    FigureCanvasAgg(fig)
    ax_t, ax_l, ax_m = fig.subplots(1, 3)
    policies: Sequence[str] = [r["policy"] for r in result["max_rate"]]
    for i, pol in enumerate(policies):
        col = colours[i % len(colours)]
        sub = rates[rates.policy == pol] if len(rates) else rates
        for side, ls, mk in (("predicted", "--", "o"), ("measured", "-", "s")):
            s = sub[sub.side == side].sort_values("rate_rps") if len(sub) else sub
            if len(s):
                ax_t.plot(s.rate_rps, s.throughput_rps, ls=ls, marker=mk, color=col, label=f"{pol} {side}")
                ax_l.plot(s.rate_rps, s.latency_mean_s, ls=ls, marker=mk, color=col, label=f"{pol} {side}")
    if len(rates):
        top = float(rates.rate_rps.max())
        ax_t.plot([0, top], [0, top], color="0.6", lw=0.8, ls=":", label="throughput = arrival rate")
    ax_t.set_xlabel("arrival rate (requests/s)")
    ax_t.set_ylabel("throughput (requests/s)")
    ax_t.legend(fontsize="x-small")
    ax_l.set_xlabel("arrival rate (requests/s)")
    ax_l.set_ylabel("mean latency (s)")
    x = np.arange(len(policies))
    mr = result["max_rate"]
    ax_m.bar(x - 0.2, [r["predicted_rps"] for r in mr], 0.4, color="#56B4E9", label="predicted (simulator)")
    ax_m.bar(x + 0.2, [r["measured_rps"] for r in mr], 0.4, color="#E69F00", label="measured (engine)")
    for xi, r in zip(x, mr, strict=True):
        ax_m.annotate(f"{100 * r['rel_diff']:+.1f}%", (xi, max(r["predicted_rps"], r["measured_rps"])),
                      ha="center", va="bottom", fontsize="small")
    ax_m.set_xticks(x, [p.split(",")[0] for p in policies], fontsize="small")
    ax_m.set_ylabel("maximum stable rate (requests/s)")
    ax_m.legend(fontsize="x-small")
    return save_figure(fig, path, "the check figure")
