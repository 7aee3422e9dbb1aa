r"""The activation budget of flow control (Algorithm 2): how many requests may join per slot.

Each slot flow control activates :math:`B_t` requests, i.i.d. from a *budget law* with mean r:

* ``deterministic``: :math:`B \equiv r` (r an integer), :math:`\sigma_B^2 = 0`;
* ``randomized``: :math:`B \in \{\lfloor r\rfloor, \lceil r\rceil\}` with mean r,
  :math:`\sigma_B^2 = f(1-f)`, f = r − ⌊r⌋;
* ``poisson``: :math:`B \sim \mathrm{Poisson}(r)`, :math:`\sigma_B^2 = r`;
* ``(LAW)``: any length law on {0, 1, 2, ...} in the spec language of
  :mod:`numerics.model.specs`, in parentheses — ``(uniform:0,6)``, ``(poisson:mean=3)``,
  ``(scipy:binom(n=6,p=0.5))``; its mean *is* the rate r (kind ``"law"``).

The law is part of the model (the simulator's ``flow`` policy draws from it) and of the analysis
(its generating function enters the saturated memory law, :mod:`numerics.analysis.flow`).

A law with unbounded support is stored out to the point where the mass beyond it is below
:data:`~numerics.model.laws.TAIL_EPS` (1e-300); a budget law with more mass than that beyond its
stored support (a heavy tail cut at :data:`~numerics.model.laws.MAX_SUPPORT`) is refused — clip it
with ``max=L``. The analysis puts the unstored mass (≤ 1e-300) at B = 0: with A ages in the model
this changes the law of the saturated memory by at most A·1e-300 in total variation, below double
precision, and for φ ≤ 1 (the lower tail, P(U = 0)) it can only raise E[φ^B] (conservative).

Examples
--------
>>> BudgetLaw("randomized", 2.25).variance
0.1875
>>> law = as_budget("(uniform:0,6)")
>>> law.kind, law.rate_per_slot, law.variance, law.max_count, law.spec
('law', 3.0, 4.0, 6, '(uniform:0,6)')
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

import numpy as np

from numerics.errors import SpecError, WorkloadError
from numerics.model.laws import TAIL_EPS

if TYPE_CHECKING:
    from numerics.model.laws import TokenLaw

__all__ = ["BUDGET_LAWS", "BudgetKind", "BudgetLaw", "TiltedBudget", "as_budget", "is_law_spec"]

#: The named budget laws (the ``kind`` of a :class:`BudgetLaw`, the ``budget`` option everywhere);
#: a budget *law* ``(LAW)`` has kind ``"law"``.
BudgetKind = Literal["deterministic", "randomized", "poisson"]
BUDGET_LAWS: tuple[BudgetKind, ...] = get_args(BudgetKind)
#: Relative agreement required between a given rate and a budget law's mean.
RATE_RTOL = 1e-9
#: Ages × support points handled at once by the generating functions (32 MiB of float64).
_CHUNK_ELEMENTS = 1 << 22


def is_law_spec(budget: object) -> bool:
    """True for a budget given as a length-law spec in parentheses, ``"(uniform:0,6)"``."""
    return isinstance(budget, str) and budget.strip().startswith("(")


@dataclass(frozen=True, eq=False)
class BudgetLaw:
    """The activation budget B per slot: ``kind`` with mean ``rate_per_slot``.

    For ``kind="law"`` the budget is ``law`` (a :class:`~numerics.model.laws.TokenLaw` on the
    non-negative integers) and ``rate_per_slot`` must be its mean; build it with
    :func:`as_budget` (``as_budget("(uniform:0,6)")``).
    """

    kind: BudgetKind | Literal["law"]
    rate_per_slot: float
    law: TokenLaw | None = None

    def __post_init__(self) -> None:
        if self.kind != "law" and self.kind not in BUDGET_LAWS:
            raise WorkloadError(
                f"budget law must be one of {', '.join(BUDGET_LAWS)} or a length law in "
                f"parentheses such as (uniform:0,6), got {self.kind!r}"
            )
        r = self.rate_per_slot
        if not math.isfinite(r) or r < 0:
            raise WorkloadError(f"activation rate must be finite and ≥ 0, got {r!r}")
        if self.kind == "law":
            self._check_law()
        elif self.law is not None:
            raise WorkloadError(f"a {self.kind} budget takes no law; use kind='law' for one")
        if self.kind == "deterministic" and r != int(r):
            raise WorkloadError(
                f"a deterministic budget must be an integer, got {r}; use the randomized law "
                "for a fractional mean rate"
            )

    def _key(self) -> tuple:
        law = self.law
        pmf = () if law is None else (tuple(law.values.tolist()), tuple(law.probs.tolist()), law.tail_mass)
        return (self.kind, self.rate_per_slot, pmf)

    def __eq__(self, other: object) -> bool:
        """Equal kinds and rates (and, for a law, the same PMF)."""
        return isinstance(other, BudgetLaw) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def _check_law(self) -> None:
        law = self.law
        if law is None or not hasattr(law, "probs"):
            raise WorkloadError("a budget of kind 'law' needs its law: use as_budget('(LAW)')")
        name = law.label
        if law.tail_mass > TAIL_EPS:
            raise WorkloadError(
                f"budget law ({name}) has mass {law.tail_mass:.3g} beyond the {int(law.values[-1])} "
                f"budgets that can be stored; clip it with max=L, e.g. ({name},max=1000)"
            )
        mean = law.mean
        if not math.isfinite(mean):
            raise WorkloadError(f"budget law ({name}) has an infinite mean; clip it with max=L")
        if not math.isclose(self.rate_per_slot, mean, rel_tol=RATE_RTOL, abs_tol=1e-300):
            raise WorkloadError(
                f"budget law ({name}) has mean {mean:.12g}, so its rate is {mean:.12g}, not "
                f"{self.rate_per_slot:.12g}; leave the rate out or give the law's mean"
            )

    # ------------------------------------------------------------------ description
    @property
    def spec(self) -> str:
        """The ``budget`` option that gives this law: the kind, or ``(LAW)``."""
        return f"({self.law.label})" if self.kind == "law" else self.kind

    @property
    def variance(self) -> float:
        """σ_B²."""
        r = self.rate_per_slot
        if self.kind == "law":
            return float(self.law.var)
        if self.kind == "deterministic":
            return 0.0
        if self.kind == "randomized":
            f = r - math.floor(r)
            return f * (1 - f)
        return r

    @property
    def max_count(self) -> float:
        """The largest budget a slot can draw (∞ for an unbounded law: Poisson)."""
        if self.kind == "law":
            return self.law.max_value
        if self.kind == "poisson":
            return math.inf
        return math.ceil(self.rate_per_slot)

    @property
    def min_count(self) -> int:
        """The smallest budget a slot can draw."""
        if self.kind == "law":
            return self.law.min_value
        if self.kind == "poisson":
            return 0
        return math.floor(self.rate_per_slot)

    @property
    def increment_count(self) -> float:
        r"""c_B = max(1, max B − min B): Hoeffding's and Bernstein's per-age budget factor.

        A cohort's B requests split into min B fixed requests (independent terms, one request
        each) and one term holding the other B − min B ≤ max B − min B (``inf`` if unbounded).
        """
        return max(1.0, self.max_count - self.min_count)

    @property
    def hoeffding_count(self) -> float:
        r"""Σ of squared ranges per age in units of the one-request range²: min B + (max B − min B)²
        (= ⌈r⌉ for the randomized and deterministic laws; ``inf`` if unbounded)."""
        if self.kind != "law":
            return self.max_count
        spread = self.max_count - self.min_count
        return self.min_count + spread * spread

    # ------------------------------------------------------------------ generating functions
    def _dense(self) -> tuple[int, np.ndarray]:
        """(k_min, p) with p[j] = P(B = k_min + j) on k_min..k_max, the unstored tail at B = 0."""
        cached = self.__dict__.get("_dense_pmf")
        if cached is not None:
            return cached
        law = self.law
        k0 = int(law.values[0])
        p = np.zeros(int(law.values[-1]) - k0 + 1)
        p[law.values - k0] = law.probs
        if law.tail_mass > 0:  # ≤ TAIL_EPS (checked): put it at 0 (see the module docstring)
            if k0 > 0:
                p = np.concatenate([np.zeros(k0), p])
                k0 = 0
            p[0] += law.tail_mass
        p.setflags(write=False)
        object.__setattr__(self, "_dense_pmf", (k0, p))
        return k0, p

    def log_pgf_of_log(self, log_phi: np.ndarray) -> np.ndarray:
        """log E[φ^B] given log φ (elementwise), computed without overflow."""
        r = self.rate_per_slot
        if self.kind == "law":
            return self._law_log_pgf(np.asarray(log_phi, dtype=float))
        if self.kind == "deterministic":
            return r * log_phi
        if self.kind == "randomized":
            k = math.floor(r)
            f = r - k
            if f == 0:
                return k * log_phi
            # log(1 - f + f φ) = logaddexp(log(1-f), log f + log φ)
            return k * log_phi + np.logaddexp(math.log1p(-f), math.log(f) + log_phi)
        # Poisson: r (φ - 1) = r · expm1(log φ)
        with np.errstate(over="ignore"):
            return r * np.expm1(np.minimum(log_phi, 700.0))

    def _law_log_pgf(self, log_phi: np.ndarray) -> np.ndarray:
        """log Σ_k p_k φ^k: log1p(Σ_k p_k expm1(k log φ)) where k_max·|log φ| ≤ 1 (no
        cancellation near φ = 1), else a log-sum-exp over the support."""
        k0, p = self._dense()
        ks = np.arange(k0, k0 + p.size, dtype=float)
        keep = p > 0
        ks, p = ks[keep], p[keep]
        with np.errstate(divide="ignore"):
            logp = np.log(p)
        flat = log_phi.reshape(-1)
        out = np.empty(flat.shape)
        step = max(1, _CHUNK_ELEMENTS // ks.size)
        for lo in range(0, flat.size, step):
            lf = flat[lo : lo + step]
            with np.errstate(invalid="ignore", over="ignore"):
                kl = np.where(ks[None, :] == 0, 0.0, ks[None, :] * lf[:, None])  # 0·(−∞) = 0
                near = np.abs(lf) * ks[-1] <= 1.0
                res = np.logaddexp.reduce(logp[None, :] + kl, axis=1)
                if np.any(near):
                    s = (p[None, :] * np.expm1(kl[near])).sum(axis=1)
                    res[near] = np.log1p(s)
            out[lo : lo + step] = res
        return out.reshape(log_phi.shape) if log_phi.ndim else out[0]

    def pgf(self, phi: np.ndarray) -> np.ndarray:
        """E[φ^B] at (complex) φ, elementwise, by Horner's rule over the support."""
        phi = np.asarray(phi)
        if self.kind == "law":
            k0, p = self._dense()
            acc = np.zeros(phi.shape, dtype=np.result_type(phi, float))
            for pk in p[::-1]:
                acc = acc * phi + pk
            return acc * phi**k0 if k0 else acc
        r = self.rate_per_slot
        if self.kind == "deterministic":
            return phi ** int(r)
        if self.kind == "randomized":
            k = math.floor(r)
            return phi**k * (1 - (r - k) + (r - k) * phi)
        return np.exp(r * (phi - 1))

    def tilted(self, log_phi: np.ndarray) -> TiltedBudget:
        """The budget tilted at each φ_a > 0 (``log_phi``, one per age): for :meth:`TiltedBudget.ratio`."""
        return TiltedBudget(self, np.asarray(log_phi, dtype=float))

    # ------------------------------------------------------------------ sampling
    def sample(self, size: int | tuple[int, ...],
               rng: np.random.Generator | int | None = None) -> np.ndarray:
        """``size`` i.i.d. budgets B (an int array); ``rng`` a Generator or a seed.

        A law draws one uniform per budget (:meth:`~numerics.model.laws.TokenLaw.sample`), so
        ``size`` draws consume the generator as ``size`` draws of one.
        """
        rng = np.random.default_rng(rng)
        r = self.rate_per_slot
        if self.kind == "law":
            return np.asarray(self.law.sample(size, rng), dtype=np.int64)
        if self.kind == "deterministic":
            return np.full(size, int(r))
        if self.kind == "randomized":
            k = math.floor(r)
            return k + (rng.random(size) < r - k).astype(np.int64)
        return rng.poisson(r, size)


class TiltedBudget:
    r"""The budget law tilted at φ_a, one per age: P_a(B = k) = p_k φ_a^k / E[φ_a^B].

    :meth:`ratio` gives E[(φ_a ρ)^B] / E[φ_a^B] = E_a[ρ^B] at complex ρ with |ρ| ≤ 1: the per-age
    factor of the transform of the saturated memory relative to its value at ω = 0, bounded by 1
    in modulus (so products down the ages never overflow). ``mean`` is E_a[B] per age.
    """

    def __init__(self, budget: BudgetLaw, log_phi: np.ndarray) -> None:
        if budget.kind == "law":
            k0, p = budget._dense()
        else:  # the named laws through their PMF on 0..max (Poisson: not supported here)
            if budget.kind == "poisson":
                raise WorkloadError("TiltedBudget: the Poisson kind has its own closed form")
            r = budget.rate_per_slot
            k0 = math.floor(r)
            p = np.array([1.0 - (r - k0), r - k0])
        ks = np.arange(k0, k0 + p.size, dtype=float)
        with np.errstate(divide="ignore"):
            lw = np.log(p)[None, :] + ks[None, :] * log_phi[:, None]
        lw -= lw.max(axis=1, keepdims=True)
        w = np.exp(lw)
        w /= w.sum(axis=1, keepdims=True)
        self.k0 = k0
        self.weights = w  # ages × (k_max − k_min + 1)
        self.mean = w @ ks

    def ratio(self, rho: np.ndarray, ages: np.ndarray | slice | None = None) -> np.ndarray:
        """E_a[ρ^B] for ρ of shape (ages, frequencies) (the rows ``ages`` of the tilted laws)."""
        w = self.weights if ages is None else self.weights[ages]
        acc = np.zeros(rho.shape, dtype=complex)
        for j in range(w.shape[1] - 1, -1, -1):
            acc *= rho
            acc += w[:, j, None]
        if self.k0:
            acc *= rho**self.k0
        return acc


def as_budget(budget: str | BudgetLaw, rate: float | None = None) -> BudgetLaw:
    """The :class:`BudgetLaw` of a ``budget`` option: a kind (with its ``rate``) or ``(LAW)``.

    ``(LAW)`` is a length-law spec of :func:`numerics.model.specs.parse_law` in parentheses; its
    mean is the rate, so ``rate`` must be None or that mean (to 1e-9 relative).

    Raises
    ------
    SpecError
        A malformed law spec, a rate that is not the law's mean, an unknown kind.

    >>> as_budget("randomized", 2.5).variance
    0.25
    >>> as_budget("(poisson:mean=3)").rate_per_slot
    3.0
    """
    if isinstance(budget, BudgetLaw):
        if budget.kind == "law" and rate is not None:
            _match_rate(budget, rate)
        return budget
    if not isinstance(budget, str):
        raise SpecError(f"a budget must be a kind name or (LAW), got {budget!r}")
    text = budget.strip()
    if text.startswith("("):
        if not text.endswith(")") or len(text) < 3:
            raise SpecError(
                f"budget {budget!r}: a budget law goes in parentheses, e.g. (uniform:0,6)"
            )
        from numerics.model.specs import parse_law

        law = parse_law(text[1:-1])
        mean = float(law.mean)
        # the mean to 12 significant digits (3, not 3.0000000000000004 from the PMF's sum)
        rounded = float(f"{mean:.12g}") if math.isfinite(mean) else mean
        try:
            out = BudgetLaw("law", rounded if math.isclose(rounded, mean, rel_tol=1e-12) else mean, law)
        except WorkloadError as exc:
            raise SpecError(str(exc)) from None
        if rate is not None:
            _match_rate(out, rate)
        return out
    if text not in BUDGET_LAWS:
        raise SpecError(
            f"budget must be one of {', '.join(BUDGET_LAWS)} or a length law in parentheses, "
            f"e.g. (uniform:0,6), got {budget!r}"
        )
    if rate is None:
        raise SpecError(f"the {text} budget needs a rate (its mean, requests per slot)")
    return BudgetLaw(text, rate)  # type: ignore[arg-type]


def _match_rate(law: BudgetLaw, rate: float) -> None:
    try:
        r = float(rate)
    except (TypeError, ValueError):
        raise SpecError(f"rate must be a number, got {rate!r}") from None
    if not math.isclose(r, law.rate_per_slot, rel_tol=RATE_RTOL, abs_tol=1e-300):
        raise SpecError(
            f"budget law {law.spec} has mean {law.rate_per_slot:.12g}, so it fixes the rate; "
            f"got rate {r:g} (leave the rate out or give {law.rate_per_slot:.12g})"
        )
