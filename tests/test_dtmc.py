"""The exact small-system Markov chain (numerics.chains.dtmc): sanity, closed forms, and the simulator.

The chain follows the simulator's slot recursion exactly, so the simulator's long-run averages
must agree with the chain's stationary expectations up to sampling error. The simulator side uses
independent replications (seeds from ``SeedSequence``) and a Student-t interval; the chain side
is exact (its only approximation, the queue cap, is checked to be negligible first).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from numerics.chains.dtmc import DTMCError, exact_system
from numerics.chains.queues import activation_queue
from numerics.errors import UnstableWorkloadError, WorkloadError
from numerics.model.laws import TokenLaw
from numerics.model.workload import Workload
from numerics.sim import SimConfig, simulate
from numerics.sim.policies import FlowControl, Greedy, Reserve

UNIFORM3 = TokenLaw.from_pmf([1, 2, 3], [1 / 3, 1 / 3, 1 / 3])
E_O = 2.0  # mean of UNIFORM3

#: Identities that hold exactly for the stationary law are checked to this absolute tolerance:
#: the sparse solve leaves a residual ‖πP − π‖₁ ~ 1e-14; expectations of rewards ≤ ~30 inherit
#: at most ~30× that.
EXACT_TOL = 1e-9
#: The queue cap biases throughput by at most λ·loss per slot; keep it far below the simulator's
#: standard errors (~1e-3) before comparing with the uncapped simulator.
CAP_LOSS_MAX = 1e-5
#: activation_queue truncates where the mass beyond is ≤ its tol (1e-12); the chain's cap at 30
#: cuts mass ≤ loss. Their means agree to within this.
QUEUE_LAW_TOL = 1e-6
#: Simulator replications and the per-comparison false-alarm rate of the two-sided t test.
REPS = 20
SLOTS = 10_000
WARMUP = 500
ALPHA = 2e-5  # per comparison; 5 configurations × 6 metrics = 30 tests: family-wise ≤ 6e-4
T_CRIT = float(stats.t.ppf(1 - ALPHA / 2, REPS - 1))  # ≈ 5.6 standard errors
#: The simulator cases are chosen to exercise eviction: overflow in a slot is neither rare (the
#: replications would see few events) nor the rule.
OVERFLOW_RANGE = (0.005, 0.2)


def _wl(prompt: int) -> Workload:
    return Workload.single(TokenLaw.deterministic(prompt), UNIFORM3)


# (prompt, M, policy, λ, arrivals, eviction): each has overflow probability between ~1 % and ~10 %
SIM_CASES = [
    pytest.param(4, 16, FlowControl(rate=0.8), 0.5, "bernoulli", "recompute", id="flow-randomized"),
    pytest.param(2, 14, FlowControl(rate=1.0, budget="poisson"), 0.7, "bernoulli", "recompute",
                 id="flow-poisson-budget"),
    pytest.param(3, 14, Greedy(watermark=0.0), 1.0, "poisson", "recompute", id="greedy-w0"),
    pytest.param(2, 12, Greedy(max_seqs=3), 0.9, "poisson", "recompute", id="greedy-maxseqs"),
    # the cap binds: the chain's overflow probability is 0.021 with max_seqs=3, 0.055 without
    pytest.param(2, 12, FlowControl(rate=1.0, budget="poisson", max_seqs=3), 0.7, "bernoulli", "recompute",
                 id="flow-maxseqs"),
    pytest.param(3, 14, Greedy(watermark=0.0), 1.0, "poisson", "keep-progress", id="greedy-keep"),
]


def _sim_metrics(prompt, memory, policy, lam, arrivals, eviction) -> np.ndarray:
    """One row per replication: overflow, throughput, goodput, queue, latency, KV utilisation.

    Overflow is a slot whose overflow check popped a request: it evicted a previously active one
    or dropped one on admission (the simulator counts the two apart; the chain's overflow
    probability covers both)."""
    seeds = [int(c.generate_state(1)[0]) for c in np.random.SeedSequence(2026).spawn(REPS)]
    rows = []
    for seed in seeds:
        cfg = SimConfig(_wl(prompt), memory, policy, slots=SLOTS, arrival_rate=lam,
                        arrivals=arrivals, warmup=WARMUP, seed=seed, eviction=eviction)
        res = simulate(cfg)
        ts = res.timeseries[res.timeseries.slot >= WARMUP]
        sm = res.summary
        rows.append([
            float(((ts.evictions + ts.dropped_on_admission) > 0).mean()),
            sm["throughput_requests_per_slot"],
            sm["throughput_tokens_per_slot"],
            float(ts.queue.mean()),
            sm["latency_mean_slots"],
            sm["kv_util_mean"],
        ])
    return np.array(rows)


@pytest.mark.parametrize(("prompt", "memory", "policy", "lam", "arrivals", "eviction"), SIM_CASES)
def test_chain_matches_simulator(prompt, memory, policy, lam, arrivals, eviction):
    law = exact_system(_wl(prompt), memory, policy, lam, arrivals=arrivals, eviction=eviction)
    assert law.loss_probability < CAP_LOSS_MAX
    exact = np.array([
        law.overflow_probability,
        law.throughput_requests_per_slot,
        law.throughput_tokens_per_slot,
        law.mean_queue,
        law.mean_latency_slots,
        law.kv_util_mean,
    ])
    assert OVERFLOW_RANGE[0] < law.overflow_probability < OVERFLOW_RANGE[1]
    sims = _sim_metrics(prompt, memory, policy, lam, arrivals, eviction)
    mean = sims.mean(axis=0)
    se = sims.std(axis=0, ddof=1) / math.sqrt(REPS)
    names = ["overflow", "throughput", "goodput", "queue", "latency", "kv_util"]
    for name, e, m, s in zip(names, exact, mean, se, strict=True):
        assert s > 0, name
        assert abs(m - e) <= T_CRIT * s, f"{name}: chain {e:.5f}, simulator {m:.5f} ± {s:.5f}"


CHAIN_CASES = [
    (4, 16, FlowControl(rate=0.8), 0.5, "bernoulli", "recompute"),
    (3, 14, FlowControl(rate=2, budget="deterministic"), 0.9, "poisson", "recompute"),
    (2, 12, Greedy(), 1.0, "poisson", "recompute"),
    (3, 14, Greedy(watermark=0.0), 1.0, "poisson", "keep-progress"),
]


@pytest.mark.parametrize(("prompt", "memory", "policy", "lam", "arrivals", "eviction"), CHAIN_CASES)
def test_chain_balance_identities(prompt, memory, policy, lam, arrivals, eviction):
    law = exact_system(_wl(prompt), memory, policy, lam, arrivals=arrivals, eviction=eviction)
    assert np.all(law.pmf >= 0)
    assert abs(law.pmf.sum() - 1) < EXACT_TOL
    assert law.residual < EXACT_TOL
    # request balance: what is accepted completes
    assert abs(law.throughput_requests_per_slot - lam * (1 - law.loss_probability)) < EXACT_TOL
    # token balance: every completed run emits O tokens, evicted runs' tokens are wasted
    # (under keep-progress nothing is wasted and each request emits exactly O tokens in all)
    assert abs(law.throughput_tokens_per_slot - E_O * law.throughput_requests_per_slot) < EXACT_TOL
    if eviction == "keep-progress":
        assert law.wasted_tokens_per_slot == 0
    # memory after eviction never exceeds M; an overflow slot evicts or drops at least one request
    assert law.kv_max_tokens <= memory
    assert law.evictions_per_slot + law.dropped_per_slot >= law.overflow_probability - EXACT_TOL
    # Little's law is how latency is defined; check it against the components
    little = (law.mean_queue + law.mean_active) / law.throughput_requests_per_slot
    assert abs(law.mean_latency_slots - little) < EXACT_TOL
    d = law.to_dict()
    assert d["n_states"] == law.n_states
    assert d["policy"] == policy.spec()


def test_no_overflow_reduces_to_activation_queue():
    """With M ≥ the most memory the active set can need, flow control never evicts: the waiting
    queue is the bulk-service walk of numerics.chains.queues, the active count obeys Little's law
    (λ·E[O]) and the memory the memory analogue (λ·E[W]) — three independent closed forms."""
    lam, prompt = 0.6, 2
    wl = _wl(prompt)
    law = exact_system(wl, 40, FlowControl(rate=1, budget="deterministic"), lam, arrivals="poisson",
                       queue_cap=30)
    assert law.overflow_probability == 0
    ref = activation_queue(lam, "deterministic", 1)
    assert abs(law.mean_queue - ref.mean) < QUEUE_LAW_TOL
    assert abs(law.mean_active - lam * E_O) < QUEUE_LAW_TOL
    assert abs(law.kv_util_mean * 40 - lam * wl.mean_memory_time) < QUEUE_LAW_TOL


def test_cap_mass_is_reported_and_shrinks():
    wl = _wl(2)
    small = exact_system(wl, 12, Greedy(), 1.1, arrivals="poisson", queue_cap=8)
    large = exact_system(wl, 12, Greedy(), 1.1, arrivals="poisson", queue_cap=30)
    assert small.loss_probability > large.loss_probability
    assert small.cap_probability > 0
    assert abs(small.throughput_requests_per_slot - 1.1 * (1 - small.loss_probability)) < EXACT_TOL


def test_same_input_same_chain():
    a = exact_system(_wl(4), 16, FlowControl(rate=0.8), 0.5)
    b = exact_system(_wl(4), 16, FlowControl(rate=0.8), 0.5)
    assert a.states == b.states
    assert np.array_equal(a.pmf, b.pmf)


@pytest.mark.parametrize(
    ("kwargs", "error", "needle"),
    [
        ({"policy": Reserve(max_tokens=3)}, DTMCError, "FlowControl and Greedy"),
        ({"policy": FlowControl(requeue="tail", rate=1.0)}, DTMCError, "requeue"),
        ({"memory": 4}, UnstableWorkloadError, "never finish"),
        ({"lam": 1.0}, WorkloadError, "Bernoulli"),
        ({"lam": -1.0}, WorkloadError, "arrival rate"),
        ({"arrivals": "deterministic"}, DTMCError, "arrivals"),
        ({"queue_cap": 0}, DTMCError, "queue_cap"),
        ({"max_states": 5}, DTMCError, "reachable states"),
        ({"workload": Workload.single(TokenLaw.from_pmf([1, 2], [0.5, 0.5]), UNIFORM3)},
         DTMCError, "fixed prompt"),
    ],
)
def test_bad_input_raises(kwargs, error, needle):
    args = {"workload": _wl(4), "memory": 16, "policy": FlowControl(rate=0.8), "lam": 0.5,
            "arrivals": "bernoulli", "queue_cap": 20, "max_states": 300_000}
    args.update(kwargs)
    with pytest.raises(error, match=needle):
        exact_system(args["workload"], args["memory"], args["policy"], args["lam"],
                     arrivals=args["arrivals"], queue_cap=args["queue_cap"],
                     max_states=args["max_states"])


def test_power_iteration_agrees_with_direct_solve():
    """The two stationary solvers are independent methods; the power solver's stop rule targets
    an L1 error of 1e-13, the LU solve is exact to rounding."""
    args = (_wl(2), 12, Greedy(), 1.0)
    direct = exact_system(*args, arrivals="poisson", solver="direct")
    power = exact_system(*args, arrivals="poisson", solver="power")
    assert np.abs(direct.pmf - power.pmf).sum() < EXACT_TOL
