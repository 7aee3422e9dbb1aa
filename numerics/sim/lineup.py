"""The default policy line-up: the policies ``flowstab compare`` and the report run side by side.

The line-up puts the paper's flow control next to the practical schedulers on the same arrivals:

* flow control (Algorithm 2) at a given activation rate, normally the plan's r*(ε);
* greedy admission (admit while the current KV use fits);
* α-protection with α = 0.1 (keep a tenth of M free);
* reserve at the decode law's maximum (reserve the worst case per request; only for bounded
  decode lengths);
* the clairvoyant MC-SF reference (it knows every decode length; a slow Python engine, so only up to
  :data:`MCSF_MAX_SLOTS` slots and :data:`MCSF_MAX_ARRIVALS` expected arrivals).

Each function returns the ``(spec, policy)`` pairs and notes (plain sentences) on what was left
out and why.

Examples
--------
>>> from numerics.model.specs import parse_law
>>> from numerics.model.workload import Workload
>>> wl = Workload.single(parse_law("20"), parse_law("uniform:1,30"))
>>> policies, notes = default_lineup(wl, 0.4, total_rate=0.5, slots=2000)
>>> [spec for spec, _ in policies]
['flow:rate=0.4', 'greedy', 'alpha:0.1', 'reserve:max=30', 'mcsf']
>>> notes[0].startswith("flow runs at r*(ε = 1e-06) = 0.4 requests/slot, not above λ = 0.5")
True
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from numerics.model.workload import Workload
    from numerics.sim.policies import Policy

__all__ = ["LINEUP_EPSILON", "MCSF_MAX_ARRIVALS", "MCSF_MAX_SLOTS", "TUNE_FAMILIES", "TUNE_SEEDS",
           "TUNE_SLOTS", "default_lineup", "planned_lineup", "quick_tune", "tuned_lineup"]

#: The line-up's MC-SF reference (Python engine, a sort and a binary search of future-memory checks
#: every slot: ~0.1 ms per slot) runs only up to these sizes.
MCSF_MAX_SLOTS = 20_000
MCSF_MAX_ARRIVALS = 50_000
#: The overflow target ε whose r*(ε) is the flow-control rate of :func:`planned_lineup`.
LINEUP_EPSILON = 1e-6
#: :func:`tuned_lineup`'s search: the compiled families only (seconds, not minutes), on this many
#: seeds of at most this many slots (``flowstab tune`` runs the full search).
TUNE_FAMILIES = ("greedy", "flow")
TUNE_SEEDS = 2
TUNE_SLOTS = 20_000

Lineup = tuple[list[tuple[str, "Policy"]], list[str]]


def default_lineup(workload: Workload, flow_rate: float | None, total_rate: float, slots: int,
                   budget: Literal["randomized", "deterministic", "poisson"] = "randomized",
                   epsilon: float = LINEUP_EPSILON) -> Lineup:
    """The default policy line-up for runs of ``slots`` slots at ``total_rate`` requests/slot.

    Flow control at ``flow_rate`` with the ``budget`` law (skipped when None or 0; ``epsilon`` is
    the ε that rate was planned for, named in the notes), greedy, α-protection 0.1, reserve at the
    decode law's maximum (skipped for unbounded laws) and the clairvoyant MC-SF reference (skipped
    beyond :data:`MCSF_MAX_SLOTS` slots or :data:`MCSF_MAX_ARRIVALS` expected arrivals).

    Returns
    -------
    policies : list of (str, Policy)
        Each policy with its spec string, in the order above.
    notes : list of str
        What was skipped, and a reminder when flow control runs at or below the arrival rate.
    """
    from numerics.sim.policies import FlowControl, parse_policy

    policies: list[tuple[str, Policy]] = []
    notes: list[str] = []
    if flow_rate:
        policies.append((f"flow:rate={flow_rate:.6g}", FlowControl(rate=flow_rate, budget=budget)))
        if flow_rate <= total_rate:
            notes.append(f"flow runs at r*(ε = {epsilon:g}) = {flow_rate:.6g} requests/slot, not above "
                         f"λ = {total_rate:g}: its queue grows by design (r* trades capacity for the "
                         "overflow guarantee)")
    elif flow_rate is not None:
        notes.append(f"flow skipped: no flow-control rate meets ε = {epsilon:g} with a valid bound")
    specs = ["greedy", "alpha:0.1"]
    if math.isfinite(workload.max_decode):
        specs.append(f"reserve:max={int(workload.max_decode)}")
    else:
        notes.append("reserve skipped: the decode lengths are unbounded (add reserve:max=L by hand)")
    policies += [(spec, parse_policy(spec)) for spec in specs]
    if slots <= MCSF_MAX_SLOTS and total_rate * slots <= MCSF_MAX_ARRIVALS:
        policies.append(("mcsf", parse_policy("mcsf")))
    else:
        notes.append(f"mcsf skipped: the clairvoyant reference is slow beyond {MCSF_MAX_SLOTS:,} "
                     f"slots or {MCSF_MAX_ARRIVALS:,} expected arrivals (add it with --policies)")
    return policies, notes


def planned_lineup(workload: Workload, memory_tokens: int, total_rate: float, slots: int,
                   epsilon: float = LINEUP_EPSILON) -> Lineup:
    """:func:`default_lineup` with flow control at the plan's r*(``epsilon``) for ``memory_tokens``.

    When no plan can be made (:func:`numerics.analysis.plan.make_plan` raises a
    :class:`~numerics.errors.FlowstabError`, e.g. some requests never fit), flow control is left out
    and the first note says why.
    """
    from numerics.analysis.plan import make_plan
    from numerics.errors import FlowstabError

    try:
        rate = make_plan(workload, memory_tokens, epsilon).flow_rate
    except FlowstabError as exc:
        policies, notes = default_lineup(workload, None, total_rate, slots, epsilon=epsilon)
        reason = " ".join(str(exc).split())
        notes.insert(0, f"flow skipped: no flow-control rate for this workload ({reason})")
        return policies, notes
    return default_lineup(workload, rate, total_rate, slots, epsilon=epsilon)


def tuned_lineup(workload: Workload, memory_tokens: int, total_rate: float, slots: int, *,
                 settings: dict | None = None, epsilon: float = LINEUP_EPSILON) -> Lineup:
    """:func:`planned_lineup` with :func:`numerics.sim.tune.tune`'s pick first, labelled ``tuned``.

    The search is a quick one: the families of :data:`TUNE_FAMILIES` (greedy and flow control at
    the theory's rates, all compiled), :data:`TUNE_SEEDS` seeds of min(``slots``,
    :data:`TUNE_SLOTS`) slots, two confirmed, under the run ``settings`` (the
    :class:`~numerics.sim.config.SimConfig` keywords other than the workload, M, policy, slots
    and seed: eviction, batching, step time, ...). Its note says what was picked and how; the full
    search (adaptive, flowfit, lookahead, SLOs) is ``flowstab tune``.
    """
    policies, notes = planned_lineup(workload, memory_tokens, total_rate, slots, epsilon=epsilon)
    result, note = quick_tune(workload, memory_tokens, total_rate, slots, settings=settings)
    notes.insert(0, note)
    return [(f"tuned: {result.spec}", result.policy), *policies], notes


def quick_tune(workload: Workload, memory_tokens: int, total_rate: float, slots: int, *,
               settings: dict | None = None):
    """The quick :func:`numerics.sim.tune.tune` of :func:`tuned_lineup` (and of the report's
    recommended operating point): its result and a one-sentence note saying what was picked, and
    how. ``settings``: :class:`~numerics.sim.config.SimConfig` keywords (eviction, batching, step
    time, block size, arrivals, seed); the rest is ignored."""
    from numerics.sim.tune import tune

    settings = settings or {}
    kw = {k: v for k, v in settings.items()
          if k in ("eviction", "batching", "max_batched_tokens", "admit_after_preemption", "step_time",
                   "block_size", "arrivals")}
    n = min(int(slots), TUNE_SLOTS)
    seed = settings.get("seed", 0)
    result = tune(workload, memory_tokens, total_rate, slots=n, seeds=TUNE_SEEDS, confirm=2,
                  families=TUNE_FAMILIES, seed=0 if seed is None else seed, **kw)
    row = result.row
    note = (f"tuned = {result.spec}: the pick of a quick flowstab tune ({len(result.screening)} "
            f"candidates of {', '.join(TUNE_FAMILIES)}, {TUNE_SEEDS} seeds × {n:,} slots; "
            f"{row['throughput_requests_per_slot']:.4g} requests/slot there); "
            "`flowstab tune` searches every family")
    return result, note
