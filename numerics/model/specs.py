"""Spec strings for token-length laws (CLI flags and TOML workload files).

Grammar: ``FAMILY:ARGS`` where ARGS are comma-separated ``key=value`` pairs or positional values;
every family accepts ``max=L`` (clip: the mass above L becomes an atom at L) and the integer
families accept ``shift=K`` (add K).

=====================================  ====================================================
spec                                   law
=====================================  ====================================================
``20``                                 deterministic 20
``geom:mean=200`` / ``geom:p=0.005``   geometric on {1, 2, ...} (mean 1/p)
``uniform:1,100``                      uniform on {1, ..., 100}
``poisson:mean=50,shift=1``            1 + Poisson(50)
``nbinom:n=2,p=0.01,shift=1``          1 + NegBin(n, p) (failures before the n-th success)
``lognormal:median=120,sigma=0.8``     ⌈Y⌉, Y log-normal with that median and log-sd
``zipf:a=2.5``                         Zipf on {1, 2, ...}, P(k) ∝ k^-a
``scipy:NAME(k=v,...)``                any scipy.stats law; continuous ones by ceiling
=====================================  ====================================================

Examples
--------
>>> parse_law("geom:mean=200").mean
200.0
>>> parse_law("uniform:1,100,max=50").max_value
50
"""

from __future__ import annotations

import math
import re

import numpy as np

from numerics.errors import SpecError, WorkloadError
from numerics.model.laws import MAX_SUPPORT, TokenLaw

__all__ = ["parse_law", "parse_params"]

_FAMILIES = ("geom", "uniform", "poisson", "nbinom", "lognormal", "zipf", "scipy")
_SCIPY_RE = re.compile(r"^scipy:\s*([A-Za-z_][A-Za-z0-9_]*)\s*\((.*)\)\s*(?:,(.*))?$")


def _number(text: str, spec: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SpecError(f"{spec!r}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise SpecError(f"{spec!r}: {text!r} is not a finite number")
    return value


#: Token counts beyond this are rejected (int64 arithmetic must not overflow in sums of squares).
_MAX_INT = 2**40


def _integer(text: str, spec: str, what: str) -> int:
    value = _number(text, spec)
    if value != int(value):
        raise SpecError(f"{spec!r}: {what} must be an integer, got {text}")
    if abs(value) > _MAX_INT:
        raise SpecError(f"{spec!r}: {what} {text} is too large (at most {_MAX_INT})")
    return int(value)


def parse_params(text: str, spec: str) -> tuple[list[float], dict[str, float]]:
    """Split ``"1,100,max=5"`` into positional ``[1, 100]`` and keywords ``{"max": 5}``."""
    positional: list[float] = []
    keywords: dict[str, float] = {}
    if not text.strip():
        return positional, keywords
    for part in text.split(","):
        part = part.strip()
        if not part:
            raise SpecError(f"{spec!r}: empty parameter (stray comma?)")
        if "=" in part:
            key, _, value = part.partition("=")
            key = key.strip()
            if not key.isidentifier():
                raise SpecError(f"{spec!r}: bad parameter name {key!r}")
            if key in keywords:
                raise SpecError(f"{spec!r}: parameter {key!r} given twice")
            keywords[key] = _number(value.strip(), spec)
        else:
            if keywords:
                raise SpecError(f"{spec!r}: positional value {part!r} after key=value parameters")
            positional.append(_number(part, spec))
    return positional, keywords


def _take(kw: dict, allowed: set[str], spec: str, family: str) -> None:
    extra = set(kw) - allowed
    if extra:
        raise SpecError(
            f"{spec!r}: {family} takes {', '.join(sorted(allowed))}; unknown {', '.join(sorted(extra))}"
        )


def _only_param(kw: dict[str, float], pos: list[float], spec: str, family: str, key: str) -> float | None:
    """The one parameter ``key`` of ``family``: ``key=V`` or a lone positional value (else None)."""
    _take(kw, {key}, spec, family)
    return kw.get(key, pos[0] if len(pos) == 1 else None)


#: The largest geometric mean whose law keeps at least half its mass on the MAX_SUPPORT stored points
#: {1, ..., MAX_SUPPORT}: (1 − 1/m)^MAX_SUPPORT ≥ 1/2.
_GEOM_MAX_MEAN = float(math.floor(-1.0 / math.expm1(math.log(0.5) / MAX_SUPPORT)))
#: The largest Poisson mean whose whole support (to a tail below TAIL_EPS) is storable: mean
#: + 40·√mean + 1000 < MAX_SUPPORT with room to spare.
_POISSON_MAX_MEAN = 2.0e6


def _check_prob(p: float, spec: str) -> float:
    if not 0 < p <= 1:
        raise SpecError(f"{spec!r}: p must lie in (0, 1], got {p}")
    return p


# ---------------------------------------------------------------- families without scipy.stats
# geom, uniform, poisson and nbinom (every preset's family) are built by TokenLaw.from_functions
# with scipy.stats' own formulas, applied to the arguments as scipy.stats hands them to them, so
# their laws are bit for bit those of TokenLaw.from_scipy(stats.FAMILY(...)) (tests/test_specs.py
# checks it) while `import scipy.stats` (~0.4 s of a cold `flowstab plan`) is skipped. Poisson and
# negative-binomial masses need scipy.special (~0.2 s to import), imported where used.


def _scipy_stats():
    """scipy.stats, imported on first use (it is slow to import)."""
    from scipy import stats

    return stats


def _scipy_args(k, *params) -> list[np.ndarray]:
    """``k`` and the parameters as ``scipy.stats.rv_discrete`` hands them to a family's formulas
    (1-d, broadcast to one shape, raveled): the same float operations give the same bits."""
    return [a.ravel() for a in np.broadcast_arrays(*np.atleast_1d(np.asarray(k), *params))]


def _sf_of(formula, first: int):
    """P(X > x) for a scalar x from ``formula(k, ...)`` on scipy's arguments: 1 below the support,
    clipped to [0, 1] as scipy.stats clips it."""
    def sf(x: int) -> float:
        if x < first:
            return 1.0
        return float(np.clip(formula(*_scipy_args(x)), 0, 1)[0])

    return sf


def _geom(p: float, label: str, cap: int | None) -> TokenLaw:
    """``TokenLaw.from_scipy(stats.geom(p), label, cap)`` without scipy:
    P(X = k) = (1 − p)^(k−1)·p, P(X > k) = exp(⌊k⌋·log1p(−p)), E[X] = 1/p."""
    def mass(k):
        k, q = _scipy_args(k, p)
        return np.clip(np.power(1 - q, k - 1) * q, 0, 1)

    def tail(k):
        k, q = _scipy_args(k, p)
        return np.exp(np.floor(k) * np.log1p(-q))

    return TokenLaw.from_functions(mass, _sf_of(tail, 1), 1, math.inf, label, cap,
                                   mean=lambda: float(1.0 / np.float64(p)),
                                   frozen=lambda: _scipy_stats().geom(p))


def _randint(low: int, high: int, label: str, cap: int | None) -> TokenLaw:
    """``TokenLaw.from_scipy(stats.randint(low, high), label, cap)`` without scipy: uniform on
    {low, ..., high − 1}, P(X > k) = 1 − (⌊k⌋ − low + 1)/(high − low)."""
    def mass(k):
        k, lo, hi = _scipy_args(k, low, high)
        p = np.ones_like(k) / (np.asarray(hi, dtype=np.int64) - lo)
        return np.clip(np.where((k >= lo) & (k < hi), p, 0.0), 0, 1)

    def sf(x: int) -> float:
        if x >= high - 1:
            return 0.0
        if x < low:
            return 1.0
        k, lo, hi = _scipy_args(x, low, high)
        return float(np.clip(1.0 - (np.floor(k) - lo + 1.0) / (hi - lo), 0, 1)[0])

    return TokenLaw.from_functions(mass, sf, low, float(high - 1), label, cap,
                                   mean=lambda: (high + low - 1.0) / 2.0)


def _poisson(mu: float, label: str, cap: int | None) -> TokenLaw:
    """``TokenLaw.from_scipy(stats.poisson(mu), label, cap)`` with scipy.special only:
    P(X = k) = exp(xlogy(k, μ) − lgamma(k + 1) − μ), P(X > k) = pdtrc(⌊k⌋, μ)."""
    from scipy import special

    def mass(k):
        k, m = _scipy_args(k, mu)
        return np.clip(np.exp(special.xlogy(k, m) - special.gammaln(k + 1) - m), 0, 1)

    def tail(k):
        k, m = _scipy_args(k, mu)
        return special.pdtrc(np.floor(k), m)

    return TokenLaw.from_functions(mass, _sf_of(tail, 0), 0, math.inf, label, cap,
                                   mean=lambda: float(mu), frozen=lambda: _scipy_stats().poisson(mu))


def _nbinom(n: float, p: float, label: str, cap: int | None) -> TokenLaw:
    """``TokenLaw.from_scipy(stats.nbinom(n, p), label, cap)`` with scipy.special only (the
    Boost formulas scipy.stats.nbinom calls)."""
    from scipy.special import _ufuncs as scu

    def mass(k):
        return np.clip(scu._nbinom_pmf(*_scipy_args(k, n, p)), 0, 1)

    def tail(k):
        k, nn, pp = _scipy_args(k, n, p)
        return scu._nbinom_sf(np.floor(k), nn, pp)

    def mean() -> float:
        return float(scu._nbinom_mean(*_scipy_args(n, p))[0])

    return TokenLaw.from_functions(mass, _sf_of(tail, 0), 0, math.inf, label, cap, mean=mean,
                                   frozen=lambda: _scipy_stats().nbinom(n, p))


def _family_law(
    family: str, pos: list[float], kw: dict[str, float], spec: str, cap: int | None = None
) -> TokenLaw:
    label = spec.split(",max=")[0]
    if pos and kw and family != "uniform":
        raise SpecError(
            f"{spec!r}: give {family}'s parameters either positionally or as key=value, not both"
        )
    if family == "geom":
        _take(kw, {"mean", "p"}, spec, family)
        if pos or len(kw) != 1:
            raise SpecError(f"{spec!r}: geom needs exactly one of mean=M or p=P")
        if "mean" in kw:
            if kw["mean"] < 1:
                raise SpecError(f"{spec!r}: a geometric on {{1, 2, ...}} has mean ≥ 1")
            p = 1.0 / kw["mean"]
        else:
            p = _check_prob(kw["p"], spec)
        if 1.0 / p > _GEOM_MAX_MEAN:
            raise SpecError(
                f"{spec!r}: a geometric mean of {1.0 / p:.3g} is too large: the largest supported "
                f"mean is {_GEOM_MAX_MEAN:.4g} (p ≥ {1.0 / _GEOM_MAX_MEAN:.3g}; at most half its "
                f"mass beyond the {MAX_SUPPORT} stored token counts)"
            )
        if p == 1:
            return TokenLaw.deterministic(1, label)
        return _geom(p, label, cap)
    if family == "uniform":
        _take(kw, {"low", "high"}, spec, family)
        names = ("low", "high")
        twice = [n for n in names[: len(pos)] if n in kw]
        if twice:
            raise SpecError(f"{spec!r}: {', '.join(twice)} given both positionally and by name")
        vals = pos + [kw[k] for k in names if k in kw]
        if len(vals) != 2:
            raise SpecError(f"{spec!r}: uniform needs two bounds, e.g. uniform:1,100")
        a, b = (_integer(str(v), spec, "a uniform bound") for v in vals)
        if a > b or a < 0:
            raise SpecError(f"{spec!r}: need 0 ≤ low ≤ high, got {a}, {b}")
        return _randint(a, b + 1, label, cap)
    if family == "poisson":
        mean = _only_param(kw, pos, spec, family, "mean")
        if mean is None or mean <= 0:
            raise SpecError(f"{spec!r}: poisson needs mean=M > 0")
        if mean > _POISSON_MAX_MEAN:
            raise SpecError(
                f"{spec!r}: a Poisson mean of {mean:.3g} is too large: the largest supported mean "
                f"is {_POISSON_MAX_MEAN:.3g} (its support must fit in {MAX_SUPPORT} token counts)"
            )
        return _poisson(mean, label, cap)
    if family == "nbinom":
        _take(kw, {"n", "p"}, spec, family)
        if "n" not in kw or "p" not in kw or pos:
            raise SpecError(f"{spec!r}: nbinom needs n=N,p=P")
        if kw["n"] <= 0:
            raise SpecError(f"{spec!r}: nbinom needs n > 0")
        return _nbinom(kw["n"], _check_prob(kw["p"], spec), label, cap)
    if family == "lognormal":
        _take(kw, {"median", "sigma"}, spec, family)
        if "median" not in kw or "sigma" not in kw or pos:
            raise SpecError(f"{spec!r}: lognormal needs median=M,sigma=S")
        if kw["median"] <= 0 or kw["sigma"] <= 0:
            raise SpecError(f"{spec!r}: lognormal needs median > 0 and sigma > 0")
        stats = _scipy_stats()
        return TokenLaw.from_scipy(stats.lognorm(s=kw["sigma"], scale=kw["median"]), label, cap)
    if family == "zipf":
        a = _only_param(kw, pos, spec, family, "a")
        if a is None or a <= 1:
            raise SpecError(f"{spec!r}: zipf needs a=A > 1")
        return TokenLaw.from_scipy(_scipy_stats().zipf(a), label, cap)
    raise SpecError(f"{spec!r}: unknown family {family!r}")  # pragma: no cover


def _scipy_law(spec: str, cap: int | None = None) -> tuple[TokenLaw, str]:
    m = _SCIPY_RE.match(spec)
    if not m:
        raise SpecError(f"{spec!r}: expected scipy:NAME(k=v,...), e.g. scipy:betabinom(n=100,a=2,b=3)")
    name, inner, rest = m.group(1), m.group(2), m.group(3) or ""
    stats = _scipy_stats()
    dist_cls = getattr(stats, name, None)
    if not isinstance(dist_cls, stats.rv_discrete | stats.rv_continuous):
        raise SpecError(f"{spec!r}: scipy.stats has no distribution named {name!r}")
    pos, kw = parse_params(inner, spec)
    try:
        frozen = dist_cls(*pos, **kw)
        frozen.support()
        ok = math.isfinite(float(frozen.cdf(1.0)))
    except (TypeError, ValueError) as exc:
        raise SpecError(f"{spec!r}: scipy.stats.{name} rejected the parameters ({exc})") from None
    if not ok:
        raise SpecError(f"{spec!r}: scipy.stats.{name} rejected the parameters (invalid values)")
    return TokenLaw.from_scipy(frozen, f"scipy:{name}({inner})", cap), rest


def parse_law(spec: str | int) -> TokenLaw:
    """Parse a length-law spec string into a :class:`TokenLaw` (see the module docstring).

    Raises
    ------
    SpecError
        When the spec is malformed, with the expected form in the message.
    """
    if isinstance(spec, int) and not isinstance(spec, bool):
        spec = str(spec)
    if not isinstance(spec, str) or not spec.strip():
        raise SpecError(f"a length spec must be a non-empty string, got {spec!r}")
    spec = spec.strip()
    if spec.endswith(","):
        raise SpecError(f"{spec!r}: stray comma at the end")
    try:
        law, kw = _build(spec, _base_cap(spec))
        if "shift" in kw:
            law = law.shift(_integer(str(kw["shift"]), spec, "shift"))
        if "max" in kw:
            cap = _integer(str(kw["max"]), spec, "max")
            if cap < 1:
                raise SpecError(f"{spec!r}: max must be ≥ 1")
            law = law.clip(cap)
        elif not math.isfinite(law.mean):
            raise SpecError(
                f"{spec!r}: E[X] is infinite for this law (no token-count law of any use has that); "
                f"clip it with max=L, e.g. '{spec},max=4096'"
            )
    except SpecError:
        raise
    except WorkloadError as exc:
        raise SpecError(f"{spec!r}: {exc}") from None
    object.__setattr__(law, "label", spec)
    return law


def _base_cap(spec: str) -> int | None:
    """The clip on the *unshifted* law (max − shift) when the spec has a valid max=, else None.

    Only an optimisation: the caller still shifts and clips, which is then a no-op.
    """
    tail = spec.split(")")[-1] if spec.startswith("scipy:") else spec.partition(":")[2]
    try:
        _, kw = parse_params(tail, spec)
        cap = _integer(str(kw["max"]), spec, "max") - _integer(str(kw.get("shift", 0)), spec, "shift")
    except (SpecError, KeyError):
        return None
    return cap if cap >= 0 else None


def _build(spec: str, cap: int | None = None) -> tuple[TokenLaw, dict[str, float]]:
    """The base law of a spec and its keyword parameters (max/shift applied by the caller)."""
    if spec.startswith("scipy:"):
        law, rest = _scipy_law(spec, cap)
        pos, kw = parse_params(rest, spec)
        if pos:
            raise SpecError(f"{spec!r}: after scipy:NAME(...) only shift= and max= may follow")
        _take(kw, {"max", "shift"}, spec, "scipy:NAME(...) followed by")
    elif ":" in spec:
        family, _, args = spec.partition(":")
        family = family.strip().lower()
        if family not in _FAMILIES:
            raise SpecError(
                f"{spec!r}: unknown family {family!r}; use an integer or one of "
                + ", ".join(f"{f}:" for f in _FAMILIES)
            )
        pos, kw = parse_params(args, spec)
        law_kw = {k: v for k, v in kw.items() if k not in ("max", "shift")}
        law = _family_law(family, pos, law_kw, spec, cap)
    else:
        head, _, rest = spec.partition(",")
        if head.strip().lower() in _FAMILIES:
            raise SpecError(f"{spec!r}: {head.strip()} needs its parameters after a colon, e.g. "
                            "geom:mean=200, uniform:1,100, zipf:a=2.5,max=4096")
        n = _integer(head, spec, "a deterministic length")
        if n < 0:
            raise SpecError(f"{spec!r}: a length must be ≥ 0")
        law = TokenLaw.deterministic(n, head)
        pos, kw = parse_params(rest, spec)
        if pos:
            raise SpecError(f"{spec!r}: after an integer only max= and shift= may follow")
        _take(kw, {"max", "shift"}, spec, "an integer followed by")
    return law, kw
