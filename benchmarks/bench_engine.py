"""Where the slot simulator's time and memory go: the measurements behind issue 12's speed goals.

Five measurements (reported, never asserted, except that the yardstick loop of 2 must count what
the engine counts and that 5's two engines must give the same summary):

1. ``simulate()`` end to end against the compiled kernel's own time, on 2·10⁶ slots of the
   ``azure-conv`` preset at M = 131 072, λ = 0.9·λ_max, for ``greedy`` and for ``flow`` at the
   fixed rate r = max(r*(1e-6), λ) = λ (goal: end to end ≤ 1.5 × kernel). The kernel is timed by
   calling the very function ``simulate()`` calls (``numerics.sim.fast._kernel()``) with the very
   arrays it was handed inside ``simulate()`` (captured by a wrapper), after a warm-up call, so
   numba's compile or cache load is excluded. Small wrappers around the functions ``simulate()``
   calls split its time into: drawing the requests (``_Sim._generate_requests``), the rest of the
   run state's set-up (``_Sim.__init__`` less the drawing: policy reset, waiting queue), the
   kernel's inputs (``run_fast`` less the kernel: the policy's ``kernel_params``, e.g. flow's
   per-slot budgets), the kernel, and the results (the rest: of it, the records and time-series
   DataFrames, the latency/TTFT statistics ``_window_stats``, the queue slope ``_slope``, other).
   A first full-size run in the process (it pays the page faults of fresh memory, as a CLI run
   does) is timed apart from the steady-state repetitions.
2. The kernel against a minimal numba loop of the same model on the same inputs (the greedy run of
   1): arrivals pre-drawn, FIFO queue, greedy admission while usage + S + 1 ≤ (1 − w)·M, LIFO
   eviction with recompute (the evicted request rejoins the queue's head), one token per active
   request per slot, completion frees S + O. Two minimal loops: ``wheel`` (event driven like the
   kernel: a completion timing wheel, a LIFO stack with lazy deletion) and ``scan`` (the active
   set swept every slot, O(tokens)); the faster is the yardstick (goal: kernel ≤ 1.5 × minimal).
   Before timing, both loops must reproduce the engine's counts (arrivals, completions, evictions,
   drops on admission, wasted tokens, tokens, waiting and active at the end) on small cases of
   both engines, and the kernel's on the timed case: an ``AssertionError`` otherwise.
3. Trace replay against Poisson arrivals at the same rate (goal: trace replay ≤ 2× slower, in
   completed requests per wall second): the azure-conv trace (tiled end to end to ~4·10⁵
   requests) replayed through a constant step time chosen so that its rate is λ per slot, against
   Poisson arrivals at λ on the trace's own (empirical) lengths, same step time and horizon.
   Poisson runs on both engines, to separate the arrival process from the engine. Without the data
   folder (``numerics.data.paths.data_dir()``), a synthetic trace: Poisson timestamps at the
   preset's rate, lengths drawn from the preset.
4. Peak RSS (``ru_maxrss``), each in a fresh process: ``simulate()`` on 10⁷ slots of the case of
   1 (goal < 1 GB), and the CLI ``flowstab simulate --slots 5000000`` on the same workload. The
   measured process is started by a small launcher (see ``_LAUNCHER``), which reads it with
   ``RUSAGE_CHILDREN``; the ``simulate()`` process also reports its own ``VmHWM``.
5. The batching options (docs/engines.md) on the Python step loop against the compiled step loop
   (:mod:`numerics.sim._kernel_step`), in slots and completed requests per wall second: the two
   runs of docs/engines.md, ``flowstab simulate --workload azure-conv --memory 131072
   --arrival-rate 0.35 --policy greedy:watermark=0,max_seqs=256 --eviction keep-progress
   --step-time linear:c0=0.02,cb=1e-4,ck=1e-7,cp=5e-5`` with ``--batching chunked
   --max-batched-tokens 2048`` and with ``--batching prefill-first``, built by the CLI's own parser,
   on its default 20 000 slots, summary only (as the CLI runs it); the two summaries must be equal.

Measurements 1, 2 and 4 are made in both of ``simulate()``'s modes: with the ``records`` and
``timeseries`` tables (``records=True``, the default) and summary only (``records=False``; the
kernel is then called without per-request and per-slot outputs, and 2 times that call too).

Timings are medians: of ``E2E_REPS`` runs for 1, ``KERNEL_REPS`` for the kernel and the minimal
loops, ``REPS`` for 3. ``--quick`` uses 10× fewer slots (and requests) everywhere, a smoke test of
well under a minute (the full run takes about one minute on 2 cores).

Run: ``.venv/bin/python benchmarks/bench_engine.py [--quick]`` — prints the tables and writes
``benchmarks/results/bench_engine.json`` (git-ignored) with the provenance.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _common import provenance
from _minimal import COUNTS, MINIMAL

from numerics.analysis.plan import make_plan
from numerics.data.paths import data_file
from numerics.data.presets import PRESETS, load_preset
from numerics.data.traces import Trace, load_trace
from numerics.model.steptime import StepTimeModel
from numerics.sim import SimConfig, parse_policy, simulate

PRESET = "azure-conv"
MEMORY = 131_072
LOAD = 0.9  # λ / λ_max
SEED = 0
#: Repetitions of each timing (the median is reported): trace replay, simulate() end to end, the
#: kernel and the minimal loops.
REPS = 3
E2E_REPS = 5
KERNEL_REPS = 5
#: simulate()'s two modes: with the records and time-series tables (True) and summary only (False).
MODES = (True, False)
GOALS = {"e2e_over_kernel": 1.5, "kernel_over_minimal": 1.5, "trace_slowdown": 2.0, "peak_rss_mb": 1000.0}
RESULTS = Path(__file__).resolve().parent / "results" / "bench_engine.json"


# ------------------------------------------------------------------------------ the case
def azure_case() -> dict:
    wl = load_preset(PRESET)
    plan = make_plan(wl, MEMORY, 1e-6)
    lam = LOAD * plan.lambda_max
    return {"workload": wl, "lam": lam, "lambda_max": plan.lambda_max, "plan_flow_rate": plan.flow_rate,
            "policies": {"greedy": "greedy", "flow": f"flow:rate={max(plan.flow_rate, lam):.12g}"}}


def config(case: dict, policy: str, slots: int, **kw) -> SimConfig:
    kw.setdefault("warmup", slots // 10)
    return SimConfig(case["workload"], MEMORY, parse_policy(policy), slots=slots,
                     arrival_rate=case["lam"], seed=SEED, **kw)


def median_time(fn, reps: int) -> tuple[float, list[float], object]:
    times, out = [], None
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times, out


# ------------------------------------------------------------------------------ 1. phases
class PhaseProbe:
    """Wraps the functions ``simulate()`` calls (restored on exit) to time its phases and capture
    the kernel's arguments. A name that has moved leaves its phase unmeasured (None); only the
    kernel entry point (``numerics.sim.fast._kernel``) is required."""

    def __enter__(self) -> PhaseProbe:
        from numerics.sim import fast, results

        self.times: dict[str, float] = {}
        self.args: tuple | None = None
        if not callable(getattr(fast, "_kernel", None)):
            raise RuntimeError("numerics.sim.fast._kernel is gone: adapt bench_engine.PhaseProbe")
        self._saved = {(fast, "_kernel"): fast._kernel}
        probe = self

        def timed(name, fn):
            def wrapper(*a, **k):
                t0 = time.perf_counter()
                out = fn(*a, **k)
                probe.times[name] = probe.times.get(name, 0.0) + time.perf_counter() - t0
                return out
            return wrapper

        real_kernel = fast._kernel()

        def capture(*a):
            probe.args = a
            return real_kernel(*a)

        fast._kernel = lambda: timed("kernel", capture)
        if callable(getattr(fast, "run_fast", None)):
            self._saved[(fast, "run_fast")] = fast.run_fast
            fast.run_fast = timed("run_fast", fast.run_fast)
        base = getattr(results, "_Sim", None)
        if isinstance(base, type):
            self._saved[(results, "_Sim")] = base
            attrs = {"__init__": timed("setup", base.__init__)}
            if hasattr(base, "_generate_requests"):
                attrs["_generate_requests"] = timed("draw", base._generate_requests)
            results._Sim = type("TimedSim", (base,), attrs)
        # parts of the results: the helpers simulate() calls by their module names
        for attr, name in (("_window_stats", "quantiles"), ("_slope", "slope")):
            if callable(getattr(results, attr, None)):
                self._saved[(results, attr)] = getattr(results, attr)
                setattr(results, attr, timed(name, getattr(results, attr)))
        pandas = getattr(results, "pd", None)
        if pandas is not None and hasattr(pandas, "DataFrame"):
            self._saved[(results, "pd")] = pandas
            results.pd = _PandasProxy(pandas, timed("dataframes", pandas.DataFrame))
        return self

    def __exit__(self, *exc) -> None:
        for (mod, name), value in self._saved.items():
            setattr(mod, name, value)

    def phases(self, total: float) -> dict[str, float | None]:
        t = self.times
        get = t.get
        out = {"draw_requests": get("draw"),
               "setup_other": None if "setup" not in t or "draw" not in t else t["setup"] - t["draw"],
               "kernel_inputs": None if "run_fast" not in t else t["run_fast"] - t["kernel"],
               "kernel": get("kernel")}
        known = get("setup", 0.0) + (get("run_fast") if "run_fast" in t else get("kernel", 0.0))
        rest = total - known if "setup" in t else None
        out["results"] = rest
        for name in ("dataframes", "quantiles", "slope"):
            out[f"results_{name}"] = get(name)
            if rest is not None and name in t:
                rest -= t[name]
        out["results_other"] = rest
        return out


class _PandasProxy:
    """pandas, with a timed ``DataFrame`` (for :class:`PhaseProbe`)."""

    def __init__(self, module, frame) -> None:
        self._module, self.DataFrame = module, frame

    def __getattr__(self, name: str):
        return getattr(self._module, name)


def measure_end_to_end(case: dict, slots: int) -> list[dict]:
    from numerics.sim import fast

    kernel = fast._kernel()
    rows = []
    for spec, records in ((spec, records) for spec in case["policies"].values() for records in MODES):
        simulate(config(case, spec, 2000), records=records)  # warm-up: numba compile or cache load
        cfg = config(case, spec, slots)
        # a first full-size run pays the page faults of fresh memory (the CLI's case): time it
        # apart, then time the steady state
        cold, _, _ = median_time(lambda c=cfg, r=records: simulate(c, records=r), 1)
        e2e, phases, k_inside = [], [], []
        for _ in range(E2E_REPS):
            with PhaseProbe() as probe:
                t0 = time.perf_counter()
                res = simulate(cfg, records=records)
                wall = time.perf_counter() - t0
            e2e.append(wall)
            phases.append(probe.phases(wall))
            k_inside.append(probe.times["kernel"])
            args = probe.args
        summary = res.summary
        del res
        k_med, k_times, _ = median_time(lambda a=args: kernel(*a), KERNEL_REPS)
        med = statistics.median(e2e)
        phase_med = {k: None if any(p[k] is None for p in phases) else statistics.median(p[k] for p in phases)
                     for k in phases[0]}
        rows.append({"policy": spec, "records": records, "slots": slots, "arrived": int(summary["arrived"]),
                     "completed": int(summary["completed"]), "evictions": int(summary["evictions"]),
                     "first_run_s": cold, "end_to_end_s": med, "end_to_end_times_s": e2e, "kernel_s": k_med,
                     "kernel_times_s": k_times, "kernel_inside_simulate_s": statistics.median(k_inside),
                     "phases_s": phase_med, "ratio": med / k_med})
    return rows


# ------------------------------------------------------------------------------ 2. minimal loops
def minimal_inputs(args: tuple) -> tuple:
    """The minimal loops' inputs from the kernel's greedy arguments (numerics.sim.fast.run_fast's
    order: S, O, arrival_slot, budgets, code, (watermark, max_seqs), keep, head, M, slots, …)."""
    s, o, arrival, _, code, pparams, keep, head, memory, slots = args[:10]
    if int(code) != 1 or pparams[1] != 0 or keep or not head:
        raise RuntimeError("the captured kernel call is not plain greedy (FCFS_MEMORY, no cap, recompute, "
                           "requeue at the head): adapt bench_engine.minimal_inputs")
    return s, o, arrival, (1.0 - pparams[0]) * memory, int(memory), int(slots)


def engine_counts(summary: dict, slots: int) -> dict:
    """The engine's run totals (warm-up 0, so the window is the run)."""
    wasted = int(summary["wasted_tokens"])
    return {"arrived": int(summary["arrived"]), "completed": int(summary["completed"]),
            "evictions": int(summary["evictions"]), "dropped": int(summary["dropped_on_admission"]),
            "wasted": wasted, "tokens": round(summary["throughput_tokens_per_slot"] * slots) + wasted,
            "waiting_end": int(summary["waiting_end"]), "active_end": int(summary["active_end"])}


def check_minimal(case: dict, quick: bool) -> list[dict]:
    """Assert that both minimal loops count what both engines count, on small greedy cases."""
    slots = 5_000 if quick else 20_000
    lam_max = case["lambda_max"]
    checks = []
    for label, spec, load in (("0.9 λ_max, w = 0.01", "greedy", LOAD),
                              ("1.3 λ_max, w = 0", "greedy:watermark=0", 1.3)):
        for engine in ("fast", "python"):
            cfg = SimConfig(case["workload"], MEMORY, parse_policy(spec), slots=slots,
                            arrival_rate=load * lam_max, seed=SEED + 1)
            with PhaseProbe() as probe:
                res = simulate(cfg, engine=engine)
            want = engine_counts(res.summary, slots)
            if probe.args is None:  # the python engine: draw the same inputs through the fast one
                with PhaseProbe() as probe:
                    simulate(cfg, engine="fast")
            inputs = minimal_inputs(probe.args)
            for loop, fn in MINIMAL.items():
                got = dict(zip(COUNTS, map(int, fn(*inputs)), strict=True))
                assert got == want, f"minimal {loop} loop disagrees with the {engine} engine on " \
                                    f"{label}: {got} != {want}"
            checks.append({"case": f"{label}, {slots} slots", "engine": engine} | want)
    return checks


def measure_minimal(case: dict, slots: int) -> dict:
    """Time the kernel and both minimal loops on the inputs of the greedy run of 1 (warm-up 0, so
    that the engine's summary counts the whole run), after checking that they count the same."""
    from numerics.sim import fast

    kernel = fast._kernel()
    with PhaseProbe() as probe:
        res = simulate(config(case, case["policies"]["greedy"], slots, warmup=0))
    want = engine_counts(res.summary, slots)
    del res
    args = probe.args
    inputs = minimal_inputs(args)
    row = {"slots": slots, "requests": int(inputs[0].size), "counts": want}
    k_med, k_times, _ = median_time(lambda: kernel(*args), KERNEL_REPS)
    row |= {"kernel_s": k_med, "kernel_times_s": k_times}
    # the kernel as simulate(records=False) calls it (no per-request or per-slot outputs kept)
    with PhaseProbe() as probe:
        res = simulate(config(case, case["policies"]["greedy"], slots, warmup=0), records=False)
    assert engine_counts(res.summary, slots) == want, "records=False changed the greedy run's counts"
    del res
    s_args = probe.args
    s_med, s_times, _ = median_time(lambda: kernel(*s_args), KERNEL_REPS)
    row |= {"kernel_summary_s": s_med, "kernel_summary_times_s": s_times}
    for loop, fn in MINIMAL.items():
        m_med, m_times, m = median_time(lambda f=fn: f(*inputs), KERNEL_REPS)
        got = dict(zip(COUNTS, map(int, m), strict=True))
        assert got == want, f"minimal {loop} loop disagrees with the engine: {got} != {want}"
        row |= {f"{loop}_s": m_med, f"{loop}_times_s": m_times}
    row["minimal"] = min(MINIMAL, key=lambda loop: row[f"{loop}_s"])
    row["ratio"] = k_med / row[f"{row['minimal']}_s"]
    row["ratio_summary"] = s_med / row[f"{row['minimal']}_s"]
    return row


# ------------------------------------------------------------------------------ 3. trace replay
def replay_trace(target_requests: int) -> tuple[Trace, str]:
    """The azure-conv trace tiled end to end (gap: one mean inter-arrival) to ≥ target requests,
    or a synthetic Poisson trace of the preset when the data folder is absent."""
    path = data_file(PRESETS[PRESET].data_file)
    if path is None:
        rate = PRESETS[PRESET].rate_per_s
        rng = np.random.default_rng(SEED)
        _, s, o = load_preset(PRESET).sample(target_requests, rng)
        times = np.cumsum(rng.exponential(1 / rate, target_requests))
        return Trace(s, o, times - times[0], "synthetic", "vidur"), "synthetic (no data folder)"
    base = load_trace(path)
    order = np.argsort(base.timestamps_s, kind="stable")
    s, o, t = base.prompt[order], base.decode[order], base.timestamps_s[order]
    tiles = max(1, math.ceil(target_requests / base.n_requests))
    period = t[-1] + 1 / base.rate_per_s
    times = np.concatenate([t + i * period for i in range(tiles)])
    tiled = Trace(np.tile(s, tiles), np.tile(o, tiles), times, f"{path.name} ×{tiles}", base.format)
    return tiled, f"{path.name} tiled ×{tiles}"


def measure_trace(case: dict, target_requests: int) -> dict:
    trace, source = replay_trace(target_requests)
    lam = case["lam"]
    step_s = lam / trace.rate_per_s  # a constant step time that makes the trace's rate λ per slot
    step = StepTimeModel.from_spec(f"const:{step_s:.12g}")
    slots = math.ceil(trace.timestamps_s[-1] / step_s) + 1
    wl = trace.to_workload()
    spec = case["policies"]["flow"]
    common = {"slots": slots, "warmup": slots // 10, "seed": SEED, "step_time": step}
    runs = {
        "trace replay": (SimConfig(wl, MEMORY, parse_policy(spec), arrivals="trace", trace=trace, **common),
                         "auto"),
        "poisson": (SimConfig(wl, MEMORY, parse_policy(spec), arrival_rate=lam, **common), "auto"),
        "poisson (python engine)": (SimConfig(wl, MEMORY, parse_policy(spec), arrival_rate=lam, **common),
                                    "python"),
    }
    rows = []
    for name, (cfg, engine) in runs.items():
        med, times, res = median_time(lambda c=cfg, e=engine: simulate(c, engine=e), REPS)
        done = int(res.summary["completed"])
        rows.append({"arrivals": name, "engine": engine, "slots": slots,
                     "arrived": int(res.summary["arrived"]), "completed": done, "wall_s": med,
                     "times_s": times, "requests_per_s": done / med})
    poisson = rows[1]["requests_per_s"]
    return {"source": source, "policy": spec, "step_s": step_s, "rows": rows,
            "slowdown": poisson / rows[0]["requests_per_s"]}


# ------------------------------------------------------------------------------ 4. peak RSS
#: The measured process for simulate(): its own high-water RSS (VmHWM, Linux) after the imports
#: and after the run, as a cross-check of the launcher's ru_maxrss.
_SIM_CHILD = """
import json, sys, time
from numerics.data.presets import load_preset
from numerics.sim import SimConfig, parse_policy, simulate

def hwm_kb():
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return None

p = json.loads(sys.argv[1])
cfg = SimConfig(load_preset(p["preset"]), p["memory"], parse_policy(p["policy"]), slots=p["slots"],
                arrival_rate=p["lam"], warmup=p["slots"] // 10, seed=p["seed"])
floor = hwm_kb()
t0 = time.perf_counter()
res = simulate(cfg, records=p["records"])
wall = time.perf_counter() - t0
print(json.dumps({"floor_kb": floor, "hwm_kb": hwm_kb(), "sim_wall_s": wall,
                  "arrived": res.summary["arrived"]}))
"""
#: A small fresh Python that runs the measured command and reads its ru_maxrss (RUSAGE_CHILDREN).
#: The measured process must not be started by this benchmark itself: Linux carries the peak RSS of
#: the process that forks (or vforks) and execs into the exec'd child's ru_maxrss, so a child of
#: this ~0.5 GB process would report at least that much. The launcher's own ~10 MB is the floor.
_LAUNCHER = """
import json, resource, subprocess, sys, time
t0 = time.perf_counter()
p = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, text=True)
lines = p.stdout.strip().splitlines()
print(json.dumps({"peak_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
                  "wall_s": time.perf_counter() - t0, "rc": p.returncode,
                  "last_line": lines[-1] if lines else "{}"}))
"""


def launch(*cmd: str) -> dict:
    """Run ``cmd`` under the launcher → peak RSS (kB), wall seconds and the JSON of its last line."""
    out = subprocess.run([sys.executable, "-c", _LAUNCHER, *cmd], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"the launcher failed ({out.returncode}): {out.stderr.strip()[-2000:]}")
    r = json.loads(out.stdout.strip().splitlines()[-1])
    if r["rc"] != 0:
        raise RuntimeError(f"{' '.join(cmd)[:300]} exited {r['rc']}: {out.stderr.strip()[-2000:]}")
    r["child"] = json.loads(r.pop("last_line"))
    return r


def flowstab_command() -> list[str]:
    script = Path(sys.executable).with_name("flowstab")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from flowstab.cli import main; sys.exit(main())"]


def measure_rss(case: dict, sim_slots: int, cli_slots: int) -> list[dict]:
    rows = []
    for spec, records in ((spec, records) for spec in case["policies"].values() for records in MODES):
        p = {"preset": PRESET, "memory": MEMORY, "policy": spec, "slots": sim_slots, "lam": case["lam"],
             "seed": SEED, "records": records}
        r = launch(sys.executable, "-c", _SIM_CHILD, json.dumps(p))
        c = r["child"]
        rows.append({"what": "simulate()" if records else "simulate(records=False)", "policy": spec,
                     "records": records, "slots": sim_slots, "peak_mb": r["peak_kb"] / 1024,
                     "vmhwm_mb": None if c["hwm_kb"] is None else c["hwm_kb"] / 1024,
                     "import_floor_mb": None if c["floor_kb"] is None else c["floor_kb"] / 1024,
                     "wall_s": r["wall_s"], "simulate_s": c["sim_wall_s"], "arrived": c["arrived"]})
    for spec in case["policies"].values():
        args = ["simulate", "--workload", PRESET, "--memory", str(MEMORY), "--arrival-rate",
                f"{case['lam']:.12g}", "--policy", spec, "--slots", str(cli_slots), "--seed", str(SEED),
                "--json"]
        r = launch(*flowstab_command(), *args)
        rows.append({"what": "flowstab simulate", "policy": spec, "records": None, "slots": cli_slots,
                     "peak_mb": r["peak_kb"] / 1024, "vmhwm_mb": None, "import_floor_mb": None,
                     "wall_s": r["wall_s"], "simulate_s": None, "arrived": r["child"]["arrived"],
                     "command": " ".join(["flowstab", *args])})
    return rows


# ------------------------------------------------------------------------------ 5. batching options
#: The runs of docs/engines.md as ``flowstab simulate`` flags: the shared ones, then each mode's.
STEP_ARGS = ("--workload", PRESET, "--memory", str(MEMORY), "--arrival-rate", "0.35", "--policy",
             "greedy:watermark=0,max_seqs=256", "--eviction", "keep-progress", "--step-time",
             "linear:c0=0.02,cb=1e-4,ck=1e-7,cp=5e-5")
STEP_MODES = {"chunked": ("--batching", "chunked", "--max-batched-tokens", "2048"),
              "prefill-first": ("--batching", "prefill-first")}


def step_config(mode: str, slots: int) -> SimConfig:
    """The SimConfig that ``flowstab simulate`` builds for the run of ``mode``."""
    from flowstab.cli import build_parser
    from flowstab.cli._args import parse_policy_for, run_config, run_settings

    args = build_parser().parse_args(["simulate", *STEP_ARGS, *STEP_MODES[mode], "--slots", str(slots)])
    settings = run_settings(args)
    return run_config(parse_policy_for(args.policy, settings["workload"]), settings)


def measure_step(slots: int) -> list[dict]:
    rows = []
    for mode in STEP_MODES:
        cfg = step_config(mode, slots)
        simulate(cfg, engine="fast", records=False)  # compile, or load numba's cache
        row: dict = {"batching": mode, "slots": slots}
        summaries = {}
        for engine, reps in (("python", 1), ("fast", REPS)):
            t, _, res = median_time(lambda c=cfg, e=engine: simulate(c, engine=e, records=False), reps)
            summaries[engine] = res.summary
            row[engine] = {"wall_s": t, "slots_per_s": slots / t,
                           "requests_per_s": res.summary["completed"] / t}
        a, b = summaries.values()
        assert all(a[k] == b[k] or (a[k] != a[k] and b[k] != b[k]) for k in a), mode
        row["completed"] = a["completed"]
        row["speedup"] = row["python"]["wall_s"] / row["fast"]["wall_s"]
        rows.append(row)
    return rows


# ------------------------------------------------------------------------------ report
def verdict(value: float, goal: float) -> str:
    if value <= goal:
        return f"met ({value / goal:.2f} of the goal)"
    return f"NOT met ({value / goal:.1f}× the goal)"


def _mode(records: bool) -> str:
    return "records" if records else "summary"


def _fmt(x: float | None, unit: str = "s") -> str:
    return "—" if x is None else f"{x:.3f} {unit}"


def report(out: dict) -> None:
    print("\n1. simulate() end to end vs the kernel's own time (medians)")
    for r in out["end_to_end"]:
        ph = r["phases_s"]
        print(f"  {r['policy']:<26} {_mode(r['records']):<8} {r['slots']:>10,} slots {r['arrived']:>9,} "
              f"requests  end to end "
              f"{r['end_to_end_s']:.3f} s, kernel {r['kernel_s']:.3f} s (inside simulate "
              f"{r['kernel_inside_simulate_s']:.3f} s): ratio {r['ratio']:.1f}; first run in the process "
              f"{r['first_run_s']:.3f} s")
        top = {k: v for k, v in ph.items() if not k.startswith("results_")}
        parts = {k.removeprefix("results_"): v for k, v in ph.items() if k.startswith("results_")}
        print("      split: " + ", ".join(f"{k} {_fmt(v)}" for k, v in top.items()))
        print("      of the results: " + ", ".join(f"{k} {_fmt(v)}" for k, v in parts.items()))
    m = out["minimal"]
    print(f"\n2. kernel vs minimal loops, greedy, {m['slots']:,} slots, {m['requests']:,} requests (medians)")
    print(f"  kernel {m['kernel_s']:.3f} s, minimal wheel {m['wheel_s']:.3f} s, minimal scan "
          f"{m['scan_s']:.3f} s; kernel / {m['minimal']} = {m['ratio']:.2f}")
    print(f"  kernel as simulate(records=False) calls it {m['kernel_summary_s']:.3f} s; "
          f"kernel / {m['minimal']} = {m['ratio_summary']:.2f}")
    checked = "; ".join(f"{c['case']} ({c['engine']})" for c in out["minimal_checks"])
    print(f"  counts checked equal: {checked}; and the timed case")
    tr = out["trace"]
    print(f"\n3. trace replay vs Poisson arrivals ({tr['source']}, {tr['policy']}, "
          f"const step {tr['step_s']:.4g} s)")
    for r in tr["rows"]:
        print(f"  {r['arrivals']:<24} engine {r['engine']:<6} {r['slots']:>10,} slots {r['completed']:>9,} "
              f"done {r['wall_s']:8.2f} s {r['requests_per_s']:>12,.0f} req/s")
    print("\n4. peak RSS, each in a fresh process")
    for r in out["rss"]:
        floor = "" if r["import_floor_mb"] is None else \
            f" (its own VmHWM {r['vmhwm_mb']:.0f} MB, after the imports {r['import_floor_mb']:.0f} MB)"
        print(f"  {r['what']:<24} {r['policy']:<26} {r['slots']:>11,} slots peak {r['peak_mb']:8.0f} MB"
              f"{floor}, {r['wall_s']:.1f} s")
    print("\n5. batching options: the Python step loop vs the compiled one (summary only)")
    for r in out["step"]:
        print(f"  {r['batching']:<14} {r['slots']:>8,} slots {r['completed']:>7,} done  " + "  ".join(
            f"{e} {r[e]['wall_s']:.3f} s ({r[e]['slots_per_s']:,.0f} slots/s, "
            f"{r[e]['requests_per_s']:,.0f} req/s)" for e in ("python", "fast"))
            + f"  speed-up {r['speedup']:.0f}×")
    print("\ngoals")
    g = out["goals"]
    for row in g:
        print(f"  {row['goal']:<66} {row['value']:>10.3g}  {row['verdict']}")


def goals(out: dict) -> list[dict]:
    rows = [{"goal": f"simulate() / kernel ≤ {GOALS['e2e_over_kernel']} ({r['policy'].split(':')[0]}, "
                     f"{_mode(r['records'])})",
             "value": r["ratio"], "verdict": verdict(r["ratio"], GOALS["e2e_over_kernel"])}
            for r in out["end_to_end"]]
    for key, mode in (("ratio", "records"), ("ratio_summary", "summary")):
        m = out["minimal"][key]
        rows.append({"goal": f"kernel / minimal loop ≤ {GOALS['kernel_over_minimal']} ({mode})", "value": m,
                     "verdict": verdict(m, GOALS["kernel_over_minimal"])})
    s = out["trace"]["slowdown"]
    rows.append({"goal": f"Poisson / trace replay requests/s ≤ {GOALS['trace_slowdown']}", "value": s,
                 "verdict": verdict(s, GOALS["trace_slowdown"])})
    for r in out["rss"]:
        if r["records"] is not None:
            rows.append({"goal": f"peak RSS MB < {GOALS['peak_rss_mb']:.0f}, {r['slots']:,} slots "
                                 f"({r['policy'].split(':')[0]}, {_mode(r['records'])})",
                         "value": r["peak_mb"], "verdict": verdict(r["peak_mb"], GOALS["peak_rss_mb"])})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="10x fewer slots everywhere (a smoke test)")
    args = ap.parse_args()
    scale = 10 if args.quick else 1
    t_start = time.perf_counter()
    case = azure_case()
    print(f"{PRESET}: M = {MEMORY:,}, λ_max = {case['lambda_max']:.6g}, λ = {case['lam']:.6g}, "
          f"r*(1e-6) = {case['plan_flow_rate']:.6g}; policies {', '.join(case['policies'].values())}")
    out: dict = {"quick": args.quick}
    out["end_to_end"] = measure_end_to_end(case, 2_000_000 // scale)
    print("  1 done", flush=True)
    out["minimal_checks"] = check_minimal(case, args.quick)
    out["minimal"] = measure_minimal(case, 2_000_000 // scale)
    print("  2 done", flush=True)
    out["trace"] = measure_trace(case, 400_000 // scale)
    print("  3 done", flush=True)
    out["rss"] = measure_rss(case, 10_000_000 // scale, 5_000_000 // scale)
    print("  4 done", flush=True)
    out["step"] = measure_step(20_000 // scale)
    out["goals"] = goals(out)
    out["total_s"] = time.perf_counter() - t_start
    report(out)
    print(f"\ntotal {out['total_s']:.0f} s")
    prov = provenance("scipy", "pandas", "numba", seed=SEED, reps=REPS, e2e_reps=E2E_REPS,
                      kernel_reps=KERNEL_REPS)
    out = {"provenance": prov,
           "case": {"preset": PRESET, "memory_tokens": MEMORY, "load": LOAD, "lambda": case["lam"],
                    "lambda_max": case["lambda_max"], "plan_flow_rate": case["plan_flow_rate"],
                    "policies": case["policies"]}, "goals_thresholds": GOALS} | out
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
