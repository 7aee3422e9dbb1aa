r"""Memory-time W = S·O + O(O+1)/2 and its mean, derived by sympy summation.

Numeric twins: ``memory_time`` and ``mean_memory_time`` in :mod:`numerics.analysis.conditions`
(``tests/test_twins.py`` checks that they agree).

A request holds S + k tokens in its k-th active slot (k = 1..O), so it occupies

.. math:: W = \sum_{k=1}^{O} (S + k) = S\,O + \frac{O(O+1)}{2}

memory-slots, and with S ⊥ O, :math:`E[W] = E[S]E[O] + (E[O^2] + E[O])/2`. The decode moments of
each family below are *derived* here by summing over its PMF (or, for the negative binomial, by
summing its probability generating function and differentiating) — none is typed in.

Examples
--------
>>> import sympy as sp
>>> mean_memory_time("geometric", mean_prompt=100, p=sp.Rational(1, 200))
60000
>>> decode_moments("uniform", low=1, high=100)
(101/2, 6767/2)
"""

from __future__ import annotations

from functools import cache
from typing import Literal, get_args

import sympy as sp

from theory.registry import Result, register
from theory.symbols import O, Quantity, S, j, k, z

__all__ = [
    "FAMILIES",
    "DecodeFamily",
    "decode_moments",
    "mean_memory_time",
    "memory_time",
    "memory_time_by_summation",
]

#: The decode-length families whose moments are derived here.
DecodeFamily = Literal["deterministic", "geometric", "uniform", "shifted_poisson", "shifted_nbinom"]
FAMILIES: tuple[DecodeFamily, ...] = get_args(DecodeFamily)

# Family parameters as symbols with the assumptions their sums need.
_o0 = sp.Symbol("o0", integer=True, positive=True)
_p = sp.Symbol("p", positive=True)
_lo = sp.Symbol("low", integer=True, positive=True)
_hi = sp.Symbol("high", integer=True, positive=True)
_mu = sp.Symbol("mu", positive=True)
_n = sp.Symbol("n", positive=True)
_shift = sp.Symbol("shift", integer=True, nonnegative=True)
_q = sp.Symbol("q", positive=True)  # 1 - p, kept separate so sympy sees 0 < q

PARAMETERS = {
    "deterministic": {"o": _o0},
    "geometric": {"p": _p},
    "uniform": {"low": _lo, "high": _hi},
    "shifted_poisson": {"mu": _mu, "shift": _shift},
    "shifted_nbinom": {"n": _n, "p": _p, "shift": _shift},
}


def memory_time(prompt: Quantity, decode: Quantity) -> sp.Expr:
    """W = S·O + O(O+1)/2 (sympy; exact for Rationals)."""
    prompt, decode = sp.sympify(prompt), sp.sympify(decode)
    return prompt * decode + decode * (decode + 1) / 2


def memory_time_by_summation() -> sp.Expr:
    """Σ_{k=1}^{O} (S + k), summed by sympy (equals :func:`memory_time` (S, O))."""
    return sp.expand(sp.summation(S + k, (k, 1, O)))


def _first_branch(expr: sp.Expr) -> sp.Expr:
    """Replace each Piecewise by its first (convergent) branch.

    sympy returns geometric-type sums as Piecewise((closed form, |x| < 1), (Sum, True)); with
    0 < q = 1 - p < 1 and |z| ≤ 1 the first condition holds, which the tests confirm at every
    rational point they evaluate.
    """
    for pw in sorted(expr.atoms(sp.Piecewise), key=sp.count_ops, reverse=True):
        expr = expr.subs(pw, pw.args[0][0])
    return expr


@cache
def _moments(family: DecodeFamily) -> tuple[sp.Expr, sp.Expr]:
    """(E[O], E[O²]) in the family's parameter symbols."""
    if family == "deterministic":
        pmf_sum = lambda f: sp.summation(f(O), (O, _o0, _o0))  # noqa: E731 - a point mass
        return pmf_sum(lambda o: o), pmf_sum(lambda o: o**2)
    if family == "geometric":
        pmf = _p * _q ** (O - 1)
        m1 = _first_branch(sp.summation(O * pmf, (O, 1, sp.oo)))
        m2 = _first_branch(sp.summation(O**2 * pmf, (O, 1, sp.oo)))
        return sp.simplify(m1.subs(_q, 1 - _p)), sp.simplify(m2.subs(_q, 1 - _p))
    if family == "uniform":
        w = 1 / (_hi - _lo + 1)
        m1 = sp.summation(O * w, (O, _lo, _hi))
        m2 = sp.summation(O**2 * w, (O, _lo, _hi))
        return sp.factor(sp.simplify(m1)), sp.factor(sp.simplify(m2))
    if family == "shifted_poisson":
        pmf = sp.exp(-_mu) * _mu**j / sp.factorial(j)
        m1 = sp.summation((j + _shift) * pmf, (j, 0, sp.oo))
        m2 = sp.summation((j + _shift) ** 2 * pmf, (j, 0, sp.oo))
        return sp.expand(sp.simplify(m1)), sp.expand(sp.simplify(m2))
    if family == "shifted_nbinom":
        # PGF by summation: Σ_j C(j+n-1, j) p^n (q z)^j = p^n (1 - q z)^(-n); O = shift + J.
        pgf = _first_branch(
            sp.summation(sp.binomial(j + _n - 1, j) * _p**_n * (_q * z) ** j, (j, 0, sp.oo))
        )
        pgf = (z**_shift * pgf).subs(_q, 1 - _p)
        m1 = sp.simplify(sp.diff(pgf, z).subs(z, 1))
        factorial2 = sp.simplify(sp.diff(pgf, z, 2).subs(z, 1))  # E[O(O-1)]
        return m1, sp.simplify(factorial2 + m1)
    raise ValueError(f"unknown family {family!r}; choose from {', '.join(FAMILIES)}")


def decode_moments(family: DecodeFamily, **params: Quantity) -> tuple[sp.Expr, sp.Expr]:
    """(E[O], E[O²]) of a decode family, symbolic or at the given parameter values.

    Parameters: deterministic ``o``; geometric ``p`` (on {1, 2, ...}); uniform ``low, high``;
    shifted_poisson ``mu, shift``; shifted_nbinom ``n, p, shift``.
    """
    if family not in PARAMETERS:
        raise ValueError(f"unknown family {family!r}; choose from {', '.join(FAMILIES)}")
    unknown = set(params) - set(PARAMETERS[family])
    if unknown:
        raise ValueError(f"{family} takes {', '.join(PARAMETERS[family])}; got {sorted(unknown)}")
    subs = {PARAMETERS[family][name]: sp.nsimplify(v) for name, v in params.items()}
    m1, m2 = _moments(family)
    return sp.simplify(m1.subs(subs)), sp.simplify(m2.subs(subs))


def mean_memory_time(family: DecodeFamily, mean_prompt: Quantity = S, **params: Quantity) -> sp.Expr:
    """E[W] = E[S]·E[O] + (E[O²] + E[O])/2 for S ⊥ O and a decode family."""
    m1, m2 = decode_moments(family, **params)
    return sp.simplify(sp.sympify(mean_prompt) * m1 + (m2 + m1) / 2)


register(
    Result(
        id="def:memory-time",
        title="Memory-time of a request",
        statement="A request with prompt S and decode O occupies W = Σ_{k=1}^{O} (S+k) = S·O + "
        "O(O+1)/2 memory-slots.",
        hypotheses=("one token per active slot", "S + k tokens held in the k-th active slot"),
        source="Dong & Cao (arXiv:2604.11001) §2, w_k; docs/theory.md §8.1",
        latex=r"W = \sum_{k=1}^{O}(S+k) = S\,O + \tfrac{O(O+1)}{2}",
        twin="memory_time",
    )
)
register(
    Result(
        id="thm:mean-memory-time",
        title="Closed forms of E[W]",
        statement="With S ⊥ O, E[W] = E[S]E[O] + (E[O²]+E[O])/2; closed forms for deterministic, "
        "geometric, uniform{a..b}, shifted Poisson and shifted negative binomial decode laws "
        "(e.g. geometric(p): E[W] = E[S]/p + 1/p²).",
        hypotheses=("S independent of O", "O ≥ 1"),
        source="docs/theory.md §8.4 (derived); here re-derived by sympy summation",
        latex=r"E[W] = E[S]\,E[O] + \tfrac{E[O^2] + E[O]}{2}",
        twin="mean_memory_time",
    )
)
