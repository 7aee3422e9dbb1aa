"""F11, the phase diagram of which scheduler wins (paper_figs/fig_f11_phase.py).

A tiny grid (two decode laws, one load, slots and seconds with mixed batching, two seeds) backs
the structural checks: every cell is in the table, each cell's winner is the argmax of its
throughput column, the ratios are the ones the columns give, flow's rate is the best of its three,
and the figure draws. Two direction checks reproduce the issue's measurement with small runs: on
deterministic decode flow control beats greedy by a wide margin, on geometric decode in overload
greedy beats flow control at every rate of the grid. The report's "Which scheduler wins" section
(flowstab/report/phase.py) is checked at the end.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # paper_figs is repository-local, not an installed package
    sys.path.insert(0, str(ROOT))

from paper_figs import FIGURES  # noqa: E402
from paper_figs import fig_f11_phase as f11  # noqa: E402
from paper_figs.io import BASE_SEED, clean  # noqa: E402

#: The issue's workload: S = 20, O = 100 (deterministic), M = 20 000 tokens.
M = 20_000


def _tiny() -> dict:
    """The quick config, smaller still (about 1 s): one load, one eviction mode, runs of
    600 slots / 500 requests."""
    return clean(f11.config(True) | {"loads": [1.2], "evictions": ["recompute"], "slots": 600,
                                     "warmup": 150, "requests": 500})


@pytest.fixture(scope="module")
def doc():
    cfg = _tiny()
    data = f11.experiment(cfg, BASE_SEED + f11.SEED_OFFSET)
    return {"name": "f11_phase", "provenance": {"config": cfg, "quick": True}, "data": clean(data)}


def test_registered():
    assert "f11_phase" in FIGURES
    from paper_figs.__main__ import resolve_names

    assert resolve_names("f11") == ["f11_phase"]


def test_configs():
    full, quick = f11.config(False), f11.config(True)
    assert full["loads"] == [0.8, 0.9, 1.0, 1.1, 1.2, 1.3]
    assert full["evictions"] == ["recompute", "keep-progress"]
    assert full["time_models"] == list(f11.TIME_MODELS)
    assert full["flow_fractions"] == [0.9, 0.95, 0.98]
    assert ("lookahead" in full["families"]) == f11.lookahead_available()
    assert set(quick) == set(full)


def test_laws_share_the_mean_and_order_by_cv():
    from numerics.model.specs import parse_law

    laws = [parse_law(law["decode"]) for law in f11.LAWS]
    for law in laws:
        assert law.mean == pytest.approx(100, rel=1e-3)
    cv = [math.sqrt(law.var) / law.mean for law in laws]
    assert cv[0] == 0
    assert cv == sorted(cv)  # the axis is ordered by variability
    assert cv[-1] > 1.05  # the azure-code shape is more variable than geometric


def test_table_has_every_cell(doc):
    cfg = doc["provenance"]["config"]
    df = f11.table(doc)
    expected = {(law["name"], tm, ev, load) for law in cfg["laws"] for tm in cfg["time_models"]
                for ev in cfg["evictions"] for load in cfg["loads"]}
    got = set(zip(df.law, df.time_model, df.eviction, df.load, strict=True))
    assert got == expected
    assert len(df) == len(expected)
    for fam in ("greedy", "flow", "flowfit", "adaptive"):
        assert df[f"thr_{fam}"].notna().all(), fam
        assert (df[f"thr_{fam}"] > 0).all(), fam


def test_winner_is_the_argmax_of_throughput(doc):
    for c in doc["data"]["cells"]:
        fams = list(c["policies"])
        thr = {f: c["policies"][f]["throughput"]["mean"] for f in fams}
        assert thr[c["winner"]] == max(thr.values())
        new = {f: v for f, v in thr.items() if f != "greedy"}
        assert thr[c["best_new"]] == max(new.values())
        assert c["ratio_best_new"] == pytest.approx(thr[c["best_new"]] / thr["greedy"])
        assert c["ratio_flow"] == pytest.approx(thr["flow"] / thr["greedy"])
        assert (c["winner"] == "greedy") == (c["ratio_best_new"] <= 1)


def test_flow_rate_is_the_best_of_its_grid_and_flowfit_shares_it(doc):
    """Flow's reported rate is the best of the three tried by mean throughput; flowfit runs at it."""
    cfg = doc["provenance"]["config"]
    for c in doc["data"]["cells"]:
        flow = c["policies"]["flow"]
        assert len(flow["tried"]) == len(cfg["flow_fractions"])
        assert flow["spec"] == flow["tried"][int(np.argmax(flow["tried_throughput"]))]
        assert flow["throughput"]["mean"] == pytest.approx(max(flow["tried_throughput"]))
        assert c["policies"]["flowfit"]["spec"] == flow["spec"].replace("flow:", "flowfit:")


def test_common_seeds_and_intervals(doc):
    cfg = doc["provenance"]["config"]
    assert len(doc["data"]["seeds"]) == cfg["replications"]
    for c in doc["data"]["cells"]:
        for p in c["policies"].values():
            ci, seeds = p["throughput"], p["throughput_seeds"]
            assert len(seeds) == cfg["replications"]
            assert ci["low"] <= ci["mean"] <= ci["high"]
            assert ci["mean"] == pytest.approx(np.mean(seeds))


@pytest.mark.slow
def test_plot_and_csv(doc, tmp_path):
    from paper_figs.style import png_bytes

    png = png_bytes(f11.plot(doc))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(png) > 20_000
    path = f11.write_table(doc, tmp_path / "f11_phase.csv")
    lines = path.read_text().splitlines()
    assert lines[0].startswith("law,cv,time_model,eviction,load")
    assert len(lines) == 1 + len(doc["data"]["cells"])


def _throughput(decode: str, load: float, spec_fraction: float | None, seeds: list[int]) -> np.ndarray:
    from numerics.analysis.conditions import lambda_max
    from numerics.model.specs import parse_law
    from numerics.model.workload import Workload
    from numerics.sim import SimConfig, parse_policy, simulate

    wl = Workload.single(parse_law("20"), parse_law(decode))
    lam = lambda_max(wl, M)
    spec = "greedy:watermark=0.01" if spec_fraction is None else f"flow:rate={spec_fraction * lam:.6g}"
    out = []
    for s in seeds:
        cfg = SimConfig(wl, M, parse_policy(spec), slots=1_500, warmup=500, arrival_rate=load * lam,
                        seed=s, eviction="recompute")
        out.append(simulate(cfg, records=False).summary["throughput_requests_per_slot"])
    return np.array(out)


def test_deterministic_decode_flow_beats_greedy():
    """Provenance: issue 14 measured 2.68 (flow) vs 1.66 (greedy) requests/slot on S = 20,
    O = 100, M = 20 000 under recompute in slots. Here 2 seeds of 1 500 slots at 0.95 λ_max; in
    20 seeds (root 123) of this run the ratio flow@0.98 λ_max / greedy was 1.28–1.66 per seed
    (greedy 1.78 ± 0.16, flow 2.68 ± 0.03), so a mean ratio below 1.15 is not a chance event."""
    from numerics.sim.replicate import replication_seeds

    seeds = replication_seeds(7, 2)
    greedy = _throughput("100", 0.95, None, seeds)
    flow = max((_throughput("100", 0.95, f, seeds) for f in (0.9, 0.95, 0.98)), key=np.mean)
    assert flow.mean() >= 1.15 * greedy.mean()
    assert flow.mean() > 2.5  # close to its rate: it neither starves nor thrashes


def test_geometric_decode_greedy_beats_flow_in_overload():
    """Geometric decode (CV 0.99) at 1.2 λ_max, recompute, slots: greedy's throughput exceeds
    flow control's at each of 0.9, 0.95, 0.98 λ_max. In 20 seeds (root 123) of this run the
    ratio flow/greedy was at most 0.968 per seed at every rate (greedy 1.65 ± 0.06, flow at
    0.98 λ_max 1.51 ± 0.03); the test asks only that the 3-seed means keep the direction."""
    from numerics.sim.replicate import replication_seeds

    seeds = replication_seeds(11, 3)
    greedy = _throughput("geom:mean=100", 1.2, None, seeds)
    for f in (0.9, 0.95, 0.98):
        assert greedy.mean() > _throughput("geom:mean=100", 1.2, f, seeds).mean(), f


@pytest.mark.slow
@pytest.mark.skipif(not f11.lookahead_available(), reason="parse_policy('lookahead') not in this checkout")
def test_lookahead_cell_runs():
    """One slots cell with lookahead in the line-up (when the checkout has it)."""
    cfg = clean(f11.config(True) | {"laws": [f11.LAWS[0]], "loads": [1.0], "evictions": ["recompute"],
                                    "time_models": ["slots"],
                                    "lookahead_cells": {"time_models": ["slots"], "evictions": ["recompute"]},
                                    "slots": 400, "warmup": 100, "replications": 2})
    data = f11.experiment(cfg, 1)
    (cell,) = data["cells"]
    assert "lookahead" in cell["policies"]
    assert cell["policies"]["lookahead"]["throughput"]["mean"] > 0


# ---------------------------------------------------------------------------------- the report
@pytest.mark.slow
def test_report_section_which_scheduler_wins():
    """``flowstab report``'s grid on a tiny workload: 12 cells, the winner the argmax, in the page."""
    import json
    import re

    from flowstab.report import ReportConfig, build_report
    from flowstab.report.phase import PHASE_LOADS
    from numerics.model.specs import parse_law
    from numerics.model.workload import Workload

    wl = Workload.single(parse_law("20"), parse_law("geom:mean=10,max=100"), name="tiny")
    report = build_report(ReportConfig(wl, 2000, slots=300, replications=2, verify=False))
    grid = report.data["phase"]
    assert len(grid["cells"]) == 2 * len(PHASE_LOADS)
    assert grid["slots"] == 300
    assert len(grid["seeds"]) == 2
    for c in grid["cells"]:
        thr = {f: p["throughput"] for f, p in c["policies"].items()}
        assert set(thr) == {"greedy", "flow", "flowfit", "adaptive"}
        assert thr[c["winner"]] == max(thr.values())
        assert c["ratio_best_new"] == pytest.approx(max(v for f, v in thr.items() if f != "greedy")
                                                    / thr["greedy"])
    html = report.html
    assert '<section id="phase">' in html
    assert '<a href="#phase">' in html
    assert html.index('<section id="simulation">') < html.index('<section id="phase">') \
        < html.index('<section id="verification">')
    assert "flowstab tune" in html
    m = re.search(r'<script type="application/json" id="flowstab-data">(.*?)</script>', html, re.S)
    embedded = json.loads(m.group(1).replace("<\\/", "</"))["phase"]
    assert embedded["cells"][0]["winner"] == grid["cells"][0]["winner"]
    assert "phase" in report.timings


def test_report_without_simulation_has_no_grid():
    from flowstab.report import ReportConfig, build_report
    from numerics.model.specs import parse_law
    from numerics.model.workload import Workload

    wl = Workload.single(parse_law("20"), parse_law("geom:mean=10,max=100"), name="tiny")
    report = build_report(ReportConfig(wl, 2000, simulate=False, verify=False))
    assert report.data["phase"] is None
    assert '<section id="phase">' in report.html
    assert "Not run" in report.html
