"""WAIT and Nested WAIT (numerics.sim.policies.wait; Ao, Luo, Simchi-Levi & Wang, arXiv:2504.11320).

Spec round trips and one-line spec errors, the thresholds against hand computation, the per-slot
invariants under hypothesis in every eviction and batching mode, no eviction under WAIT with
deterministic lengths, and the stability thresholds by simulation: stable below min_k n_k/π_k,
the queue growing in the integrality gap and above the fluid capacity M/E[W].
Both policies run on the Python engine only.
"""

from __future__ import annotations

import math

import pytest
from conftest import run_checked
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from numerics.errors import SettingError, SpecError
from numerics.model.specs import parse_law
from numerics.model.workload import RequestClass, Workload
from numerics.sim import SimConfig, parse_policy, simulate
from numerics.sim.checks import InvariantChecker
from numerics.sim.fast import fast_supported
from numerics.sim.policies import NestedWait, Wait
from numerics.sim.policies.wait import nested_wait_thresholds, wait_stability_rate, wait_thresholds

#: Two deterministic classes with a common prompt: S = 10, O = 5 or 20, equal mix.
#: E[W] = ½(10·5 + 15) + ½(10·20 + 210) = 237.5 tokens.
TWO = Workload((RequestClass.independent(parse_law("10"), parse_law("5"), 0.5, "short"),
                RequestClass.independent(parse_law("10"), parse_law("20"), 0.5, "long")))
#: A random workload for the invariants (uniform prompts, geometric and uniform decodes).
MIXED = Workload((RequestClass.independent(parse_law("uniform:0,30"), parse_law("uniform:1,30"), 0.6, "a"),
                  RequestClass.independent(parse_law("12"), parse_law("geom:mean=8,max=40"), 0.4, "b")))
M = 4000


@pytest.mark.parametrize("spec", ["wait", "wait:8,8", "wait:3,2,requeue=tail", "wait:5,1,max_seqs=7",
                                  "nested-wait", "nested-wait:margin=0", "nested-wait:margin=0.2,n=9",
                                  "nested-wait:n=3,requeue=tail,max_seqs=4"])
def test_spec_round_trip_and_python_engine(spec):
    pol = parse_policy(spec)
    assert isinstance(pol, Wait | NestedWait)
    assert parse_policy(pol.spec()) == pol
    assert pol.spec_name == spec.split(":")[0]
    assert pol.kernel_code is None
    assert not fast_supported(SimConfig(TWO, M, pol, slots=10, arrival_rate=1.0))


@pytest.mark.parametrize("spec", ["wait:0", "wait:2,-1", "wait:1.5,2", "wait:x", "wait:rate=2",
                                  "wait:max_seqs=0", "nested-wait:margin=-0.1", "nested-wait:margin=2",
                                  "nested-wait:margin=abc", "nested-wait:n=0", "nested-wait:n=2.5",
                                  "nested-wait:3", "nested-wait:target=0.1"])
def test_bad_specs_one_line(spec):
    with pytest.raises(SpecError) as info:
        parse_policy(spec)
    assert "\n" not in str(info.value)


def test_wrong_number_of_thresholds_and_missing_workload():
    with pytest.raises(SpecError, match="one per class"):
        SimConfig(TWO, M, parse_policy("wait:8,8,8"), slots=10, arrival_rate=1.0)
    with pytest.raises(SettingError, match="SimConfig"):
        Wait().thresholds_for(M)
    with pytest.raises(SettingError, match="SimConfig"):
        NestedWait().limits_for(M)


def test_thresholds_by_hand():
    # WAIT: n_k = ⌊π_k M / E[W]⌋ = ⌊0.5 · 4000 / 237.5⌋ = ⌊8.42⌋ = 8
    assert TWO.mean_memory_time == pytest.approx(237.5)
    assert wait_thresholds(TWO, M) == (8, 8)
    assert wait_stability_rate(TWO, (8, 8)) == pytest.approx(16.0)
    # their batches fit when all start every slot: Σ n_k E[W_k] = 8·65 + 8·410 = 3800 ≤ 4000
    assert M >= 8 * 65 + 8 * 410
    # Nested WAIT: segments [0, 5), [5, 20); p_1 = P(O > 5)/P(O > 0) = 0.5, ratio 0.5 + margin;
    # segment memories Σ_{a=0}^{4} (10 + a + 1) = 65 and Σ_{a=5}^{19} (11 + a) = 345
    for margin, n1 in ((0.0, math.floor(M / (65 + 0.5 * 345))), (0.05, math.floor(M / (65 + 0.55 * 345)))):
        got, ends, limits = nested_wait_thresholds(TWO, M, margin)
        assert (got, list(ends)) == (n1, [5, 20])
        assert limits == pytest.approx([n1, n1 * (0.5 + margin)])
    # margin 0: n_1 = ⌊M / E[W]⌋ (the fluid capacity, 16.84 → 16)
    assert nested_wait_thresholds(TWO, M, 0.0)[0] == math.floor(M / 237.5) == 16


def test_wait_waits_for_a_full_batch():
    wl = Workload.single(parse_law("10"), parse_law("10"))
    cfg = SimConfig(wl, 2000, parse_policy("wait"), slots=40, arrival_rate=1.0, arrivals="deterministic")
    res = simulate(cfg, engine="python")
    acts = res.timeseries["activations"].to_numpy()
    # n = ⌊2000/155⌋ = 12: one arrival per slot, so a batch of 12 every 12 slots and nothing between
    assert set(acts.tolist()) <= {0, 12}
    assert acts.sum() == 12 * (40 // 12)


@st.composite
def configs(draw) -> SimConfig:
    mode = draw(st.sampled_from(["mixed", "prefill-first", "chunked"]))
    kind = draw(st.sampled_from(["wait", "wait-given", "nested-wait"]))
    if kind == "wait":
        spec = "wait:"
    elif kind == "wait-given":
        spec = f"wait:{draw(st.integers(1, 6))},{draw(st.integers(1, 6))},"
    else:
        spec = f"nested-wait:margin={draw(st.sampled_from([0.0, 0.05, 0.5]))},"
        if draw(st.booleans()):
            spec += f"n={draw(st.integers(1, 12))},"
    seqs = draw(st.none() | st.integers(1, 8))
    spec += f"requeue={draw(st.sampled_from(['head', 'tail']))}"
    spec += "" if seqs is None else f",max_seqs={seqs}"
    budget = None
    if mode == "chunked" or (mode == "prefill-first" and draw(st.booleans())):
        budget = draw(st.integers(seqs or 1, 60))
    slots = draw(st.integers(30, 150))
    return SimConfig(draw(st.sampled_from([TWO, MIXED])), draw(st.integers(60, 800)), parse_policy(spec),
                     slots=slots, arrival_rate=draw(st.floats(0.2, 6.0)),
                     warmup=draw(st.integers(0, slots - 1)), seed=draw(st.integers(0, 2**32 - 1)),
                     block_size=draw(st.sampled_from([1, 4, 16])),
                     eviction=draw(st.sampled_from(["recompute", "keep-progress"])),
                     batching=mode, max_batched_tokens=budget)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg=configs())
def test_invariants_every_slot(cfg):
    # Nested WAIT activates from the FIFO head (a count); WAIT per class (ids), not FIFO overall
    run_checked(cfg, fifo=isinstance(cfg.policy, NestedWait), repeat=True)


@pytest.mark.parametrize("spec", ["wait", "nested-wait:margin=0", "wait:2,3,max_seqs=6"])
@pytest.mark.parametrize("eviction", ["recompute", "keep-progress"])
@pytest.mark.parametrize("batching", ["mixed", "prefill-first", "chunked"])
def test_every_mode_under_the_checker(spec, eviction, batching):
    # every eviction × batching mode at least once, whatever hypothesis draws; overloaded (λ = 4
    # against M = 300): evictions happen under the random workload (1–43 per run, seed 7), except
    # with the small given thresholds
    cfg = SimConfig(MIXED, 300, parse_policy(spec), slots=120, arrival_rate=4.0, seed=7,
                    eviction=eviction, batching=batching,
                    max_batched_tokens=64 if batching == "chunked" else None)
    checker = InvariantChecker(fifo=spec.startswith("nested"))
    res = simulate(cfg, check=checker, engine="python")
    checker.finish()
    assert checker.slots_checked == cfg.slots
    assert res.summary["completed"] > 0


def test_wait_never_evicts_with_deterministic_lengths():
    # Σ_k n_k w_k = 3800 ≤ M: the active memory is at most that whatever the arrivals (overload here)
    res = simulate(SimConfig(TWO, M, parse_policy("wait"), slots=1500, arrival_rate=30.0, seed=5),
                   engine="python")
    assert res.summary["evictions"] == 0
    assert res.timeseries["kv_tokens"].max() <= 3800


# Stability by simulation. Poisson arrivals, 4000 slots, seed fixed.
# Stable side: per class the queue is a bulk-service queue (serve n_k once n_k wait) with drift
# λπ_k − n_k = −1 per slot and variance ≈ λπ_k = 7; by the Lundberg bound P(queue > x) ≤
# e^{−2·1·x/7}, so P(max over 4000 slots > 150) ≤ 4000·e^{−43} < 1e-14.
# Unstable side: both classes are served n_k every slot, so the final queue is A(T) − (Σ n_k)T with
# A(T) ~ Poisson(λT): mean (λ − Σ n_k)·T, sd √(λT); the thresholds below sit ≥ 4.6 sd under the
# mean (false-alarm rate < 3e-6 per assertion).
SLOTS = 4000


def _final_and_max_queue(spec: str, lam: float, seed: int = 11) -> tuple[int, int, int]:
    res = simulate(SimConfig(TWO, M, parse_policy(spec), slots=SLOTS, arrival_rate=lam, seed=seed),
                   engine="python")
    q = res.timeseries["queue"]
    return int(q.iloc[-1]), int(q.max()), int(res.summary["evictions"])


@pytest.mark.slow
def test_wait_stability_threshold():
    n = wait_thresholds(TWO, M)
    lam_wait = wait_stability_rate(TWO, n)  # 16: stable iff λπ_k < n_k for every class
    lam_fluid = M / TWO.mean_memory_time  # 16.84: the fluid capacity, no policy is stable above
    assert lam_wait <= lam_fluid
    final, peak, ev = _final_and_max_queue("wait", 14.0)  # below: 12.5 % under the threshold
    assert peak < 150
    assert ev == 0
    # in the integrality gap 16 < λ < 16.84: drift 16.5 − 16 = 0.5 per slot → mean 2000, sd 257
    final, _, ev = _final_and_max_queue("wait", 16.5)
    assert final > 800
    assert ev == 0
    # above the fluid capacity: drift 2 per slot → mean 8000, sd 268
    final, _, _ = _final_and_max_queue("wait", 18.0)
    assert final > 6700


@pytest.mark.slow
def test_nested_wait_stability_threshold():
    n1 = nested_wait_thresholds(TWO, M, 0.05)[0]  # 15: at most n_1 enter per slot
    assert n1 == 15
    _, peak, _ = _final_and_max_queue("nested-wait", 13.0)  # below n_1 (drift −2; bound as above)
    assert peak < 150
    # above n_1: every slot admits n_1, final queue A(T) − 15T: mean 6000, sd 257
    final, _, _ = _final_and_max_queue("nested-wait", 16.5)
    assert final > 4800


def test_nested_wait_quantile_segments_margin_zero_is_the_fluid_capacity():
    # a geometric decode law has more support points than MAX_SEGMENTS: quantile segments, and the
    # conditional survival inside each makes the margin-0 sum exactly E[W] (799.83 here)
    wl = Workload.single(parse_law("20"), parse_law("geom:mean=20,max=200"))
    n1, ends, _ = nested_wait_thresholds(wl, 8000, 0.0)
    assert len(ends) <= 16
    assert n1 == math.floor(8000 / wl.mean_memory_time) == 10
    # the margin compounds over the segments: a smaller entry threshold, monotone in the margin
    assert nested_wait_thresholds(wl, 8000, 0.05)[0] < n1
    assert nested_wait_thresholds(wl, 8000, 0.2)[0] <= nested_wait_thresholds(wl, 8000, 0.05)[0]
