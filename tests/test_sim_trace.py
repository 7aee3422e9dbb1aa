"""Trace replay: timestamps in seconds become arrival slots through the step-time clock."""

from __future__ import annotations

import json
import math

import numpy as np

from flowstab.cli import main
from numerics.data.traces import load_trace
from numerics.model.steptime import StepTimeModel
from numerics.sim import SimConfig, parse_policy, simulate


def _trace_file(tmp_path, rows):
    path = tmp_path / "trace.csv"
    lines = ["TIMESTAMP,ContextTokens,GeneratedTokens"]
    for seconds, s, o in rows:
        whole = int(seconds)
        frac = round((seconds - whole) * 1e7)
        lines.append(f"2023-11-16 18:00:{whole:02d}.{frac:07d},{s},{o}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_replay_maps_seconds_to_slots_with_a_constant_step(tmp_path):
    # τ = 0.1 s per slot: slot t starts at 0.1·t, and a request arriving at time x joins at the
    # first slot whose start is ≥ x, i.e. t = ⌈x / 0.1⌉ (x measured from the first request).
    rows = [(0.0, 5, 3), (0.05, 7, 2), (0.25, 3, 4), (1.0, 2, 1), (3.33, 9, 5)]
    trace = load_trace(_trace_file(tmp_path, rows))
    wl = trace.to_workload()
    cfg = SimConfig(wl, 1000, parse_policy("greedy"), slots=60, arrivals="trace", trace=trace,
                    step_time=StepTimeModel("const", c0=0.1), seed=0)
    res = simulate(cfg)
    rec = res.records.sort_values("request")
    expected = [math.ceil(round(x / 0.1, 9)) for x, _, _ in rows]
    assert rec.arrival_slot.tolist() == expected
    assert rec.prompt.tolist() == [s for _, s, _ in rows]
    assert rec.decode.tolist() == [o for _, _, o in rows]
    # greedy with ample memory activates on arrival: latency = O slots, = O·τ seconds
    assert (rec.latency_slots == rec.decode).all()
    np.testing.assert_allclose(rec.latency_s, rec.decode * 0.1 + (rec.arrival_slot * 0.1 - rec.arrival_s))
    assert res.summary["completed"] == len(rows)


def test_cli_replay(tmp_path, capsys):
    path = _trace_file(tmp_path, [(0.0, 5, 3), (0.5, 7, 2), (0.9, 3, 4)])
    code = main(["simulate", "--workload", f"trace:{path}", "--memory", "1000", "--policy",
                 "greedy", "--arrivals", "trace", "--step-time", "const:0.1", "--slots", "40",
                 "--warmup", "0", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    data = json.loads(out)
    assert data["arrived"] == 3
    assert data["completed"] == 3
    code = main(["simulate", "--workload", f"trace:{path}", "--memory", "1000", "--policy",
                 "greedy", "--arrivals", "trace", "--slots", "40"])
    _, err = capsys.readouterr()
    assert code == 2
    assert "--step-time" in err
    assert len(err.strip().splitlines()) == 1


def test_cli_compare_trace_needs_policies(tmp_path, capsys):
    # the default line-up sets its flow rates from a per-slot arrival rate, which trace replay lacks;
    # this used to end in a KeyError traceback
    from conftest import assert_one_line_cli_error

    path = _trace_file(tmp_path, [(0.0, 5, 3), (0.5, 7, 2), (0.9, 3, 4)])
    argv = ["compare", "--workload", f"trace:{path}", "--memory", "1000", "--arrivals", "trace",
            "--step-time", "const:0.1", "--slots", "40"]
    assert_one_line_cli_error(capsys, argv, "--policies")
    code = main([*argv, "--policies", "greedy;flow:rate=2", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert [row["arrived"] for row in json.loads(out)] == [3, 3]
