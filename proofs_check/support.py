r"""Tools the checks share: a hypothesis runner, exact and sampled saturated memory, z-tests.

* :func:`run_property` wraps a test body in ``@given`` with derandomised settings (no example
  database) and reports how many examples ran; a :class:`~proofs_check.ledger.ClaimViolated` in the
  body is the counterexample.
* :func:`saturated_memory_pmf` — the exact law of the saturated flow-control memory for S ≡ s by
  direct convolution over ages: per age a the alive count is Binomial(B, G(a)) (B deterministic
  or randomised {⌊r⌋,⌈r⌉}) or Poisson(r·G(a)) (thinning), times the term s + a + 1:

  .. math:: U = \sum_{a \ge 0} (s + a + 1)\,N_a .

* :func:`sample_saturated_memory` draws U from the same representation (independent of the
  formulas it is compared with).
"""

from __future__ import annotations

import math

import numpy as np

from proofs_check.ledger import ClaimViolated

__all__ = [
    "run_property",
    "sample_saturated_memory",
    "saturated_memory_pmf",
    "stop_loss",
    "survival_by_age",
]


def run_property(body, strategies: dict, examples: int, shrink: bool = True) -> int:
    """Run ``body(**drawn)`` on ``examples`` derandomised hypothesis examples; return the count.

    Raises :class:`ClaimViolated` (from the body, with hypothesis' falsifying example in the
    message) when a counterexample is found; ``shrink=False`` reports the first one found
    unshrunk (faster when each example is expensive).
    """
    from hypothesis import HealthCheck, Phase, given, settings

    calls = [0]

    def counted(**kw):
        calls[0] += 1
        body(**kw)

    test = settings(
        max_examples=examples, derandomize=True, database=None, deadline=None,
        suppress_health_check=list(HealthCheck), print_blob=False,
        phases=tuple(ph for ph in Phase if shrink or ph not in (Phase.shrink, Phase.explain)),
    )(given(**strategies)(counted))
    try:
        test()
    except ClaimViolated as exc:
        notes = " ".join(getattr(exc, "__notes__", []))
        raise ClaimViolated(f"{exc} {notes}".strip()) from None
    return calls[0]


def survival_by_age(decode: dict[int, float]) -> np.ndarray:
    """G(a) = P(O > a), a = 0 .. max O − 1, of a finite decode law {o: prob}."""
    o_max = max(decode)
    g = np.zeros(o_max)
    for o, p in decode.items():
        g[:o] += p
    return g


def _binomial_pmf(n: int, p: float) -> np.ndarray:
    from scipy import stats

    return stats.binom(n, p).pmf(np.arange(n + 1))


def _count_pmf(kind: str, rate: float, g: float) -> np.ndarray:
    """Law of the alive count N_a of one cohort: B thinned by G(a)."""
    from scipy import stats

    if kind == "poisson":
        mean = rate * g
        hi = int(mean + 15 * math.sqrt(mean) + 30)
        return stats.poisson(mean).pmf(np.arange(hi + 1))
    k = math.floor(rate)
    f = rate - k
    pmf = (1 - f) * np.pad(_binomial_pmf(k, g), (0, 1))
    if f > 0:
        pmf = pmf + f * _binomial_pmf(k + 1, g)
    return pmf


def saturated_memory_pmf(prompt: int, decode: dict[int, float], rate: float, kind: str) -> np.ndarray:
    """Exact P(U = u), u = 0, 1, ..., of the saturated memory (S ≡ prompt), by convolution."""
    g = survival_by_age(decode)
    pmf = np.ones(1)
    for a, ga in enumerate(g):
        counts = _count_pmf(kind, rate, float(ga))
        term = np.zeros((counts.size - 1) * (prompt + a + 1) + 1)
        term[:: prompt + a + 1] = counts
        pmf = np.convolve(pmf, term)
    return pmf


def stop_loss(pmf: np.ndarray) -> np.ndarray:
    """E[(U − m)^+] for m = 0, 1, ..., len(pmf) − 1 (Σ_{u > m} P(U > u'))."""
    tail = 1.0 - np.cumsum(pmf)  # P(U > m)
    tail = np.clip(tail, 0.0, None)
    # E(U − m)^+ = Σ_{j ≥ m} P(U > j)
    return np.cumsum(tail[::-1])[::-1]


def sample_saturated_memory(prompt: int, g: np.ndarray, rate: float, kind: str, n: int,
                            rng: np.random.Generator) -> np.ndarray:
    """n independent draws of the saturated U for S ≡ prompt and survival G(a) by age."""
    u = np.zeros(n)
    k = math.floor(rate)
    for a, ga in enumerate(g):
        if kind == "poisson":
            alive = rng.poisson(rate * ga, n)
        else:
            b = k + (rng.random(n) < rate - k)
            alive = rng.binomial(b, ga)
        u += (prompt + a + 1) * alive
    return u
