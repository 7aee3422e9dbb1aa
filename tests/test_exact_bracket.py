"""The lattice bracket on P(U > M) (request sizes rounded to multiples of b tokens), issue 15.

Rounding every request size S + a + 1 up (down) to a multiple of b gives U⁺ ≥ U ≥ U⁻ pathwise, so
P(U⁻ > M) ≤ P(U > M) ≤ P(U⁺ > M). The references are the direct-convolution oracle of
``tests/test_exact_wide.py`` (no transform, tilt or lattice: exact to ~1e-13 relative) and, for a
joint (trace-like) law, the lobe and the full-window FFT of :func:`exact_tail`; with b = 1 nothing
is rounded and both ends must equal the reference to the inversions' tolerance.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from numerics.analysis.bounds import FlowTails
from numerics.analysis.exact import ExactFlowRate, exact_flow_rate, exact_tail, lobe
from numerics.analysis.exact import bracket as bracket_mod
from numerics.analysis.exact import tails as tails_mod
from numerics.analysis.exact.bracket import bracket_tail
from numerics.model.budget import BudgetLaw
from numerics.model.specs import parse_law
from numerics.model.workload import JointLengths, RequestClass, Workload
from tests.test_exact_wide import HEAVY_M, _heavy, _law_dict, oracle_law

#: the ends' own tolerance (bracket rtol 1e-4 on each) plus the oracle's
END_RTOL = 2e-4


def _contains(got, ref: float) -> None:
    assert got.method == "bracket"
    assert got.lower is not None
    assert got.lower * (1 - END_RTOL) <= ref <= got.prob * (1 + END_RTOL), (got.lower, ref, got.prob)
    assert got.prob - got.lower <= got.abs_error * (1 + 1e-12)
    assert abs(got.prob - ref) <= got.abs_error * (1 + END_RTOL)


@pytest.mark.parametrize("kind", ["randomized", "poisson", "deterministic"])
@pytest.mark.parametrize("lattice", [1, 4, 16])
def test_the_bracket_contains_the_convolution_oracle(kind, lattice):
    s, o, wl = _heavy()
    tails = FlowTails(wl, HEAVY_M)
    rate = 1.0 if kind == "deterministic" else 0.2 * tails.lambda_max  # 1.0: 0.4 λ_max
    law = BudgetLaw(kind, rate)
    ref = float(oracle_law(_law_dict(s), _law_dict(o), kind, rate, HEAVY_M)[HEAVY_M + 1:].sum())
    got = bracket_tail(wl, HEAVY_M, law, tails.chernoff_theta(law), lattice=lattice)
    _contains(got, ref)
    if lattice == 1:  # nothing rounded: both ends are the exact tail
        assert got.lower == pytest.approx(ref, rel=END_RTOL)
        assert got.prob == pytest.approx(ref, rel=END_RTOL)
    assert f"bracket:b={lattice}" in got.description


def test_the_bracket_narrows_as_the_lattice_shrinks():
    _s, _o, wl = _heavy()
    tails = FlowTails(wl, HEAVY_M)
    law = BudgetLaw("randomized", 0.05 * tails.lambda_max)
    theta = tails.chernoff_theta(law)
    widths = [bracket_tail(wl, HEAVY_M, law, theta, lattice=b).abs_error for b in (32, 8, 2)]
    assert widths[0] > widths[1] > widths[2]


def test_the_bracket_of_a_lower_tail_contains_the_oracle():
    # above λ_max (E U > M): the lower tail P(U ≤ M) is inverted, at a negative tilt
    s, o, wl = _heavy()
    tails = FlowTails(wl, HEAVY_M)
    law = BudgetLaw("randomized", 1.3 * tails.lambda_max)
    theta = tails_mod._lower_chernoff(wl, HEAVY_M, law, math.sqrt(tails.variance(law)))[0]
    assert theta < 0
    table = oracle_law(_law_dict(s), _law_dict(o), "randomized", law.rate_per_slot, HEAVY_M)
    ref = float(table[HEAVY_M + 1:].sum())
    for b in (1, 8):
        _contains(bracket_tail(wl, HEAVY_M, law, theta, lattice=b), ref)


def _joint() -> Workload:
    """A trace-like joint law: 400 empirical (S, O) pairs, prompts lumpy and correlated with O."""
    rng = np.random.default_rng(2026)
    o = rng.integers(1, 60, size=400)
    s = (rng.lognormal(5.0, 0.8, size=400) + 3 * o).astype(int)
    return Workload((RequestClass(JointLengths.from_samples(s, o), None, "trace"),))


@pytest.mark.parametrize("load", [0.3, 0.6])
def test_the_bracket_of_a_joint_law_contains_the_exact_tail(load):
    wl = _joint()
    m = 20_000
    tails = FlowTails(wl, m)
    law = BudgetLaw("randomized", load * tails.lambda_max)
    ref = exact_tail(wl, m, law.rate_per_slot, method="lobe").prob
    theta = tails.chernoff_theta(law)
    for b in (1, 8, 64):
        got = bracket_tail(wl, m, law, theta, lattice=b)
        _contains(got, ref)
        if b == 1:
            assert got.prob == pytest.approx(ref, rel=END_RTOL)


def test_the_bracket_of_two_classes_contains_the_lobe():
    wl = Workload((RequestClass.independent(parse_law("uniform:10,200"), parse_law("geom:mean=30,max=200"),
                                            1.0, "a"),
                   RequestClass(_joint().classes[0].lengths, 2.0, "b")))
    m = 30_000
    tails = FlowTails(wl, m)
    law = BudgetLaw("poisson", 0.5 * tails.lambda_max)
    ref = exact_tail(wl, m, law.rate_per_slot, "poisson", method="lobe").prob
    _contains(bracket_tail(wl, m, law, tails.chernoff_theta(law), lattice=16), ref)


def _force_costly(monkeypatch) -> None:
    """The lobe cannot vouch for itself and the full window costs more than its budget."""
    def unreliable(*_args, **_kwargs):
        raise lobe._LobeUnreliable("forced")

    monkeypatch.setattr(tails_mod, "_lobe_log_tail", unreliable)
    monkeypatch.setattr(tails_mod, "_series_tail", lambda *a, **k: None)
    monkeypatch.setattr(tails_mod, "_FFT_WORK", 0.0)


def test_auto_answers_by_the_bracket_where_the_inversions_are_too_costly(monkeypatch):
    s, o, wl = _heavy()
    r = 0.2 * HEAVY_M / wl.mean_memory_time
    ref = float(oracle_law(_law_dict(s), _law_dict(o), "randomized", r, HEAVY_M)[HEAVY_M + 1:].sum())
    _force_costly(monkeypatch)
    monkeypatch.setattr(bracket_mod, "_BRACKET_WORK", 3e5)  # a coarse lattice: b > 1
    got = exact_tail(wl, HEAVY_M, r)
    _contains(got, ref)
    assert got.lattice > 1
    assert "bracket:b=" in got.description
    assert "≤ P(U > M) ≤" in got.description


def test_the_rate_search_under_the_bracket_is_certified(monkeypatch):
    # r* from the bracket's upper end: the oracle's P(U > M) at r* is ≤ ε, and r* is at most the
    # exact search's r* and within a few per cent of it (the bracket is that tight here)
    s, o, wl = _heavy()
    eps = 1e-4
    exact = exact_flow_rate(wl, HEAVY_M, eps)
    _force_costly(monkeypatch)
    monkeypatch.setattr(bracket_mod, "_BRACKET_WORK", 3e5)
    fr = exact_flow_rate(wl, HEAVY_M, eps)
    assert isinstance(fr, ExactFlowRate)
    assert "bracket:b=" in fr.description
    assert "certified" in fr.description
    ref = float(oracle_law(_law_dict(s), _law_dict(o), "randomized", fr.rate_per_slot,
                           HEAVY_M)[HEAVY_M + 1:].sum())
    assert ref <= eps
    assert fr.overflow_bound <= eps
    assert fr.rate_per_slot <= exact.rate_per_slot * (1 + 1e-6)
    assert fr.rate_per_slot >= 0.9 * exact.rate_per_slot


def test_the_bracket_respects_the_time_budget(monkeypatch):
    from numerics.errors import SettingError

    _s, _o, wl = _heavy()
    _force_costly(monkeypatch)
    with pytest.raises(SettingError, match="max_seconds"):
        exact_tail(wl, HEAVY_M, 0.5 * HEAVY_M / wl.mean_memory_time, max_seconds=1e-9)


@pytest.mark.slow
def test_the_bracket_of_a_joint_law_contains_the_full_window_fft():
    wl = _joint()
    m = 20_000
    tails = FlowTails(wl, m)
    law = BudgetLaw("randomized", 0.1 * tails.lambda_max)
    ref = exact_tail(wl, m, law.rate_per_slot, method="fft").prob  # 2.5 s
    theta = tails.chernoff_theta(law)
    for b in (1, 2, 32):
        _contains(bracket_tail(wl, m, law, theta, lattice=b), ref)


@pytest.mark.slow
@pytest.mark.parametrize("load", [0.05, 0.9])
def test_the_mooncake_trace_is_bracketed_within_five_seconds(load):
    from numerics.data.loaders import load_workload
    from numerics.data.paths import data_file

    path = data_file("mooncake_conversation_trace.jsonl")
    if path is None:
        pytest.skip("the mooncake trace is not in the data folder")
    wl = load_workload(f"trace:{path}")
    m = 131_072
    t0 = time.perf_counter()
    got = exact_tail(wl, m, load * m / wl.mean_memory_time)
    assert time.perf_counter() - t0 < 10.0  # 3–4 s on the reference machine; slack for load
    assert got.method == "bracket"
    assert (got.prob - got.lower) / got.prob < 0.1
