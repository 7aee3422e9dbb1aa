"""The command line: the worked example, per-second rates, and every bad input → one line, exit 2."""

from __future__ import annotations

import json
import math

import pytest
from conftest import assert_one_line_cli_error

from flowstab.cli import main

WORKED = ["plan", "--prompt", "100", "--decode", "geom:mean=200", "--memory", "50000"]
FLOAT_RTOL = 1e-9  # moments of a geometric stored to a 1e-300 tail: float rounding only


def run(capsys, argv):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_worked_example_json(capsys):
    code, out, err = run(capsys, [*WORKED, "--json"])
    assert code == 0, err
    data = json.loads(out)
    # Issue "Foundation": prompt 100, decode geometric mean 200, M = 50 000 ⇒ E[W] = 60 000,
    # λ_max = 5/6 per slot.
    assert math.isclose(data["mean_memory_time"], 60000, rel_tol=FLOAT_RTOL)
    assert math.isclose(data["lambda_max"], 5 / 6, rel_tol=FLOAT_RTOL)
    assert math.isclose(data["mean_prompt"], 100, rel_tol=FLOAT_RTOL)
    assert math.isclose(data["mean_decode"], 200, rel_tol=FLOAT_RTOL)
    assert data["memory_tokens"] == 50000
    assert data["epsilon"] == 1e-6
    assert data["bound"] in {"hoeffding", "bernstein", "chernoff", "cantelli"}
    assert 0 < data["flow_rate"] < data["lambda_max"]
    assert data["overflow_bound"] <= 1e-6
    assert "lambda_max_per_s" in data


@pytest.mark.slow
def test_step_time_gives_per_second_rates(capsys):
    code, out, _ = run(capsys, [*WORKED, "--step-time", "const:0.05", "--json"])
    assert code == 0
    data = json.loads(out)
    # constant step time: Λ* = λ_max / τ = (5/6) / 0.05 = 16.67 requests/s
    assert math.isclose(data["lambda_max_per_s"], (5 / 6) / 0.05, rel_tol=FLOAT_RTOL)
    assert math.isclose(data["flow_rate_per_s"], data["flow_rate"] / 0.05, rel_tol=FLOAT_RTOL)
    code, out, _ = run(capsys, [*WORKED, "--step-time", "linear:c0=0.02,cb=1e-4,ck=1e-7", "--json"])
    assert code == 0
    data = json.loads(out)
    # B_M = M·E[O]/E[W] = 500/3, K = M: τ = 0.02 + 1e-4·500/3 + 1e-7·5e4 = 0.041667
    tau = 0.02 + 1e-4 * 50000 * 200 / 60000 + 1e-7 * 50000
    assert math.isclose(data["lambda_max_per_s"], (5 / 6) / tau, rel_tol=FLOAT_RTOL)


def test_text_report_and_arrival_rate(capsys):
    code, out, _ = run(capsys, [*WORKED, "--arrival-rate", "0.4"])
    assert code == 0
    assert "λ_max = M / E[W]" in out
    assert "0.833333" in out
    assert "NOT a bound" in out
    assert "admissible for flow control" in out


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["plan", "--prompt", "100", "--decode", "geom:mean=200", "--memory", "0"], "--memory"),
        (["plan", "--prompt", "100", "--decode", "geom:mean=200", "--memory", "-5"], "--memory"),
        (["plan", "--prompt", "100", "--decode", "geom:mean=200", "--memory", "1.5"], "whole"),
        (["plan", "--prompt", "100", "--decode", "geom:mean=200", "--memory", "abc"], "number"),
        ([*WORKED, "--arrival-rate", "0"], "--arrival-rate"),
        ([*WORKED, "--arrival-rate", "-1"], "--arrival-rate"),
        ([*WORKED, "--eps", "2"], "--eps"),
        (["plan", "--prompt", "100", "--decode", "geom:mean=0", "--memory", "5000"], "mean"),
        (["plan", "--prompt", "100", "--decode", "wat:3", "--memory", "5000"], "unknown family"),
        (["plan", "--prompt", "x", "--decode", "20", "--memory", "5000"], "not a number"),
        (["plan", "--prompt", "100", "--decode", "zipf:a=2.5", "--memory", "50000"], "max="),
        (["plan", "--prompt", "100", "--decode", "uniform:1,1000", "--memory", "500"], "S + O > M"),
        (["plan", "--prompt", "100", "--decode", "poisson:mean=5", "--memory", "5000"], "shift"),
        (["plan", "--prompt", "100", "--memory", "5000"], "--decode"),
        (["plan", "--decode", "20", "--memory", "5000"], "--prompt"),
        ([*WORKED, "--step-time", "quadratic:1"], "unknown kind"),
        ([*WORKED, "--step-time", "linear:cb=1"], "c0"),
        ([*WORKED, "--step-time", "const:-1"], "≥ 0"),
        (["plan", "--workload", "no-such-preset", "--memory", "5000"], "preset"),
        (["plan", "--workload", "trace:/nonexistent/trace.csv", "--memory", "5000"], "trace"),
        (["plan", "--workload", "/nonexistent/w.toml", "--memory", "5000"], "w.toml"),
        (["plan", "--workload", "azure-conv", "--prompt", "5", "--memory", "5000"], "not both"),
        (["plan", "--prompt", "100", "--decode", "20"], "--memory"),
        (["nope"], "invalid choice"),
    ],
)
def test_bad_input_one_line_exit_2(capsys, argv, needle):
    assert_one_line_cli_error(capsys, argv, needle)


def test_toml_workload_errors_are_one_line(capsys, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[class]]\nname = "a"\nprompt = 10\ndecode = "geom:mean=0"\nrate = 1\n')
    code, _, err = run(capsys, ["plan", "--workload", str(bad), "--memory", "5000"])
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    garbled = tmp_path / "garbled.toml"
    garbled.write_text("[[class]\nname = ")
    code, _, err = run(capsys, ["plan", "--workload", str(garbled), "--memory", "5000"])
    assert code == 2
    assert len(err.strip().splitlines()) == 1


def test_multiclass_toml_plan(capsys, tmp_path):
    wl = tmp_path / "two.toml"
    wl.write_text(
        'name = "two"\nmemory_tokens = 16492\n'
        '[[class]]\nname = "short"\nprompt = 10\ndecode = 20\nrate = 1\n'
        '[[class]]\nname = "long"\nprompt = 10\ndecode = 60\nrate = 1\n'
    )
    code, out, err = run(capsys, ["plan", "--workload", str(wl), "--json"])
    assert code == 0, err
    data = json.loads(out)
    # equal mix of w = 410 and 2430: λ_max = 16492 / 1420
    assert math.isclose(data["lambda_max"], 16492 / 1420, rel_tol=FLOAT_RTOL)
    assert data["memory_tokens"] == 16492


def test_demo_plan_only_runs(capsys):
    code, out, err = run(capsys, ["demo", "--plan-only"])
    assert code == 0, err
    assert "azure-conv" in out
    assert "λ_max" in out


@pytest.mark.slow
def test_demo_is_the_plan_then_the_report(capsys, tmp_path):
    # Issue 15: `flowstab demo` and `make demo` were different things; make demo now runs
    # `flowstab demo --overwrite`, which prints the plan and writes the report
    out_dir = tmp_path / "r"
    code, out, err = run(capsys, ["demo", "--out", str(out_dir), "--quiet"])
    assert code == 0, err
    assert "λ_max" in out
    assert (out_dir / "report.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    code, out, err = run(capsys, ["demo", "--out", str(out_dir), "--quiet"])
    assert code == 2
    assert out == ""  # refused before the plan was printed
    assert "exists; pass --overwrite" in err


def test_malformed_trace_is_one_line(capsys, tmp_path):
    bad = tmp_path / "trace.csv"
    bad.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,12,x\n")
    code, _, err = run(capsys, ["plan", "--workload", f"trace:{bad}", "--memory", "5000"])
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("flowstab: error:")


def test_trace_workload_plan(capsys, tmp_path):
    # A tiny Azure-format trace: the joint empirical law has E[W] = mean of S·O + O(O+1)/2.
    trace = tmp_path / "trace.csv"
    trace.write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        "2023-11-16 18:15:46.0000000,10,2\n2023-11-16 18:15:47.0000000,20,4\n"
    )
    code, out, err = run(capsys, ["plan", "--workload", f"trace:{trace}", "--memory", "1000", "--json"])
    assert code == 0, err
    ew = ((10 * 2 + 3) + (20 * 4 + 10)) / 2
    assert math.isclose(json.loads(out)["mean_memory_time"], ew, rel_tol=FLOAT_RTOL)


def test_plan_exact_uses_the_exact_tail(capsys):
    # S = 20, O ~ uniform 1..100, M = 20 000: every valid bound's rate is below the exact rate,
    # and the exact tail at the exact rate meets ε (it is the largest rate that does).
    argv = ["plan", "--prompt", "20", "--decode", "uniform:1,100", "--memory", "20000", "--exact", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["bound"] == "exact"
    assert out["overflow_bound"] <= out["epsilon"]
    assert out["flow_rate"] == out["flow_rate_by_bound"]["exact"]
    assert out["exact_method"].startswith("exact tail at r*: inversion integral over the main lobe")
    for name in ("hoeffding", "bernstein", "chernoff", "cantelli"):
        assert out["flow_rate_by_bound"][name] <= out["flow_rate"], name
    assert out["flow_rate"] < out["lambda_max"]
    from numerics.analysis.exact import exact_tail
    from numerics.model.specs import parse_law
    from numerics.model.workload import Workload

    wl = Workload.single(parse_law("20"), parse_law("uniform:1,100"))
    above = exact_tail(wl, 20000, out["flow_rate"] * (1 + 1e-4)).prob  # 1e-4: 100× Brent's rtol
    assert above > out["epsilon"]


def test_plan_exact_past_its_time_budget_reports_the_bound_and_says_why(capsys, monkeypatch):
    # Issue 15: an exact inversion past its time budget (the mooncake trace) must not end the plan;
    # the plan keeps the best bound's certified rate (a lower bound on the exact r*) and says why
    import numerics.analysis.exact as exact_mod
    from numerics.errors import SettingError

    def too_slow(*args, **kwargs):
        raise SettingError("the exact tail would run past its time budget (test)", "max_seconds")

    argv = ["plan", "--prompt", "20", "--decode", "uniform:1,100", "--memory", "20000", "--json"]
    assert main(argv) == 0
    plain = json.loads(capsys.readouterr().out)
    monkeypatch.setattr(exact_mod, "exact_flow_rate", too_slow)
    assert main([*argv, "--exact"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["bound"] == plain["bound"] == "chernoff"
    assert out["flow_rate"] == plain["flow_rate"]
    assert "exact" not in out["flow_rate_by_bound"]
    assert "time budget" in out["exact_unavailable"]
    assert "exact_unavailable" not in plain
    assert "exact_method" not in plain
    assert "exact_method" not in out
    assert main([*argv[:-1], "--exact"]) == 0
    text = capsys.readouterr().out
    assert "exact tail               not computed: the exact tail would run past" in text
    assert "certified lower bound on the exact r*" in text


def test_help_is_plain_text_not_restructuredtext(capsys):
    # Issue 15: `flowstab --help` printed the module docstring's raw reStructuredText
    import re

    from flowstab.cli import COMMANDS, main

    for argv in (["--help"], *([c, "--help"] for c in COMMANDS)):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 0
        out = capsys.readouterr().out
        assert not re.search(r"``|:(func|class|mod|data|meth):`", out), (argv, out)
