r"""Checks of WAIT's results in :mod:`theory.policies` (Ao, Luo, Simchi-Levi & Wang, arXiv:2504.11320).

* ``thm:wait-no-eviction`` — Σ_{a<o}(s + a + 1) = w and Σ_k ⌊π_k M/E[W]⌋ w_k ≤ M (symbolic);
  WAIT runs with deterministic per-class lengths, overload included: the active memory never
  exceeds Σ_k n_k w_k ≤ M and nothing is evicted (property, hypothesis over 1–3 classes);
* ``prop:wait-stability`` — below min_k n_k/π_k the queues stay short, in the integrality gap
  and above M/E[W] they grow at the stated drift (empirical, Poisson arrivals; the false-alarm
  rate of each comparison is stated where it is made).

The rules and where they come from: docs/neighbours_wait.md.
"""

from __future__ import annotations

import math

import sympy as sp

import theory
from proofs_check import support as kit
from proofs_check.ledger import check

__all__: list[str] = []


# ------------------------------------------------------------------ thm:wait-no-eviction


@check("thm:wait-no-eviction", "symbolic", "the per-class memory time and Σ n_k w_k ≤ M")
def _no_eviction_symbolic(p, wait_thresholds=theory.wait_thresholds):
    s, o, a = sp.symbols("s o a", integer=True, nonnegative=True)
    held = sp.summation(s + a + 1, (a, 0, o - 1))
    kit.require(sp.simplify(held - (s * o + o * (o + 1) / 2)) == 0, f"Σ_a (s + a + 1) = {held}")
    # ⌊x⌋ ≤ x term by term: Σ_k n_k w_k ≤ Σ_k π_k M w_k / E[W] = M (E[W] = Σ π_k w_k), checked on
    # the registered thresholds over a grid of exact two- and three-class cases
    cases = 0
    for ws in ((155, 410), (55, 1200, 7), (3, 3), (1000, 20, 20)):
        for mix in ((sp.Rational(1, 2),) * 2, (sp.Rational(1, 5), sp.Rational(4, 5)),
                    (sp.Rational(1, 3),) * 3, (sp.Rational(1, 10), sp.Rational(3, 10), sp.Rational(3, 5))):
            if len(mix) != len(ws):
                continue
            ew = sum(m * w for m, w in zip(mix, ws, strict=True))
            for memory in (math.ceil(ew / min(mix)), 4000, 131072):
                n = wait_thresholds(mix, ws, memory)
                total = sum(k * w for k, w in zip(n, ws, strict=True))
                kit.require(all(k >= 1 for k in n) and total <= memory,
                            f"π {mix}, w {ws}, M {memory}: n {n}, Σ n_k w_k = {total} > M")
                cases += 1
    return (f"sympy: Σ_(a<o) (s + a + 1) = s·o + o(o + 1)/2; {cases} exact cases (M ≥ E[W]/min π_k): "
            "n_k ≥ 1 and Σ n_k w_k ≤ M")


@check("thm:wait-no-eviction", "property", "WAIT with deterministic lengths: U ≤ Σ n_k w_k ≤ M, no eviction",
       quick={"examples": 8, "slots": 300}, thorough={"examples": 80, "slots": 2000})
def _no_eviction_runs(p):
    import hypothesis.strategies as st

    from numerics.sim import SimConfig, parse_policy, simulate
    from numerics.sim.policies.wait import wait_thresholds

    def body(prompts, decodes, slack, load, seed):
        k = min(len(prompts), len(decodes))
        wl = kit.class_workload(prompts[:k], decodes[:k], [1.0] * k)
        w = [s * o + o * (o + 1) // 2 for s, o in zip(prompts[:k], decodes[:k], strict=True)]
        ew = sum(w) / k
        memory = math.ceil(ew * k * slack)  # π_k M / E[W] = slack ≥ 1 for every class
        n = wait_thresholds(wl, memory)
        cap = sum(a * b for a, b in zip(n, w, strict=True))
        kit.require(cap <= memory, f"Σ n_k w_k = {cap} > M = {memory}")
        cfg = SimConfig(wl, memory, parse_policy("wait"), slots=p["slots"], seed=seed,
                        arrival_rate=load * memory / ew)
        res = simulate(cfg, engine="python")
        peak = int(res.timeseries["kv_tokens"].max())
        kit.require(res.summary["evictions"] == 0 and peak <= cap,
                    f"s {prompts[:k]}, o {decodes[:k]}, M {memory}: peak {peak} > Σ n_k w_k = {cap} "
                    f"or {res.summary['evictions']} evictions")

    strategies = {"prompts": st.lists(st.integers(0, 40), min_size=1, max_size=3),
                  "decodes": st.lists(st.integers(1, 30), min_size=1, max_size=3),
                  "slack": st.floats(1.0, 6.0), "load": st.floats(0.3, 3.0),
                  "seed": st.integers(0, 2**32 - 1)}
    n = kit.run_property(body, strategies, p["examples"], shrink=False)
    return (f"{n} hypothesis runs of {p['slots']} slots (1–3 deterministic classes, π_k M/E[W] "
            "1–6, loads 0.3–3 λ_max): peak ≤ Σ n_k w_k ≤ M, 0 evictions")


# ------------------------------------------------------------------- prop:wait-stability


@check("prop:wait-stability", "empirical", "queues short below min n_k/π_k, growing in the gap and above",
       quick={"slots": 4000}, thorough={"slots": 20000})
def _stability_runs(p, wait_stability_rate=None):
    from numerics.sim.policies.wait import wait_thresholds

    rate_of = kit.numeric_twin(wait_stability_rate, "wait_stability_rate")
    slots = p["slots"]
    # two deterministic classes, a common prompt: S = 10, O = 5 or 20, equal mix; E[W] = 237.5,
    # M = 4000: n = (8, 8), λ_W = 16 < M/E[W] = 16.84
    wl = kit.class_workload([10, 10], [5, 20], [1.0, 1.0])
    memory = 4000
    n = wait_thresholds(wl, memory)
    lam_w = rate_of(wl, n)
    lam_fluid = memory / wl.mean_memory_time
    kit.require(lam_w <= lam_fluid, f"λ_W = {lam_w} > M/E[W] = {lam_fluid}")

    def queue(lam):
        res = kit.run_simulation(wl, memory, "wait", slots, kit.SEED, arrival_rate=lam, engine="python")
        q = res.timeseries["queue"]
        return int(q.iloc[-1]), int(q.max())

    # stable at 0.875 λ_W: each class a bulk-service queue with drift λπ_k − n_k = −1 per slot and
    # variance ≈ 7: P(max over the run > 150) ≤ slots·e^{−2x/7} < 1e-12 (Lundberg)
    _, peak = queue(0.875 * lam_w)
    kit.require(peak < 150, f"λ = {0.875 * lam_w}: queue reached {peak} below λ_W = {lam_w}")
    rows = [f"λ = {0.875 * lam_w:g}: max queue {peak}"]
    # above λ_W the final queue is A(T) − Σ n_k T: mean (λ − 16)T, sd √(λT); each threshold sits
    # ≥ 4.6 sd below its mean (false-alarm rate < 3e-6 per comparison)
    for lam in ((lam_w + lam_fluid) / 2, lam_fluid + 1.2):
        final, _ = queue(lam)
        mean, sd = (lam - lam_w) * slots, math.sqrt(lam * slots)
        kit.require(final > mean - 4.6 * sd, f"λ = {lam:.3f}: final queue {final} < {mean - 4.6 * sd:.0f}")
        rows.append(f"λ = {lam:.3f}: final queue {final} (drift mean {mean:.0f})")
    return (f"n = {n}, λ_W = {lam_w:g}, M/E[W] = {lam_fluid:.3f}, {slots} slots, seed {kit.SEED}: "
            + "; ".join(rows))
