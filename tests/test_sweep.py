"""``flowstab sweep`` and :mod:`numerics.sweep`: grids, cell keys, backends, kill and resume.

The simulations are tiny (one class, S = 20, O ~ geometric with mean 10, M = 2000, a few thousand
slots), so that the whole file runs in seconds; what is tested is the plumbing: the grid, the
resolution of relative rates against closed forms, the cell keys, that every backend and every
interruption gives the same table, and the one-line errors.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import assert_one_line_cli_error

from flowstab.cli import main
from numerics.analysis.plan import make_plan
from numerics.errors import SpecError
from numerics.model.specs import parse_law
from numerics.model.workload import Workload
from numerics.sim import SimConfig, parse_policy, simulate
from numerics.sweep import (
    SweepError,
    checkpoint_dir,
    load_sweep_config,
    run_sweep,
    sweep_cells,
    sweep_config_from_dict,
)

REPO = Path(__file__).resolve().parents[1]
KEY_FILE = re.compile(r"^[0-9a-f]{24}\.json$")
#: The kill-and-resume test kills the sweep once this many cells are checkpointed (of 12).
KILL_AFTER = 2
#: Seconds to wait for the subprocess sweep to checkpoint KILL_AFTER cells (it needs ~1 s of
#: imports and ~0.05 s per cell; the margin is for a loaded two-core machine).
KILL_WAIT_S = 120.0

TOY = {"prompt": 20, "decode": "geom:mean=10"}


def toy_config(**grid_and_run) -> dict:
    """A small sweep config dict: 2 policies × 2 loads × M = 2000 × seeds 0, 1 = 8 cells."""
    grid = {"policy": ["flow:rate=1.1*lambda_max", "greedy"], "load": [0.5, 0.9],
            "memory_tokens": [2000], "seeds": [0, 1]}
    run = {"slots": 2000, "warmup": 200}
    for k, v in grid_and_run.items():
        table = run if k in ("slots", "warmup", "arrivals", "engine", "eviction", "epsilon",
                             "step_time") else grid
        if v is None:
            table.pop(k, None)
        else:
            table[k] = v
    return {"workload": dict(TOY), "grid": grid, "run": run}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> pd.DataFrame:
    """The toy sweep run inline, uninterrupted: the table every other backend must reproduce."""
    out = tmp_path_factory.mktemp("ref") / "ref.parquet"
    return run_sweep(toy_config(), out, processes=1, progress=False)


# ------------------------------------------------------------------------------ grid and keys
def test_grid_is_the_cartesian_product_in_documented_order():
    cfg = sweep_config_from_dict(toy_config(
        policy=["greedy", "alpha:0.1"], load=None, arrival_rate=[0.5, 1.0, 2.0],
        memory_tokens=[2000, 4000], block_size=[1, 4], seeds=[3, 5]))
    cells = sweep_cells(cfg)
    expected = list(itertools.product(["greedy", "alpha:0.1"], [0.5, 1.0, 2.0], [2000, 4000],
                                      [1, 4], [3, 5]))
    assert [(c.policy, c.arrival_rate, c.memory_tokens, c.block_size, c.seed) for c in cells] == expected
    assert [c.index for c in cells] == list(range(len(expected)))


def test_relative_rates_match_closed_forms():
    # S = 20, O = 10 deterministic: W = S·O + O(O+1)/2 = 200 + 55 = 255, so with M = 2550
    # λ_max = M / E[W] = 10 exactly (Prop. 3.2).
    cfg = sweep_config_from_dict({
        "workload": {"prompt": 20, "decode": 10},
        "grid": {"policy": ["flow:rate=0.9*lambda_max", "flow:rate=r_star", "flow:rate=2*r_star"],
                 "load": [0.5], "memory_tokens": [2550]},
        "run": {"slots": 100, "epsilon": 1e-3},
    })
    cells = sweep_cells(cfg)
    assert cells[0].arrival_rate == pytest.approx(5.0, rel=1e-12)  # float rounding of 0.5·2550/255
    assert cells[0].flow_rate == pytest.approx(9.0, rel=1e-12)
    # r_star is the plan's r*(ε) for the same workload, M and ε, computed independently here
    wl = Workload.single(parse_law(20), parse_law(10))
    r_star = make_plan(wl, 2550, 1e-3).flow_rate
    assert cells[1].flow_rate == r_star
    assert cells[2].flow_rate == 2 * r_star
    assert cells[0].load == 0.5


def test_replications_take_seedsequence_children():
    cfg = sweep_config_from_dict(toy_config(policy=["greedy"], load=[0.5], seeds=None,
                                            replications=3, seed=7))
    children = np.random.SeedSequence(7).spawn(3)
    assert [c.seed for c in sweep_cells(cfg)] == [int(ch.generate_state(1)[0]) for ch in children]
    assert [c.replication for c in sweep_cells(cfg)] == [0, 1, 2]


def test_cell_keys_are_stable_distinct_and_content_based():
    keys = [c.key for c in sweep_cells(sweep_config_from_dict(toy_config()))]
    assert len(set(keys)) == len(keys)
    # a fresh config from the same dict: the same keys (nothing depends on object identity)
    assert [c.key for c in sweep_cells(sweep_config_from_dict(toy_config()))] == keys
    # reordering and extending the grid keeps the keys of the cells it still has
    bigger = sweep_config_from_dict(toy_config(policy=["greedy", "alpha:0.1", "flow:rate=1.1*lambda_max"],
                                               load=[0.9, 0.7, 0.5], seeds=[1, 0, 2]))
    assert set(keys) < {c.key for c in sweep_cells(bigger)}
    # anything that changes a result changes every key: run length, the workload's laws, engine
    for changed in (toy_config(slots=2001),
                    toy_config(engine="python"),
                    toy_config() | {"workload": {"prompt": 21, "decode": "geom:mean=10"}}):
        assert not set(keys) & {c.key for c in sweep_cells(sweep_config_from_dict(changed))}


def test_workload_key_is_its_content_not_its_source(tmp_path):
    (tmp_path / "wl.toml").write_text('[[class]]\nname = "chat"\nprompt = 20\ndecode = "geom:mean=10"\n')
    inline = [c.key for c in sweep_cells(sweep_config_from_dict(toy_config()))]
    for where in ("wl.toml", str(tmp_path / "wl.toml")):  # relative to base_dir, or absolute
        from_file = sweep_config_from_dict(toy_config() | {"workload": {"file": where}},
                                           base_dir=tmp_path)
        assert [c.key for c in sweep_cells(from_file)] == inline
    (tmp_path / "wl.toml").write_text('[[class]]\nprompt = 20\ndecode = "geom:mean=11"\n')
    edited = sweep_config_from_dict(toy_config() | {"workload": {"file": "wl.toml"}}, base_dir=tmp_path)
    assert not set(inline) & {c.key for c in sweep_cells(edited)}


# ------------------------------------------------------------------------------ tables
def test_table_rows_are_the_simulator_summaries(reference):
    assert len(reference) == 8
    assert list(reference["cell"]) == list(range(8))
    row = reference.iloc[5]  # greedy, load 0.5, seed 1
    assert (row["policy"], row["load"], row["seed"]) == ("greedy", 0.5, 1)
    # the same run through simulate() directly, outside the sweep machinery
    wl = Workload.single(parse_law(20), parse_law("geom:mean=10"))
    direct = simulate(SimConfig(wl, 2000, parse_policy("greedy"), slots=2000,
                                arrival_rate=row["arrival_rate_per_slot"], warmup=200, seed=1)).summary
    for key in ("arrived", "completed", "evictions", "kv_peak_tokens"):
        assert row[key] == direct[key]
    for key in ("throughput_requests_per_slot", "kv_util_mean", "latency_mean_slots"):
        assert row[key] == direct[key]  # bit-identical: the same floats through JSON
    # seeds 0 and 1 are different runs
    assert reference.iloc[4]["arrived"] != reference.iloc[5]["arrived"]


#: A constant step time τ makes the wall clock t·τ after t slots, up to the rounding of a float
#: sum of ~10^3 terms (relative error ≲ 10^3 · 2^-53 ≈ 1e-13).
CLOCK_REL_TOL = 1e-12


def test_step_time_adds_metrics_in_seconds(tmp_path):
    tau = 0.02
    df = run_sweep(toy_config(policy=["greedy"], load=[0.5], seeds=[0], step_time=f"const:{tau}"),
                   tmp_path / "s.parquet", processes=1, progress=False)
    row = df.iloc[0]
    assert row["duration_s"] == pytest.approx(2000 * tau, rel=CLOCK_REL_TOL)
    assert row["throughput_requests_per_s"] == pytest.approx(
        row["throughput_requests_per_slot"] / tau, rel=CLOCK_REL_TOL)


def test_same_seed_gives_an_identical_table_and_file(reference, tmp_path):
    again = run_sweep(toy_config(), tmp_path / "again.parquet", processes=1, progress=False)
    pd.testing.assert_frame_equal(again, reference)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "again.parquet"), reference)


def test_process_pool_gives_the_same_table(reference, tmp_path):
    df = run_sweep(toy_config(), tmp_path / "pool.parquet", processes=2, progress=False)
    pd.testing.assert_frame_equal(df, reference)


def test_dask_local_cluster_gives_the_same_table(reference, tmp_path):
    distributed = pytest.importorskip("distributed")
    # threads, not processes: worker processes take ~15 s to start on a loaded two-core machine
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        df = run_sweep(toy_config(), tmp_path / "dask.parquet",
                       dask_address=cluster.scheduler_address, progress=False)
    pd.testing.assert_frame_equal(df, reference)
    assert df.attrs["sweep"]["ran"] == 8


# ------------------------------------------------------------------------------ checkpoints
def _checkpoints(folder: Path) -> dict[str, tuple[int, int]]:
    """Checkpoint files by name: (modification time in ns, inode)."""
    if not folder.is_dir():
        return {}
    return {p.name: (p.stat().st_mtime_ns, p.stat().st_ino)
            for p in folder.iterdir() if KEY_FILE.match(p.name)}


def test_kill_midway_then_resume_equals_an_uninterrupted_run(tmp_path, capsys):
    # 2 policies × 3 loads × 2 seeds = 12 cells on the Python engine (~0.05 s each), one process
    cfg = toy_config(load=[0.3, 0.6, 0.9], slots=1000, warmup=100, engine="python")
    config_file = tmp_path / "sweep.toml"
    config_file.write_text(
        "[workload]\nprompt = 20\ndecode = 'geom:mean=10'\n"
        "[grid]\npolicy = ['flow:rate=1.1*lambda_max', 'greedy']\nload = [0.3, 0.6, 0.9]\n"
        "memory_tokens = [2000]\nseeds = [0, 1]\n"
        "[run]\nslots = 1000\nwarmup = 100\nengine = 'python'\n")
    out = tmp_path / "killed.parquet"
    folder = checkpoint_dir(out)
    argv = ["sweep", str(config_file), "--out", str(out), "--processes", "1", "--quiet"]
    proc = subprocess.Popen([sys.executable, "-m", "flowstab.cli", *argv], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + KILL_WAIT_S
        while len(_checkpoints(folder)) < KILL_AFTER and proc.poll() is None:
            assert time.monotonic() < deadline, "the sweep checkpointed nothing in time"
            time.sleep(0.01)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the whole session this test started
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, err.decode()
    before = _checkpoints(folder)
    assert KILL_AFTER <= len(before) < 12  # killed midway
    assert not out.exists()

    # without --resume the checkpoints are never overwritten
    assert_one_line_cli_error(capsys, argv, "pass --resume")
    assert main([*argv, "--resume"]) == 0
    stdout = capsys.readouterr().out
    assert f"12 cells, {12 - len(before)} run, {len(before)} from checkpoints" in stdout
    after = _checkpoints(folder)
    assert len(after) == 12
    assert {k: after[k] for k in before} == before  # finished cells were not recomputed

    uninterrupted = run_sweep(cfg, tmp_path / "whole.parquet", processes=1, progress=False)
    pd.testing.assert_frame_equal(pd.read_parquet(out), uninterrupted)


def test_resume_skips_partial_writes_and_reruns_unreadable_checkpoints(reference, tmp_path):
    out = tmp_path / "r.parquet"
    first = run_sweep(toy_config(), out, processes=1, progress=False)
    folder = checkpoint_dir(out)
    names = sorted(_checkpoints(folder))
    (folder / names[0]).write_text("{ truncated")  # an edited or damaged checkpoint
    (folder / f".{names[1]}.123.tmp").write_text("{")  # a write cut short by a kill
    (folder / ("0" * 24 + ".json")).write_text("{}")  # a cell of an older grid
    out.unlink()
    df = run_sweep(toy_config(), out, resume=True, processes=1, progress=False)
    info = df.attrs["sweep"]
    assert (info["ran"], info["resumed"]) == (1, 7)
    assert any("unreadable" in n for n in info["notes"])
    assert any("belong to no cell" in n for n in info["notes"])
    assert not list(folder.glob("*.tmp"))
    pd.testing.assert_frame_equal(df, first)
    pd.testing.assert_frame_equal(df, reference)


def _die_on_seed_1(kwargs, policy_spec, engine):
    """A worker that dies (as if killed by the OOM killer) on the cells of seed 1."""
    from numerics import sweep

    if kwargs["seed"] == 1:
        os._exit(1)
    return sweep._simulate_cell(sweep._WORKER_WORKLOAD, kwargs, policy_spec, engine)


@pytest.mark.skipif(multiprocessing.get_start_method() != "fork",
                    reason="the patched worker reaches the children only through fork")
def test_a_dead_worker_is_a_sweep_error_and_resume_recovers(reference, tmp_path, monkeypatch):
    from numerics import sweep

    out = tmp_path / "dead.parquet"
    monkeypatch.setattr(sweep, "_simulate_in_worker", _die_on_seed_1)
    with pytest.raises(SweepError, match="a worker process died"):
        run_sweep(toy_config(), out, processes=2, progress=False)
    monkeypatch.undo()
    assert len(_checkpoints(checkpoint_dir(out))) < 8
    df = run_sweep(toy_config(), out, resume=True, processes=2, progress=False)
    pd.testing.assert_frame_equal(df, reference)


def test_existing_output_is_never_overwritten(reference, tmp_path):
    out = tmp_path / "x.parquet"
    out.write_bytes(b"not mine")
    with pytest.raises(SweepError, match="exists; remove it"):
        run_sweep(toy_config(), out, processes=1, progress=False)
    assert out.read_bytes() == b"not mine"
    assert not checkpoint_dir(out).exists()


# ------------------------------------------------------------------------------ config errors
BAD_CONFIGS = [
    ("[workload]\npreset = 'azure-conv'\n[grids]\n", "unknown key 'grids'"),
    ("[workload]\nprompt = 20\ndecode = 10\n[grid]\npolicies = ['greedy']\n",
     "[grid] unknown key 'policies'"),
    ("[workload]\nprompt = 20\ndecode = 10\n[grid]\nload = [0.5]\n", "[grid] policy is missing"),
    ("[workload]\nprompt = 20\ndecode = 10\n[grid]\npolicy = ['flw']\nload = [0.5]\nmemory_tokens = 2000\n",
     "unknown policy 'flw'"),
    ("[workload]\nprompt = 20\ndecode = 10\n[grid]\npolicy = ['flow:rate=x*lambda_max']\nload = 0.5\n"
     "memory_tokens = 2000\n", "'x' is not a number"),
    ("[workload]\nprompt = 20\ndecode = 10\n[grid]\npolicy = 'greedy'\nload = [0.5, -1]\n"
     "memory_tokens = 2000\n", "[grid] load: -1 is not a positive number"),
    ("[workload]\nprompt = 20\ndecode = 10\n[grid]\npolicy = 'greedy'\nload = [0.5]\narrival_rate = [1]\n"
     "memory_tokens = 2000\n", "not both"),
    ("[workload]\nprompt = 20\ndecode = 10\n[grid]\npolicy = 'greedy'\nload = 0.5\nmemory_tokens = 2000\n"
     "seeds = [0, 0]\n", "lists 0 twice"),
    ("[workload]\nprompt = 20\ndecode = 10\n[grid]\npolicy = 'greedy'\nload = 0.5\n",
     "memory_tokens is missing"),
    ("[workload]\nprompt = 20\ndecode = 10\n[grid]\npolicy = 'greedy'\narrival_rate = 0.5\n"
     "memory_tokens = 2000\nseeds = [1]\nreplications = 2\n", "either seeds"),
    ("[workload]\nprompt = 20\ndecode = 10\n[grid]\npolicy = 'greedy'\nload = 0.5\nmemory_tokens = 2000\n"
     "[run]\nslots = 500\nwarmup = 500\n", "warmup = 500 must be less than slots = 500"),
    ("[workload]\nprompt = 20\ndecode = 10\n[grid]\npolicy = 'greedy'\nload = 0.5\nmemory_tokens = 2000\n"
     "[run]\narrivals = 'trace'\n", "[run] arrivals must be one of poisson"),
    ("[workload]\nprompt = 20\ndecode = 'geom:mean=10'\n[grid]\npolicy = 'reserve'\nload = 0.5\n"
     "memory_tokens = 2000\n", "decode lengths are unbounded"),
    ("[workload]\nprompt = 20\ndecode = 10\n[grid]\npolicy = 'greedy'\narrival_rate = 2.0\n"
     "memory_tokens = 2000\n[run]\narrivals = 'bernoulli'\n", "Bernoulli arrivals need a total rate ≤ 1"),
    ("[workload]\nprompt = 20\ndecode = 10\n[grid]\npolicy = 'adaptive'\nload = 0.5\nmemory_tokens = 2000\n"
     "[run]\nengine = 'fast'\nbatching = 'prefill-first'\n", "engine = 'fast' runs"),
    ("[workload]\npreset = 'azure-conv'\nprompt = 20\n[grid]\npolicy = 'greedy'\n", "exactly one of"),
    ("[workload]\npreset = 'azure-chat'\n[grid]\npolicy = 'greedy'\n", "unknown preset 'azure-chat'"),
    ("[workload]\nfile = 'missing.toml'\n[grid]\npolicy = 'greedy'\n", "missing.toml"),
    ("[workload]\nprompt = 20\ndecode = 10\n[grid]\npolicy = 'greedy'\narrival_rate = 0.5\n"
     "memory_tokens = 2000\n[run]\nepsilon = 2\n", "[run] epsilon must lie in (0, 1)"),
    ("[workload\n", "not valid TOML"),
]


@pytest.mark.parametrize(("text", "needle"), BAD_CONFIGS)
def test_bad_configs_are_one_line_cli_errors(tmp_path, capsys, text, needle):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    assert_one_line_cli_error(capsys, ["sweep", str(path), "--out", str(tmp_path / "o.parquet")], needle)
    assert not checkpoint_dir(tmp_path / "o.parquet").exists()


def test_bad_invocations_are_one_line_cli_errors(tmp_path, capsys):
    path = tmp_path / "ok.toml"
    path.write_text("[workload]\nprompt = 20\ndecode = 10\n[grid]\npolicy = 'greedy'\n"
                    "arrival_rate = 0.5\nmemory_tokens = 2000\n[run]\nslots = 100\n")
    assert_one_line_cli_error(capsys, ["sweep", str(tmp_path / "nope.toml")], "no such file")
    assert_one_line_cli_error(capsys, ["sweep", str(path), "--out", str(tmp_path / "o.csv")],
                              "must end in .parquet")
    assert_one_line_cli_error(capsys, ["sweep", str(path), "--out", str(tmp_path / "o.parquet"),
                                       "--dask", "not-an-address"], "missing port number")
    assert_one_line_cli_error(capsys, ["sweep", str(path), "--processes", "2", "--dask", "tcp://h:1"],
                              "not allowed with argument")
    assert not checkpoint_dir(tmp_path / "o.parquet").exists()


def test_api_errors_are_specific():
    with pytest.raises(SpecError, match=r"\[grid\] memory_tokens: 0 is not an integer ≥ 1"):
        sweep_config_from_dict(toy_config(memory_tokens=[0]))
    with pytest.raises(SweepError, match="processes must be a positive integer"):
        run_sweep(toy_config(), "x.parquet", processes=0)


def test_example_config_loads():
    cfg = load_sweep_config(REPO / "examples" / "sweep.toml")
    cells = sweep_cells(cfg)
    assert len(cells) == 4 * 3 * 2 * 2
    assert {c.policy_resolved for c in cells if c.policy == "greedy"} == {"greedy"}


def test_resume_with_another_config_is_refused_and_loses_nothing(tmp_path):
    # Issue 15: `--resume` with a changed config printed a note and overwrote the table the first
    # config built. Now it is refused before any work, and both the table and the checkpoints stay.
    out = tmp_path / "first.parquet"
    run_sweep(toy_config(load=[0.5], seeds=[0]), out, processes=1, progress=False)
    table = out.read_bytes()
    folder = checkpoint_dir(out)
    before = _checkpoints(folder)
    with pytest.raises(SweepError, match=r"another sweep config \(it differs in loads\)"):
        run_sweep(toy_config(load=[0.9], seeds=[0]), out, resume=True, processes=1, progress=False)
    assert out.read_bytes() == table
    assert _checkpoints(folder) == before
    # the same config resumes as before: nothing left to run
    df = run_sweep(toy_config(load=[0.5], seeds=[0]), out, resume=True, processes=1, progress=False)
    assert df.attrs["sweep"]["ran"] == 0


def test_more_processes_than_cpus_start_no_more_workers_than_cpus(monkeypatch, tmp_path, reference):
    # Issue 15: `--processes 10000` started 48 workers on 2 cores. The pool is capped at the CPUs.
    import concurrent.futures

    from numerics.sweep import backends

    started = []
    real = concurrent.futures.ProcessPoolExecutor

    def spy(*args, max_workers=None, **kwargs):
        started.append(max_workers)
        return real(*args, max_workers=max_workers, **kwargs)

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", spy)
    monkeypatch.setattr(backends, "_cpus", lambda: 2)
    df = run_sweep(toy_config(), tmp_path / "many.parquet", processes=10_000, progress=False)
    assert started == [2]
    pd.testing.assert_frame_equal(df, reference)


def test_a_full_disk_is_a_sweep_error_and_resume_recovers(reference, tmp_path, monkeypatch):
    # Issue 15: an OSError while checkpointing (a full disk) was a traceback
    from numerics.sweep import store

    real, written = store.save_checkpoint, []

    def fills_up(folder, cell, summary):
        if len(written) == 3:
            raise OSError(28, "No space left on device")
        written.append(cell.key)
        return real(folder, cell, summary)

    out = tmp_path / "full.parquet"
    monkeypatch.setattr(store, "save_checkpoint", fills_up)
    with pytest.raises(SweepError, match=r"No space left on device.*--resume"):
        run_sweep(toy_config(), out, processes=1, progress=False)
    assert not out.exists()
    monkeypatch.undo()
    df = run_sweep(toy_config(), out, resume=True, processes=1, progress=False)
    assert df.attrs["sweep"]["resumed"] == 3
    pd.testing.assert_frame_equal(df, reference)
