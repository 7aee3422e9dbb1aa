"""The claims ledger: every registered ID has a check, the quick ledger verifies every claim, and
deliberately broken copies of results are reported as violated (the ledger can fail).

The quick ledger runs once per test session (a module fixture, ~40 s on two cores); the other
tests run single claims or injected checks.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import sympy as sp
from conftest import assert_one_line_cli_error

import theory
from proofs_check.ledger import (
    CHECKS,
    KINDS,
    VERDICTS,
    Check,
    ClaimViolated,
    Inconclusive,
    LedgerError,
    combine,
    load_checks,
    missing_checks,
    run_checks,
    run_ledger,
    write_report,
)
from theory.registry import REGISTRY


@pytest.fixture(scope="module")
def quick_results():
    return run_ledger(mode="quick")


def _checks(rid: str, kind: str) -> list[Check]:
    return [c for c in load_checks()[rid] if c.kind == kind]


# ---------------------------------------------------------------------------------- meta-tests


def test_every_registered_id_has_a_check():
    assert missing_checks() == []
    assert set(CHECKS) <= set(REGISTRY), "checks registered for unknown IDs"
    for rid, checks in CHECKS.items():
        assert all(c.kind in KINDS and c.id == rid for c in checks)


def test_the_issue_claims_are_registered():
    wanted = {
        "prop:necessary", "cond:hard-cap", "cor:heavy-tail", "thm:heavy-tail-clip",
        "thm:alg1-safe", "thm:alg1-stable", "prop:flow-mean", "prop:flow-variance",
        "thm:convex-order", "thm:overflow-exp-decay", "prop:pareto-poly-decay",
        "thm:mean-memory-time", "thm:bulk-queue-mean", "bound:kingman",
        "thm:greedy-throughput-loss", "cor:nie-capacity", "thm:token-budget-capacity",
        "bound:hoeffding", "bound:bernstein", "bound:chernoff", "bound:cantelli",
        "bound:waste",  # issue 14: the waste-certified rate
    }
    assert wanted <= set(REGISTRY)


def test_verdict_rules():
    assert combine(["verified", "verified"]) == "verified"
    assert combine(["verified", "inconclusive"]) == "inconclusive"
    assert combine(["inconclusive", "violated", "verified"]) == "violated"
    assert combine([]) == "inconclusive"


def test_check_outcomes_from_exceptions():
    def bad(p):
        raise ClaimViolated("counterexample x = 1")

    def unsure(p):
        raise Inconclusive("no power")

    def missing(p):
        raise ImportError("no module named numerics.nothing")

    rid = "def:memory-time"
    res = run_checks(rid, [Check(rid, "symbolic", "ok", lambda p: "fine"),
                           Check(rid, "property", "unsure", unsure)])
    assert res.verdict == "inconclusive"
    res = run_checks(rid, [Check(rid, "empirical", "missing", missing)])
    assert res.verdict == "inconclusive"
    assert "dependency missing" in res.evidence
    res = run_checks(rid, [Check(rid, "symbolic", "bad", bad), Check(rid, "symbolic", "ok",
                                                                     lambda p: "fine")])
    assert res.verdict == "violated"
    assert "counterexample x = 1" in res.evidence


def test_bad_kind_and_unknown_claim_and_mode():
    with pytest.raises(LedgerError, match="kind"):
        Check("def:memory-time", "numeric", "x", lambda p: "")
    with pytest.raises(LedgerError, match="unknown claim"):
        run_ledger(["prop:nope"])
    with pytest.raises(LedgerError, match="mode"):
        run_ledger(["def:memory-time"], mode="fast")


# --------------------------------------------------------------- the ledger can fail (broken)


def test_necessary_condition_with_the_inequality_flipped_is_violated():
    def flipped(rates, mean_memory_times, memory_tokens):  # ≤ swapped for ≥
        lhs = sum(sp.sympify(x) * sp.sympify(w) for x, w in zip(rates, mean_memory_times,
                                                                strict=True))
        return sp.Ge(lhs, sp.sympify(memory_tokens))

    (empirical,) = _checks("prop:necessary", "empirical")
    res = run_checks("prop:necessary", [empirical.inject(necessary_condition=flipped)])
    assert res.verdict == "violated"
    assert res.checks[0].evidence.startswith("VIOLATED")


def test_mean_memory_time_with_a_sign_flipped_is_violated():
    def broken(family, mean_prompt=0, **params):  # E[S]E[O] − (E[O²] + E[O])/2
        m1, m2 = theory.decode_moments(family, **params)
        return sp.sympify(mean_prompt) * m1 - (m2 + m1) / 2

    checks = [c.inject(mean_memory_time=broken) for c in load_checks()["thm:mean-memory-time"]]
    res = run_checks("thm:mean-memory-time", checks)
    assert res.verdict == "violated"
    assert [c.verdict for c in res.checks] == ["violated", "violated"]


def test_kingman_bound_with_a_sign_flipped_is_violated_by_the_property_search():
    def broken(arrival_rate, rate, budget="deterministic"):  # 2(r + λ) in the denominator
        return arrival_rate / (2 * (rate + arrival_rate))

    (prop,) = _checks("bound:kingman", "property")
    prop = replace(prop, quick={**prop.quick, "shrink": False})  # each example solves a chain
    res = run_checks("bound:kingman", [prop.inject(kingman_bound=broken)])
    assert res.verdict == "violated"
    assert "E[Q]" in res.evidence  # the counterexample is reported


def test_flow_mean_with_a_sign_flipped_is_violated():
    (exact_chain,) = [c for c in _checks("prop:flow-mean", "empirical") if "DTMC" in c.name]
    res = run_checks("prop:flow-mean",
                     [exact_chain.inject(flow_saturated_mean=lambda r, w: -sp.sympify(r) * w)])
    assert res.verdict == "violated"


# ------------------------------------------------------------------------ the quick ledger


@pytest.mark.slow
def test_quick_ledger_verifies_every_claim(quick_results):
    assert [r.id for r in quick_results] == list(REGISTRY)
    bad = {r.id: r.evidence for r in quick_results if r.verdict != "verified"}
    assert bad == {}


@pytest.mark.slow
def test_json_schema(quick_results):
    rows = json.loads(json.dumps([r.to_dict() for r in quick_results]))
    for row in rows:
        assert {"id", "verdict", "kinds", "evidence", "checks", "statement", "source"} <= set(row)
        assert row["verdict"] in VERDICTS
        assert row["kinds"]
        assert set(row["kinds"]) <= set(KINDS)
        assert all(c["verdict"] in VERDICTS for c in row["checks"])


@pytest.mark.slow
def test_report_lists_every_claim_with_its_evidence(quick_results, tmp_path):
    path = write_report(quick_results, tmp_path / "sub" / "REPORT.md", mode="quick")
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# Claims ledger")
    for r in quick_results:
        assert f"`{r.id}`" in text
    assert "| kind | check | verdict | seconds | evidence |" in text


# ------------------------------------------------------------------------------------- CLI


def test_cli_json_and_exit_status_zero(capsys, tmp_path):
    from flowstab.cli import main

    report = tmp_path / "r.md"
    code = main(["check", "--quick", "--claim", "def:memory-time", "--claim", "cor:nie-capacity",
                 "--json", "--report", str(report)])
    assert code == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in rows] == ["def:memory-time", "cor:nie-capacity"]
    assert all(r["verdict"] == "verified" for r in rows)
    assert report.exists()


def test_cli_table(capsys, tmp_path):
    from flowstab.cli import main

    code = main(["check", "--claim", "thm:alg1-safe", "--report", str(tmp_path / "r.md")])
    out = capsys.readouterr().out
    assert code == 0
    assert "thm:alg1-safe" in out
    assert "1 claims: 1 verified" in out


def test_cli_exit_status_one_when_violated(capsys, tmp_path, monkeypatch):
    from flowstab.cli import main
    from proofs_check import ledger

    def always_violated(p):
        raise ClaimViolated("planted")

    load_checks()  # the real checks first, so that run_ledger's import does not add them back
    monkeypatch.setitem(ledger.CHECKS, "def:memory-time",
                        [Check("def:memory-time", "symbolic", "planted", always_violated)])
    code = main(["check", "--claim", "def:memory-time", "--report", str(tmp_path / "r.md")])
    assert code == 1
    assert "violated" in capsys.readouterr().out
    assert "planted" in (tmp_path / "r.md").read_text(encoding="utf-8")


def test_cli_unknown_claim_is_a_one_line_error(capsys, tmp_path):
    assert_one_line_cli_error(capsys, ["check", "--claim", "prop:nope", "--report",
                                       str(tmp_path / "r.md")], "unknown claim")


def test_cli_quick_and_thorough_are_exclusive(capsys):
    assert_one_line_cli_error(capsys, ["check", "--quick", "--thorough"], "not allowed")
