r"""The checks of every registered result, one module per :mod:`theory` module.

Importing this package imports every module below, and each registers its checks in
:data:`~proofs_check.ledger.CHECKS` (the ledger's :func:`~proofs_check.ledger.load_checks` does
this). A module holds the checks of the results its namesake in :mod:`theory` registers:

* :mod:`~proofs_check.checks.bounds` — the tail bounds on overflow and the Gaussian approximation;
* :mod:`~proofs_check.checks.capacity` — the compute-coupled capacity;
* :mod:`~proofs_check.checks.closed_forms` — the memory-time W and its mean;
* :mod:`~proofs_check.checks.conditions` — the necessary condition, hard cap, heavy tails and
  Algorithm 1;
* :mod:`~proofs_check.checks.flow` — mean and variance of the saturated flow-control memory;
* :mod:`~proofs_check.checks.fluid` — greedy admission's throughput loss;
* :mod:`~proofs_check.checks.neighbours` — convex order, overflow decay, heavy tails, other papers;
* :mod:`~proofs_check.checks.policies` — flowfit and lookahead: no drop on admission, flowfit =
  flow when memory never binds, lookahead's overflow bound;
* :mod:`~proofs_check.checks.queues` — the activation queue and the Kingman bound;
* :mod:`~proofs_check.checks.wait` — WAIT (arXiv:2504.11320): no eviction with deterministic
  lengths, the stability threshold;
* :mod:`~proofs_check.checks.waste` — the waste certificate of LIFO recompute eviction.

Each check function takes the mode's parameters and, as keyword arguments with the registered
result as default, the formula it tests (dependency injection: a broken copy can be passed
instead). It returns its evidence or raises :class:`~proofs_check.ledger.ClaimViolated` /
:class:`~proofs_check.ledger.Inconclusive`. Statistical tests use the explicit seed and the named
false-alarm rates of :mod:`proofs_check.support`; reference values carry their provenance. Every
module imports that toolkit as ``kit`` (``kit.require``, ``kit.SEED``, ``kit.run_simulation``, ...),
so that each tool is named where it is used and the list of tools is kept in one place.

Examples
--------
>>> from proofs_check.ledger import CHECKS
>>> from theory.registry import REGISTRY
>>> sorted(CHECKS) == sorted(REGISTRY)
True
"""

from proofs_check.checks import (
    bounds,
    capacity,
    closed_forms,
    conditions,
    flow,
    fluid,
    neighbours,
    policies,
    queues,
    wait,
    waste,
)

__all__ = ["bounds", "capacity", "closed_forms", "conditions", "flow", "fluid", "neighbours", "policies",
           "queues", "wait", "waste"]
