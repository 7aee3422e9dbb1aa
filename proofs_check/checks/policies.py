r"""Checks of :mod:`theory.policies`: the policies beyond the paper, ``flowfit`` and ``lookahead``.

* ``thm:flowfit-no-drop`` — the fit count is the largest FIFO prefix that fits (property); runs of
  flowfit in the slot model under the per-slot invariant checker drop nothing on admission
  (property, hypothesis over workloads, memory, blocks, eviction modes, ``max_seqs``);
* ``thm:lookahead-no-drop`` — the same for lookahead (property);
* ``prop:flowfit-is-flow`` — flowfit and flow control with M beyond any use: identical runs for
  every budget law (empirical);
* ``bound:lookahead`` — the Chernoff factor against the exact tail of small Bernoulli sums by
  enumeration (symbolic, exact Rationals), and the policy's bound against the Monte-Carlo overflow
  frequency of random active sets (empirical, one-sided binomial test).

Only measured, never claimed here: throughput and latency against greedy and flow control.
"""

from __future__ import annotations

import itertools

import numpy as np
import sympy as sp

import theory
from proofs_check import support as kit
from proofs_check.ledger import check

__all__: list[str] = []

#: One-sided false-alarm rate of each Monte-Carlo comparison of ``bound:lookahead``.
MC_ALPHA = 1e-6


def _no_drop_body(spec_of, p):
    """A hypothesis body: one small slot-model run of ``spec_of(draw)`` under the invariant checker."""
    import hypothesis.strategies as st

    from numerics.model.specs import parse_law
    from numerics.model.workload import Workload
    from numerics.sim import SimConfig, parse_policy, simulate
    from numerics.sim.checks import InvariantChecker

    def body(prompt, decode, memory, block, eviction, seqs, rate, seed, knob):
        wl = Workload.single(parse_law(prompt), parse_law(decode))
        spec = spec_of(knob) + ("" if seqs is None else f",max_seqs={seqs}")
        cfg = SimConfig(wl, memory, parse_policy(spec), slots=p["slots"], arrival_rate=rate, seed=seed,
                        block_size=block, eviction=eviction)
        checker = InvariantChecker(fifo=True)
        res = simulate(cfg, check=checker, engine="python")
        checker.finish()
        drops = int(res.records["dropped_on_admission"].sum())
        kit.require(drops == 0 and res.summary["dropped_on_admission"] == 0,
                    f"{spec}, M = {memory}, b = {block}, {eviction}: {drops} drops on admission")

    strategies = {
        "prompt": st.sampled_from(["5", "uniform:1,30", "geom:mean=8,max=40"]),
        "decode": st.sampled_from(["10", "uniform:1,40", "geom:mean=15,max=80"]),
        "memory": st.integers(40, 1200), "block": st.sampled_from([1, 4, 16]),
        "eviction": st.sampled_from(["recompute", "keep-progress"]),
        "seqs": st.none() | st.integers(1, 8), "rate": st.floats(0.2, 3.0),
        "seed": st.integers(0, 2**32 - 1), "knob": st.floats(0.0, 1.0),
    }
    return body, strategies


# ------------------------------------------------------------------- thm:flowfit-no-drop


@check("thm:flowfit-no-drop", "property", "the fit count is the largest FIFO prefix that fits",
       quick={"examples": 200}, thorough={"examples": 3000})
def _fit_count_property(p, fit_admission_count=None):
    import hypothesis.strategies as st

    fit = kit.numeric_twin(fit_admission_count, "fit_admission_count")

    def body(usage, needs, memory, cap):
        k = fit(usage, needs, memory, cap)
        kit.require(k == 0 or usage + sum(needs[:k]) <= memory,
                    f"k = {k} does not fit: {usage}, {needs}, M {memory}")
        kit.require(k == cap or k == len(needs) or usage + sum(needs[:k + 1]) > memory,
                    f"k = {k} is not the largest: {usage}, {needs}, M {memory}, cap {cap}")

    strategies = {"usage": st.integers(0, 500), "needs": st.lists(st.integers(1, 200), max_size=8),
                  "memory": st.integers(0, 1500), "cap": st.integers(0, 9)}
    n = kit.run_property(body, strategies, p["examples"])
    return f"{n} hypothesis examples (usage, FIFO needs, M, cap): the count fits and is maximal"


@check("thm:flowfit-no-drop", "property", "flowfit runs in the slot model: no drop on admission",
       quick={"examples": 6, "slots": 200}, thorough={"examples": 60, "slots": 1000})
def _flowfit_no_drop(p):
    body, strategies = _no_drop_body(lambda x: f"flowfit:rate={0.2 + 3.8 * x!r}", p)
    n = kit.run_property(body, strategies, p["examples"], shrink=False)
    return (f"{n} hypothesis runs of {p['slots']} slots (M 40–1200, blocks 1/4/16, both eviction "
            "modes, max_seqs), InvariantChecker every slot: 0 drops on admission")


# ----------------------------------------------------------------- thm:lookahead-no-drop


@check("thm:lookahead-no-drop", "property", "lookahead runs in the slot model: no drop on admission",
       quick={"examples": 5, "slots": 150}, thorough={"examples": 50, "slots": 800})
def _lookahead_no_drop(p):
    body, strategies = _no_drop_body(lambda x: f"lookahead:target={1e-4 + 0.5 * x!r}", p)
    n = kit.run_property(body, strategies, p["examples"], shrink=False)
    return (f"{n} hypothesis runs of {p['slots']} slots (M 40–1200, blocks 1/4/16, both eviction "
            "modes, max_seqs, targets 1e-4–0.5), InvariantChecker every slot: 0 drops on admission")


# ------------------------------------------------------------------- prop:flowfit-is-flow


@check("prop:flowfit-is-flow", "empirical", "flowfit and flow with memory never binding: identical runs",
       quick={"slots": 400}, thorough={"slots": 4000})
def _flowfit_is_flow(p):
    import pandas as pd

    from numerics.model.specs import parse_law
    from numerics.model.workload import Workload

    wl = Workload.single(parse_law("uniform:1,20"), parse_law("uniform:1,30"))
    rows = []
    for budget, rate in (("randomized", "1.7"), ("poisson", "1.7"), ("deterministic", "2")):
        runs = [kit.run_simulation(wl, 10**7, f"{name}:rate={rate},budget={budget}", p["slots"], kit.SEED,
                                   arrival_rate=1.5, engine="python") for name in ("flow", "flowfit")]
        same = runs[0].records.equals(runs[1].records) and runs[0].timeseries.equals(runs[1].timeseries)
        if not same:
            diff = pd.concat([runs[0].records, runs[1].records]).drop_duplicates(keep=False)
            kit.require(False, f"{budget}: flow and flowfit differ in {len(diff)} record rows")
        rows.append(f"{budget} r = {rate}: {int(runs[0].summary['completed'])} completions, identical")
    return f"M = 10⁷, λ = 1.5, {p['slots']} slots, seed {kit.SEED}: " + "; ".join(rows)


# ------------------------------------------------------------------------ bound:lookahead


@check("bound:lookahead", "symbolic", "the Chernoff factor ≥ the exact tail of Bernoulli sums (enumeration)",
       quick={"sets": 4}, thorough={"sets": 40})
def _chernoff_exact(p, lookahead_chernoff=theory.lookahead_chernoff):
    rng = np.random.default_rng(kit.SEED)
    rows = 0
    for _ in range(p["sets"]):
        k = int(rng.integers(2, 8))
        probs = [sp.Rational(int(rng.integers(1, 20)), 20) for _ in range(k)]
        costs = [int(rng.integers(1, 30)) for _ in range(k)]
        for memory in (int(sum(costs) * f) for f in (0.3, 0.5, 0.8)):
            exact = sp.Integer(0)
            for bits in itertools.product((0, 1), repeat=k):
                if sum(b * c for b, c in zip(bits, costs, strict=True)) > memory:
                    term = sp.Integer(1)
                    for b, q in zip(bits, probs, strict=True):
                        term *= q if b else 1 - q
                    exact += term
            for theta in (0, sp.Rational(1, 20), sp.Rational(1, 5), 1):
                bound = lookahead_chernoff(probs, costs, memory, theta)
                kit.require(sp.N(bound - exact, 30) >= 0,
                            f"θ = {theta}: bound {sp.N(bound, 8)} < exact tail {exact} (p {probs}, "
                            f"c {costs}, M {memory})")
                rows += 1
    return f"{rows} (set, M, θ) cases, exact Rationals and 30-digit evaluation: bound ≥ exact tail"


def _mc_overflow(rng, laws, s, g, cls, memory, horizon, n, block):
    """Frequency count of max_{1≤h≤H} U_{t+h} > M over n futures, O_i drawn given O_i > g_i."""
    o = np.empty((n, len(s)), dtype=np.int64)
    for i, (k, gi) in enumerate(zip(cls, g, strict=True)):
        law = laws[k]
        keep = law.values > gi
        pr = law.probs[keep]
        o[:, i] = rng.choice(law.values[keep], size=n, p=pr / pr.sum())
    over = np.zeros(n, dtype=bool)
    for h in range(1, horizon + 1):
        tokens = -(-(s + g + h + 1) // block) * block
        over |= ((o > g + h) * tokens).sum(axis=1) > memory
    return int(over.sum())


@check("bound:lookahead", "empirical", "the policy's bound ≥ Monte-Carlo overflow of random active sets",
       quick={"sets": 40, "n": 2000}, thorough={"sets": 400, "n": 20000})
def _bound_vs_monte_carlo(p):
    from scipy import stats

    from numerics.model.specs import parse_law
    from numerics.sim.policies.lookahead import _grid, _sf_table, overflow_bound

    rng = np.random.default_rng(kit.SEED)
    laws = [parse_law("uniform:1,60"), parse_law("geom:mean=25,max=200")]
    sf = _sf_table(laws)
    n, tested, ratios = p["n"], 0, []
    for i in range(p["sets"]):
        block = (1, 1, 4, 16)[i % 4]
        k = int(rng.integers(3, 25))
        cls = rng.integers(0, 2, k)
        s = rng.integers(0, 40, k)
        g = np.array([int(rng.integers(0, 59 if c == 0 else 120)) for c in cls])
        horizon = int(rng.integers(5, 120))
        held = -(-(s + g + 1) // block) * block
        for memory in (int(held.sum() * f) for f in (1.0, 1.2, 1.5)):
            b = overflow_bound(s, held - s - 1, cls, sf, memory, _grid(horizon), block)
            if not 0.01 < b < 0.95:
                continue
            hits = _mc_overflow(rng, laws, s, g, cls, memory, horizon, n, block)
            limit = stats.binom.ppf(1 - MC_ALPHA, n, b)
            kit.require(hits <= limit, f"bound {b:.4f} < Monte-Carlo overflow {hits}/{n} (k {k}, b {block}, "
                        f"M {memory}, H {horizon})")
            tested += 1
            ratios.append(hits / n / b)
    kit.require(tested > 0, "no active set with an informative bound was drawn (raise `sets`)")
    return (f"{tested} random active sets (two classes, blocks 1/4/16, H 5–119), {n} futures each, seed "
            f"{kit.SEED}: overflow frequency ≤ bound (one-sided binomial, false alarm {MC_ALPHA:g} each); "
            f"frequency/bound median {np.median(ratios):.2f}")
