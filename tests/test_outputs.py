"""Outputs land where the user says, are checked before the work, never overwritten unless asked,
and are written atomically (issue 15; :mod:`flowstab.outputs`, :mod:`numerics.files`)."""

from __future__ import annotations

import pytest
from conftest import assert_one_line_cli_error

from flowstab.cli import main
from flowstab.cli.calibrate import _free_stem, output_files
from flowstab.outputs import check_destination
from numerics.errors import OutputError
from numerics.files import atomic_path, write_text_atomic

SMALL = ["--prompt", "20", "--decode", "uniform:1,30", "--memory", "2000", "--arrival-rate", "0.5",
         "--slots", "2000"]


def _refuse(what: str):
    def fail(*args, **kwargs):
        raise AssertionError(f"{what} ran although the destination was refused")
    return fail


def _write_then_fail(path, exc: BaseException) -> None:
    with atomic_path(path, "--out") as tmp:
        tmp.write_text("half of the new")
        raise exc


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    p = write_text_atomic(tmp_path / "out.txt", "old", "--out")
    with pytest.raises(RuntimeError):
        _write_then_fail(p, RuntimeError("the writer died"))
    assert p.read_text() == "old"
    assert sorted(q.name for q in tmp_path.iterdir()) == ["out.txt"]


def test_an_oserror_while_writing_is_an_output_error_that_loses_nothing(tmp_path):
    p = write_text_atomic(tmp_path / "out.txt", "old", "--out")
    with pytest.raises(OutputError, match=r"cannot write \(No space left on device\); nothing was"):
        _write_then_fail(p, OSError(28, "No space left on device"))  # what a full disk raises
    assert p.read_text() == "old"
    assert sorted(q.name for q in tmp_path.iterdir()) == ["out.txt"]


def test_destination_rules(tmp_path):
    (tmp_path / "a.png").write_bytes(b"x")
    with pytest.raises(OutputError, match="exists; pass --overwrite"):
        check_destination(tmp_path / "a.png", "--plot")
    assert check_destination(tmp_path / "a.png", "--plot", overwrite=True) == tmp_path / "a.png"
    with pytest.raises(OutputError, match="is a directory"):
        check_destination(tmp_path, "--plot")
    with pytest.raises(OutputError, match=r"must end in \.png or \.pdf"):
        check_destination(tmp_path / "a.txt", "--plot", suffixes=(".png", ".pdf"))
    with pytest.raises(OutputError, match="does not exist"):  # a folder the user typed
        check_destination(tmp_path / "typo" / "a.png", "--plot")
    assert check_destination(tmp_path / "new" / "a.png", "--plot", create=True).name == "a.png"
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputError, match="is not a folder"):
        check_destination(tmp_path / "file" / "a.png", "--plot", create=True)


def test_compare_plot_is_never_overwritten_unless_asked(tmp_path, capsys, monkeypatch):
    plot = tmp_path / "cmp.png"
    plot.write_bytes(b"an earlier figure")
    import numerics.sim

    monkeypatch.setattr(numerics.sim, "simulate", _refuse("the simulation"))
    assert_one_line_cli_error(capsys, ["compare", *SMALL, "--policies", "greedy", "--plot", str(plot)],
                              "exists; pass --overwrite")
    assert plot.read_bytes() == b"an earlier figure"
    monkeypatch.undo()
    assert main(["compare", *SMALL, "--policies", "greedy", "--plot", str(plot), "--overwrite"]) == 0
    assert plot.read_bytes()[:4] == b"\x89PNG"
    assert sorted(q.name for q in tmp_path.iterdir()) == ["cmp.png"]


def test_simulate_records_replaced_only_with_overwrite(tmp_path, capsys):
    rec = tmp_path / "r.csv"
    rec.write_text("keep me")
    argv = ["simulate", *SMALL, "--policy", "greedy", "--records", str(rec)]
    assert_one_line_cli_error(capsys, argv, "exists; pass --overwrite")
    assert rec.read_text() == "keep me"
    assert main([*argv, "--overwrite"]) == 0
    assert rec.read_text().startswith("request,")


def test_check_writes_under_results_and_refuses_before_the_checks(tmp_path, capsys, monkeypatch):
    # `flowstab check` wrote the tracked proofs_check/REPORT.md relative to the current folder
    monkeypatch.chdir(tmp_path)
    assert main(["check", "--claim", "def:memory-time"]) == 0
    report = tmp_path / "results" / "check" / "REPORT.md"
    assert report.read_text().startswith("# Claims ledger")
    assert not (tmp_path / "proofs_check").exists()
    capsys.readouterr()
    import proofs_check.ledger

    monkeypatch.setattr(proofs_check.ledger, "run_ledger", _refuse("the ledger"))
    assert_one_line_cli_error(capsys, ["check", "--claim", "def:memory-time"], "exists; pass --overwrite")
    assert_one_line_cli_error(capsys, ["check", "--report", str(tmp_path / "nowhere" / "R.md")],
                              "does not exist")


def test_calibrate_refuses_a_named_out_before_probing(tmp_path, capsys, monkeypatch):
    out = tmp_path / "cal.json"
    out.write_text("{}")
    import numerics.calibration.probe

    monkeypatch.setattr(numerics.calibration.probe, "run_probe", _refuse("the probe"))
    assert_one_line_cli_error(capsys, ["calibrate", "--device", "cpu", "--out", str(out)],
                              "exists; pass --overwrite")
    assert_one_line_cli_error(capsys, ["calibrate", "--device", "cpu", "--out", str(tmp_path / "c.txt")],
                              "must end in .json")
    (tmp_path / "b_residuals.png").write_bytes(b"x")  # a companion file counts too
    assert_one_line_cli_error(capsys, ["calibrate", "--device", "cpu", "--out", str(tmp_path / "b.json")],
                              "b_residuals.png exists")


def test_calibrate_default_name_takes_the_first_free_stem(tmp_path):
    out = tmp_path / "cpu-numpy-tiny.json"
    assert _free_stem(out) == out
    out.write_text("{}")
    assert _free_stem(out) == tmp_path / "cpu-numpy-tiny-2.json"
    output_files(tmp_path / "cpu-numpy-tiny-2.json")[1].write_bytes(b"x")  # its residual plot
    assert _free_stem(out) == tmp_path / "cpu-numpy-tiny-3.json"
