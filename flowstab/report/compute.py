r"""The report's computations: the plan, the policy comparison by simulation, the claims ledger.

What it computes (each number from the toolkit, nothing re-derived here):

1. the workload's laws and moments, :math:`E[S], E[O], E[O^2]` and the memory-time
   :math:`E[W] = E[S\,O] + (E[O^2] + E[O])/2` (``thm:mean-memory-time``);
2. the stability conditions of :mod:`theory` (hard cap, finite :math:`E[O^2]`, the necessary
   condition :math:`\sum_k \lambda_k E[W_k] \le M` and :math:`\lambda_{\max} = M/E[W]`), each
   written out from its registered LaTeX and instantiated with the workload's numbers;
3. the flow-control plan (:func:`numerics.analysis.plan.make_plan`): the largest activation rate
   :math:`r^*(\varepsilon)` whose overflow bound is at most ε, every bound at that rate, and with
   a step-time model τ the rates per second, :math:`\Lambda^* = M/(E[W]\,\tau(B_M, M, P_M))` and
   :math:`r^*/\tau(r^*E[O], r^*E[W], r^*E[S])`;
   with a waste target δ (``config.waste_target``) also the waste-certified rate, the largest rate
   whose certified fraction of emitted tokens thrown away by recompute evictions is at most δ
   (docs/theory.md §13), or why it is not applicable (unbounded laws);
4. a policy comparison by simulation (:mod:`numerics.sim`): the default line-up
   (:func:`numerics.sim.lineup.default_lineup`: flow at :math:`r^*(\varepsilon)`, greedy,
   α-protection, reserve, MC-SF) on common random numbers, ``replications`` independent runs per
   policy with Student-t intervals (:func:`numerics.sim.ci`), and figures of one run;
5. the verification status of the claims used, from the claims ledger
   (``proofs_check.run_ledger``) when it is installed.

Items 1–3 are laid out from the plan by :mod:`flowstab.report.sections`; :func:`compute` runs the
plan, the simulation and the ledger and times each step.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flowstab.report.config import (
    CI_LEVEL,
    LOAD_OF_FLOW_RATE,
    LOAD_OF_LAMBDA_MAX,
    SAME_RATE_RTOL,
    ReportConfig,
)
from numerics.model.steptime import StepTimeModel

if TYPE_CHECKING:
    from numerics.analysis.bounds import FlowTails
    from numerics.analysis.plan import Plan

__all__ = ["BASE_CLAIMS", "Computed", "compare_policies", "compute", "report_claims", "report_data"]

#: Claims every report states (those of the bounds and the step-time model are added per case).
BASE_CLAIMS = (
    "def:memory-time",
    "thm:mean-memory-time",
    "cond:hard-cap",
    "cor:heavy-tail",
    "prop:necessary",
    "cor:lambda-max",
    "prop:flow-mean",
    "prop:flow-variance",
)


@dataclass(frozen=True, eq=False)
class Computed:
    """Everything a report shows, before layout.

    ``sim`` is :func:`compare_policies`'s result (None without simulation); ``verification`` has
    ``status`` ("run" or "not run"), ``note``, ``results`` (one dict per claim) and ``counts`` (per
    verdict); ``timings`` maps each step (plan, simulation, verification) to seconds;
    ``waste_note`` says why the waste-certified rate asked for is not applicable (then
    ``plan.waste`` is None), else it is None.
    """

    plan: Plan
    tails: FlowTails
    claims: tuple[str, ...]
    sim: dict[str, Any] | None
    verification: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    waste_note: str | None = None
    #: The "Which scheduler wins" grid (:func:`flowstab.report.phase.report_phase`); None without
    #: simulation.
    phase: dict[str, Any] | None = None
    #: The "Trace comparison in seconds" grid (:func:`flowstab.report.section42.report_section42`);
    #: None without simulation.
    section42: dict[str, Any] | None = None


def compute(config: ReportConfig, *, progress: bool = False) -> Computed:
    """The plan, the simulation (``config.simulate``) and the claims ledger (``config.verify``).

    Raises
    ------
    UnstableWorkloadError
        E[O²] = ∞, or some requests can never fit (P(S + O > M) > HARD_CAP_TOL): no plan exists.
    WorkloadError
        Bad memory, ε, or a simulation beyond the simulator's limits.
    """
    from numerics.analysis.bounds import FlowTails

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    plan, waste_note = _plan(config)
    tails = FlowTails(config.workload, plan.memory_tokens)
    claims = config.claims if config.claims is not None else report_claims(plan, config.step_time)
    timings["plan"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    sim = compare_policies(config, plan, progress=progress) if config.simulate else None
    timings["simulation"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    phase = None
    if sim is not None:
        from flowstab.report.phase import report_phase

        phase = report_phase(config, sim["seeds"])
    timings["phase"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    section42 = None
    if sim is not None:
        from flowstab.report.section42 import report_section42

        section42 = report_section42(config, sim["seeds"])
    timings["section42"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    if config.verify:
        verification = _verify(claims, progress)
    else:
        verification = {"status": "not run", "note": "verification skipped (--no-verify)",
                        "results": [], "counts": {}}
    timings["verification"] = time.perf_counter() - t0
    return Computed(plan, tails, claims, sim, verification, timings, waste_note, phase, section42)


def _plan(config: ReportConfig) -> tuple[Plan, str | None]:
    """The plan, with the waste-certified rate for ``config.waste_target`` where it applies.

    Returns the plan and None, or, when the waste certificate does not apply (it needs bounded
    prompt and decode laws), the plan without it and the reason.
    """
    from numerics.analysis.bounds import BoundNotApplicable
    from numerics.analysis.plan import make_plan
    from numerics.analysis.waste import waste_rate
    from numerics.errors import WorkloadError

    def plan(waste_target: float | None) -> Plan:
        return make_plan(config.workload, config.memory_tokens, config.epsilon, config.budget,
                         config.step_time, waste_target=waste_target)

    target = config.waste_target
    if target is not None and not config.workload.bounded:
        base = plan(None)  # raises what the plan raises (E[O²] = ∞, hard cap)
        try:  # raises at once for unbounded laws, before any work: the certificate's own reason
            waste_rate(config.workload, base.memory_tokens, target, config.budget)
        except BoundNotApplicable as exc:
            return base, str(exc)
    try:
        return plan(target), None
    except WorkloadError as exc:  # the certificate does not apply: the plan without it, and why
        prefix = "waste target: "
        if target is None or not str(exc).startswith(prefix):
            raise
        return plan(None), str(exc).removeprefix(prefix)


def report_data(config: ReportConfig, computed: Computed, sha: str, versions: dict[str, str],
                ) -> dict[str, Any]:
    """The numbers of the report as one JSON-ready dict (embedded in the page; figures left out)."""
    plan, sim, verification = computed.plan, computed.sim, computed.verification
    return {
        "workload": config.workload.name,
        "memory_tokens": plan.memory_tokens,
        "plan": plan.to_dict(),
        "waste_target": config.waste_target,
        "waste_not_applicable": computed.waste_note,
        "step_time": config.step_time.to_spec() if config.step_time is not None else None,
        "claims": list(computed.claims),
        "simulation": None if sim is None else {
            "seeds": sim["seeds"], "slots": config.slots, "replications": config.replications,
            "runs": [{k: v for k, v in run.items() if k != "figure"} for run in sim["runs"]],
        },
        "verification": {k: v for k, v in verification.items()},
        "phase": computed.phase,
        "section42": computed.section42,
        "timings_s": computed.timings,
        "git_sha": sha,
        "versions": versions,
    }


def report_claims(plan: Plan, step_time: StepTimeModel | None) -> tuple[str, ...]:
    """The registered claims a report for ``plan`` states (IDs in :data:`theory.REGISTRY`); the
    waste certificate's ``bound:waste`` when ``plan`` carries the waste-certified rate."""
    from theory import REGISTRY

    ids = list(BASE_CLAIMS)
    ids += [f"bound:{name}" for name in ("hoeffding", "bernstein", "chernoff", "cantelli")
            if name not in plan.not_applicable]
    if "gaussian" not in plan.not_applicable:
        ids.append("approx:gaussian")
    if step_time is not None:
        ids.append("thm:compute-capacity")
    if plan.waste is not None:
        ids.append("bound:waste")
    return tuple(i for i in ids if i in REGISTRY)


def _progress_bar(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    # disable=None: tqdm turns itself off when stderr is not a terminal (no carriage returns in
    # logs); False (--quiet) turns it off everywhere
    return tqdm(total=total, desc=desc, file=sys.stderr, disable=None if enabled else True, leave=False,
                dynamic_ncols=True, unit="run")


def _default_rates(cfg: ReportConfig, plan: Plan) -> list[tuple[float, str]]:
    if cfg.arrival_rates is not None:
        return [(r, "given") for r in cfg.arrival_rates]
    if cfg.workload.rates_per_slot is not None:
        return [(float(cfg.workload.rates_per_slot.sum()), "the workload's own rate")]
    out = []
    if plan.flow_rate > 0:
        out.append((LOAD_OF_FLOW_RATE * plan.flow_rate, f"{LOAD_OF_FLOW_RATE:g} × r*(ε)"))
    heavy = LOAD_OF_LAMBDA_MAX * plan.lambda_max
    if not out or abs(heavy - out[0][0]) > SAME_RATE_RTOL * heavy:
        out.append((heavy, f"{LOAD_OF_LAMBDA_MAX:g} × λ_max"))
    return out


def _check_sim_size(cfg: ReportConfig, rates: list[tuple[float, str]]) -> None:
    """Every simulated run can start (SimConfig's own checks, named by the report's flags)."""
    from flowstab.flags import as_flags
    from numerics.errors import SettingError
    from numerics.sim import Greedy, SimConfig

    for rate, _ in rates:
        try:
            SimConfig(cfg.workload, cfg.memory_tokens, Greedy(), slots=cfg.slots, arrival_rate=rate,
                      seed=cfg.seed)
        except SettingError as exc:
            raise as_flags(exc) from None


def compare_policies(cfg: ReportConfig, plan: Plan, *, progress: bool = False, figures: bool = True,
                     ) -> dict[str, Any]:
    """The report's simulation: every (arrival rate, policy, replication) run, with intervals.

    Parameters
    ----------
    cfg : ReportConfig
    plan : numerics.analysis.plan.Plan
        The plan for ``cfg`` (its r*(ε) is the flow policy's rate).
    progress : bool
        A tqdm bar on stderr, one step per run.
    figures : bool
        Draw the figure of replication 1 per rate (a PNG data URI under ``"figure"``).

    Returns
    -------
    dict
        ``seeds`` (one per replication, shared by the policies) and ``runs``: per arrival rate its
        ``arrival_rate``, ``why``, ``load`` (λ/λ_max), ``notes`` and ``policies``, each with
        ``label``, ``spec``, ``stats`` (metric → mean, half_width, n) and ``queue_grows``.
    """
    import pandas as pd

    from numerics.sim import SimConfig, ci, simulate
    from numerics.sim.lineup import default_lineup, quick_tune
    from numerics.sim.replicate import replication_seeds

    rates = _default_rates(cfg, plan)
    _check_sim_size(cfg, rates)
    seeds = replication_seeds(cfg.seed, cfg.replications)
    plans = []
    for rate, why in rates:
        policies, notes = default_lineup(cfg.workload, plan.flow_rate, rate, cfg.slots, plan.budget,
                                         plan.epsilon)
        # the recommended operating point: a quick tune at this rate, first in the line-up
        tuned, note = quick_tune(cfg.workload, cfg.memory_tokens, rate, cfg.slots,
                                 settings={"step_time": cfg.step_time, "seed": cfg.seed})
        plans.append((rate, why, [(f"tuned: {tuned.spec}", tuned.policy), *policies], [note, *notes]))
    total = sum(len(pols) for _, _, pols, _ in plans) * len(seeds)
    runs = []
    with _progress_bar(total, "flowstab report: simulating", progress) as bar:
        for rate, why, policies, notes in plans:
            entries, figure_runs = [], []
            for label, policy in policies:
                base = SimConfig(workload=cfg.workload, memory_tokens=cfg.memory_tokens, policy=policy,
                                 slots=cfg.slots, arrival_rate=rate, warmup=cfg.slots // 10,
                                 seed=seeds[0], step_time=cfg.step_time)
                summaries = []
                for i, s in enumerate(seeds):
                    bar.set_postfix_str(f"λ={rate:.3g} {label.split(' ')[0]}", refresh=False)
                    res = simulate(dataclasses.replace(base, seed=s), records=(i == 0))
                    summaries.append(res.summary)
                    if i == 0:
                        figure_runs.append((label, res))
                    bar.update(1)
                table = ci(pd.DataFrame(summaries), CI_LEVEL)
                stats = {k: {"mean": float(row["mean"]), "half_width": float(row["half_width"]),
                             "n": int(row["n"])} for k, row in table.iterrows()}
                slope = stats.get("queue_slope", {"mean": 0.0, "half_width": math.nan})
                hw = slope["half_width"] if math.isfinite(slope["half_width"]) else 0.0
                # the queue grows when the slope's whole confidence interval is above 0 and the
                # mean throughput falls short of the arrival rate by more than its interval
                thr = stats["throughput_requests_per_slot"]
                thr_hw = thr["half_width"] if math.isfinite(thr["half_width"]) else 0.0
                grows = slope["mean"] - hw > 0 and thr["mean"] + thr_hw < rate
                entries.append({"label": label, "spec": policy.spec(), "stats": stats, "queue_grows": grows})
            run = {"arrival_rate": rate, "why": why, "load": rate / plan.lambda_max,
                   "policies": entries, "notes": notes}
            if figures:
                from flowstab.report.figures import compare_figure

                run["figure"] = compare_figure(
                    figure_runs, title=f"λ = {rate:.4g} requests/slot ({why}), "
                    f"M = {cfg.memory_tokens:,} tokens, seed {seeds[0]}")
            runs.append(run)
    return {"runs": runs, "seeds": seeds}


def _verify(claims: tuple[str, ...], progress: bool) -> dict[str, Any]:
    """Run the claims ledger on ``claims`` one at a time; 'not run' when it is not installed."""
    try:
        from proofs_check import run_ledger
    except ImportError:
        return {"status": "not run", "note": "the claims ledger (proofs_check.run_ledger) is not "
                "available in this installation", "results": [], "counts": {}}
    results = []
    with _progress_bar(len(claims), "flowstab report: verifying", progress) as bar:
        for cid in claims:
            bar.set_postfix_str(cid, refresh=False)
            t0 = time.perf_counter()
            try:
                out = list(run_ledger(ids=[cid], mode="quick"))
            except Exception as exc:  # a failing check is reported, not fatal to the report
                results.append({"id": cid, "title": "", "verdict": "error", "kinds": [],
                                "evidence": f"{type(exc).__name__}: {' '.join(str(exc).split())}",
                                "seconds": time.perf_counter() - t0})
            else:
                if not out:
                    results.append({"id": cid, "title": "", "verdict": "no check", "kinds": [],
                                    "evidence": "the ledger returned no result for this ID",
                                    "seconds": time.perf_counter() - t0})
                for r in out:
                    results.append({
                        "id": str(getattr(r, "id", cid)), "title": str(getattr(r, "title", "")),
                        "verdict": str(getattr(r, "verdict", "inconclusive")),
                        "kinds": [str(k) for k in (getattr(r, "kinds", ()) or ())],
                        "evidence": _evidence_text(getattr(r, "evidence", "")),
                        "seconds": float(getattr(r, "seconds", time.perf_counter() - t0)),
                    })
            bar.update(1)
    counts: dict[str, int] = {}
    for r in results:
        counts[r["verdict"]] = counts.get(r["verdict"], 0) + 1
    return {"status": "run", "note": "", "results": results, "counts": counts}


def _evidence_text(evidence) -> str:
    if isinstance(evidence, str):
        return " ".join(evidence.split())
    if isinstance(evidence, dict):
        return "; ".join(f"{k}: {v}" for k, v in evidence.items())
    if isinstance(evidence, list | tuple):
        return "; ".join(_evidence_text(e) for e in evidence)
    return str(evidence)

