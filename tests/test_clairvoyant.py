"""Jaillet et al.'s future-memory policies: ``mc`` (FCFS) and MC-SF / MC with predicted lengths.

Spec round trips and one-line errors, the per-slot invariants under hypothesis (both eviction
modes, paged memory, predictions both ways), no overflow with exact or over-estimated lengths,
and reproducible predictions that leave the run's requests unchanged.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import run_checked
from hypothesis import given, settings
from hypothesis import strategies as st

from numerics.errors import SpecError
from numerics.model.specs import parse_law
from numerics.model.workload import Workload
from numerics.sim import SimConfig, parse_policy, simulate
from numerics.sim.checks import InvariantChecker
from numerics.sim.policies import MC, MCSF, MCSFPredicted, Prediction

SPECS = ["mc", "mc:predict=over:1.5", "mc:predict=noisy:0.3,max_seqs=4", "mc:requeue=tail",
         "mcsf:predict=noisy:0.5", "mcsf:predict=over:2,max_seqs=3,requeue=tail"]


@pytest.mark.parametrize("spec", SPECS)
def test_spec_round_trip_python_engine(spec):
    pol = parse_policy(spec)
    assert isinstance(pol, MC | MCSFPredicted)
    assert pol.kernel_code is None  # Python engine only
    assert parse_policy(pol.spec()) == pol
    assert pol.spec_name == spec.split(":")[0]


def test_exact_mcsf_stays_the_original_class():
    assert type(parse_policy("mcsf:predict=exact")) is MCSF
    assert parse_policy("mc:predict=exact") == MC()


@pytest.mark.parametrize("spec", ["mc:predict=under:2", "mc:predict=over:0.5", "mc:predict=noisy:-1",
                                  "mc:predict=noisy", "mc:predict=exact:1", "mc:rate=2",
                                  "mcsf:predict=over:x", "mc:max_seqs=0", "mc:4"])
def test_bad_specs_are_one_line_spec_errors(spec):
    with pytest.raises(SpecError) as info:
        parse_policy(spec)
    assert "\n" not in str(info.value)


def test_prediction_values():
    assert Prediction("over", 1.5).predict(10, 0.0) == 15
    assert Prediction("over", 1.5).predict(3, 0.0) == 5  # ⌈4.5⌉
    assert Prediction("over", 1.0).predict(7, 0.0) == 7
    assert Prediction("noisy", 0.0).predict(9, 2.3) == 9
    assert Prediction("noisy", 1.0).predict(10, np.log(2.0)) == 20
    assert Prediction("noisy", 1.0).predict(1, -5.0) == 1  # never below 1


def _wl(prompt="uniform:1,5", decode="uniform:1,30"):
    return Workload.single(parse_law(prompt), parse_law(decode))


@st.composite
def configs(draw) -> SimConfig:
    wl = _wl(draw(st.sampled_from(["1", "uniform:1,5", "uniform:1,20"])),
             draw(st.sampled_from(["10", "uniform:1,30", "geom:mean=10,max=30"])))
    name = draw(st.sampled_from(["mc", "mcsf"]))
    pred = draw(st.sampled_from(["exact", "over:1.3", "noisy:0.2", "noisy:0.8"]))
    spec = f"{name}:predict={pred},requeue={draw(st.sampled_from(['head', 'tail']))}"
    seqs = draw(st.none() | st.integers(1, 6))
    spec += "" if seqs is None else f",max_seqs={seqs}"
    slots = draw(st.integers(30, 200))
    return SimConfig(wl, draw(st.integers(52, 300)), parse_policy(spec), slots=slots,
                     arrival_rate=draw(st.floats(0.05, 1.5)), seed=draw(st.integers(0, 2**32 - 1)),
                     warmup=draw(st.integers(0, slots - 1)), block_size=draw(st.sampled_from([1, 1, 4])),
                     eviction=draw(st.sampled_from(["recompute", "keep-progress"])))


@settings(max_examples=60, deadline=None)
@given(cfg=configs())
def test_invariants_every_slot(cfg):
    # mc activates from the head of the queue: check the FIFO order too; mcsf reorders
    res = run_checked(cfg, fifo=isinstance(cfg.policy, MC))
    safe = cfg.policy.predict.kind != "noisy" if isinstance(cfg.policy, MC | MCSFPredicted) else True
    if safe and cfg.block_size == 1:
        # the future check with the true lengths, or with over-estimates (whose memory profile
        # dominates the true one slot by slot), never overflows: no eviction, no drop
        assert res.summary["evictions"] == 0
        assert res.summary["dropped_on_admission"] == 0


@settings(max_examples=40, deadline=None)
@given(memory=st.integers(10, 120), rate=st.floats(0.05, 2.0), seed=st.integers(0, 2**31),
       eviction=st.sampled_from(["recompute", "keep-progress"]), spec=st.sampled_from(["mc", "mcsf"]))
def test_clairvoyant_never_overflows(memory, rate, seed, eviction, spec):
    # the done-when of issue 13: mc (and mcsf) with the true lengths never evict, also in
    # overload, with M down to the hard cap S + O ≤ M (prompts 1..5, decodes 1..M − 5)
    wl = _wl("uniform:1,5", f"uniform:1,{memory - 5}" if memory > 6 else "1")
    cfg = SimConfig(wl, memory, spec, slots=150, arrival_rate=rate, seed=seed, eviction=eviction)
    res = simulate(cfg, engine="python")
    assert res.summary["evictions"] == 0
    assert res.summary["dropped_on_admission"] == 0


def test_predictions_leave_the_requests_unchanged_and_are_reproducible():
    wl = _wl()
    base = simulate(SimConfig(wl, 60, "mc", slots=300, arrival_rate=0.4, seed=5), engine="python")
    cols = ["arrival_slot", "prompt", "decode"]
    runs = [simulate(SimConfig(wl, 60, "mc:predict=noisy:0.6", slots=300, arrival_rate=0.4, seed=5),
                     engine="python") for _ in range(2)]
    for res in runs:
        assert res.records[cols].equals(base.records[cols])  # Generator.spawn left the stream alone
    assert runs[0].records.equals(runs[1].records)
    # the noisy predictions do change the schedule (else the option would do nothing)
    assert not runs[0].records["completion_slot"].equals(base.records["completion_slot"])


def test_over_one_is_exact():
    wl = _wl()
    for name in ("mc", "mcsf"):
        exact = simulate(SimConfig(wl, 50, name, slots=300, arrival_rate=0.5, seed=2), engine="python")
        over = simulate(SimConfig(wl, 50, f"{name}:predict=over:1", slots=300, arrival_rate=0.5, seed=2),
                        engine="python")
        assert over.records.equals(exact.records)


def test_mc_is_fcfs_and_mcsf_is_not():
    # all at once: MC starts the requests in queue order, MC-SF the shortest first
    wl = _wl("2", "uniform:1,30")
    res = {n: simulate(SimConfig(wl, 40, n, slots=400, arrival_rate=3.0, seed=1), engine="python").records
           for n in ("mc", "mcsf")}
    first = res["mc"]["first_activation_slot"].dropna().to_numpy()
    assert np.all(np.diff(first) >= 0)
    assert res["mcsf"]["latency_slots"].mean() < res["mc"]["latency_slots"].mean()


def test_underestimates_overflow_and_are_evicted():
    # predictions far too short (noisy with σ = 1.5): the check admits too much and the engine's
    # LIFO eviction steps in; the run stays consistent (checked every slot)
    cfg = SimConfig(_wl(), 60, "mcsf:predict=noisy:1.5", slots=400, arrival_rate=0.5, seed=3)
    checker = InvariantChecker(fifo=False)
    res = simulate(cfg, check=checker, engine="python")
    checker.finish()
    assert res.summary["evictions"] + res.summary["dropped_on_admission"] > 0


def test_constructor_checks_the_prediction():
    for cls in (MC, MCSFPredicted):
        with pytest.raises(SpecError):
            cls(predict="noisy:0.3")
    assert MC(predict=Prediction("over", 2)).spec() == "mc:predict=over:2"
