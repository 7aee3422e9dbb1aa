"""Plan a deployment: stability limits and a flow-control rate with a guaranteed overflow bound.

:func:`make_plan` is what ``flowstab plan`` prints. For a workload and a KV-cache size M it gives
E[S], E[O], E[W], λ_max = M/E[W] (Prop. 3.2: no scheduler is stable above it), and the flow-control
activation rate r*(ε): the largest mean rate of the chosen budget law whose overflow probability per
slot is at most ε under the tightest *valid* bound (Hoeffding, Bernstein, Chernoff, Cantelli; the
Gaussian approximation is shown but never used). Flow control at rate r* is stable for every total
arrival rate λ < r* (the admissible range), where it keeps the expected KV utilisation at
λ·E[W]/M < r*·E[W]/M. With a step-time model every rate is also given per second.

A budget *law* ``(LAW)`` (``budget="(uniform:0,6)"``, :func:`numerics.model.budget.as_budget`)
fixes the rate (its mean r), so there is no r* to search: the plan then certifies that rate — the
bounds at r (the tightest valid one as ``bound``/``overflow_bound``; the exact tail with
``exact=True``), admissible λ < r, the KV utilisation r·E[W]/M — and says whether it meets ε
(``budget_fixes_rate`` is True; ``flow_rate_by_bound`` is empty).

Asked for a waste target δ (``waste_target``), the plan also carries the *waste-certified rate*
(:func:`numerics.analysis.waste.waste_rate`, docs/theory.md §13): the largest rate whose certified
fraction of emitted tokens thrown away by LIFO recompute evictions is at most δ, shown beside
r*(ε); without one the plan and its report are unchanged.

Examples
--------
>>> from numerics.model.specs import parse_law
>>> from numerics.model.workload import Workload
>>> p = make_plan(Workload.single(parse_law("100"), parse_law("geom:mean=200")), 50_000)
>>> round(p.lambda_max, 12), p.bound
(0.833333333333, 'chernoff')
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Literal

from numerics.analysis.bounds import BOUNDS, BoundName, BoundNotApplicable, FlowTails
from numerics.analysis.capacity import compute_coupled_capacity, rate_per_second
from numerics.analysis.conditions import lambda_max as _lambda_max
from numerics.errors import SettingError, WorkloadError
from numerics.model.budget import BudgetKind, BudgetLaw, as_budget, is_law_spec
from numerics.model.steptime import StepTimeModel
from numerics.model.workload import Workload, check_hard_cap, ensure_memory

__all__ = ["HARD_CAP_TOL", "Plan", "make_plan"]

#: P(S + O > M) above this is reported as a hard-cap violation (an error). Laws with unbounded
#: support (geometric, Poisson, ...) always put *some* mass above M; below 1e-12 such a request
#: arrives less than once per 10^12 requests (≈ 3,000 years at 10 requests/s), the regime where
#: serving systems reject it with max_model_len. The value is reported either way.
HARD_CAP_TOL = 1e-12


@dataclass(frozen=True)
class Plan:
    """Everything ``flowstab plan`` reports (all rates per slot unless ``_per_s``)."""

    workload: str
    source: str
    memory_tokens: int
    mean_prompt: float
    mean_decode: float
    decode_second_moment: float
    mean_memory_time: float
    lambda_max: float
    epsilon: float
    budget: BudgetKind | str
    flow_rate: float
    bound: BoundName | Literal["exact", "none"]
    overflow_bound: float
    admissible_rate_max: float
    expected_kv_util: float
    hard_cap_violation_prob: float
    flow_rate_by_bound: dict = field(default_factory=dict)
    bounds_at_flow_rate: dict = field(default_factory=dict)
    not_applicable: dict = field(default_factory=dict)
    classes: list = field(default_factory=list)
    step_time: str | None = None
    lambda_max_per_s: float | None = None
    flow_rate_per_s: float | None = None
    arrival_rate: float | None = None
    load: float | None = None
    arrival_admissible: bool | None = None
    #: the waste-certified rate (:meth:`numerics.analysis.waste.WasteRate.to_dict` plus its ratio
    #: to r*(ε) and to λ_max), only when a waste target was asked for
    waste: dict | None = None
    #: True for a budget law ``(LAW)``: its mean is the rate, certified rather than searched for
    budget_fixes_rate: bool = False
    #: with ``exact=True``, why the exact tail could not be computed (the plan then reports the
    #: best bound's certified rate, a lower bound on the exact r*); None when it was
    exact_unavailable: str | None = None
    #: with ``exact=True``, how the exact tail at r* was computed: the method and its error
    #: (:attr:`numerics.analysis.exact.ExactTail.description`), e.g. the lattice bracket's width
    exact_method: str | None = None

    def to_dict(self) -> dict:
        """A JSON-ready dict (``memory_tokens`` etc. plus the per-bound details; ``waste`` only
        when a waste target was asked for)."""
        out = asdict(self)
        out["workload_name"] = out.pop("workload")
        if out["waste"] is None:
            del out["waste"]
        for key in ("exact_unavailable", "exact_method"):
            if out[key] is None:
                del out[key]
        return out

    def report(self) -> str:
        """A readable plain-text report."""
        if self.budget_fixes_rate:
            return _law_report(self)
        lines = self._head_lines()
        lines += [
            f"Flow control (Algorithm 2, {self.budget} budget), target overflow ε = "
            f"{self.epsilon:g} per slot",
            f"  r*(ε)                    {self.flow_rate:.6g} requests/slot   [{self.bound}"
            + (" tail]" if self.bound == "exact" else " bound]"),
            f"  overflow {'P' if self.bound == 'exact' else 'bound'} at r*"
            f"{'         ' if self.bound == 'exact' else '     '}{self.overflow_bound:.3g}",
            f"  admissible λ             0 < λ < {self.admissible_rate_max:.6g} requests/slot "
            f"({100 * self.admissible_rate_max / self.lambda_max:.1f}% of λ_max)"
            if self.lambda_max > 0 else "  admissible λ             none",
            f"  expected KV utilisation  < {100 * self.expected_kv_util:.1f}% at λ → r*",
            "",
            *([f"  method                   {self.exact_method}"] if self.exact_method else []),
            *([f"  exact tail               not computed: {self.exact_unavailable}",
               "                           r*(ε) above is the best bound's, a certified lower bound "
               "on the exact r*"] if self.exact_unavailable else []),
            "",
            "  r*(ε) by bound:",
        ]
        lines += _by_bound_lines(self, self.flow_rate_by_bound, "the exact tail: what every bound "
                                 "approximates", "{:.6g}", zero=f"no rate > 0 meets ε = {self.epsilon:g} "
                                 "with this bound")
        return "\n".join(lines + self._tail_lines())

    def _head_lines(self) -> list[str]:
        lines = [
            f"flowstab plan — {self.workload}" + (f" ({self.source})" if self.source else ""),
            f"KV-cache memory M          {self.memory_tokens:,} tokens",
        ]
        for c in self.classes:
            rate = "" if c["rate_per_slot"] is None else f", λ = {c['rate_per_slot']:g}/slot"
            lines.append(f"  class {c['name']!r} (weight {c['weight']:.3g}{rate}): {c['lengths']}")
        lines += [
            f"E[S] prompt                {self.mean_prompt:,.2f} tokens",
            f"E[O] decode                {self.mean_decode:,.2f} tokens",
            f"E[W] = E[S·O + O(O+1)/2]   {self.mean_memory_time:,.2f} token-slots",
            f"P(S + O > M)               {self.hard_cap_violation_prob:.3g}",
            "",
            "Stability (Dong & Cao Prop. 3.2: Σ λ_k E[W_k] ≤ M for ANY scheduler)",
            f"  λ_max = M / E[W]         {self.lambda_max:.6g} requests/slot",
            "",
        ]
        return lines

    def _tail_lines(self) -> list[str]:
        lines: list[str] = []
        if self.waste is not None:
            lines += ["", *_waste_lines(self)]
        if self.arrival_rate is not None:
            verdict = "admissible" if self.arrival_admissible else "NOT admissible"
            lines += [
                "",
                f"At λ = {self.arrival_rate:g}/slot: load Σλ_kE[W_k]/M = {self.load:.3g}; "
                f"{verdict} for flow control at r*",
            ]
        if self.step_time:
            lines += [
                "",
                f"Per second (step time {self.step_time})",
                f"  Λ* = M/(E[W]·τ(B_M, M))   {self.lambda_max_per_s:.6g} requests/s",
                f"  r*(ε)                    {self.flow_rate_per_s:.6g} requests/s",
            ]
        return lines


def _by_bound_lines(plan: Plan, values: dict, exact_note: str, fmt: str,
                    zero: str | None = None) -> list[str]:
    """One line per bound (and the exact tail, when computed): its value in ``fmt``, "n/a" with the
    reason where its hypotheses fail, ``zero`` as the note of a value 0."""
    lines = []
    for name in (*BOUNDS, "exact") if "exact" in values else BOUNDS:
        if name in plan.not_applicable:
            lines.append(f"    {name:<10} n/a — {plan.not_applicable[name]}")
            continue
        note = {"gaussian": "approximation, NOT a bound", "exact": exact_note}.get(name)
        if zero is not None and values[name] == 0:
            note = zero
        lines.append(f"    {name:<10} {fmt.format(values[name])}" + (f"  ({note})" if note else ""))
    return lines


def _law_report(plan: Plan) -> str:
    """The report of a plan whose budget law fixes the rate: the certificate at that rate."""
    meets = plan.overflow_bound <= plan.epsilon
    kind = "P" if plan.bound == "exact" else "bound"
    lines = [
        *plan._head_lines(),
        f"Flow control (Algorithm 2, budget law {plan.budget}): the law fixes the rate at its mean",
        f"  r                        {plan.flow_rate:.6g} requests/slot"
        + (f" ({100 * plan.flow_rate / plan.lambda_max:.1f}% of λ_max)" if plan.lambda_max > 0 else ""),
        f"  {'overflow ' + kind + ' at r':<25}{plan.overflow_bound:.3g}   [{plan.bound}"
        + (" tail]" if plan.bound == "exact" else " bound]"),
        f"  target ε                 {plan.epsilon:g} per slot: "
        + ("met" if meets else "NOT met (lower the law's mean)"),
        f"  admissible λ             0 < λ < {plan.admissible_rate_max:.6g} requests/slot",
        f"  expected KV utilisation  < {100 * plan.expected_kv_util:.1f}% at λ → r",
        "",
        "  overflow at r by bound:",
    ]
    lines += _by_bound_lines(plan, plan.bounds_at_flow_rate, "the exact tail", "{:.3g}")
    tail = [line.replace("flow control at r*", "flow control at r").replace("  r*(ε)     ", "  r         ")
            for line in plan._tail_lines()]
    return "\n".join(lines + tail)


def _waste_lines(plan: Plan) -> list[str]:
    """The report's waste-certificate block."""
    w = plan.waste
    head = [
        "Waste certificate (LIFO recompute eviction, saturated flow control; docs/theory.md §13)",
        f"  target                   tokens thrown away ≤ {w['target']:g} of tokens emitted",
    ]
    if w["rate_per_slot"] <= 0:
        return [*head, f"  r_waste(δ)               none — no rate > 0 is certified ({w['method']})"]
    ratio = "" if w["ratio_to_flow_rate"] is None else f"{w['ratio_to_flow_rate']:.3g} × r*(ε), "
    return [
        *head,
        f"  r_waste(δ)               {w['rate_per_slot']:.6g} requests/slot   [{w['method']}]",
        f"                           {ratio}{100 * w['fraction_of_lambda_max']:.1f}% of λ_max",
        f"  certified at r_waste     waste ≤ {w['waste_per_slot_bound']:.3g} tokens/slot, emitted ≥ "
        f"{w['emitted_tokens_per_slot_lower_bound']:.4g} tokens/slot (fraction ≤ "
        f"{w['waste_fraction_bound']:.3g})",
    ]


def make_plan(
    workload: Workload,
    memory_tokens: int | None = None,
    epsilon: float = 1e-6,
    budget: BudgetKind | str = "randomized",
    step_time: StepTimeModel | None = None,
    arrival_rate: float | None = None,
    exact: bool = False,
    waste_target: float | None = None,
) -> Plan:
    """Compute a :class:`Plan` (see the module docstring).

    With ``exact=True`` the recommended rate is r*(ε) under the exact overflow tail
    (:func:`numerics.analysis.exact.exact_flow_rate`), ``bound`` is ``"exact"`` and ``overflow_bound`` is
    the exact P(U > M) at that rate; the rates of the bounds are still listed for comparison.

    With ``waste_target=δ`` the plan also carries the waste-certified rate for δ
    (:func:`numerics.analysis.waste.waste_rate`; its exact method when ``exact=True``).

    Raises
    ------
    UnstableWorkloadError
        E[O²] = ∞ for some class, or P(S + O > M) > :data:`HARD_CAP_TOL`.
    WorkloadError
        Non-positive memory, ε or δ outside (0, 1), non-positive arrival rate, a waste target for
        unbounded laws.
    """
    if memory_tokens is None:
        memory_tokens = workload.memory_tokens
        if memory_tokens is None:
            raise WorkloadError("give the KV-cache size in tokens (--memory M)")
    m = ensure_memory(memory_tokens)
    if not (isinstance(epsilon, float | int) and 0 < epsilon < 1):
        raise WorkloadError(f"epsilon must lie in (0, 1), got {epsilon!r}")
    if arrival_rate is not None and (not math.isfinite(arrival_rate) or arrival_rate <= 0):
        raise WorkloadError(f"arrival rate must be > 0 requests per slot, got {arrival_rate!r}")
    if waste_target is not None and not (
        isinstance(waste_target, float | int) and not isinstance(waste_target, bool) and 0 < waste_target < 1
    ):
        raise WorkloadError(f"the waste target must lie in (0, 1), got {waste_target!r}")
    workload.require_finite_memory_time()
    violation = check_hard_cap(workload, m, HARD_CAP_TOL)
    tails = FlowTails(workload, m)
    if is_law_spec(budget):
        if waste_target is not None:
            raise WorkloadError("a waste target searches for a rate, and a budget law fixes the rate; "
                                "drop --target waste: or use a named budget")
        law = as_budget(budget)
        return _law_plan(workload, m, float(epsilon), law, tails, violation, step_time,
                         arrival_rate, exact)
    chosen = tails.flow_rate(epsilon, budget)
    best_bound = chosen
    exact_unavailable = None
    if exact:
        from numerics.analysis.exact import exact_flow_rate

        try:
            chosen = exact_flow_rate(workload, m, epsilon, budget)
        except SettingError as exc:  # the inversion's time budget: say so, keep the bound's rate
            exact_unavailable = str(exc)
    by_bound, at_rate, missing = {}, {}, {}
    for name in BOUNDS:
        try:
            by_bound[name] = (
                best_bound.rate_per_slot
                if name == best_bound.bound
                else tails.flow_rate(epsilon, budget, name).rate_per_slot
            )
            at_rate[name] = tails.bound(name, chosen.rate_per_slot, budget)
        except BoundNotApplicable as exc:
            missing[name] = str(exc)
    if exact and exact_unavailable is None:
        by_bound["exact"] = chosen.rate_per_slot
        # the search's own exact tail at r* (P = 1 at rate 0: nothing qualifies)
        at_rate["exact"] = chosen.overflow_bound if chosen.rate_per_slot > 0 else 1.0
    common = _common_fields(workload, m, float(epsilon), chosen.rate_per_slot, violation, step_time,
                            arrival_rate)
    waste = None
    if waste_target is not None:
        waste = _waste_plan(workload, m, float(waste_target), budget, exact, chosen.rate_per_slot,
                            common["lambda_max"])
    return Plan(
        **common,
        budget=budget,
        bound=chosen.bound,
        overflow_bound=chosen.overflow_bound,
        flow_rate_by_bound=by_bound,
        bounds_at_flow_rate=at_rate,
        not_applicable=missing,
        waste=waste,
        exact_unavailable=exact_unavailable,
        exact_method=(getattr(chosen, "description", "") or None) if exact and exact_unavailable is None
        else None,
    )


def _common_fields(workload: Workload, m: int, epsilon: float, rate: float, violation: float,
                   step_time: StepTimeModel | None, arrival_rate: float | None) -> dict:
    """The :class:`Plan` fields every plan has: the workload's, and those of the rate ``rate``
    (the certified r*, or the rate a budget law fixes)."""
    load = admissible = None
    if arrival_rate is not None:
        load = arrival_rate * workload.mean_memory_time / m
        admissible = arrival_rate < rate
    return dict(
        workload=workload.name,
        source=workload.source,
        memory_tokens=m,
        mean_prompt=workload.mean_prompt,
        mean_decode=workload.mean_decode,
        decode_second_moment=workload.decode_second_moment,
        mean_memory_time=workload.mean_memory_time,
        lambda_max=_lambda_max(workload, m),
        epsilon=epsilon,
        flow_rate=rate,
        admissible_rate_max=rate,
        expected_kv_util=rate * workload.mean_memory_time / m,
        hard_cap_violation_prob=violation,
        classes=_classes(workload),
        arrival_rate=arrival_rate,
        load=load,
        arrival_admissible=admissible,
        **_per_second(workload, m, step_time, rate),
    )


def _classes(workload: Workload) -> list[dict]:
    return [
        {
            "name": c.name,
            "weight": float(w),
            "rate_per_slot": c.rate_per_slot,
            "lengths": getattr(c.lengths, "label", ""),
            "mean_memory_time": c.mean_memory_time,
        }
        for c, w in zip(workload.classes, workload.mix, strict=True)
    ]


def _per_second(workload: Workload, m: int, step_time: StepTimeModel | None, rate: float) -> dict:
    if step_time is None:
        return {}
    return {
        "step_time": step_time.to_spec(),
        "lambda_max_per_s": compute_coupled_capacity(workload, m, step_time),
        "flow_rate_per_s": rate_per_second(workload, rate, step_time),
    }


def _law_plan(workload: Workload, m: int, epsilon: float, law: BudgetLaw, tails: FlowTails,
              violation: float, step_time: StepTimeModel | None, arrival_rate: float | None,
              exact: bool) -> Plan:
    """The plan of a budget law: the certificate at the rate it fixes (its mean)."""
    r = law.rate_per_slot
    at_rate, missing = {}, {}
    for name in BOUNDS:
        try:
            at_rate[name] = tails.bound(name, r, law)
        except BoundNotApplicable as exc:
            missing[name] = str(exc)
    log_best, which = tails.best_log_bound(law)
    bound, value = which, math.exp(max(log_best, -745.0)) if which != "none" else 1.0
    if exact:
        from numerics.analysis.exact import exact_tail

        at_rate["exact"] = exact_tail(workload, m, r, law).prob if r > 0 else 0.0
        bound, value = "exact", at_rate["exact"]
    return Plan(
        **_common_fields(workload, m, epsilon, r, violation, step_time, arrival_rate),
        budget=law.spec,
        bound=bound,
        overflow_bound=value,
        flow_rate_by_bound={},
        bounds_at_flow_rate=at_rate,
        not_applicable=missing,
        budget_fixes_rate=True,
    )


def _waste_plan(workload: Workload, memory: int, target: float, budget: BudgetKind, exact: bool,
                flow_rate: float, lam: float) -> dict:
    """The plan's ``waste`` entry: :func:`~numerics.analysis.waste.waste_rate` and its ratios."""
    from numerics.analysis.waste import waste_rate

    try:
        res = waste_rate(workload, memory, target, budget, "exact" if exact else "chernoff")
    except BoundNotApplicable as exc:
        raise WorkloadError(f"waste target: {exc}") from None
    out = res.to_dict()
    out["ratio_to_flow_rate"] = res.rate_per_slot / flow_rate if flow_rate > 0 else None
    out["fraction_of_lambda_max"] = res.rate_per_slot / lam if lam > 0 else 0.0
    return out
