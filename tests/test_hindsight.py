"""The hindsight program (numerics.analysis.hindsight) and ``flowstab hindsight``.

The program's optimum equals a brute-force enumeration on tiny instances; its schedule is
feasible and its objective is the simulator's latency convention; no policy beats it under
recompute eviction (hypothesis, N ≤ 6, M ≤ 50); the LP bound lies below it; the simulator replays
exactly the instance's arrival slots; a time-limited solve reports its gap; the CLI prints JSON
and one-line errors.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowstab.cli import main
from numerics.analysis.hindsight import (
    Instance,
    _trace_config,
    check_schedule,
    compare_policies,
    list_schedule,
    paper_instance,
    policy_latency,
    schedule_latency,
    solve_hindsight,
    solve_lp,
)
from numerics.errors import SettingError, WorkloadError
from numerics.sim.results import simulate


def _brute_force(inst: Instance) -> int:
    """The least total latency over every start vector in [a_i, horizon − o_i] (tiny n only)."""
    ranges = [range(int(a), inst.horizon() - int(o) + 1)
              for a, o in zip(inst.arrival, inst.decode, strict=True)]
    best = None
    for start in itertools.product(*ranges):
        if check_schedule(inst, np.array(start)):
            lat = schedule_latency(inst, np.array(start))
            best = lat if best is None else min(best, lat)
    return best


@st.composite
def tiny(draw, n_max=3, o_max=6):
    n = draw(st.integers(1, n_max))
    memory = draw(st.integers(4, 14))
    s = [draw(st.integers(0, 3)) for _ in range(n)]
    o = [draw(st.integers(1, min(o_max, memory - si))) for si in s]
    a = [draw(st.integers(0, 4)) for _ in range(n)]
    return Instance(a, s, o, memory)


@settings(max_examples=40, deadline=None)
@given(inst=tiny())
def test_optimum_equals_brute_force(inst):
    sol = solve_hindsight(inst, time_limit=30)
    assert sol.optimal
    assert sol.objective == _brute_force(inst)
    assert check_schedule(inst, sol.start)
    assert schedule_latency(inst, sol.start) == sol.objective


def test_hand_instance():
    # M = 10: two (s=1, o=4) requests fit together (peak 5 + 5), a third must wait for them
    inst = Instance([0, 0, 0], [1, 1, 1], [4, 4, 4], 10)
    sol = solve_hindsight(inst)
    assert sol.optimal
    assert sol.objective == 4 + 4 + 8
    # latency = completion slot − arrival slot + 1, as the simulator counts it
    res = policy_latency(inst, "mc")
    assert res["total_latency"] == 16
    assert res["evictions"] == 0


def test_simulator_replays_the_instance_exactly():
    rng = np.random.default_rng(4)
    inst = paper_instance(12, rng, "poisson", 0.3)
    cfg, shift = _trace_config(inst, "mcsf", inst.horizon() * 2, 0, "recompute")
    rec = simulate(cfg, engine="python").records
    assert np.array_equal(rec["arrival_slot"].to_numpy() + shift, inst.arrival)
    assert np.array_equal(rec["prompt"].to_numpy(), inst.prompt)
    assert np.array_equal(rec["decode"].to_numpy(), inst.decode)


POLICIES = ["mcsf", "mc", "greedy", "alpha:0.1", "flow:rate=0.3", "mcsf:predict=noisy:0.5",
            "mc:predict=over:1.5"]


@st.composite
def small(draw, n_max=6, o_max=15):
    n = draw(st.integers(1, n_max))
    memory = draw(st.integers(8, 50))
    s = [draw(st.integers(0, 5)) for _ in range(n)]
    o = [draw(st.integers(1, min(o_max, memory - si))) for si in s]
    a = sorted(draw(st.integers(0, 10)) for _ in range(n))
    return Instance(a, s, o, memory)


@settings(max_examples=20, deadline=None)
@given(inst=small(), seed=st.integers(0, 1000))
def test_no_policy_beats_the_optimum(inst, seed):
    # under recompute the last activations of any run form a feasible non-preemptive schedule
    # (module docstring), so the optimum bounds every policy, evictions and all
    out = compare_policies(inst, POLICIES, seed=seed, time_limit=30)
    assert out["solver"]["optimal"]
    opt = out["optimal_total_latency"]
    assert opt >= int(inst.decode.sum())
    for row in out["policies"]:
        assert row["finished"], row
        assert row["total_latency"] >= opt, row
    lp = solve_lp(inst)
    assert lp.objective <= opt + 1e-6
    assert opt <= min(schedule_latency(inst, list_schedule(inst, o)) for o in ("fcfs", "shortest"))


def test_time_limit_reports_the_gap():
    inst = paper_instance(14, np.random.default_rng(0), "batch")
    sol = solve_hindsight(inst, time_limit=0.5)
    assert not sol.optimal
    assert "time limit" in sol.status.lower()
    # a feasible schedule is always reported (HiGHS's incumbent or the list schedule)
    assert sol.objective is not None
    assert check_schedule(inst, sol.start)
    assert sol.objective == schedule_latency(inst, sol.start)
    if sol.bound is not None:  # HiGHS got past its root: bound and gap as it proved them
        assert sol.bound <= sol.objective
        assert sol.gap == pytest.approx((sol.objective - sol.bound) / sol.objective)


def test_bad_instances():
    with pytest.raises(WorkloadError):
        Instance([0], [5], [10], 12)  # s + o > M
    with pytest.raises(WorkloadError):
        Instance([0, 1], [1], [1, 2], 12)
    with pytest.raises(SettingError):
        paper_instance(3, np.random.default_rng(0), "poisson")  # no rate
    with pytest.raises(SettingError):
        solve_hindsight(Instance([0], [1], [1], 5), time_limit=0)


def test_cli_json(capsys):
    rc = main(["hindsight", "--requests", "5", "--seed", "2", "--policies", "mcsf,greedy,flow:rate=0.3",
               "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["solver"]["optimal"]
    assert out["proven_optimal"]
    assert [r["policy"].split(":")[0] for r in out["policies"]] == ["mcsf", "greedy", "flow"]
    for r in out["policies"]:
        assert r["total_latency"] >= out["optimal_total_latency"]
        assert r["ratio"] == pytest.approx(r["total_latency"] / out["optimal_total_latency"])


def test_cli_lp_and_laws(capsys):
    rc = main(["hindsight", "--requests", "6", "--prompt", "uniform:1,4", "--decode", "uniform:1,20",
               "--memory", "40", "--arrivals", "poisson", "--arrival-rate", "0.2", "--lp", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["optimal_total_latency"] is None
    assert out["ratio_to"] == "lp_bound"
    assert all(r["ratio"] >= 1 - 1e-9 for r in out["policies"])


@pytest.mark.parametrize("argv", [
    ["--requests", "4", "--arrivals", "poisson"],
    ["--requests", "4", "--arrival-rate", "0.2"],
    ["--requests", "4", "--prompt", "2"],
    ["--requests", "4", "--policies", "mc:predict=under:2"],
    ["--requests", "4", "--prompt", "5", "--decode", "uniform:1,60", "--memory", "40"],
])
def test_cli_errors_are_one_line(argv, capsys):
    try:
        rc = main(["hindsight", *argv])
    except SystemExit as exc:  # argparse's own errors exit; the command's return 2
        rc = exc.code
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("flowstab: error:")
    assert "\n" not in err


def test_preemption_example_of_the_docs():
    # docs/hindsight.md: M = 21, a long request (1, 20) at slot 0 and a short one (5, 1) at slot
    # 15. By hand: the long one must hold ≤ 15 tokens at slot 15, so it starts at slot ≥ 2, giving
    # 22 + 1 = 23 (a pause of one slot would give 21 + 1 = 22, beyond the non-preemptive program)
    sol = solve_hindsight(Instance([0, 15], [1, 5], [20, 1], 21))
    assert sol.objective == 23
    assert sol.start.tolist() == [2, 15]
