"""F12, the §4.2 comparison in seconds (paper_figs/fig_f12_section42.py), and the report's
"Trace comparison in seconds" section (flowstab/report/section42.py).

The quick config (one trace, two loads, both evictions, mixed and chunked batching, every policy,
two seeds of 150 requests; a few seconds) backs the structural checks: the table has one row per
trace × load × eviction × batching × policy and every column, each mean ± half-width is the
Student-t interval of the per-seed values kept in the results file, each cell has exactly one
winner per metric (the argmax/argmin of its column, a non-clairvoyant one among the deployable),
the per-run invariants hold (TTFT ≤ latency quantile by quantile, p95 ≤ p99, KV use in [0, 1],
no evictions for reserve at the largest decode length), and the same seed gives the same numbers.
A small overload run checks a direction that cannot come out the other way by chance: far above
capacity, reserve (which holds the worst-case decode length per request) never evicts, and
greedy does. The report's section is checked on a tiny workload.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # paper_figs is repository-local, not an installed package
    sys.path.insert(0, str(ROOT))

from paper_figs import FIGURES  # noqa: E402
from paper_figs import fig_f12_section42 as f12  # noqa: E402
from paper_figs.__main__ import resolve_names  # noqa: E402
from paper_figs.io import BASE_SEED, clean  # noqa: E402

SEED = BASE_SEED + f12.SEED_OFFSET
#: Slack of float comparisons between a quantity and its recomputation (a few ulps of values ≲ 10⁴).
REL_TOL = 1e-9


def _doc(cfg: dict, seed: int = SEED) -> dict:
    cfg = clean(cfg)
    return {"name": "f12_section42", "provenance": {"config": cfg, "quick": True, "seed": seed},
            "data": clean(f12.experiment(cfg, seed))}


@pytest.fixture(scope="module")
def doc() -> dict:
    return _doc(f12.config(True))


def test_registered():
    assert "f12_section42" in FIGURES
    assert resolve_names("f12") == ["f12_section42"]
    assert set(f12.config(True)) == set(f12.config(False))


def test_table_has_every_row_and_column(doc):
    cfg = doc["provenance"]["config"]
    df = f12.table(doc)
    n = len(cfg["traces"]) * len(cfg["loads"]) * len(cfg["evictions"]) * len(cfg["batchings"])
    assert len(df) == n * len(cfg["policies"])
    for metric in f12.METRICS:
        assert {metric, f"{metric}_ci"} <= set(df.columns)
    for metric in f12.WIN_METRICS:
        assert {f"win_{metric}", f"win_{metric}_deployable"} <= set(df.columns)
    keys = ["trace", "load", "eviction", "batching", "policy"]
    assert not df.duplicated(keys).any()
    assert set(df.policy) == set(cfg["policies"])
    assert df[list(f12.METRICS)].notna().all().all()


def test_intervals_are_the_student_t_ones(doc):
    """Each mean ± half-width recomputed from the per-seed values; half-widths ≥ 0."""
    for row in doc["data"]["rows"]:
        for metric in f12.METRICS:
            x = np.asarray(row["seeds"][metric], dtype=float)
            half = stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size)
            assert row[metric] == pytest.approx(x.mean(), rel=REL_TOL, abs=REL_TOL)
            assert row[f"{metric}_ci"] == pytest.approx(half, rel=REL_TOL, abs=REL_TOL)
            assert row[f"{metric}_ci"] >= 0  # so low = mean − half ≤ mean ≤ high = mean + half
            assert (row[f"{metric}_ci"] == 0) == (x.max() == x.min())


def test_one_winner_per_cell_and_metric(doc):
    df = f12.table(doc)
    for _, cell in df.groupby(["trace", "load", "eviction", "batching"]):
        for metric, way in f12.WIN_METRICS.items():
            best = cell[metric].max() if way == "max" else cell[metric].min()
            win = cell[cell[f"win_{metric}"]]
            assert len(win) == 1
            assert win[metric].iloc[0] == best
            dep = cell[cell[f"win_{metric}_deployable"]]
            assert len(dep) == 1
            assert not dep.clairvoyant.iloc[0]
            pool = cell[~cell.clairvoyant]
            assert dep[metric].iloc[0] == (pool[metric].max() if way == "max" else pool[metric].min())


def test_per_run_invariants(doc):
    for row in doc["data"]["rows"]:
        s = row["seeds"]
        for i in range(len(s["throughput_rps"])):
            # TTFT_i ≤ latency_i request by request (both censored at H), so quantile by quantile
            assert s["ttft_p99_s"][i] <= s["latency_p99_s"][i] + REL_TOL
            assert s["ttft_mean_s"][i] <= s["latency_mean_s"][i] + REL_TOL
            assert s["latency_p95_s"][i] <= s["latency_p99_s"][i] + REL_TOL
            assert 0 <= s["kv_util_mean"][i] <= 1
            assert s["kv_util_std"][i] >= 0
            assert 0 <= s["censored_fraction"][i] <= 1
        if row["policy"] == "reserve":  # holds the largest decode length per request: never evicts
            assert max(s["evictions"]) == 0


def test_same_seed_same_result_and_seed_matters():
    cfg = f12.config(True) | {"loads": [1.2], "evictions": ["recompute"], "batchings": ["chunked"],
                              "policies": ["greedy", "flow", "mcsf-noisy"], "requests": 120}
    a, b, c = _doc(cfg), _doc(cfg), _doc(cfg, SEED + 1)
    assert a["data"] == b["data"]
    assert a["data"]["rows"][0]["seeds"] != c["data"]["rows"][0]["seeds"]


def test_overload_greedy_evicts_reserve_does_not():
    """At 1.5 × Λ* on ShareGPT (decodes of ~440 tokens: admitted requests keep growing), greedy
    overflows and evicts (LIFO), reserve at the largest decode length cannot: a structural
    direction, not a noisy one."""
    cfg = f12.config(True) | {"traces": [f12.TRACES[2]], "loads": [1.5], "evictions": ["recompute"],
                              "batchings": ["mixed"],
                              "policies": ["greedy", "reserve"], "requests": 600, "replications": 1}
    df = f12.table(_doc(cfg))
    ev = df.set_index("policy").evictions
    assert ev["reserve"] == 0
    assert ev["greedy"] > 0


def test_markdown_csv_and_figure(doc, tmp_path):
    csv, md = f12.write_table(doc, tmp_path / "f12_section42.csv")
    assert csv.is_file()
    text = md.read_text()
    assert "A_min" in text
    assert "## Which policy wins where" in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and "±" in line]
    assert len(rows) == len(doc["data"]["rows"])
    assert sum(line.count("T★") for line in rows) == len(doc["data"]["cells"])
    fig = f12.plot(doc)
    cfg = doc["provenance"]["config"]
    assert len(fig.axes) == 2 * len(cfg["traces"]) * len(cfg["evictions"]) * len(cfg["batchings"])
    assert f12.headline(doc)


def test_report_section():
    from flowstab.report.section42 import section42_grid, section42_html
    from numerics.model.specs import parse_law
    from numerics.model.steptime import StepTimeModel
    from numerics.model.workload import Workload

    wl = Workload.single(parse_law("20"), parse_law("geom:mean=10,max=100"), name="tiny")
    grid = section42_grid(wl, 2_000, StepTimeModel.from_spec("linear:c0=0.02,cb=0.0003,cp=0.0001"),
                          seeds=[1, 2], requests=150, loads=(1.2,))
    assert len(grid["cells"]) == 4
    for c in grid["cells"]:
        assert set(c["winners"]) == {"throughput_rps", "latency_p99_s", "ttft_p99_s"}
        assert "mcsf" not in c["winners"].values()  # the clairvoyant reference is not a winner
        thr = {n: p["throughput_rps"] for n, p in c["policies"].items() if n != "mcsf"}
        assert thr[c["winners"]["throughput_rps"]] == max(thr.values())
    html = section42_html(grid)
    assert '<section id="section42">' in html
    assert "paper_figs --only f12" in html
    assert "Not run" in section42_html(None)
