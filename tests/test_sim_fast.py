"""The compiled engine is a twin of the Python engine: same seed ⇒ identical outputs.

Both engines consume the random stream identically (requests first, then one budget draw per
slot), so every record, every time-series row and every summary value must be equal — not close:
the drops on admission, the first activations that produced a token, the censored latency
statistics and the largest active count included. The kernel covers every built-in policy
(flow, greedy, alpha, reserve, per-class budgets, MC-SF), paged blocks and trace replay (the
arrivals mapped to slots by its own step-time clock); each is drawn by hypothesis below, and the
summary-only mode (``records=False``) must give the same summary on both engines.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numerics.data.traces import Trace
from numerics.errors import WorkloadError
from numerics.model.laws import TokenLaw
from numerics.model.specs import parse_law
from numerics.model.steptime import StepTimeModel
from numerics.model.workload import RequestClass, Workload
from numerics.sim import SimConfig, parse_policy, simulate
from numerics.sim.fast import fast_supported

policies = st.one_of(
    st.builds(lambda r, b, q: f"flow:rate={r},budget={b},requeue={q}",
              st.sampled_from([0.5, 1.5, 2.0, 3.7]), st.sampled_from(["randomized", "poisson"]),
              st.sampled_from(["head", "tail"])),
    st.builds(lambda r: f"flow:rate={r},budget=deterministic", st.integers(1, 4)),
    st.builds(lambda w: f"greedy:watermark={w}", st.sampled_from([0.0, 0.01, 0.1])),
    st.builds(lambda n: f"greedy:max_seqs={n}", st.integers(1, 40)),
    st.builds(lambda a: f"alpha:{a}", st.sampled_from([0.05, 0.2])),
    st.builds(lambda m: f"reserve:max={m}", st.integers(30, 120)),
    st.builds(lambda r, b, n: f"flowfit:rate={r},budget={b}" + (f",max_seqs={n}" if n else ""),
              st.sampled_from([0.5, 2.0, 3.7]), st.sampled_from(["randomized", "poisson"]),
              st.sampled_from([0, 5])),
)
two_classes = Workload((
    RequestClass.independent(parse_law("10"), parse_law("20"), 0.3, "a"),
    RequestClass.independent(parse_law("uniform:1,20"), parse_law("geom:mean=30,max=90"), 0.2, "b"),
))
workloads = st.one_of(
    st.builds(lambda s, o: Workload.single(parse_law(s), parse_law(o)),
              st.sampled_from(["5", "uniform:1,30", "geom:mean=10,max=60"]),
              st.sampled_from(["8", "uniform:1,40", "geom:mean=15,max=100"])),
    st.just(two_classes),
)
#: A linear step time that charges every term, prefill included.
LINEAR = StepTimeModel.from_spec("linear:c0=0.01,cb=1e-4,ck=1e-6,cp=1e-5")
STEP_TIMES = [StepTimeModel.from_spec("const:0.05"), LINEAR,
              StepTimeModel.from_spec("staircase:c=0.01,a=0.02,b0=16")]


@st.composite
def any_policy(draw, n_classes: int) -> str:
    """Every policy of the kernel: the FIFO ones, per-class budgets for n_classes, MC-SF, MC."""
    requeue = draw(st.sampled_from(["head", "tail"]))
    kind = draw(st.sampled_from(["fifo", "budgets", "mcsf", "mc"]))  # the new rules a quarter each
    if kind == "fifo":
        return draw(policies)
    if kind in ("mcsf", "mc"):
        return f"{kind}:requeue={requeue}"
    budgets = draw(st.lists(st.integers(0, 3), min_size=n_classes, max_size=n_classes))
    return "budgets:" + ",".join(map(str, budgets)) + f",requeue={requeue}"


@settings(max_examples=40)
@given(wl=workloads, pol=policies, memory=st.integers(150, 2000), rate=st.floats(0.05, 3.0),
       arrivals=st.sampled_from(["poisson", "deterministic"]),
       eviction=st.sampled_from(["recompute", "keep-progress"]),
       stride=st.sampled_from([1, 3]), seed=st.integers(0, 2**31), timed=st.booleans())
def test_fast_engine_is_identical(wl, pol, memory, rate, arrivals, eviction, stride, seed, timed):
    max_total = wl.max_prompt + wl.max_decode
    memory = max(memory, int(max_total) + 1)  # build, not filter: every request fits alone
    step = LINEAR if timed else None
    cfg = SimConfig(wl, memory, parse_policy(pol), slots=600, arrival_rate=rate, arrivals=arrivals,
                    warmup=50, seed=seed, eviction=eviction, stride=stride, step_time=step)
    assert fast_supported(cfg)
    _assert_identical(simulate(cfg, engine="python"), simulate(cfg, engine="fast"))


@settings(max_examples=60, deadline=None)
@given(data=st.data(), wl=workloads, memory=st.integers(60, 1500), rate=st.floats(0.05, 3.0),
       block=st.sampled_from([1, 2, 7, 16]), arrivals=st.sampled_from(["poisson", "bernoulli"]),
       eviction=st.sampled_from(["recompute", "keep-progress"]), stride=st.sampled_from([1, 4]),
       seed=st.integers(0, 2**31), step=st.sampled_from([None, *STEP_TIMES]))
def test_fast_engine_is_identical_for_every_policy_and_block_size(data, wl, memory, rate, block,
                                                                  arrivals, eviction, stride, seed,
                                                                  step):
    # per-class budgets, MC-SF and paged blocks on the kernel; memories small enough that some
    # requests never fit (they cycle through activation and drop) are included
    pol = data.draw(any_policy(len(wl.classes)))
    cfg = SimConfig(wl, memory, parse_policy(pol), slots=500, arrival_rate=min(rate, 1.0)
                    if arrivals == "bernoulli" else rate, arrivals=arrivals, warmup=40, seed=seed,
                    eviction=eviction, stride=stride, step_time=step, block_size=block)
    assert fast_supported(cfg)
    _assert_identical(simulate(cfg, engine="python"), simulate(cfg, engine="fast"))


@st.composite
def traces(draw) -> Trace:
    """A small trace: arrival gaps (zero gaps and gaps on the slot grid included), lengths, and
    class labels or none."""
    n = draw(st.integers(1, 250))
    gaps = draw(st.lists(st.sampled_from([0.0, 0.05, 0.1, 0.013, 0.3, 1.0]), min_size=n, max_size=n))
    prompts = draw(st.lists(st.integers(1, 30), min_size=n, max_size=n))
    decodes = draw(st.lists(st.integers(1, 60), min_size=n, max_size=n))
    k = draw(st.integers(0, 3))
    labels = draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)) if k else None
    if labels is not None:  # every class present, relabelled 0..K-1 in order of the labels
        k = len(set(labels))
        labels = np.unique(labels, return_inverse=True)[1]
    return Trace(np.asarray(prompts), np.asarray(decodes), np.cumsum(gaps) - gaps[0], "drawn", "lengths",
                 None if labels is None else tuple(f"c{i}" for i in range(k)),
                 None if labels is None else np.asarray(labels, dtype=np.int64))


@settings(max_examples=50, deadline=None)
@given(data=st.data(), trace=traces(), memory=st.integers(40, 600), block=st.sampled_from([1, 4]),
       eviction=st.sampled_from(["recompute", "keep-progress"]), step=st.sampled_from(STEP_TIMES),
       slots=st.integers(20, 400))
def test_fast_engine_is_identical_in_trace_replay(data, trace, memory, block, eviction, step, slots):
    # the clock runs inside the kernel: with a step time that depends on the batch, the slot of
    # each arrival depends on the schedule; a trace longer than the horizon leaves requests unseen
    wl = trace.to_workload()
    pol = data.draw(any_policy(len(wl.classes)))
    cfg = SimConfig(wl, memory, parse_policy(pol), slots=slots, arrivals="trace", trace=trace,
                    warmup=slots // 5, step_time=step, block_size=block, eviction=eviction)
    assert fast_supported(cfg)
    _assert_identical(simulate(cfg, engine="python"), simulate(cfg, engine="fast"))


#: The built-in rules whose max_seqs the kernel applies but whose policies do not declare it yet
#: (``kernel_caps_seqs``): the tests below declare it for the run.
_CAPPED = ("FlowControl", "Reserve", "ClassBudgets", "MCSF")


@settings(max_examples=50, deadline=None)
@given(data=st.data(), wl=workloads, memory=st.integers(60, 1500), rate=st.floats(0.3, 3.0),
       seqs=st.integers(1, 12), block=st.sampled_from([1, 4]),
       eviction=st.sampled_from(["recompute", "keep-progress"]), seed=st.integers(0, 2**31),
       step=st.sampled_from([None, LINEAR]))
def test_fast_engine_is_identical_with_max_seqs(data, wl, memory, rate, seqs, block, eviction, seed, step):
    # max_seqs on every rule: per-class budgets under the cap take the class heads in global
    # FIFO order (head requeues first), MC-SF the shortest first
    from numerics.sim import policies as pol_module

    spec = data.draw(any_policy(len(wl.classes)))
    if "max_seqs=" not in spec:  # greedy:max_seqs=N is drawn with its own cap
        spec += f"{',' if ':' in spec else ':'}max_seqs={seqs}"
    with pytest.MonkeyPatch.context() as mp:
        for name in _CAPPED:
            mp.setattr(getattr(pol_module, name), "kernel_caps_seqs", True)
        cfg = SimConfig(wl, memory, parse_policy(spec), slots=400, arrival_rate=rate, warmup=40, seed=seed,
                        eviction=eviction, step_time=step, block_size=block)
        assert fast_supported(cfg)
        a = simulate(cfg, engine="python")
        _assert_identical(a, simulate(cfg, engine="fast"))
    assert a.timeseries.active.max() <= cfg.policy.max_seqs


def _assert_identical(a, b) -> None:
    pd.testing.assert_frame_equal(a.records, b.records)
    pd.testing.assert_frame_equal(a.timeseries, b.timeseries)
    _assert_same_summary(a.summary, b.summary)
    # the summary-only mode: the same summary on both engines, no tables
    for engine in ("python", "fast"):
        only = simulate(a.config, engine=engine, records=False)
        assert only.records is None
        assert only.timeseries is None
        _assert_same_summary(a.summary, only.summary)


def _assert_same_summary(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key, value in a.items():
        assert value == b[key] or (value != value and b[key] != b[key]), key


@pytest.mark.parametrize("eviction", ["recompute", "keep-progress"])
@pytest.mark.parametrize("spec", ["flow:rate=3.7,budget=poisson,requeue=tail", "flow:rate=1000",
                                  "flow:rate=2,budget=deterministic", "greedy:watermark=0,max_seqs=5"])
def test_fast_engine_is_identical_with_drops_and_evictions(spec, eviction):
    # a tight memory (some requests never fit: they cycle through activation and drop) and an
    # overload, so that drops on admission, real evictions, censored latencies and requests never
    # activated all occur; with a step time that charges prefill
    wl = Workload.single(parse_law("uniform:1,30"), parse_law("geom:mean=15,max=100"))
    step = StepTimeModel.from_spec("linear:c0=0.01,cb=1e-4,ck=1e-6,cp=1e-3")
    cfg = SimConfig(wl, 120, parse_policy(spec), slots=800, arrival_rate=1.5, warmup=80, seed=5,
                    eviction=eviction, step_time=step)
    a = simulate(cfg, engine="python")
    b = simulate(cfg, engine="fast")
    _assert_identical(a, b)
    assert a.summary["evictions"] > 0
    assert a.summary["completed_fraction"] < 1
    assert a.records.first_activation_slot.isna().any()
    if spec.startswith("flow"):
        assert a.summary["dropped_on_admission"] > 0
    else:
        assert a.summary["active_max"] <= 5


@pytest.mark.parametrize("block", [1, 16])
@pytest.mark.parametrize("eviction", ["recompute", "keep-progress"])
@pytest.mark.parametrize("spec", ["budgets:2,1", "budgets:3,0,requeue=tail", "mcsf", "mcsf:requeue=tail",
                                  "reserve:max=90", "greedy:watermark=0", "mc", "mc:requeue=tail"])
def test_fast_engine_is_identical_for_the_rules_it_has_newly(spec, block, eviction):
    # the rules and memories that used to run on the Python engine only, under an overload that
    # queues, evicts (MC-SF, MC and reserve in blocks of 16 are not exact: they may evict) and drops
    step = StepTimeModel.from_spec("linear:c0=0.01,cb=1e-4,ck=1e-6,cp=1e-3")
    cfg = SimConfig(two_classes, 400, parse_policy(spec), slots=900, arrival_rate=1.2, warmup=90,
                    seed=7, eviction=eviction, step_time=step, block_size=block)
    assert fast_supported(cfg)
    a = simulate(cfg, engine="python")
    _assert_identical(a, simulate(cfg, engine="fast"))
    assert a.summary["completed"] > 0
    assert a.summary["waiting_end"] > 0


def test_fast_engine_replays_algorithm1_per_class():
    # Dong & Cao §4.1 through a labelled trace, one slot per second (tests/test_accounting.py has
    # the Python engine's run with the invariant checker): the peak memory Σ b_k w_k = 16240
    lo = ((10, 20), (10, 40), (10, 60))
    per = 5
    n = 400 * per * len(lo)
    k = np.tile(np.repeat(np.arange(len(lo)), per), 400)
    s = np.asarray([lo[i][0] for i in k])
    o = np.asarray([lo[i][1] for i in k])
    t = np.repeat(np.arange(400, dtype=float), per * len(lo))
    trace = Trace(s, o, t, "dong-cao-4.1", "lengths", ("o20", "o40", "o60"), k)
    wl = Workload(tuple(RequestClass.independent(TokenLaw.deterministic(a), TokenLaw.deterministic(b),
                                                 name=f"o{b}") for a, b in lo))
    cfg = SimConfig(wl, 16492, parse_policy("budgets:4,4,4"), slots=400, arrivals="trace", trace=trace,
                    step_time=StepTimeModel("const", c0=1.0))
    fast = simulate(cfg, engine="fast")
    _assert_identical(simulate(cfg, engine="python"), fast)
    assert len(fast.records) == n
    assert fast.summary["kv_peak_tokens"] == 16240
    assert fast.summary["evictions"] == 0
    assert fast.timeseries.activations.max() == 12


def test_fast_engine_refuses_what_it_cannot_run():
    # per-slot checks run on the Python engine only; per-class budgets (capped by max_seqs too:
    # the cap takes class heads in global FIFO order in both engines), MC-SF and paged blocks run
    # on the kernel, the batching options beyond the paper's model on the compiled step loop
    # (tests/test_step_fast.py)
    from numerics.sim.checks import InvariantChecker

    wl = Workload.single(parse_law("5"), parse_law("10"))
    for spec, block in (("mcsf", 1), ("budgets:2", 1), ("greedy", 16), ("mcsf", 16), ("mc", 4),
                        ("budgets:2,max_seqs=3", 1), ("flow:rate=1,max_seqs=2", 1)):
        cfg = SimConfig(wl, 500, parse_policy(spec), slots=50, arrival_rate=0.5, block_size=block)
        assert fast_supported(cfg)
        _assert_identical(simulate(cfg, engine="python"), simulate(cfg, engine="fast"))
    cfg = SimConfig(wl, 500, parse_policy("greedy"), slots=50, arrival_rate=0.5)
    with pytest.raises(WorkloadError, match="fast engine"):
        simulate(cfg, check=InvariantChecker(), engine="fast")
    for cfg in (SimConfig(wl, 500, parse_policy("greedy"), slots=50, arrival_rate=0.5,
                          batching="prefill-first"),
                SimConfig(wl, 500, parse_policy("greedy"), slots=50, arrival_rate=0.5,
                          batching="chunked", max_batched_tokens=64)):
        assert fast_supported(cfg)
        _assert_identical(simulate(cfg, engine="python"), simulate(cfg, engine="fast"))


def test_kernel_support_is_declared_by_the_policy():
    from numerics.sim.policies import MCSF, ClassBudgets, Greedy
    from numerics.sim.state import KernelCode

    @dataclass(frozen=True)
    class Cautious(Greedy):  # a new decision rule: the kernel must not run it as greedy
        def select(self, sim):
            return min(1, super().select(sim))

    @dataclass(frozen=True)
    class Tuned(Greedy):  # greedy's rule with other defaults: still the kernel's
        watermark: float = 0.2

    @dataclass(frozen=True)
    class Shortest(MCSF):  # a subclass of a rule the kernel knows by its class: not the kernel's
        pass

    @dataclass(frozen=True)
    class Fair(ClassBudgets):
        pass

    from numerics.sim.policies.clairvoyant import MC

    @dataclass(frozen=True)
    class Late(MC):  # MC's check on another order: not the kernel's
        pass

    wl = Workload.single(parse_law("5"), parse_law("10"))
    assert Greedy.kernel_code is KernelCode.FCFS_MEMORY
    assert Cautious.kernel_code is None
    cautious = SimConfig(wl, 500, Cautious(), slots=50, arrival_rate=0.5)
    tuned = SimConfig(wl, 500, Tuned(), slots=50, arrival_rate=0.5)
    assert not fast_supported(cautious)
    assert fast_supported(tuned)
    for policy in (Shortest(), Fair(budgets=(2,)), Late(),
                   parse_policy("mc:predict=noisy:0.3"), parse_policy("mc:predict=over:1.5")):
        # MC compiles with its true lengths only: a prediction is drawn by the Python policy
        assert not fast_supported(SimConfig(wl, 500, policy, slots=50, arrival_rate=0.5))
    assert fast_supported(SimConfig(wl, 500, parse_policy("mc:predict=exact"), slots=50, arrival_rate=0.5))
    with pytest.raises(WorkloadError, match="fast engine"):
        simulate(cautious, engine="fast")
    pd.testing.assert_frame_equal(simulate(tuned, engine="python").records,
                                  simulate(tuned, engine="fast").records)
