r"""``flowstab tune``: which policy to run, at what setting, and by how much it wins.

:func:`tune` takes a workload, a KV cache of M tokens, an arrival rate (or a trace), the eviction
and batching mode, an optional step time and optional SLOs, and returns a :class:`TuneResult`: the
recommended policy spec, the table of candidates it chose from, and the reason, in a sentence.

**Candidates** (:func:`candidate_set`; docs/tune.md says why the narrowing is sound):

* ``greedy`` (vLLM's watermark 0.01) and ``greedy:watermark=0``;
* ``flow:rate=r`` for r in :data:`RATE_FACTORS` × λ_max (λ_max = M / E[W] along the class mix,
  :func:`numerics.analysis.conditions.lambda_max`), at r*(10⁻⁶) (the plan's certified rate) and at
  r_waste(0.01) (the waste-certified rate, when defined), merged when two fall within 0.1 % of
  λ_max of each other;
* ``flowfit`` at the same rates, but only when batching is not the paper's ``mixed`` model: under
  ``mixed`` (with admission after preemption) flowfit makes exactly flow's schedule, as a drop on
  admission frees what it took in the same slot;
* ``adaptive``, and ``lookahead`` when :func:`~numerics.sim.policies.parse_policy` knows it;
* with a known arrival rate λ, rates above :data:`RATE_CAP` × λ are replaced by one rate at
  :data:`RATE_CAP` × λ: so far above the arrivals the budget binds only after bursts, and flow
  control tends to greedy with watermark 0 (already a candidate).

**Two stages on common random numbers.** Every candidate of a stage runs on the same seeds
(:func:`~numerics.sim.replicate.replicate` from one root seed; the stage roots are the children of
``SeedSequence(seed)``), so they see the same arrivals and lengths. Screening: every candidate,
``seeds`` runs of ``slots`` slots; a default candidate that only the Python engine runs is raced
against the compiled ones: it stops after its first seed when it is clearly beaten on that same
seed (:data:`RACE_SHARE`, :data:`RACE_LATENCY`; ``stage`` = ``pruned``). Confirmation: the
first ``confirm`` candidates of the screening order (:func:`~numerics.sim.tune_table.confirm_order`:
the screening pick, the throughput-best, then the eligible ones by p99 latency, ...),
``confirm_seeds`` fresh runs (default 2 × ``seeds``) of ``confirm_slots`` slots (default
2 × ``slots``). The pick is chosen among the confirmed candidates only.

**Selection rule** (:func:`~numerics.sim.tune_table.select`). Throughput T_c is the mean over the
seeds of the completed requests per slot (per second with a step time); a candidate *collapses*
when its mean queue slope over the second half of the runs exceeds max(0, the smallest one) +
0.02 λ; it *meets the SLOs* when its mean censored p99 latency (and p99 TTFT) is at most the
target; among the candidates that neither collapse nor miss an SLO, T* is the best T_c, and the
*eligible* ones serve T_c ≥ 0.98 T*. The pick is the eligible candidate of smallest mean p99
latency (in seconds with a step time); p99s within 2 % of the smallest are tied, and a tie goes to
the simplest family (greedy, flow, flowfit, adaptive, lookahead). When no candidate meets the SLOs,
the pick is the best by throughput, with ``meets_slo`` False.

Examples
--------
>>> from numerics.model.specs import parse_law
>>> from numerics.model.workload import Workload
>>> wl = Workload.single(parse_law("20"), parse_law("100"))
>>> res = tune(wl, 20_000, load=0.95, slots=3_000, seeds=2, confirm=2,
...            candidates=["greedy", "flow:rate=2.78"])
>>> res.spec, res.meets_slo
('flow:rate=2.78', True)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from numerics.errors import FlowstabError, SettingError, SpecError
from numerics.sim.config import Arrivals, Batching, EvictionMode, SimConfig, check_policy
from numerics.sim.policies import Policy, parse_policy
from numerics.sim.replicate import replicate, replication_seeds
from numerics.sim.tune_table import (
    SECONDS_METRICS,
    SLOPE_SHARE,
    THROUGHPUT_SHARE,
    TIE_SHARE,
    Selection,
    confirm_order,
    select,
    stage_table,
)

__all__ = ["EPSILON", "FAMILIES", "RATE_CAP", "RATE_FACTORS", "WASTE_TARGET", "Candidate", "TuneResult",
           "candidate_set", "tune"]

SloUnit = Literal["slots", "seconds"]
#: Flow-control rates tried, as multiples of λ_max.
RATE_FACTORS = (0.85, 0.9, 0.95, 0.98, 1.0, 1.02)
#: Rates above this multiple of the arrival rate are replaced by one rate at it.
RATE_CAP = 1.3
#: The overflow target of the certified rate r*(ε) among the candidates.
EPSILON = 1e-6
#: The waste target of the waste-certified rate r_waste(δ) among the candidates.
WASTE_TARGET = 0.01
#: The policy families of the default candidates (``lookahead`` only where it exists).
FAMILIES = ("greedy", "flow", "flowfit", "adaptive", "lookahead")
#: Confirmed candidates by default.
CONFIRM = 4
#: Racing (screening only): a Python-engine candidate stops after its first seed when it serves
#: less than RACE_SHARE of the best first-seed throughput, or its p99 is RACE_LATENCY × the best.
RACE_SHARE = 0.9
RACE_LATENCY = 3.0


@dataclass(frozen=True)
class Candidate:
    """One policy tune tries: its spec, its family (``greedy``, ``flow``, ...), where it came from."""

    spec: str
    family: str
    origin: str
    rate: float | None = None


def _lookahead_available() -> bool:
    try:
        parse_policy("lookahead")
    except SpecError:
        return False
    return True


def _theory(workload, memory_tokens: int) -> tuple[float, float | None, float | None, list[str]]:
    """λ_max, r*(ε) and r_waste(δ) (None where not defined), with notes on what was skipped."""
    from numerics.analysis.bounds import BoundNotApplicable
    from numerics.analysis.conditions import lambda_max
    from numerics.analysis.plan import make_plan
    from numerics.analysis.waste import waste_rate

    workload.require_finite_memory_time()
    lam_max = lambda_max(workload, memory_tokens)
    notes: list[str] = []
    r_eps = r_waste = None
    try:
        r_eps = make_plan(workload, memory_tokens, EPSILON).flow_rate or None
    except FlowstabError as exc:
        notes.append(f"no r*({EPSILON:g}) candidate: {' '.join(str(exc).split())}")
    try:
        r_waste = waste_rate(workload, memory_tokens, WASTE_TARGET).rate_per_slot or None
    except (FlowstabError, BoundNotApplicable) as exc:
        notes.append(f"no r_waste({WASTE_TARGET:g}) candidate: {' '.join(str(exc).split())}")
    return lam_max, r_eps, r_waste, notes


def candidate_set(workload, memory_tokens: int, arrival_rate: float | None, *,
                  fit_differs: bool = False, families: Sequence[str] | None = None,
                  ) -> tuple[list[Candidate], dict, list[str]]:
    """The default candidates of the module docstring, the theory behind them, and notes.

    Parameters
    ----------
    workload : Workload
    memory_tokens : int
    arrival_rate : float or None
        Total λ per slot (None: unknown, as in trace replay; no rate is then dropped).
    fit_differs : bool
        Include ``flowfit`` (True when batching is not the paper's ``mixed`` model).
    families : sequence of str, optional
        Keep only these of :data:`FAMILIES` (default: all).

    Returns
    -------
    candidates : list of Candidate
    theory : dict
        ``lambda_max``, ``flow_rate_eps`` (r*(ε)), ``waste_rate`` (r_waste(δ)), ``epsilon``,
        ``waste_target``.
    notes : list of str
    """
    lam_max, r_eps, r_waste, notes = _theory(workload, memory_tokens)
    rates: list[tuple[float, str]] = [(f * lam_max, f"{f:g} λ_max") for f in RATE_FACTORS]
    if r_eps:
        rates.append((r_eps, f"r*({EPSILON:g})"))
    if r_waste:
        rates.append((r_waste, f"r_waste({WASTE_TARGET:g})"))
    if arrival_rate is not None and math.isfinite(arrival_rate):
        cap = RATE_CAP * arrival_rate
        high = [origin for r, origin in rates if r > cap]
        if high:
            rates = [(r, o) for r, o in rates if r <= cap] + [(cap, f"{RATE_CAP:g} λ")]
            notes.append(f"flow rates above {RATE_CAP:g} λ = {cap:.4g} ({', '.join(high)}) replaced by "
                         f"{RATE_CAP:g} λ: that far above the arrivals flow control tends to greedy")
    merged: list[list] = []
    for r, origin in sorted(rates):
        if merged and r - merged[-1][0] <= 1e-3 * lam_max:
            merged[-1][1] += f" ≈ {origin}"
        else:
            merged.append([r, origin])
    out = [Candidate("greedy", "greedy", "vLLM watermark 0.01"),
           Candidate("greedy:watermark=0", "greedy", "no watermark")]
    for family in ("flow", "flowfit") if fit_differs else ("flow",):
        out += [Candidate(f"{family}:rate={r:.6g}", family, origin, float(r)) for r, origin in merged]
    if not fit_differs:
        notes.append("flowfit left out: under mixed batching it makes flow's schedule exactly")
    out.append(Candidate("adaptive", "adaptive", "online rate"))
    if _lookahead_available():
        out.append(Candidate("lookahead", "lookahead", "state-aware"))
    if families is not None:
        unknown = sorted(set(families) - set(FAMILIES))
        if unknown or not families:
            raise SpecError(f"families must be some of {', '.join(FAMILIES)}, got "
                            f"{', '.join(unknown) or 'none'}")
        out = [c for c in out if c.family in families]
    theory = {"lambda_max": lam_max, "flow_rate_eps": r_eps, "waste_rate": r_waste,
              "epsilon": EPSILON, "waste_target": WASTE_TARGET}
    return out, theory, notes


def _given(specs: Sequence[str], workload) -> list[Candidate]:
    out, seen = [], set()
    for spec in specs:
        spec = spec.strip()
        if not spec or spec in seen:
            continue
        seen.add(spec)
        policy = parse_policy(spec)
        check_policy(policy, workload)
        rate = getattr(policy, "rate", None)
        out.append(Candidate(spec, spec.split(":")[0].strip(), "given",
                             float(rate) if isinstance(rate, int | float) else None))
    if not out:
        raise SpecError("give at least one candidate policy spec, e.g. 'greedy;flow:rate=2'")
    return out


@dataclass(frozen=True, eq=False)
class TuneResult:
    """What :func:`tune` recommends, and the evidence.

    ``table`` has one row per candidate, with the statistics of the last stage it ran in
    (``stage``: ``confirmation`` or ``screening``), the flags ``collapsed``, ``meets_slo``,
    ``eligible`` of the selection rule within that stage, and ``chosen``; ``screening`` is the
    screening table of every candidate. Metric columns are summary keys (means), each with a
    ``_hw`` column (95 % Student-t half-width); ``throughput_share`` is the paired share of the
    stage's best throughput.
    """

    spec: str
    policy: Policy
    meets_slo: bool
    reason: str
    lambda_max: float
    arrival_rate: float | None
    table: pd.DataFrame
    screening: pd.DataFrame
    theory: dict
    settings: dict
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def row(self) -> pd.Series:
        """The pick's row of :attr:`table`."""
        return self.table[self.table["chosen"]].iloc[0]

    def to_dict(self) -> dict:
        """A JSON-ready dict: ``policy`` (the spec), the verdict, the theory, the settings, the
        notes, and both tables as lists of rows (NaN as None)."""
        def clean(v):
            if isinstance(v, float | np.floating):
                return None if not math.isfinite(v) else float(v)
            if isinstance(v, np.integer):
                return int(v)
            if isinstance(v, np.bool_):
                return bool(v)
            return v

        def rows(df: pd.DataFrame) -> list[dict]:
            return [{k: clean(v) for k, v in r.items()} for r in df.to_dict(orient="records")]

        keys = self.settings
        row = self.row
        return {
            "policy": self.spec,
            "policy_canonical": self.policy.spec(),
            "meets_slo": self.meets_slo,
            "reason": self.reason,
            "lambda_max": self.lambda_max,
            "arrival_rate": self.arrival_rate,
            "load": None if self.arrival_rate is None else self.arrival_rate / self.lambda_max,
            "throughput": {"mean": clean(row[keys["throughput_key"]]),
                           "half_width": clean(row[keys["throughput_key"] + "_hw"]),
                           "key": keys["throughput_key"]},
            "latency_p99": {"mean": clean(row[keys["latency_key"]]),
                            "half_width": clean(row[keys["latency_key"] + "_hw"]),
                            "key": keys["latency_key"]},
            "theory": {k: clean(v) for k, v in self.theory.items()},
            "settings": {k: clean(v) for k, v in self.settings.items()},
            "notes": list(self.notes),
            "table": rows(self.table),
            "screening": rows(self.screening),
        }


def _check_int(name: str, value, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
        raise SettingError(f"`{name}` must be an integer ≥ {least}, got {value!r}", name)
    return int(value)


def _slo_keys(slo_p99_latency, slo_p99_ttft, slo_unit: str, step_time) -> dict[str, float]:
    if slo_unit not in ("slots", "seconds"):
        raise SettingError(f"`slo_unit` must be slots or seconds, got {slo_unit!r}", "slo_unit")
    suffix = "s" if slo_unit == "seconds" else "slots"
    out = {}
    for name, key, value in (("slo_p99_latency", "latency_p99", slo_p99_latency),
                             ("slo_p99_ttft", "ttft_p99", slo_p99_ttft)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float | np.number) \
                or not math.isfinite(value) or value <= 0:
            raise SettingError(f"`{name}` must be a positive number of {slo_unit}, got {value!r}", name)
        out[f"{key}_{suffix}"] = float(value)
    if out and slo_unit == "seconds" and step_time is None:
        raise SettingError("SLOs in seconds need a step time (`step_time`) to turn slots into "
                           "seconds; give one, or the SLOs in slots", "slo_unit", "step_time")
    return out


def _replicate(cfg: SimConfig, n: int, root: int) -> pd.DataFrame:
    return replicate(cfg, n, root, processes=1)


def _race_out(df: pd.DataFrame, done: dict[str, pd.DataFrame]) -> bool:
    """True when a Python-engine candidate's first-seed run is clearly beaten on the same seed:
    throughput below :data:`RACE_SHARE` × the best, or p99 latency above :data:`RACE_LATENCY` ×
    the smallest p99 of the runs serving ≥ 98 % of the best (paired: the same arrivals)."""
    if not done:
        return False
    first = pd.DataFrame([d.iloc[0] for d in done.values()])
    thr = first["throughput_requests_per_slot"].astype(float)
    best = float(thr.max())
    mine = df.iloc[0]
    if mine["throughput_requests_per_slot"] < RACE_SHARE * best:
        return True
    good = first.loc[thr >= THROUGHPUT_SHARE * best, "latency_p99_slots"].astype(float)
    return bool(len(good)) and mine["latency_p99_slots"] > RACE_LATENCY * float(good.min())


def _run_stage(cands: list[Candidate], settings: dict, seeds: int, root: int, slots: int,
               warmup: int, processes: int, stage: str, progress: Callable[[str], None] | None,
               race: bool = False) -> tuple[dict[str, pd.DataFrame], set[str]]:
    """Every candidate on the same ``seeds`` seeds from ``root`` (common random numbers).

    With ``race``, the compiled candidates run first; each Python-engine one then runs its first
    seed (the first child of ``root``, the same for every n) and stops there when :func:`_race_out`
    says so. Returns the tables and the specs so stopped.
    """
    from numerics.sim.fast import fast_supported

    configs = {c.spec: SimConfig(policy=parse_policy(c.spec), slots=slots, warmup=warmup, **settings)
               for c in cands}
    slow = [s for s, cfg in configs.items() if race and not fast_supported(cfg)]
    order = [s for s in configs if s not in slow] + slow
    out: dict[str, pd.DataFrame] = {}
    pruned: set[str] = set()
    total = len(order)

    def say(spec: str, what: str = "") -> None:
        if progress is not None:
            progress(f"{stage} {len(out)}/{total}: {spec}{what}")

    def finish(spec: str, n: int) -> None:
        if spec in slow:
            head = _replicate(configs[spec], 1, root)
            if _race_out(head, {k: v for k, v in out.items() if k not in slow}):
                out[spec] = head
                pruned.add(spec)
                say(spec, " (stopped after one seed: beaten on it)")
                return
        out[spec] = _replicate(configs[spec], n, root)
        say(spec)

    if processes == 1 or len(order) == 1:
        for spec in order:
            finish(spec, seeds)
        return {s: out[s] for s in configs}, pruned
    fast = [s for s in order if s not in slow]
    with ProcessPoolExecutor(max_workers=min(processes, len(order))) as pool:
        futures = {s: pool.submit(_replicate, configs[s], seeds, root) for s in fast}
        for s, fut in futures.items():
            out[s] = fut.result()
            say(s)
    for spec in slow:  # few and raced one by one
        finish(spec, seeds)
    return {s: out[s] for s in configs}, pruned


def _flag(table: pd.DataFrame, sel: Selection) -> pd.DataFrame:
    """``table`` with the rule's flags (False on the rows the selection did not see)."""
    table = table.copy()
    for col, flags in (("collapsed", sel.collapsed), ("meets_slo", sel.meets),
                       ("eligible", sel.eligible)):
        table[col] = False
        table.loc[flags.index, col] = flags.astype(bool)
    return table


def _fmt(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:,.4g}"


def _reason(table: pd.DataFrame, sel: Selection, keys: dict, slos: dict[str, float]) -> str:
    """The pick's reason, in a sentence."""
    t_unit, l_unit = keys["throughput_unit"], keys["latency_unit"]
    thr, lat = keys["throughput_key"], keys["latency_key"]
    pick = table.loc[sel.chosen]
    collapsed = list(table.loc[sel.collapsed, "spec"])
    tail = (f"; collapse (the queue outgrows the slowest-growing one by > {SLOPE_SHARE:.0%} of λ "
            f"per slot) under {', '.join(collapsed[:3])}" + (" …" if len(collapsed) > 3 else "")) \
        if collapsed else ""
    slo_text = " and ".join(f"{k.split('_')[0]} p99 ≤ {v:g} {'s' if k.endswith('_s') else 'slots'}"
                            for k, v in slos.items())
    if not sel.meets_slo:
        if slos:
            meet = table[sel.meets]
            why = "every candidate that meets it collapses" if len(meet) else \
                f"the lowest {lat.split('_')[0]} p99 was {_fmt(table[lat].min())} {l_unit} " \
                f"({table.loc[table[lat].idxmin(), 'spec']})"
            return (f"no candidate meets the SLO ({slo_text}): {why}; {pick['spec']} is the best by "
                    f"throughput ({_fmt(pick[thr])} {t_unit}){tail}")
        return f"every candidate collapses; {pick['spec']} serves the most ({_fmt(pick[thr])} {t_unit})"
    n = int(sel.eligible.sum())
    best = table.loc[sel.best]
    text = (f"lowest p99 latency ({_fmt(pick[lat])} {l_unit}) of the {n} candidate"
            f"{'s' if n != 1 else ''} serving ≥ {THROUGHPUT_SHARE:.0%} of the best throughput "
            f"({_fmt(sel.best_throughput)} {t_unit}, {best['spec']}) without collapse")
    if slos:
        text += f" and meeting {slo_text}"
    if sel.min_latency_row is not None and sel.min_latency_row != sel.chosen:
        text += (f" (within {TIE_SHARE:.0%} of {table.loc[sel.min_latency_row, 'spec']}'s "
                 f"{_fmt(sel.min_latency)}: the simpler policy)")
    return text + tail


def tune(workload, memory_tokens: int, arrival_rate: float | None = None, *,
         load: float | None = None, trace=None, arrivals: Arrivals = "poisson",
         eviction: EvictionMode = "recompute", batching: Batching = "mixed",
         max_batched_tokens: int | None = None, admit_after_preemption: bool | None = None,
         step_time=None, block_size: int = 1, slots: int = 20_000, warmup: int | None = None,
         seeds: int = 3, seed: int = 0, confirm: int = CONFIRM, confirm_seeds: int | None = None,
         confirm_slots: int | None = None, slo_p99_latency: float | None = None,
         slo_p99_ttft: float | None = None, slo_unit: SloUnit = "slots",
         candidates: Sequence[str] | None = None, families: Sequence[str] | None = None,
         processes: int = 1,
         progress: Callable[[str], None] | None = None) -> TuneResult:
    """Find the best policy and setting for a workload by theory-narrowed simulation.

    Parameters
    ----------
    workload : Workload
    memory_tokens : int
        M, the KV-cache size in tokens.
    arrival_rate : float, optional
        Total λ per slot (class mix kept); None: ``load`` × λ_max, or the classes' own rates.
    load : float, optional
        λ as a fraction of λ_max (not with ``arrival_rate``).
    trace, arrivals, eviction, batching, max_batched_tokens, admit_after_preemption, step_time, \
block_size
        As :class:`~numerics.sim.config.SimConfig`.
    slots, warmup : int
        Screening run length and warm-up (default ``slots // 10``).
    seeds : int
        Screening replications per candidate (the same seeds for every candidate).
    seed : int
        Root of every seed (the two stage roots are children of ``SeedSequence(seed)``).
    confirm : int
        Candidates confirmed (0: choose on the screening alone).
    confirm_seeds, confirm_slots : int, optional
        Confirmation replications and run length (default 2 × ``seeds``, 2 × ``slots``).
    slo_p99_latency, slo_p99_ttft : float, optional
        Targets on the censored p99 latency and p99 TTFT, in ``slo_unit``.
    slo_unit : {"slots", "seconds"}
        Seconds need ``step_time``.
    candidates : sequence of str, optional
        Policy specs to choose from instead of :func:`candidate_set`.
    families : sequence of str, optional
        Restrict :func:`candidate_set` to these families (e.g. leave out the slow ``lookahead``).
    processes : int
        Worker processes (1: inline).
    progress : callable, optional
        ``progress(text)`` after each candidate of each stage.

    Raises
    ------
    SettingError
        A setting is invalid (named), or both ``arrival_rate`` and ``load`` are given.
    SpecError
        A given candidate does not parse or cannot serve the workload.
    UnstableWorkloadError
        E[W] is infinite: no rate is stable (clip the decode law with ``max=``).
    """
    seeds = _check_int("seeds", seeds, 1)
    seed = _check_int("seed", seed, 0)
    confirm = _check_int("confirm", confirm, 0)
    processes = _check_int("processes", processes, 1)
    slots = _check_int("slots", slots, 1)
    confirm_seeds = 2 * seeds if confirm_seeds is None else _check_int("confirm_seeds", confirm_seeds, 1)
    confirm_slots = 2 * slots if confirm_slots is None else _check_int("confirm_slots", confirm_slots, 1)
    warmup = slots // 10 if warmup is None else _check_int("warmup", warmup, 0)
    slos = _slo_keys(slo_p99_latency, slo_p99_ttft, slo_unit, step_time)
    workload.require_finite_memory_time()
    if load is not None:
        if arrival_rate is not None:
            raise SettingError("give the arrival rate once: `arrival_rate` or `load`, not both",
                               "arrival_rate", "load")
        if isinstance(load, bool) or not isinstance(load, int | float) or not math.isfinite(load) \
                or load <= 0:
            raise SettingError(f"`load` must be a positive fraction of λ_max, got {load!r}", "load")
        from numerics.analysis.conditions import lambda_max

        arrival_rate = float(load) * lambda_max(workload, memory_tokens)
    settings = {"workload": workload, "memory_tokens": memory_tokens, "arrival_rate": arrival_rate,
                "arrivals": arrivals, "trace": trace, "eviction": eviction, "batching": batching,
                "max_batched_tokens": max_batched_tokens,
                "admit_after_preemption": admit_after_preemption, "step_time": step_time,
                "block_size": block_size}
    probe = SimConfig(policy=parse_policy("greedy"), slots=slots, warmup=warmup, **settings)
    SimConfig(policy=parse_policy("greedy"), slots=confirm_slots,
              warmup=warmup * confirm_slots // slots, **settings)
    lam = None if arrivals == "trace" else probe.total_rate
    fit_differs = probe.uses_step_engine
    cands, theory, notes = candidate_set(workload, memory_tokens, lam, fit_differs=fit_differs,
                                         families=families)
    if candidates is not None:
        cands = _given(candidates, workload)
        notes = [n for n in notes if n.startswith("no r")]
    seconds = step_time is not None
    keys = {
        "throughput_key": "throughput_requests_per_s" if seconds else "throughput_requests_per_slot",
        "latency_key": "latency_p99_s" if seconds else "latency_p99_slots",
        "throughput_unit": "req/s" if seconds else "req/slot",
        "latency_unit": "s" if seconds else "slots",
    }
    info = {c.spec: {"family": c.family, "origin": c.origin, "rate": c.rate} for c in cands}
    roots = replication_seeds(seed, 2)
    rule = {"arrival_rate": lam, "throughput_key": keys["throughput_key"],
            "latency_key": keys["latency_key"], "slos": slos}
    runs, pruned = _run_stage(cands, settings, seeds, roots[0], slots, warmup, processes, "screening",
                              progress, race=candidates is None)
    screen = stage_table(runs, info, "screening", keys["throughput_key"], seconds)
    screen.loc[screen["spec"].isin(pruned), "stage"] = "pruned"
    sel = select(screen[screen["stage"] == "screening"], **rule)
    screen = _flag(screen, sel)
    if pruned:
        notes.append(f"stopped after one screening seed (beaten on it, paired): {', '.join(sorted(pruned))}")
    final, sel_final, stage_tab = screen, sel, screen
    if confirm > 0:
        order = confirm_order(screen[screen["stage"] == "screening"], sel, keys["throughput_key"],
                              keys["latency_key"])
        top = [screen.loc[i, "spec"] for i in order[:max(confirm, 1)]]
        live = screen[screen["stage"] == "screening"]
        best_all = live.loc[live[keys["throughput_key"]].idxmax(), "spec"]
        if best_all not in top:
            top.append(best_all)
        chosen = [c for c in cands if c.spec in top]
        runs2, _ = _run_stage(chosen, settings, confirm_seeds, roots[1], confirm_slots,
                           warmup * confirm_slots // slots, processes, "confirmation", progress)
        conf = stage_table(runs2, info, "confirmation", keys["throughput_key"], seconds)
        sel_final = select(conf, **rule)
        stage_tab = conf = _flag(conf, sel_final)
        # the confirmed rows keep their indices 0..k-1, so sel_final's labels hold in ``final``
        final = pd.concat([conf, screen[~screen["spec"].isin(top)]], ignore_index=True)
    final = final.copy()
    final["chosen"] = False
    final.loc[sel_final.chosen, "chosen"] = True
    pick = str(final.loc[sel_final.chosen, "spec"])
    reason = _reason(stage_tab, sel_final, keys, slos)
    settings_out = {"seeds": seeds, "slots": slots, "warmup": warmup, "seed": seed,
                    "confirm": confirm, "confirm_seeds": confirm_seeds, "confirm_slots": confirm_slots,
                    "screening_root": roots[0], "confirmation_root": roots[1], "eviction": eviction,
                    "batching": batching, "arrivals": arrivals, "block_size": block_size,
                    "step_time": None if step_time is None else step_time.to_spec(),
                    "memory_tokens": int(memory_tokens), "throughput_share": THROUGHPUT_SHARE,
                    "slope_share": SLOPE_SHARE, "tie_share": TIE_SHARE, "level": 0.95,
                    **keys, **{f"slo_{k}": v for k, v in slos.items()}}
    if seconds:
        settings_out["seconds_metrics"] = ",".join(SECONDS_METRICS)
    return TuneResult(pick, parse_policy(pick), sel_final.meets_slo, reason, theory["lambda_max"],
                      lam, final, screen, theory, settings_out, tuple(notes))
