"""The ``flowstab`` command line.

Subcommands::

    flowstab plan  (--prompt SPEC --decode SPEC | --workload PRESET|FILE.toml|trace:PATH)
                   --memory M [--eps 1e-6] [--budget randomized] [--step-time SPEC]
                   [--arrival-rate λ] [--exact] [--json]
    flowstab demo  the plan on the embedded default workload, as a readable report
    flowstab simulate  WORKLOAD --memory M --policy SPEC [--arrival-rate λ] [--slots T]
                   [--warmup W] [--seed S] [--arrivals poisson|deterministic|bernoulli]
                   [--block-size b] [--eviction recompute|keep-progress] [--step-time SPEC]
                   [--replications N [--processes P]] [--json]
    flowstab compare   WORKLOAD --memory M [--arrival-rate λ] [same run flags as simulate]
                   [--policies "SPEC;SPEC;..."] [--json] [--plot FILE.png]
    flowstab region    two-class rate regions [--json] [--plot FILE.png]

and, from :mod:`flowstab.commands` (one module each): ``report`` (the HTML report),
``check`` (the claims ledger), ``design`` (cvxpy rate design, ``--integer`` budgets),
``sweep`` (grids of simulations to Parquet, ``--resume``, ``--dask``) and ``calibrate``
(step-time calibration on a GPU or the CPU). ``flowstab COMMAND --help`` lists each one's flags.

Bad input prints one line, ``flowstab: error: ...``, and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from flowstab.plotting import OKABE_ITO, PLOT_SUFFIXES
from numerics.errors import FlowstabError, OutputError

__all__ = ["main"]

DEMO_MEMORY_TOKENS = 131_072
DEFAULT_SLOTS = 20_000
#: Progress lines go to stderr only for work that has already run this long (seconds).
PROGRESS_AFTER_S = 2.0
#: compare runs the clairvoyant MC-SF reference (Python engine, a sort and a binary search of
#: future-memory checks every slot: ~0.1 ms per slot) only up to these sizes.
MCSF_MAX_SLOTS = 20_000
MCSF_MAX_ARRIVALS = 50_000
#: The flow-control rate that compare runs is the plan's r*(ε) at this ε.
COMPARE_EPSILON = 1e-6
#: Okabe–Ito colours (distinguishable under the common colour-vision deficiencies).
#: Size limits of one run, so that an impossible request is a one-line error rather than a
#: MemoryError or an int64 overflow: the engine keeps ~80 bytes of arrays per slot and ~150 bytes
#: per request (10^8 of either is ~10 GB), and the compiled kernel counts tokens in int64. A KV
#: cache of 10^12 tokens (~100 PB at 100 KB per token) is far beyond any accelerator.
MAX_SLOTS = 10**8
MAX_EXPECTED_REQUESTS = 10**8
MAX_MEMORY_TOKENS = 10**12



class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit status 2."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"flowstab: error: {message} (see '{self.prog} --help')\n")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _integer(text: str, least: int) -> int:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value != int(value):
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text}")
    if value < least:
        raise argparse.ArgumentTypeError(f"must be ≥ {least}, got {text}")
    return int(value)


def _positive_int(text: str) -> int:
    return _integer(text, 1)


def _nonnegative_int(text: str) -> int:
    return _integer(text, 0)


def _replications(text: str) -> int:
    value = _integer(text, 1)
    if value < 2:
        raise argparse.ArgumentTypeError(f"a confidence interval needs at least 2, got {text}")
    return value


def _memory(text: str) -> int:
    value = _positive_float(text)
    if value != int(value):
        raise argparse.ArgumentTypeError(f"must be a whole number of tokens, got {text}")
    return int(value)


def _epsilon(text: str) -> float:
    value = _positive_float(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"must lie in (0, 1), got {text}")
    return value


def _add_workload_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("workload (either --workload, or --prompt and --decode)")
    g.add_argument("--workload", help="preset name (azure-conv, azure-code, sharegpt, mooncake), "
                   "a workload .toml file, or trace:PATH")
    g.add_argument("--prompt", help="prompt-length law spec, e.g. 100 or lognormal:median=120,sigma=0.8")
    g.add_argument("--decode", help="decode-length law spec, e.g. geom:mean=200,max=2048")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="flowstab", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    plan = sub.add_parser("plan", help="stability limits and a flow-control rate for a workload")
    _add_workload_args(plan)
    plan.add_argument("--memory", type=_memory, help="KV-cache size M in tokens")
    plan.add_argument("--eps", type=_epsilon, default=1e-6,
                      help="target overflow probability per slot (default 1e-6)")
    plan.add_argument("--budget", choices=("randomized", "deterministic", "poisson"),
                      default="randomized", help="activation budget law (default randomized)")
    plan.add_argument("--step-time", help="const:SECONDS, linear:c0=..,cb=..,ck=..[,cp=..] or "
                      "staircase:c=..,a=..,b0=..; adds per-second rates")
    plan.add_argument("--arrival-rate", type=_positive_float,
                      help="a total arrival rate (requests/slot) to check against the plan")
    plan.add_argument("--exact", action="store_true",
                      help="choose r*(ε) under the exact overflow tail (slower; JSON bound \"exact\")")
    plan.add_argument("--json", action="store_true", help="print one JSON object")

    demo = sub.add_parser("demo", help="the plan for the embedded default workload")
    demo.add_argument("--memory", type=_memory, default=DEMO_MEMORY_TOKENS,
                      help=f"KV-cache size in tokens (default {DEMO_MEMORY_TOKENS})")
    demo.add_argument("--json", action="store_true", help="print one JSON object")

    simulate = sub.add_parser("simulate", help="simulate one admission policy slot by slot")
    _add_workload_args(simulate)
    _add_run_args(simulate)
    simulate.add_argument("--policy", required=True,
                          help="flow:rate=R[,budget=..], budgets:4,4, greedy[:watermark=..,max_seqs=..], "
                          "reserve[:max=L], alpha:0.1 or mcsf")
    simulate.add_argument("--replications", type=_replications, metavar="N",
                          help="N ≥ 2 independent runs (seeds from SeedSequence(--seed)); prints "
                          "mean ± 95%% Student-t half-width per metric")
    simulate.add_argument("--processes", type=_positive_int, metavar="P",
                          help="worker processes for --replications (default: min(N, CPUs))")
    simulate.add_argument("--json", action="store_true",
                          help="print one JSON object (the summary, or the confidence-interval table)")

    compare = sub.add_parser("compare", help="simulate several policies on the same arrivals")
    _add_workload_args(compare)
    _add_run_args(compare)
    compare.add_argument("--policies", metavar="SPEC;SPEC;...",
                         help="policies to run (default: flow at the plan's r*(1e-6), greedy, "
                         "alpha:0.1, reserve, mcsf)")
    compare.add_argument("--json", action="store_true", help="print a JSON list of summaries")
    compare.add_argument("--plot", metavar="FILE.png",
                         help="save a figure: KV utilisation over time and latency CDFs")
    region = sub.add_parser("region", help="two-class admissible rate regions")
    _add_workload_args(region)
    region.add_argument("--memory", type=_memory, help="KV-cache size M in tokens "
                        "(default: the workload file's memory_tokens)")
    region.add_argument("--eps", type=_epsilon, default=1e-6,
                        help="target overflow probability per slot (default 1e-6)")
    region.add_argument("--directions", type=_positive_int, default=17,
                        help="class mixes on the flow-control boundary (default 17)")
    region.add_argument("--json", action="store_true", help="print one JSON object")
    region.add_argument("--plot", metavar="FILE.png", help="save the regions as a figure")
    _register_command_modules(sub)
    return parser


def _register_command_modules(sub) -> None:
    """Add the subcommands defined in :mod:`flowstab.commands` (one module each, name order)."""
    import importlib
    import pkgutil

    from flowstab import commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"flowstab.commands.{info.name}").register(sub)


def _add_run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--memory", type=_memory, help="KV-cache size M in tokens "
                   "(default: the workload file's memory_tokens)")
    p.add_argument("--arrival-rate", type=_positive_float, metavar="λ",
                   help="total arrival rate in requests/slot, class mix kept (default: the "
                   "workload classes' own rates)")
    g = p.add_argument_group("run")
    g.add_argument("--slots", type=_positive_int, default=DEFAULT_SLOTS,
                   help=f"slots simulated (default {DEFAULT_SLOTS:,})")
    g.add_argument("--warmup", type=_nonnegative_int,
                   help="slots left out of the statistics (default: slots // 10)")
    g.add_argument("--seed", type=_nonnegative_int, default=0, help="random seed (default 0)")
    g.add_argument("--arrivals", choices=("poisson", "deterministic", "bernoulli", "trace"),
                   default="poisson",
                   help="arrival process per slot (default poisson); 'trace' replays the "
                   "timestamps of --workload trace:PATH through --step-time")
    g.add_argument("--block-size", type=_positive_int, default=1,
                   help="KV memory is allocated in blocks of this many tokens (default 1)")
    g.add_argument("--eviction", choices=("recompute", "keep-progress"), default="recompute",
                   help="what an evicted request keeps (default recompute: nothing)")
    g.add_argument("--step-time", help="const:SECONDS, linear:c0=..,cb=..,ck=..[,cp=..] or "
                   "staircase:c=..,a=..,b0=..; adds metrics in seconds")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"flowstab {version('flowstab')}"
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "flowstab (not installed)"


def _resolve_workload(args: argparse.Namespace):
    from numerics.errors import WorkloadError
    from numerics.model.specs import parse_law
    from numerics.model.workload import Workload

    if args.workload and (args.prompt or args.decode):
        raise WorkloadError("give either --workload or --prompt/--decode, not both")
    if args.workload:
        from numerics.data.loaders import load_workload

        return load_workload(args.workload)
    if not (args.prompt and args.decode):
        raise WorkloadError(
            "describe the workload: --workload PRESET|FILE.toml|trace:PATH, or both --prompt and "
            "--decode (e.g. --prompt 100 --decode geom:mean=200)"
        )
    wl = Workload.single(parse_law(args.prompt), parse_law(args.decode), name="cli")
    return Workload(wl.classes, "cli", None, f"prompt {args.prompt}, decode {args.decode}")


def _print_plan(plan, as_json: bool) -> None:
    if as_json:
        print(json.dumps(plan.to_dict(), default=_jsonable, allow_nan=True))
    else:
        print(plan.report())


def _jsonable(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return str(x)


def _cmd_plan(args: argparse.Namespace) -> int:
    from numerics.analysis.plan import make_plan
    from numerics.model.steptime import StepTimeModel

    workload = _resolve_workload(args)
    step = StepTimeModel.from_spec(args.step_time) if args.step_time else None
    plan = make_plan(workload, args.memory, args.eps, args.budget, step, args.arrival_rate,
                     exact=args.exact)
    _print_plan(plan, args.json)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from numerics.analysis.plan import make_plan
    from numerics.data.presets import DEFAULT_PRESET, load_preset

    workload = load_preset(DEFAULT_PRESET)
    plan = make_plan(workload, args.memory)
    if args.json:
        _print_plan(plan, True)
        return 0
    print(f"flowstab demo: planning the embedded default workload {DEFAULT_PRESET!r} on a "
          f"{args.memory:,}-token KV cache\n")
    print(plan.report())
    print("\nTry: flowstab plan --prompt 100 --decode geom:mean=200 --memory 50000")
    return 0


# ---------------------------------------------------------------------------------- simulate
#: (summary key, label, unit) in the order the readable tables show them.
_METRICS = (
    ("arrived", "arrived", "requests"),
    ("completed", "completed", "requests"),
    ("waiting_end", "waiting at the end", "requests"),
    ("active_end", "active at the end", "requests"),
    ("throughput_requests_per_slot", "throughput", "requests/slot"),
    ("throughput_tokens_per_slot", "token throughput", "tokens/slot"),
    ("latency_mean_slots", "latency mean", "slots"),
    ("latency_p95_slots", "latency p95", "slots"),
    ("ttft_mean_slots", "TTFT mean", "slots"),
    ("kv_util_mean", "KV utilisation mean", "of M"),
    ("kv_util_std", "KV utilisation std", "of M"),
    ("kv_peak_tokens", "KV peak", "tokens"),
    ("evictions", "evictions", ""),
    ("wasted_tokens", "wasted (recomputed) tokens", "tokens"),
    ("queue_slope", "queue slope, 2nd half", "requests/slot"),
    ("duration_s", "simulated wall clock", "s"),
    ("throughput_requests_per_s", "throughput", "requests/s"),
    ("throughput_tokens_per_s", "token throughput", "tokens/s"),
    ("latency_mean_s", "latency mean", "s"),
    ("latency_p95_s", "latency p95", "s"),
    ("ttft_mean_s", "TTFT mean", "s"),
)
#: Summary keys that describe the run (shown in the header, not the table).
_RUN_KEYS = ("policy", "memory_tokens", "slots", "warmup", "seed", "arrival_rate_per_slot")


class _Progress:
    """Progress lines on stderr, printed only once the work has run ``PROGRESS_AFTER_S``."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.t0 = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def say(self, text: str) -> None:
        elapsed = self.elapsed()
        if elapsed >= PROGRESS_AFTER_S:
            print(f"flowstab: {self.what}: {text} ({elapsed:.0f} s)", file=sys.stderr, flush=True)

    @contextmanager
    def ticking(self, text: str) -> Iterator[None]:
        """While the block runs, repeat ``text`` every ``PROGRESS_AFTER_S`` seconds (a daemon thread)."""
        stop = threading.Event()

        def tick() -> None:
            while not stop.wait(PROGRESS_AFTER_S):
                self.say(text)

        thread = threading.Thread(target=tick, name="flowstab-progress", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()


def _fmt(value, unit: str = "") -> str:
    """A number for people: thousands separators, 5 significant digits, percentages for ``of M``."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if not math.isfinite(value):
        return "n/a"
    if unit == "of M":
        return f"{100 * value:.2f}%"
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e7):
        return f"{value:.3e}"
    return f"{value:,.5g}"


def _clean(obj):
    """JSON-ready: numpy scalars to Python, non-finite floats to null."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, str):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _memory_of(args: argparse.Namespace, workload) -> int:
    from numerics.errors import WorkloadError

    memory = args.memory if args.memory is not None else workload.memory_tokens
    if memory is None:
        raise WorkloadError("give the KV-cache size in tokens (--memory M)")
    return int(memory)


def _run_settings(args: argparse.Namespace, workload) -> dict:
    """The SimConfig keywords shared by simulate and compare (everything but the policy)."""
    from numerics.errors import WorkloadError
    from numerics.model.steptime import StepTimeModel

    memory = _memory_of(args, workload)
    if memory > MAX_MEMORY_TOKENS:
        raise WorkloadError(f"--memory {memory:.3g} tokens is beyond the simulator's limit of "
                            f"{MAX_MEMORY_TOKENS:.0e} tokens")
    if args.slots > MAX_SLOTS:
        raise WorkloadError(f"--slots {args.slots:.3g} is beyond the simulator's limit of "
                            f"{MAX_SLOTS:.0e} slots per run")
    warmup = args.slots // 10 if args.warmup is None else args.warmup
    if warmup >= args.slots:
        raise WorkloadError(f"--warmup {warmup} must be less than --slots {args.slots}")
    step = StepTimeModel.from_spec(args.step_time) if args.step_time else None
    if args.arrivals == "trace":
        from numerics.data.traces import load_trace

        if not (args.workload or "").startswith("trace:"):
            raise WorkloadError("--arrivals trace replays a trace: give --workload trace:PATH")
        if step is None:
            raise WorkloadError("--arrivals trace maps seconds to slots: give --step-time")
        if args.arrival_rate is not None:
            raise WorkloadError(
                "--arrivals trace takes its arrival times from the trace; drop --arrival-rate"
            )
        trace = load_trace(args.workload.removeprefix("trace:"))
        if trace.timestamps_s is None:
            raise WorkloadError(f"{trace.source} has no timestamps to replay")
        return {
            "workload": workload, "memory_tokens": memory, "slots": args.slots,
            "arrivals": "trace", "trace": trace, "warmup": warmup, "seed": args.seed,
            "block_size": args.block_size, "eviction": args.eviction, "step_time": step,
        }
    if args.arrival_rate is None and workload.rates_per_slot is None:
        raise WorkloadError(
            f"give --arrival-rate (requests per slot): the classes of workload {workload.name!r} "
            "carry no rates"
        )
    rate = args.arrival_rate
    total = rate if rate is not None else float(workload.rates_per_slot.sum())
    if total * args.slots > MAX_EXPECTED_REQUESTS:
        raise WorkloadError(
            f"λ × slots = {total:g} × {args.slots:,} ≈ {total * args.slots:.3g} requests is beyond the "
            f"simulator's limit of {MAX_EXPECTED_REQUESTS:.0e} per run; lower --slots or --arrival-rate"
        )
    if args.arrivals == "bernoulli" and total > 1:
        raise WorkloadError(
            f"--arrivals bernoulli admits at most 1 request per slot; the total rate is {total:g}"
        )
    return {
        "workload": workload,
        "memory_tokens": memory,
        "slots": args.slots,
        "arrival_rate": rate,
        "arrivals": args.arrivals,
        "warmup": warmup,
        "seed": args.seed,
        "block_size": args.block_size,
        "eviction": args.eviction,
        "step_time": step,
    }


def _parse_policy(spec: str, workload):
    """parse_policy plus the checks that depend on the workload (so that no run fails midway)."""
    from numerics.errors import SpecError
    from numerics.sim import ClassBudgets, Reserve, parse_policy

    policy = parse_policy(spec)
    if isinstance(policy, Reserve) and policy.max_tokens is None \
            and not math.isfinite(workload.max_decode):
        raise SpecError(
            f"policy {spec!r}: the decode lengths of {workload.name!r} are unbounded; give the "
            "reservation per request, e.g. reserve:max=2048"
        )
    if isinstance(policy, ClassBudgets) and len(policy.budgets) != len(workload.classes):
        raise SpecError(
            f"policy {spec!r}: {len(policy.budgets)} budget(s) for a workload with "
            f"{len(workload.classes)} class(es); give one per class"
        )
    return policy


def _hard_cap_note(workload, memory: int) -> None:
    """Warn (stderr) when some requests can never fit: S + O > M."""
    from numerics.analysis.plan import HARD_CAP_TOL

    p = workload.prob_total_exceeds(memory)
    if p > HARD_CAP_TOL:
        print(f"flowstab: note: P(S + O > M) = {p:.3g} with M = {memory:,}: such requests can never "
              "finish and will stay in the system", file=sys.stderr)


def _header(summary: dict, workload, settings: dict) -> list[str]:
    rate = summary.get("arrival_rate_per_slot")
    arrivals = f"{settings['arrivals']} arrivals" + (f", λ = {rate:g} requests/slot" if rate else "")
    extra = []
    if settings["block_size"] > 1:
        extra.append(f"blocks of {settings['block_size']} tokens")
    if settings["eviction"] != "recompute":
        extra.append(f"eviction {settings['eviction']}")
    if settings["step_time"] is not None:
        extra.append(f"step time {settings['step_time'].to_spec()}")
    desc = f" ({workload.source})" if workload.source else ""
    return [
        f"workload   {workload.name}{desc}",
        f"memory     M = {settings['memory_tokens']:,} tokens; {arrivals}"
        + "".join(f"; {e}" for e in extra),
        f"run        {settings['slots']:,} slots, warm-up {settings['warmup']:,}, "
        f"seed {settings['seed']}",
    ]


def _summary_table(summary: dict) -> list[str]:
    known = {k for k, _, _ in _METRICS}
    rows = [(label, _fmt(summary[key], unit), "" if unit == "of M" else unit)
            for key, label, unit in _METRICS if key in summary]
    rows += [(key, _fmt(value), "") for key, value in summary.items()
             if key not in known and key not in _RUN_KEYS]
    width = max(len(label) for label, _, _ in rows)
    vwidth = max(len(v) for _, v, _ in rows)
    return [f"  {label:<{width}}  {value:>{vwidth}}  {unit}".rstrip() for label, value, unit in rows]


def _ci_table(table) -> list[str]:
    units = {key: (label, unit) for key, label, unit in _METRICS}
    head = ("metric", "mean", "", "half-width", "std", "n", "unit")
    rows = [head]
    for metric, row in table.iterrows():
        label, unit = units.get(metric, (metric, ""))
        rows.append((label, _fmt(float(row["mean"]), unit), "±", _fmt(float(row["half_width"]), unit),
                     _fmt(float(row["std"]), unit), str(int(row["n"])), "" if unit == "of M" else unit))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    align = "<><<>><"
    lines = []
    for r in rows:
        cells = [f"{c:{a}{w}}" for c, a, w in zip(r, align, widths, strict=True)]
        lines.append(("  " + "  ".join(cells)).rstrip())
    return lines


def _cmd_simulate(args: argparse.Namespace) -> int:
    from numerics.sim import SimConfig, ci, replicate, simulate

    workload = _resolve_workload(args)
    settings = _run_settings(args, workload)
    policy = _parse_policy(args.policy, workload)
    config = SimConfig(policy=policy, **settings)
    _hard_cap_note(workload, settings["memory_tokens"])
    progress = _Progress("simulate")
    if args.replications is None:
        with progress.ticking(f"{args.slots:,} slots of {policy.spec()} still running"):
            summary = simulate(config).summary
        if args.json:
            print(json.dumps(_clean(summary)))
            return 0
        print(f"flowstab simulate — {summary['policy']}")
        print("\n".join(_header(summary, workload, settings)))
        print()
        print("\n".join(_summary_table(summary)))
        return 0

    n = args.replications
    df = replicate(config, n, args.seed, processes=args.processes,
                   progress=lambda done, total: progress.say(f"{done}/{total} replications done"))
    level = 0.95
    table = ci(df, level)
    if args.json:
        print(json.dumps(_clean({
            "policy": policy.spec(),
            "replications": n,
            "seed": args.seed,
            "level": level,
            "ci": {
                metric: {col: (int(row[col]) if col == "n" else float(row[col])) for col in table.columns}
                for metric, row in table.iterrows()
            },
        })))
        return 0
    print(f"flowstab simulate — {policy.spec()}, {n} replications "
          f"(seeds from SeedSequence({args.seed})), {100 * level:g}% Student-t intervals")
    print("\n".join(_header({"arrival_rate_per_slot": config.total_rate}, workload, settings)))
    print()
    print("\n".join(_ci_table(table)))
    return 0


# ---------------------------------------------------------------------------------- compare
#: (summary key, column header, unit) of the compare table.
_COMPARE_COLUMNS = (
    ("throughput_requests_per_slot", "req/slot", ""),
    ("throughput_tokens_per_slot", "tok/slot", ""),
    ("latency_mean_slots", "lat mean", ""),
    ("latency_p95_slots", "lat p95", ""),
    ("ttft_mean_slots", "TTFT", ""),
    ("kv_util_mean", "KV mean", "of M"),
    ("kv_util_std", "KV std", "of M"),
    ("evictions", "evict", ""),
    ("wasted_tokens", "wasted", ""),
    ("queue_slope", "q slope", ""),
)


def _default_policies(workload, settings: dict) -> tuple[list[tuple[str, object]], list[str]]:
    """compare's default line-up, with flow at the plan's r*(1e-6), and notes on what was skipped."""
    from numerics.analysis.plan import make_plan

    rate = settings["arrival_rate"]
    total = rate if rate is not None else float(workload.rates_per_slot.sum())
    try:
        r = make_plan(workload, settings["memory_tokens"], COMPARE_EPSILON).flow_rate
    except FlowstabError as exc:
        policies, notes = default_lineup(workload, None, total, settings["slots"])
        notes.insert(0, f"flow skipped: no flow-control rate for this workload ({_one_line(exc)})")
        return policies, notes
    return default_lineup(workload, r, total, settings["slots"])


def default_lineup(workload, flow_rate: float | None, total_rate: float, slots: int,
                   budget: str = "randomized", epsilon: float = COMPARE_EPSILON,
                   ) -> tuple[list[tuple[str, object]], list[str]]:
    """The default policy line-up of ``compare`` and ``report``, and notes on what was skipped.

    Flow control at ``flow_rate`` (skipped when None or 0), greedy, α-protection 0.1, reserve at
    the decode law's maximum (skipped for unbounded laws) and the clairvoyant MC-SF reference
    (skipped beyond :data:`MCSF_MAX_SLOTS` slots or :data:`MCSF_MAX_ARRIVALS` arrivals).
    """
    from numerics.sim import FlowControl

    policies: list[tuple[str, object]] = []
    notes: list[str] = []
    if flow_rate:
        policies.append((f"flow:rate={flow_rate:.6g}", FlowControl(rate=flow_rate, budget=budget)))
        if flow_rate <= total_rate:
            notes.append(f"flow runs at r*(ε = {epsilon:g}) = {flow_rate:.6g} requests/slot, not above "
                         f"λ = {total_rate:g}: its queue grows by design (r* trades capacity for the "
                         "overflow guarantee)")
    elif flow_rate is not None:
        notes.append(f"flow skipped: no flow-control rate meets ε = {epsilon:g} with a valid bound")
    for spec in ("greedy", "alpha:0.1"):
        policies.append((spec, _parse_policy(spec, workload)))
    if math.isfinite(workload.max_decode):
        spec = f"reserve:max={int(workload.max_decode)}"
        policies.append((spec, _parse_policy(spec, workload)))
    else:
        notes.append("reserve skipped: the decode lengths are unbounded (add reserve:max=L by hand)")
    if slots <= MCSF_MAX_SLOTS and total_rate * slots <= MCSF_MAX_ARRIVALS:
        policies.append(("mcsf", _parse_policy("mcsf", workload)))
    else:
        notes.append(f"mcsf skipped: the clairvoyant reference is slow beyond {MCSF_MAX_SLOTS:,} "
                     f"slots or {MCSF_MAX_ARRIVALS:,} expected arrivals (add it with --policies)")
    return policies, notes


def _check_plot_path(path: str) -> Path:
    """Fail before simulating when the figure could not be saved."""
    p = Path(path)
    if p.suffix.lower() not in PLOT_SUFFIXES:
        raise OutputError(f"--plot {path}: the file name must end in {', '.join(PLOT_SUFFIXES)}")
    if p.is_dir():
        raise OutputError(f"--plot {path} is a directory; give a file name, e.g. compare.png")
    folder = p.parent
    if not folder.is_dir():
        raise OutputError(f"--plot {path}: folder {str(folder)!r} does not exist")
    if not os.access(folder, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise OutputError(f"--plot {path}: not writable")
    return p


def _downsample(x, y, points: int = 2000):
    """Block means so that a long time series draws as ≤ ``points`` points."""
    import numpy as np

    k = max(1, len(x) // points)
    if k == 1:
        return np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    m = (len(x) // k) * k
    return (np.asarray(x[:m], dtype=float).reshape(-1, k).mean(axis=1),
            np.asarray(y[:m], dtype=float).reshape(-1, k).mean(axis=1))


def plot_compare(results: list, path: str | os.PathLike, title: str = "") -> Path:
    """Two panels — KV utilisation over time per policy, latency CDFs — saved at 150 dpi.

    ``results`` is a list of ``(label, SimResult)``. matplotlib is imported here (Agg canvas),
    never at import time. Raises :class:`OutputError` when the file cannot be written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax_kv, ax_cdf = fig.subplots(1, 2)
    log_x = draw_policy_lines(ax_kv, ax_cdf, results, OKABE_ITO, count_requests=True)
    if results:
        cfg = results[0][1].config
        ax_kv.axhline(1.0, color="0.4", lw=0.8, ls=":", label="M")
        if cfg.warmup:
            ax_kv.axvline(cfg.warmup, color="0.6", lw=0.8, ls="--", label="end of warm-up")
    ax_kv.set_xlabel("time (slots)")
    ax_kv.set_ylabel("KV-cache utilisation (fraction of M)")
    ax_kv.set_title("KV-cache utilisation over time")
    ax_kv.set_ylim(bottom=0)
    ax_kv.legend(fontsize="small", loc="best")
    ax_cdf.set_xlabel("latency, arrival to last token (slots)")
    ax_cdf.set_ylabel("fraction of requests with latency ≤ x")
    ax_cdf.set_title("Latency CDF (requests arriving after warm-up)")
    if log_x:
        ax_cdf.set_xscale("log")
    ax_cdf.set_ylim(0, 1.02)
    ax_cdf.legend(fontsize="small", loc="best")
    if title:
        fig.suptitle(title)
    out = Path(path)
    try:
        fig.savefig(out, dpi=150)
    except OSError as exc:
        raise OutputError(f"--plot {out}: cannot write the figure ({exc.strerror or exc})") from None
    return out


def _compare_table(rows: list[tuple[str, dict]]) -> list[str]:
    head = ["policy", *(h for _, h, _ in _COMPARE_COLUMNS)]
    body = [[label, *(_fmt(s.get(k), u) for k, _, u in _COMPARE_COLUMNS)] for label, s in rows]
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    lines = []
    for r in [head, *body]:
        cells = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)]
        lines.append("  " + "  ".join(cells))
    return lines


def _cmd_compare(args: argparse.Namespace) -> int:
    from numerics.errors import SpecError
    from numerics.sim import SimConfig, simulate

    workload = _resolve_workload(args)
    settings = _run_settings(args, workload)
    plot_path = _check_plot_path(args.plot) if args.plot else None
    if args.policies is not None:
        specs = [s.strip() for s in args.policies.split(";") if s.strip()]
        if not specs:
            raise SpecError("--policies: give at least one policy spec, e.g. 'greedy;alpha:0.1'")
        policies, notes = [(s, _parse_policy(s, workload)) for s in specs], []
    else:
        policies, notes = _default_policies(workload, settings)
    configs = [(label, SimConfig(policy=policy, **settings)) for label, policy in policies]
    _hard_cap_note(workload, settings["memory_tokens"])
    progress = _Progress("compare")
    results = []
    for i, (label, config) in enumerate(configs, start=1):
        with progress.ticking(f"{label} ({i}/{len(configs)}) still running"):
            results.append((label, simulate(config)))
        progress.say(f"{label} done ({i}/{len(configs)})")
    if plot_path is not None:
        plot_compare(results, plot_path,
                     title=f"{workload.name}, M = {settings['memory_tokens']:,} tokens, "
                     f"λ = {configs[0][1].total_rate:g} requests/slot" if configs else "")
    summaries = [(label, res.summary) for label, res in results]
    if args.json:
        for note in notes:
            print(f"flowstab: note: {note}", file=sys.stderr)
        print(json.dumps(_clean([s for _, s in summaries])))
        return 0
    print("flowstab compare — the same arrivals (seed "
          f"{settings['seed']}) under each policy")
    first = summaries[0][1] if summaries else {"arrival_rate_per_slot": None}
    print("\n".join(_header(first, workload, settings)))
    print()
    print("\n".join(_compare_table(summaries)))
    print("  (per slot; latency and TTFT in slots; KV as % of M; evictions and wasted tokens in "
          "the window after warm-up)")
    for note in notes:
        print(f"note: {note}")
    if plot_path is not None:
        print(f"figure saved to {plot_path}")
    return 0


def _cmd_region(args: argparse.Namespace) -> int:
    from numerics.analysis.regions import (
        alg1_randomized_boundary,
        alg1_staircase,
        flow_region_boundary,
        necessary_vertices,
    )
    from numerics.errors import WorkloadError

    workload = _resolve_workload(args)
    if len(workload.classes) != 2:
        raise WorkloadError(
            f"region needs a two-class workload (a .toml file with two [[class]] tables); "
            f"{workload.name!r} has {len(workload.classes)}"
        )
    memory = _memory_of(args, workload)
    plot_path = _check_plot_path(args.plot) if args.plot else None
    workload.require_finite_memory_time()
    w = workload.mean_memory_times
    known = all(c.lengths.prompt_law.values.size == 1 and c.lengths.decode_law.values.size == 1
                for c in workload.classes)
    out = {
        "classes": [c.name for c in workload.classes],
        "memory_tokens": memory,
        "epsilon": args.eps,
        "mean_memory_times": w.tolist(),
        "necessary_vertices": necessary_vertices(w, memory).tolist(),
        "flow_boundary": flow_region_boundary(workload, memory, args.eps, args.directions).tolist(),
        "alg1_staircase": alg1_staircase(w, memory).tolist() if known else None,
        "alg1_randomized_boundary": (
            alg1_randomized_boundary(workload, memory, args.eps, args.directions).tolist()
            if known else None
        ),
    }
    if plot_path is not None:
        _plot_region(out, plot_path)
    if args.json:
        print(json.dumps(out))
        return 0
    a, b = out["classes"]
    print(f"flowstab region — classes {a!r}, {b!r}; M = {memory:,} tokens")
    print(f"  E[W] = {w[0]:,.1f}, {w[1]:,.1f} token-slots")
    print(f"  necessary polytope: λ_{a} E[W_{a}] + λ_{b} E[W_{b}] ≤ M "
          f"(axis intercepts {memory / w[0]:.4g}, {memory / w[1]:.4g} requests/slot)")
    print(f"  flow control, ε = {args.eps:g} (randomized budget), boundary points (λ_{a}, λ_{b}):")
    for x, y in out["flow_boundary"]:
        print(f"    ({x:.4g}, {y:.4g})  load {(x * w[0] + y * w[1]) / memory:.1%}")
    if known:
        print(f"  Algorithm 1 (known lengths): {len(out['alg1_staircase'])} maximal budget pairs, "
              "λ admissible iff λ < b componentwise for one of them")
        print(f"  Algorithm 1 with randomised budgets, ε = {args.eps:g}, boundary points:")
        for x, y in out["alg1_randomized_boundary"]:
            print(f"    ({x:.4g}, {y:.4g})  load {(x * w[0] + y * w[1]) / memory:.1%}")
    else:
        print("  Algorithm 1 region not shown: it needs known (deterministic) lengths per class")
    if plot_path is not None:
        print(f"figure saved to {plot_path}")
    return 0


def _plot_region(out: dict, path) -> None:
    """Necessary polytope, flow ε-boundary and (when defined) the Algorithm 1 staircase."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    v = np.asarray(out["necessary_vertices"])
    ax.fill(v[:, 0], v[:, 1], color="#56B4E9", alpha=0.25, label="necessary (any scheduler)")
    fb = np.asarray(out["flow_boundary"])
    ax.plot(fb[:, 0], fb[:, 1], "-o", color="#0072B2", ms=3,
            label=f"flow control, ε = {out['epsilon']:g}")
    if out["alg1_staircase"] is not None:
        # union of boxes [0, b1) × [0, b2(b1)): on [b1 − 1, b1) the height is b2(b1)
        st = np.asarray(out["alg1_staircase"], dtype=float)
        ax.step(st[:, 0], np.append(st[1:, 1], 0.0), where="post", color="#D55E00",
                label="Algorithm 1 (integer budgets)")
    if out.get("alg1_randomized_boundary") is not None:
        rb = np.asarray(out["alg1_randomized_boundary"])
        ax.plot(rb[:, 0], rb[:, 1], "--", color="#009E73",
                label=f"Algorithm 1, randomised budgets, ε = {out['epsilon']:g}")
    a, b = out["classes"]
    ax.set_xlabel(f"λ_{a} (requests/slot)")
    ax.set_ylabel(f"λ_{b} (requests/slot)")
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.set_title(f"Admissible rates, M = {out['memory_tokens']:,} tokens")
    ax.legend(loc="upper right", fontsize=8)
    try:
        fig.savefig(path, dpi=150)
    except OSError as exc:
        raise OutputError(f"--plot {path}: {exc.strerror or exc}") from None



def draw_policy_lines(ax_kv, ax_cdf, results, colors, *, count_requests: bool = False,
                      cdf_points: int = 4000, lw_cdf: float = 1.2) -> bool:
    """One line per ``(label, SimResult)``: KV utilisation over time on ``ax_kv`` and the latency
    CDF of requests arriving after warm-up on ``ax_cdf``. Returns True when the latencies span more
    than two decades (a log x-axis reads better). Shared by ``compare --plot`` and the report.
    """
    import numpy as np

    styles = ("-", "--", "-.", ":")
    log_x = False
    for i, (label, res) in enumerate(results):
        color = colors[i % len(colors)]
        ls = styles[(i // len(colors) + i) % len(styles)]
        cfg = res.config
        ts = res.timeseries
        x, y = _downsample(ts["slot"].to_numpy(), ts["kv_tokens"].to_numpy() / cfg.memory_tokens)
        ax_kv.plot(x, y, color=color, ls=ls, lw=1.0, label=label)
        rec = res.records
        lat = rec.loc[(rec.arrival_slot >= cfg.warmup) & (rec.completion_slot >= 0), "latency_slots"]
        lat = np.sort(lat.to_numpy(dtype=float))
        if lat.size:
            frac = np.arange(1, lat.size + 1) / lat.size
            keep = np.unique(np.linspace(0, lat.size - 1, min(lat.size, cdf_points)).astype(np.int64))
            text = f"{label} ({lat.size:,} requests)" if count_requests else label
            ax_cdf.step(lat[keep], frac[keep], where="post", color=color, ls=ls, lw=lw_cdf, label=text)
            log_x = log_x or lat[-1] > 100 * max(lat[0], 1.0)
        else:
            ax_cdf.plot([], [], color=color, ls=ls, label=f"{label} (none finished)")
    return log_x

def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``flowstab`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "func", None) or {
        "plan": _cmd_plan,
        "demo": _cmd_demo,
        "simulate": _cmd_simulate,
        "compare": _cmd_compare,
        "region": _cmd_region,
    }[args.command]
    try:
        return handler(args)
    except FlowstabError as exc:
        print(f"flowstab: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except MemoryError:
        print("flowstab: error: out of memory; simulate fewer --slots or a lower --arrival-rate",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("flowstab: interrupted", file=sys.stderr)
        return 130


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
