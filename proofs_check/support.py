r"""Tools the checks share: constants, workloads, the simulator, z-tests, exact saturated memory.

* :data:`SEED`, :data:`Z`, :data:`FA_TEXT`, :data:`EXACT_RTOL` — the seed of every empirical check
  and the false-alarm rate and tolerances the evidence states.
* :func:`require` raises :class:`~proofs_check.ledger.ClaimViolated` with its message when a
  condition fails; :func:`require_z` is the two-sided z-test |x̂ − x| ≤ Z·s.e.;
  :func:`batch_means` the mean and standard error of a correlated series from batch means.
* :func:`numeric_twin` — the injected formula, or by default the registered result's numeric twin
  in :mod:`numerics` (same name).
* :func:`rational`, :func:`single_workload`, :func:`class_workload`, :func:`run_simulation` —
  exact Rationals, workloads from law specs, and one simulator run.
* :func:`run_property` wraps a test body in ``@given`` with derandomised settings (no example
  database) and reports how many examples ran; a :class:`~proofs_check.ledger.ClaimViolated` in the
  body is the counterexample.
* :func:`saturated_memory_pmf` — the exact law of the saturated flow-control memory for S ≡ s by
  direct convolution over ages: per age a the alive count is Binomial(B, G(a)) (B deterministic
  or randomised {⌊r⌋,⌈r⌉}) or Poisson(r·G(a)) (thinning), times the term s + a + 1:

  .. math:: U = \sum_{a \ge 0} (s + a + 1)\,N_a .

* :func:`sample_saturated_memory` draws U from the same representation (independent of the
  formulas it is compared with).

Examples
--------
>>> rational(0.25)
1/4
>>> require_z(10.5, 10.0, 0.25, "mean 10.5 vs 10")
2.0
>>> require_z(11.5, 10.0, 0.25, "mean 11.5 vs 10")
Traceback (most recent call last):
...
proofs_check.ledger.ClaimViolated: mean 11.5 vs 10 (+6.0 s.e.)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction

import numpy as np
import sympy as sp

from proofs_check.ledger import ClaimViolated

__all__ = [
    "EXACT_RTOL",
    "FA_TEXT",
    "SEED",
    "Z",
    "batch_means",
    "class_workload",
    "numeric_twin",
    "rational",
    "require",
    "require_z",
    "run_property",
    "run_simulation",
    "sample_saturated_memory",
    "saturated_memory_pmf",
    "single_workload",
    "stop_loss",
    "survival_by_age",
]

Z = 4.0  # 4 standard errors: two-sided false alarm ~6.3e-5 per test (one-sided ~3.2e-5)
FA_TEXT = "z-test at 4 s.e. (two-sided false alarm 6.3e-5)"
EXACT_RTOL = 1e-6  # exact tails by FFT converge to 1e-8 relative; margin for a bound ≥ exact
SEED = 20260411  # the seed of every empirical check (arXiv id of Dong & Cao, 2604.11001)


def require(cond: bool, message: str) -> None:
    """Raise :class:`ClaimViolated` with ``message`` unless ``cond`` holds."""
    if not cond:
        raise ClaimViolated(message)


def require_z(estimate: float, expected: float, se: float, what: str) -> float:
    """The z-test z = (estimate − expected)/se, |z| ≤ :data:`Z`; returns z.

    Raises :class:`ClaimViolated` with ``what`` and ``(z s.e.)`` when |z| > Z (two-sided false
    alarm 6.3e-5, :data:`FA_TEXT`).
    """
    z = (estimate - expected) / se
    require(abs(z) <= Z, f"{what} ({z:+.1f} s.e.)")
    return z


def batch_means(x: np.ndarray, batches: int) -> tuple[float, float]:
    """Mean and its standard error from ``batches`` batch means."""
    n = x.size // batches * batches
    means = x[:n].reshape(batches, -1).mean(axis=1)
    return float(means.mean()), float(means.std(ddof=1) / math.sqrt(batches))


def numeric_twin(injected: Callable | None, name: str) -> Callable:
    """``injected`` when a formula is injected, else the numeric twin ``numerics.<name>``."""
    import numerics

    return injected or getattr(numerics, name)


def rational(x) -> sp.Rational:
    """``x`` (int, Fraction, float or decimal string) as an exact sympy Rational."""
    return sp.Rational(Fraction(x).numerator, Fraction(x).denominator)


def single_workload(prompt: int, decode_spec: str, rate=None):
    """One class: S ≡ ``prompt`` and the decode law of ``decode_spec`` (``numerics`` law spec)."""
    from numerics.model.specs import parse_law
    from numerics.model.workload import Workload

    return Workload.single(parse_law(str(prompt)), parse_law(decode_spec), rate)


def class_workload(prompts, decodes, rates):
    """Classes ``c0, c1, ...`` with S ≡ prompts[k], O ≡ decodes[k] (law specs) and rates[k]."""
    from numerics.model.specs import parse_law
    from numerics.model.workload import RequestClass, Workload

    return Workload(tuple(
        RequestClass.independent(parse_law(str(s)), parse_law(str(o)), float(lam), f"c{k}")
        for k, (s, o, lam) in enumerate(zip(prompts, decodes, rates, strict=True))
    ))


def run_simulation(workload, memory, policy: str, slots: int, seed: int, arrival_rate=None,
                   warmup: int = 0, engine: str = "auto"):
    """One simulator run of ``workload`` on ``memory`` KV tokens under the policy spec ``policy``."""
    from numerics.sim import SimConfig, parse_policy, simulate

    cfg = SimConfig(workload, int(memory), parse_policy(policy), slots=slots, warmup=warmup,
                    seed=seed, arrival_rate=arrival_rate)
    return simulate(cfg, engine=engine)


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
