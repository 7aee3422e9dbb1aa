r"""Build the ``flowstab report``: one self-contained HTML page for a workload and a KV cache.

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
4. a policy comparison by simulation (:mod:`numerics.sim`): the line-up of ``flowstab compare``
   (flow at :math:`r^*(\varepsilon)`, greedy, α-protection, reserve, MC-SF) on common random
   numbers, ``replications`` independent runs per policy with Student-t intervals
   (:func:`numerics.sim.ci`), and figures of one run;
5. the verification status of the claims used, from the claims ledger
   (``proofs_check.run_ledger``) when it is installed.

The default step-time model, :data:`DEFAULT_STEP_TIME`, is a least-squares fit to measured decode
iterations (see :data:`STEP_TIME_PROVENANCE`).

Examples
--------
>>> from numerics.model.specs import parse_law
>>> from numerics.model.workload import Workload
>>> wl = Workload.single(parse_law("100"), parse_law("200"), name="example")
>>> rep = build_report(ReportConfig(wl, 50_000, simulate=False, verify=False))
>>> rep.html.startswith("<!DOCTYPE html>")
True

Known lengths S = 100, O = 200: E[W] = 100·200 + 200·201/2 = 40 100, so λ_max = 50 000/40 100:

>>> round(rep.data["plan"]["lambda_max"], 12), round(50_000 / 40_100, 12)
(1.246882793017, 1.246882793017)
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from flowstab.report import html as H
from flowstab.report.latex import formula_html
from numerics.errors import FlowstabError, WorkloadError
from numerics.model.steptime import StepTimeModel
from numerics.model.workload import Workload

__all__ = [
    "DEFAULT_MEMORY_TOKENS",
    "DEFAULT_REPLICATIONS",
    "DEFAULT_SLOTS",
    "DEFAULT_STEP_TIME",
    "DEFAULT_STEP_TIME_SPEC",
    "STEP_TIME_PROVENANCE",
    "Report",
    "ReportConfig",
    "ReportOutputError",
    "build_report",
    "check_out_dir",
    "compare_policies",
    "report_claims",
    "write_report",
]

DEFAULT_MEMORY_TOKENS = 131_072
#: Slots per simulated run: ~100 mean decode lengths of the default workload (E[O] ≈ 211), and
#: MC-SF (Python engine, ~0.1–0.2 ms per slot) still fits in the report's time budget.
DEFAULT_SLOTS = 20_000
#: Independent replications per policy and arrival rate (for 95% Student-t intervals).
DEFAULT_REPLICATIONS = 5
CI_LEVEL = 0.95
#: The default arrival rates simulated, as fractions of r*(ε) (inside flow control's admissible
#: range) and of λ_max (heavy traffic, where only a memory-aware greedy policy can keep up).
LOAD_OF_FLOW_RATE = 0.9
LOAD_OF_LAMBDA_MAX = 0.9
#: Two default rates closer than this (relative) are simulated once.
SAME_RATE_RTOL = 0.02

#: τ = c0 + cb·B seconds per decode iteration with B requests in the batch.
DEFAULT_STEP_TIME_SPEC = "linear:c0=0.02891,cb=0.0003343"
DEFAULT_STEP_TIME = StepTimeModel.from_spec(DEFAULT_STEP_TIME_SPEC)
#: Where :data:`DEFAULT_STEP_TIME` comes from (shown in the report).
STEP_TIME_PROVENANCE = (
    "least-squares fit of token_time (ms per decode iteration) on batch_size over the 105 rows "
    "model = llama2-70b, hardware = h100-80gb, tensor_parallel = 4 of splitwise-sim's measured "
    "data/perf_model.csv (Mutinifni/splitwise-sim @ 8f99e7d, MIT; Patel et al., Splitwise, "
    "ISCA 2024): c0 = 28.91 ms, cb = 0.3343 ms per request, R² = 0.968. Batches of 1–64 were "
    "measured, so larger batches extrapolate; the time per iteration hardly changes with the "
    "prompt length at batch 1 (128–8 192 tokens), so no KV-token term (ck) is fitted."
)

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
_VERDICT_BADGE = {"verified": "ok", "violated": "bad", "inconclusive": "warn"}


class ReportOutputError(FlowstabError):
    """The report's output folder cannot be created or written."""


@dataclass(frozen=True, eq=False)
class ReportConfig:
    """What one report covers.

    Parameters
    ----------
    workload : Workload
    memory_tokens : int
        KV-cache size M in tokens.
    epsilon : float
        Target overflow probability per slot for r*(ε), in (0, 1).
    budget : {"randomized", "deterministic", "poisson"}
        Activation budget law of flow control.
    step_time : StepTimeModel or None
        Maps slots to seconds; None leaves out every per-second number.
    arrival_rates : tuple of float or None
        Total arrival rates (requests/slot) to simulate; None: the workload's own rate if its
        classes carry rates, else :data:`LOAD_OF_FLOW_RATE`·r*(ε) and :data:`LOAD_OF_LAMBDA_MAX`·λ_max.
    slots, replications, seed : int
        Per simulated run; replication i of every policy uses the i-th child seed of
        ``SeedSequence(seed)`` (common random numbers across policies).
    simulate, verify : bool
        Run the simulation and the claims ledger.
    claims : tuple of str or None
        Claim IDs to verify; None: :func:`report_claims`.
    command : str
        The command line shown in the report's provenance.
    """

    workload: Workload
    memory_tokens: int = DEFAULT_MEMORY_TOKENS
    epsilon: float = 1e-6
    budget: str = "randomized"
    step_time: StepTimeModel | None = DEFAULT_STEP_TIME
    arrival_rates: tuple[float, ...] | None = None
    slots: int = DEFAULT_SLOTS
    replications: int = DEFAULT_REPLICATIONS
    seed: int = 0
    simulate: bool = True
    verify: bool = True
    claims: tuple[str, ...] | None = None
    command: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.workload, Workload):
            raise WorkloadError(f"workload must be a Workload, got {type(self.workload).__name__}")
        if not (isinstance(self.epsilon, float | int) and 0 < self.epsilon < 1):
            raise WorkloadError(f"epsilon must lie in (0, 1), got {self.epsilon!r}")
        if self.budget not in ("randomized", "deterministic", "poisson"):
            raise WorkloadError(f"budget must be randomized, deterministic or poisson, got {self.budget!r}")
        for name, least in (("slots", 1), ("replications", 1), ("seed", 0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < least:
                raise WorkloadError(f"{name} must be an integer ≥ {least}, got {v!r}")
        if self.arrival_rates is not None:
            rates = tuple(float(r) for r in self.arrival_rates)
            if not rates or any(not math.isfinite(r) or r <= 0 for r in rates):
                raise WorkloadError(
                    f"arrival rates must be positive numbers of requests per slot, got {self.arrival_rates!r}"
                )
            object.__setattr__(self, "arrival_rates", rates)
        if self.claims is not None:
            object.__setattr__(self, "claims", tuple(self.claims))


@dataclass(frozen=True, eq=False)
class Report:
    """A built report: the HTML text, the numbers in it (JSON-ready) and step timings (s)."""

    html: str
    data: dict
    timings: dict = field(default_factory=dict)


# ------------------------------------------------------------------------------------ helpers
def _tex_num(x: float, sig: int = 5) -> str:
    """A number for mathtext: thousands separators as ``{,}`` and scientific as ×10^k."""
    if x is None or not math.isfinite(x):
        return r"\infty" if x == math.inf else r"\mathrm{n/a}"
    if x != 0 and (abs(x) < 1e-3 or abs(x) >= 1e9):
        mant, _, exp = f"{x:.3e}".partition("e")
        return rf"{mant}\times 10^{{{int(exp)}}}"
    if float(x).is_integer() and abs(x) < 1e15:
        return f"{int(x):,}".replace(",", "{,}")
    text = f"{x:,.{sig}g}"
    if "e" in text:
        return _tex_num(float(text), sig)
    return text.replace(",", "{,}")


def _tile_value(value: float | None, unit: str) -> str:
    return f'{H.esc(H.fmt(value))} <span class="u">{H.esc(unit)}</span>'


def report_claims(plan, step_time: StepTimeModel | None) -> tuple[str, ...]:
    """The registered claims a report for ``plan`` states (IDs in :data:`theory.REGISTRY`)."""
    from theory import REGISTRY

    ids = list(BASE_CLAIMS)
    ids += [f"bound:{name}" for name in ("hoeffding", "bernstein", "chernoff", "cantelli")
            if name not in plan.not_applicable]
    if "gaussian" not in plan.not_applicable:
        ids.append("approx:gaussian")
    if step_time is not None:
        ids.append("thm:compute-capacity")
    return tuple(i for i in ids if i in REGISTRY)


def _git_sha() -> str:
    root = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
                             capture_output=True, text=True, timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("flowstab", "numpy", "scipy", "sympy", "pandas", "matplotlib", "numba"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def _progress_bar(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, file=sys.stderr, disable=not enabled, leave=False,
                dynamic_ncols=True, unit="run")


def check_out_dir(out_dir: str | os.PathLike) -> Path:
    """Create ``out_dir`` if needed and check that ``report.html`` can be written there."""
    path = Path(out_dir)
    if path.exists() and not path.is_dir():
        raise ReportOutputError(f"--out {path}: exists and is not a folder; give a folder name")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportOutputError(f"--out {path}: cannot create the folder ({exc.strerror or exc})") from None
    target = path / "report.html"
    if not os.access(path, os.W_OK | os.X_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise ReportOutputError(f"--out {path}: not writable; choose another folder with --out")
    return path


# ------------------------------------------------------------------------------------ sections
def _summary_section(cfg: ReportConfig, plan, sim: dict | None, verification: dict) -> str:
    per_s = cfg.step_time is not None
    lam_sub = (f"{H.esc(H.fmt(plan.lambda_max_per_s))} requests/s (Λ*, with the step-time model)"
               if per_s else "per slot (one decode iteration)")
    r_sub = f"{H.esc(plan.bound)} bound, ε = {H.esc(f'{plan.epsilon:g}')}"
    if per_s:
        r_sub = f"{H.esc(H.fmt(plan.flow_rate_per_s))} requests/s · " + r_sub
    share = plan.flow_rate / plan.lambda_max if plan.lambda_max > 0 else 0.0
    if plan.flow_rate > 0:
        op_value = f'λ &lt; {H.esc(H.fmt(plan.flow_rate))} <span class="u">requests/slot</span>'
        op_sub = (f"flow control at r*(ε), {H.esc(plan.budget)} budget: {H.esc(H.fmt(share, unit='%'))} "
                  f"of λ_max, mean KV use ≤ {H.esc(H.fmt(plan.expected_kv_util, unit='%'))} of M, "
                  f"overflow ≤ {H.esc(f'{plan.overflow_bound:.2g}')} per slot")
    else:
        op_value = "none"
        op_sub = f"no flow-control rate meets ε = {plan.epsilon:g} with a valid bound"
    tiles = [
        H.card("Stability limit λ<sub>max</sub> = M / E[W]", _tile_value(plan.lambda_max, "requests/slot"),
               lam_sub),
        H.card("Flow-control rate r*(ε)", _tile_value(plan.flow_rate, "requests/slot"), r_sub, "green"),
        H.card("Recommended operating point", op_value, op_sub, "orange"),
        H.card("Memory-time E[W]", _tile_value(plan.mean_memory_time, "token-slots"),
               f"E[S] = {H.esc(H.fmt(plan.mean_prompt))}, E[O] = {H.esc(H.fmt(plan.mean_decode))} tokens",
               "purple"),
    ]
    rate_s = [c.rate_per_s for c in cfg.workload.classes if c.rate_per_s is not None]
    trace_rate = sum(rate_s) if rate_s and len(rate_s) == len(cfg.workload.classes) else None
    if per_s and trace_rate is not None:
        tiles.append(H.card("Trace arrival rate", _tile_value(trace_rate, "requests/s"),
                            f"{H.esc(H.fmt(trace_rate / plan.lambda_max_per_s, unit='%'))} of Λ*; "
                            f"r*(ε) serves {H.esc(H.fmt(plan.flow_rate_per_s))} requests/s", "vermillion"))
    else:
        tiles.append(H.card("KV cache M", _tile_value(plan.memory_tokens, "tokens"),
                            f"P(S + O &gt; M) = {H.esc(H.fmt(plan.hard_cap_violation_prob))}", "vermillion"))
    if verification["status"] == "run":
        counts = verification["counts"]
        n = sum(counts.values())
        accent = "green" if counts.get("verified", 0) == n else "vermillion"
        tiles.append(H.card("Claims verified", f'{counts.get("verified", 0)} <span class="u">of {n}</span>',
                            H.esc(", ".join(f"{v} {k}" for k, v in sorted(counts.items()) if k != "verified")
                                  or "every claim the report uses"), accent))
    else:
        tiles.append(H.card("Claims verified", "not run", H.esc(verification["note"]), ""))
    notes = []
    if per_s and trace_rate is not None:
        total = trace_rate
        where = ("below r*(ε): flow control at r* serves it with the overflow guarantee"
                 if total < plan.flow_rate_per_s else
                 "above r*(ε) but below Λ*: it is stable for a memory-aware policy, but flow control "
                 "at this ε cannot promise the overflow target" if total < plan.lambda_max_per_s else
                 "above Λ*: no scheduler keeps up; add memory or replicas")
        notes.append(f"The trace's own mean arrival rate, {H.esc(H.fmt(total))} requests/s, is {where} "
                     "(rates per second assume the step-time model below).")
    if sim is not None:
        for run in sim["runs"]:
            grows = [p["label"] for p in run["policies"] if p["queue_grows"]]
            keeps = [p["label"] for p in run["policies"] if not p["queue_grows"]]
            text = (f"Simulated at λ = {H.esc(H.fmt(run['arrival_rate']))} requests/slot "
                    f"({H.esc(run['why'])}): ")
            if grows:
                text += (f"the queue keeps growing under {H.esc(', '.join(grows))}; "
                         f"{H.esc(', '.join(keeps)) or 'no policy'} keep{'s' if len(keeps) == 1 else ''} up.")
            else:
                text += "every policy keeps up."
            notes.append(text)
    callout = "".join(f"<p>{n}</p>" for n in notes)
    callout_html = f'<div class="callout">{callout}</div>' if notes else ""
    return f'<div class="summary">{"".join(tiles)}</div>{callout_html}'


def _law_rows(workload) -> list[list[object]]:
    rows = []
    for c in workload.classes:
        for what, law in (("prompt S", c.lengths.prompt_law), ("decode O", c.lengths.decode_law)):
            rows.append([
                c.name if len(workload.classes) > 1 else what,
                *([what] if len(workload.classes) > 1 else []),
                f'<code>{H.esc(law.label)}</code>',
                H.fmt(law.mean), H.fmt(math.sqrt(law.var)) if math.isfinite(law.var) else "∞",
                H.fmt(law.second_moment), f"{law.min_value:,}",
                H.fmt(law.max_value) if math.isfinite(law.max_value) else "∞",
            ])
    return rows


def _workload_section(cfg: ReportConfig, plan) -> str:
    from flowstab.report.figures import laws_figure

    wl = cfg.workload
    multi = len(wl.classes) > 1
    head = (["class", "length"] if multi else ["length"]) + [
        "law", "mean\ntokens", "std\ntokens", "E[X²]\ntokens²", "min\ntokens", "max\ntokens"]
    numeric = ([False, False] if multi else [False]) + [False, True, True, True, True, True]
    body = [H.table(head, _law_rows(wl), numeric=numeric, raw=True)]
    w_rows = [["E[S], mean prompt", plan.mean_prompt, "tokens"],
              ["E[O], mean decode", plan.mean_decode, "tokens"],
              ["E[O²]", plan.decode_second_moment, "tokens²"],
              ["E[W], mean memory-time", plan.mean_memory_time, "token-slots"],
              ["P(S + O > M)", plan.hard_cap_violation_prob, ""]]
    if multi:
        for c, w in zip(wl.classes, wl.mix, strict=True):
            rate = "" if c.rate_per_slot is None else f", λ = {H.fmt(c.rate_per_slot)}/slot"
            w_rows.append([f"class {c.name}: weight π{rate}", float(w), ""])
            w_rows.append([f"class {c.name}: E[W]", c.mean_memory_time, "token-slots"])
    rate_s = [c.rate_per_s for c in wl.classes if c.rate_per_s is not None]
    if rate_s:
        w_rows.append(["trace mean arrival rate", float(sum(rate_s)), "requests/s"])
    body.append("<h3>Moments</h3>")
    body.append(H.table(["quantity", "value", "unit"], w_rows, numeric=[False, True, False]))
    body.append(f'<figure><img src="{laws_figure(wl)}" alt="prompt and decode length laws">'
                "<figcaption>Probability mass functions of the prompt and decode lengths "
                "(dotted lines: the means). A spike at the largest value is the probability mass a "
                "<code>max=</code> clip puts there.</figcaption></figure>")
    src = f"<p>Source: {H.esc(wl.source)}</p>" if wl.source else ""
    lead = (f"Workload <strong>{H.esc(wl.name)}</strong>, {len(wl.classes)} class"
            f"{'es' if multi else ''}; KV cache M = {plan.memory_tokens:,} tokens.")
    return H.section("workload", "1. Workload: laws and moments", src + "".join(body), lead)


def _cond_block(result, verdict_html: str, rows: list[tuple[str, str]], extra: str = "") -> str:
    """One condition: title, ID, verdict, the registered formula, its instantiation, source."""
    parts = [f'<div class="cond"><div class="cond-head"><span class="title">{H.esc(result.title)}</span>'
             f'<span class="id"><code>{H.esc(result.id)}</code></span>{verdict_html}</div>']
    grid = [f'<div class="k">in general</div><div>{formula_html(result.latex, display=True)}</div>']
    for label, tex in rows:
        grid.append(f'<div class="k">{H.esc(label)}</div><div>{formula_html(tex, display=True)}</div>')
    parts.append(f'<div class="formula-row">{"".join(grid)}</div>')
    parts.append(f"<p>{H.esc(result.statement)}</p>{extra}")
    parts.append(f'<p class="src">Source: {H.esc(result.source)}</p></div>')
    return "".join(parts)


def _holds(ok: bool) -> str:
    return H.badge("holds", "ok") if ok else H.badge("fails", "bad")


def _conditions_section(cfg: ReportConfig, plan, tails) -> str:
    import sympy as sp

    import theory
    from numerics.analysis.plan import HARD_CAP_TOL
    from numerics.model.budget import BudgetLaw
    from theory import REGISTRY

    wl, m = cfg.workload, plan.memory_tokens
    M = _tex_num(m)
    blocks = []
    # memory-time
    eso = float(sum(w * c.lengths.mean_prompt_times_decode
                    for c, w in zip(wl.classes, wl.mix, strict=True)))
    blocks.append(_cond_block(REGISTRY["thm:mean-memory-time"], H.badge("definition", "info"), [
        ("this workload", rf"E[W] = E[S\,O] + \dfrac{{E[O^2]+E[O]}}{{2}} = {_tex_num(eso)} + "
                          rf"\dfrac{{{_tex_num(plan.decode_second_moment)} + "
                          rf"{_tex_num(plan.mean_decode)}}}{{2}}"
                          rf" = {_tex_num(plan.mean_memory_time, 7)}"),
    ], "<p class='note'>E[S·O] = E[S]·E[O] when S and O are independent (the presets); a trace keeps "
       "its joint law. With several classes every moment is the mix Σ π_k (·)_k.</p>"))
    # hard cap
    hard_ok = plan.hard_cap_violation_prob <= HARD_CAP_TOL
    if wl.bounded:
        smax, omax = int(wl.max_prompt), int(wl.max_decode)
        inst = rf"\max S + \max O = {_tex_num(smax)} + {_tex_num(omax)} = {_tex_num(smax + omax)} " + (
            rf"\leq M = {M}" if smax + omax <= m else rf"> M = {M}")
    else:
        inst = rf"P(S + O > M) = {_tex_num(plan.hard_cap_violation_prob)}"
    blocks.append(_cond_block(REGISTRY["cond:hard-cap"], _holds(hard_ok), [("this workload", inst)],
                              f"<p class='note'>Reported as violated when P(S + O &gt; M) &gt; "
                              f"{HARD_CAP_TOL:g} (then no plan is made).</p>"))
    # heavy tail
    blocks.append(_cond_block(REGISTRY["cor:heavy-tail"], _holds(math.isfinite(plan.decode_second_moment)), [
        ("this workload", rf"E[O^2] = {_tex_num(plan.decode_second_moment)} < \infty"),
    ]))
    # necessary condition and λ_max
    w = plan.mean_memory_time
    sym_lam = float(theory.lambda_max(m, sp.Rational(w)))
    rates = wl.rates_per_slot
    if rates is not None:
        load = float(rates @ wl.mean_memory_times) / m
        inst_nec = (rf"\sum_k \lambda_k E[W_k] = {_tex_num(load * m)} "
                    + (rf"\leq M = {M}" if load <= 1 else rf"> M = {M}"))
        nec_badge = _holds(load <= 1)
        nec_extra = (f"<p class='note'>At the workload's own rates the load is "
                     f"{H.esc(H.fmt(load, unit='%'))} of M.</p>")
    else:
        inst_nec = (rf"\lambda \cdot {_tex_num(w, 7)} \leq {M} \;\Leftrightarrow\; "
                    rf"\lambda \leq {_tex_num(plan.lambda_max, 6)}")
        nec_badge = H.badge("limit", "info")
        nec_extra = ""
    blocks.append(_cond_block(REGISTRY["prop:necessary"], nec_badge, [("this workload", inst_nec)],
                              nec_extra))
    blocks.append(_cond_block(REGISTRY["cor:lambda-max"], H.badge("limit", "info"), [
        ("this workload", rf"\lambda_{{\max}} = \dfrac{{{M}}}{{{_tex_num(w, 7)}}} = "
                          rf"{_tex_num(plan.lambda_max, 6)}\ \mathrm{{requests/slot}}"),
    ], f"<p class='note'>Symbolic twin <code>theory.lambda_max(M, E[W])</code> evaluates to "
       f"{sym_lam:.10g} (numerics: {plan.lambda_max:.10g}).</p>"))
    # flow control at r*
    if plan.flow_rate > 0:
        r = plan.flow_rate
        law = BudgetLaw(plan.budget, r)
        mean_u = float(theory.flow_saturated_mean(sp.Float(r, 17), sp.Float(w, 17)))
        var_u = tails.variance(law)
        blocks.append(_cond_block(REGISTRY["prop:flow-mean"], H.badge("at r*", "info"), [
            ("at r*(ε)", rf"E[U] = r^* E[W] = {_tex_num(r, 6)} \cdot {_tex_num(w, 7)} = {_tex_num(mean_u, 6)}"
                         rf" \leq M = {M}"),
            ("slack", rf"\Delta = M - r^* E[W] = {_tex_num(m - mean_u, 6)}\ \mathrm{{tokens}}"),
        ]))
        blocks.append(_cond_block(REGISTRY["prop:flow-variance"], H.badge("at r*", "info"), [
            ("at r*(ε)", rf"\sqrt{{\mathrm{{Var}}\,U}} = {_tex_num(math.sqrt(var_u), 6)}\ \mathrm{{tokens}}"
                         rf"\quad (\sigma_B^2 = {_tex_num(law.variance, 4)},\ \mathrm{{{plan.budget}}})"),
        ]))
    return H.section(
        "conditions", "2. Stability conditions",
        "".join(blocks),
        "Each result as registered in <code>theory</code> (its LaTeX, statement and source), then "
        "written out with this workload's numbers. The overflow bounds and the per-second capacity "
        "follow in §3.",
    )


def _flow_section(cfg: ReportConfig, plan, tails) -> str:
    from flowstab.report.figures import bounds_figure
    from numerics.analysis.bounds import BOUNDS
    from theory import REGISTRY

    rows = []
    for name in BOUNDS:
        rid = "approx:gaussian" if name == "gaussian" else f"bound:{name}"
        res = REGISTRY.get(rid)
        formula = formula_html(res.latex, size_pt=11) if res is not None else ""
        label = f"<strong>{H.esc(name)}</strong>" if name == plan.bound else H.esc(name)
        label += f'<br><code>{H.esc(rid)}</code>'
        if name in plan.not_applicable:
            rows.append([label, formula, "n/a", "n/a", H.esc(plan.not_applicable[name])])
            continue
        rate = plan.flow_rate_by_bound.get(name)
        note = ("approximation, never used" if name == "gaussian" else
                "used for r*" if name == plan.bound else
                f"no rate meets ε = {plan.epsilon:g}" if rate == 0 else "valid, looser")
        rows.append([label, formula, H.esc(H.fmt(rate)), H.esc(H.fmt(plan.bounds_at_flow_rate.get(name))),
                     H.esc(note)])
    head = ["bound", "formula", "r*(ε) by this bound\nrequests/slot", "bound at r*\nP(U > M)", "note"]
    body = [H.table(head,
                    rows, numeric=[False, False, True, True, False], raw=True, cls="bounds",
                    caption="U: KV tokens in use by saturated flow control at mean rate r; Δ = M − r·E[W]. "
                    "r*(ε) uses, at each r, the tightest valid bound.")]
    body.append(f'<figure><img src="{bounds_figure(tails, plan)}" alt="overflow bounds vs rate">'
                "<figcaption>Each bound on the per-slot overflow probability as the activation rate r "
                "grows towards λ_max; r*(ε) is the largest r where the tightest valid bound is ≤ ε."
                "</figcaption></figure>")
    body.append("<h3>In requests per second</h3>")
    st = cfg.step_time
    if st is None:
        body.append("<p>No step-time model (<code>--step-time none</code>): rates are per slot only.</p>")
    else:
        from theory import REGISTRY as REG

        w, m = plan.mean_memory_time, plan.memory_tokens
        b_m = m * plan.mean_decode / w
        p_m = m * plan.mean_prompt / w
        tau_m = float(st.seconds(b_m, m, p_m))
        r = plan.flow_rate
        tau_r = float(st.seconds(r * plan.mean_decode, r * w, r * plan.mean_prompt))
        prov = (f"<p class='note'>Step-time model <code>{H.esc(st.to_spec())}</code>: "
                f"{H.esc(STEP_TIME_PROVENANCE) if st == DEFAULT_STEP_TIME else 'given on the command line.'}"
                "</p>")
        res = REG["thm:compute-capacity"]
        inst = [
            ("full memory", rf"B_M = \dfrac{{M\,E[O]}}{{E[W]}} = {_tex_num(b_m, 4)},\quad "
                            rf"\tau(B_M, M, P_M) = {_tex_num(tau_m * 1e3, 4)}\ \mathrm{{ms}}"),
            ("capacity", rf"\Lambda^* = \dfrac{{{_tex_num(m)}}}"
                         rf"{{{_tex_num(w, 7)} \cdot {_tex_num(tau_m, 4)}}}"
                         rf" = {_tex_num(plan.lambda_max_per_s, 5)}\ \mathrm{{requests/s}}"),
        ]
        if r > 0:
            inst.append(("flow control", rf"\dfrac{{r^*}}{{\tau(r^*E[O], r^*E[W], r^*E[S])}} = "
                                         rf"\dfrac{{{_tex_num(r, 5)}}}{{{_tex_num(tau_r, 4)}}} = "
                                         rf"{_tex_num(plan.flow_rate_per_s, 5)}\ \mathrm{{requests/s}}"))
        body.append(prov)
        body.append(_cond_block(res, H.badge("per second", "info"), inst))
    lead = (f"Flow control (Algorithm 2, {H.esc(plan.budget)} activation budget) admits up to B_t requests "
            f"per slot with E[B_t] = r. Target: overflow probability ≤ ε = {plan.epsilon:g} per slot.")
    return H.section("flow", "3. Flow-control rate and capacity", "".join(body), lead)


# ---------------------------------------------------------------------------------- simulation
_SIM_COLUMNS = (
    # (summary key, header, unit, percent?)
    ("throughput_requests_per_slot", "throughput", "requests/slot", False),
    ("throughput_requests_per_s", "throughput", "requests/s", False),
    ("latency_mean_slots", "latency mean", "slots", False),
    ("latency_p95_slots", "latency p95", "slots", False),
    ("ttft_mean_slots", "TTFT mean", "slots", False),
    ("kv_util_mean", "KV use mean", "% of M", True),
    ("evictions", "evictions", "per run", False),
)


def _default_rates(cfg: ReportConfig, plan) -> list[tuple[float, str]]:
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


def _lineup(workload, plan, rate: float, slots: int) -> tuple[list[tuple[str, object]], list[str]]:
    """flowstab compare's default policies, with flow at this report's r*(ε)."""
    from flowstab.cli import default_lineup

    return default_lineup(workload, plan.flow_rate, rate, slots, plan.budget, plan.epsilon)


def _check_sim_size(cfg: ReportConfig, rates: list[tuple[float, str]]) -> None:
    from flowstab.cli import MAX_EXPECTED_REQUESTS, MAX_MEMORY_TOKENS, MAX_SLOTS

    if cfg.slots > MAX_SLOTS:
        raise WorkloadError(f"--slots {cfg.slots:.3g} is beyond the simulator's limit of {MAX_SLOTS:.0e}")
    if cfg.memory_tokens > MAX_MEMORY_TOKENS:
        raise WorkloadError(f"--memory {cfg.memory_tokens:.3g} tokens is beyond the simulator's limit of "
                            f"{MAX_MEMORY_TOKENS:.0e}; use --no-sim")
    for rate, _ in rates:
        if rate * cfg.slots > MAX_EXPECTED_REQUESTS:
            raise WorkloadError(f"λ × slots = {rate:g} × {cfg.slots:,} is beyond the simulator's limit of "
                                f"{MAX_EXPECTED_REQUESTS:.0e} requests per run; lower --slots or the rate")


def compare_policies(cfg: ReportConfig, plan, *, progress: bool = False, figures: bool = True) -> dict:
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
    from numerics.sim.replicate import replication_seeds

    rates = _default_rates(cfg, plan)
    _check_sim_size(cfg, rates)
    seeds = replication_seeds(cfg.seed, cfg.replications)
    plans = [(rate, why, *_lineup(cfg.workload, plan, rate, cfg.slots)) for rate, why in rates]
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
                    res = simulate(dataclasses.replace(base, seed=s))
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


def _two_digits(x: float) -> str:
    """A half-width to 2 significant digits, without exponent notation (e.g. 350, 0.095)."""
    if not math.isfinite(x) or x == 0:
        return H.fmt(x)
    digits = 1 - math.floor(math.log10(abs(x)))
    if digits <= 0:
        return f"{round(x, digits):,.0f}"
    return f"{x:.{digits}f}"


def _sim_cell(stat: dict | None, pct: bool) -> str:
    if stat is None or not math.isfinite(stat["mean"]):
        return "n/a"
    mean, hw = stat["mean"], stat["half_width"]
    if pct:
        text = H.esc(H.fmt(mean, unit="%"))
        half = H.fmt(hw, unit="%")
    else:
        text = H.esc(H.fmt(mean, sig=4))
        half = _two_digits(hw)
    if math.isfinite(hw) and stat["n"] >= 2:
        text += f'<span class="pm">± {H.esc(half)}</span>'
    return text


def _sim_section(cfg: ReportConfig, plan, sim: dict | None) -> str:
    if sim is None:
        return H.section("simulation", "4. Policy comparison by simulation",
                         "<p>Not run (<code>--no-sim</code>).</p>")
    from flowstab.plotting import OKABE_ITO

    body = []
    cols = [c for c in _SIM_COLUMNS if cfg.step_time is not None or not c[0].endswith("_s")]
    for k, run in enumerate(sim["runs"], start=1):
        rows = []
        for i, p in enumerate(run["policies"]):
            swatch = f'<span class="swatch" style="background:{OKABE_ITO[i % len(OKABE_ITO)]}"></span>'
            slope = p["stats"].get("queue_slope", {}).get("mean", math.nan)
            status = (H.badge("queue grows", "bad") + f'<div class="sub">{slope:+.3g} requests/slot</div>'
                      if p["queue_grows"] else H.badge("keeps up", "ok"))
            rows.append([f'{swatch}{H.esc(p["label"])}<div class="status">{status}</div>',
                         *(_sim_cell(p["stats"].get(key), pct) for key, _, _, pct in cols)])
        head = ["policy", *(f"{h}\n{u}" for _, h, u, _ in cols)]
        numeric = [False, *([True] * len(cols))]
        body.append(f"<h3>4.{k} λ = {H.esc(H.fmt(run['arrival_rate']))} requests/slot "
                    f"({H.esc(run['why'])}; load {H.esc(H.fmt(run['load'], unit='%'))} of λ_max)</h3>")
        body.append(H.table(head, rows, numeric=numeric, raw=True, cls="sim", nowrap_first=True))
        notes = "".join(f"<li>{H.esc(n)}</li>" for n in run["notes"])
        if notes:
            body.append(f'<ul class="note">{notes}</ul>')
        body.append(f'<figure><img src="{run["figure"]}" alt="KV utilisation and latency CDF at '
                    f'λ = {run["arrival_rate"]:.4g}"><figcaption>Replication 1 (seed {sim["seeds"][0]}): '
                    "KV-cache utilisation over time (shaded: warm-up) and the latency CDF of requests "
                    "arriving after warm-up.</figcaption></figure>")
    lead = (f"{cfg.replications} independent replication{'s' if cfg.replications > 1 else ''} per "
            f"policy of {cfg.slots:,} slots each (warm-up {cfg.slots // 10:,}), Poisson arrivals; "
            "replication i uses the same seed under every policy (common random numbers), seeds from "
            f"SeedSequence({cfg.seed}). "
            f"Cells: mean ± {CI_LEVEL:.0%} Student-t half-width. Status: “queue grows” when the queue's "
            "slope over the second half is above 0 and the throughput below λ, both beyond their intervals.")
    return H.section("simulation", "4. Policy comparison by simulation", "".join(body), lead)


# -------------------------------------------------------------------------------- verification
def _verify(claims: tuple[str, ...], progress: bool) -> dict:
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


def _verification_section(claims: tuple[str, ...], verification: dict) -> str:
    from theory import REGISTRY

    if verification["status"] != "run":
        rows = [[f'<code class="id">{H.esc(c)}</code>', H.esc(REGISTRY[c].title) if c in REGISTRY else "",
                 H.badge("not run", "muted")] for c in claims]
        body = (f"<p>{H.esc(verification['note']).capitalize()}.</p>"
                + H.table(["claim", "title", "verdict"], rows, numeric=[False, False, False], raw=True))
        return H.section("verification", "5. Verification status of the claims used", body)
    rows = []
    for r in verification["results"]:
        title = r["title"] or (REGISTRY[r["id"]].title if r["id"] in REGISTRY else "")
        items = [e.strip() for e in r["evidence"].split(" | ") if e.strip()]
        evidence = '<ul class="evidence">' + "".join(f"<li>{H.esc(e)}</li>" for e in items) + "</ul>"
        kinds = f'<div class="sub">{H.esc(", ".join(r["kinds"]))}</div>' if r["kinds"] else ""
        rows.append([f'<code class="id">{H.esc(r["id"])}</code><div class="sub">{H.esc(title)}</div>',
                     H.badge(r["verdict"], _VERDICT_BADGE.get(r["verdict"], "muted")) + kinds,
                     evidence, H.esc(f"{r['seconds']:.2f}")])
    body = H.table(["claim", "verdict", "evidence", "time\ns"], rows,
                   numeric=[False, False, False, True], raw=True, cls="ledger")
    lead = ("The claims ledger (<code>proofs_check</code>, quick mode) re-checks each result the report "
            "relies on: symbolically, by property tests or empirically.")
    return H.section("verification", "5. Verification status of the claims used", body, lead)


def _provenance_section(cfg: ReportConfig, timings: dict, versions: dict, sha: str, stamp: str) -> str:
    st = cfg.step_time.to_spec() if cfg.step_time is not None else "none"
    items = [
        ("command", f"<code>{H.esc(cfg.command)}</code>" if cfg.command else "(Python API)"),
        ("generated", H.esc(stamp)),
        ("git commit", f"<code>{H.esc(sha)}</code>"),
        ("versions", H.esc(", ".join(f"{k} {v}" for k, v in versions.items()))),
        ("settings", H.esc(f"M = {cfg.memory_tokens:,} tokens, ε = {cfg.epsilon:g}, budget {cfg.budget}, "
                           f"step time {st}, slots {cfg.slots:,}, replications {cfg.replications}, "
                           f"seed {cfg.seed}")),
        ("time taken", H.esc(", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))),
    ]
    dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in items)
    return H.section("provenance", "6. Provenance", f'<dl class="kv">{dl}</dl>')


# ------------------------------------------------------------------------------------ the page
def build_report(config: ReportConfig, *, progress: bool = False) -> Report:
    """Compute everything and lay it out as one HTML page (see the module docstring).

    Parameters
    ----------
    config : ReportConfig
    progress : bool
        Progress bars (tqdm, on stderr) for the simulation and verification steps.

    Raises
    ------
    UnstableWorkloadError
        E[O²] = ∞, or some requests can never fit (P(S + O > M) > HARD_CAP_TOL): no plan exists.
    WorkloadError
        Bad memory, ε, or a simulation beyond the simulator's limits.
    """
    from flowstab.cli import _clean
    from numerics.analysis.bounds import FlowTails
    from numerics.analysis.plan import make_plan

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    plan = make_plan(config.workload, config.memory_tokens, config.epsilon, config.budget, config.step_time)
    tails = FlowTails(config.workload, plan.memory_tokens)
    claims = config.claims if config.claims is not None else report_claims(plan, config.step_time)
    timings["plan"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    sim = compare_policies(config, plan, progress=progress) if config.simulate else None
    timings["simulation"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    if config.verify:
        verification = _verify(claims, progress)
    else:
        verification = {"status": "not run", "note": "verification skipped (--no-verify)",
                        "results": [], "counts": {}}
    timings["verification"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    wl = config.workload
    title = f"flowstab report — {wl.name}, M = {plan.memory_tokens:,} tokens"
    sha, versions = _git_sha(), _versions()
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    toc = "".join(f'<a href="#{a}">{t}</a>' for a, t in (
        ("summary", "Summary"), ("workload", "1. Workload"), ("conditions", "2. Conditions"),
        ("flow", "3. Flow-control rate"), ("simulation", "4. Simulation"),
        ("verification", "5. Verification"), ("provenance", "6. Provenance")))
    header = (f'<header class="top"><h1>{H.esc(title)}</h1><div class="meta">Stability limits, a '
              f"flow-control rate with a guaranteed overflow bound, and a policy comparison for LLM "
              f"inference under a KV-cache memory limit (Dong &amp; Cao, arXiv:2604.11001) · "
              f"{H.esc(stamp)} · flowstab {H.esc(versions.get('flowstab', '?'))} · commit "
              f"<code>{H.esc(sha)}</code></div><nav class=\"toc\">{toc}</nav></header>")
    sections = [
        H.section("summary", "Summary", _summary_section(config, plan, sim, verification)),
        _workload_section(config, plan),
        _conditions_section(config, plan, tails),
        _flow_section(config, plan, tails),
        _sim_section(config, plan, sim),
        _verification_section(claims, verification),
    ]
    timings["layout"] = time.perf_counter() - t0
    sections.append(_provenance_section(config, timings, versions, sha, stamp))
    footer = ("<footer>Generated by <code>flowstab report</code>. One slot is one decode iteration. "
              "Self-contained: formulas typeset by matplotlib mathtext, figures embedded as images.</footer>")
    data = {
        "workload": wl.name,
        "memory_tokens": plan.memory_tokens,
        "plan": plan.to_dict(),
        "step_time": config.step_time.to_spec() if config.step_time is not None else None,
        "claims": list(claims),
        "simulation": None if sim is None else {
            "seeds": sim["seeds"], "slots": config.slots, "replications": config.replications,
            "runs": [{k: v for k, v in run.items() if k != "figure"} for run in sim["runs"]],
        },
        "verification": {k: v for k, v in verification.items()},
        "timings_s": timings,
        "git_sha": sha,
        "versions": versions,
    }
    data_json = json.dumps(_clean(data), default=str)
    return Report(H.page(title, header + "".join(sections) + footer, data_json), data, timings)


def write_report(config: ReportConfig, out_dir: str | os.PathLike, *, progress: bool = False) -> Path:
    """Build the report and write ``out_dir/report.html``; returns its path."""
    folder = check_out_dir(out_dir)
    report = build_report(config, progress=progress)
    path = folder / "report.html"
    try:
        path.write_text(report.html, encoding="utf-8")
    except OSError as exc:
        raise ReportOutputError(f"--out {folder}: cannot write report.html ({exc.strerror or exc})") from None
    return path
