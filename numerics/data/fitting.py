r"""Maximum-likelihood fits of token-length laws to observed lengths, as spec strings.

The candidate families are the *discretised* laws exactly as :func:`numerics.model.specs.parse_law`
builds them, optionally clipped at a serving cap L (``max=L``: the mass above L becomes an atom
at L):

* ``lognormal:median=m,sigma=σ`` — :math:`X = \lceil Y \rceil`, :math:`\log Y \sim N(\log m, σ^2)`,
  so :math:`P(X = x) = Φ(z_x) - Φ(z_{x-1})` with :math:`z_x = (\log x - \log m)/σ`, x ≥ 1;
* ``nbinom:n=r,p=q,shift=k`` — :math:`X = k + K`, :math:`K \sim \mathrm{NegBin}(r, q)`
  (failures before the r-th success), with the shift k fixed at the smallest observation
  (never below the structural minimum: 0 for prompts, 1 for decode lengths);
* ``geom:mean=μ`` — geometric on {1, 2, ...}: :math:`P(X = x) = q(1-q)^{x-1}`, q = 1/μ.

With a clip L an observation x < L contributes :math:`\log P(X = x)` and an observation at L the
*survival* mass :math:`\log P(X \ge L)` (a censored observation), which is what ``max=L`` stores
at L. The geometric MLE is closed-form, :math:`\hat q = B / (B + A)` with B the number of
uncensored observations and :math:`A = \sum_{x<L} (x - 1) + \#\{x = L\}(L - 1)`; the other two
maximise the likelihood numerically (Nelder–Mead on unconstrained parameters, from moment
estimates).

Fitted parameters are rounded to 4 significant digits so that the spec stays short, and every
reported quality number is computed for the **rounded** spec, from the :class:`TokenLaw` that
``parse_law`` builds from it: the log-likelihood, AIC = 2k − 2 log L (k free parameters; a shift
above the structural minimum counts as one), the Kolmogorov distance
:math:`\sup_x |\hat F_n(x) - F(x)|` over the integers, and the fitted mean. The family with the
lowest AIC wins.

:func:`fit_preset` fits a trace's prompt and decode lengths independently, each clipped at the
trace's maximum, and compares the memory-time :math:`E[W] = E[S\,O + O(O+1)/2]` of the trace with
that of the fitted independent pair. ``python -m numerics.data.fitting`` refits every preset from the
data folder and prints the block stored in :mod:`numerics.data.presets`.

Examples
--------
>>> import numpy as np
>>> samples = np.random.default_rng(1).geometric(0.01, size=2000)
>>> fit = fit_length_law(samples, families=("geom",))
>>> fit.spec
'geom:mean=99.02'
>>> fit.aic == 2 * 1 - 2 * fit.loglik
True
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

import numpy as np
from numpy.typing import ArrayLike
from scipy import optimize, special

from numerics.data.traces import Trace, load_trace
from numerics.errors import FlowstabError, WorkloadError
from numerics.model.laws import TokenLaw
from numerics.model.specs import parse_law
from numerics.model.workload import Workload

__all__ = [
    "FAMILIES",
    "SIG_DIGITS",
    "FitFamily",
    "FitResult",
    "PresetFit",
    "fit_length_law",
    "fit_preset",
    "main",
    "stored_block",
]

#: The length families that can be fitted (spec-string family names).
FitFamily = Literal["lognormal", "nbinom", "geom"]
#: The families :func:`fit_length_law` tries by default.
FAMILIES: tuple[FitFamily, ...] = get_args(FitFamily)
#: Fitted parameters are rounded to this many significant digits in the spec.
SIG_DIGITS = 4
#: Nelder–Mead stopping tolerances on the (log-scale) parameters and on the mean negative
#: log-likelihood per sample: far below the 4-significant-digit rounding (relative 5e-5), so the
#: rounded spec is reproducible, and above float rounding of the objective (~1e-15).
_XATOL = 1e-9
_FATOL = 1e-12
#: NegBin size parameters are kept in [1e-4, 1e8] (above 1e8 it is a Poisson to double precision).
_LOG_N_BOUNDS = (math.log(1e-4), math.log(1e8))


@dataclass(frozen=True)
class FitResult:
    """The best-fitting law of one length sample.

    Attributes
    ----------
    family : str
        ``"lognormal"``, ``"nbinom"`` or ``"geom"``.
    spec : str
        A :func:`~numerics.model.specs.parse_law` spec with parameters rounded to 4 significant digits.
    loglik : float
        Log-likelihood of the samples under the rounded spec's law.
    aic : float
        2k − 2·loglik.
    ks : float
        Kolmogorov distance between the empirical CDF and the law's CDF over the integers.
    mean_fit, mean_data : float
        Mean of the law and of the samples (clipped at ``max_tokens``).
    n_samples : int
        Number of samples.
    candidates : tuple of (family, spec, aic)
        Every family tried, in the order given (aic = inf when the family cannot produce the data).
    """

    family: FitFamily
    spec: str
    loglik: float
    aic: float
    ks: float
    mean_fit: float
    mean_data: float
    n_samples: int = 0
    candidates: tuple[tuple[str, str, float], ...] = ()
    _law: TokenLaw | None = field(default=None, repr=False, compare=False)

    def law(self) -> TokenLaw:
        """The fitted law (``parse_law(spec)``)."""
        return self._law if self._law is not None else parse_law(self.spec)


@dataclass(frozen=True)
class PresetFit:
    """Independent prompt and decode fits to a trace, with the memory-time they imply.

    Attributes
    ----------
    source : str
        The trace file.
    n_requests : int
    rate_per_s : float or None
        The trace's mean arrival rate (None without timestamps).
    prompt, decode : FitResult
    mean_memory_time_data : float
        E[S·O + O(O+1)/2] over the trace's rows (S and O as observed, dependence included).
    mean_memory_time_fit : float
        E[W] of ``Workload.single(parse_law(prompt.spec), parse_law(decode.spec))`` (S ⊥ O).
    rel_err_memory_time : float
        (fit − data) / data.
    so_correlation : float
        Pearson correlation of S and O in the trace (the fit assumes 0).
    """

    source: str
    n_requests: int
    rate_per_s: float | None
    prompt: FitResult
    decode: FitResult
    mean_memory_time_data: float
    mean_memory_time_fit: float
    rel_err_memory_time: float
    so_correlation: float

    def workload(self, name: str = "fitted") -> Workload:
        """The fitted one-class workload (independent S and O)."""
        return Workload.single(self.prompt.law(), self.decode.law(), name=name)


# ---------------------------------------------------------------------- the data, tabulated
@dataclass(frozen=True)
class _Tally:
    """Distinct values with their counts; ``clip`` is L (None: no clip)."""

    values: np.ndarray  # int64, sorted
    counts: np.ndarray  # float
    clip: int | None

    @property
    def n(self) -> float:
        return float(self.counts.sum())

    @property
    def censored(self) -> np.ndarray:
        if self.clip is None:
            return np.zeros(self.values.shape, dtype=bool)
        return self.values == self.clip


def _tally(samples, max_tokens: int | None, min_length: int, label: str) -> _Tally:
    x = np.asarray(samples)
    if x.ndim != 1 or x.size == 0:
        raise WorkloadError(f"{label}: need a non-empty 1-d array of lengths to fit")
    if not np.issubdtype(x.dtype, np.number) or np.any(~np.isfinite(x)):
        raise WorkloadError(f"{label}: lengths must be finite numbers")
    if np.any(x != np.round(x)):
        raise WorkloadError(f"{label}: lengths must be integers")
    x = x.astype(np.int64)
    if x.min() < min_length:
        raise WorkloadError(
            f"{label}: {int(np.sum(x < min_length))} lengths are below {min_length}, the smallest "
            "possible value (decode lengths must be ≥ 1)"
        )
    if max_tokens is not None:
        if int(max_tokens) != max_tokens or max_tokens < max(1, min_length):
            raise WorkloadError(
                f"{label}: max_tokens must be an integer ≥ {max(1, min_length)}, got {max_tokens!r}"
            )
        x = np.minimum(x, int(max_tokens))
    values, counts = np.unique(x, return_counts=True)
    if values.size < 2:
        raise WorkloadError(
            f"{label}: every length equals {int(values[0])}; nothing to fit (use the "
            f"deterministic spec '{int(values[0])}')"
        )
    return _Tally(values, counts.astype(float), None if max_tokens is None else int(max_tokens))


# ---------------------------------------------------------------------- likelihoods
def _log_ndtr_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """log(Φ(b) − Φ(a)) for a < b, accurate in both tails."""
    upper = a > 0  # both in the upper tail: Φ(b) − Φ(a) = Φ(−a) − Φ(−b)
    lo = np.where(upper, -b, a)
    hi = np.where(upper, -a, b)
    log_hi = special.log_ndtr(hi)
    log_lo = special.log_ndtr(lo)
    return log_hi + np.log(-np.expm1(log_lo - log_hi))


def _lognormal_loglik(mu: float, sigma: float, t: _Tally) -> float:
    v = t.values.astype(float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        z_hi = (np.log(v) - mu) / sigma
        z_lo = (np.log(v - 1.0) - mu) / sigma  # −inf at x = 1: P(X = 1) = Φ(z_1)
        logp = _log_ndtr_diff(z_lo, z_hi)
        cens = t.censored
        logp[cens] = special.log_ndtr(-z_lo[cens])  # P(X ≥ L) = P(Y > L − 1)
    total = float(np.dot(t.counts, logp))
    return total if math.isfinite(total) else -math.inf


def _nbinom_loglik(n: float, p: float, shift: int, t: _Tally) -> float:
    k = (t.values - shift).astype(float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        logp = (
            special.gammaln(k + n)
            - special.gammaln(n)
            - special.gammaln(k + 1)
            + n * math.log(p)
            + k * math.log1p(-p)
        )
        cens = t.censored
        # P(K ≥ m) = 1 − I_p(n, m) = I_{1−p}(m, n), m = L − shift.
        logp[cens] = np.log(special.betainc(k[cens], n, 1.0 - p))
    total = float(np.dot(t.counts, logp))
    return total if math.isfinite(total) else -math.inf


def _minimise(fun, x0: Sequence[float], n: float) -> np.ndarray:
    """Minimise fun(x) / n (a negative log-likelihood over n samples) from x0."""

    def safe(x):
        value = fun(x) / n
        return value if math.isfinite(value) else 1e300

    res = optimize.minimize(
        safe,
        np.asarray(x0, dtype=float),
        method="Nelder-Mead",
        options={"xatol": _XATOL, "fatol": _FATOL, "maxiter": 20_000, "maxfev": 40_000},
    )
    return np.asarray(res.x, dtype=float)


def _fit_lognormal(t: _Tally, min_length: int) -> dict[str, float] | None:
    if t.values[0] < 1:
        return None  # ⌈Y⌉ ≥ 1: cannot produce a 0
    logs = np.log(t.values - 0.5)
    w = t.counts / t.n
    mu0 = float(np.dot(w, logs))
    sd0 = max(float(np.sqrt(np.dot(w, (logs - mu0) ** 2))), 1e-3)
    x = _minimise(
        lambda th: -_lognormal_loglik(th[0], math.exp(th[1]), t), (mu0, math.log(sd0)), t.n
    )
    return {"median": math.exp(x[0]), "sigma": math.exp(x[1])}


def _fit_nbinom(t: _Tally, min_length: int) -> dict[str, float] | None:
    shift = max(int(t.values[0]), min_length)
    k = t.values - shift
    w = t.counts / t.n
    m = float(np.dot(w, k))
    var = float(np.dot(w, (k - m) ** 2))
    if m <= 0:
        return None
    if var > m * (1 + 1e-6):
        p0 = m / var
        n0 = m * p0 / (1 - p0)
    else:  # under-dispersed: the likelihood increases toward the Poisson limit
        n0 = 1e6
        p0 = n0 / (n0 + m)
    lo, hi = _LOG_N_BOUNDS

    def negll(th):
        log_n = min(max(th[0], lo), hi)
        p = special.expit(th[1])
        if not 0 < p < 1:
            return math.inf
        return -_nbinom_loglik(math.exp(log_n), p, shift, t)

    x = _minimise(negll, (math.log(n0), special.logit(p0)), t.n)
    n = math.exp(min(max(x[0], lo), hi))
    return {"n": n, "p": float(special.expit(x[1])), "shift": shift}


def _fit_geom(t: _Tally, min_length: int) -> dict[str, float] | None:
    if t.values[0] < 1:
        return None  # geometric on {1, 2, ...}
    cens = t.censored
    uncensored = float(t.counts[~cens].sum())
    a = float(np.dot(t.counts[~cens], t.values[~cens] - 1))
    if t.clip is not None:
        a += float(t.counts[cens].sum()) * (t.clip - 1)
    if uncensored == 0:
        return None
    q = uncensored / (uncensored + a)
    return {"mean": 1.0 / q}


_FITTERS = {"lognormal": _fit_lognormal, "nbinom": _fit_nbinom, "geom": _fit_geom}


# ---------------------------------------------------------------------- specs and quality
def _round_sig(x: float, digits: int = SIG_DIGITS) -> float:
    if x == 0 or not math.isfinite(x):
        return x
    return round(x, digits - 1 - math.floor(math.log10(abs(x))))


def _fmt(x: float) -> str:
    return np.format_float_positional(_round_sig(x), trim="-")


def _spec(family: str, params: dict[str, float], clip: int | None) -> str:
    if family == "lognormal":
        spec = f"lognormal:median={_fmt(params['median'])},sigma={_fmt(params['sigma'])}"
    elif family == "nbinom":
        spec = f"nbinom:n={_fmt(params['n'])},p={_fmt(params['p'])}"
        if params["shift"]:
            spec += f",shift={int(params['shift'])}"
    else:
        spec = f"geom:mean={_fmt(params['mean'])}"
    return spec if clip is None else f"{spec},max={clip}"


def _n_params(family: str, params: dict[str, float], min_length: int) -> int:
    if family == "geom":
        return 1
    if family == "nbinom":
        return 2 + int(params["shift"] > min_length)
    return 2


def _law_loglik(law: TokenLaw, t: _Tally) -> float:
    idx = np.minimum(np.searchsorted(law.values, t.values), law.values.size - 1)
    mass = np.where(law.values[idx] == t.values, law.probs[idx], 0.0)
    with np.errstate(divide="ignore"):
        total = float(np.dot(t.counts, np.log(mass)))
    return total if math.isfinite(total) else -math.inf


def _ks(law: TokenLaw, t: _Tally) -> float:
    """sup_x |F_n(x) − F(x)|: both CDFs step only at integers, and past the largest sample F_n = 1
    while F only grows, so the integers 0..max sample suffice."""
    grid = np.arange(int(t.values[-1]) + 1)
    emp = np.cumsum(np.bincount(t.values, weights=t.counts, minlength=grid.size)) / t.n
    fit = 1.0 - np.asarray(law.sf(grid), dtype=float)
    return float(np.max(np.abs(emp - fit)))


def fit_length_law(
    samples: ArrayLike,
    *,
    max_tokens: int | None = None,
    families: Sequence[FitFamily] = FAMILIES,
    min_length: int = 0,
    label: str = "lengths",
) -> FitResult:
    """Fit each family by maximum likelihood and return the one with the lowest AIC.

    Parameters
    ----------
    samples : array of int
        Observed lengths.
    max_tokens : int, optional
        Serving cap L: the laws are clipped at L (``,max=L``) and samples above L count as L.
    families : sequence of str
        Any of ``"lognormal"``, ``"nbinom"``, ``"geom"``.
    min_length : int
        The smallest possible length: 0 for prompts, 1 for decode lengths. The negative-binomial
        shift is the smallest sample but never below it.
    label : str
        Names the sample in error messages.

    Returns
    -------
    FitResult

    Raises
    ------
    WorkloadError
        On invalid samples, an unknown family, or when no family can produce the data (e.g. zeros
        with only lognormal and geom).
    """
    families = tuple(families)
    unknown = [f for f in families if f not in _FITTERS]
    if unknown or not families:
        raise WorkloadError(
            f"{label}: unknown famil{'ies' if len(unknown) > 1 else 'y'} "
            f"{', '.join(map(repr, unknown)) or '(none given)'}; choose from {', '.join(FAMILIES)}"
        )
    t = _tally(samples, max_tokens, int(min_length), label)
    candidates: list[tuple[str, str, float]] = []
    best: tuple[float, str, str, float, TokenLaw] | None = None
    for family in families:
        params = _FITTERS[family](t, int(min_length))
        if params is None:
            candidates.append((family, "", math.inf))
            continue
        spec = _spec(family, params, t.clip)
        try:
            law = parse_law(spec)
        except FlowstabError:  # a rounded parameter left the family's domain (e.g. p = 1)
            candidates.append((family, spec, math.inf))
            continue
        loglik = _law_loglik(law, t)
        aic = 2 * _n_params(family, params, int(min_length)) - 2 * loglik
        candidates.append((family, spec, aic))
        if math.isfinite(aic) and (best is None or aic < best[0]):
            best = (aic, family, spec, loglik, law)
    if best is None:
        raise WorkloadError(
            f"{label}: none of {', '.join(families)} can produce these lengths (smallest "
            f"{int(t.values[0])}); include 'nbinom', which shifts to the smallest value"
        )
    aic, family, spec, loglik, law = best
    return FitResult(
        family=family,
        spec=spec,
        loglik=loglik,
        aic=aic,
        ks=_ks(law, t),
        mean_fit=law.mean,
        mean_data=float(np.dot(t.values, t.counts) / t.n),
        n_samples=int(t.n),
        candidates=tuple(candidates),
        _law=law,
    )


def fit_preset(
    trace: Trace,
    *,
    max_prompt: int | None = None,
    max_decode: int | None = None,
    families: Sequence[FitFamily] = FAMILIES,
) -> PresetFit:
    """Fit a trace's prompt and decode lengths independently and compare memory-times.

    Parameters
    ----------
    trace : Trace
    max_prompt, max_decode : int, optional
        Clips; the trace's largest prompt and decode length by default (e.g. 1000 for Azure conv,
        its serving ``max_tokens``).
    families : sequence of str
        Candidate families for both fits.

    Returns
    -------
    PresetFit
    """
    name = Path(trace.source).name
    lp = int(trace.prompt.max()) if max_prompt is None else max_prompt
    lo = int(trace.decode.max()) if max_decode is None else max_decode
    prompt = fit_length_law(
        trace.prompt, max_tokens=lp, families=families, min_length=0, label=f"{name} prompt"
    )
    decode = fit_length_law(
        trace.decode, max_tokens=lo, families=families, min_length=1, label=f"{name} decode"
    )
    s = trace.prompt.astype(float)
    o = trace.decode.astype(float)
    data = float(np.mean(s * o + o * (o + 1) / 2))
    fit = Workload.single(prompt.law(), decode.law()).mean_memory_time
    corr = float(np.corrcoef(s, o)[0, 1]) if np.std(s) > 0 and np.std(o) > 0 else 0.0
    return PresetFit(
        source=trace.source,
        n_requests=trace.n_requests,
        rate_per_s=trace.rate_per_s,
        prompt=prompt,
        decode=decode,
        mean_memory_time_data=data,
        mean_memory_time_fit=fit,
        rel_err_memory_time=(fit - data) / data,
        so_correlation=corr,
    )


# ---------------------------------------------------------------------- the preset block
def _g6(x: float | None) -> str:
    return "None" if x is None else repr(float(f"{x:.6g}"))


def stored_block(fits: dict[str, PresetFit]) -> str:
    """The ``_FITTED`` literal that :mod:`numerics.data.presets` stores, for the given fits."""
    import scipy

    lines = [
        f"# Written by `python -m numerics.data.fitting` (numpy {np.__version__}, "
        f"scipy {scipy.__version__}).",
        "_FITTED: dict[str, dict[str, Any]] = {",
    ]
    for name, f in fits.items():
        lines.append(f"    {json.dumps(name)}: {{")
        lines += [
            f"        {json.dumps(key)}: {value},"
            for key, value in (
                ("prompt_spec", json.dumps(f.prompt.spec)),
                ("decode_spec", json.dumps(f.decode.spec)),
                ("n_requests", f.n_requests),
                ("rate_per_s", _g6(f.rate_per_s)),
                ("ks_prompt", _g6(f.prompt.ks)),
                ("ks_decode", _g6(f.decode.ks)),
                ("mean_memory_time_data", _g6(f.mean_memory_time_data)),
                ("mean_memory_time_fit", _g6(f.mean_memory_time_fit)),
                ("rel_err_memory_time", _g6(f.rel_err_memory_time)),
                ("so_correlation", _g6(f.so_correlation)),
            )
        ]
        lines.append("    },")
    lines.append("}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Refit the presets (all, or those named in ``argv``) and print the stored-numbers block.

    Returns the exit status: 0, or 2 with a one-line message on stderr when data is missing.
    """
    from numerics.data.presets import PRESETS, data_dir

    names = list(sys.argv[1:] if argv is None else argv) or list(PRESETS)
    folder = data_dir()
    if folder is None:
        print(
            "error: no data folder: put the traces in shared/data beside the repository or set "
            "FLOWSTAB_DATA to their folder",
            file=sys.stderr,
        )
        return 2
    fits: dict[str, PresetFit] = {}
    try:
        for name in names:
            if name not in PRESETS:
                raise WorkloadError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
            fits[name] = fit_preset(load_trace(folder / PRESETS[name].data_file))
            f = fits[name]
            print(
                f"# {name}: prompt {f.prompt.spec} (KS {f.prompt.ks:.4f}), decode "
                f"{f.decode.spec} (KS {f.decode.ks:.4f}), E[W] fit/data - 1 = "
                f"{f.rel_err_memory_time:+.2%}",
                file=sys.stderr,
            )
    except FlowstabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(stored_block(fits))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
