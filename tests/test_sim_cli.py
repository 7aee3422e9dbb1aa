"""``flowstab simulate`` / ``flowstab compare`` and :func:`numerics.sim.replicate` / :func:`ci`.

Small runs (a few thousand slots) so that the file runs in seconds: the summary keys, same seed ⇒
identical output, the compare table and its figure, replications and their confidence intervals,
and every bad input → one line on stderr and exit status 2.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pandas as pd
import pytest
from conftest import assert_one_line_cli_error

from flowstab.cli import main
from numerics.model.specs import parse_law
from numerics.model.workload import Workload
from numerics.sim import SimConfig, ci, parse_policy, replicate

#: A small stable workload: E[W] = 20·10 + 10·11/2 = 255 token-slots; at λ = 0.5 the load is
#: λ·E[W]/M = 127.5/1000 ≈ 0.13, so every policy keeps up and runs take milliseconds.
SMALL = ["--prompt", "20", "--decode", "geom:mean=10", "--memory", "1000", "--arrival-rate", "0.5"]
RUN = [*SMALL, "--slots", "3000"]
SIM = ["simulate", *RUN, "--policy", "flow:rate=0.8"]

SUMMARY_KEYS = {
    "arrived", "completed", "waiting_end", "active_end", "throughput_requests_per_slot",
    "throughput_tokens_per_slot", "latency_mean_slots", "latency_p95_slots", "ttft_mean_slots",
    "kv_util_mean", "kv_util_std", "kv_peak_tokens", "evictions", "wasted_tokens", "queue_slope",
}
SECONDS_KEYS = {"duration_s", "throughput_requests_per_s", "throughput_tokens_per_s",
                "latency_mean_s", "latency_p95_s", "ttft_mean_s"}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
#: Throughput of a stable run vs the arrival rate: 4 standard errors of the replication mean
#: (a false alarm about once in 16,000 runs under normality).
SIM_Z = 4.0


def run(capsys, argv):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def small_config(slots: int = 3000) -> SimConfig:
    wl = Workload.single(parse_law("20"), parse_law("geom:mean=10"))
    return SimConfig(wl, 1000, parse_policy("flow:rate=0.8"), slots=slots, arrival_rate=0.5,
                     warmup=slots // 10)


# ------------------------------------------------------------------------------------ simulate
def test_simulate_json_has_the_summary_keys(capsys):
    code, out, err = run(capsys, [*SIM, "--json"])
    assert code == 0, err
    data = json.loads(out)
    assert set(data) >= SUMMARY_KEYS
    assert not SECONDS_KEYS & set(data)
    assert data["slots"] == 3000
    assert data["warmup"] == 300  # default: slots // 10
    assert data["seed"] == 0
    assert data["policy"].startswith("flow:rate=0.8")
    # conservation: every arrival is completed, waiting or active at the end
    assert data["arrived"] == data["completed"] + data["waiting_end"] + data["active_end"]
    code, out, err = run(capsys, [*SIM, "--json", "--step-time", "linear:c0=0.02,cb=1e-4,ck=1e-7"])
    assert code == 0, err
    data = json.loads(out)
    assert set(data) >= SUMMARY_KEYS | SECONDS_KEYS
    assert data["duration_s"] > 0


def test_same_seed_same_json_other_seed_differs(capsys):
    outs = [run(capsys, [*SIM, "--json", "--seed", s])[1] for s in ("7", "7", "8")]
    assert outs[0] == outs[1]
    assert outs[0] != outs[2]


def test_simulate_text_table(capsys):
    code, out, err = run(capsys, [*SIM, "--eviction", "keep-progress", "--block-size", "16",
                                  "--arrivals", "deterministic", "--warmup", "0"])
    assert code == 0, err
    assert "throughput" in out
    assert "requests/slot" in out
    assert "KV utilisation mean" in out
    assert "blocks of 16 tokens" in out
    assert err == ""


def test_simulate_uses_the_workload_class_rates(capsys, tmp_path):
    wl = tmp_path / "two.toml"
    wl.write_text('memory_tokens = 2000\n'
                  '[[class]]\nname = "a"\nprompt = 10\ndecode = "geom:mean=5"\nrate = 0.2\n'
                  '[[class]]\nname = "b"\nprompt = 30\ndecode = "geom:mean=20"\nrate = 0.1\n')
    code, out, err = run(capsys, ["simulate", "--workload", str(wl), "--policy", "budgets:1,1",
                                  "--slots", "2000", "--json"])
    assert code == 0, err
    data = json.loads(out)
    assert data["memory_tokens"] == 2000
    assert math.isclose(data["arrival_rate_per_slot"], 0.3)


def test_replications_json_is_a_ci_table(capsys):
    code, out, err = run(capsys, [*SIM, "--replications", "3", "--processes", "1", "--json"])
    assert code == 0, err
    data = json.loads(out)
    assert data["replications"] == 3
    assert data["level"] == 0.95
    row = data["ci"]["throughput_requests_per_slot"]
    assert set(row) == {"mean", "std", "n", "half_width", "low", "high"}
    assert row["n"] == 3
    assert row["half_width"] > 0
    code, out, err = run(capsys, [*SIM, "--replications", "3", "--processes", "1"])
    assert code == 0, err
    assert "half-width" in out
    assert "±" in out


# ------------------------------------------------------------------------------------ compare
def test_compare_table_json_and_png(capsys, tmp_path):
    png = tmp_path / "compare.png"
    code, out, err = run(capsys, ["compare", *RUN, "--plot", str(png)])
    assert code == 0, err
    for name in ("flow:rate=", "greedy", "alpha:0.1", "mcsf", "req/slot", "lat p95", "q slope"):
        assert name in out
    assert "reserve skipped" in out  # geometric decode lengths are unbounded
    assert png.read_bytes()[:8] == PNG_MAGIC
    code, out, err = run(capsys, ["compare", *RUN, "--policies", "greedy; reserve:max=500 ;alpha:0.2",
                                  "--json"])
    assert code == 0, err
    data = json.loads(out)
    assert [d["policy"].split(":")[0] for d in data] == ["greedy", "reserve", "alpha"]
    assert all(set(d) >= SUMMARY_KEYS for d in data)
    # common random numbers: every policy sees the same arrivals
    assert len({d["arrived"] for d in data}) == 1


def test_compare_skips_reserve_only_when_unbounded(capsys):
    code, out, err = run(capsys, ["compare", "--prompt", "20", "--decode", "uniform:1,30",
                                  "--memory", "1000", "--arrival-rate", "0.5", "--slots", "2000",
                                  "--json"])
    assert code == 0, err
    policies = [d["policy"] for d in json.loads(out)]
    assert "reserve:max=30" in policies
    assert "mcsf" in policies


def test_plot_save_error_is_one_line(capsys, tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Figure, "savefig", refuse)
    code, out, err = run(capsys, ["compare", *RUN, "--policies", "greedy",
                                  "--plot", str(tmp_path / "x.png")])
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("flowstab: error: --plot")
    assert "Permission denied" in err


# ------------------------------------------------------------------------------------ replicate
def test_replicate_same_seed_same_frame_and_positive_half_widths():
    cfg = small_config()
    a = replicate(cfg, 4, seed=11, processes=2)
    b = replicate(cfg, 4, seed=11, processes=2)
    c = replicate(cfg, 4, seed=11, processes=1)
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(a, c)  # the process count does not change the result
    assert list(a["replication"]) == [0, 1, 2, 3]
    assert a["seed"].nunique() == 4
    assert set(a.columns) >= SUMMARY_KEYS
    d = replicate(cfg, 4, seed=12, processes=1)
    assert not a["arrived"].equals(d["arrived"])
    table = ci(a)
    assert {"mean", "std", "n", "half_width"} <= set(table.columns)
    assert "seed" not in table.index
    for metric in ("throughput_requests_per_slot", "latency_mean_slots", "kv_util_mean", "arrived"):
        assert table.loc[metric, "half_width"] > 0
        assert table.loc[metric, "n"] == 4
    # a wider level gives a wider interval
    assert ci(a, 0.99).loc["arrived", "half_width"] > table.loc["arrived", "half_width"]


def test_replicated_throughput_matches_the_arrival_rate():
    # A stable queue completes what arrives: E[throughput] = λ up to the boundary terms of the
    # window (requests active at its start and end), which are O(λ·E[latency]/window) ≈ 2e-3 here.
    df = replicate(small_config(6000), 6, seed=3, processes=1)
    table = ci(df)
    mean, std, n = table.loc["throughput_requests_per_slot", ["mean", "std", "n"]]
    assert abs(mean - 0.5) <= SIM_Z * std / math.sqrt(n) + 2e-3


def test_replicate_and_ci_reject_bad_arguments():
    from numerics.errors import WorkloadError

    cfg = small_config(500)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(WorkloadError, match="replications"):
            replicate(cfg, bad)
    with pytest.raises(WorkloadError, match="seed"):
        replicate(cfg, 2, seed=-1)
    with pytest.raises(WorkloadError, match="processes"):
        replicate(cfg, 2, processes=0)
    with pytest.raises(WorkloadError, match="level"):
        ci(replicate(cfg, 2, processes=1), level=1.5)


def test_importing_does_not_pull_matplotlib():
    code = ("import sys, flowstab.cli, numerics.sim; "
            "assert 'matplotlib' not in sys.modules, 'matplotlib imported eagerly'")
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["simulate", *RUN, "--policy", "bogus"], "unknown policy"),
        (["simulate", *RUN, "--policy", "flow:rate=-1"], "flow rate"),
        (["simulate", *RUN, "--policy", "flow"], "rate=R"),
        (["simulate", *RUN, "--policy", "alpha:1.5"], "alpha"),
        (["simulate", *RUN], "--policy"),
        (["simulate", *SMALL, "--policy", "greedy", "--slots", "0"], "--slots"),
        (["simulate", *SMALL, "--policy", "greedy", "--slots", "-3"], "--slots"),
        (["simulate", *SMALL, "--policy", "greedy", "--slots", "1.5"], "--slots"),
        (["simulate", *SMALL, "--policy", "greedy", "--slots", "many"], "--slots"),
        (["simulate", *SMALL, "--policy", "greedy", "--slots", "1e12"], "--slots"),
        (["simulate", *SMALL, "--policy", "greedy", "--slots", "100", "--warmup", "100"], "--warmup"),
        (["simulate", *SMALL, "--policy", "greedy", "--slots", "100", "--warmup", "500"], "--warmup"),
        (["simulate", *RUN, "--policy", "greedy", "--warmup", "-1"], "--warmup"),
        (["simulate", *RUN, "--policy", "greedy", "--memory", "0"], "--memory"),
        (["simulate", *RUN, "--policy", "greedy", "--memory", "-5"], "--memory"),
        (["simulate", *RUN, "--policy", "greedy", "--memory", "2.5"], "--memory"),
        (["simulate", *RUN, "--policy", "greedy", "--memory", "1e20"], "--memory"),
        (["simulate", *RUN, "--policy", "greedy", "--arrival-rate", "0"], "--arrival-rate"),
        (["simulate", *RUN, "--policy", "greedy", "--arrival-rate", "1e300"], "--arrival-rate"),
        (["simulate", *RUN, "--policy", "greedy", "--seed", "-1"], "--seed"),
        (["simulate", *RUN, "--policy", "greedy", "--block-size", "0"], "--block-size"),
        (["simulate", *RUN, "--policy", "greedy", "--arrivals", "trace"], "--arrivals"),
        (["simulate", *RUN, "--policy", "greedy", "--eviction", "drop"], "--eviction"),
        (["simulate", *RUN, "--policy", "greedy", "--arrival-rate", "1.5", "--arrivals", "bernoulli"],
         "bernoulli"),
        (["simulate", *RUN, "--policy", "greedy", "--step-time", "const:-1"], "≥ 0"),
        (["simulate", *RUN, "--policy", "greedy", "--replications", "1"], "--replications"),
        (["simulate", *RUN, "--policy", "greedy", "--replications", "3", "--processes", "0"],
         "--processes"),
        (["simulate", *RUN, "--policy", "reserve"], "reserve:max="),
        (["simulate", *RUN, "--policy", "budgets:1,1"], "one per class"),
        (["simulate", "--prompt", "20", "--decode", "geom:mean=10", "--memory", "1000",
          "--policy", "greedy"], "--arrival-rate"),
        (["simulate", "--prompt", "20", "--decode", "geom:mean=10", "--arrival-rate", "0.5",
          "--policy", "greedy"], "--memory"),
        (["simulate", "--decode", "geom:mean=10", "--memory", "1000", "--arrival-rate", "0.5",
          "--policy", "greedy"], "--prompt"),
        (["simulate", "--workload", "no-such-preset", "--memory", "1000", "--arrival-rate", "0.5",
          "--policy", "greedy"], "preset"),
        (["compare", *RUN, "--plot", "/nonexistent-folder/cmp.png"], "does not exist"),
        (["compare", *RUN, "--plot", "cmp.txt"], ".png"),
        (["compare", *RUN, "--policies", ";;"], "--policies"),
        (["compare", *RUN, "--policies", "greedy;nope"], "unknown policy"),
        (["compare", *RUN, "--policies", "greedy;reserve"], "reserve:max="),
        (["compare", *RUN, "--slots", "0"], "--slots"),
        (["compare", *SMALL, "--slots", "50", "--warmup", "60"], "--warmup"),
    ],
)
def test_bad_input_one_line_exit_2(capsys, argv, needle):
    assert_one_line_cli_error(capsys, argv, needle)


def test_plot_path_that_is_a_directory(capsys, tmp_path):
    folder = tmp_path / "fig.png"
    folder.mkdir()
    code, out, err = run(capsys, ["compare", *RUN, "--plot", str(folder)])
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert "directory" in err


def test_records_written_only_when_asked(capsys, tmp_path):
    # summary-only by default; --records PATH writes the per-request table and never overwrites
    out = tmp_path / "rec.csv"
    assert main(["simulate", *RUN, "--policy", "greedy", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert main(["simulate", *RUN, "--policy", "greedy", "--json", "--records", str(out)]) == 0
    assert json.loads(capsys.readouterr().out) == summary  # the same run either way
    rec = pd.read_csv(out)
    assert len(rec) == summary["arrived"]
    assert rec.completion_slot.notna().sum() == summary["completed"]
    assert_one_line_cli_error(capsys, ["simulate", *RUN, "--policy", "greedy", "--records", str(out)],
                              "exists")
    assert_one_line_cli_error(capsys, ["simulate", *RUN, "--policy", "greedy", "--records", "r.txt"],
                              ".csv or .parquet")
