"""Admission policies: small objects with one decision, ``select(sim)``.

Each slot the engine asks the policy which waiting requests to activate. A policy returns either an
``int`` k (activate the k requests at the head of the FIFO waiting queue) or a list of request ids
(any order of the queue; used by per-class budgets and the clairvoyant MC-SF). Overflow handling is
the engine's (LIFO eviction while memory exceeds M), the same for every policy.

===========  ==================================================================  ==============
spec         policy                                                              source
===========  ==================================================================  ==============
flow         Algorithm 2: budget B_t with mean r (deterministic / randomized /   Dong & Cao
             Poisson, or any law ``budget=(uniform:0,6)``), FIFO activation
budgets      Algorithm 1: up to b_k class-k requests per slot (FIFO per class)   Dong & Cao
greedy       vLLM: FCFS while usage + S + 1 ≤ (1 − watermark)·M, ≤ max_seqs      vLLM V0/V1
reserve      admit only if Σ_active (S + L) + S_new + L ≤ M (no eviction ever)   TensorRT-LLM
alpha        α-protection: admit FCFS while usage after admission ≤ (1 − α)·M    Jaillet et al.
mcsf         clairvoyant Memory-Constrained Shortest-First (knows O)             Jaillet et al.
mc           FCFS with the same future-memory check (MC-Benchmark); both take    Jaillet et al.
             ``predict=exact|over:C|noisy:SIGMA`` (policies/clairvoyant.py)
flowfit      flow's budget B_t, FIFO, stopping at the first request that does    beyond the
             not fit under M (no drop on admission)                              paper
adaptive     flowfit with r_t set online from λ̂, M/E[W]^ and the overflow seen   beyond the paper
lookahead    FIFO while it fits and a Chernoff bound on the overflow of the      beyond the
             active set within H slots (given each progress g) stays ≤ target    paper, §14
wait         WAIT: n_k class-k requests once n_k wait (thresholds ∝ π_k M/E[W])  arXiv:2504.11320
nested-wait  Nested WAIT: FIFO entry batches of n_1 into decode segment 1        arXiv:2504.11320
===========  ==================================================================  ==============

New policies subclass :class:`Policy` and implement ``select(state)``, reading only what
:class:`~numerics.sim.state.SlotState` declares; ``requeue`` says where evicted requests go
(``"head"`` or ``"tail"`` of the waiting queue).

Every policy also takes ``max_seqs`` (vLLM's ``max_num_seqs``, a keyword of the constructor and
``max_seqs=N`` in every spec: ``flow:rate=2,max_seqs=64``, ``budgets:4,4,4,max_seqs=64``,
``alpha:0.1,max_seqs=64``, ``reserve:max=L,max_seqs=64``, ``mcsf:max_seqs=64``): a cap on the
number of active requests. The built-in policies apply it inside ``select`` — they never choose
more than ``max_seqs − n_active`` requests (FIFO: the first ones in queue order; per-class budgets:
the chosen ones in global queue order) — so that it holds in every engine; a new policy applies it
with :meth:`Policy.seq_room`. A policy that the compiled engine
(:mod:`numerics.sim.fast`) can run declares it: a class attribute ``kernel_code`` (a
:class:`~numerics.sim.state.KernelCode`) and a method ``kernel_params`` giving the kernel its
inputs. A subclass that overrides ``select`` without declaring its own ``kernel_code`` runs on the
Python engine (its ``kernel_code`` is reset to None), so the compiled twin never runs a decision
rule it does not implement. ``check_workload`` raises when a policy cannot serve a workload at all
(:class:`~numerics.sim.config.SimConfig` calls it).

Examples
--------
>>> parse_policy("greedy:watermark=0.05").spec()
'greedy:watermark=0.05'
>>> FlowControl(rate=2.0).kernel_code, MCSF().kernel_code
(<KernelCode.BUDGET: 0>, None)
"""

from numerics.sim.policies.base import (  # the private helpers too, importable as before the split
    _SPEC_NAMES as _SPEC_NAMES,
)
from numerics.sim.policies.base import (
    REQUEUE,
    BudgetKind,
    Policy,
    Requeue,
)
from numerics.sim.policies.base import _admit_fcfs as _admit_fcfs
from numerics.sim.policies.base import _draw_budget as _draw_budget
from numerics.sim.policies.base import _future_feasible as _future_feasible
from numerics.sim.policies.base import _head as _head
from numerics.sim.policies.base import _kv as _kv
from numerics.sim.policies.base import _num as _num
from numerics.sim.policies.beyond import AdaptiveFlow, FlowFit
from numerics.sim.policies.clairvoyant import MC, MCSFPredicted, Prediction
from numerics.sim.policies.lookahead import Lookahead
from numerics.sim.policies.paper import ClassBudgets, FlowControl
from numerics.sim.policies.practice import MCSF, AlphaProtection, Greedy, Reserve
from numerics.sim.policies.spec import parse_policy
from numerics.sim.policies.wait import NestedWait, Wait

__all__ = [
    "MC",
    "MCSF",
    "REQUEUE",
    "AdaptiveFlow",
    "AlphaProtection",
    "BudgetKind",
    "ClassBudgets",
    "FlowControl",
    "FlowFit",
    "Greedy",
    "Lookahead",
    "MCSFPredicted",
    "NestedWait",
    "Policy",
    "Prediction",
    "Requeue",
    "Reserve",
    "Wait",
    "parse_policy",
]
