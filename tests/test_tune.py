"""``flowstab tune``: the candidates, the selection rule, SLOs, overload, determinism and the CLI.

The simulations are small (2–3 seeds of 2 000–4 000 slots, compiled policies only unless marked
slow). Where a test asserts a simulated outcome, the margin is far outside the run-to-run noise
measured for it (stated beside each); the runs are seeded, so a test either always passes or
always fails on a given code base.
"""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from conftest import assert_one_line_cli_error

from flowstab.cli import main
from numerics.errors import SettingError, SpecError
from numerics.model.specs import parse_law
from numerics.model.workload import Workload
from numerics.sim import SimConfig, parse_policy, replicate
from numerics.sim.tune import RATE_CAP, candidate_set, tune
from numerics.sim.tune_table import SLOPE_SHARE, THROUGHPUT_SHARE, TIE_SHARE, select

#: Deterministic lengths S = 20, O = 100 in M = 20 000: E[W] = 2 000 + 5 050, λ_max = 2.8369 per slot.
#: Issue 14 measured greedy collapsing there at 0.95 λ_max (1.66 req/slot, p99 7 479 slots)
#: while flow control at 0.98 λ_max served 2.68.
DET = Workload.single(parse_law("20"), parse_law("100"))
M_DET = 20_000
LAM_MAX_DET = M_DET / 7050
FAST = {"slots": 3_000, "seeds": 2, "confirm": 2, "confirm_seeds": 3, "confirm_slots": 4_000,
        "families": ["greedy", "flow"]}


def _confirmed(res) -> pd.DataFrame:
    return res.table[res.table["stage"] == "confirmation"].reset_index(drop=True)


@pytest.fixture(scope="module")
def det_095():
    return tune(DET, M_DET, load=0.95, **FAST)


def test_same_seed_same_pick_and_table(det_095):
    again = tune(DET, M_DET, load=0.95, **FAST)
    assert again.spec == det_095.spec
    pd.testing.assert_frame_equal(again.table, det_095.table)
    other = tune(DET, M_DET, load=0.95, **{**FAST, "seed": 1})
    assert other.settings["screening_root"] != det_095.settings["screening_root"]


def test_pick_satisfies_the_rule_on_its_own_table(det_095):
    """The rule re-derived from the confirmed rows, independently of ``select``."""
    t = _confirmed(det_095)
    thr, lat, slope = (t[k].to_numpy() for k in ("throughput_requests_per_slot",
                                                  "latency_p99_slots", "queue_slope"))
    limit = max(slope.min(), 0) + SLOPE_SHARE * det_095.arrival_rate
    ok = slope <= limit
    t_star = thr[ok].max()
    eligible = ok & (thr >= THROUGHPUT_SHARE * t_star)
    pick = t.index[t["chosen"]][0]
    assert eligible[pick]
    assert lat[pick] <= (1 + TIE_SHARE) * lat[eligible].min()
    assert list(t["eligible"]) == list(eligible)
    assert det_095.meets_slo


def test_flow_control_wins_where_greedy_collapses(det_095):
    """Deterministic S=20, O=100, M=20 000 at 0.95 λ_max: greedy's synchronised evictions
    collapse it (issue 14: 1.66 req/slot); flow control near λ_max serves the arrivals."""
    t = det_095.table
    greedy = t[t["family"] == "greedy"]
    assert greedy["collapsed"].all()
    assert (greedy["throughput_requests_per_slot"] < 0.7 * det_095.arrival_rate).all()  # ~0.62
    assert det_095.policy.spec_name == "flow"
    row = det_095.row
    assert row["throughput_requests_per_slot"] >= 0.97 * det_095.arrival_rate  # 0.99 measured
    assert row["latency_p99_slots"] < 400  # ~130 measured; greedy's is ~1 800 at 4 000 slots


def test_slo_nobody_meets():
    res = tune(DET, M_DET, load=0.95, slo_p99_latency=50, **FAST)  # O = 100: impossible
    assert res.meets_slo is False
    assert "no candidate meets the SLO" in res.reason
    assert "latency p99 ≤ 50 slots" in res.reason
    t = _confirmed(res)
    live = t[~t["collapsed"]]
    assert res.spec == live.loc[live["throughput_requests_per_slot"].idxmax(), "spec"]


def test_slo_that_excludes_the_throughput_best_forces_a_lower_latency_pick():
    """The rule on a table where the throughput-best has the worst tail: without an SLO it is
    picked (the other serves < 98 % of it); an SLO below its p99 makes T* the best of the rest."""
    t = pd.DataFrame({
        "spec": ["greedy", "flow:rate=0.9"], "family": ["greedy", "flow"],
        "throughput_requests_per_slot": [1.00, 0.90], "latency_p99_slots": [900.0, 300.0],
        "ttft_p99_slots": [400.0, 20.0], "queue_slope": [0.0, 0.001],
    })
    assert t.loc[select(t, arrival_rate=1.0).chosen, "spec"] == "greedy"
    for slo in ({"latency_p99_slots": 500.0}, {"ttft_p99_slots": 50.0}):
        s = select(t, arrival_rate=1.0, slos=slo)
        assert s.meets_slo
        assert t.loc[s.chosen, "spec"] == "flow:rate=0.9"
        assert s.best_throughput == 0.90


def test_ttft_slo_end_to_end():
    """Geometric decodes (mean 100, max 1 000), M = 20 000, 0.9 λ_max: greedy starts requests at
    once (TTFT p99 14–19 slots measured), flow control near λ_max waits for its budget (~42); a
    30-slot TTFT SLO marks every flow candidate as missing it, and the pick meets it."""
    geo = Workload.single(parse_law("20"), parse_law("geom:mean=100,max=1000"))
    res = tune(geo, 20_000, load=0.9, slo_p99_ttft=30, **FAST)
    assert res.meets_slo
    assert res.row["ttft_p99_slots"] <= 30
    t = _confirmed(res)
    assert not t.loc[t["family"] == "flow", "meets_slo"].any()


def test_overload_pick_does_not_collapse_and_serves_the_most():
    """λ = 2 λ_max: every queue grows; the pick must still serve ≥ 98 % of the best reference on
    fresh seeds (greedy collapses to ~1.7 req/slot here, flow near λ_max serves ~2.8)."""
    res = tune(DET, M_DET, load=2.0, **FAST)
    assert not res.row["collapsed"]
    refs = ["greedy", *(f"flow:rate={LAM_MAX_DET * f:.5g}" for f in (0.9, 0.95, 0.98))]
    lam = 2 * LAM_MAX_DET

    def thr(spec: str) -> float:
        cfg = SimConfig(DET, M_DET, parse_policy(spec), slots=4_000, warmup=400, arrival_rate=lam)
        return float(replicate(cfg, 3, seed=99, processes=1)["throughput_requests_per_slot"].mean())

    best = max(thr(s) for s in refs)
    assert thr(res.spec) >= THROUGHPUT_SHARE * best


def test_candidate_set_narrowing():
    low, theory, notes = candidate_set(DET, M_DET, 0.3 * LAM_MAX_DET)
    rates = [c.rate for c in low if c.rate is not None]
    assert max(rates) == pytest.approx(RATE_CAP * 0.3 * LAM_MAX_DET)
    assert any("replaced by" in n for n in notes)
    assert theory["lambda_max"] == pytest.approx(LAM_MAX_DET)
    assert {c.family for c in low} >= {"greedy", "flow", "adaptive"}
    assert "flowfit" not in {c.family for c in low}  # mixed: flow's schedule exactly
    fit, _, _ = candidate_set(DET, M_DET, LAM_MAX_DET, fit_differs=True)
    assert "flowfit" in {c.family for c in fit}
    full, _, _ = candidate_set(DET, M_DET, LAM_MAX_DET)
    assert max(c.rate for c in full if c.rate) == pytest.approx(1.02 * LAM_MAX_DET)
    try:
        parse_policy("lookahead")
        has = True
    except SpecError:
        has = False
    assert ("lookahead" in {c.family for c in full}) == has
    with pytest.raises(SpecError, match="families"):
        candidate_set(DET, M_DET, 1.0, families=["nope"])


def test_select_ties_go_to_the_simpler_family_and_collapse_is_relative():
    t = pd.DataFrame({
        "spec": ["adaptive", "flow:rate=1", "greedy", "flow:rate=0.5"],
        "family": ["adaptive", "flow", "greedy", "flow"],
        "throughput_requests_per_slot": [1.00, 0.99, 0.70, 0.50],
        "latency_p99_slots": [100.0, 101.5, 90.0, 5000.0],
        "queue_slope": [0.0, 0.001, 0.3, 0.5],
    })
    s = select(t, arrival_rate=1.0)
    assert list(s.collapsed) == [False, False, True, True]
    assert t.loc[s.chosen, "spec"] == "flow:rate=1"  # within 2 % of adaptive's p99, simpler
    s = select(t, arrival_rate=1.0, slos={"latency_p99_slots": 80.0})
    assert not s.meets_slo
    assert t.loc[s.chosen, "spec"] == "adaptive"


def test_bad_settings_raise():
    with pytest.raises(SettingError, match="not both"):
        tune(DET, M_DET, 1.0, load=0.5, **FAST)
    with pytest.raises(SettingError, match="seeds"):
        tune(DET, M_DET, load=0.5, **{**FAST, "seeds": 0})
    with pytest.raises(SettingError, match="step time"):
        tune(DET, M_DET, load=0.5, slo_p99_latency=1.0, slo_unit="seconds", **FAST)
    with pytest.raises(SpecError):
        tune(DET, M_DET, load=0.5, candidates=["nosuch:1"], **FAST)


CLI = ["tune", "--prompt", "20", "--decode", "100", "--memory", "20000", "--slots", "2000",
       "--seeds", "2", "--confirm", "1", "--families", "greedy,flow"]


def test_cli_json_has_the_policy(capsys):
    code = main([*CLI, "--load", "0.95", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    data = json.loads(out)
    parse_policy(data["policy"])
    assert data["policy"].startswith("flow:")
    assert math.isclose(data["load"], 0.95)
    assert {"spec", "stage", "throughput_requests_per_slot", "latency_p99_slots",
            "chosen"} <= set(data["table"][0])
    assert sum(r["chosen"] for r in data["table"]) == 1


def test_cli_text_starts_with_the_recommendation(capsys):
    code = main([*CLI, "--arrival-rate", "2.7"])
    out, _ = capsys.readouterr()
    assert code == 0
    assert out.startswith("recommended: flow:rate=")
    assert "because" in out.splitlines()[0]


@pytest.mark.parametrize(("extra", "needle"), [
    (["--load", "0.9", "--p99-latency", "-1"], "--p99-latency"),
    (["--load", "0.9", "--seeds", "0"], "--seeds"),
    (["--load", "0.9", "--arrival-rate", "2"], "not both"),
    (["--load", "0.9", "--families", "bogus"], "families"),
    (["--load", "0.9", "--p99-ttft", "3", "--slo-unit", "seconds"], "step time"),
    (["--load", "0.9", "--candidates", "flow:rate=-1"], "rate"),
])
def test_cli_bad_input_one_line_exit_2(capsys, extra, needle):
    assert_one_line_cli_error(capsys, [*CLI, *extra], needle)


@pytest.mark.slow
def test_default_candidates_with_python_engine_policies():
    """The full default set (adaptive, lookahead when present; racing) on a short run."""
    res = tune(DET, M_DET, load=0.95, slots=3_000, seeds=2, confirm=2)
    assert "adaptive" in set(res.table["spec"])
    assert res.policy.spec_name in {"flow", "adaptive", "lookahead"}
    assert not res.row["collapsed"]


def test_compare_default_lineup_leads_with_the_tuned_pick(capsys):
    # issue 14 item 3: compare's default line-up uses tune. On deterministic lengths at 0.95 λ_max
    # greedy synchronises and collapses (issue 14's table: 1.66 vs 2.68 req/slot), so the tuned
    # pick must serve clearly more than greedy on the same arrivals.
    import json

    from flowstab.cli import main

    lam = 0.95 * 20_000 / (20 * 100 + 100 * 101 / 2)  # 0.95 λ_max, E[W] = 7 050
    argv = ["compare", "--prompt", "20", "--decode", "100", "--memory", "20000", "--arrival-rate",
            f"{lam:.6f}", "--slots", "20000", "--json"]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    rows = json.loads(out)
    assert "tuned = " in err  # the note says what was picked, and how
    first, greedy = rows[0], next(r for r in rows if r["policy"] == "greedy:watermark=0.01")
    assert first["throughput_requests_per_slot"] > 1.3 * greedy["throughput_requests_per_slot"]
