"""The exact tail over a wide range of rates, against an independent oracle (issue 15).

The oracle is the law of the saturated memory U = Σ_a Σ_{m ≤ B} X_{a,m} built by direct convolution
(``np.convolve`` of non-negative arrays: every entry keeps its relative precision, so tails far
below 1e-16 are exact to ~1e-13 relative), with no transform, tilt or lattice involved. It covers
rates far above λ_max = M/E[W] (where E U ≫ M and the inversion must give P(U > M) ≈ 1: the
saturated memory once wrapped round the FFT's circle and gave 0.0068) and light loads with a
budget that is often 0 (where the transform has a floor and the main-lobe walk once went round
the whole circle).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from numerics.analysis.exact import exact_flow_rate, exact_tail, lobe
from numerics.model.laws import TokenLaw
from numerics.model.specs import parse_law
from numerics.model.workload import Workload

#: Agreement of exact_tail with the convolution oracle, relative, on P(U > M) and on P(U ≤ M):
#: the inversion's rtol is 1e-8; the oracle is good to ~1e-13.
ORACLE_RTOL = 1e-6


def _fold(a: np.ndarray, cap: int | None) -> np.ndarray:
    """Lump the mass above ``cap`` into the entry cap + 1 (exact for P(U ≤ m), m ≤ cap)."""
    if cap is None or a.size <= cap + 2:
        return a
    out = a[: cap + 2].copy()
    out[cap + 1] += a[cap + 2:].sum()
    return out


def _cohort(x: np.ndarray, kind: str, r: float, cap: int | None = None) -> np.ndarray:
    """Law of the sum over one cohort of B i.i.d. terms with law x (B the budget law)."""
    def power(n: int) -> np.ndarray:
        out = np.array([1.0])
        for _ in range(n):
            out = _fold(np.convolve(out, x), cap)
        return out

    def mix(laws: list[tuple[float, np.ndarray]]) -> np.ndarray:
        size = max(a.size for _, a in laws)
        out = np.zeros(size)
        for w, a in laws:
            out[: a.size] += w * a
        return out

    if kind == "deterministic":
        return power(int(r))
    if kind == "randomized":
        k = math.floor(r)
        f = r - k
        return mix([(1 - f, power(k)), (f, power(k + 1))]) if f > 0 else power(k)
    # Poisson: Σ_n e^{-r} r^n/n! x^{*n}, cut where the Poisson weights are below e^{-700}
    # (tails down to ~1e-300 need that many terms)
    laws, term, n = [], np.array([1.0]), 0
    while True:
        log_w = -r + n * math.log(r) - math.lgamma(n + 1)
        laws.append((math.exp(log_w), term))
        if n > r and log_w < -700:
            break
        term = _fold(np.convolve(term, x), cap)
        n += 1
    return mix(laws)


def oracle_law(prompt: dict[int, float], decode: dict[int, float], kind: str, r: float,
               cap: int | None = None) -> np.ndarray:
    """The PMF of U on 0, 1, 2, ... by direct convolution over ages and cohort members (with
    ``cap``: on 0..cap, and P(U > cap) as the last entry)."""
    s_vals, s_probs = np.array(list(prompt)), np.array(list(prompt.values()))
    o_vals, o_probs = np.array(list(decode)), np.array(list(decode.values()))
    u = np.array([1.0])
    for a in range(int(o_vals.max())):
        alive = float(o_probs[o_vals > a].sum())
        x = np.zeros(int(s_vals.max()) + a + 2)
        x[0] = float(o_probs[o_vals <= a].sum())  # exactly 0 where every request is still active
        np.add.at(x, s_vals + a + 1, alive * s_probs)
        u = _fold(np.convolve(u, _cohort(x, kind, r, cap)), cap)
    return u


def _workload(prompt: dict[int, float], decode: dict[int, float]) -> Workload:
    return Workload.single(TokenLaw.from_pmf(list(prompt), list(prompt.values())),
                           TokenLaw.from_pmf(list(decode), list(decode.values())))


def _check(got, law: np.ndarray, memory: int) -> None:
    above = float(law[memory + 1:].sum())
    below = float(law[: memory + 1].sum())
    p_above = got.prob
    p_below = -math.expm1(got.log_prob)
    slack = got.abs_error or 0.0
    assert abs(p_above - above) <= ORACLE_RTOL * above + slack + 1e-300, (got, above)
    assert abs(p_below - below) <= ORACLE_RTOL * below + slack + 1e-300, (got, below)


# ---------------------------------------------------------------------------- the reported case
UNIFORM = Workload.single(parse_law("20"), parse_law("uniform:1,100"))


@pytest.mark.parametrize("kind", ["randomized", "deterministic", "poisson"])
@pytest.mark.parametrize("rate", [20, 50, 100, 1000])
def test_far_above_capacity_the_memory_overflows_almost_surely(rate, kind):
    # S = 20, O ~ U{1..100}, M = 20 000: λ_max = 7.33 and E U = 2727 r ≥ 2.7 M. Before issue 15
    # exact_tail gave 0.0068 at r = 50 and 0.0012 at r = 100 (the law wrapped round the FFT
    # window). Independently: U ≥ 21 r (the age-0 cohort), and the Chernoff bound on P(U ≤ M)
    # is below 1e-17 at every rate here.
    got = exact_tail(UNIFORM, 20_000, rate, kind)
    assert got.prob >= 1 - 1e-15
    assert got.log_prob <= 0
    assert got.method in ("chernoff", "sure")
    assert got.abs_error is not None
    assert got.abs_error <= 1e-17


def test_far_above_capacity_agrees_with_monte_carlo():
    # 2000 draws of U at r = 50 (deterministic budget): every one exceeds M. If P(U ≤ M) were
    # ≥ 0.5 % (a wrong answer of the old size, 1 − 0.0068), seeing none in 2000 draws has
    # probability ≤ 0.995^2000 ≈ 4.4e-5.
    rng = np.random.default_rng(15)
    n, r, m = 2000, 50, 20_000
    o = rng.integers(1, 101, size=(n, 100, r))
    ages = np.arange(100)[None, :, None]
    u = ((20 + ages + 1) * (o > ages)).sum(axis=(1, 2))
    assert np.all(u > m)
    assert exact_tail(UNIFORM, m, r, "deterministic").prob == 1.0


@pytest.mark.parametrize("method", ["lobe", "fft"])
@pytest.mark.parametrize("rate", [7.5, 8.0, 9.0, 10.0])
def test_just_above_capacity_both_inversions_match_the_oracle(rate, method):
    # E U ≥ M but P(U ≤ M) is not negligible (0.30 … 1.3e-15): the lower tail is inverted.
    prompt, decode = {20: 1.0}, {o: 0.01 for o in range(1, 101)}
    got = exact_tail(_workload(prompt, decode), 20_000, rate, "randomized", method=method)
    _check(got, oracle_law(prompt, decode, "randomized", rate), 20_000)


# ------------------------------------------------------------------------- property: small laws
def _pmf(draw, lo: int, hi: int) -> dict[int, float]:
    vals = draw(st.lists(st.integers(lo, hi), min_size=1, max_size=4, unique=True))
    weights = draw(st.lists(st.integers(1, 9), min_size=len(vals), max_size=len(vals)))
    total = sum(weights)
    return {v: w / total for v, w in zip(vals, weights, strict=True)}


@st.composite
def cases(draw):
    prompt = _pmf(draw, 0, 6)
    decode = _pmf(draw, 1, 6)
    kind = draw(st.sampled_from(["randomized", "deterministic", "poisson"]))
    rate = float(draw(st.integers(1, 12))) if kind == "deterministic" else draw(
        st.floats(0.05, 12.0).map(lambda x: round(x, 3)))
    return prompt, decode, kind, rate, draw(st.floats(0.02, 4.0)), draw(
        st.sampled_from(["auto", "fft"]))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_exact_tail_matches_the_convolution_oracle(case):
    prompt, decode, kind, rate, spread, method = case
    wl = _workload(prompt, decode)
    law = oracle_law(prompt, decode, kind, rate)
    mean = rate * wl.mean_memory_time
    memory = max(1, int(spread * mean))  # from far below E U (r ≫ λ_max) to far above it
    if memory + 1 >= law.size:
        memory = law.size - 2 if law.size >= 3 else 1
    got = exact_tail(wl, memory, rate, kind, method=method)
    _check(got, law, memory)


# ---------------------------------------------------------------- light load (few active requests)
#: The shape of the ShareGPT / Azure presets, scaled down so the oracle is cheap: a negative-
#: binomial prompt with shape < 1 (mass piled at the shift), a clipped decode, a randomized budget
#: with mean < 1 (so a cohort is often empty and U has an atom at 0).
LIGHT_PROMPT = "nbinom:n=0.8,p=0.02,shift=1,max=60"
LIGHT_DECODE = "nbinom:n=1.7,p=0.08,shift=2,max=30"


def _law_dict(law: TokenLaw) -> dict[int, float]:
    return {int(v): float(p) for v, p in zip(law.values, law.probs, strict=True)}


@pytest.mark.parametrize("load", [0.5, 0.2, 0.05, 0.02])
def test_light_load_tails_match_the_oracle(load):
    s, o = parse_law(LIGHT_PROMPT), parse_law(LIGHT_DECODE)
    wl = Workload.single(s, o)
    memory = 900
    rate = load * memory / wl.mean_memory_time
    assert rate < 1
    got = exact_tail(wl, memory, rate, "randomized")
    _check(got, oracle_law(_law_dict(s), _law_dict(o), "randomized", rate, memory), memory)


def _count_frequencies(monkeypatch) -> list[int]:
    seen: list[int] = []
    original = lobe._Product.log_ratio

    def counted(self, omega, grid=None):
        seen.append(np.asarray(omega).size)
        return original(self, omega, grid)

    monkeypatch.setattr(lobe._Product, "log_ratio", counted)
    return seen


@pytest.mark.parametrize("load", [0.35, 0.2])
def test_light_load_walk_stays_near_the_lobe(load, monkeypatch):
    # The ShareGPT preset at M = 131 072 (λ_max = 0.123 per slot): at 0.35 λ_max the walk beyond
    # the main lobe once evaluated every frequency of a 2^21-point circle (48.6 s; > 60 s at 0.2)
    # because the tilted transform has a floor (atoms of U at few active requests). It now stops
    # once the rest of the circle is bounded below 0.1·rtol of the answer.
    from numerics.data.presets import load_preset

    wl = load_preset("sharegpt")
    seen = _count_frequencies(monkeypatch)
    got = exact_tail(wl, 131_072, load * 131_072 / wl.mean_memory_time, "randomized")
    assert got.method == "lobe"
    assert sum(seen) < got.grid_points // 16, (sum(seen), got.grid_points)
    assert 0 < got.prob < 1e-5


def test_light_load_walk_agrees_with_the_full_circle():
    # The early stop changes nothing beyond rtol: the same tail with the walk forced round the whole
    # circle (per-class entry point, full_circle) on the small light-load case.
    s, o = parse_law(LIGHT_PROMPT), parse_law(LIGHT_DECODE)
    wl = Workload.single(s, o)
    rate = 0.05 * 900 / wl.mean_memory_time
    got = exact_tail(wl, 900, rate, "randomized")
    from numerics.analysis.bounds import FlowTails
    from numerics.analysis.exact.lobe import _lobe_log_tail
    from numerics.model.budget import BudgetLaw

    law = BudgetLaw("randomized", rate)
    tails = FlowTails(wl, 900)
    full = _lobe_log_tail([(wl, law)], 900, tails.chernoff_theta(law), math.sqrt(tails.variance(law)),
                          1e-8, full_circle=True)
    assert got.log_prob == pytest.approx(full.log_prob, rel=1e-7)


def test_exact_flow_rate_at_light_load_meets_epsilon():
    # r*(ε) on the small light-load shape: the tail at r* is ≤ ε and just above it > ε (oracle).
    s, o = parse_law(LIGHT_PROMPT), parse_law(LIGHT_DECODE)
    wl = Workload.single(s, o)
    fr = exact_flow_rate(wl, 900, 1e-9)
    for r, ok in ((fr.rate_per_slot, True), (fr.rate_per_slot * 1.001, False)):
        law = oracle_law(_law_dict(s), _law_dict(o), "randomized", r, 900)
        assert (float(law[901:].sum()) <= 1e-9) == ok


@pytest.mark.parametrize(("kind", "load"), [("poisson", 0.5), ("poisson", 0.1), ("poisson", 0.02),
                                           ("randomized", 0.02)])
def test_light_load_series_matches_the_oracle(kind, load):
    # The full-window FFT with the product over ages done by a log-series of FFTs (method
    # "series"): what exact_tail uses once the lobe walk runs long (the Mooncake preset, whose
    # tilted transform decays only like a power of ω). For the Bernoulli budget the series needs
    # max g_a < 0.9 (0.87 at 0.02 λ_max here).
    from numerics.analysis.bounds import FlowTails
    from numerics.analysis.exact.fft import _series_tail
    from numerics.model.budget import BudgetLaw

    s, o = parse_law(LIGHT_PROMPT), parse_law(LIGHT_DECODE)
    wl = Workload.single(s, o)
    memory = 900
    rate = load * memory / wl.mean_memory_time
    law = BudgetLaw(kind, rate)
    tails = FlowTails(wl, memory)
    got = _series_tail(wl, memory, law, tails.chernoff_theta(law), math.sqrt(tails.variance(law)),
                       1e-8)
    assert got is not None
    assert got.method == "series"
    _check(got, oracle_law(_law_dict(s), _law_dict(o), kind, rate, memory), memory)


def test_series_declines_where_it_does_not_apply():
    from numerics.analysis.bounds import FlowTails
    from numerics.analysis.exact.fft import _series_tail
    from numerics.model.budget import BudgetLaw

    law = BudgetLaw("deterministic", 3)
    tails = FlowTails(UNIFORM, 20_000)
    assert _series_tail(UNIFORM, 20_000, law, tails.chernoff_theta(law), 1.0, 1e-8) is None
    # a Bernoulli budget whose tilted cohorts are present with odds g ≥ 0.9 (0.5 λ_max: g = 2.9)
    wl = Workload.single(parse_law(LIGHT_PROMPT), parse_law(LIGHT_DECODE))
    law = BudgetLaw("randomized", 0.5 * 900 / wl.mean_memory_time)
    tails = FlowTails(wl, 900)
    assert _series_tail(wl, 900, law, tails.chernoff_theta(law), 1.0, 1e-8) is None


# ---------------------------------------------------------------------------------------------
# Issue 15, "Hangs": the fast paths (series first at few requests, the tilt ladder on a side peak,
# the Chernoff answer where a negligible tail would need a costly full window, the time budget).

#: A small analogue of the heavy-prompt presets (mooncake, azure-code): a prompt law clipped at
#: its max with much mass there, so that at light load the tilted law is a few long requests.
HEAVY_PROMPT = "nbinom:n=0.9,p=0.004,shift=3,max=300"
HEAVY_DECODE = "nbinom:n=0.5,p=0.1,shift=3,max=40"
HEAVY_M = 3000


def _heavy() -> tuple[TokenLaw, TokenLaw, Workload]:
    s, o = parse_law(HEAVY_PROMPT), parse_law(HEAVY_DECODE)
    return s, o, Workload.single(s, o)


@pytest.mark.parametrize("load", [0.002, 0.02, 0.05, 0.2])
def test_heavy_prompt_light_load_matches_the_oracle(load):
    # 0.002 and 0.02 λ_max: few requests under the tilt, the series answers first; 0.05 λ_max: the
    # series' two grids disagree (rounding ~1e-6), the lobe walks on; all against the convolution.
    s, o, wl = _heavy()
    r = load * HEAVY_M / wl.mean_memory_time
    got = exact_tail(wl, HEAVY_M, r)
    ref = float(oracle_law(_law_dict(s), _law_dict(o), "randomized", r, HEAVY_M)[HEAVY_M + 1:].sum())
    assert got.prob == pytest.approx(ref, rel=ORACLE_RTOL)
    assert got.method in ("series", "lobe")


def test_the_tilt_ladder_after_a_side_peak_still_matches_the_oracle(monkeypatch):
    # Deterministic r = 1 at M = 1500 on the light shape: the base tilt's scan finds a side peak;
    # the ladder moves the tilt out (a second attempt at a larger θ), and whatever answers in the
    # end agrees with the oracle.
    s, o = parse_law(LIGHT_PROMPT), parse_law(LIGHT_DECODE)
    wl = Workload.single(s, o)
    tried = []
    original = lobe._lobe_at

    def spy(parts, theta, *args):
        try:
            out = original(parts, theta, *args)
        except Exception as exc:
            tried.append((theta, type(exc).__name__))
            raise
        tried.append((theta, "ok"))
        return out

    monkeypatch.setattr(lobe, "_lobe_at", spy)
    got = exact_tail(wl, 1500, 1, "deterministic")
    ref = float(oracle_law(_law_dict(s), _law_dict(o), "deterministic", 1, 1500)[1501:].sum())
    assert got.prob == pytest.approx(ref, rel=ORACLE_RTOL)
    assert tried[0][1] == "_SidePeak"
    assert len(tried) >= 2
    assert tried[1][0] > tried[0][0]


def test_a_negligible_tail_is_answered_by_its_chernoff_bound_when_the_window_is_costly(monkeypatch):
    # Sandwich: where the lobe cannot vouch for itself and the full window would be too costly
    # (forced here: _FFT_WORK = 0), a tail below ``negligible`` is P = δ/2 ± δ/2 with δ the
    # Chernoff bound; the oracle's P(U > M) lies in [0, δ].
    from numerics.analysis.exact import tails as tails_mod

    s, o, wl = _heavy()
    r = 0.05 * HEAVY_M / wl.mean_memory_time
    ref = float(oracle_law(_law_dict(s), _law_dict(o), "randomized", r, HEAVY_M)[HEAVY_M + 1:].sum())

    def unreliable(*_args, **_kwargs):
        raise lobe._LobeUnreliable("forced")

    monkeypatch.setattr(tails_mod, "_lobe_log_tail", unreliable)
    monkeypatch.setattr(tails_mod, "_series_tail", lambda *a, **k: None)
    monkeypatch.setattr(tails_mod, "_FFT_WORK", 0.0)
    got = exact_tail(wl, HEAVY_M, r, negligible=1e-10)
    assert got.method == "chernoff-upper"
    assert 0 <= ref <= 2 * got.abs_error
    assert got.prob == pytest.approx(got.abs_error)
    assert abs(got.prob - ref) <= got.abs_error
    assert "Chernoff" in got.description
    assert "proved" in got.description
    # with negligible = 0 the costly window goes to the lattice bracket (tests/test_exact_bracket.py),
    # which contains the oracle; where the bracket fails, the full window runs and matches it
    got = exact_tail(wl, HEAVY_M, r, negligible=0.0)
    assert got.method == "bracket"
    assert got.lower * (1 - 1e-4) <= ref <= got.prob * (1 + 1e-4)

    def failed(*_args, **_kwargs):
        raise tails_mod._BracketFailed("forced")

    monkeypatch.setattr(tails_mod, "bracket_tail", failed)
    full = exact_tail(wl, HEAVY_M, r, negligible=0.0)
    assert full.method == "fft"
    assert full.prob == pytest.approx(ref, rel=ORACLE_RTOL)


def test_the_time_budget_raises_a_setting_error_or_answers_a_negligible_tail():
    from numerics.errors import SettingError

    s, o, wl = _heavy()
    top = HEAVY_M / wl.mean_memory_time
    with pytest.raises(SettingError, match="max_seconds"):
        exact_tail(wl, HEAVY_M, 0.5 * top, max_seconds=1e-9)  # P ≈ 1e-3: not negligible
    got = exact_tail(wl, HEAVY_M, 0.002 * top, max_seconds=1e-9)  # Chernoff bound < 1e-15
    ref = float(oracle_law(_law_dict(s), _law_dict(o), "randomized", 0.002 * top,
                           HEAVY_M)[HEAVY_M + 1:].sum())
    assert got.method == "chernoff-upper"
    assert abs(got.prob - ref) <= got.abs_error <= 1e-15
    with pytest.raises(SettingError, match="max_seconds"):
        exact_tail(wl, HEAVY_M, 0.5 * top, max_seconds=0)


def test_running_product_phases_match_the_exponentials():
    rng = np.random.default_rng(15)
    s = np.sort(rng.integers(1, 130_000, size=257)).astype(float)
    omega = 0.3 + 2 * np.pi * 7 * np.arange(700) / 2**21  # equally spaced, past 2 restarts
    ref = np.exp(1j * np.outer(omega, s))
    assert np.max(np.abs(lobe._phases(s, omega) - ref)) < 1e-12
    w = rng.random(s.size)
    assert np.allclose(lobe._direct_cf(s, w, omega), (ref * w).sum(axis=1) / w.sum(), atol=1e-13)


@pytest.mark.slow
def test_exact_flow_rate_with_heavy_prompts_meets_epsilon():
    # The log-r search from the Chernoff rate (certified below) on the heavy analogue, where the
    # Gaussian rate is far too high: P(U > M) ≤ ε at r* and > ε at r*(1 + 1e-3) (oracle).
    s, o, wl = _heavy()
    fr = exact_flow_rate(wl, HEAVY_M, 1e-9)
    for r, ok in ((fr.rate_per_slot, True), (fr.rate_per_slot * 1.001, False)):
        law = oracle_law(_law_dict(s), _law_dict(o), "randomized", r, HEAVY_M)
        assert (float(law[HEAVY_M + 1:].sum()) <= 1e-9) == ok
