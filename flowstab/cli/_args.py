"""What the ``flowstab`` subcommands share: argument types, argument groups, settings, output.

* argument types for argparse (:func:`positive_float`, :func:`positive_int`, :func:`memory`,
  :func:`epsilon`, ...): each turns the text into a number or raises
  :class:`argparse.ArgumentTypeError` with a message that says what is allowed;
* argument groups (:func:`add_workload_args`, :func:`add_run_args`) and what they resolve to
  (:func:`resolve_workload`, :func:`memory_of`, :func:`run_settings`, :func:`parse_policy_for`,
  :func:`run_config`);
* output for people (:data:`METRICS`, :func:`fmt`, :func:`header`, :class:`Progress`,
  :func:`start_runs`, :func:`hard_cap_note`, :func:`one_line`).

Only the standard library is imported here at top level, so that ``flowstab --help`` stays fast;
the numerics import inside the functions.

Examples
--------
>>> positive_int("1e3"), memory("50000"), epsilon("1e-6")
(1000, 50000, 1e-06)
>>> fmt(0.4689901, "of M"), fmt(123456), fmt(2.5e-5)
('46.90%', '123,456', '2.500e-05')
"""

from __future__ import annotations

import argparse
import math
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from numerics.model.workload import Workload
    from numerics.sim import Policy, SimConfig

__all__ = [
    "DEFAULT_SLOTS",
    "METRICS",
    "PROGRESS_AFTER_S",
    "Progress",
    "add_eps_arg",
    "add_memory_arg",
    "add_overwrite_arg",
    "add_rate_arg",
    "add_run_args",
    "add_workload_args",
    "batching_note",
    "epsilon",
    "fmt",
    "hard_cap_note",
    "header",
    "memory",
    "memory_of",
    "nonnegative_float",
    "nonnegative_int",
    "one_line",
    "parse_policy_for",
    "positive_float",
    "positive_int",
    "replications",
    "resolve_workload",
    "run_config",
    "run_settings",
    "start_runs",
    "total_rate",
]

DEFAULT_SLOTS = 20_000
#: Progress lines go to stderr only for work that has already run this long (seconds).
PROGRESS_AFTER_S = 2.0


# ------------------------------------------------------------------------------ argument types
def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def positive_float(text: str) -> float:
    """A finite number > 0."""
    value = _number(text)
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def nonnegative_float(text: str) -> float:
    """A finite number ≥ 0."""
    value = _number(text)
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a number ≥ 0, got {text}")
    return value


def _integer(text: str, least: int) -> int:
    value = _number(text)
    if not math.isfinite(value) or value != int(value):
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text}")
    if value < least:
        raise argparse.ArgumentTypeError(f"must be ≥ {least}, got {text}")
    return int(value)


def positive_int(text: str) -> int:
    """A whole number ≥ 1 (written as an integer or as a float such as ``1e3``)."""
    return _integer(text, 1)


def nonnegative_int(text: str) -> int:
    """A whole number ≥ 0."""
    return _integer(text, 0)


def replications(text: str) -> int:
    """A number of replications: at least 2, so that a confidence interval exists."""
    value = _integer(text, 1)
    if value < 2:
        raise argparse.ArgumentTypeError(f"a confidence interval needs at least 2, got {text}")
    return value


def memory(text: str) -> int:
    """A KV-cache size: a positive whole number of tokens."""
    value = positive_float(text)
    if value != int(value):
        raise argparse.ArgumentTypeError(f"must be a whole number of tokens, got {text}")
    return int(value)


def epsilon(text: str) -> float:
    """An overflow probability target in (0, 1)."""
    value = positive_float(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"must lie in (0, 1), got {text}")
    return value


# ------------------------------------------------------------------------------ argument groups
def add_workload_args(p: argparse.ArgumentParser) -> None:
    """``--workload``, or ``--prompt`` and ``--decode`` (read by :func:`resolve_workload`)."""
    g = p.add_argument_group("workload (either --workload, or --prompt and --decode)")
    g.add_argument("--workload", help="preset name (azure-conv, azure-code, sharegpt, mooncake), "
                   "a workload .toml file, or trace:PATH")
    g.add_argument("--prompt", help="prompt-length law spec, e.g. 100 or lognormal:median=120,sigma=0.8")
    g.add_argument("--decode", help="decode-length law spec, e.g. geom:mean=200,max=2048")


def add_overwrite_arg(p: argparse.ArgumentParser) -> None:
    """``--overwrite``: let the command replace files that exist (:mod:`flowstab.outputs`)."""
    p.add_argument("--overwrite", action="store_true",
                   help="replace output files that exist (default: refuse, before any work)")


def add_memory_arg(p: argparse.ArgumentParser,
                   text: str = "KV-cache size M in tokens (default: the workload file's memory_tokens)",
                   ) -> None:
    """``--memory M``, the KV-cache size in tokens (read by :func:`memory_of`); ``text`` is its help."""
    p.add_argument("--memory", type=memory, help=text)


def add_eps_arg(p: argparse.ArgumentParser) -> None:
    """``--eps ε``, the target overflow probability per slot (default 10⁻⁶)."""
    p.add_argument("--eps", type=epsilon, default=1e-6,
                   help="target overflow probability per slot (default 1e-6)")


def add_rate_arg(p: argparse.ArgumentParser) -> None:
    """``--arrival-rate λ``, a total arrival rate per slot that keeps the workload's class mix."""
    p.add_argument("--arrival-rate", type=positive_float, metavar="λ",
                   help="total arrival rate in requests/slot, class mix kept (default: the "
                   "workload classes' own rates)")


def add_run_args(p: argparse.ArgumentParser) -> None:
    """The flags of one simulated run, its workload first (:func:`add_workload_args`); read by
    :func:`run_settings`."""
    add_workload_args(p)
    add_memory_arg(p)
    add_rate_arg(p)
    g = p.add_argument_group("run")
    g.add_argument("--slots", type=positive_int, default=DEFAULT_SLOTS,
                   help=f"slots simulated (default {DEFAULT_SLOTS:,})")
    g.add_argument("--warmup", type=nonnegative_int,
                   help="slots left out of the statistics (default: slots // 10)")
    g.add_argument("--seed", type=nonnegative_int, default=0, help="random seed (default 0)")
    g.add_argument("--arrivals", choices=("poisson", "deterministic", "bernoulli", "trace"),
                   default="poisson",
                   help="arrival process per slot (default poisson); 'trace' replays the "
                   "timestamps of --workload trace:PATH through --step-time")
    g.add_argument("--block-size", type=positive_int, default=1,
                   help="KV memory is allocated in blocks of this many tokens (default 1)")
    g.add_argument("--eviction", choices=("recompute", "keep-progress"), default="recompute",
                   help="what an evicted request keeps (default recompute: nothing)")
    g.add_argument("--step-time", help="const:SECONDS, linear:c0=..,cb=..,ck=..[,cp=..] or "
                   "staircase:c=..,a=..,b0=..; adds metrics in seconds")
    g = p.add_argument_group("real-engine batching (docs/engines.md)")
    g.add_argument("--batching", choices=("mixed", "prefill-first", "chunked"), default="mixed",
                   help="mixed (default, the paper's model: instant prefill in the decode step), "
                   "prefill-first (vLLM V0: a step that prefills decodes nothing) or chunked "
                   "(vLLM V1: prompt chunks under --max-batched-tokens beside the decodes)")
    g.add_argument("--max-batched-tokens", type=positive_int, metavar="N",
                   help="tokens one step may process (vLLM's max_num_batched_tokens): needed by "
                   "chunked; caps the prompt tokens of a prefill-first step")
    g.add_argument("--admit-after-preemption", action=argparse.BooleanOptionalAction, default=None,
                   help="may a step that preempted a running request still admit? (default: no "
                   "with chunked, as vLLM V1; yes otherwise)")


# ------------------------------------------------------------------------------ what they mean
def resolve_workload(args: argparse.Namespace) -> Workload:
    """The workload of ``--workload`` or of ``--prompt``/``--decode`` (exactly one of the two)."""
    from numerics.errors import WorkloadError
    from numerics.model.specs import parse_law
    from numerics.model.workload import Workload

    if args.workload and (args.prompt or args.decode):
        raise WorkloadError("give either --workload or --prompt/--decode, not both")
    if args.workload:
        from numerics.data.presets import PRESETS, load_preset

        if isinstance(args.workload, str) and args.workload.strip() in PRESETS:
            return load_preset(args.workload.strip())  # what load_workload does, without pandas
        from numerics.data.loaders import load_workload

        return load_workload(args.workload)
    if not (args.prompt and args.decode):
        raise WorkloadError(
            "describe the workload: --workload PRESET|FILE.toml|trace:PATH, or both --prompt and "
            "--decode (e.g. --prompt 100 --decode geom:mean=200)"
        )
    wl = Workload.single(parse_law(args.prompt), parse_law(args.decode), name="cli")
    return Workload(wl.classes, "cli", None, f"prompt {args.prompt}, decode {args.decode}")


def memory_of(args: argparse.Namespace, workload: Workload) -> int:
    """``--memory``, else the workload file's ``memory_tokens``; an error when neither is given."""
    from numerics.errors import WorkloadError

    m = args.memory if args.memory is not None else workload.memory_tokens
    if m is None:
        raise WorkloadError("give the KV-cache size in tokens (--memory M)")
    return int(m)


def run_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The :class:`numerics.sim.SimConfig` keywords of the run flags (everything but the policy),
    ``workload`` (:func:`resolve_workload`) included.

    The settings are checked once, by SimConfig itself (built here with a stand-in policy); its
    :class:`~numerics.errors.SettingError` comes back naming the flags to change.
    """
    from flowstab.flags import as_flags
    from numerics.errors import SettingError, WorkloadError
    from numerics.model.steptime import StepTimeModel
    from numerics.sim import Greedy, SimConfig

    workload = resolve_workload(args)
    m = memory_of(args, workload)
    warmup = args.slots // 10 if args.warmup is None else args.warmup
    step = StepTimeModel.from_spec(args.step_time) if args.step_time else None
    settings: dict[str, Any] = {
        "workload": workload, "memory_tokens": m, "slots": args.slots, "warmup": warmup,
        "seed": args.seed, "block_size": args.block_size, "eviction": args.eviction,
        "step_time": step, "arrivals": args.arrivals, "arrival_rate": args.arrival_rate,
        "batching": args.batching, "max_batched_tokens": args.max_batched_tokens,
        "admit_after_preemption": args.admit_after_preemption,
    }
    if args.arrivals == "trace":
        from numerics.data.traces import load_trace

        if not (args.workload or "").startswith("trace:"):
            raise WorkloadError("--arrivals trace replays a trace: give --workload trace:PATH")
        settings["trace"] = load_trace(args.workload.removeprefix("trace:"))
    try:
        SimConfig(policy=Greedy(), **settings)
    except SettingError as exc:
        raise as_flags(exc) from None
    if args.arrivals == "trace":
        del settings["arrival_rate"]
    return settings


def run_config(policy: Policy, settings: dict[str, Any]) -> SimConfig:
    """The :class:`numerics.sim.SimConfig` of ``policy`` with the run ``settings`` of
    :func:`run_settings`; a setting that does not suit the policy (e.g. ``--max-batched-tokens``
    below its ``max_seqs``) is an error naming the flags."""
    from flowstab.flags import as_flags
    from numerics.errors import SettingError
    from numerics.sim import SimConfig

    try:
        return SimConfig(policy=policy, **settings)
    except SettingError as exc:
        raise as_flags(exc) from None


def batching_note(settings: dict[str, Any]) -> str | None:
    """The header's words for the batching settings, or None for the paper's model."""
    mode, budget = settings.get("batching", "mixed"), settings.get("max_batched_tokens")
    admit = settings.get("admit_after_preemption")
    if mode == "mixed" and budget is None and admit in (None, True):
        return None
    text = f"batching {mode}" + ("" if budget is None else f", {budget:,} tokens per step")
    default = mode != "chunked"
    if admit is not None and admit != default:
        text += ", admission after preemption" if admit else ", no admission after preemption"
    return text


def total_rate(arrival_rate: float | None, workload: Workload) -> float:
    """``arrival_rate``, else the sum of the workload classes' own rates (requests/slot)."""
    return arrival_rate if arrival_rate is not None else float(workload.rates_per_slot.sum())


def parse_policy_for(spec: str, workload: Workload) -> Policy:
    """:func:`numerics.sim.parse_policy` plus the checks that depend on the workload (so that no
    run fails midway): reserve needs bounded decode lengths or ``max=``, class budgets one budget
    per class."""
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


# ------------------------------------------------------------------------------ output
#: (summary key, label, unit) of the metrics of a run, in the order the tables show them.
METRICS = (
    ("arrived", "arrived", "requests"),
    ("completed", "completed", "requests"),
    ("completed_fraction", "completed, share of arrivals", ""),
    ("waiting_end", "waiting at the end", "requests"),
    ("active_end", "active at the end", "requests"),
    ("throughput_requests_per_slot", "throughput", "requests/slot"),
    ("throughput_tokens_per_slot", "token throughput", "tokens/slot"),
    ("latency_mean_slots", "latency mean (censored)", "slots"),
    ("latency_p95_slots", "latency p95 (censored)", "slots"),
    ("latency_p99_slots", "latency p99 (censored)", "slots"),
    ("latency_censored_fraction", "latency censored at the horizon", ""),
    ("latency_finished_mean_slots", "latency mean, finished only", "slots"),
    ("latency_finished_p99_slots", "latency p99, finished only", "slots"),
    ("ttft_mean_slots", "TTFT mean", "slots"),
    ("ttft_p99_slots", "TTFT p99", "slots"),
    ("active_max", "active requests, most", "requests"),
    ("kv_util_mean", "KV utilisation mean", "of M"),
    ("kv_util_std", "KV utilisation std", "of M"),
    ("kv_peak_tokens", "KV peak", "tokens"),
    ("evictions", "evictions", ""),
    ("dropped_on_admission", "dropped on admission (same slot)", ""),
    ("wasted_tokens", "wasted (recomputed) tokens", "tokens"),
    ("queue_slope", "queue slope, 2nd half", "requests/slot"),
    ("duration_s", "simulated wall clock", "s"),
    ("throughput_requests_per_s", "throughput", "requests/s"),
    ("throughput_tokens_per_s", "token throughput", "tokens/s"),
    ("latency_mean_s", "latency mean (censored)", "s"),
    ("latency_p95_s", "latency p95 (censored)", "s"),
    ("latency_p99_s", "latency p99 (censored)", "s"),
    ("ttft_mean_s", "TTFT mean", "s"),
    ("ttft_p99_s", "TTFT p99", "s"),
)


def one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line (runs of whitespace, newlines included, become one space)."""
    return " ".join(str(exc).split())


def hard_cap_note(workload: Workload, memory_tokens: int) -> None:
    """Warn (stderr) when some requests can never fit: P(S + O > M) above the plan's tolerance."""
    from numerics.analysis.plan import HARD_CAP_TOL

    p = workload.prob_total_exceeds(memory_tokens)
    if p > HARD_CAP_TOL:
        print(f"flowstab: note: P(S + O > M) = {p:.3g} with M = {memory_tokens:,}: such requests can "
              "never finish and will stay in the system", file=sys.stderr)


def fmt(value: float | int | bool | None, unit: str = "") -> str:
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


def header(summary: dict[str, Any], workload: Workload, settings: dict[str, Any]) -> list[str]:
    """The lines above a simulate or compare table: workload, memory and arrivals, run length."""
    rate = summary.get("arrival_rate_per_slot")
    arrivals = f"{settings['arrivals']} arrivals" + (f", λ = {rate:g} requests/slot" if rate else "")
    extra = []
    if settings["block_size"] > 1:
        extra.append(f"blocks of {settings['block_size']} tokens")
    if settings["eviction"] != "recompute":
        extra.append(f"eviction {settings['eviction']}")
    if batching_note(settings):
        extra.append(batching_note(settings))
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


def start_runs(what: str, settings: dict[str, Any]) -> Progress:
    """What ``flowstab WHAT`` does once its runs are set up and about to start: the
    :func:`hard_cap_note` of the run ``settings``, then the :class:`Progress` clock of ``what``."""
    hard_cap_note(settings["workload"], settings["memory_tokens"])
    return Progress(what)


class Progress:
    """Progress lines on stderr, printed only once the work has run :data:`PROGRESS_AFTER_S`."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.t0 = time.perf_counter()

    def elapsed(self) -> float:
        """Seconds since this object was made."""
        return time.perf_counter() - self.t0

    def say(self, text: str) -> None:
        """``flowstab: WHAT: TEXT (N s)`` on stderr, once :data:`PROGRESS_AFTER_S` has passed."""
        elapsed = self.elapsed()
        if elapsed >= PROGRESS_AFTER_S:
            print(f"flowstab: {self.what}: {text} ({elapsed:.0f} s)", file=sys.stderr, flush=True)

    @contextmanager
    def ticking(self, text: str) -> Iterator[None]:
        """While the block runs, repeat ``text`` every :data:`PROGRESS_AFTER_S` seconds (a daemon
        thread)."""
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
