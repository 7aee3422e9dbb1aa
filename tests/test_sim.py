"""The slot simulator: exact invariants every slot, exact identities, and statistics against theory.

Three kinds of test (STYLE.md §9):

* **invariants under hypothesis** — random small workloads, memories, block sizes, eviction modes,
  requeue positions and every policy, run with :class:`~numerics.sim.checks.InvariantChecker`
  (request and token conservation, memory from scratch, usage ≤ M, LIFO, FIFO, causality), then
  the per-request records are checked against the slot semantics, and same seed ⇒ same output;
* **exact identities** — Algorithm 1 on Dong & Cao §4.1 (peak memory Σ b_k w_k = 16240, per-class
  Lindley recursion slot for slot), the Lindley recursion of flow control with a deterministic
  budget, and the memory of a saturated deterministic workload in paged blocks;
* **statistical tests** — batch means after warm-up compared with theory; each test states its
  two-sided false-alarm rate.

The statistical runs use the Python engine (``engine="python"``): it is the reference semantics;
``tests/test_sim_fast.py`` checks that the compiled twin reproduces it exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from scipy import stats

from numerics.analysis.flow import flow_saturated_mean, flow_saturated_variance
from numerics.analysis.plan import make_plan
from numerics.errors import SpecError, WorkloadError
from numerics.model.specs import parse_law
from numerics.model.workload import JointLengths, RequestClass, Workload
from numerics.sim import Policy, SimConfig, parse_policy, simulate
from numerics.sim.checks import InvariantChecker

# ---------------------------------------------------------------------------------------------
# Tolerances and reference values (each with its reason / provenance)

#: Two-sided false-alarm rate of each batch-means t-test below.
ALPHA = 1e-4
#: Batches per run. The batches below are ≥ 1500 slots, over 20× the integrated autocorrelation
#: time of the series tested (≈ 65 slots for the saturated memory, ≈ 5 for the bulk queue), so
#: batch means are close to independent and the t-statistic has N_BATCHES − 1 degrees of freedom.
N_BATCHES = 20
#: Student-t critical value for ALPHA with N_BATCHES − 1 df (≈ 4.9).
T_CRIT = float(stats.t.ppf(1 - ALPHA / 2, N_BATCHES - 1))

#: Dong & Cao §4.1 (docs/theory.md §1.5, quoted by the Concourse.jl reproduction): three classes
#: (l, o) = (10, 20), (10, 40), (10, 60), λ = 5 per class per slot, M = 16492, b = (4, 4, 4).
DONG_LO = ((10, 20), (10, 40), (10, 60))
DONG_M = 16492
DONG_B = (4, 4, 4)
DONG_W = (410, 1220, 2430)  # w_k = l·o + o(o+1)/2 (docs/theory.md §1.5 / §9 item 1)
DONG_PEAK = 16240  # Σ b_k w_k (docs/theory.md §1.5; Concourse checks this peak exactly)

#: E[Q] of Q_t = (Q_{t−1} + A_t − 4)^+ with A ~ Poisson(3): docs/theory.md §8.3 (power iteration,
#: matching the Concourse.jl reproduction); re-derived in ``test_bulk_service_reference_value``.
BULK_EQ = 0.8009
#: The reference is quoted to 4 decimals: it may differ from the exact value by half a unit.
BULK_EQ_ROUNDING = 5e-5

#: Relative error of a ratio of integers computed once in float64 (and multiplied back).
FLOAT_REL = 1e-12

#: Overflow target for the flow-control rate in the no-eviction test: with T slots the chance of
#: any eviction is ≤ T·ε (union bound over slots; below saturation the memory is pathwise below
#: the saturated memory that the plan's bound covers, docs/theory.md §8.2).
PLAN_EPSILON = 1e-8


# ---------------------------------------------------------------------------------------------
# Helpers


def _run(cfg: SimConfig, check=None):
    """One run on the Python engine (the reference), with an optional per-slot ``check``."""
    return simulate(cfg, check=check, engine="python")


def _blocks(tokens, block: int):
    return -(-np.asarray(tokens) // block) * block


def _batch_t(x: np.ndarray, target: float) -> float:
    """t-statistic of the batch means of x against ``target``."""
    n = x.size // N_BATCHES * N_BATCHES
    means = x[:n].reshape(N_BATCHES, -1).mean(axis=1)
    return float((means.mean() - target) / (means.std(ddof=1) / math.sqrt(N_BATCHES)))


def _lindley(arrivals: np.ndarray, budget: int) -> np.ndarray:
    """Q_t = (Q_{t−1} + A_t − b)^+ with Q_{−1} = 0: the queue after this slot's activations."""
    q = np.zeros(arrivals.size, dtype=np.int64)
    prev = 0
    for t, a in enumerate(arrivals):
        prev = max(prev + int(a) - budget, 0)
        q[t] = prev
    return q


def _same_summary(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    for k in a:
        x, y = a[k], b[k]
        both_nan = isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y)
        if not both_nan and x != y:
            return False
    return True


def _support_bound(models, block: int) -> int:
    """Σ_a max_{(s, o): o > a} m(s + a + 1) over the support of the given length models.

    A request activated a slots ago holds m(S + a + 1) while O > a. One slot's activation of a
    single request drawn from any of the models therefore contributes at most this much memory,
    summed over its life: the bound on what each unit of activation budget can ever hold.
    """
    pairs = []
    for lengths in models:
        if isinstance(lengths, JointLengths):
            pairs += zip(lengths.prompt_values.tolist(), lengths.decode_values.tolist(), strict=True)
        else:  # S ⊥ O: the largest prompt goes with every decode length
            pairs.append((int(lengths.max_prompt), int(lengths.max_decode)))
    o_max = max(o for _, o in pairs)
    return sum(
        int(_blocks(max(s for s, o in pairs if o > a) + a + 1, block)) for a in range(o_max)
    )


# ---------------------------------------------------------------------------------------------
# Strategies (built, never filtered)

prompt_specs = st.one_of(
    st.integers(0, 24).map(str),
    st.tuples(st.integers(0, 12), st.integers(0, 12)).map(
        lambda p: f"uniform:{min(p)},{max(p)}"
    ),
    st.tuples(st.integers(1, 8), st.integers(1, 30)).map(lambda p: f"geom:mean={p[0]},max={p[1]}"),
)
decode_specs = st.one_of(
    st.integers(1, 24).map(str),
    st.tuples(st.integers(1, 12), st.integers(1, 24)).map(
        lambda p: f"uniform:{min(p)},{max(p)}"
    ),
    st.tuples(st.integers(1, 10), st.integers(1, 40)).map(lambda p: f"geom:mean={p[0]},max={p[1]}"),
)


def _joint(rows: list[tuple[int, int, int]]) -> JointLengths:
    w = np.array([r[2] for r in rows], dtype=float)
    return JointLengths(np.array([r[0] for r in rows]), np.array([r[1] for r in rows]), w / w.sum())


lengths_models = st.one_of(
    st.builds(
        lambda s, o: RequestClass.independent(parse_law(s), parse_law(o)).lengths,
        prompt_specs,
        decode_specs,
    ),
    st.lists(
        st.tuples(st.integers(0, 20), st.integers(1, 24), st.integers(1, 4)), min_size=1, max_size=4
    ).map(_joint),
)


@st.composite
def workloads(draw, max_classes: int = 3) -> Workload:
    n = draw(st.integers(1, max_classes))
    classes = tuple(
        RequestClass(draw(lengths_models), float(draw(st.integers(1, 4))), f"c{k}")
        for k in range(n)
    )
    return Workload(classes)


@st.composite
def policy_specs(draw, n_classes: int) -> str:
    kind = draw(st.sampled_from(["flow", "budgets", "greedy", "alpha", "reserve", "mcsf"]))
    if kind == "flow":
        budget = draw(st.sampled_from(["deterministic", "randomized", "poisson"]))
        rate = draw(st.integers(1, 4)) if budget == "deterministic" else draw(st.floats(0.2, 4))
        spec = f"flow:rate={rate!r},budget={budget}"
    elif kind == "budgets":
        spec = "budgets:" + ",".join(str(draw(st.integers(0, 3))) for _ in range(n_classes))
    elif kind == "greedy":
        seqs = draw(st.none() | st.integers(1, 8))
        spec = f"greedy:watermark={draw(st.sampled_from([0.0, 0.01, 0.2]))}"
        spec += "" if seqs is None else f",max_seqs={seqs}"
    elif kind == "alpha":
        spec = f"alpha:{draw(st.floats(0, 0.5))!r}"
    elif kind == "reserve":
        cap = draw(st.none() | st.integers(1, 40))
        spec = "reserve" + ("" if cap is None else f":max={cap}")
    else:
        spec = "mcsf"
    sep = "," if ":" in spec else ":"
    return f"{spec}{sep}requeue={draw(st.sampled_from(['head', 'tail']))}"


@st.composite
def sim_configs(draw) -> SimConfig:
    """Small runs: 1–3 classes, memories mostly roomy (1 in 5 tight), loads 0.1–2."""
    wl = draw(workloads())
    block = draw(st.sampled_from([1, 4, 16]))
    largest = int(max(c.lengths.max_prompt + c.lengths.max_decode for c in wl.classes))
    fits = int(_blocks(largest, block))  # every request fits alone from this memory on
    if draw(st.sampled_from(["roomy"] * 4 + ["tight"])) == "roomy":
        memory = fits + draw(st.integers(0, 7 * fits))
    else:  # some requests can never complete: they cycle through activation and eviction
        memory = draw(st.integers(1, fits))
    arrivals = draw(st.sampled_from(["poisson", "deterministic", "bernoulli"]))
    load = draw(st.floats(0.1, 2.0))
    rate = min(load * memory / wl.mean_memory_time, 1.0 if arrivals == "bernoulli" else 3.0)
    slots = draw(st.integers(50, 300))
    return SimConfig(
        workload=wl,
        memory_tokens=memory,
        policy=parse_policy(draw(policy_specs(len(wl.classes)))),
        slots=slots,
        arrival_rate=rate,
        arrivals=arrivals,
        warmup=draw(st.integers(0, slots - 1)),
        seed=draw(st.integers(0, 2**32 - 1)),
        block_size=block,
        eviction=draw(st.sampled_from(["recompute", "keep-progress"])),
        stride=draw(st.sampled_from([1, 1, 3])),
    )


# ---------------------------------------------------------------------------------------------
# Invariants under hypothesis


def _check_outputs(res, checker: InvariantChecker) -> None:
    """Records, time series and summary against the slot semantics (independent of the checker)."""
    cfg, rec, ts, summ = res.config, res.records, res.timeseries, res.summary
    sim = checker.sim
    n = len(rec)
    # a value that does not exist is missing (<NA> in a nullable integer column), never −1
    for col in ("first_activation_slot", "last_activation_slot", "completion_slot", "ttft_slots",
                "latency_slots"):
        assert rec[col].dtype == "Int64", col
    arrival = rec.arrival_slot.to_numpy()
    started = rec.first_activation_slot.notna().to_numpy()
    fin = rec.completion_slot.notna().to_numpy()
    first = rec.first_activation_slot.to_numpy(dtype=np.int64, na_value=-1)  # −1: test-side only
    last = rec.last_activation_slot.to_numpy(dtype=np.int64, na_value=-1)
    done = rec.completion_slot.to_numpy(dtype=np.int64, na_value=-1)
    decode = rec.decode.to_numpy()
    # arrivals in id order inside the horizon; activations and completions after arrival
    assert np.all(np.diff(arrival) >= 0)
    assert np.all((arrival >= 0) & (arrival < cfg.slots))
    assert np.all(first[started] >= arrival[started])
    assert np.all(last[started] >= first[started])
    assert np.array_equal(rec.last_activation_slot.isna().to_numpy(), ~started)
    assert np.array_equal(rec.ttft_slots.isna().to_numpy(), ~started)
    assert np.array_equal(rec.latency_slots.isna().to_numpy(), ~fin)
    assert np.all(done[fin] >= arrival[fin])
    assert np.all(started[fin])
    # a completed request emitted its remaining O − g₀ tokens in its last activation, one a slot
    kept = np.asarray(sim.g0, dtype=np.int64)
    assert np.all(done[fin] - last[fin] + 1 + kept[fin] == decode[fin])
    if cfg.eviction == "recompute":
        assert np.all(kept[fin] == 0)
        assert np.all(done[fin] - last[fin] + 1 == decode[fin])
        # fair accounting: a real eviction follows at least one emitted token, which it wastes
        assert np.all(rec.wasted_tokens.to_numpy() >= rec.evictions.to_numpy())
    else:
        assert rec.wasted_tokens.sum() == 0
    latency = rec.latency_slots.to_numpy(dtype=np.int64, na_value=-1)
    ttft = rec.ttft_slots.to_numpy(dtype=np.int64, na_value=-1)
    assert np.all(latency[fin] >= decode[fin])
    assert np.array_equal(latency[fin], done[fin] - arrival[fin] + 1)
    assert np.all(ttft[started] >= 1)
    assert np.array_equal(ttft[started], first[started] - arrival[started] + 1)
    never_evicted = rec.evictions.to_numpy() == 0
    assert np.all(first[started & never_evicted] == last[started & never_evicted])
    # the time series: recorded slots, memory in blocks within M, conservation from the records
    slots = ts.slot.to_numpy()
    assert np.array_equal(slots, np.arange(0, cfg.slots, cfg.stride))
    kv = ts.kv_tokens.to_numpy()
    assert np.all(kv <= cfg.memory_tokens)
    assert np.all(kv % cfg.block_size == 0)
    arrived_by = np.searchsorted(arrival, slots, side="right")
    done_before = np.searchsorted(np.sort(done[fin]), slots, side="left")
    assert np.array_equal(ts.queue.to_numpy() + ts.active.to_numpy(), arrived_by - done_before)
    # summary
    assert summ["arrived"] == n == checker.arrived
    assert summ["completed"] == int(fin.sum())
    assert summ["arrived"] == summ["completed"] + summ["waiting_end"] + summ["active_end"]
    assert summ["kv_peak_tokens"] <= cfg.memory_tokens
    window = ts.slot >= cfg.warmup
    # (a window with no recorded slot — stride > 1, warm-up near the end — reports a peak of 0)
    assert summ["kv_peak_tokens"] == (ts.kv_tokens[window].max() if window.any() else 0)
    _check_censored_summary(cfg, rec, summ)
    assert summ["active_max"] >= (ts.active[window].max() if window.any() else 0)
    if cfg.stride == 1:
        assert ts.evictions.sum() == rec.evictions.sum()
        assert summ["evictions"] == ts.evictions[window].sum()
        assert ts.dropped_on_admission.sum() == rec.dropped_on_admission.sum()
        assert summ["dropped_on_admission"] == ts.dropped_on_admission[window].sum()
        assert summ["active_max"] == ts.active[window].max()
        # every activation is a first one or follows an eviction; requests waiting after an
        # eviction have not been re-activated yet
        active_end = np.asarray(sim.active, dtype=bool)
        requeued = started & ~fin & ~active_end
        assert ts.activations.sum() == started.sum() + rec.evictions.sum() - requeued.sum()
        # tokens emitted in the window = Σ active requests per slot (one token each)
        useful = ts.active[window].sum() - summ["wasted_tokens"]
        assert math.isclose(summ["throughput_tokens_per_slot"] * window.sum(), useful,
                            rel_tol=FLOAT_REL, abs_tol=FLOAT_REL)
    if cfg.eviction == "keep-progress":
        assert summ["wasted_tokens"] == 0


def _check_censored_summary(cfg: SimConfig, rec: pd.DataFrame, summ: dict) -> None:
    """The summary's completed fraction, censored and finished-only latency and censored TTFT,
    recomputed from the records: every window arrival counts, the unfinished ones with latency
    T − arrival, the never-activated ones with TTFT T − arrival."""
    win = rec[rec.arrival_slot >= cfg.warmup]
    fin = win.completion_slot.notna().to_numpy()
    horizon = cfg.slots - win.arrival_slot.to_numpy()
    lat = np.where(fin, win.latency_slots.to_numpy(dtype=float, na_value=np.nan), horizon)
    ttft = np.where(win.ttft_slots.notna(), win.ttft_slots.to_numpy(dtype=float, na_value=np.nan),
                    horizon)
    finished = lat[fin]
    expect = {
        "completed_fraction": fin.mean() if fin.size else math.nan,
        "latency_censored_fraction": (~fin).mean() if fin.size else math.nan,
        "latency_mean_slots": lat.mean() if lat.size else math.nan,
        "latency_p99_slots": np.quantile(lat, 0.99) if lat.size else math.nan,
        "latency_finished_mean_slots": finished.mean() if finished.size else math.nan,
        "latency_finished_p95_slots": np.quantile(finished, 0.95) if finished.size else math.nan,
        "ttft_mean_slots": ttft.mean() if ttft.size else math.nan,
        "ttft_p99_slots": np.quantile(ttft, 0.99) if ttft.size else math.nan,
    }
    for key, value in expect.items():
        got = summ[key]
        assert (math.isnan(value) and math.isnan(got)) or math.isclose(got, value, rel_tol=FLOAT_REL), key
    if lat.size:  # censoring never lengthens: a censored latency is a lower bound
        assert summ["latency_p99_slots"] >= summ["latency_p95_slots"]


def _edge(spec: str, memory: int, **kw) -> SimConfig:
    wl = Workload((RequestClass.independent(parse_law("3"), parse_law("uniform:1,6"), 1.0, "a"),
                   RequestClass.independent(parse_law("geom:mean=3,max=9"), parse_law("4"), 2.0, "b")))
    kw = {"arrival_rate": 1.5, "slots": 120, **kw}
    return SimConfig(wl, memory, parse_policy(spec), seed=1, **kw)


@given(cfg=sim_configs())
@example(cfg=_edge("flow:rate=2", 3))  # nothing fits: activate, evict, requeue, every slot
@example(cfg=_edge("greedy:watermark=0,requeue=tail", 40, block_size=16, eviction="keep-progress"))
@example(cfg=_edge("mcsf:requeue=tail", 30, block_size=4, eviction="keep-progress"))
@example(cfg=_edge("budgets:3,0,requeue=tail", 25, eviction="keep-progress", stride=3))
@example(cfg=_edge("reserve:max=2", 20, block_size=4))  # reservation below the decode maximum
@example(cfg=_edge("flow:rate=1", 1, slots=50, warmup=49, stride=3))  # no recorded slot in window
@example(cfg=_edge("flow:rate=3.5,budget=poisson,requeue=tail", 30, arrivals="bernoulli",
                   arrival_rate=0.9))
def test_invariants_every_slot_and_determinism(cfg):
    checker = InvariantChecker()
    res = _run(cfg, checker)
    checker.finish()
    _check_outputs(res, checker)
    # same seed ⇒ identical output (and the checker does not perturb the run)
    again = _run(cfg)
    pd.testing.assert_frame_equal(res.records, again.records)
    pd.testing.assert_frame_equal(res.timeseries, again.timeseries)
    assert _same_summary(res.summary, again.summary)


@given(seed=st.integers(0, 2**31), offset=st.integers(1, 2**31))
def test_different_seeds_differ(seed, offset):
    # 200 slots of Poisson(1) arrivals: two seeds give the same arrival counts with probability
    # ≤ (Σ_k P(A = k)²)^200 ≈ 0.31^200 < 1e-100, so the records must differ.
    wl = Workload.single(parse_law("uniform:1,20"), parse_law("uniform:1,30"))
    cfg = SimConfig(wl, 400, parse_policy("greedy"), slots=200, arrival_rate=1.0, seed=seed)
    a = _run(cfg).records
    b = _run(replace(cfg, seed=seed + offset)).records
    assert not a.equals(b)


@st.composite
def safe_configs(draw) -> SimConfig:
    """Runs that must never evict: the memory is built from the policy's worst case."""
    wl = draw(workloads())
    kind = draw(st.sampled_from(["reserve", "mcsf", "budgets", "flow"]))
    block = 1 if kind == "mcsf" else draw(st.sampled_from([1, 4, 16]))
    bounds = [_support_bound([c.lengths], block) for c in wl.classes]
    largest = int(_blocks(max(c.lengths.max_prompt + c.lengths.max_decode for c in wl.classes), block))
    slack = draw(st.integers(0, 50))
    if kind == "reserve":  # reserving m(S + L) with L ≥ every O never overflows
        cap = int(wl.max_decode) + draw(st.integers(0, 5))
        spec, memory = f"reserve:max={cap}", largest + draw(st.integers(0, 4 * largest))
    elif kind == "mcsf":  # the future-memory check is exact for block size 1 (linear growth)
        spec, memory = "mcsf", largest + draw(st.integers(0, 4 * largest))
    elif kind == "budgets":  # Algorithm 1 is memory-safe when Σ b_k (worst cohort memory) ≤ M
        b = [draw(st.integers(0, 3)) for _ in wl.classes]
        spec = "budgets:" + ",".join(map(str, b))
        memory = max(1, sum(bk * wk for bk, wk in zip(b, bounds, strict=True))) + slack
    else:  # flow with a bounded budget: at most ⌈r⌉ activations per slot, from any class
        budget = draw(st.sampled_from(["deterministic", "randomized"]))
        rate = draw(st.integers(1, 3)) if budget == "deterministic" else draw(st.floats(0.1, 3))
        spec = f"flow:rate={rate!r},budget={budget}"
        mixed = _support_bound([c.lengths for c in wl.classes], block)
        memory = math.ceil(rate) * mixed + slack
    return SimConfig(
        wl, memory, parse_policy(spec), slots=draw(st.integers(20, 200)),
        arrival_rate=draw(st.floats(0.1, 3.0)), seed=draw(st.integers(0, 2**32 - 1)),
        block_size=block, eviction=draw(st.sampled_from(["recompute", "keep-progress"])),
    )


@given(cfg=safe_configs())
@example(  # a mix: the cohort bound takes the largest request of *any* class at each age (4, not 3)
    cfg=SimConfig(
        Workload((RequestClass.independent(parse_law("1"), parse_law("1"), 1.0, "c0"),
                  RequestClass(_joint([(0, 2, 1)]), 1.0, "c1"))),
        4, parse_policy("flow:rate=1,budget=deterministic"), slots=20, arrival_rate=1.0, seed=0,
    )
)
def test_memory_safe_policies_never_evict(cfg):
    checker = InvariantChecker()
    res = _run(cfg, checker)
    checker.finish()
    assert res.records.evictions.sum() == 0
    assert res.timeseries.evictions.sum() == 0


# ---------------------------------------------------------------------------------------------
# The checker has teeth: a corrupted run is caught at the slot where it goes wrong


def _evict_top(sim) -> None:
    """Evict the most recently activated request by hand (recompute), as the engine would: one
    activated in this very slot (with no earlier activation) is dropped on admission instead."""
    rid = next(i for i in reversed(sim.stack) if sim.active[i])
    sim.stack.remove(rid)
    g = sim.generated(rid, sim.t)
    sim.usage -= sim.memory_of(rid, g)
    sim.active[rid] = False
    sim.n_active -= 1
    sim.epoch[rid] += 1
    if sim.act_slot[rid] == sim.t:
        sim.n_drop[rid] += 1
        sim.total_dropped += 1
        sim.first_act[rid] = sim.last_act[rid] = -1
    else:
        sim.n_evict[rid] += 1
        sim.total_evictions += 1
        sim.wasted[rid] += g
        sim.g0[rid] = 0
    sim.queue.push_front(rid)


class _SecondInLine(Policy):
    """Activates the second waiting request each slot: not FIFO."""

    def select(self, sim):
        waiting = list(sim.queue)
        return waiting[1:2]


CORRUPTIONS = {
    "usage drift": (lambda sim: setattr(sim, "usage", sim.usage + 1), "incremental usage"),
    "lost request": (lambda sim: sim.queue.pop_head() if len(sim.queue) else None, "arrived"),
    "needless eviction": (_evict_top, "evicted one request too many"),
    "phantom active": (lambda sim: setattr(sim, "n_active", sim.n_active + 1), "n_active"),
}


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_checker_catches_corruption(name):
    corrupt, message = CORRUPTIONS[name]
    wl = Workload.single(parse_law("4"), parse_law("10"))
    cfg = SimConfig(wl, 10_000, parse_policy("flow:rate=2,budget=deterministic"), slots=40,
                    arrival_rate=3.0, arrivals="deterministic")
    checker = InvariantChecker()

    def check(sim, t):
        if t == 20:
            corrupt(sim)
        checker(sim, t)

    with pytest.raises(AssertionError, match=rf"slot 20: .*{message}"):
        _run(cfg, check)


def test_checker_catches_out_of_order_activation():
    wl = Workload.single(parse_law("4"), parse_law("3"))
    cfg = SimConfig(wl, 1000, _SecondInLine(), slots=20, arrival_rate=2.0, arrivals="deterministic")
    with pytest.raises(AssertionError, match="FIFO activation out of arrival order"):
        _run(cfg, InvariantChecker(fifo=True))
    checker = InvariantChecker()  # a list-returning policy is not assumed FIFO
    _run(cfg, checker)
    checker.finish()
    assert checker.fifo_slots == 0


def test_checker_fifo_check_runs_until_the_first_eviction():
    wl = Workload.single(parse_law("5"), parse_law("geom:mean=10,max=40"))
    cfg = SimConfig(wl, 150, parse_policy("greedy:requeue=tail"), slots=300, arrival_rate=1.0)
    checker = InvariantChecker()
    res = _run(cfg, checker)
    checker.finish()
    first_eviction = int(np.flatnonzero(res.timeseries.evictions.to_numpy())[0])
    assert checker.fifo_slots == first_eviction
    assert checker.evictions_seen == res.records.evictions.sum()


# ---------------------------------------------------------------------------------------------
# Exact identities: Algorithm 1 on Dong & Cao §4.1


def _dong_workload() -> Workload:
    # Poisson(15) arrivals split by the mix (1/3 each) are independent Poisson(5) per class.
    return Workload(tuple(
        RequestClass.independent(parse_law(str(lo)), parse_law(str(o)), 5.0, f"o{o}")
        for lo, o in DONG_LO
    ))


def test_dong_cao_constants():
    wl = _dong_workload()
    assert tuple(wl.mean_memory_times) == DONG_W
    assert sum(b * w for b, w in zip(DONG_B, DONG_W, strict=True)) == DONG_PEAK <= DONG_M
    assert round(DONG_M / sum(DONG_W), 6) == 4.062069  # λ* (docs/theory.md §9 item 1)


class _PerClassQueue(InvariantChecker):
    """The invariant checker, also recording each class's queue length after activation."""

    def __init__(self) -> None:
        super().__init__()
        self.lengths: list[list[int]] = []

    def __call__(self, sim, t):
        super().__call__(sim, t)
        self.lengths.append([sim.queue.length_of_class(k) for k in range(sim.n_classes)])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_algorithm1_dong_cao_exact(seed):
    slots = 400
    cfg = SimConfig(_dong_workload(), DONG_M, parse_policy("budgets:4,4,4"), slots=slots, seed=seed)
    checker = _PerClassQueue()
    res = _run(cfg, checker)
    checker.finish()
    rec, ts = res.records, res.timeseries
    kv = ts.kv_tokens.to_numpy()
    # λ = 5 > b = 4: the queues saturate, so the peak is exactly Σ b_k w_k, and never above it
    assert res.summary["kv_peak_tokens"] == DONG_PEAK
    assert kv.max() == DONG_PEAK
    assert res.summary["evictions"] == 0
    assert rec.evictions.sum() == 0
    queues = np.array(checker.lengths)
    expected_kv = np.zeros(slots, dtype=np.int64)
    for k, ((lo, o), b) in enumerate(zip(DONG_LO, DONG_B, strict=True)):
        arrivals = np.bincount(rec.arrival_slot[rec.cls == k], minlength=slots)
        lindley = _lindley(arrivals, b)
        np.testing.assert_array_equal(queues[:, k], lindley, err_msg=f"class {k}")
        # activations n_t = Q_{t−1} + A_t − Q_t; memory = Σ_a n_{t−a}(l + a + 1), a < o
        n_act = np.concatenate([[0], lindley[:-1]]) + arrivals - lindley
        assert np.all((n_act >= 0) & (n_act <= b))
        expected_kv += np.convolve(n_act, lo + 1 + np.arange(o))[:slots]
    np.testing.assert_array_equal(ts.queue.to_numpy(), queues.sum(axis=1))
    np.testing.assert_array_equal(kv, expected_kv)
    # queues grow like 3(λ − 4)^+ = 3 per slot (docs/theory.md §9 item 3)
    assert res.summary["queue_slope"] > 1.5


# ---------------------------------------------------------------------------------------------
# Statistics: saturated flow control, E[U] = r·E[W] and Var U (docs/theory.md §8.2, §8.4)


@pytest.mark.parametrize(("budget", "rate"), [("deterministic", 3), ("randomized", 2.5), ("poisson", 3)])
def test_flow_saturated_memory_mean_and_variance(budget, rate):
    # S ≡ 20, O ~ geometric(p = 0.05): E[W] = s/p + 1/p² = 800; Var U = 87,711 (deterministic
    # r = 3) and 118,800 (Poisson(3)) per docs/theory.md §8.4 / numerics.analysis.flow's doctest. Arrivals at
    # 2r keep the queue growing (checked), and M = 10⁶ is ~40 sd above the mean: no evictions.
    wl = Workload.single(parse_law("20"), parse_law("geom:p=0.05"))
    warmup = 500  # ages ≥ 450 carry P(O > 450) = 0.95^450 ≈ 1e-10 of the memory
    cfg = SimConfig(wl, 10**6, parse_policy(f"flow:rate={rate},budget={budget}"),
                    slots=warmup + N_BATCHES * 1500, arrival_rate=2 * rate, warmup=warmup, seed=11)
    res = _run(cfg)
    ts = res.timeseries
    assert ts.queue[ts.slot >= 50].min() > 0  # saturated: every slot activated its full budget
    assert res.summary["evictions"] == 0
    u = ts.kv_tokens[ts.slot >= warmup].to_numpy(dtype=float)
    mean, var = flow_saturated_mean(wl, rate), flow_saturated_variance(wl, rate, budget)
    assert abs(_batch_t(u, mean)) < T_CRIT, (u.mean(), mean)
    # batch means of (U − r·E[W])², whose expectation is Var U exactly
    assert abs(_batch_t((u - mean) ** 2, var)) < T_CRIT, (((u - mean) ** 2).mean(), var)


@pytest.mark.slow
def test_flow_saturated_memory_uniform_decode():
    # Uniform O ∈ {1..100}, S ≡ 20, deterministic r = 20: E[W] = 2727 and sd U = 1359 (theory
    # docs/theory.md §8.2, 'checked numbers'); M = 65536 as there, with no overflow at 8 sd.
    wl = Workload.single(parse_law("20"), parse_law("uniform:1,100"))
    rate, warmup = 20, 200
    cfg = SimConfig(wl, 65536, parse_policy(f"flow:rate={rate},budget=deterministic"),
                    slots=warmup + N_BATCHES * 2000, arrival_rate=2 * rate, warmup=warmup, seed=5)
    res = _run(cfg)
    ts = res.timeseries
    assert ts.queue[ts.slot >= 50].min() > 0
    assert res.summary["evictions"] == 0
    u = ts.kv_tokens[ts.slot >= warmup].to_numpy(dtype=float)
    mean, var = flow_saturated_mean(wl, rate), flow_saturated_variance(wl, rate, "deterministic")
    assert round(mean) == 20 * 2727
    assert round(math.sqrt(var)) == 1359
    assert abs(_batch_t(u, mean)) < T_CRIT
    assert abs(_batch_t((u - mean) ** 2, var)) < T_CRIT


# ---------------------------------------------------------------------------------------------
# Bulk-service queue: flow control with a deterministic budget below saturation (docs/theory.md §8.3)


def _bulk_stationary_mean(lam: float, budget: int, states: int = 200) -> float:
    """E[Q] of Q' = (Q + A − b)^+, A ~ Poisson(λ), by a linear solve on {0..states−1}."""
    pa = stats.poisson(lam).pmf(np.arange(states + budget))
    p = np.zeros((states, states))
    for q in range(states):
        nxt = np.maximum(q + np.arange(pa.size) - budget, 0)
        np.add.at(p[q], np.minimum(nxt, states - 1), pa)
    a = np.vstack([p.T - np.eye(states), np.ones(states)])
    rhs = np.zeros(states + 1)
    rhs[-1] = 1
    pi = np.linalg.lstsq(a, rhs, rcond=None)[0]
    return float(pi @ np.arange(states))


def test_bulk_service_reference_value():
    # truncation at 200 states: P(Q ≥ 200) is far below 1e-30 at load 3/4
    assert abs(_bulk_stationary_mean(3.0, 4) - BULK_EQ) < BULK_EQ_ROUNDING


def test_bulk_service_queue():
    # S ≡ 10, O ≡ 5: at most 4·Σ_{a<5}(11 + a) = 260 tokens ≤ M = 1000, so memory never binds.
    wl = Workload.single(parse_law("10"), parse_law("5"))
    warmup = 200  # the chain mixes in a few dozen slots from Q = 0
    cfg = SimConfig(wl, 1000, parse_policy("flow:rate=4,budget=deterministic"),
                    slots=warmup + N_BATCHES * 2000, arrival_rate=3.0, warmup=warmup, seed=4)
    res = _run(cfg)
    ts, rec = res.timeseries, res.records
    assert res.summary["evictions"] == 0
    assert ts.kv_tokens.max() <= 260
    # exact: the queue after activation is the Lindley recursion of the arrivals, slot for slot
    arrivals = np.bincount(rec.arrival_slot, minlength=cfg.slots)
    np.testing.assert_array_equal(ts.queue.to_numpy(), _lindley(arrivals, 4))
    # statistical: E[Q] = 0.8009
    q = ts.queue[ts.slot >= warmup].to_numpy(dtype=float)
    assert abs(_batch_t(q, BULK_EQ)) < T_CRIT, q.mean()


@pytest.mark.slow
def test_algorithm1_stable_point_queue_per_class():
    # Dong & Cao §4.1 classes at λ = 3 < b = 4 (docs/theory.md §9 item 4): each class's queue is
    # the bulk-service queue, E[Q] = 0.8009; Σ b_k w_k = 16240 ≤ M, so nothing is ever evicted.
    # Three tests at ALPHA each: family false-alarm rate ≤ 3·ALPHA.
    wl = Workload(tuple(
        RequestClass.independent(parse_law(str(lo)), parse_law(str(o)), 3.0, f"o{o}")
        for lo, o in DONG_LO
    ))
    warmup = 200
    cfg = SimConfig(wl, DONG_M, parse_policy("budgets:4,4,4"), slots=warmup + N_BATCHES * 2000,
                    warmup=warmup, seed=6)
    lengths: list[list[int]] = []
    res = _run(cfg, lambda sim, t: lengths.append([sim.queue.length_of_class(k) for k in range(3)]))
    assert res.records.evictions.sum() == 0
    queues = np.array(lengths)[warmup:].astype(float)
    for k in range(3):
        assert abs(_batch_t(queues[:, k], BULK_EQ)) < T_CRIT, (k, queues[:, k].mean())


# ---------------------------------------------------------------------------------------------
# Above the necessary condition the queue grows; near λ_max greedy evicts, flow control does not


def _overload_policies() -> list[str]:
    wl = Workload.single(parse_law("10"), parse_law("20"))
    r_plan = make_plan(wl, 4100).flow_rate
    return [f"flow:rate={r_plan!r}", "flow:rate=12", "greedy", "alpha:0.1"]


@pytest.mark.parametrize("spec", _overload_policies())
def test_queue_grows_linearly_above_necessary_condition(spec):
    # S ≡ 10, O ≡ 20: W = 410, M = 4100, so λ_max = 10 (Prop. 3.2). Every completion needs W
    # memory-slots, so completions run at ≤ λ_max + O(1/T) and the queue grows at ≥ λ − λ_max = 3
    # per slot. The fitted slope's noise (Poisson(13) steps over 1000 slots) has sd ≈ 0.13, so
    # half the guaranteed drift is a > 10-sd margin (false alarm < 1e-20).
    wl = Workload.single(parse_law("10"), parse_law("20"))
    lam_max = 4100 / wl.mean_memory_time
    cfg = SimConfig(wl, 4100, parse_policy(spec), slots=2000, arrival_rate=13.0, seed=2)
    res = _run(cfg)
    assert res.summary["queue_slope"] > 0.5 * (13.0 - lam_max)
    assert res.summary["throughput_requests_per_slot"] <= lam_max + 0.05  # 0.05: boundary effects


def test_greedy_near_capacity_evicts_flow_at_plan_rate_does_not():
    # S ≡ 20, O ~ geometric(mean 20) clipped at 200, M = 8000: λ_max ≈ 10.
    wl = Workload.single(parse_law("20"), parse_law("geom:mean=20,max=200"))
    memory, slots, warmup = 8000, 8000, 500
    plan = make_plan(wl, memory, epsilon=PLAN_EPSILON)
    assert plan.flow_rate < plan.lambda_max
    # flow control at r*(ε) with λ = 0.9 r*: P(any eviction in 8000 slots) ≤ 8000·ε = 8e-5
    flow = _run(SimConfig(wl, memory, parse_policy(f"flow:rate={plan.flow_rate!r}"), slots=slots,
                          arrival_rate=0.9 * plan.flow_rate, warmup=warmup, seed=3))
    assert flow.records.evictions.sum() == 0
    assert flow.summary["wasted_tokens"] == 0
    # greedy at 0.98 λ_max fills memory to 99% whenever a backlog forms, and the next slot's
    # growth (~200 tokens, one per active request) overflows. Over 30 seeds: ≥ 17 evictions in the
    # 7500-slot window (typically ~60); the episodes come roughly as a Poisson stream, so zero
    # has probability ≲ e^-17. LIFO evicts requests that have generated ≥ 1 token: tokens are
    # wasted too.
    greedy = _run(SimConfig(wl, memory, parse_policy("greedy"), slots=slots,
                            arrival_rate=0.98 * plan.lambda_max, warmup=warmup, seed=3))
    assert greedy.summary["evictions"] > 0
    assert greedy.summary["wasted_tokens"] > 0


# ---------------------------------------------------------------------------------------------
# Paged blocks and keep-progress


@pytest.mark.parametrize("block", [1, 4, 16])
def test_block_memory_of_saturated_deterministic_class(block):
    # S ≡ 5, O ≡ 7, two activations per slot, arrivals 4 per slot: from slot O − 1 on, the active
    # set is two requests of every age a < 7, each holding m(S + a + 1) = b·⌈(6 + a)/b⌉.
    s, o, rate = 5, 7, 2
    wl = Workload.single(parse_law(str(s)), parse_law(str(o)))
    cfg = SimConfig(wl, 10_000, parse_policy(f"flow:rate={rate},budget=deterministic"), slots=60,
                    arrival_rate=4.0, arrivals="deterministic", block_size=block)
    checker = InvariantChecker()
    res = _run(cfg, checker)
    checker.finish()
    kv = res.timeseries.kv_tokens.to_numpy()
    assert np.all(kv % block == 0)
    steady = rate * int(_blocks(s + 1 + np.arange(o), block).sum())
    assert np.all(kv[o - 1:] == steady)
    assert np.all(kv[: o - 1] < steady)


def test_keep_progress_never_wastes_tokens():
    wl = Workload.single(parse_law("5"), parse_law("geom:mean=15,max=60"))
    base = SimConfig(wl, 300, parse_policy("greedy:watermark=0"), slots=600, arrival_rate=1.5,
                     seed=8, warmup=100)
    checker = InvariantChecker()
    keep = _run(replace(base, eviction="keep-progress"), checker)
    checker.finish()
    assert keep.summary["evictions"] > 0  # the point: evictions happen, yet nothing is wasted
    assert keep.records.wasted_tokens.sum() == 0
    assert keep.summary["wasted_tokens"] == 0
    assert keep.summary["throughput_tokens_per_slot"] == checker.sim.win_tokens / 500
    recompute = _run(base)
    assert recompute.summary["evictions"] > 0
    assert recompute.records.wasted_tokens.sum() > 0


# ---------------------------------------------------------------------------------------------
# Bad input is a WorkloadError / SpecError with a message


def _wl(rate=None) -> Workload:
    return Workload.single(parse_law("10"), parse_law("5"), rate_per_slot=rate)


BAD_CONFIGS = {
    "zero slots": dict(slots=0),
    "negative slots": dict(slots=-3),
    "fractional slots": dict(slots=10.5),
    "warmup = slots": dict(slots=10, warmup=10),
    "warmup > slots": dict(slots=10, warmup=12),
    "negative warmup": dict(warmup=-1),
    "unknown arrivals": dict(arrivals="weibull"),
    "bernoulli rate > 1": dict(arrivals="bernoulli", arrival_rate=1.5),
    "zero arrival rate": dict(arrival_rate=0.0),
    "nan arrival rate": dict(arrival_rate=float("nan")),
    "zero block size": dict(block_size=0),
    "zero stride": dict(stride=0),
    "unknown eviction": dict(eviction="swap"),
    "zero memory": dict(memory_tokens=0),
    "fractional memory": dict(memory_tokens=100.5),
    "policy neither a Policy nor a spec": dict(policy=3),  # a spec string is accepted (issue 15)
    "trace without trace": dict(arrivals="trace"),
}


@pytest.mark.parametrize("name", sorted(BAD_CONFIGS))
def test_bad_config_raises(name):
    kw = dict(workload=_wl(), memory_tokens=1000, policy=parse_policy("greedy"), arrival_rate=1.0)
    kw.update(BAD_CONFIGS[name])
    with pytest.raises(WorkloadError):
        SimConfig(**kw)


def test_missing_arrival_rate_raises():
    with pytest.raises(WorkloadError, match="arrival rate"):
        SimConfig(_wl(), 1000, parse_policy("greedy"))
    SimConfig(_wl(rate=0.5), 1000, parse_policy("greedy"))  # the classes' own rates suffice


def test_bernoulli_rate_from_the_classes_is_checked():
    wl = Workload((RequestClass.independent(parse_law("1"), parse_law("2"), 0.7, "a"),
                   RequestClass.independent(parse_law("1"), parse_law("2"), 0.6, "b")))
    with pytest.raises(WorkloadError, match="Bernoulli"):
        SimConfig(wl, 100, parse_policy("greedy"), arrivals="bernoulli")


BAD_POLICY_SPECS = [
    "", "   ", "nope", "flow", "flow:rate=abc", "flow:rate=-1", "flow:rate=inf",
    "flow:rate=2.5,budget=deterministic", "flow:rate=1,budget=geometric", "flow:rate=1,foo=2",
    "flow:rate=1,requeue=middle", "budgets", "budgets:", "budgets:1.5", "budgets:-1,2",
    "budgets:1,x", "greedy:watermark=1", "greedy:watermark=-0.1", "greedy:max_seqs=0",
    "greedy:max_seqs=2.5", "greedy:foo=1", "alpha", "alpha:1.0", "alpha:-0.1", "alpha:x",
    "reserve:max=2.5", "reserve:min=3", "mcsf:foo=1", "mcsf:3",
]


@pytest.mark.parametrize("spec", BAD_POLICY_SPECS)
def test_bad_policy_spec_raises(spec):
    with pytest.raises(SpecError):
        parse_policy(spec)


def test_non_string_policy_spec_raises():
    with pytest.raises(SpecError):
        parse_policy(None)


def test_budgets_must_match_the_classes():
    cfg = SimConfig(_wl(), 1000, parse_policy("budgets:1,1"), slots=5, arrival_rate=1.0)
    with pytest.raises(SpecError, match="2 budgets for a workload with 1 classes"):
        _run(cfg)


def test_unknown_engine_raises():
    with pytest.raises(WorkloadError, match="engine"):
        simulate(SimConfig(_wl(), 1000, parse_policy("greedy"), slots=5, arrival_rate=1.0),
                 engine="gpu")


# ---------------------------------------------------------------------------------------------
# Regressions, and engine bugs found by these tests (strict xfails until fixed)


def test_reserve_on_unbounded_decode_needs_max():
    # Reserve sizes requests by max_tokens or the decode law's maximum: an unbounded law needs max=L.
    wl = Workload.single(parse_law("5"), parse_law("geom:mean=10"))
    with pytest.raises(WorkloadError, match="max"):
        _run(SimConfig(wl, 2000, parse_policy("reserve"), slots=20, arrival_rate=1.0))
    _run(SimConfig(wl, 2000, parse_policy("reserve:max=200"), slots=20, arrival_rate=1.0))


def test_reserve_never_evicts_with_paged_blocks():
    # S ≡ 1, O ≡ 4, b = 4, M = 20: reserving S + L = 5 tokens would admit four requests, and in
    # their 4th slot each holds m(5) = 8 tokens, 32 > 20; reserving m(S + L) = 8 admits two.
    wl = Workload.single(parse_law("1"), parse_law("4"))
    cfg = SimConfig(wl, 20, parse_policy("reserve"), slots=50, arrival_rate=4.0, block_size=4)
    checker = InvariantChecker()
    res = _run(cfg, checker)
    checker.finish()
    assert res.records.evictions.sum() == 0


def test_summary_evictions_do_not_depend_on_stride():
    # the summary counts evictions in the window (slot ≥ warmup) whatever the recording stride
    wl = Workload.single(parse_law("20"), parse_law("geom:mean=20,max=100"))
    base = SimConfig(wl, 800, parse_policy("greedy"), slots=600, warmup=300, arrival_rate=2.0)
    counts = [_run(replace(base, stride=s)).summary["evictions"] for s in (1, 3)]
    assert counts[0] > 0
    assert counts[0] == counts[1]


def _evicted_in_admission_slot(cfg: SimConfig) -> int:
    """Requests that the engine evicts in the very slot the policy admitted them."""
    count = 0
    checker = InvariantChecker(scan_queue=False)

    def check(sim, t):
        nonlocal count
        checker(sim, t)
        count += sum(1 for i in sim.queue if sim.act_slot[i] == t)

    _run(cfg, check)
    return count


@pytest.mark.parametrize(
    ("spec", "block", "eviction"),
    [
        ("greedy:watermark=0", 1, "recompute"),
        ("alpha:0.05", 1, "recompute"),
        ("mcsf", 4, "recompute"),
        ("greedy:watermark=0", 1, "keep-progress"),
        ("alpha:0.05", 1, "keep-progress"),
        ("mcsf", 4, "keep-progress"),
    ],
)
def test_admission_tests_are_exact_for_the_current_slot(spec, block, eviction):
    # Greedy, α-protection and MC-SF admit only if this slot's memory stays ≤ M (≤ (1 − w)M,
    # ≤ (1 − α)M), so the engine must never evict a request in the slot that admitted it.
    wl = Workload.single(parse_law("2"), parse_law("geom:mean=30,max=100"))
    cfg = SimConfig(wl, 150, parse_policy(spec), slots=300, arrival_rate=2.0, seed=0,
                    block_size=block, eviction=eviction)
    assert _evicted_in_admission_slot(cfg) == 0


# ---------------------------------------------------------------------------------------------
# The engine–policy interface: policies read SlotState and nothing else; both engines implement it


class _OnlySlotState:
    """A view of an engine that exposes the SlotState members and fails on anything else."""

    def __init__(self, state) -> None:
        self._state = state

    def __getattr__(self, name: str):
        from numerics.sim.state import SLOT_STATE_MEMBERS

        if name not in SLOT_STATE_MEMBERS:
            raise AssertionError(f"a policy read {name!r}, which SlotState does not declare")
        return getattr(self._state, name)


@dataclass(frozen=True)
class _Restricted(Policy):
    """Runs ``inner`` on the :class:`_OnlySlotState` view of the engine."""

    inner: Policy = None

    def reset(self, rng) -> None:
        self.inner.reset(rng)

    def check_workload(self, workload) -> None:
        self.inner.check_workload(workload)

    def select(self, sim):
        return self.inner.select(_OnlySlotState(sim))

    def spec(self) -> str:
        return self.inner.spec()


@pytest.mark.parametrize("spec", ["flow:rate=1.5,budget=poisson", "budgets:2,1", "greedy:max_seqs=6",
                                  "alpha:0.1,requeue=tail", "reserve", "mcsf"])
def test_policies_read_only_the_slot_state(spec):
    wl = Workload((RequestClass.independent(parse_law("5"), parse_law("uniform:1,30"), 0.6, "a"),
                   RequestClass.independent(parse_law("12"), parse_law("geom:mean=8,max=40"), 0.4, "b")))
    policy = parse_policy(spec)
    assert _Restricted(policy.requeue).kernel_code is None  # a new select: not the kernel's rule
    cfg = SimConfig(wl, 300, policy, slots=400, seed=3, block_size=2, eviction="keep-progress")
    direct = _run(cfg)
    viewed = _run(replace(cfg, policy=_Restricted(policy.requeue, policy)))
    pd.testing.assert_frame_equal(direct.records, viewed.records)
    pd.testing.assert_frame_equal(direct.timeseries, viewed.timeseries)
    assert _same_summary(direct.summary, viewed.summary)


def test_both_engines_implement_the_slot_state():
    from numerics.calibration.backends import MODEL_PRESETS, make_backend
    from numerics.calibration.engine import _Engine
    from numerics.data.traces import Trace
    from numerics.sim.engine import _Sim
    from numerics.sim.state import SLOT_STATE_MEMBERS, SlotState, missing_members

    assert len(SLOT_STATE_MEMBERS) == 12
    sim = _Sim(SimConfig(_wl(), 1000, parse_policy("greedy"), slots=5, arrival_rate=1.0))
    backend = make_backend("cpu", MODEL_PRESETS["tiny"], n_blocks=32, block_size=4)
    trace = Trace([5, 3], [4, 2], [0.0, 0.0], "example", "lengths")
    engine = _Engine(backend, trace, 128, parse_policy("greedy"), 0, None)
    for state in (sim, engine):
        assert isinstance(state, SlotState)
        assert missing_members(state) == []

    class Partial:  # a duck-typed state that lacks the memory helpers
        queue = n_classes = usage = n_active = memory_tokens = S = max_decode = 0

    assert not isinstance(Partial(), SlotState)
    assert missing_members(Partial()) == ["mem", "activation_memory", "current_memory", "remaining",
                                          "active_ids"]


def test_poisson_arrivals_are_poisson_per_slot():
    # Arrivals are drawn as a Poisson(λT) total spread uniformly over the slots; the per-slot
    # counts must be i.i.d. Poisson(λ): a chi-square goodness-of-fit test of the counts (cells 0..4
    # and ≥ 5) against the Poisson(λ) pmf, false-alarm rate 1e-3 for this fixed seed.
    lam, slots = 1.3, 20_000
    wl = Workload.single(parse_law("5"), parse_law("3"))
    res = simulate(SimConfig(wl, 10**6, parse_policy("greedy"), slots=slots, arrival_rate=lam, seed=7))
    counts = np.bincount(res.records.arrival_slot.to_numpy(), minlength=slots)
    assert counts.size == slots
    observed = np.bincount(np.minimum(counts, 5), minlength=6)
    pmf = stats.poisson(lam).pmf(np.arange(5))
    expected = slots * np.append(pmf, 1 - pmf.sum())
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    assert chi2 < stats.chi2(df=5).ppf(1 - 1e-3), (observed, expected)
    # and the counts of neighbouring slots are uncorrelated (|r| < 4/√T: false alarm ~6e-5)
    r = np.corrcoef(counts[:-1], counts[1:])[0, 1]
    assert abs(r) < 4 / math.sqrt(slots)


def test_simconfig_takes_a_policy_spec_and_reprs_are_short():
    # Issue 15: SimConfig(policy="greedy") was refused; reprs dumped arrays
    wl = Workload.single(parse_law("20"), parse_law("uniform:1,30"))
    a = simulate(SimConfig(wl, 2000, "greedy", slots=500, arrival_rate=0.3, seed=1))
    b = simulate(SimConfig(wl, 2000, parse_policy("greedy"), slots=500, arrival_rate=0.3, seed=1))
    assert a.summary == b.summary
    with pytest.raises(SpecError, match="unknown policy 'nonsense'"):
        SimConfig(wl, 2000, "nonsense", slots=500, arrival_rate=0.3)
    with pytest.raises(WorkloadError, match="policy must be a Policy or a policy spec string"):
        SimConfig(wl, 2000, 3, slots=500, arrival_rate=0.3)
    text = repr(a)
    assert text.startswith("SimResult('greedy")
    assert "records" in text
    assert len(text) < 200
    joint = JointLengths.from_samples(np.arange(1, 10_001), np.arange(1, 10_001))
    assert len(repr(joint)) < 120
    assert "10000 pairs" in repr(joint)
