"""paper_figs: ``python -m paper_figs --quick`` regenerates every figure, with a manifest.

One quick run (module-scoped, into a temporary folder) backs the checks: every figure's PDF and
PNG exist and are non-trivial, the manifest lists every figure with its results file and that
file's SHA-256, each results file carries its provenance, and a figure is a pure function of its
results file (plotting it twice gives the same PNG bytes). A bad
``--only`` name is a one-line error with exit status 2.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # paper_figs is repository-local, not an installed package
    sys.path.insert(0, str(ROOT))

from paper_figs import FIGURES, figure_module  # noqa: E402
from paper_figs.__main__ import main, resolve_names  # noqa: E402

#: A real figure is far larger than an empty canvas: an empty 3.35 × 2.4 in PNG at 200 dpi is
#: ~4 kB and an empty PDF ~1.5 kB; every figure draws axes, text and data.
MIN_PNG_BYTES = 20_000
MIN_PDF_BYTES = 8_000
PROVENANCE_KEYS = {"git_sha", "versions", "seed", "config", "quick", "created"}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """``python -m paper_figs --quick`` into a temporary out/results folder (one run per module)."""
    base = tmp_path_factory.mktemp("paper_figs")
    out, results = base / "out", base / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "paper_figs", "--quick", "--out", str(out), "--results", str(results)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    return out, results, proc


@pytest.mark.slow
def test_every_figure_written(quick_run):
    out, _, _ = quick_run
    for name in FIGURES:
        png, pdf = out / f"{name}.png", out / f"{name}.pdf"
        assert png.stat().st_size > MIN_PNG_BYTES, name
        assert pdf.stat().st_size > MIN_PDF_BYTES, name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert pdf.read_bytes()[:5] == b"%PDF-"


@pytest.mark.slow
def test_manifest_lists_every_figure(quick_run):
    from paper_figs.io import file_sha256

    out, _, _ = quick_run
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["figures"]) == set(FIGURES)
    for name, entry in manifest["figures"].items():
        tables = [f"{name}.csv"] if hasattr(figure_module(name), "write_table") else []
        tables += [f"{name}.md"] if hasattr(figure_module(name), "markdown") else []  # F12's table
        assert sorted(Path(f).name for f in entry["files"]) == sorted([f"{name}.pdf", f"{name}.png", *tables])
        assert entry["results_sha256"] == file_sha256(entry["results"])
        assert entry["experiment_seconds"] >= 0
        assert entry["plot_seconds"] >= 0
        assert entry["quick"] is True


@pytest.mark.slow
def test_results_carry_provenance(quick_run):
    from paper_figs.io import experiment_config, load_results

    _, results, _ = quick_run
    for name in FIGURES:
        doc = load_results(results / f"{name}.json")
        prov = doc["provenance"]
        assert set(prov) >= PROVENANCE_KEYS
        assert {"python", "numpy", "scipy"} <= set(prov["versions"])
        config, seed = experiment_config(name, True)
        assert prov["config"] == config
        assert prov["seed"] == seed
        assert prov["quick"] is True


@pytest.mark.slow
def test_progress_on_stderr_only(quick_run):
    _, _, proc = quick_run
    assert proc.stdout == ""
    assert all(line.startswith("paper_figs: ") for line in proc.stderr.strip().splitlines())


@pytest.mark.slow
@pytest.mark.parametrize("name", FIGURES)
def test_figure_is_a_pure_function_of_its_results(quick_run, name):
    from paper_figs.io import load_results
    from paper_figs.style import png_bytes

    _, results, _ = quick_run
    doc = load_results(results / f"{name}.json")
    plot = figure_module(name).plot
    first = png_bytes(plot(doc))
    second = png_bytes(plot(json.loads(json.dumps(doc))))  # a fresh copy: no shared state
    assert first == second


@pytest.mark.slow
def test_second_run_reuses_results(quick_run, capsys):
    out, results, _ = quick_run
    before = (results / "f1_region.json").read_bytes()
    assert main(["--quick", "--only", "f1", "--out", str(out), "--results", str(results)]) == 0
    assert (results / "f1_region.json").read_bytes() == before
    assert "reused" in capsys.readouterr().err
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["figures"]) == set(FIGURES)  # a partial run keeps the other entries


def test_bad_only_name_is_one_line_exit_2(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "paper_figs", "--quick", "--only", "f1,nope", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("paper_figs: error:")
    assert "'nope'" in lines[0]
    assert not any(tmp_path.iterdir())  # nothing was computed or written


def test_resolve_names():
    assert resolve_names(None) == list(FIGURES)
    assert resolve_names("f2, f1_region,F2") == ["f2_tails", "f1_region"]
    with pytest.raises(ValueError, match="unknown figure"):
        resolve_names("f99")
    with pytest.raises(ValueError, match="at least one"):
        resolve_names(" , ")
