"""Tests of :mod:`numerics.model.workload`: the length models and the workload mixture.

The oracle for every per-age quantity is brute-force enumeration over the (S, O) pairs of small
random PMFs drawn by Hypothesis, in exact rationals (``fractions.Fraction``): with
X_a = (S + a + 1)·1{O > a},

* G(a) = P(O > a), μ_a = E[X_a], ν_a = E[X_a²], log E[e^{θ X_a}; O > a];
* Σ_a μ_a = E[W] = E[S·O + O(O+1)/2] and Σ_a ν_a = E[Σ_{k=1}^{O} (S + k)²].
"""

from __future__ import annotations

import math
from collections import Counter
from fractions import Fraction
from functools import cache

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from numerics.errors import UnstableWorkloadError, WorkloadError
from numerics.model.laws import TokenLaw
from numerics.model.specs import parse_law
from numerics.model.workload import IndependentLengths, JointLengths, RequestClass, Workload

# ---------------------------------------------------------------------------------- tolerances
EXACT_RTOL = 1e-12  # a few dozen float operations on masses rounded to double (ε ≈ 1.1e-16 each)
LOG_ATOL = 1e-12  # a log of a sum near 1 is near 0: its error is absolute (~1e-16), not relative
FAMILY_RTOL = 1e-11  # sums over ≤ 1.4e5 geometric pmf values (a few ulps each), renormalised
MC_Z = 5.0  # 5 standard errors: two-sided normal false alarm ~5.7e-7 per check (seeds are fixed)
MC_DRAWS = 40_000  # draws per Monte Carlo check
THETAS = (-0.5, 0.0, 0.05, 0.4)  # where the log-mgf is compared with brute force

Pair = tuple[int, int, Fraction]  # (S, O, probability)


# ---------------------------------------------------------------------------------- strategies
@st.composite
def small_pmfs(draw, lo: int, hi: int, max_size: int = 5) -> dict[int, Fraction]:
    """A PMF on ≤ max_size distinct points of {lo, ..., hi} with rational masses w_i / Σ w."""
    values = draw(st.lists(st.integers(lo, hi), min_size=1, max_size=max_size, unique=True))
    weights = draw(st.lists(st.integers(1, 30), min_size=len(values), max_size=len(values)))
    total = sum(weights)
    return {v: Fraction(w, total) for v, w in zip(values, weights, strict=True)}


@st.composite
def joint_pmfs(draw) -> list[Pair]:
    """Up to 8 (S, O) pairs (repeats allowed) with rational masses w_i / Σ w."""
    raw = draw(
        st.lists(
            st.tuples(st.integers(0, 20), st.integers(1, 12), st.integers(1, 30)),
            min_size=1,
            max_size=8,
        )
    )
    total = sum(w for *_, w in raw)
    return [(s, o, Fraction(w, total)) for s, o, w in raw]


def law_of(pmf: dict[int, Fraction]) -> TokenLaw:
    return TokenLaw.from_pmf(list(pmf), [float(p) for p in pmf.values()])


def independent_pairs(prompt: dict[int, Fraction], decode: dict[int, Fraction]) -> list[Pair]:
    return [(s, o, ps * po) for s, ps in prompt.items() for o, po in decode.items()]


def joint_of(pairs: list[Pair]) -> JointLengths:
    s, o, p = zip(*pairs, strict=True)
    return JointLengths(np.array(s), np.array(o), np.array([float(x) for x in p]))


@st.composite
def length_models(draw) -> tuple[IndependentLengths | JointLengths, list[Pair]]:
    """A length model (independent or joint) together with its (S, O) pairs for enumeration."""
    if draw(st.booleans()):
        prompt, decode = draw(small_pmfs(0, 20)), draw(small_pmfs(1, 12))
        return IndependentLengths(law_of(prompt), law_of(decode)), independent_pairs(prompt, decode)
    pairs = draw(joint_pmfs())
    return joint_of(pairs), pairs


# ---------------------------------------------------------------------------------- brute force
def memory_time(pairs: list[Pair]) -> Fraction:
    """E[W] = E[S·O + O(O+1)/2]."""
    return sum((p * (s * o + Fraction(o * (o + 1), 2)) for s, o, p in pairs), Fraction(0))


def memory_time_of_squares(pairs: list[Pair]) -> Fraction:
    """E[Σ_{k=1}^{O} (S + k)²], summed term by term."""
    return sum((p * sum((s + k) ** 2 for k in range(1, o + 1)) for s, o, p in pairs), Fraction(0))


def age_table(pairs: list[Pair], n_ages: int):
    """G(a), μ_a, ν_a for a < n_ages by enumeration."""
    g = [sum((p for s, o, p in pairs if o > a), Fraction(0)) for a in range(n_ages)]
    mu = [sum((p * (s + a + 1) for s, o, p in pairs if o > a), Fraction(0)) for a in range(n_ages)]
    nu = [sum((p * (s + a + 1) ** 2 for s, o, p in pairs if o > a), Fraction(0)) for a in range(n_ages)]
    return g, mu, nu


def age_log_mgf(pairs: list[Pair], theta: float, n_ages: int) -> list[float]:
    """log E[e^{θ(S+a+1)}; O > a] by enumeration (−∞ where O > a is impossible)."""
    out = []
    for a in range(n_ages):
        terms = [float(p) * math.exp(theta * (s + a + 1)) for s, o, p in pairs if o > a]
        out.append(math.log(math.fsum(terms)) if terms else -math.inf)
    return out


def exceeds(pairs: list[Pair], memory: float) -> Fraction:
    """P(S + O > M)."""
    return sum((p for s, o, p in pairs if s + o > memory), Fraction(0))


def floats(xs) -> list[float]:
    return [float(x) for x in xs]


def check_against_enumeration(model, pairs: list[Pair], extra_ages: int) -> None:
    """Every per-age and whole-life quantity of a length model against brute force."""
    max_o = max(o for _, o, _ in pairs)
    max_s = max(s for s, _, _ in pairs)
    assert model.n_ages == max_o
    assert model.max_decode == max_o
    assert model.max_prompt == max_s
    assert model.bounded
    assert model.truncation_excess() == 0.0
    ew = memory_time(pairs)
    assert_allclose(model.mean_memory_time, float(ew), rtol=EXACT_RTOL)
    s_times_o = sum((p * s * o for s, o, p in pairs), Fraction(0))
    assert_allclose(model.mean_prompt_times_decode, float(s_times_o), rtol=EXACT_RTOL)

    n = max_o + extra_ages  # ages beyond the support must give G = μ = ν = 0
    g, mu, nu = model.age_moments(n)
    g_ref, mu_ref, nu_ref = age_table(pairs, n)
    assert_allclose(g, floats(g_ref), rtol=EXACT_RTOL)
    assert_allclose(mu, floats(mu_ref), rtol=EXACT_RTOL)
    assert_allclose(nu, floats(nu_ref), rtol=EXACT_RTOL)
    # The identities that make the per-age view a decomposition of the memory-time.
    assert_allclose(np.sum(mu), float(ew), rtol=EXACT_RTOL)
    assert_allclose(np.sum(nu), float(memory_time_of_squares(pairs)), rtol=EXACT_RTOL)

    for theta in THETAS:
        assert_allclose(
            model.age_log_mgf(theta, n),
            age_log_mgf(pairs, theta, n),
            rtol=EXACT_RTOL,
            atol=LOG_ATOL,
        )

    for m in range(-1, max_s + max_o + 2):
        for memory in (m, m + 0.5):
            assert_allclose(model.prob_total_exceeds(memory), float(exceeds(pairs, memory)), rtol=EXACT_RTOL)


# ---------------------------------------------------------------------------------- worked example
def test_worked_example_memory_time_is_60000():
    # Prompt 100, decode geometric on {1, 2, ...} with mean 200 (p = 1/200):
    # E[O] = 1/p = 200, E[O²] = (2 - p)/p² = 79800, and
    # E[W] = E[S]E[O] + (E[O²] + E[O])/2 = 100·200 + (79800 + 200)/2 = 60000.
    p = Fraction(1, 200)
    e_o, e_o2 = 1 / p, (2 - p) / p**2
    assert (e_o, e_o2) == (200, 79800)
    exact = 100 * e_o + (e_o2 + e_o) / 2
    assert exact == 60000
    wl = Workload.single(parse_law("100"), parse_law("geom:mean=200"))
    assert_allclose(wl.mean_memory_time, float(exact), rtol=FAMILY_RTOL)
    assert_allclose(wl.mean_memory_times, [float(exact)], rtol=FAMILY_RTOL)
    assert_allclose(wl.classes[0].lengths.mean_prompt_times_decode, 20000.0, rtol=FAMILY_RTOL)
    # With M = 50 000 tokens the largest stable arrival rate is M/E[W] = 5/6 per slot.
    memory = 50_000
    assert Fraction(memory) / exact == Fraction(5, 6)
    assert_allclose(memory / wl.mean_memory_time, 5 / 6, rtol=FAMILY_RTOL)


def test_worked_example_age_identities():
    # Σ_a μ_a = E[W]; Σ_a ν_a = E[Σ_{k≤O} (s+k)²] = s²E[O] + sE[O(O+1)] + E[O(O+1)(2O+1)]/6,
    # with the geometric E[O³] = (6 - 6p + p²)/p³.
    s, p = 100, Fraction(0.005)  # the exact rational of the double the parser computes
    e1, e2, e3 = 1 / p, (2 - p) / p**2, (6 - 6 * p + p**2) / p**3
    squares = s * s * e1 + s * (e2 + e1) + (2 * e3 + 3 * e2 + e1) / 6
    wl = Workload.single(parse_law("100"), parse_law("geom:mean=200"))
    g, mu, nu = wl.age_moments()
    assert g[0] == pytest.approx(1.0, rel=EXACT_RTOL)  # P(O > 0) = 1
    assert_allclose(g[:300], float(1 - p) ** np.arange(300), rtol=FAMILY_RTOL)  # P(O > a) = q^a
    assert_allclose(np.sum(mu), wl.mean_memory_time, rtol=FAMILY_RTOL)
    assert_allclose(np.sum(nu), float(squares), rtol=FAMILY_RTOL)


@pytest.mark.parametrize("memory", [100, 150, 300, 1000])
def test_worked_example_prob_total_exceeds(memory):
    # P(100 + O > M) = P(O > M - 100) = q^{M-100} for a geometric O on {1, 2, ...}.
    q = 1 - Fraction(0.005)
    wl = Workload.single(parse_law("100"), parse_law("geom:mean=200"))
    assert_allclose(wl.prob_total_exceeds(memory), float(q ** (memory - 100)), rtol=FAMILY_RTOL)


# ---------------------------------------------------------------------------------- independent
def test_decode_with_mass_at_zero_is_rejected_with_a_hint_to_shift():
    with pytest.raises(WorkloadError, match="shift"):
        IndependentLengths(parse_law("20"), parse_law("poisson:mean=5"))
    with pytest.raises(WorkloadError, match="shift"):
        Workload.single(parse_law("20"), TokenLaw.deterministic(0))
    shifted = IndependentLengths(parse_law("20"), parse_law("poisson:mean=5,shift=1"))
    assert shifted.decode_law.min_value == 1


def test_a_prompt_may_be_empty():
    lengths = IndependentLengths(TokenLaw.deterministic(0), TokenLaw.deterministic(3))
    assert lengths.mean_memory_time == 6.0  # 0·3 + 3·4/2


def test_lengths_must_be_token_laws():
    with pytest.raises(WorkloadError, match="TokenLaw"):
        IndependentLengths("20", parse_law("geom:mean=10"))  # type: ignore[arg-type]


@given(small_pmfs(0, 20), small_pmfs(1, 12), st.integers(0, 3))
@example({0: Fraction(1)}, {1: Fraction(1)}, 0)
@example({5: Fraction(1, 2), 0: Fraction(1, 2)}, {1: Fraction(1, 3), 12: Fraction(2, 3)}, 2)
def test_independent_lengths_against_enumeration(prompt, decode, extra_ages):
    model = IndependentLengths(law_of(prompt), law_of(decode))
    check_against_enumeration(model, independent_pairs(prompt, decode), extra_ages)
    # E[W] = E[S]E[O] + (E[O²] + E[O])/2, the closed form the class uses.
    es = sum((s * p for s, p in prompt.items()), Fraction(0))
    eo = sum((o * p for o, p in decode.items()), Fraction(0))
    eo2 = sum((o * o * p for o, p in decode.items()), Fraction(0))
    assert memory_time(independent_pairs(prompt, decode)) == es * eo + (eo2 + eo) / 2


def test_independent_age_log_mgf_is_stable_for_negative_theta():
    prompt = {0: Fraction(1, 2), 1000: Fraction(1, 2)}
    decode = {3: Fraction(1)}
    model = IndependentLengths(law_of(prompt), law_of(decode))
    expected = age_log_mgf(independent_pairs(prompt, decode), -1.0, 3)
    assert_allclose(model.age_log_mgf(-1.0, 3), expected, rtol=EXACT_RTOL, atol=LOG_ATOL)


# ---------------------------------------------------------------------------------- joint
@given(joint_pmfs(), st.integers(0, 3))
@example([(0, 1, Fraction(1))], 0)
@example([(3, 2, Fraction(1, 4)), (3, 2, Fraction(1, 4)), (0, 7, Fraction(1, 2))], 1)
def test_joint_lengths_against_enumeration(pairs, extra_ages):
    model = joint_of(pairs)
    check_against_enumeration(model, pairs, extra_ages)
    # The marginals are the laws of S and of O.
    prompt: Counter[int] = Counter()
    decode: Counter[int] = Counter()
    for s, o, p in pairs:
        prompt[s] += p
        decode[o] += p
    assert_array_equal(model.prompt_law.values, sorted(prompt))
    assert_allclose(model.prompt_law.probs, [float(prompt[s]) for s in sorted(prompt)], rtol=EXACT_RTOL)
    assert_array_equal(model.decode_law.values, sorted(decode))
    assert_allclose(model.decode_law.probs, [float(decode[o]) for o in sorted(decode)], rtol=EXACT_RTOL)


def test_joint_from_samples_merges_identical_pairs():
    model = JointLengths.from_samples([1, 1, 3, 1], [2, 2, 4, 5])
    order = np.lexsort((model.decode_values, model.prompt_values))
    assert_array_equal(model.prompt_values[order], [1, 1, 3])
    assert_array_equal(model.decode_values[order], [2, 5, 4])
    assert_allclose(model.probs[order], [0.5, 0.25, 0.25], rtol=EXACT_RTOL)


@given(
    st.lists(st.tuples(st.integers(0, 50), st.integers(1, 40)), min_size=1, max_size=60),
)
@example([(0, 1)])
@example([(7, 3), (7, 3), (7, 3)])
def test_joint_from_samples_memory_time_is_the_sample_mean(samples):
    prompts = [s for s, _ in samples]
    decodes = [o for _, o in samples]
    model = JointLengths.from_samples(prompts, decodes)
    # Identical pairs merged: one row per distinct pair.
    assert model.probs.size == len(set(samples))
    # E[W] is the sample mean of S·O + O(O+1)/2, exactly.
    mean = Fraction(sum(s * o + o * (o + 1) // 2 for s, o in samples), len(samples))
    assert_allclose(model.mean_memory_time, float(mean), rtol=EXACT_RTOL)
    # The marginals are the empirical laws of the prompts and of the decodes.
    for got, want in (
        (model.prompt_law, TokenLaw.from_samples(prompts)),
        (model.decode_law, TokenLaw.from_samples(decodes)),
    ):
        assert_array_equal(got.values, want.values)
        assert_allclose(got.probs, want.probs, rtol=EXACT_RTOL)


@pytest.mark.parametrize(
    ("prompts", "decodes", "probs", "match"),
    [
        ([1, 2], [0, 3], [0.5, 0.5], "decode length < 1"),
        ([-1, 2], [1, 3], [0.5, 0.5], "non-negative integers"),
        ([1.5, 2], [1, 3], [0.5, 0.5], "non-negative integers"),
        ([1, 2], [1.5, 3], [0.5, 0.5], "non-negative integers"),
        ([1, 2], [1, 3], [0.5, 0.6], "sum to 1"),
        ([1, 2], [1, 3], [1.5, -0.5], "≥ 0"),
        ([1, 2], [1, 3], [1.0], "equal-length"),
        ([], [], [], "non-empty"),
    ],
)
def test_joint_lengths_validation(prompts, decodes, probs, match):
    with pytest.raises(WorkloadError, match=match):
        JointLengths(np.array(prompts), np.array(decodes), np.array(probs))


@pytest.mark.parametrize(("prompts", "decodes"), [([1, 2], [1]), ([], []), ([[1]], [[1]])])
def test_joint_from_samples_validation(prompts, decodes):
    with pytest.raises(WorkloadError, match="equal-length non-empty"):
        JointLengths.from_samples(prompts, decodes)


def test_joint_age_log_mgf_is_stable_for_negative_theta():
    # Regression: the per-decode rescaling used the largest prompt, so for θ < 0
    # exp(θ(s - smax)) overflowed (RuntimeWarning, inf/nan) once θ·(s - smax) > 709.
    pairs = [(0, 3, Fraction(1, 2)), (1000, 3, Fraction(1, 2))]
    expected = age_log_mgf(pairs, -1.0, 3)  # ≈ log(1/2) - (a + 1)
    assert_allclose(joint_of(pairs).age_log_mgf(-1.0, 3), expected, rtol=EXACT_RTOL, atol=LOG_ATOL)


# ---------------------------------------------------------------------------------- workloads
def rated_workload(models, rates) -> Workload:
    return Workload(
        tuple(RequestClass(m, r, f"c{i}") for i, (m, r) in enumerate(zip(models, rates, strict=True))),
        name="mix",
        memory_tokens=4096,
        source="test",
    )


@given(
    st.lists(st.tuples(length_models(), st.floats(0.01, 100.0)), min_size=1, max_size=3),
    st.integers(0, 2),
)
def test_mixture_against_enumeration(classes, extra_ages):
    models = [m for (m, _), _ in classes]
    rates = [r for _, r in classes]
    wl = rated_workload(models, rates)
    # π_k = λ_k / Σ λ_j, computed exactly from the doubles given.
    total = sum(Fraction(r) for r in rates)
    pi = [Fraction(r) / total for r in rates]
    assert_allclose(wl.mix, floats(pi), rtol=EXACT_RTOL)
    assert_allclose(wl.rates_per_slot, rates, rtol=0)
    pairs = [(s, o, w * p) for ((_, prs), _), w in zip(classes, pi, strict=True) for s, o, p in prs]
    # E[W] of the mixture = Σ π_k E[W_k] = E[W] over the mixed pairs.
    ew = memory_time(pairs)
    assert_allclose(wl.mean_memory_time, float(ew), rtol=EXACT_RTOL)
    assert_allclose(
        wl.mean_memory_times, [float(memory_time(prs)) for (_, prs), _ in classes], rtol=EXACT_RTOL
    )
    assert_allclose(wl.mean_prompt, float(sum((p * s for s, _, p in pairs), Fraction(0))), rtol=EXACT_RTOL)
    assert_allclose(wl.mean_decode, float(sum((p * o for _, o, p in pairs), Fraction(0))), rtol=EXACT_RTOL)
    assert_allclose(
        wl.decode_second_moment,
        float(sum((p * o * o for _, o, p in pairs), Fraction(0))),
        rtol=EXACT_RTOL,
    )
    n = max(o for _, o, _ in pairs)
    assert wl.n_ages == n
    g, mu, nu = wl.age_moments()
    g_ref, mu_ref, nu_ref = age_table(pairs, n)
    assert_allclose(g, floats(g_ref), rtol=EXACT_RTOL)
    assert_allclose(mu, floats(mu_ref), rtol=EXACT_RTOL)
    assert_allclose(nu, floats(nu_ref), rtol=EXACT_RTOL)
    assert_allclose(np.sum(mu), float(ew), rtol=EXACT_RTOL)
    for theta in THETAS:
        assert_allclose(wl.age_log_mgf(theta), age_log_mgf(pairs, theta, n), rtol=EXACT_RTOL, atol=LOG_ATOL)
    for memory in range(0, 40, 3):
        assert_allclose(wl.prob_total_exceeds(memory), float(exceeds(pairs, memory)), rtol=EXACT_RTOL)
    assert wl.bounded
    assert wl.truncation_excess() == 0.0


@given(st.lists(st.floats(0.01, 100.0), min_size=1, max_size=4), st.floats(0.001, 50.0))
@example([1.0, 3.0], 8.0)
def test_with_total_rate_keeps_the_mix(rates, total):
    model = IndependentLengths(parse_law("10"), parse_law("uniform:1,5"))
    wl = rated_workload([model] * len(rates), rates)
    scaled = wl.with_total_rate(total)
    assert_allclose(scaled.rates_per_slot.sum(), total, rtol=EXACT_RTOL)
    assert_allclose(scaled.mix, wl.mix, rtol=EXACT_RTOL)
    assert_allclose(scaled.rates_per_slot, total * wl.mix, rtol=EXACT_RTOL)
    assert [c.name for c in scaled.classes] == [c.name for c in wl.classes]
    assert all(a.lengths is b.lengths for a, b in zip(scaled.classes, wl.classes, strict=True))
    assert (scaled.name, scaled.memory_tokens, scaled.source) == ("mix", 4096, "test")


def test_worked_mix_weights():
    model = IndependentLengths(parse_law("10"), parse_law("uniform:1,5"))
    wl = rated_workload([model, model], [1.0, 3.0])
    assert_allclose(wl.mix, [0.25, 0.75], rtol=EXACT_RTOL)
    assert_allclose(wl.with_total_rate(8.0).rates_per_slot, [2.0, 6.0], rtol=EXACT_RTOL)


def test_classes_without_rates_weigh_equally():
    a = RequestClass(IndependentLengths(parse_law("10"), parse_law("2")), name="a")
    b = RequestClass(IndependentLengths(parse_law("20"), parse_law("4")), name="b")
    wl = Workload((a, b))
    assert wl.rates_per_slot is None
    assert_allclose(wl.mix, [0.5, 0.5], rtol=0)
    # E[W_a] = 10·2 + 2·3/2 = 23, E[W_b] = 20·4 + 4·5/2 = 90: the mixture is (23 + 90)/2.
    assert_allclose(wl.mean_memory_times, [23.0, 90.0], rtol=EXACT_RTOL)
    assert_allclose(wl.mean_memory_time, 56.5, rtol=EXACT_RTOL)
    assert_allclose(wl.with_total_rate(3.0).rates_per_slot, [1.5, 1.5], rtol=EXACT_RTOL)


def test_single_class_workload():
    wl = Workload.single(parse_law("10"), parse_law("geom:mean=5"), 0.5, name="chat")
    assert [c.name for c in wl.classes] == ["chat"]
    assert_allclose(wl.mix, [1.0], rtol=0)
    assert_allclose(wl.rates_per_slot, [0.5], rtol=0)
    assert "chat" in wl.describe()
    assert "chat" in repr(wl)


def test_mixed_rate_and_no_rate_classes_are_rejected():
    model = IndependentLengths(parse_law("10"), parse_law("3"))
    with pytest.raises(WorkloadError, match="arrival rate"):
        Workload((RequestClass(model, 1.0, "a"), RequestClass(model, None, "b")))


def test_duplicate_class_names_are_rejected():
    model = IndependentLengths(parse_law("10"), parse_law("3"))
    with pytest.raises(WorkloadError, match="distinct"):
        Workload((RequestClass(model, 1.0, "a"), RequestClass(model, 2.0, "a")))


def test_a_workload_needs_a_class():
    with pytest.raises(WorkloadError, match="at least one"):
        Workload(())


@pytest.mark.parametrize("rate", [0.0, -1.0, math.nan, math.inf])
def test_non_positive_or_non_finite_rates_are_rejected(rate):
    model = IndependentLengths(parse_law("10"), parse_law("3"))
    with pytest.raises(WorkloadError, match="arrival rate"):
        RequestClass(model, rate, "a")
    with pytest.raises(WorkloadError, match="arrival rate"):
        Workload.single(parse_law("10"), parse_law("3")).with_total_rate(rate)


def test_request_class_needs_a_length_model():
    with pytest.raises(WorkloadError, match="lengths"):
        RequestClass(parse_law("10"), 1.0, "a")  # type: ignore[arg-type]


@pytest.mark.parametrize("memory", [0, -5, 2.5])
def test_memory_tokens_must_be_a_positive_integer(memory):
    model = IndependentLengths(parse_law("10"), parse_law("3"))
    with pytest.raises(WorkloadError, match="positive integer"):
        Workload((RequestClass(model, 1.0, "a"),), memory_tokens=memory)


@cache
def zipf_decode() -> TokenLaw:
    """Zipf(2.5) decode law (E[O²] = ∞), built once (≈ 0.7 s)."""
    return parse_law("zipf:a=2.5")


def test_infinite_memory_time_is_reported_with_a_hint_to_clip():
    heavy = RequestClass.independent(parse_law("100"), zipf_decode(), 0.1, "heavy")
    light = RequestClass.independent(parse_law("100"), parse_law("geom:mean=10"), 0.1, "light")
    wl = Workload((light, heavy))
    assert wl.mean_memory_time == math.inf
    with pytest.raises(UnstableWorkloadError, match="max=") as info:
        wl.require_finite_memory_time()
    assert "heavy" in str(info.value)
    clipped = RequestClass.independent(parse_law("100"), zipf_decode().clip(1000), 0.1, "heavy")
    fixed = Workload((light, clipped))
    fixed.require_finite_memory_time()  # must not raise
    assert math.isfinite(fixed.mean_memory_time)


def mixed_workload() -> Workload:
    indep = IndependentLengths(parse_law("uniform:0,9"), parse_law("geom:mean=4"))
    joint = JointLengths(np.array([100, 200, 200]), np.array([1, 5, 9]), np.array([0.2, 0.3, 0.5]))
    return Workload((RequestClass(indep, 1.0, "indep"), RequestClass(joint, 3.0, "joint")))


@pytest.mark.parametrize("seed", [0, 31337])
def test_workload_sample_is_reproducible(seed):
    wl = mixed_workload()
    first = wl.sample(500, rng=seed)
    second = wl.sample(500, rng=np.random.default_rng(seed))
    for a, b in zip(first, second, strict=True):
        assert_array_equal(a, b)
    other = wl.sample(500, rng=seed + 1)
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


def test_workload_sample_draws_each_class_from_its_own_laws():
    wl = mixed_workload()
    k, s, o = wl.sample(MC_DRAWS, rng=4242)
    assert k.shape == s.shape == o.shape == (MC_DRAWS,)
    # Class 0: S uniform on {0..9}, O ≥ 1; class 1: the three (S, O) pairs.
    assert set(np.unique(s[k == 0])) <= set(range(10))
    assert np.all(o[k == 0] >= 1)
    pairs = set(zip(s[k == 1].tolist(), o[k == 1].tolist(), strict=True))
    assert pairs <= {(100, 1), (200, 5), (200, 9)}
    # Class frequencies within MC_Z binomial standard errors of π = (1/4, 3/4).
    for i, pi in enumerate(wl.mix):
        freq = np.mean(k == i)
        assert abs(freq - pi) <= MC_Z * math.sqrt(pi * (1 - pi) / MC_DRAWS)
    # Memory-time of the draws within MC_Z standard errors of the exact E[W].
    w = s * o + o * (o + 1) / 2
    assert abs(w.mean() - wl.mean_memory_time) <= MC_Z * w.std(ddof=1) / math.sqrt(MC_DRAWS)


# ---------------------------------------------------------------- laws given as users hold them
def test_single_accepts_ints_specs_scipy_laws_and_samples():
    # Issue 15: Workload.single(100, scipy.stats.geom(0.005)) raised
    from scipy import stats

    from numerics.model.workload import as_law

    wl = Workload.single(100, stats.geom(0.005))
    assert wl.mean_prompt == 100
    assert wl.mean_decode == pytest.approx(200, rel=1e-9)  # geom(p) on {1, 2, ...}: mean 1/p
    assert Workload.single("20", "uniform:1,3").mean_decode == 2
    samples = np.array([3, 5, 5, 7])
    assert as_law(samples).mean == samples.mean()
    assert as_law(pd.Series(samples)).mean == samples.mean()
    assert as_law([1.0, 3.0]).mean == 2
    assert as_law(np.int64(7)).mean == 7
    for bad in (True, {"a": 1}, None, 2.5, [[1, 2]], ["a", "b"]):
        with pytest.raises(WorkloadError, match=r"expected a length law|deterministic length|integers"):
            as_law(bad, "decode")


def test_from_frame_keeps_the_joint_law_and_the_classes():
    rng = np.random.default_rng(3)
    s = rng.integers(1, 50, 400)
    o = s * 2 + rng.integers(1, 5, 400)  # decode strongly tied to prompt
    df = pd.DataFrame({"in": s, "out": o, "kind": np.where(s > 25, "long", "short")})
    joint = Workload.from_frame(df, prompt="in", decode="out")
    lengths = joint.classes[0].lengths
    # the joint law's E[S·O] is the sample mean of S·O (independent marginals would give E[S]E[O])
    assert float((lengths.prompt_values * lengths.decode_values * lengths.probs).sum()) == pytest.approx(
        float((s * o).mean()), rel=1e-12)
    indep = Workload.from_frame(df, prompt="in", decode="out", joint=False)
    assert indep.mean_decode == pytest.approx(o.mean(), rel=1e-12)
    split = Workload.from_frame(df, prompt="in", decode="out", class_column="kind")
    names = [c.name for c in split.classes]
    assert names == list(dict.fromkeys(df.kind))  # order of first appearance
    share = (df.kind == names[0]).mean()
    assert split.mix[0] == pytest.approx(share, rel=1e-12)
    assert split.mean_decode == pytest.approx(o.mean(), rel=1e-12)
    with pytest.raises(WorkloadError, match="no column 'prompt'; the table has in, out, kind"):
        Workload.from_frame(df)
    with pytest.raises(WorkloadError, match=r"decode lengths must be ≥ 1|decode length < 1"):
        Workload.from_frame({"prompt": [1, 2], "decode": [0, 3]})


def test_lambda_max_broadcasts_and_refuses_a_negative_memory():
    # Issue 15: lambda_max(wl, array) raised and lambda_max(wl, -5) returned -8.3e-5
    from numerics.analysis.conditions import lambda_max
    from numerics.errors import SettingError

    wl = Workload.single(20, "uniform:1,30")
    m = np.array([[1000, 2000], [4000, 8000]])
    got = lambda_max(wl, m)
    assert got.shape == m.shape
    assert_allclose(got, [[lambda_max(wl, int(x)) for x in row] for row in m], rtol=0)
    assert isinstance(lambda_max(wl, 1000), float)
    for bad in (-5, 0, float("nan"), float("inf"), [100, -1], True, "many"):
        with pytest.raises(SettingError, match="memory must be a positive number"):
            lambda_max(wl, bad)
