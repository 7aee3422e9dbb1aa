"""The activation-queue Markov chain against its reference value, a bound, and a simulation."""

from __future__ import annotations

import numpy as np
import pytest

from numerics.chains.queues import activation_queue
from numerics.errors import UnstableWorkloadError, WorkloadError

REF_ABS = 5e-5  # the reference 0.8009 is quoted to 4 decimals (docs/theory.md §8.3)
BATCH_Z = 4.9  # 20 batch means, Student t with 19 df: two-sided false alarm ~1e-4


def test_reference_bulk_service_queue():
    # docs/theory.md §8.3: Poisson(3) arrivals, deterministic budget 4 ⇒ E[Q] = 0.8009 (power
    # iteration there; matches the Concourse.jl reproduction); Kingman bound Var A/(2(r−λ)) = 1.5.
    law = activation_queue(3.0, "deterministic", 4)
    assert abs(law.mean - 0.8009) <= REF_ABS
    assert law.kingman_bound == 1.5
    assert law.mean <= law.kingman_bound
    assert law.truncation_bound <= 1e-12
    assert law.waiting_time_slots == pytest.approx(law.mean / 3.0, rel=1e-15)
    np.testing.assert_allclose(law.pmf.sum(), 1.0, rtol=1e-12)


def _lindley(lam, budget, rate, slots, seed):
    rng = np.random.default_rng(seed)
    a = rng.poisson(lam, slots)
    if budget == "poisson":
        b = rng.poisson(rate, slots)
    else:
        k = int(np.floor(rate))
        b = k + (rng.random(slots) < rate - k)
    q = np.empty(slots)
    cur = 0
    for t in range(slots):
        cur = max(cur + a[t] - b[t], 0)
        q[t] = cur
    return q


@pytest.mark.parametrize(("lam", "budget", "rate"),
                         [(3.0, "randomized", 3.5), (3.0, "poisson", 4.0), (1.0, "randomized", 1.3)])
def test_stationary_mean_matches_simulation(lam, budget, rate):
    law = activation_queue(lam, budget, rate)
    q = _lindley(lam, budget, rate, 400_000, seed=11)[20_000:]
    batches = q.reshape(20, -1).mean(axis=1)
    se = batches.std(ddof=1) / np.sqrt(batches.size)
    assert abs(batches.mean() - law.mean) <= BATCH_Z * se


def test_variance_ordering_shows_in_the_queue():
    # at equal mean budget, more budget variance ⇒ a longer queue
    det = activation_queue(3.0, "deterministic", 4).mean
    rnd = activation_queue(3.0, "randomized", 4.0).mean
    poi = activation_queue(3.0, "poisson", 4.0).mean
    assert det == pytest.approx(rnd, rel=1e-9)  # integer mean: the randomised law is deterministic
    assert det < poi


def test_bad_inputs():
    with pytest.raises(UnstableWorkloadError, match="grows without bound"):
        activation_queue(4.0, "deterministic", 4)
    with pytest.raises(WorkloadError, match="arrival rate"):
        activation_queue(0.0, "deterministic", 4)
    with pytest.raises(WorkloadError, match="tol"):
        activation_queue(1.0, "deterministic", 4, tol=2.0)


def test_large_budget_and_light_arrivals_do_not_overflow_the_lundberg_root():
    # found by the ledger's thorough Kingman search: e^{θ(A−B)} overflowed for B = 12, λ = 0.12
    law = activation_queue(0.12, "deterministic", 12)
    # P(Q > 0) needs more than 12 Poisson(0.12) arrivals in one slot: ~1e-20, so E[Q] ≈ 0
    assert 0.0 <= law.mean < 1e-15
