r"""Checks of :mod:`theory.conditions`: the necessary condition, hard cap, heavy tails, Algorithm 1.

* ``prop:necessary`` — pathwise Σ_completed W_i ≤ Σ_t U_t ≤ M·T under every policy (property);
  above λ_max the queue grows linearly (empirical, simulator);
* ``cor:lambda-max`` — Dong & Cao §4.1's λ* exactly (symbolic); numeric λ_max = M/E[W] and the
  condition holds iff ρ ≤ 1 (property);
* ``cond:hard-cap`` — P(S + O > M) exactly (symbolic); oversized requests never complete
  (empirical);
* ``cor:heavy-tail`` — Zipf(a) has E[O²] = ∞ iff a ≤ 3 (symbolic, property);
* ``thm:alg1-safe`` — Σ b_k w_k = 16240 ≤ 16492 (symbolic); the simulated saturated peak equals
  Σ b_k w_k (empirical, property);
* ``thm:alg1-stable`` — the integrality gap of §4.1 (symbolic); queues follow the Lindley
  recursion (property); stable at λ = 3, growing inside the gap (empirical).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import sympy as sp

import theory
from proofs_check import support as kit
from proofs_check.ledger import ClaimViolated, check

__all__: list[str] = []

# Dong & Cao §4.1 (docs/theory.md §1.5): three classes (l, o) = (10, 20), (10, 40), (10, 60).
DONG_PROMPTS = (10, 10, 10)
DONG_DECODES = (20, 40, 60)
DONG_M = 16492
DONG_BUDGETS = (4, 4, 4)


# ------------------------------------------------------------------------- prop:necessary


@check("prop:necessary", "property",
       "pathwise: memory-time of completed requests ≤ Σ_t U_t ≤ M·T, any policy",
       quick={"examples": 10, "slots": 600}, thorough={"examples": 150, "slots": 3000})
def _necessary_property(p):
    import hypothesis.strategies as st
    from hypothesis import target

    def body(s, o_hi, m_mult, rho, policy):
        wl = kit.single_workload(s, f"uniform:1,{o_hi}")
        w_mean = wl.mean_memory_time
        memory = int((s + o_hi) * m_mult)
        lam = rho * memory / w_mean
        target(-abs(rho - 1.0))  # toward the boundary λ·E[W] = M
        spec = {"flow": f"flow:rate={max(lam * 0.9, 0.05):.4f}", "greedy": "greedy:watermark=0",
                "alpha": "alpha:0.1"}[policy]
        res = kit.run_simulation(wl, memory, spec, p["slots"], seed=kit.SEED, arrival_rate=lam)
        rec = res.records
        done = rec[rec.completion_slot >= 0]
        consumed = float((done.prompt * done.decode + done.decode * (done.decode + 1) / 2).sum())
        area = float(res.timeseries.kv_tokens.sum())
        peak = int(res.timeseries.kv_tokens.max())
        if not (consumed <= area <= memory * p["slots"] and peak <= memory):
            raise ClaimViolated(f"{policy}: Σ W_i = {consumed:.0f}, Σ U_t = {area:.0f}, "
                                f"M·T = {memory * p['slots']}, peak {peak} (M = {memory})")

    strategies = {
        "s": st.integers(0, 20), "o_hi": st.integers(1, 30), "m_mult": st.integers(2, 8),
        "rho": st.floats(0.3, 2.0), "policy": st.sampled_from(["flow", "greedy", "alpha"]),
    }
    n = kit.run_property(body, strategies, p["examples"])
    return (f"{n} random workloads × policies (flow, greedy, α-protection), λ = ρ·M/E[W] with ρ "
            f"∈ [0.3, 2] targeted at 1, {p['slots']} slots: Σ_completed W_i ≤ Σ_t U_t ≤ M·T and "
            "U_t ≤ M in every run (so no policy completes more than M/E[W] per slot)")


@check("prop:necessary", "empirical", "above λ_max queues grow linearly under every policy",
       quick={"slots": 8000}, thorough={"slots": 40000})
def _necessary_empirical(p, necessary_condition=theory.necessary_condition):
    # deterministic lengths: completions·W ≤ Σ U_t ≤ M·T pathwise, so the backlog grows at least
    # at λ − M/W; the regression slope of the queue must be positive and near that.
    s, o, memory = 20, 40, 20_000
    w = s * o + o * (o + 1) // 2
    lam_max = memory / w
    lam = 1.25 * lam_max
    holds = bool(necessary_condition([sp.Rational(lam).limit_denominator(10**6)], [w], memory))
    if holds:
        raise ClaimViolated(f"the condition says λ = {lam:.3f} with E[W] = {w} fits M = {memory}, "
                            "yet it is 25 % above M/E[W]")
    wl = kit.single_workload(s, str(o))
    rows = []
    for spec in ("greedy:watermark=0", f"flow:rate={lam_max:.4f}", "alpha:0.1", "reserve"):
        res = kit.run_simulation(wl, memory, spec, p["slots"], kit.SEED, arrival_rate=lam,
                                 warmup=p["slots"] // 2)
        slope = res.summary["queue_slope"]
        # Poisson noise on a regression slope over T/2 slots: sd ≈ √(12 λ / (T/2)^3)·(T/2)/√… —
        # far below the 50 % margin used here (λ − λ_max = 0.25 λ_max)
        kit.require(slope >= 0.5 * (lam - lam_max),
                    f"{spec}: queue slope {slope:.4f}/slot above λ_max, expected ≥ "
                    f"{0.5 * (lam - lam_max):.4f}")
        rows.append(f"{spec.split(':')[0]} {slope:.3f}")
    return (f"(s, o) = ({s}, {o}), M = {memory}, λ = 1.25·λ_max = {lam:.3f}/slot, seed {kit.SEED}, "
            f"{p['slots']} slots: queue slopes {', '.join(rows)} per slot vs the bound "
            f"λ − λ_max = {lam - lam_max:.3f} (accepted above half of it)")


# ------------------------------------------------------------------------- cor:lambda-max


@check("cor:lambda-max", "symbolic", "Dong & Cao §4.1: λ* = 16492/4060 = 4.062069")
def _lambda_max_symbolic(p, lambda_max=theory.lambda_max):
    w = [theory.memory_time(s, o) for s, o in zip(DONG_PROMPTS, DONG_DECODES, strict=True)]
    kit.require(w == [410, 1220, 2430], f"w = {w}, docs/theory.md §1.5 says (410, 1220, 2430)")
    lam = lambda_max(DONG_M, sum(w))  # equal mix: per class M / Σ w_k
    kit.require(lam == sp.Rational(16492, 4060), f"λ* = {lam}, expected 16492/4060")
    kit.require(round(float(lam), 6) == 4.062069, f"λ* = {float(lam)}")
    return f"w = (410, 1220, 2430), Σ = 4060, λ* = {lam} = {float(lam):.6f} (docs/theory.md §1.5, exact)"


@check("cor:lambda-max", "property", "λ_max = M/E[W] (numeric) at random workloads; above it the "
       "necessary condition fails", quick={"examples": 12}, thorough={"examples": 400})
def _lambda_max_property(p, lambda_max=theory.lambda_max):
    import hypothesis.strategies as st
    from hypothesis import target

    import numerics

    def body(s, lo, width, m, rho):
        ew = theory.mean_memory_time("uniform", mean_prompt=s, low=lo, high=lo + width)
        lam = lambda_max(m, ew)
        num = numerics.lambda_max(kit.single_workload(s, f"uniform:{lo},{lo + width}"), m)
        if not math.isclose(num, float(lam), rel_tol=1e-9):  # float evaluation of the formula
            raise ClaimViolated(f"numeric λ_max {num} vs symbolic {lam}")
        rate = lam * kit.rational(rho)
        target(-abs(float(rho) - 1))
        holds = bool(theory.necessary_condition([rate], [ew], m))
        if holds != (rho <= 1):
            raise ClaimViolated(f"ρ = {rho}: λ = ρ·λ_max gives necessary condition {holds}")

    strategies = {"s": st.integers(0, 200), "lo": st.integers(1, 50), "width": st.integers(0, 200),
                  "m": st.integers(1, 100_000),
                  "rho": st.fractions(Fraction(1, 100), 2, max_denominator=100)}
    n = kit.run_property(body, strategies, p["examples"])
    return f"{n} random uniform workloads: numeric λ_max equals M/E[W], and λ = ρλ_max meets " \
           "Prop. 3.2 iff ρ ≤ 1 (exact Rationals)"


# -------------------------------------------------------------------------- cond:hard-cap


@check("cond:hard-cap", "symbolic", "P(S + O > M) exactly for a finite law")
def _hard_cap_symbolic(p, hard_cap_violation=theory.hard_cap_violation):
    law = [((5, o), sp.Rational(1, 10)) for o in range(1, 11)]
    got = hard_cap_violation(law, 12)
    kit.require(got == sp.Rational(3, 10), f"P(5 + U{{1..10}} > 12) = {got}, expected 3/10")
    return "S = 5, O ~ U{1..10}, M = 12: P(S + O > M) = 3/10 exactly (O ∈ {8, 9, 10})"


@check("cond:hard-cap", "empirical", "requests with S + O > M never complete; the backlog grows",
       quick={"slots": 3000}, thorough={"slots": 30000})
def _hard_cap_empirical(p, hard_cap_violation=theory.hard_cap_violation):
    memory = 12
    law = [((5, o), sp.Rational(1, 10)) for o in range(1, 11)]
    prob = hard_cap_violation(law, memory)
    if prob == 0:
        raise ClaimViolated("hard cap reports no violating mass, yet O ∈ {8, 9, 10} exceeds M − S")
    wl = kit.single_workload(5, "uniform:1,10")
    rows = []
    for spec in ("greedy:watermark=0", "flow:rate=0.02"):
        res = kit.run_simulation(wl, memory, spec, p["slots"], kit.SEED, arrival_rate=0.02)
        rec = res.records
        big_done = int(((rec.prompt + rec.decode > memory) & (rec.completion_slot >= 0)).sum())
        kit.require(big_done == 0, f"{spec}: {big_done} requests with S + O > M completed")
        stuck = res.summary["waiting_end"] + res.summary["active_end"]
        kit.require(stuck >= 1, f"{spec}: nothing left unfinished although P(S+O>M) = {prob}")
        rows.append(f"{spec.split(':')[0]}: 0 oversized completions, {stuck} unfinished")
    return (f"S = 5, O ~ U{{1..10}}, M = 12, λ = 0.02/slot, {p['slots']} slots, seed {kit.SEED}: "
            + "; ".join(rows) + " (deterministic invariant: an oversized request blocks forever)")


# ------------------------------------------------------------------------- cor:heavy-tail


@check("cor:heavy-tail", "symbolic", "Zipf(a): Σ o^(2−a) diverges for a ≤ 3, converges above")
def _heavy_tail_symbolic(p, heavy_tail_no_stable_rate=theory.heavy_tail_no_stable_rate):
    cases = {sp.Rational(5, 2): True, sp.Integer(3): True, sp.Rational(7, 2): False,
             sp.Integer(4): False}
    for a_param, expected in cases.items():
        got = heavy_tail_no_stable_rate(a_param)
        kit.require(got is expected, f"a = {a_param}: no-stable-rate = {got}, expected {expected}")
    return "sympy is_convergent: E[O²] = Σ o^(2−a)/ζ(a) = ∞ for a ∈ {5/2, 3} (no stable λ), " \
           "finite for a ∈ {7/2, 4}"


@check("cor:heavy-tail", "property", "sympy's verdict matches the p-series rule a ≤ 3 at random a",
       quick={"examples": 20}, thorough={"examples": 300})
def _heavy_tail_property(p, heavy_tail_no_stable_rate=theory.heavy_tail_no_stable_rate):
    import hypothesis.strategies as st
    from hypothesis import target

    def body(a):
        target(-abs(float(a) - 3))  # the boundary a = 3
        sym = heavy_tail_no_stable_rate(kit.rational(a))
        expected = a <= 3  # Σ o^(2−a) is a p-series with exponent a − 2: finite iff a − 2 > 1
        if sym is not expected:
            raise ClaimViolated(f"Zipf(a = {a}): no-stable-rate = {sym}, p-series rule says "
                                f"{expected}")

    n = kit.run_property(body, {"a": st.fractions(Fraction(11, 10), 6, max_denominator=20)},
                         p["examples"])
    return f"{n} Zipf exponents a ∈ [1.1, 6] targeted at a = 3: sympy's convergence verdict on " \
           "E[O²] = Σ o^(2−a)/ζ(a) equals the p-series rule (no stable rate iff a ≤ 3); the numeric " \
           "twin is compared in tests/test_twins.py"


# ------------------------------------------------------------------------- thm:alg1-safe


@check("thm:alg1-safe", "symbolic", "Dong & Cao §4.1: Σ b_k w_k = 16240 ≤ 16492")
def _alg1_safe_symbolic(p, alg1_peak_memory=theory.alg1_peak_memory):
    peak = alg1_peak_memory(DONG_BUDGETS, DONG_PROMPTS, DONG_DECODES)
    kit.require(peak == 16240, f"Σ b_k w_k = {peak}, expected 16240 (Concourse.jl reproduction)")
    kit.require(bool(theory.alg1_memory_safe(DONG_BUDGETS, DONG_PROMPTS, DONG_DECODES, DONG_M)),
                "16240 ≤ 16492 not recognised")
    return "Σ_k b_k Σ_{j≤o_k}(l_k + j) = 16240 ≤ M = 16492 (sympy summation; Concourse.jl 16240)"


@check("thm:alg1-safe", "empirical", "simulated §4.1 peak equals Σ b_k w_k exactly, no overflow",
       quick={"slots": 400}, thorough={"slots": 5000})
def _alg1_safe_empirical(p, alg1_peak_memory=theory.alg1_peak_memory):
    expected = int(alg1_peak_memory(DONG_BUDGETS, DONG_PROMPTS, DONG_DECODES))
    wl = kit.class_workload(DONG_PROMPTS, DONG_DECODES, (5, 5, 5))  # λ = 5 > b = 4: saturated
    res = kit.run_simulation(wl, DONG_M, "budgets:4,4,4", p["slots"], kit.SEED)
    peak = int(res.timeseries.kv_tokens.max())
    ev = int(res.timeseries.evictions.sum())
    kit.require(peak == expected and ev == 0,
                f"simulated peak {peak} (evictions {ev}) vs Σ b_k w_k = {expected}")
    return (f"§4.1 (λ = 5 per class, b = (4,4,4), M = 16492), {p['slots']} slots, seed {kit.SEED}: "
            f"simulated peak {peak} = Σ b_k w_k, 0 evictions (deterministic once saturated)")


@check("thm:alg1-safe", "property", "random classes: saturated peak = Σ b_k w_k, never > M",
       quick={"examples": 10}, thorough={"examples": 150})
def _alg1_safe_property(p, alg1_peak_memory=theory.alg1_peak_memory):
    import hypothesis.strategies as st
    from hypothesis import target

    def body(classes, extra):
        b = [c[0] for c in classes]
        prompts = [c[1] for c in classes]
        decodes = [c[2] for c in classes]
        peak = int(alg1_peak_memory(b, prompts, decodes))
        memory = max(peak, max(s + o for s, o in zip(prompts, decodes, strict=True))) + extra
        target(-float(extra))  # tight memory
        wl = kit.class_workload(prompts, decodes, [bk + 1.5 for bk in b])  # λ_k > b_k: saturated
        slots = 3 * max(decodes) + 10
        res = kit.run_simulation(wl, memory, "budgets:" + ",".join(map(str, b)), slots, kit.SEED)
        tail = res.timeseries.kv_tokens.to_numpy()[2 * max(decodes):]
        ev = int(res.timeseries.evictions.sum())
        if ev or tail.max() != peak or res.timeseries.kv_tokens.max() > memory:
            raise ClaimViolated(f"classes {classes}: simulated peak {tail.max()} (evictions {ev}), "
                                f"Σ b_k w_k = {peak}, M = {memory}")

    cls = st.tuples(st.integers(1, 4), st.integers(0, 20), st.integers(1, 25))
    strategies = {"classes": st.lists(cls, min_size=1, max_size=3), "extra": st.integers(0, 50)}
    n = kit.run_property(body, strategies, p["examples"])
    return f"{n} random class sets (≤ 3 classes, b ≤ 4, l ≤ 20, o ≤ 25), M = Σ b_k w_k + extra " \
           "targeted at 0: the saturated simulated peak equals Σ b_k w_k exactly, no evictions"


# ------------------------------------------------------------------------ thm:alg1-stable


@check("thm:alg1-stable", "symbolic", "integrality gap of §4.1: stable iff λ < 4 though λ* = 4.062")
def _alg1_stable_symbolic(p, alg1_stable=theory.alg1_stable):
    lam = sp.Symbol("lambda", positive=True)
    w_sum = sum(theory.memory_time(s, o) for s, o in zip(DONG_PROMPTS, DONG_DECODES, strict=True))
    b_best = sp.floor(sp.Rational(DONG_M, w_sum))  # largest symmetric integer budget
    kit.require(b_best == 4, f"largest symmetric budget {b_best}, expected 4")
    ok_below = bool(alg1_stable(DONG_BUDGETS, [sp.Rational(399, 100)] * 3, DONG_PROMPTS,
                                DONG_DECODES, DONG_M))
    ok_gap = bool(alg1_stable([5, 5, 5], [sp.Rational(401, 100)] * 3, DONG_PROMPTS, DONG_DECODES,
                              DONG_M))
    kit.require(ok_below, "Thm 3.3 rejects λ = 3.99 with b = 4")
    kit.require(not ok_gap, "b = 5 accepted although 5·4060 > 16492")
    drift = sp.Piecewise((3 * (lam - 4), lam > 4), (0, True))
    gap = sp.Rational(DONG_M, w_sum) - b_best
    return (f"⌊16492/4060⌋ = 4: Thm 3.3 holds at λ = 3.99 (b = 4) and no integer budget covers "
            f"λ ∈ [4, 4.062); gap λ* − 4 = {gap} = {float(gap):.4f}; backlog drift {drift}")


@check("thm:alg1-stable", "property", "per-class queues equal the Lindley recursion slot by slot",
       quick={"examples": 10, "slots": 400}, thorough={"examples": 150, "slots": 3000})
def _alg1_lindley_property(p, alg1_stable=theory.alg1_stable):
    import hypothesis.strategies as st
    from hypothesis import target

    def body(classes, rhos):
        rhos = (rhos * len(classes))[: len(classes)]
        b = [c[0] for c in classes]
        prompts = [c[1] for c in classes]
        decodes = [c[2] for c in classes]
        rates = [bk * float(r) for bk, r in zip(b, rhos, strict=True)]
        target(-max(abs(float(r) - 1) for r in rhos))
        memory = int(theory.alg1_peak_memory(b, prompts, decodes)) + max(
            s + o for s, o in zip(prompts, decodes, strict=True))
        wl = kit.class_workload(prompts, decodes, rates)
        res = kit.run_simulation(wl, memory, "budgets:" + ",".join(map(str, b)), p["slots"], kit.SEED)
        rec = res.records
        total = np.zeros(p["slots"], dtype=np.int64)
        for k, bk in enumerate(b):
            arr = np.bincount(rec.arrival_slot[rec.cls == k], minlength=p["slots"])[: p["slots"]]
            q = 0
            for t in range(p["slots"]):
                q = max(q + int(arr[t]) - bk, 0)
                total[t] += q
        sim_q = res.timeseries.queue.to_numpy()
        if not np.array_equal(total, sim_q):
            t = int(np.argmax(total != sim_q))
            raise ClaimViolated(f"slot {t}: simulated queue {sim_q[t]} vs Lindley {total[t]}")
        stable = bool(alg1_stable(b, [kit.rational(x).limit_denominator(10**6) for x in rates], prompts,
                                  decodes, memory))
        if stable != all(float(r) < 1 for r in rhos):
            raise ClaimViolated(f"Thm 3.3 says stable={stable} for ρ = {rhos}")

    cls = st.tuples(st.integers(1, 4), st.integers(0, 15), st.integers(1, 20))
    strategies = {"classes": st.lists(cls, min_size=1, max_size=3),
                  "rhos": st.lists(st.fractions(Fraction(1, 10), Fraction(6, 5), max_denominator=20),
                                   min_size=1, max_size=3)}
    n = kit.run_property(body, strategies, p["examples"])
    return (f"{n} random class sets, λ_k = ρ_k b_k with ρ ∈ [0.1, 1.2] targeted at 1, "
            f"{p['slots']} slots: the total queue equals Σ_k Lindley (Q + A_k − b_k)^+ in every "
            "slot, and Thm 3.3's verdict is b_k > λ_k")


@check("thm:alg1-stable", "empirical", "§4.1: λ = 3 stable (E[Q] ≈ 3·0.8009); λ = 4.05 < λ* grows",
       quick={"slots": 10000}, thorough={"slots": 100000})
def _alg1_stable_empirical(p, alg1_stable=theory.alg1_stable):
    from numerics.chains.queues import activation_queue

    slots = p["slots"]
    per_class = activation_queue(3.0, "deterministic", 4).mean  # exact chain: 0.8009
    res = kit.run_simulation(kit.class_workload(DONG_PROMPTS, DONG_DECODES, (3, 3, 3)), DONG_M,
                             "budgets:4,4,4", slots, kit.SEED, warmup=1000)
    q = res.timeseries.queue.to_numpy()[1000:].astype(float)
    mean, se = kit.batch_means(q, 40)
    z = kit.require_z(mean, 3 * per_class, se, f"λ = 3: mean queue {mean:.3f} vs 3·{per_class:.4f}")
    lam = 4.05  # inside the integrality gap: meets Prop. 3.2 (4.05·4060 < 16492), b = 4 < λ
    stable = bool(alg1_stable(DONG_BUDGETS, [sp.Rational(405, 100)] * 3, DONG_PROMPTS,
                              DONG_DECODES, DONG_M))
    kit.require(not stable, "Thm 3.3 accepts λ = 4.05 > b = 4")
    res = kit.run_simulation(kit.class_workload(DONG_PROMPTS, DONG_DECODES, (lam,) * 3), DONG_M,
                             "budgets:4,4,4", slots, kit.SEED + 1)
    q_end = int(res.timeseries.queue.iloc[-1])
    # Q_T ≥ free walk S_T = Σ(A − b) pathwise; S_T has mean 3(λ − 4)T and sd √(3λT)
    drift, sd = 3 * (lam - 4) * slots, math.sqrt(3 * lam * slots)
    kit.require(q_end >= drift - kit.Z * sd,
                f"λ = 4.05: queue {q_end} after {slots} slots, free walk ≥ {drift - kit.Z * sd:.0f}")
    return (f"seed {kit.SEED}, {slots} slots: λ = 3, b = 4 mean total queue {mean:.3f} ± {se:.3f} vs "
            f"3 × {per_class:.4f} (exact chain) ({z:+.2f} s.e., {kit.FA_TEXT}); λ = 4.05 (< λ* = "
            f"4.062, > b = 4): queue {q_end} ≥ drift 3(λ−4)T − 4 sd = {drift - kit.Z * sd:.0f} "
            "(one-sided false alarm 3e-5): the integrality gap is real")
