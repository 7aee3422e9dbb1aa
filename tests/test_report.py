"""``flowstab report``: the self-contained HTML page, its numbers, its formulas and its errors.

Small runs only (a tiny workload, a few hundred slots, ``--no-verify`` or a fake ledger), so
the file runs in seconds. The headless-browser look is checked by hand, not here.
"""

from __future__ import annotations

import json
import math
import re
from html.parser import HTMLParser

import numpy as np
import pytest
from conftest import assert_one_line_cli_error

import proofs_check
from flowstab.cli import main
from flowstab.report import (
    DEFAULT_MEMORY_TOKENS,
    DEFAULT_STEP_TIME,
    ReportConfig,
    build_report,
    compare_policies,
    formula_html,
    render_latex,
)
from flowstab.report.html import fmt
from flowstab.report.latex import mathtext_source
from numerics.analysis.plan import make_plan
from numerics.data.loaders import load_workload
from numerics.model.specs import parse_law
from numerics.model.workload import Workload

#: A small bounded workload: E[W] = 20·E[O] + (E[O²] + E[O])/2 ≈ 300 token-slots with O ~ geom(mean
#: 10) clipped at 100; on M = 2 000 tokens λ_max ≈ 6.7 requests/slot, and runs of a few hundred
#: slots take milliseconds.
TINY = ["--prompt", "20", "--decode", "geom:mean=10,max=100", "--memory", "2000"]
TINY_RUN = [*TINY, "--slots", "300", "--replications", "2", "--quiet"]
SECTIONS = ("summary", "workload", "conditions", "flow", "simulation", "verification", "provenance")
#: The default step-time coefficients are the splitwise fit rounded to 4 significant digits:
#: relative rounding error ≤ 0.5e-3 / 1.000 (the worst case of a leading digit 1).
FIT_RTOL = 5e-4


def _tiny_workload() -> Workload:
    return Workload.single(parse_law("20"), parse_law("geom:mean=10,max=100"), name="tiny")


def _data(html: str) -> dict:
    m = re.search(r'<script type="application/json" id="flowstab-data">(.*?)</script>', html, re.S)
    assert m is not None
    return json.loads(m.group(1).replace("<\\/", "</"))


class _Links(HTMLParser):
    """Every src/href attribute and every tag name of a document."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str, str]] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href"):
                self.refs.append((tag, name, value or ""))


def _assert_self_contained(html: str) -> None:
    parser = _Links()
    parser.feed(html)
    for tag, name, value in parser.refs:
        assert not value.startswith(("http:", "https:", "//", "file:")), (tag, name, value[:80])
        if tag == "img":
            assert value.startswith(("data:image/png;base64,", "data:image/svg+xml;base64,")), value[:40]
        if tag == "a":
            assert value.startswith("#"), value
    assert "link" not in parser.tags  # no external stylesheet
    assert not re.search(r"<script[^>]+src=", html)
    assert not re.search(r"url\(\s*['\"]?https?:", html)  # no remote fonts or images in the CSS
    assert "@import" not in html


def _run(capsys, argv) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------------------------- formulas
def test_every_registered_formula_renders_or_falls_back():
    from theory import REGISTRY

    assert REGISTRY
    for result in REGISTRY.values():
        out = formula_html(result.latex)
        if out.startswith("<img"):
            assert 'src="data:image/svg+xml;base64,' in out, result.id
        else:
            assert out.startswith('<code class="tex">'), result.id


def test_registered_formulas_of_the_report_render():
    """The formulas the default report shows all parse (after the mathtext rewrites)."""
    from flowstab.report import report_claims
    from theory import REGISTRY

    plan = make_plan(_tiny_workload(), 2000, step_time=DEFAULT_STEP_TIME)
    for cid in report_claims(plan, DEFAULT_STEP_TIME):
        assert render_latex(REGISTRY[cid].latex) is not None, cid


def test_unparsable_tex_falls_back_to_code():
    assert render_latex(r"\frac{1}{") is None
    assert formula_html(r"a < \nosuchmacro") == '<code class="tex">a &lt; \\nosuchmacro</code>'


def test_mathtext_rewrites():
    assert mathtext_source(r"x \le y \ge z") == r"x \leq y \geq z"
    assert mathtext_source(r"\exp\!\Big(-\tfrac{a}{b}\Big)") == r"\exp(-\frac{a}{b})"
    assert mathtext_source(r"\operatorname{Var}U") == r"\mathrm{Var}\,U"
    assert mathtext_source(r"\lambda_{\max} = M \big/ \textstyle\sum_k") == r"\lambda_{\max} = M / \sum_k"
    assert mathtext_source(r"\Lambda^* r^{*}") == r"\Lambda^{\ast} r^{\ast}"
    assert mathtext_source(r"\dfrac{a}{b} \leq c") == r"\dfrac{a}{b} \leq c"  # already fine: unchanged


# ---------------------------------------------------------------------------------- the page
def test_report_cli_writes_a_self_contained_page(capsys, tmp_path):
    code, out, err = _run(capsys, ["report", *TINY_RUN, "--no-verify", "--out", str(tmp_path / "r")])
    assert code == 0
    path = tmp_path / "r" / "report.html"
    assert out.strip() == str(path)
    assert err == ""  # --quiet: no progress bars
    html = path.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    _assert_self_contained(html)
    for anchor in SECTIONS:
        assert f'<section id="{anchor}">' in html, anchor
    plan = make_plan(_tiny_workload(), 2000, step_time=DEFAULT_STEP_TIME)
    data = _data(html)
    assert data["plan"]["lambda_max"] == plan.lambda_max
    assert data["plan"]["flow_rate"] == plan.flow_rate
    assert data["plan"]["lambda_max_per_s"] == plan.lambda_max_per_s
    assert data["plan"]["flow_rate_per_s"] == plan.flow_rate_per_s
    for value in (plan.lambda_max, plan.flow_rate, plan.lambda_max_per_s, plan.flow_rate_per_s):
        assert fmt(value) in html  # the numbers people read, as formatted in the summary
    sim = data["simulation"]
    assert sim["slots"] == 300
    assert sim["replications"] == 2
    # default rates: 0.9·r*(ε) and 0.9·λ_max
    assert [run["arrival_rate"] for run in sim["runs"]] == pytest.approx(
        [0.9 * plan.flow_rate, 0.9 * plan.lambda_max], rel=1e-12)
    labels = [p["label"] for p in sim["runs"][0]["policies"]]
    assert labels[0].startswith("tuned: ")  # the recommended operating point, a quick tune's pick
    assert labels[1] == f"flow:rate={plan.flow_rate:.6g}"  # flow at this report's r*(ε)
    assert {"greedy", "alpha:0.1", "reserve:max=100", "mcsf"} <= set(labels)
    heavy = sim["runs"][-1]
    tuned = heavy["policies"][0]
    # the summary card names that pick, at the heaviest simulated rate
    card = html[html.index("Recommended operating point"):]
    assert tuned["spec"] in card[:2000]
    for run in sim["runs"]:
        for p in run["policies"]:
            assert p["stats"]["throughput_requests_per_slot"]["n"] == 2
    assert data["verification"]["status"] == "not run"
    assert "--no-verify" in data["verification"]["note"]
    assert html.count("<figure>") == 2 + len(sim["runs"])  # laws, bounds, one per simulated rate


def test_default_workload_and_memory(capsys, tmp_path):
    """No workload flags: the preset azure-conv on 131 072 tokens, the default step-time model."""
    code, _out, _ = _run(capsys, ["report", "--no-sim", "--no-verify", "--quiet", "--out", str(tmp_path)])
    assert code == 0
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    data = _data(html)
    assert data["workload"] == "azure-conv"
    assert data["memory_tokens"] == DEFAULT_MEMORY_TOKENS
    plan = make_plan(load_workload("azure-conv"), DEFAULT_MEMORY_TOKENS, step_time=DEFAULT_STEP_TIME)
    assert data["plan"]["lambda_max"] == plan.lambda_max
    assert data["plan"]["flow_rate_per_s"] == plan.flow_rate_per_s
    assert data["step_time"] == DEFAULT_STEP_TIME.to_spec()
    assert data["simulation"] is None
    assert "Not run (<code>--no-sim</code>)" in html
    _assert_self_contained(html)


def test_step_time_none_leaves_out_per_second_numbers(capsys, tmp_path):
    code, _, _ = _run(capsys, ["report", *TINY, "--no-sim", "--no-verify", "--quiet", "--step-time", "none",
                               "--out", str(tmp_path)])
    assert code == 0
    data = _data((tmp_path / "report.html").read_text(encoding="utf-8"))
    assert data["step_time"] is None
    assert data["plan"]["lambda_max_per_s"] is None
    assert "thm:compute-capacity" not in data["claims"]


def test_waste_rate_is_shown_beside_flow_rate(capsys, tmp_path):
    """The default δ = 0.01: r_waste(δ) in §3 with its ratios; ``--waste-target none`` omits it."""
    code, _, _ = _run(capsys, ["report", *TINY, "--no-sim", "--no-verify", "--quiet", "--out", str(tmp_path)])
    assert code == 0
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    data = _data(html)
    plan = make_plan(_tiny_workload(), 2000, step_time=DEFAULT_STEP_TIME, waste_target=0.01)
    waste = data["plan"]["waste"]
    assert data["waste_target"] == 0.01
    assert data["waste_not_applicable"] is None
    assert waste["rate_per_slot"] == plan.waste["rate_per_slot"] > 0
    assert waste["fraction_of_lambda_max"] == plan.waste["fraction_of_lambda_max"]
    flow = html[html.index('<section id="flow">'):html.index('<section id="simulation">')]
    assert "Waste-certified rate" in flow
    assert fmt(plan.waste["rate_per_slot"]) in flow
    assert f"{plan.waste['ratio_to_flow_rate']:.3g} ×" in flow
    assert fmt(plan.waste["fraction_of_lambda_max"], unit="%") in flow
    assert "docs/theory.md §13" in flow
    assert "bound:waste" in data["claims"]
    assert "--waste-target 0.01" in html

    code, _, _ = _run(capsys, ["report", *TINY, "--no-sim", "--no-verify", "--quiet",
                               "--waste-target", "none", "--out", str(tmp_path), "--overwrite"])
    assert code == 0
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    data = _data(html)
    assert "waste" not in data["plan"]
    assert data["waste_target"] is None
    assert "Waste-certified" not in html
    assert "bound:waste" not in data["claims"]
    assert "--waste-target none" in html


def test_waste_rate_for_unbounded_laws_is_not_applicable(capsys, tmp_path):
    code, _, _ = _run(capsys, ["report", "--prompt", "20", "--decode", "geom:mean=10", "--memory", "2000",
                               "--no-sim", "--no-verify", "--quiet", "--out", str(tmp_path)])
    assert code == 0
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    data = _data(html)
    assert "waste" not in data["plan"]
    assert "bounded" in data["waste_not_applicable"]
    flow = html[html.index('<section id="flow">'):html.index('<section id="simulation">')]
    assert "not applicable" in flow
    assert data["waste_not_applicable"] in flow


def test_same_seed_same_numbers():
    wl = _tiny_workload()
    plan = make_plan(wl, 2000, step_time=DEFAULT_STEP_TIME)
    cfg = ReportConfig(wl, 2000, slots=200, replications=2, seed=7, verify=False)
    a = compare_policies(cfg, plan, figures=False)
    assert a == compare_policies(cfg, plan, figures=False)
    other = compare_policies(ReportConfig(wl, 2000, slots=200, replications=2, seed=8), plan, figures=False)
    assert other["seeds"] != a["seeds"]
    assert other["runs"] != a["runs"]


def test_workload_rates_are_simulated_when_given():
    wl = Workload.single(parse_law("20"), parse_law("geom:mean=10,max=100"), rate_per_slot=1.5, name="r")
    plan = make_plan(wl, 2000)
    sim = compare_policies(ReportConfig(wl, 2000, slots=200, replications=1), plan, figures=False)
    assert [run["arrival_rate"] for run in sim["runs"]] == [1.5]
    given = ReportConfig(wl, 2000, slots=200, replications=1, arrival_rates=(0.5, 2.0))
    assert [run["arrival_rate"] for run in compare_policies(given, plan, figures=False)["runs"]] == [0.5, 2.0]


# ---------------------------------------------------------------------------------- verification
class _FakeClaim:
    def __init__(self, cid: str, verdict: str) -> None:
        self.id, self.title, self.verdict = cid, f"title of {cid}", verdict
        self.kinds, self.evidence, self.seconds = ("symbolic",), f"evidence for {cid}", 0.01


def test_verification_uses_the_ledger(monkeypatch):
    calls = []

    def fake_run_ledger(ids=None, mode="quick", progress=None):
        calls.append((tuple(ids), mode))
        return [_FakeClaim(i, "violated" if i == "cor:lambda-max" else "verified") for i in ids]

    monkeypatch.setattr(proofs_check, "run_ledger", fake_run_ledger, raising=False)
    cfg = ReportConfig(_tiny_workload(), 2000, simulate=False, claims=("prop:necessary", "cor:lambda-max"))
    rep = build_report(cfg)
    assert calls == [(("prop:necessary",), "quick"), (("cor:lambda-max",), "quick")]
    ver = rep.data["verification"]
    assert ver["status"] == "run"
    assert ver["counts"] == {"verified": 1, "violated": 1}
    assert "evidence for cor:lambda-max" in rep.html
    assert '<span class="badge bad">violated</span>' in rep.html


def test_verification_error_is_reported_not_raised(monkeypatch):
    def broken(ids=None, mode="quick", progress=None):
        raise RuntimeError("check crashed")

    monkeypatch.setattr(proofs_check, "run_ledger", broken, raising=False)
    rep = build_report(ReportConfig(_tiny_workload(), 2000, simulate=False, claims=("prop:necessary",)))
    assert rep.data["verification"]["results"][0]["verdict"] == "error"
    assert "RuntimeError: check crashed" in rep.html


def test_verification_without_the_ledger_says_not_run(monkeypatch):
    monkeypatch.delattr(proofs_check, "run_ledger", raising=False)
    rep = build_report(ReportConfig(_tiny_workload(), 2000, simulate=False))
    assert rep.data["verification"]["status"] == "not run"
    assert "not available" in rep.data["verification"]["note"]
    assert rep.html.count('<span class="badge muted">not run</span>') == len(rep.data["claims"])


# ---------------------------------------------------------------------------------- provenance
def test_default_step_time_is_the_documented_fit():
    """Refit c0 + cb·B to the splitwise measurements (when the data folder is present)."""
    pd = pytest.importorskip("pandas")
    from numerics.data.presets import data_dir

    folder = data_dir()
    if folder is None or not (folder / "splitwise_perf_model.csv").is_file():
        pytest.skip("shared/data/splitwise_perf_model.csv is not present")
    df = pd.read_csv(folder / "splitwise_perf_model.csv")
    rows = df[(df.model == "llama2-70b") & (df.hardware == "h100-80gb") & (df.tensor_parallel == 4)]
    assert len(rows) == 105
    x = np.c_[np.ones(len(rows)), rows.batch_size.to_numpy(float)]
    (c0, cb), *_ = np.linalg.lstsq(x, rows.token_time.to_numpy(float) / 1000.0, rcond=None)
    assert DEFAULT_STEP_TIME.kind == "linear"
    assert DEFAULT_STEP_TIME.c0 == pytest.approx(c0, rel=FIT_RTOL)
    assert DEFAULT_STEP_TIME.cb == pytest.approx(cb, rel=FIT_RTOL)
    assert DEFAULT_STEP_TIME.ck == 0
    assert DEFAULT_STEP_TIME.cp == 0


# ---------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(("argv", "needle"), [
    (["--workload", "no-such-preset"], "no-such-preset"),
    ([*TINY, "--step-time", "linear:zz=1"], "step time"),
    ([*TINY, "--claims", "prop:necessary,prop:nonsense"], "prop:nonsense"),
    ([*TINY, "--eps", "2"], "--eps"),
    ([*TINY, "--waste-target", "1"], "--waste-target"),
    ([*TINY, "--waste-target", "lots"], "--waste-target"),
    ([*TINY, "--slots", "0"], "--slots"),
    (["--prompt", "20", "--decode", "zipf:a=2.5", "--memory", "2000"], "E[O²]"),
])
def test_bad_input_is_one_line(capsys, tmp_path, argv, needle):
    assert_one_line_cli_error(capsys, ["report", *argv, "--no-sim", "--no-verify", "--quiet",
                                       "--out", str(tmp_path)], needle)


def test_unwritable_out_is_one_line(capsys, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert_one_line_cli_error(capsys, ["report", *TINY, "--no-sim", "--out", str(blocker)],
                              "not a folder")
    assert_one_line_cli_error(capsys, ["report", *TINY, "--no-sim", "--out", str(blocker / "sub")],
                              "cannot create the folder")


def test_config_validation():
    from numerics.errors import WorkloadError

    wl = _tiny_workload()
    with pytest.raises(WorkloadError, match="epsilon"):
        ReportConfig(wl, 2000, epsilon=1.5)
    with pytest.raises(WorkloadError, match="waste target"):
        ReportConfig(wl, 2000, waste_target=1.0)
    assert ReportConfig(wl, 2000, waste_target=None).waste_target is None
    with pytest.raises(WorkloadError, match="replications"):
        ReportConfig(wl, 2000, replications=0)
    with pytest.raises(WorkloadError, match="arrival rates"):
        ReportConfig(wl, 2000, arrival_rates=(0.5, -1.0))
    with pytest.raises(WorkloadError, match="Workload"):
        ReportConfig("azure-conv", 2000)  # type: ignore[arg-type]
    assert math.isclose(ReportConfig(wl, 2000, arrival_rates=[1]).arrival_rates[0], 1.0)


def test_an_existing_report_is_replaced_only_with_overwrite(capsys, tmp_path, monkeypatch):
    # Issue 15: the report overwrote report.html silently (and wrote it in place: a full disk left
    # a partial page). Now it refuses before any work, and writes atomically when told.
    page = tmp_path / "report.html"
    page.write_text("an earlier report")
    import flowstab.report.html as report_html

    def no_work(*args, **kwargs):
        raise AssertionError("the report was computed although its file was refused")

    monkeypatch.setattr(report_html, "build_report", no_work)
    argv = ["report", *TINY, "--no-sim", "--no-verify", "--quiet", "--out", str(tmp_path)]
    code, _, err = _run(capsys, argv)
    assert code == 2
    assert "exists; pass --overwrite" in err
    assert page.read_text() == "an earlier report"
    monkeypatch.undo()
    code, _, _ = _run(capsys, [*argv, "--overwrite"])
    assert code == 0
    assert page.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]  # no temporary left
