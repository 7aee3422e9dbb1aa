"""Real-engine batching (docs/engines.md): eviction semantics, prefill-first (vLLM V0) and chunked
(vLLM V1) batching under a token budget, ``max_seqs`` for every policy, and V1's "no admission in a
step that preempted" — with the paper's model unchanged by default.

Every run here is seeded (or has no randomness at all: deterministic arrivals and lengths), so
every assertion is deterministic; none is a statistical test with an error rate.
"""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pytest
from conftest import assert_one_line_cli_error
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowstab.cli import main
from numerics.errors import SettingError, SpecError, WorkloadError
from numerics.model.specs import parse_law
from numerics.model.steptime import StepTimeModel
from numerics.model.workload import RequestClass, Workload
from numerics.sim import SimConfig, parse_policy, simulate
from numerics.sim.checks import InvariantChecker
from numerics.sim.engine import _StepSim, run
from numerics.sim.fast import fast_supported

#: A step time that prices a step by its prefill tokens alone: seconds = P exactly.
PREFILL_CLOCK = StepTimeModel.from_spec("linear:c0=0,cp=1")
#: A realistic linear step time (weights, per-sequence, KV reads, prefill compute).
LINEAR = StepTimeModel.from_spec("linear:c0=0.02,cb=1e-4,ck=1e-7,cp=5e-5")
#: Two classes, one with empty prompts allowed, so that every branch of the step loop is reached.
TWO = Workload((RequestClass.independent(parse_law("uniform:0,30"), parse_law("uniform:1,30"), 0.6, "a"),
                RequestClass.independent(parse_law("12"), parse_law("geom:mean=8,max=40"), 0.4, "b")))
SLOW = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_SPECS = ["greedy", "greedy:watermark=0,max_seqs=5", "flow:rate=1.3", "flow:rate=1.5,max_seqs=6",
          "flow:rate=2,budget=poisson,requeue=tail", "budgets:2,1", "budgets:2,2,max_seqs=4",
          "alpha:0.1", "alpha:0.05,max_seqs=7", "reserve", "reserve:max_seqs=3", "mcsf",
          "mcsf:max_seqs=4"]


@st.composite
def batching_configs(draw, modes=("mixed", "prefill-first", "chunked")) -> SimConfig:
    mode = draw(st.sampled_from(modes))
    spec = draw(st.sampled_from(_SPECS))
    policy = parse_policy(spec)
    seqs = policy.max_seqs or 1
    budget = None
    if mode == "chunked" or (mode == "prefill-first" and draw(st.booleans())):
        budget = draw(st.integers(max(seqs, 1), 60))
    return SimConfig(
        TWO, draw(st.integers(60, 400)), policy, slots=draw(st.integers(20, 160)),
        arrival_rate=draw(st.floats(0.2, 2.0)), seed=draw(st.integers(0, 10**6)),
        block_size=draw(st.sampled_from([1, 1, 4])),
        eviction=draw(st.sampled_from(["recompute", "keep-progress"])),
        step_time=draw(st.sampled_from([None, LINEAR])), batching=mode, max_batched_tokens=budget,
        # False is refused under prefill-first (the rule could never act there)
        admit_after_preemption=draw(st.sampled_from(
            [None, True] if mode == "prefill-first" else [None, True, False])),
    )


# ---------------------------------------------------------------------------- the paper's model
def test_the_defaults_are_the_papers_model():
    cfg = SimConfig(TWO, 300, parse_policy("greedy"), slots=10, arrival_rate=1.0)
    assert (cfg.batching, cfg.max_batched_tokens, cfg.admit_after_preemption) == ("mixed", None, None)
    assert cfg.admits_after_preemption
    assert not cfg.uses_step_engine
    assert not cfg.needs_python_engine
    assert fast_supported(cfg)


@SLOW
@given(cfg=batching_configs(modes=("mixed",)))
def test_the_step_loop_reproduces_the_event_loop_on_the_papers_model(cfg):
    if not cfg.admits_after_preemption:  # V1's rule changes the model: only the step loop has it
        return
    a, ta = run(cfg, loop="event")
    b, tb = run(cfg, loop="step")
    for name in ("act_slot", "first_act", "last_act", "done_slot", "n_evict", "n_drop", "wasted", "g0"):
        assert list(getattr(a, name)) == list(getattr(b, name)), name
    assert asdict(ta) == asdict(tb)
    assert np.array_equal(a.end_clock, b.end_clock)
    assert np.array_equal(a.clock_at, b.clock_at)
    assert (a.tokens_generated, a.completed, a.win_wasted) == (b.tokens_generated, b.completed, b.win_wasted)


def test_the_event_loop_refuses_the_new_options():
    cfg = SimConfig(TWO, 300, parse_policy("greedy"), slots=10, arrival_rate=1.0, batching="prefill-first")
    with pytest.raises(WorkloadError, match="paper's model only"):
        run(cfg, loop="event")
    with pytest.raises(WorkloadError, match="loop must be"):
        run(cfg, loop="fast")


# ---------------------------------------------------------------------------- invariants, every mode
@SLOW
@given(cfg=batching_configs())
def test_invariants_hold_every_slot_in_every_mode(cfg):
    checker = InvariantChecker()
    res = simulate(cfg, check=checker)
    checker.finish()
    assert checker.slots_checked == cfg.slots
    assert (res.timeseries.kv_tokens <= cfg.memory_tokens).all()
    if cfg.policy.max_seqs is not None:
        assert res.timeseries.active.max() <= cfg.policy.max_seqs


@SLOW
@given(rate=st.floats(0.3, 6.0), n=st.integers(1, 12), mode=st.sampled_from(["mixed", "prefill-first",
                                                                              "chunked"]),
       eviction=st.sampled_from(["recompute", "keep-progress"]), seed=st.integers(0, 10**6))
def test_flow_with_max_seqs_never_has_more_than_n_active(rate, n, mode, eviction, seed):
    policy = parse_policy(f"flow:rate={rate!r},max_seqs={n}")
    cfg = SimConfig(TWO, 250, policy, slots=150, arrival_rate=1.5, seed=seed, eviction=eviction,
                    batching=mode, max_batched_tokens=None if mode != "chunked" else max(n, 24))
    checker = InvariantChecker()
    res = simulate(cfg, check=checker)
    checker.finish()
    assert res.timeseries.active.max() <= n  # every slot (stride 1) ...
    assert res.summary["active_max"] <= n  # ... and the window's maximum
    assert policy.spec().endswith(f",max_seqs={n}")


# ---------------------------------------------------------------------------- eviction semantics
def _prefill_book(cfg: SimConfig) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Run ``cfg``; per slot the prefill the engine charged (its clock under PREFILL_CLOCK) and the
    prefill its surviving admissions needed, S + g₀, computed from the outside; and the g₀ > 0."""
    want = np.zeros(cfg.slots)
    kept: list[int] = []

    def observe(sim, t):
        for rid in sim.stack:
            if sim.act_slot[rid] == t and sim.active[rid]:
                want[t] += sim.S[rid] + sim.g0[rid]
                if sim.g0[rid]:
                    kept.append(sim.g0[rid])

    sim, _ = run(cfg, observe)
    return np.diff(sim.clock_at), want, kept


@pytest.mark.parametrize("batching", ["mixed", "prefill-first"])
@pytest.mark.parametrize("eviction", ["recompute", "keep-progress"])
def test_keep_progress_re_prefills_s_plus_g_and_the_step_time_charges_it(eviction, batching):
    wl = Workload.single(parse_law("uniform:5,20"), parse_law("uniform:5,40"))
    cfg = SimConfig(wl, 150, parse_policy("flow:rate=1.5"), slots=600, arrival_rate=1.0, seed=4,
                    eviction=eviction, step_time=PREFILL_CLOCK, batching=batching)
    charged, want, kept = _prefill_book(cfg)
    assert np.array_equal(charged, want)  # every slot: seconds = Σ (S + g₀) of its admissions
    if eviction == "keep-progress":
        assert len(kept) > 20
        assert min(kept) >= 1
    else:
        assert kept == []  # recompute: g₀ = 0, the re-prefill is S


def test_keep_progress_charges_more_prefill_than_recompute_on_the_same_arrivals():
    wl = Workload.single(parse_law("uniform:5,20"), parse_law("uniform:5,40"))
    total = {}
    for eviction in ("recompute", "keep-progress"):
        cfg = SimConfig(wl, 150, parse_policy("greedy:watermark=0"), slots=2000, arrival_rate=1.0,
                        seed=7, eviction=eviction, step_time=PREFILL_CLOCK)
        res = simulate(cfg)
        total[eviction] = (res.summary["duration_s"], res.summary["evictions"],
                           res.summary["wasted_tokens"])
    assert total["recompute"][1] > 0
    assert total["recompute"][2] > 0
    assert total["keep-progress"][2] == 0  # nothing is thrown away when progress is kept


# ---------------------------------------------------------------------------- prefill-first
def test_prefill_first_stalls_the_decodes_of_every_prefill_step():
    # one request every 2 slots (prompt 10, 5 tokens): mixed finishes each in 5 slots; prefill-
    # first emits the first token in the prefill step, then every other slot is a later request's
    # prefill step, which decodes nothing: tokens at a, a+1, a+3, a+5, a+7 → 8 slots
    wl = Workload.single(parse_law("10"), parse_law("5"))
    latency = {}
    for mode in ("mixed", "prefill-first"):
        cfg = SimConfig(wl, 1000, parse_policy("greedy"), slots=200, arrival_rate=0.5,
                        arrivals="deterministic", batching=mode)
        rec = simulate(cfg).records.dropna()
        assert (rec.ttft_slots == 1).all()  # the prefill step emits the first token
        latency[mode] = set(rec.latency_slots)
    assert latency == {"mixed": {5}, "prefill-first": {8}}


@pytest.mark.parametrize(("prompt", "decode", "memory", "rate", "arrivals", "policy", "ratio"), [
    # deterministic arrivals and lengths: no randomness at all
    ("200", "50", 20_000, 0.2, "deterministic", "greedy", 1.2),
    ("200", "50", 20_000, 0.2, "deterministic", "flow:rate=0.21", 1.1),
    # Poisson arrivals, seeded: 1.28× and 1.20× measured
    ("lognormal:median=300,sigma=0.8", "geom:mean=100,max=1000", 60_000, 0.25, "poisson", "greedy", 1.15),
    ("lognormal:median=300,sigma=0.8", "geom:mean=100,max=1000", 60_000, 0.25, "poisson",
     "flow:rate=0.2625", 1.1),
])
def test_prefill_first_has_higher_latency_in_seconds_than_mixed(prompt, decode, memory, rate, arrivals,
                                                                 policy, ratio):
    wl = Workload.single(parse_law(prompt), parse_law(decode))
    out = {}
    for mode in ("mixed", "prefill-first"):
        cfg = SimConfig(wl, memory, parse_policy(policy), slots=20_000, warmup=2_000, arrival_rate=rate,
                        arrivals=arrivals, seed=1, eviction="keep-progress", step_time=LINEAR,
                        batching=mode)
        out[mode] = simulate(cfg).summary
    assert out["prefill-first"]["completed_fraction"] > 0.98  # the same load, served
    assert out["prefill-first"]["latency_mean_s"] > ratio * out["mixed"]["latency_mean_s"]
    assert out["prefill-first"]["latency_p99_s"] > out["mixed"]["latency_p99_s"]


def test_prefill_first_budget_caps_the_prompt_tokens_of_a_step_and_runs_a_long_prompt_alone():
    wl = Workload((RequestClass.independent(parse_law("10"), parse_law("4"), 0.9, "short"),
                   RequestClass.independent(parse_law("40"), parse_law("4"), 0.1, "long")))
    cfg = SimConfig(wl, 2000, parse_policy("greedy"), slots=400, arrival_rate=2.0, seed=3,
                    batching="prefill-first", max_batched_tokens=25, step_time=PREFILL_CLOCK)
    checker = InvariantChecker()  # checks Σ prompt ≤ 25 in every step of two or more prefills
    res = simulate(cfg, check=checker)
    checker.finish()
    rec = res.records
    assert rec[rec.prompt == 40].completion_slot.notna().any()  # 40 > 25 tokens: admitted alone
    assert np.diff(res.timeseries.clock_s).max() <= 40


# ---------------------------------------------------------------------------- chunked
def test_chunked_prefills_a_long_prompt_in_chunks_holding_its_kv_as_they_land():
    # one request (S = 3000, O = 3) arrives at slot 999; budget 512: six steps of prefill
    # (5 × 512 + 440), its first token in the sixth, then two decode steps
    wl = Workload.single(parse_law("3000"), parse_law("3"))
    cfg = SimConfig(wl, 10_000, parse_policy("greedy"), slots=1010, arrival_rate=0.001,
                    arrivals="deterministic", batching="chunked", max_batched_tokens=512,
                    step_time=PREFILL_CLOCK)
    res = simulate(cfg)
    rec = res.records.iloc[0]
    assert (rec.arrival_slot, rec.ttft_slots, rec.latency_slots) == (999, 6, 8)
    kv = res.timeseries.set_index("slot").kv_tokens
    assert kv.loc[999:1007].tolist() == [512, 1024, 1536, 2048, 2560, 3001, 3002, 3003, 0]
    assert res.summary["duration_s"] == 3000  # every prompt token prefilled once, priced once


def test_chunked_decodes_first_then_prompt_chunks_under_the_budget():
    wl = Workload.single(parse_law("uniform:50,400"), parse_law("geom:mean=30,max=200"))
    cfg = SimConfig(wl, 20_000, parse_policy("greedy:max_seqs=40"), slots=1500, arrival_rate=0.2,
                    seed=5, eviction="keep-progress", batching="chunked", max_batched_tokens=128)
    checker = InvariantChecker()
    res = simulate(cfg, check=checker)
    checker.finish()
    _, traj = run(cfg)
    tokens = np.asarray(traj.prefill) + np.asarray(traj.batch)
    assert tokens.max() <= 128 + res.timeseries.active.max()  # P + emitters, decodes inside the budget
    assert np.asarray(traj.prefill).max() == 128  # full chunks happen
    assert res.summary["completed_fraction"] > 0.95
    assert (res.records.dropna().ttft_slots >= 1).all()


def test_chunked_matches_mixed_when_the_budget_holds_every_step():
    wl = Workload.single(parse_law("20"), parse_law("geom:mean=10,max=50"))
    kw = dict(slots=2000, arrival_rate=0.5, seed=2, step_time=LINEAR, admit_after_preemption=True)
    mixed = simulate(SimConfig(wl, 5000, parse_policy("greedy"), **kw), engine="python")
    chunked = simulate(SimConfig(wl, 5000, parse_policy("greedy"), batching="chunked",
                                 max_batched_tokens=10_000, **kw))
    assert mixed.summary["evictions"] == 0
    assert mixed.records.equals(chunked.records)
    assert mixed.summary["latency_mean_s"] == chunked.summary["latency_mean_s"]


# ---------------------------------------------------------------------------- no admission after preemption
@pytest.mark.parametrize("batching", ["mixed", "chunked"])
def test_no_admission_in_a_step_that_preempted(batching):
    wl = Workload.single(parse_law("uniform:5,30"), parse_law("uniform:10,60"))
    budget = None if batching == "mixed" else 64
    both = {}
    for admit in (True, False):
        cfg = SimConfig(wl, 400, parse_policy("flow:rate=1.2"), slots=3000, arrival_rate=1.0, seed=9,
                        eviction="keep-progress", batching=batching, max_batched_tokens=budget,
                        admit_after_preemption=admit)
        checker = InvariantChecker(scan_queue=False)
        ts = simulate(cfg, check=checker).timeseries
        checker.finish()
        both[admit] = int(((ts.evictions > 0) & ((ts.activations > 0) | (ts.dropped_on_admission > 0))).sum())
        assert ts.evictions.sum() > 50
    assert both[False] == 0
    assert both[True] > 0


def test_chunked_defaults_to_v1s_rule_and_prefill_first_is_unaffected():
    base = dict(workload=TWO, memory_tokens=300, policy=parse_policy("greedy"), slots=10, arrival_rate=1.0)
    assert not SimConfig(**base, batching="chunked", max_batched_tokens=64).admits_after_preemption
    assert SimConfig(**base, batching="chunked", max_batched_tokens=64,
                     admit_after_preemption=True).admits_after_preemption
    assert SimConfig(**base, batching="prefill-first").admits_after_preemption
    assert SimConfig(**base, admit_after_preemption=False).uses_step_engine
    # a prefill-first step preempts no running request before admission: the rule could never act
    # (it used to be accepted and change nothing), so asking for it is an error
    with pytest.raises(SettingError, match="no effect under batching prefill-first"):
        SimConfig(**base, batching="prefill-first", admit_after_preemption=False)


# ---------------------------------------------------------------------------- max_seqs, every policy
@pytest.mark.parametrize("spec", ["flow:rate=2,budget=randomized,requeue=head,max_seqs=8",
                                  "budgets:4,4,4,max_seqs=8", "greedy:watermark=0.01,max_seqs=8",
                                  "alpha:0.1,max_seqs=8", "reserve:max=20,max_seqs=8",
                                  "reserve:max_seqs=8", "mcsf:max_seqs=8"])
def test_every_policy_takes_max_seqs_and_prints_it_back(spec):
    policy = parse_policy(spec)
    assert policy.max_seqs == 8
    assert policy.spec() == spec
    assert parse_policy(policy.spec()) == policy


def test_greedy_keeps_its_max_seqs_and_the_kernel_runs_it():
    policy = parse_policy("greedy:max_seqs=3")
    assert policy.spec() == "greedy:watermark=0.01,max_seqs=3"
    cfg = SimConfig(TWO, 300, policy, slots=200, arrival_rate=1.5, seed=1)
    assert fast_supported(cfg)
    assert not cfg.needs_python_engine
    fast, slow = simulate(cfg, engine="fast"), simulate(cfg, engine="python")
    assert fast.records.equals(slow.records)
    # every compiled rule applies its cap: a capped flow runs compiled too, identically
    capped_flow = SimConfig(TWO, 300, parse_policy("flow:rate=1,max_seqs=3"), slots=200, arrival_rate=1.5,
                            seed=1)
    assert not capped_flow.needs_python_engine
    assert fast_supported(capped_flow)
    fast, slow = simulate(capped_flow, engine="fast"), simulate(capped_flow, engine="python")
    assert fast.records.equals(slow.records)


@pytest.mark.parametrize("spec", ["flow:rate=1,max_seqs=0", "budgets:1,max_seqs=2.5", "mcsf:max_seqs=-1",
                                  "alpha:0.1,max_seqs=x", "greedy:max_seqs=0"])
def test_bad_max_seqs_raises(spec):
    with pytest.raises(SpecError, match=r"max_seqs|not a number|integer"):
        parse_policy(spec)


def test_per_class_budgets_under_a_cap_take_the_chosen_requests_in_queue_order():
    cfg = SimConfig(Workload((RequestClass.independent(parse_law("5"), parse_law("30"), 1.0, "a"),
                              RequestClass.independent(parse_law("5"), parse_law("30"), 1.0, "b"))),
                    10_000, parse_policy("budgets:3,3,max_seqs=4"), slots=60, arrival_rate=2.0,
                    arrivals="deterministic", seed=0)
    checker = InvariantChecker()
    res = simulate(cfg, check=checker)
    checker.finish()
    assert res.timeseries.active.max() == 4


# ---------------------------------------------------------------------------- the engines
@pytest.mark.parametrize("extra", [dict(batching="prefill-first"),
                                   dict(batching="chunked", max_batched_tokens=64),
                                   dict(admit_after_preemption=False)])
def test_the_new_options_run_on_the_step_loop_python_or_compiled(extra):
    cfg = SimConfig(TWO, 300, parse_policy("flow:rate=1"), slots=50, arrival_rate=1.0, **extra)
    assert cfg.uses_step_engine
    assert fast_supported(cfg)  # the compiled step loop (tests/test_step_fast.py)
    slow = simulate(cfg, engine="python")
    assert slow.summary["arrived"] > 0
    fast = simulate(cfg).summary  # auto runs it compiled, with the same results
    assert all(v == fast[k] or (v != v and fast[k] != fast[k]) for k, v in slow.summary.items())


def test_the_checker_catches_a_prefill_step_that_decodes(monkeypatch):
    monkeypatch.setattr(_StepSim, "_stall", lambda self, rid: self._schedule(rid, float("inf")))
    cfg = SimConfig(Workload.single(parse_law("10"), parse_law("5")), 1000, parse_policy("greedy"),
                    slots=50, arrival_rate=0.5, arrivals="deterministic", batching="prefill-first")
    with pytest.raises(AssertionError, match="decodes nothing"):
        simulate(cfg, check=InvariantChecker())


def test_the_checker_catches_a_step_over_its_token_budget(monkeypatch):
    monkeypatch.setattr(_StepSim, "_fit", lambda self, choice, left: choice)
    monkeypatch.setattr(_StepSim, "_schedule", _overspending(_StepSim._schedule))
    cfg = SimConfig(Workload.single(parse_law("30"), parse_law("5")), 1000, parse_policy("flow:rate=2"),
                    slots=50, arrival_rate=1.0, batching="chunked", max_batched_tokens=16)
    with pytest.raises(AssertionError, match=r"budget|cut short|tokens"):
        simulate(cfg, check=InvariantChecker())


def _overspending(schedule):
    def wrong(self, rid, left):
        return schedule(self, rid, float("inf"))  # every request gets all it needs
    return wrong


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(("extra", "needle"), [
    (dict(batching="interleaved"), "`batching` must be one of"),
    (dict(batching="chunked"), "give `max_batched_tokens`"),
    (dict(max_batched_tokens=100), "prefill-first or chunked"),
    (dict(batching="chunked", max_batched_tokens=0), "positive integer"),
    (dict(batching="chunked", max_batched_tokens=2.5), "positive integer"),
    (dict(batching="prefill-first", max_batched_tokens=True), "positive integer"),
    (dict(admit_after_preemption="no"), "True, False or None"),
])
def test_bad_batching_settings_raise_naming_the_setting(extra, needle):
    with pytest.raises(SettingError) as info:
        SimConfig(TWO, 300, parse_policy("greedy"), slots=10, arrival_rate=1.0, **extra)
    assert needle.replace("`", "") in str(info.value)


def test_a_budget_below_max_seqs_is_refused_as_vllm_does():
    with pytest.raises(SettingError, match="at least the policy's max_seqs 8"):
        SimConfig(TWO, 300, parse_policy("flow:rate=1,max_seqs=8"), slots=10, arrival_rate=1.0,
                  batching="chunked", max_batched_tokens=4)


SMALL = ["--prompt", "20", "--decode", "geom:mean=10", "--memory", "1000", "--arrival-rate", "0.5",
         "--slots", "500"]


@pytest.mark.parametrize(("argv", "needle"), [
    (["simulate", *SMALL, "--policy", "greedy", "--max-batched-tokens", "0"], "--max-batched-tokens"),
    (["simulate", *SMALL, "--policy", "greedy", "--max-batched-tokens", "1.5"], "whole number"),
    (["simulate", *SMALL, "--policy", "greedy", "--batching", "chunked"], "--max-batched-tokens"),
    (["simulate", *SMALL, "--policy", "greedy", "--batching", "mixed", "--max-batched-tokens", "64"],
     "--batching prefill-first or chunked"),
    (["simulate", *SMALL, "--policy", "greedy", "--batching", "sarathi"], "invalid choice"),
    (["simulate", *SMALL, "--policy", "flow:rate=1,max_seqs=64", "--batching", "chunked",
      "--max-batched-tokens", "32"], "--max-batched-tokens 32 must be at least the policy's max_seqs 64"),
    (["simulate", *SMALL, "--policy", "flow:rate=1,max_seqs=0"], "max_seqs"),
    (["compare", *SMALL, "--policies", "greedy;flow:rate=1,max_seqs=64", "--batching", "prefill-first",
      "--max-batched-tokens", "8"], "max_seqs 64"),
])
def test_bad_batching_input_is_one_line_and_exit_2(capsys, argv, needle):
    assert_one_line_cli_error(capsys, argv, needle)


def test_simulate_and_compare_take_the_batching_flags(capsys):
    assert main(["simulate", *SMALL, "--policy", "flow:rate=0.8,max_seqs=4", "--batching", "chunked",
                 "--max-batched-tokens", "16", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["policy"].endswith("max_seqs=4")
    assert summary["active_max"] <= 4
    assert main(["simulate", *SMALL, "--policy", "greedy", "--no-admit-after-preemption"]) == 0
    assert "batching mixed, no admission after preemption" in capsys.readouterr().out
    # under prefill-first the rule could never act: one line, exit 2
    assert_one_line_cli_error(capsys, ["simulate", *SMALL, "--policy", "greedy", "--batching",
                                       "prefill-first", "--no-admit-after-preemption"],
                              "no effect under --batching prefill-first")
    assert main(["compare", *SMALL, "--policies", "greedy;flow:rate=0.8", "--batching", "chunked",
                 "--max-batched-tokens", "32", "--admit-after-preemption", "--eviction",
                 "keep-progress"]) == 0
    out = capsys.readouterr().out
    assert "batching chunked, 32 tokens per step, admission after preemption" in out


# ---------------------------------------------------------------------------- sweeps
def test_sweeps_take_the_batching_options_in_their_run_table():
    from numerics.sweep.cells import _sim_kwargs, sweep_cells
    from numerics.sweep.config import sweep_config_from_dict

    grid = {"policy": ["greedy", "flow:rate=0.5,max_seqs=8"], "arrival_rate": 0.5, "memory_tokens": 2000}
    plain = sweep_config_from_dict({"workload": {"prompt": 20, "decode": 10}, "grid": grid})
    chunked = sweep_config_from_dict({"workload": {"prompt": 20, "decode": 10}, "grid": grid,
                                      "run": {"batching": "chunked", "max_batched_tokens": 64}})
    assert [c.key for c in sweep_cells(plain)] != [c.key for c in sweep_cells(chunked)]
    kw = _sim_kwargs(chunked, sweep_cells(chunked)[0])
    assert (kw["batching"], kw["max_batched_tokens"], kw["admit_after_preemption"]) == ("chunked", 64, None)
    with pytest.raises(SpecError, match="max_batched_tokens"):
        sweep_config_from_dict({"workload": {"prompt": 20, "decode": 10}, "grid": grid,
                                "run": {"batching": "chunked"}})
    with pytest.raises(SpecError, match="admit_after_preemption must be true or false"):
        sweep_config_from_dict({"workload": {"prompt": 20, "decode": 10}, "grid": grid,
                                "run": {"admit_after_preemption": "yes"}})
