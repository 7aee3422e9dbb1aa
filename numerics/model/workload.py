r"""Workloads: request classes of (prompt S, decode O) laws with arrival rates per slot.

This is the one currency every layer takes. A request of class k has prompt length S and decode
length O ≥ 1; activated at slot τ it holds S + j tokens during its j-th active slot, so at age
a = 0, 1, ... it contributes

.. math:: X_a = (S + a + 1)\,\mathbf 1\{O > a\},

and over its life it uses the memory-time :math:`W = \sum_{j=1}^{O}(S + j) = S\,O + O(O+1)/2`.
The per-age quantities :math:`G(a) = P(O > a)`, :math:`\mu_a = E[X_a]`, :math:`\nu_a = E[X_a^2]`
and :math:`\log E[e^{\theta X_a}; O > a]` are what the flow-control variance, the tail bounds and
the exact tails need; each length model computes them exactly.

Two length models:

* :class:`IndependentLengths` — S ⊥ O, each a :class:`~numerics.model.laws.TokenLaw`;
* :class:`JointLengths` — a joint empirical (S, O) law (a trace).

A :class:`Workload` is one or more :class:`RequestClass` es; its arrivals are the superposition of
the classes', so under FIFO activation each activated request is class k with probability
π_k = λ_k / Σ λ_j: the workload's per-request law is the π-mixture of the classes' laws.

Examples
--------
>>> from numerics.model.specs import parse_law
>>> wl = Workload.single(parse_law("100"), parse_law("geom:mean=200"))
>>> round(wl.mean_memory_time, 6)
60000.0
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import ArrayLike

from numerics.errors import SettingError, UnstableWorkloadError, WorkloadError
from numerics.model.frames import as_law
from numerics.model.laws import TokenLaw

__all__ = [
    "IndependentLengths",
    "JointLengths",
    "Lengths",
    "RequestClass",
    "Workload",
    "as_law",
    "check_hard_cap",
    "ensure_memory",
]


def _log(x: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(x)


def _support_log_mgf(law: TokenLaw, theta: np.ndarray, cache: dict) -> np.ndarray:
    """:meth:`TokenLaw.log_mgf` at each θ (shape of ``theta``): a max-shifted log-sum-exp, one
    exp per support point, with log p_i computed once and kept in ``cache``."""
    if "support" not in cache:
        keep = law.probs > 0
        cache["support"] = (np.log(law.probs[keep]), law.values[keep].astype(float))
    log_p, values = cache["support"]
    th = np.atleast_1d(theta).astype(float)
    if values.size == 1:
        out = log_p[0] + th * values[0]
    else:
        x = log_p + th[:, None] * values
        top = np.max(x, axis=1)
        with np.errstate(invalid="ignore"):  # top = +∞ (θ·v overflowed) stays +∞
            out = np.where(np.isfinite(top), top + np.log(np.sum(np.exp(x - top[:, None]), axis=1)), top)
    return out.reshape(np.shape(theta))


@dataclass(frozen=True, eq=False)
class IndependentLengths:
    """Prompt S and decode O independent, each a :class:`TokenLaw`."""

    prompt: TokenLaw
    decode: TokenLaw

    def __post_init__(self) -> None:
        if not isinstance(self.prompt, TokenLaw) or not isinstance(self.decode, TokenLaw):
            raise WorkloadError("prompt and decode must be TokenLaw objects (see numerics.model.specs)")
        p0 = self.decode.prob_zero()
        if p0 > 0:
            raise WorkloadError(
                f"decode law {self.decode.label} puts mass {p0:.3g} at O = 0; decode lengths "
                "must be ≥ 1: shift it (e.g. add ',shift=1') or use a law on {1, 2, ...}"
            )

    @property
    def label(self) -> str:
        return f"S ~ {self.prompt.label}, O ~ {self.decode.label}"

    @property
    def prompt_law(self) -> TokenLaw:
        return self.prompt

    @property
    def decode_law(self) -> TokenLaw:
        return self.decode

    @property
    def mean_memory_time(self) -> float:
        """E[W] = E[S]·E[O] + (E[O²] + E[O])/2."""
        s, o = self.prompt, self.decode
        return s.mean * o.mean + (o.second_moment + o.mean) / 2

    @property
    def mean_prompt_times_decode(self) -> float:
        return self.prompt.mean * self.decode.mean

    @property
    def n_ages(self) -> int:
        """Number of stored ages a = 0..n_ages-1 with P(O > a) possibly > 0 (stored support)."""
        return int(self.decode.values[-1])

    def prob_total_exceeds(self, memory_tokens: float) -> float:
        """P(S + O > M)."""
        s = self.prompt
        tail_o = np.asarray(self.decode.sf(memory_tokens - s.values), dtype=float)
        return float(min(1.0, np.sum(s.probs * tail_o) + s.tail_mass))

    def age_moments(self, n_ages: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(G, μ, ν) over ages a < n_ages: P(O>a), E[(S+a+1)1{O>a}], E[(S+a+1)²1{O>a}]."""
        g = self.decode.survival_by_age(n_ages)
        c = np.arange(1, n_ages + 1, dtype=float)
        es, es2 = self.prompt.mean, self.prompt.second_moment
        return g, (es + c) * g, (es2 + 2 * c * es + c * c) * g

    def max_held_by_age(self, n_ages: int) -> np.ndarray:
        """The most tokens a request active at age a can hold, max(S + a + 1); 0 past O's support."""
        a = np.arange(n_ages, dtype=float)
        return np.where(a < self.decode.max_value, self.prompt.max_value + a + 1, 0.0)

    def age_log_mgf(self, theta: float | ArrayLike, n_ages: int) -> np.ndarray:
        """log E[e^{θ(S+a+1)}; O > a] for a < n_ages (over the stored supports); a 1-d array of
        θ gives one row per θ. log P(O > a) is computed once per ``n_ages`` and kept."""
        cache = self.__dict__.setdefault("_mgf_cache", {})  # frozen dataclass: no __setattr__
        if n_ages not in cache:
            cache[n_ages] = (_log(self.decode.survival_by_age(n_ages)),
                             np.arange(1, n_ages + 1, dtype=float))
        log_g, ages = cache[n_ages]
        th = np.asarray(theta, dtype=float)
        log_ms = _support_log_mgf(self.prompt, th, cache)
        if th.ndim == 0:
            return log_g + float(th) * ages + float(log_ms)
        return log_g + th[:, None] * ages + log_ms[:, None]

    def truncation_excess(self) -> float:
        """E[#requests per activation cohort-age beyond the stored support], per activation.

        The expected number of active requests (per unit activation rate) whose decode runs past
        the stored decode support, or whose prompt lies beyond the stored prompt support:
        E[(O - N_O)^+] + E[O]·P(S > N_S). Zero for bounded laws.
        """
        return self.decode.tail_excess + self.decode.mean * self.prompt.tail_mass

    @property
    def bounded(self) -> bool:
        return self.prompt.bounded and self.decode.bounded

    @property
    def max_prompt(self) -> float:
        return self.prompt.max_value

    @property
    def max_decode(self) -> float:
        return self.decode.max_value

    def sample(self, n: int, rng: np.random.Generator | int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """n i.i.d. requests: (S, O)."""
        rng = np.random.default_rng(rng)
        return self.prompt.sample(n, rng), self.decode.sample(n, rng)


@dataclass(frozen=True, eq=False)
class JointLengths:
    """A joint empirical (S, O) law on finitely many pairs."""

    prompt_values: np.ndarray
    decode_values: np.ndarray
    probs: np.ndarray
    label: str = "joint"

    def __post_init__(self) -> None:
        s = np.asarray(self.prompt_values)
        o = np.asarray(self.decode_values)
        p = np.asarray(self.probs, dtype=float)
        if not (s.shape == o.shape == p.shape) or s.ndim != 1 or s.size == 0:
            raise WorkloadError(f"{self.label}: need equal-length non-empty 1-d arrays")
        if np.any(s < 0) or np.any(s != np.round(s)) or np.any(o != np.round(o)):
            raise WorkloadError(f"{self.label}: token counts must be non-negative integers")
        if np.any(o < 1):
            raise WorkloadError(
                f"{self.label}: {int(np.sum(o < 1))} pairs have decode length < 1; decode "
                "lengths must be ≥ 1 (drop or shift those records)"
            )
        if np.any(p < 0) or not math.isclose(p.sum(), 1.0, abs_tol=1e-9):
            raise WorkloadError(f"{self.label}: probabilities must be ≥ 0 and sum to 1")
        for name, arr in (("prompt_values", s), ("decode_values", o), ("probs", p)):
            arr = np.array(arr, dtype=float if name == "probs" else np.int64)
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)

    @classmethod
    def from_samples(cls, prompts: ArrayLike, decodes: ArrayLike,
                     label: str = "joint empirical") -> JointLengths:
        """The empirical law of observed (S, O) pairs (identical pairs merged)."""
        prompts = np.asarray(prompts)
        decodes = np.asarray(decodes)
        if prompts.shape != decodes.shape or prompts.ndim != 1 or prompts.size == 0:
            raise WorkloadError(f"{label}: need two equal-length non-empty 1-d arrays")
        pairs, counts = np.unique(np.stack([prompts, decodes], axis=1), axis=0, return_counts=True)
        return cls(pairs[:, 0], pairs[:, 1], counts / prompts.size, label)

    def __repr__(self) -> str:
        return (f"JointLengths({self.label!r}, {self.probs.size} pairs, mean prompt "
                f"{self.prompt_law.mean:.4g}, mean decode {self.decode_law.mean:.4g})")

    @cached_property
    def prompt_law(self) -> TokenLaw:
        """The marginal law of S (computed once)."""
        return TokenLaw.from_pmf(self.prompt_values, self.probs, f"{self.label} (prompt marginal)")

    @cached_property
    def decode_law(self) -> TokenLaw:
        """The marginal law of O (computed once)."""
        return TokenLaw.from_pmf(self.decode_values, self.probs, f"{self.label} (decode marginal)")

    @property
    def mean_memory_time(self) -> float:
        """E[W] = E[S·O + O(O+1)/2], summed over the pairs."""
        s = self.prompt_values.astype(float)
        o = self.decode_values.astype(float)
        return float(np.sum(self.probs * (s * o + o * (o + 1) / 2)))

    @property
    def mean_prompt_times_decode(self) -> float:
        return float(np.sum(self.probs * self.prompt_values * self.decode_values.astype(float)))

    @property
    def n_ages(self) -> int:
        return int(self.decode_values.max())

    def prob_total_exceeds(self, memory_tokens: float) -> float:
        return float(np.sum(self.probs[self.prompt_values + self.decode_values > memory_tokens]))

    def _by_decode(self, weights: np.ndarray, n_ages: int) -> np.ndarray:
        """Suffix sums over decode: out[a] = Σ_{pairs with O > a} weights, a < n_ages."""
        per_o = np.bincount(self.decode_values, weights=weights, minlength=n_ages + 1)
        suffix = np.cumsum(per_o[::-1])[::-1]  # suffix[j] = Σ_{o ≥ j}
        return suffix[1 : n_ages + 1] if suffix.size > n_ages else np.pad(
            suffix[1:], (0, n_ages + 1 - suffix.size)
        )

    def age_moments(self, n_ages: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        s = self.prompt_values.astype(float)
        p0 = self._by_decode(self.probs, n_ages)
        p1 = self._by_decode(self.probs * s, n_ages)
        p2 = self._by_decode(self.probs * s * s, n_ages)
        c = np.arange(1, n_ages + 1, dtype=float)
        return p0, p1 + c * p0, p2 + 2 * c * p1 + c * c * p0

    def max_held_by_age(self, n_ages: int) -> np.ndarray:
        """max(S + a + 1) over the pairs with O > a (0 where no pair is active), a < n_ages."""
        o = self.decode_values
        top = np.full(max(int(o.max()), n_ages) + 1, -np.inf)
        np.maximum.at(top, o, self.prompt_values.astype(float))
        alive_max = np.maximum.accumulate(top[::-1])[::-1][1 : n_ages + 1]  # max over O ≥ a + 1
        a = np.arange(n_ages, dtype=float)
        return np.where(np.isfinite(alive_max), alive_max + a + 1, 0.0)

    def age_log_mgf(self, theta: float | ArrayLike, n_ages: int) -> np.ndarray:
        """log E[e^{θ(S+a+1)}; O > a] for a < n_ages; a 1-d array of θ gives one row per θ."""
        if np.ndim(theta) > 0:
            rows = [self.age_log_mgf(float(t), n_ages) for t in np.asarray(theta, dtype=float)]
            return np.stack(rows) if rows else np.empty((0, n_ages))
        o = self.decode_values
        s = self.prompt_values.astype(float)
        # Per decode value: log Σ p e^{θ s}, shifted by that value's largest θ·s for stability
        # (any sign of θ).
        ts = theta * s
        top = np.full(o.max() + 1, -np.inf)
        np.maximum.at(top, o, ts)
        per_o = np.bincount(o, weights=self.probs * np.exp(ts - top[o]), minlength=top.size)
        with np.errstate(invalid="ignore"):
            log_per_o = np.where(per_o > 0, _log(per_o) + top, -np.inf)
        suffix = np.logaddexp.accumulate(log_per_o[::-1])[::-1]  # log Σ_{o ≥ j}
        out = np.full(n_ages, -np.inf)
        m = min(n_ages, suffix.size - 1)
        out[:m] = suffix[1 : m + 1]
        return out + theta * np.arange(1, n_ages + 1)

    def truncation_excess(self) -> float:
        return 0.0

    bounded = True

    @property
    def max_prompt(self) -> int:
        return int(self.prompt_values.max())

    @property
    def max_decode(self) -> int:
        return int(self.decode_values.max())

    def sample(self, n: int, rng: np.random.Generator | int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """n i.i.d. requests: (S, O)."""
        rng = np.random.default_rng(rng)
        idx = rng.choice(self.probs.size, size=n, p=self.probs)
        return self.prompt_values[idx], self.decode_values[idx]


Lengths = IndependentLengths | JointLengths


@dataclass(frozen=True, eq=False)
class RequestClass:
    """One request class: a length model and an arrival rate (requests per slot).

    ``rate_per_slot`` may be None when only the class mix matters; then every class of the
    workload must leave it None and the classes weigh equally.
    """

    lengths: IndependentLengths | JointLengths
    rate_per_slot: float | None = None
    name: str = "default"
    rate_per_s: float | None = None  # informational: a trace's mean arrival rate in requests/s

    def __post_init__(self) -> None:
        if not isinstance(self.lengths, IndependentLengths | JointLengths):
            raise WorkloadError(f"class {self.name!r}: lengths must be Independent/JointLengths")
        r = self.rate_per_slot
        if r is not None and (
            isinstance(r, bool) or not isinstance(r, numbers.Real) or not math.isfinite(r) or r <= 0
        ):
            raise WorkloadError(
                f"class {self.name!r}: arrival rate must be a positive number of requests per "
                f"slot, got {r!r}"
            )

    @classmethod
    def independent(
        cls, prompt: TokenLaw | object, decode: TokenLaw | object, rate_per_slot: float | None = None,
        name: str = "default",
    ) -> RequestClass:
        """A class with independent prompt and decode laws (anything :func:`as_law` accepts)."""
        return cls(IndependentLengths(as_law(prompt, "prompt"), as_law(decode, "decode")),
                   rate_per_slot, name)

    @property
    def mean_memory_time(self) -> float:
        return self.lengths.mean_memory_time


@dataclass(frozen=True, eq=False)
class Workload:
    """One or more request classes, optionally with the memory they run in.

    Parameters
    ----------
    classes : tuple of RequestClass
    name : str
    memory_tokens : int or None
        The KV-cache size M in tokens, when the workload file names one.
    source : str
        Where it came from (a spec, preset, file).
    weights : tuple of float or None
        The class mix when the classes carry no per-slot rates (e.g. a trace's class counts,
        :meth:`numerics.data.traces.Trace.to_workload`): one positive number per class, stored
        normalised. None weighs the classes equally. Per-slot rates, when given, take precedence.
    """

    classes: tuple[RequestClass, ...]
    name: str = "workload"
    memory_tokens: int | None = None
    source: str = ""
    weights: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        classes = tuple(self.classes)
        if not classes:
            raise WorkloadError("a workload needs at least one request class")
        rates = [c.rate_per_slot for c in classes]
        if any(r is None for r in rates) and not all(r is None for r in rates):
            raise WorkloadError(
                "either every class gives an arrival rate or none does (then they weigh equally)"
            )
        names = [c.name for c in classes]
        if len(set(names)) != len(names):
            raise WorkloadError(f"class names must be distinct, got {names}")
        if self.memory_tokens is not None:
            object.__setattr__(self, "memory_tokens", ensure_memory(self.memory_tokens))
        object.__setattr__(self, "classes", classes)
        if self.weights is not None:
            w = np.asarray(self.weights, dtype=float)
            if w.shape != (len(classes),) or not np.all(np.isfinite(w)) or np.any(w <= 0):
                raise WorkloadError(f"workload {self.name!r}: weights must be one positive number per "
                                    f"class ({len(classes)}), got {self.weights!r}")
            object.__setattr__(self, "weights", tuple((w / w.sum()).tolist()))

    @classmethod
    def single(
        cls, prompt: TokenLaw | object, decode: TokenLaw | object, rate_per_slot: float | None = None,
        name: str = "workload",
    ) -> Workload:
        """A one-class workload with independent prompt and decode laws: each a ``TokenLaw`` or
        anything :func:`as_law` accepts (an integer, a spec string, a frozen scipy.stats law, an
        array of observed counts).

        >>> from scipy import stats
        >>> Workload.single(100, stats.geom(0.005)).mean_decode
        200.0
        """
        return cls((RequestClass.independent(prompt, decode, rate_per_slot, name),), name)

    @classmethod
    def from_frame(cls, frame, prompt: str = "prompt", decode: str = "decode", *,
                   class_column: str | None = None, joint: bool = True,
                   name: str = "frame") -> Workload:
        """A workload from a table of observed requests (a pandas DataFrame, or any mapping of
        column names to 1-d arrays).

        Parameters
        ----------
        frame : pandas.DataFrame or mapping
            One row per request.
        prompt, decode : str
            The columns of prompt and decode lengths (tokens).
        class_column : str, optional
            A column of class labels: one class per label (in order of first appearance), the
            mix weighing each by its share of the rows. None: one class.
        joint : bool
            True (default): each class's joint empirical (S, O) law, keeping the correlation of
            prompt and decode lengths; False: independent empirical marginals.
        name : str
            The workload's name (and the class name of a one-class workload).

        Raises
        ------
        WorkloadError
            A column is missing (the message lists those present), empty, or not made of
            non-negative integer token counts (decode lengths ≥ 1).

        Examples
        --------
        >>> import pandas as pd
        >>> df = pd.DataFrame({"prompt": [10, 20, 10], "decode": [5, 7, 5], "kind": ["a", "b", "a"]})
        >>> wl = Workload.from_frame(df, class_column="kind")
        >>> [c.name for c in wl.classes], wl.mix.round(3).tolist()
        (['a', 'b'], [0.667, 0.333])
        >>> wl.classes[0].lengths.decode_law.mean
        5.0
        """
        from numerics.model.frames import workload_from_frame

        return workload_from_frame(cls, frame, prompt, decode, class_column=class_column, joint=joint,
                                   name=name)

    # ------------------------------------------------------------------ the mix
    @property
    def rates_per_slot(self) -> np.ndarray | None:
        rates = [c.rate_per_slot for c in self.classes]
        return None if rates[0] is None else np.array(rates, dtype=float)

    @property
    def mix(self) -> np.ndarray:
        """π_k = λ_k / Σ λ_j; without rates, ``weights`` (equal weights when those are None too)."""
        rates = self.rates_per_slot
        if rates is not None:
            return rates / rates.sum()
        if self.weights is not None:
            return np.array(self.weights, dtype=float)
        return np.full(len(self.classes), 1.0 / len(self.classes))

    def with_total_rate(self, rate_per_slot: float) -> Workload:
        """The same class mix scaled to a total arrival rate (requests per slot)."""
        if not math.isfinite(rate_per_slot) or rate_per_slot <= 0:
            raise WorkloadError(
                f"arrival rate must be a positive number of requests per slot, got {rate_per_slot}"
            )
        classes = tuple(
            RequestClass(c.lengths, float(rate_per_slot * w), c.name, c.rate_per_s)
            for c, w in zip(self.classes, self.mix, strict=True)
        )
        return Workload(classes, self.name, self.memory_tokens, self.source)

    # ------------------------------------------------------------------ moments of the mixture
    def _mix_sum(self, fn) -> float:
        return float(sum(w * fn(c.lengths) for c, w in zip(self.classes, self.mix, strict=True)))

    @property
    def mean_prompt(self) -> float:
        return self._mix_sum(lambda x: x.prompt_law.mean)

    @property
    def mean_decode(self) -> float:
        return self._mix_sum(lambda x: x.decode_law.mean)

    @property
    def decode_second_moment(self) -> float:
        return self._mix_sum(lambda x: x.decode_law.second_moment)

    @property
    def mean_memory_time(self) -> float:
        """E[W] of the mixture: Σ π_k E[W_k]."""
        return self._mix_sum(lambda x: x.mean_memory_time)

    @property
    def mean_memory_times(self) -> np.ndarray:
        """E[W_k] per class."""
        return np.array([c.mean_memory_time for c in self.classes])

    @property
    def n_ages(self) -> int:
        return max(c.lengths.n_ages for c in self.classes)

    def age_moments(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mixture (G, μ, ν) by age, a = 0..n_ages-1."""
        n = self.n_ages
        parts = [c.lengths.age_moments(n) for c in self.classes]
        return tuple(
            sum(w * part[i] for w, part in zip(self.mix, parts, strict=True)) for i in range(3)
        )

    def max_held_by_age(self) -> np.ndarray:
        """The most tokens any request active at age a can hold, a = 0..n_ages-1 (bounded laws)."""
        n = self.n_ages
        return np.max(np.stack([c.lengths.max_held_by_age(n) for c in self.classes]), axis=0)

    def age_log_mgf(self, theta: float | ArrayLike) -> np.ndarray:
        """log E[e^{θ X_a}; O > a] of the mixture, a = 0..n_ages-1; a 1-d array of θ gives one
        row per θ."""
        n = self.n_ages
        mix = self.mix
        if len(self.classes) == 1 and mix[0] == 1.0:
            return self.classes[0].lengths.age_log_mgf(theta, n)  # log 1 + x = x
        logs = [
            np.log(w) + c.lengths.age_log_mgf(theta, n)
            for c, w in zip(self.classes, mix, strict=True)
        ]
        return np.logaddexp.reduce(np.stack(logs), axis=0)

    def truncation_excess(self) -> float:
        return self._mix_sum(lambda x: x.truncation_excess())

    @property
    def bounded(self) -> bool:
        return all(c.lengths.bounded for c in self.classes)

    @property
    def max_prompt(self) -> float:
        return max(c.lengths.max_prompt for c in self.classes)

    @property
    def max_decode(self) -> float:
        return max(c.lengths.max_decode for c in self.classes)

    def prob_total_exceeds(self, memory_tokens: float) -> float:
        """P(S + O > M) for a request drawn from the mix."""
        return self._mix_sum(lambda x: x.prob_total_exceeds(memory_tokens))

    def require_finite_memory_time(self) -> None:
        """Raise :class:`UnstableWorkloadError` if some class has E[O²] = ∞."""
        for c in self.classes:
            c.lengths.decode_law.require_finite_second_moment(f"class {c.name!r} decode")

    def sample(self, n: int,
               rng: np.random.Generator | int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """n requests from the mix: (class index, S, O)."""
        rng = np.random.default_rng(rng)
        if len(self.classes) == 1:
            # rng.choice over one class draws (and discards) n uniforms: draw them alike, so the
            # generator's state after, and every later draw, is the same
            rng.random(n)
            s, o = self.classes[0].lengths.sample(n, rng)
            return np.zeros(n, dtype=np.int64), np.asarray(s, dtype=np.int64), np.asarray(o, dtype=np.int64)
        k = rng.choice(len(self.classes), size=n, p=self.mix)
        s = np.empty(n, dtype=np.int64)
        o = np.empty(n, dtype=np.int64)
        for i, c in enumerate(self.classes):
            idx = np.flatnonzero(k == i)
            if idx.size:
                s[idx], o[idx] = c.lengths.sample(idx.size, rng)
        return k, s, o

    def describe(self) -> str:
        lines = [f"workload {self.name!r}" + (f" ({self.source})" if self.source else "")]
        for c, w in zip(self.classes, self.mix, strict=True):
            rate = "" if c.rate_per_slot is None else f", λ = {c.rate_per_slot:g}/slot"
            label = getattr(c.lengths, "label", "")
            lines.append(f"  class {c.name!r} (weight {w:.3g}{rate}): {label}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"Workload({self.name!r}, classes={[c.name for c in self.classes]})"


def ensure_memory(memory_tokens: object) -> int:
    """Validate a KV-cache size in tokens (a positive integer ≤ :data:`MAX_MEMORY_TOKENS`).

    Raises :class:`~numerics.errors.SettingError` naming the setting ``memory``.
    """
    bad = SettingError(f"`memory` must be a positive integer number of tokens, got {memory_tokens!r}",
                       "memory")
    if isinstance(memory_tokens, bool):
        raise bad
    try:
        m = float(memory_tokens)
    except (TypeError, ValueError):
        raise bad from None
    if not math.isfinite(m) or m <= 0 or m != int(m):
        raise bad
    if m > MAX_MEMORY_TOKENS:
        raise SettingError(
            f"`memory` {memory_tokens!r} tokens is beyond the limit of {MAX_MEMORY_TOKENS:.0e} tokens, "
            "larger than any KV cache; give the cache size in tokens", "memory"
        )
    return int(m)


#: Largest accepted KV-cache size, in tokens: 10^12 (~100 PB at 100 KB per token) is far beyond any
#: accelerator, keeps every memory count exact in float64 (below 2**53) and the simulator's token
#: sums inside int64. The one definition: the simulator and the front ends import it.
MAX_MEMORY_TOKENS = 10**12


def check_hard_cap(workload: Workload, memory_tokens: int, tol: float) -> float:
    """P(S + O > M); raise :class:`UnstableWorkloadError` when it exceeds ``tol``."""
    p = workload.prob_total_exceeds(memory_tokens)
    if p > tol:
        raise UnstableWorkloadError(
            f"P(S + O > M) = {p:.3g} > 0 with M = {memory_tokens}: such requests can never finish, "
            "so no arrival rate is stable; raise --memory or clip the laws with max= so that "
            f"S + O ≤ {memory_tokens}"
        )
    return p
