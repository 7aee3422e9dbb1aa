r"""Token-length laws on the non-negative integers, with exact moments.

A :class:`TokenLaw` is a probability mass function stored on a finite sorted support
``values`` with masses ``probs``. Laws with infinite support (geometric, Poisson, a continuous law
discretised by ceiling, ...) are stored out to the point where the remaining tail mass is below
:data:`TAIL_EPS` (``1e-300``, under double-precision resolution), or to :data:`MAX_SUPPORT` points,
whichever comes first; the mass left beyond the stored support is kept in ``tail_mass`` and the
excess mean beyond it, :math:`E[(X - x_{max})^+]`, in ``tail_excess``, so downstream bounds can
charge it explicitly.

Moments are **exact**: sums over the PMF (exact up to floating point, and with the tail beyond
:data:`TAIL_EPS` below double precision), never Monte Carlo. When the stored support stops at
:data:`MAX_SUPPORT` with visible tail mass (a heavy tail), the tail index
:math:`\alpha` of :math:`P(X > x) \sim x^{-\alpha}` is read from the survival function, a moment
:math:`E[X^k]` with :math:`k \ge \alpha` is reported as ``inf``, and a finite one gets the Pareto
tail correction :math:`P(X > N)\,N^k\,\alpha/(\alpha - k)`.

Examples
--------
>>> law = TokenLaw.deterministic(20)
>>> law.mean, law.second_moment
(20.0, 400.0)
>>> from scipy import special, stats
>>> geo = TokenLaw.from_scipy(stats.geom(0.005))
>>> round(geo.mean, 9), round(geo.second_moment, 6)
(200.0, 79800.0)
>>> geo.clip(300).max_value
300
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

if TYPE_CHECKING:
    from scipy.stats._distn_infrastructure import rv_frozen

from numerics.errors import UnstableWorkloadError, WorkloadError

__all__ = ["MAX_SUPPORT", "TAIL_EPS", "TokenLaw"]

#: Stop storing an infinite-support PMF once the tail mass beyond it is below this (under the
#: smallest normal double ~2.2e-308 times 1e8: every moment sum is exact to double precision).
TAIL_EPS = 1e-300
#: Never store more support points than this (2**21 ≈ 2.1 million; 16 MiB of float64).
MAX_SUPPORT = 2**21
#: A moment E[X^k] with tail index α ≤ k + TAIL_INDEX_MARGIN is reported infinite: its sum
#: converges too slowly to be computed, and the estimate of α from two survival values carries
#: an error of this order at MAX_SUPPORT.
TAIL_INDEX_MARGIN = 0.05


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class TokenLaw:
    """A law of a token count X ∈ {0, 1, 2, ...} with exact moments.

    Parameters
    ----------
    values : array of int
        Sorted distinct support points (non-negative).
    probs : array of float
        Masses at ``values`` (positive); they sum to ``1 - tail_mass``.
    label : str
        Human-readable description (a spec string when built from one).
    tail_mass : float
        P(X > values[-1]), the mass not stored (0 for a finite support).
    tail_excess : float
        E[(X - values[-1])^+], the mean beyond the stored support (0 for a finite support).
    tail_index : float or None
        Estimated α of P(X > x) ~ x^-α when the support was cut at :data:`MAX_SUPPORT` with visible
        tail mass; None otherwise.
    tail_moments : tuple of float or None
        E[X^k; X > values[-1]] for k = 1, 2, ..., where the law's moments are known (a scipy.stats
        law: its own moments, or closed forms for the log-normal); they take precedence over the
        tail-index extrapolation in :meth:`moment`. ``inf`` where that moment diverges.
    moment_source : str
        How the moments were obtained (shown by :attr:`description`).

    Use the constructors (:meth:`deterministic`, :meth:`from_pmf`, :meth:`from_samples`,
    :meth:`from_scipy`) rather than this signature.
    """

    values: np.ndarray
    probs: np.ndarray
    label: str = "law"
    tail_mass: float = 0.0
    tail_excess: float = 0.0
    tail_index: float | None = None
    tail_moments: tuple[float, ...] | None = None
    moment_source: str = "sums over the stored PMF"
    _moments: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        values = np.asarray(self.values)
        probs = np.asarray(self.probs, dtype=float)
        if values.ndim != 1 or values.shape != probs.shape or values.size == 0:
            raise WorkloadError(
                f"{self.label}: values and probs must be non-empty 1-d arrays of equal length"
            )
        if not np.all(np.isfinite(values)) or np.any(values != np.round(values)):
            raise WorkloadError(f"{self.label}: token counts must be integers")
        values = values.astype(np.int64)
        if values[0] < 0:
            raise WorkloadError(
                f"{self.label}: token counts must be non-negative, got {int(values[0])}"
            )
        if np.any(np.diff(values) <= 0):
            raise WorkloadError(f"{self.label}: support must be sorted and distinct")
        if np.any(~np.isfinite(probs)) or np.any(probs < 0):
            raise WorkloadError(f"{self.label}: probabilities must be finite and non-negative")
        total = probs.sum() + self.tail_mass
        if not math.isclose(total, 1.0, rel_tol=0, abs_tol=1e-9):
            # 1e-9: float sums of up to MAX_SUPPORT scipy pmf values stay within ~1e-12 of 1.
            raise WorkloadError(f"{self.label}: probabilities sum to {total!r}, not 1")
        object.__setattr__(self, "values", _readonly(values))
        object.__setattr__(self, "probs", _readonly(probs))

    # ------------------------------------------------------------------ constructors
    @classmethod
    def deterministic(cls, n: int, label: str | None = None) -> TokenLaw:
        """The law of the constant ``n``."""
        try:
            ok = int(n) == n and n >= 0 and not isinstance(n, bool)
        except (TypeError, ValueError, OverflowError):
            ok = False
        if not ok:
            raise WorkloadError(f"a deterministic length must be a non-negative integer, got {n!r}")
        return cls(np.array([int(n)]), np.array([1.0]), label or str(int(n)))

    @classmethod
    def from_pmf(cls, values: ArrayLike, probs: ArrayLike, label: str = "pmf") -> TokenLaw:
        """A finite law from support points and masses (duplicates are merged; zeros dropped)."""
        values = np.asarray(values)
        probs = np.asarray(probs, dtype=float)
        if values.shape != probs.shape or values.ndim != 1 or values.size == 0:
            raise WorkloadError(f"{label}: values and probs must be 1-d arrays of equal length")
        if not np.all(np.isfinite(values)) or np.any(values != np.round(values)):
            raise WorkloadError(f"{label}: token counts must be finite integers")
        if np.any(~np.isfinite(probs)) or np.any(probs < 0):
            raise WorkloadError(f"{label}: probabilities must be finite and non-negative")
        uniq, inv = np.unique(values.astype(np.int64), return_inverse=True)
        agg = np.bincount(inv, weights=probs, minlength=uniq.size)
        keep = agg > 0
        return cls(uniq[keep], agg[keep], label)

    @classmethod
    def from_samples(cls, samples: ArrayLike, label: str = "empirical") -> TokenLaw:
        """The empirical law of observed token counts."""
        samples = np.asarray(samples)
        if samples.ndim != 1 or samples.size == 0:
            raise WorkloadError(f"{label}: need a non-empty 1-d array of samples")
        uniq, counts = np.unique(samples, return_counts=True)
        return cls.from_pmf(uniq, counts / samples.size, label)

    @classmethod
    def from_scipy(cls, dist: rv_frozen, label: str | None = None,
                   max_tokens: int | None = None) -> TokenLaw:
        """From a frozen scipy.stats law, optionally clipped at ``max_tokens``.

        A discrete law is used as it is (its support must be non-negative). A continuous law
        with support in [0, ∞) is discretised by ceiling: X = ⌈Y⌉, so P(X = n) = P(n-1 < Y ≤ n).
        """
        label = label or _describe(dist)
        if not hasattr(dist, "dist") or not hasattr(dist, "sf"):
            raise WorkloadError(f"{label}: expected a frozen scipy.stats distribution")
        from scipy import stats  # imported here: scipy.stats is slow to import

        discrete = isinstance(dist.dist, stats.rv_discrete)
        lo, hi = (float(x) for x in dist.support())
        if lo < 0:
            # A continuous law with support below 0 is refused even where its mass there rounds
            # to 0 (norm(loc=100)): the ceiling of a negative value is no token count.
            hint = ("; truncate it to [0, ∞), e.g. scipy:truncnorm(a=A,b=B,loc=L,scale=S) with "
                    "A = −L/S, or use a law on [0, ∞) such as lognormal:median=M,sigma=S"
                    if not discrete else "; shift it with loc ≥ 0")
            raise WorkloadError(
                f"{label}: token counts must be non-negative but the law's support starts at "
                f"{lo}{hint}"
            )
        if discrete:
            start = int(max(lo, 0))
            mass = dist.pmf
        else:
            start = 1 if dist.cdf(0.0) == 0.0 else 0

            def mass(n):
                n = np.asarray(n, dtype=float)
                upper = n > dist.median()
                with np.errstate(invalid="ignore"):
                    low = dist.cdf(n) - dist.cdf(n - 1)
                    high = dist.sf(n - 1) - dist.sf(n)
                return np.where(upper, high, low)

        return cls.from_functions(mass, dist.sf, start, hi, label, max_tokens, mean=dist.mean,
                                  frozen=lambda: dist, discrete=discrete)

    @classmethod
    def from_functions(cls, mass: Callable[[np.ndarray], np.ndarray], sf: Callable[[int], float],
                       start: int, hi: float, label: str, max_tokens: int | None = None, *,
                       mean: Callable[[], float], frozen: Callable[[], rv_frozen] | None = None,
                       discrete: bool = True) -> TokenLaw:
        """A law on {start, ..., ⌈hi⌉} (``hi`` may be ``inf``) from its masses and survival function.

        The engine of :meth:`from_scipy`, also used by the length-law specs to build the common
        families without importing scipy.stats (which is slow to import).

        Parameters
        ----------
        mass : callable
            ``mass(n)`` = P(X = n) for an int64 array ``n`` of support points.
        sf : callable
            ``sf(n)`` = P(X > n) for an integer ``n``.
        start, hi : int, float
            The first support point and the last (``inf`` when unbounded).
        label : str
            The law's label.
        max_tokens : int or None
            Clip at this (the mass above it becomes an atom at it).
        mean : callable
            ``mean()`` = E[X] (charged, times the tail mass, as the excess beyond the stored
            support when that tail is below :data:`TAIL_EPS`).
        frozen : callable or None
            ``frozen()`` = the law as a frozen scipy.stats law, called only when the stored support
            stops at :data:`MAX_SUPPORT` with visible tail mass (its moments then give the tail's).
        discrete : bool
            False for a continuous law discretised by ceiling (see :meth:`from_scipy`).
        """
        if (max_tokens is not None and max_tokens < (math.ceil(hi) if math.isfinite(hi) else math.inf)
                and int(max_tokens) - start >= MAX_SUPPORT):
            # A clip beyond the storable support: build the law, then clip what was stored (exact
            # when the tail beyond the stored support is below TAIL_EPS).
            law = cls.from_functions(mass, sf, start, hi, label, mean=mean, frozen=frozen,
                                     discrete=discrete)
            if law.tail_mass > TAIL_EPS:
                raise WorkloadError(
                    f"{label}: max={int(max_tokens)} lies beyond the {MAX_SUPPORT} token counts "
                    f"that can be stored, and the law has mass {law.tail_mass:.3g} beyond them; "
                    f"clip it at max ≤ {start + MAX_SUPPORT - 1}"
                )
            return law.clip(int(max_tokens)) if int(max_tokens) < law.values[-1] else law
        if max_tokens is not None and max_tokens < (math.ceil(hi) if math.isfinite(hi) else math.inf):
            # Clip while building: masses below the cap, the rest as an atom at it (this avoids
            # storing a long tail only to fold it back).
            cap = int(max_tokens)
            if cap <= start:
                return cls.deterministic(cap, label)
            values = np.arange(start, cap)
            probs = np.clip(mass(values), 0.0, None)
            probs = np.append(probs, max(float(sf(cap - 1)), 0.0))
            values = np.append(values, cap)
            keep = probs > 0
            probs = probs[keep] / probs[keep].sum()
            return cls(values[keep], probs, label)
        if math.isfinite(hi):
            end = math.ceil(hi)
            if end - start + 1 > MAX_SUPPORT:
                raise WorkloadError(
                    f"{label}: support {start}..{end} is larger than {MAX_SUPPORT} points"
                )
        else:
            end = _tail_point(sf, start)
        values = np.arange(start, end + 1)
        probs = np.clip(mass(values), 0.0, None)
        tail = float(max(sf(end), 0.0)) if not math.isfinite(hi) else 0.0
        if not math.isfinite(tail) or tail > 0.5 or not np.any(probs > 0):
            if np.any(probs > 0) or tail > 0.5:
                raise WorkloadError(
                    f"{label}: most of the law lies beyond the {MAX_SUPPORT} token counts that can "
                    f"be stored (P(X > {end}) = {tail:.3g}); use a smaller scale or clip it with "
                    f"max=L"
                )
            raise WorkloadError(
                f"{label}: the law puts no mass on the whole numbers {start}..{end}: token counts "
                "are integers (a discrete law needs an integer loc)"
            )
        tail_index = None
        excess = 0.0
        if tail > TAIL_EPS and end >= 4:
            # Cut at MAX_SUPPORT with visible tail mass: read the tail index from the PMF
            # (p(n) ~ n^-(α+1)); scipy's survival functions lose relative precision out here.
            half = end // 2
            tail_index = float(np.log(probs[half - start] / probs[-1]) / np.log(end / half) - 1)
            if tail_index > 0:
                # sf below 1e-8 is 1 - cdf rounding noise for many scipy laws: extrapolate.
                tail = tail if tail > 1e-8 else float(probs[-1]) * end / tail_index
            finite_mean = tail_index > 1 + TAIL_INDEX_MARGIN
            excess = tail * end / (tail_index - 1) if finite_mean else math.inf
        elif tail > 0:
            m = mean()
            excess = tail * float(m if math.isfinite(m) else end)
        keep = probs > 0
        # Renormalise the stored part against float rounding so that stored + tail sums to 1.
        probs = probs[keep] * ((1.0 - tail) / probs[keep].sum())
        values = values[keep]
        if tail > TAIL_EPS and frozen is not None:
            # The law's own moments overrule the tail-index extrapolation wherever they are known.
            known = _known_tail_moments(frozen(), discrete, int(end), values, probs, tail)
            if known is not None:
                moments, source = known
                if math.isfinite(moments[0]):
                    excess = max(moments[0] - end * tail, tail)
                return cls(values, probs, label, tail, excess, tail_index, moments, source)
        return cls(values, probs, label, tail, excess, tail_index)

    # ------------------------------------------------------------------ transforms
    def clip(self, max_tokens: int) -> TokenLaw:
        """min(X, max_tokens): the mass above the clip (tail included) becomes an atom at it."""
        if int(max_tokens) != max_tokens or max_tokens < 0:
            raise WorkloadError(f"max_tokens must be a non-negative integer, got {max_tokens!r}")
        m = int(max_tokens)
        keep = self.values < m
        above = float(self.probs[~keep].sum()) + self.tail_mass
        values = np.append(self.values[keep], m)
        probs = np.append(self.probs[keep], above)
        return TokenLaw.from_pmf(values, probs, f"{self.label},max={m}")

    def shift(self, k: int) -> TokenLaw:
        """X + k."""
        if int(k) != k:
            raise WorkloadError(f"shift must be an integer, got {k!r}")
        moments = None
        if self.tail_moments is not None:  # E[(X + k)^j; X > N] = Σ_i C(j, i) k^{j−i} E[X^i; X > N]
            base = (self.tail_mass, *self.tail_moments)
            moments = tuple(
                math.inf if any(not math.isfinite(base[i]) for i in range(j + 1))
                else math.fsum(math.comb(j, i) * float(k) ** (j - i) * base[i] for i in range(j + 1))
                for j in range(1, len(base))
            )
        return TokenLaw(
            self.values + int(k),
            self.probs,
            f"{self.label},shift={int(k)}" if k else self.label,
            self.tail_mass,
            self.tail_excess,
            self.tail_index,
            moments,
            self.moment_source,
        )

    # ------------------------------------------------------------------ moments
    def moment(self, k: int) -> float:
        """E[X^k] (exact; ``inf`` when it diverges)."""
        if k not in self._moments:
            v = self.values.astype(float)
            head = float(np.sum(v**k * self.probs))
            if self.tail_moments is not None and 1 <= k <= len(self.tail_moments):
                head += self.tail_moments[k - 1]
            elif self.tail_index is not None:
                if self.tail_index <= k + TAIL_INDEX_MARGIN:
                    head = math.inf
                else:
                    n = float(self.values[-1])
                    head += self.tail_mass * n**k * self.tail_index / (self.tail_index - k)
            self._moments[k] = head
        return self._moments[k]

    @property
    def mean(self) -> float:
        """E[X]."""
        return self.moment(1)

    @property
    def second_moment(self) -> float:
        """E[X²]."""
        return self.moment(2)

    @property
    def var(self) -> float:
        """Var X."""
        m2 = self.second_moment
        if not math.isfinite(m2):
            return math.inf
        if self.bounded:  # centred sum: no cancellation
            return float(np.sum(self.probs * (self.values - self.mean) ** 2))
        return max(m2 - self.mean**2, 0.0)

    @property
    def description(self) -> str:
        """The label with how the moments were obtained."""
        return f"{self.label} (moments: {self.moment_source})"

    @property
    def bounded(self) -> bool:
        """True when the whole support is stored (no tail beyond ``values[-1]``)."""
        return self.tail_mass == 0.0

    @property
    def max_value(self) -> float | int:
        """The largest value, or ``inf`` when the support is unbounded."""
        return int(self.values[-1]) if self.bounded else math.inf

    @property
    def min_value(self) -> int:
        """The smallest value with positive mass."""
        return int(self.values[0])

    def prob_zero(self) -> float:
        """P(X = 0)."""
        return float(self.probs[0]) if self.values[0] == 0 else 0.0

    def sf(self, x: ArrayLike) -> np.ndarray | float:
        """P(X > x), tail beyond the stored support included."""
        x = np.asarray(x)
        cum = np.concatenate([np.cumsum(self.probs[::-1])[::-1], [0.0]])
        idx = np.searchsorted(self.values, x, side="right")
        out = cum[idx] + self.tail_mass
        return float(out) if out.ndim == 0 else out

    # ------------------------------------------------------------------ scipy.stats names
    def pmf(self, k: ArrayLike) -> np.ndarray | float:
        """P(X = k), as ``scipy.stats`` names it (0 off the stored support; the tail mass beyond
        it is not at any one point)."""
        k = np.asarray(k)
        idx = np.clip(np.searchsorted(self.values, k), 0, self.values.size - 1)
        out = np.where(self.values[idx] == k, self.probs[idx], 0.0)
        return float(out) if out.ndim == 0 else out

    def cdf(self, x: ArrayLike) -> np.ndarray | float:
        """P(X ≤ x) = 1 − :meth:`sf`, as ``scipy.stats`` names it: the masses up to x, summed
        (not 1 − sf, which rounds below 0 left of the support)."""
        cum = np.concatenate([[0.0], np.cumsum(self.probs)])
        out = cum[np.searchsorted(self.values, np.asarray(x), side="right")]
        return float(out) if out.ndim == 0 else out

    def rvs(self, size: int | tuple[int, ...] = 1,
            random_state: np.random.Generator | int | None = None) -> np.ndarray:
        """i.i.d. draws, as ``scipy.stats`` names them: :meth:`sample` with ``random_state`` as
        the generator (or its seed)."""
        return self.sample(size, random_state)

    def survival_by_age(self, n_ages: int) -> np.ndarray:
        """G(a) = P(X > a) for a = 0, ..., n_ages - 1 (cached; read-only)."""
        key = ("survival", int(n_ages))
        if key not in self._moments:
            g = np.asarray(self.sf(np.arange(n_ages)), dtype=float)
            g.setflags(write=False)
            self._moments[key] = g
        return self._moments[key]

    def log_mgf(self, theta: float) -> float:
        """log E[e^{θX}] over the stored support (exact for bounded laws)."""
        with np.errstate(divide="ignore"):
            return float(np.logaddexp.reduce(np.log(self.probs) + theta * self.values))

    def require_finite_second_moment(self, what: str = "decode") -> None:
        """Raise :class:`UnstableWorkloadError` when E[X²] = ∞ (no stable arrival rate)."""
        if not math.isfinite(self.second_moment):
            alpha = f" (tail index ≈ {self.tail_index:.3g})" if self.tail_index else ""
            raise UnstableWorkloadError(
                f"E[O²] is infinite for {what} law {self.label}{alpha}: E[W] = ∞, so no arrival "
                f"rate is stable; clip it with max=L (e.g. '{self.label},max=4096')"
            )

    # ------------------------------------------------------------------ sampling
    def sample(self, size: int | tuple[int, ...], rng: np.random.Generator | int | None = None) -> np.ndarray:
        """Draw i.i.d. values (the tail beyond the stored support, ``tail_mass``, is not drawn).

        Inversion of the stored law renormalised to mass 1: with ``p = probs / probs.sum()`` and
        ``F = cumsum(p) / cumsum(p)[-1]``, one uniform U from ``rng.random(size)`` per draw gives
        ``values[#{i : F_i <= U}]``. These are exactly the values, and the generator state after,
        of ``rng.choice(values, size=size, p=p)``, which draws the same uniforms and searches the
        same F (so seeded results do not depend on which of the two is used). ``F`` is cached, and
        for large draws a guide table (:func:`_guide_table`) resolves most uniforms without a
        search; the search runs only on the uniforms whose guide cell holds a jump of F.
        """
        rng = np.random.default_rng(rng)
        cdf = self._moments.get(_CDF_KEY)
        if cdf is None:
            cdf = _choice_cdf(self.probs)
            self._moments[_CDF_KEY] = cdf
        if size is None or not math.isfinite(cdf[-1]):
            # a scalar draw, or no stored mass (numpy's error): numpy's own path
            return rng.choice(self.values, size=size, p=self.probs / self.probs.sum())
        u = rng.random(size)
        flat = u.reshape(-1)
        cells = _guide_cells(self.values.size)
        if flat.size * _GUIDE_MIN_DRAWS_PER_CELL < cells:
            return self.values[cdf.searchsorted(u, side="right")]
        table = self._moments.get(_GUIDE_KEY)
        if table is None:
            table = _guide_table(cdf, self.values, cells)
            self._moments[_GUIDE_KEY] = table
        out = table[(flat * cells).astype(np.intp)]
        hard = np.flatnonzero(out < 0)
        if hard.size:
            out[hard] = self.values[cdf.searchsorted(flat[hard], side="right")]
        return out.reshape(u.shape)

    def __repr__(self) -> str:
        return (
            f"TokenLaw({self.label!r}, mean={self.mean:.6g}, "
            f"support={self.min_value}..{self.max_value})"
        )


#: Private cache keys of :meth:`TokenLaw.sample` in ``TokenLaw._moments`` (never ints, the moment keys).
_CDF_KEY = "_sample_cdf"
_GUIDE_KEY = "_sample_guide"
#: Guide cells per support point (a power of two at least this many times the support size; the
#: share of uniforms that still need a search is at most about one in this many), capped.
_GUIDE_CELLS_PER_POINT = 16
_GUIDE_MAX_CELLS = 2**20
#: Build the guide table only for draws of at least cells / this many values (building costs about
#: one pass over the cells).
_GUIDE_MIN_DRAWS_PER_CELL = 4


def _choice_cdf(probs: np.ndarray) -> np.ndarray:
    """The cumulative probabilities exactly as ``Generator.choice(..., p=probs / probs.sum())``
    computes them: ``cdf = p.cumsum(); cdf /= cdf[-1]`` (read-only)."""
    with np.errstate(divide="ignore", invalid="ignore"):  # no mass: NaN, left to numpy's error
        p = probs / probs.sum()
        cdf = p.cumsum()
        cdf /= cdf[-1]
    cdf.setflags(write=False)
    return cdf


def _guide_cells(n_values: int) -> int:
    """G = the number of guide cells: a power of two ≥ _GUIDE_CELLS_PER_POINT · n, at most 2**20."""
    want = max(2, _GUIDE_CELLS_PER_POINT * n_values)
    return min(1 << (want - 1).bit_length(), _GUIDE_MAX_CELLS)


def _guide_table(cdf: np.ndarray, values: np.ndarray, cells: int) -> np.ndarray:
    """The guide table of G = ``cells`` (a power of two) cells [j/G, (j+1)/G) of the uniforms.

    A uniform U of ``Generator.random`` is a multiple of 2⁻⁵³ in [0, 1), so U·G is exact and
    j = ⌊U·G⌋ has j/G ≤ U < (j+1)/G exactly. The search index #{i : F_i ≤ U} then lies between
    lo_j = #{F_i ≤ j/G} and hi_j = #{F_i < (j+1)/G}; where they agree the cell holds the value
    ``values[lo_j]`` (≥ 0), elsewhere −1 (a jump of F inside the cell: search). Read-only.
    """
    edges = np.arange(cells + 1, dtype=float) / cells
    lo = cdf.searchsorted(edges[:-1], side="right")
    hi = cdf.searchsorted(edges[1:], side="left")
    table = np.where(lo == hi, values[np.minimum(lo, values.size - 1)], -1).astype(np.int64)
    table.setflags(write=False)
    return table


#: Tail moments E[X^k; X > N] recorded for k = 1..this (the bounds use up to E[O³]).
_TAIL_MOMENT_ORDERS = 4


def _known_tail_moments(dist, discrete: bool, end: int, values: np.ndarray, probs: np.ndarray,
                        tail: float) -> tuple[tuple[float, ...], str] | None:
    """E[X^k; X > end], k = 1.._TAIL_MOMENT_ORDERS, from what is known of a scipy.stats law.

    * A discrete law: scipy's own moments E[X^k] (closed forms for the named families) minus the
      stored part, and at least (end + 1)^k·P(X > end).
    * A continuous law Y, stored as X = ⌈Y⌉: Y^k ≤ X^k ≤ (Y + 1)^k, so
      E[X^k; X > end] = E[(Y + 1/2)^k; Y > end] (a binomial sum of E[Y^j; Y > end]) to within
      half of E[(Y + 1)^k − Y^k; Y > end] (relative error ≤ k/(2·end)); E[Y^j; Y > end] in
      closed form for the log-normal, by scipy's quadrature otherwise.

    None when scipy cannot give them (then the caller keeps the tail-index extrapolation).
    """
    import warnings

    name = getattr(getattr(dist, "dist", None), "name", "law")
    out = []
    parts = [tail]  # E[Y^j; Y > end], j = 0, 1, ...
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            shapes, loc, scale = dist.dist._parse_args(*dist.args, **dist.kwds)
            for k in range(1, _TAIL_MOMENT_ORDERS + 1):
                full = float(dist.moment(k))
                if not math.isfinite(full):
                    out.extend([math.inf] * (_TAIL_MOMENT_ORDERS + 1 - k))
                    break
                floor = float(end + 1) ** k * tail
                if discrete:
                    head = math.fsum(values.astype(float) ** k * probs)
                    out.append(max(full - head, floor))
                    continue
                if name == "lognorm" and loc == 0:
                    from scipy import special

                    sigma = float(shapes[0])
                    z = math.log(end / scale) / sigma
                    part = math.exp(k * math.log(scale) + (k * sigma) ** 2 / 2
                                    + float(special.log_ndtr(k * sigma - z)))
                else:
                    part = float(dist.expect(lambda y, k=k: y**k, lb=end, ub=math.inf))
                if not math.isfinite(part) or part < 0:
                    return None
                parts.append(part)
                # E[⌈Y⌉^k; Y > N] ≈ E[(Y + 1/2)^k; Y > N], within half of E[(Y+1)^k − Y^k; Y > N]
                mid = math.fsum(math.comb(k, j) * 0.5 ** (k - j) * parts[j] for j in range(k + 1))
                out.append(max(mid, floor))
        except (ValueError, TypeError, ArithmeticError, AttributeError, IndexError):
            return None
    if discrete:
        source = f"scipy.stats {name}'s own moments E[X^k]"
    elif name == "lognorm" and loc == 0:
        source = (f"closed form E[Y^k; Y > {end}] of the log-normal beyond the stored support "
                  f"(ceiling effect ≤ k/{2 * end:.3g} relative)")
    else:
        source = (f"scipy.stats {name}'s quadrature of E[Y^k; Y > {end}] beyond the stored support "
                  f"(ceiling effect ≤ k/{2 * end:.3g} relative)")
    return tuple(out), source


def _describe(dist) -> str:
    name = getattr(getattr(dist, "dist", None), "name", "law")
    args = ", ".join(f"{a:g}" for a in getattr(dist, "args", ()))
    kwds = ", ".join(f"{k}={v:g}" for k, v in getattr(dist, "kwds", {}).items())
    return f"{name}({', '.join(x for x in (args, kwds) if x)})"


def _tail_point(sf: Callable[[int], float], start: int) -> int:
    """Smallest n ≥ start with sf(n) ≤ TAIL_EPS, capped so the support has MAX_SUPPORT points."""
    cap = start + MAX_SUPPORT - 1
    hi = max(start, 1)
    while hi < cap and sf(hi) > TAIL_EPS:
        hi = min(2 * hi, cap)
    if sf(hi) > TAIL_EPS:
        return cap
    lo = max(start, hi // 2)
    while lo < hi:  # smallest n in [lo, hi] with sf(n) <= TAIL_EPS
        mid = (lo + hi) // 2
        if sf(mid) <= TAIL_EPS:
            hi = mid
        else:
            lo = mid + 1
    return hi
