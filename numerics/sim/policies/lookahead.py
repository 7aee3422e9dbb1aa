r"""State-aware admission: :class:`Lookahead`, and the overflow bound it admits by.

Each slot :class:`Lookahead` admits FIFO head requests one at a time while (a) the request fits
now, U + m(S + g₀ + 1) ≤ M (as :class:`~numerics.sim.policies.FlowFit`: no admission is dropped
in its own slot), (b) ``max_seqs`` leaves room, and (c) an upper bound on the probability that the
active set — with the requests admitted so far this slot and the candidate — overflows M at some
slot within the next H slots stays ≤ ``target``. Requests still waiting and future arrivals are
not counted: the bound is about the requests that hold memory, given what they have generated.

The bound (docs/theory.md §14). An active request i with prompt S_i that has generated g_i tokens
(it holds m(S_i + g_i + 1) tokens now) is present h slots later iff O_i > g_i + h, with
probability p_i(h) = P(O > g_i + h | O > g_i) under its class's decode law, and then holds
m(S_i + g_i + h + 1). Over a grid 1 = h_0 < h_1 < ... < h_J = H + 1 the usage at any slot of
[h_j, h_{j+1}) is at most V_j = Σ_i 1{O_i > g_i + h_j}·m(S_i + g_i + h_{j+1}) (present at h ⇒
present at h_j; memory grows with h), a sum of independent Bernoulli-weighted terms, so

.. math:: P(\exists h \in [1, H]: U_{t+h} > M) \le \sum_j \min_{\theta \ge 0}
          e^{-\theta(M+1)} \prod_i \bigl(1 - p_{ij} + p_{ij} e^{\theta c_{ij}}\bigr)

(Markov's inequality on e^{θV_j}, V_j integer; any θ gives a valid bound, so an inexact minimiser
only loosens it). :func:`lookahead_chernoff` is that factor at one θ; :func:`overflow_bound` the
whole union bound. With block size b > 1 the policy sees only m(S + g + 1), so g is known up to
a block: it uses the largest g for the memory term and the largest p_i(h) over the possible g
(a term-wise dominating variable, still a valid bound).

Default horizon: the largest 0.99-quantile of the classes' decode laws (at least 1); the grid is
every slot when H ≤ 64, else at most 64 geometrically spaced intervals (whole slots).

What the policy reads: the progress g = current_memory − S − 1 of each active request (exact for
block size 1 in the slot model; under the step loop's batching modes an estimate, clipped at 0
for a prompt still being prefilled) and each request's class from the waiting queue
(:meth:`~numerics.sim.state.WaitingQueue.class_of`); the classes' decode laws come from the
workload. For a joint (S, O) class it uses the class's decode marginal (the dependence of O on S
is ignored there, and the bound is then not proved). Cost: one (requests × grid) array and a few
Newton steps per candidate — about 500 slots per second with ~180 active requests.

Examples
--------
>>> from numerics.model.laws import TokenLaw
>>> sf = _sf_table([TokenLaw.deterministic(10)])
>>> overflow_bound([5, 5], [0, 3], [0, 0], sf, memory=30, grid=_grid(10))  # peak 16 + 13 ≤ 30
0.0
>>> overflow_bound([5, 5], [0, 3], [0, 0], sf, memory=25, grid=_grid(10))  # it does not fit
1.0
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from numerics.errors import SettingError, SpecError
from numerics.sim.policies.base import Policy
from numerics.sim.state import SlotState

if TYPE_CHECKING:
    from numerics.model.laws import TokenLaw
    from numerics.model.workload import Workload

__all__ = ["Lookahead", "fit_admission_count", "interval_terms", "lookahead_chernoff", "overflow_bound"]

#: Most grid intervals of the horizon (every slot up to this many).
GRID_INTERVALS = 64
#: The default horizon's quantile of the decode law.
HORIZON_QUANTILE = 0.99
#: Newton steps of the θ search per grid interval.
NEWTON_STEPS = 8


def fit_admission_count(usage: int, needs: Sequence[int], memory: int, cap: float = math.inf) -> int:
    """How many of ``needs`` (FIFO) fit: the largest k ≤ cap with usage + Σ_{j<k} needs_j ≤ M.

    The fit check of ``flowfit`` and ``lookahead`` (condition (a)).

    >>> fit_admission_count(10, [5, 5, 5], 21), fit_admission_count(10, [5, 5, 5], 100, cap=2)
    (2, 2)
    """
    k = 0
    for need in needs:
        if k >= cap or usage + need > memory:
            break
        usage += need
        k += 1
    return k


def lookahead_chernoff(probs: Sequence[float], costs: Sequence[float], memory: float,
                       theta: float) -> float:
    r"""e^{−θ(M+1)} Π_i (1 − p_i + p_i e^{θ c_i}): at any θ ≥ 0 an upper bound on P(Σ_i B_i c_i > M)
    for independent B_i ~ Bernoulli(p_i) and integer c_i (Markov's inequality on e^{θV})."""
    p = np.asarray(probs, dtype=float)
    c = np.asarray(costs, dtype=float)
    with np.errstate(divide="ignore"):
        log_terms = np.logaddexp(np.log1p(-p), np.log(p) + theta * c)
    return float(math.exp(min(float(np.sum(log_terms)) - theta * (memory + 1), 0.0)))


def _sf_table(laws: Sequence[TokenLaw]) -> np.ndarray:
    """P(O > x) for x = 0..N−1 per class (rows), N past every stored support; beyond, the last
    column (the law's tail mass: 0 for bounded laws)."""
    n = max(int(law.values[-1]) for law in laws) + 2
    return np.stack([np.asarray(law.sf(np.arange(n)), dtype=float) for law in laws])


def _grid(horizon: int) -> np.ndarray:
    """h_0 = 1 < ... < h_J = H + 1: every slot when H ≤ :data:`GRID_INTERVALS`, else geometric."""
    if horizon <= GRID_INTERVALS:
        return np.arange(1, horizon + 2, dtype=np.int64)
    pts = np.unique(np.round(np.geomspace(1, horizon + 1, GRID_INTERVALS + 1)).astype(np.int64))
    return pts


def _chernoff_columns(p: np.ndarray, c: np.ndarray, memory: int, stop: float = -1.0) -> np.ndarray:
    """min_θ e^{−θ(M+1)} E e^{θV_j} per column j of (p, c) (rows: requests), by safeguarded Newton
    steps on the convex log-MGF; the smallest value seen (each is a valid bound). It stops early
    once the columns' sum is ≤ ``stop``, or once a column's bound is 1 (E V_j ≥ M + 1)."""
    a = memory + 1.0
    vmax = np.where(p > 0, c, 0.0).sum(axis=0)
    mu = (p * c).sum(axis=0)
    out = np.where(vmax <= memory, 0.0, 1.0)
    todo = np.flatnonzero((vmax > memory) & (mu < a))
    if todo.size == 0 or todo.size < np.count_nonzero(out):
        return out
    p, c, mu = p[:, todo], c[:, todo], mu[todo]
    var = (p * (1 - p) * c * c).sum(axis=0)
    tmax = 700.0 / c.max(axis=0)  # e^{θc} stays finite
    lo = np.zeros(todo.size)
    hi = tmax.copy()
    theta = np.minimum((a - mu) / np.maximum(var, 1e-300), tmax / 2)
    best = np.zeros(todo.size)  # log bound at θ = 0
    live = np.arange(todo.size)  # the columns still improved
    tiny = math.log(stop * 1e-6) if stop > 0 else -math.inf
    for _ in range(NEWTON_STEPS):
        pl, cl, th = p[:, live], c[:, live], theta[live]
        pe = pl * np.exp(th * cl)
        mgf = 1 - pl + pe
        q = pe / mgf  # the tilted presence probability
        f = np.log(mgf).sum(axis=0) - th * a
        best[live] = np.minimum(best[live], f)
        cq = cl * q
        d1 = cq.sum(axis=0) - a
        d2 = (cq * cl * (1 - q)).sum(axis=0)
        lo[live] = np.where(d1 < 0, th, lo[live])
        hi[live] = np.where(d1 >= 0, th, hi[live])
        step = th - d1 / np.maximum(d2, 1e-300)
        theta[live] = np.where((step > lo[live]) & (step < hi[live]), step, (lo[live] + hi[live]) / 2)
        if np.exp(best).sum() <= stop:
            break  # decided
        # a column at its minimum (f' = 0 to 1e-6·(M+1)) or negligible against the target is done
        keep = (np.abs(d1) > 1e-6 * a) & (best[live] > tiny)
        if not keep.any():
            break
        live = live[keep]
    out[todo] = np.exp(best)
    return out


def interval_terms(prompts: Sequence[int], generated: Sequence[int], classes: Sequence[int],
                   sf: np.ndarray, grid: np.ndarray, block: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(p, c) of the bound, rows the requests and columns the grid intervals: p_ij the (largest)
    probability that request i is present at h_j, c_ij = m(S_i + g_i + h_{j+1}) (arguments as
    :func:`overflow_bound`)."""
    s = np.asarray(prompts, dtype=np.int64)
    g = np.maximum(np.asarray(generated, dtype=np.int64), 0)  # a prompt still being prefilled: 0
    cls = np.asarray(classes, dtype=np.int64)
    last = sf.shape[1] - 1
    start, end = grid[:-1], grid[1:]
    rows = cls[:, None]
    p = np.zeros((s.size, start.size))
    for d in range(block):  # the largest p over the g the memory allows
        gd = np.maximum(g - d, 0)
        den = sf[cls, np.minimum(gd, last)]
        num = sf[rows, np.minimum(gd[:, None] + start[None, :], last)]
        with np.errstate(divide="ignore", invalid="ignore"):
            pd_ = np.where(den[:, None] > 0, np.minimum(num / den[:, None], 1.0), 1.0)
        p = np.maximum(p, pd_)
    tokens = s[:, None] + g[:, None] + end[None, :]
    c = (tokens if block == 1 else -(-tokens // block) * block).astype(float)
    return p, c


def overflow_bound(prompts: Sequence[int], generated: Sequence[int], classes: Sequence[int],
                   sf: np.ndarray, memory: int, grid: np.ndarray, block: int = 1,
                   per_interval: bool = False, stop: float = -1.0) -> float | np.ndarray:
    """The union-Chernoff bound on P(∃h ∈ [h_0, h_J): U_{t+h} > M) for the given requests.

    Parameters
    ----------
    prompts, generated, classes : sequence of int
        S_i, g_i (tokens generated so far; with blocks the largest g consistent with the memory
        held) and the class row of ``sf`` of each request that holds memory.
    sf : ndarray
        P(O > x) per class (rows), x = 0..N−1 (:func:`_sf_table`); beyond N−1, the last column.
    memory : int
        M, tokens.
    grid : ndarray of int
        h_0 < h_1 < ... < h_J (:func:`_grid`); interval j is [h_j, h_{j+1}).
    block : int
        Block size b: g_i is then known only up to b − 1 below (see the module docstring).
    per_interval : bool
        Return the J per-interval bounds instead of their sum (capped at 1).
    stop : float
        Stop the θ search as soon as the sum is ≤ ``stop`` (a decision against a target needs no
        more); the value returned is still a valid bound.
    """
    if len(prompts) == 0:
        return np.zeros(len(grid) - 1) if per_interval else 0.0
    p, c = interval_terms(prompts, generated, classes, sf, grid, block)
    bounds = _chernoff_columns(p, c, memory, stop)
    return bounds if per_interval else float(min(bounds.sum(), 1.0))


@dataclass(frozen=True)
class Lookahead(Policy):
    """State-aware admission: FIFO while the request fits, ``max_seqs`` has room and the
    union-Chernoff bound on the active set's overflow within ``horizon`` slots stays ≤ ``target``
    (module docstring; docs/theory.md §14). Python engine only.

    ``target`` in (0, 1); ``horizon`` (slots, ≥ 1) None: the largest 0.99-quantile of the classes'
    decode laws. The laws come from the workload (:meth:`check_workload`, called by
    :class:`~numerics.sim.config.SimConfig`): a policy object serves the workload of the last
    configuration built with it. When nothing is active the head request is admitted whenever it
    fits (otherwise a request whose own tail risk exceeds the target would block the queue).
    """

    target: float = 0.001
    horizon: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        t = self.target
        if isinstance(t, bool) or not isinstance(t, int | float) or not 0 < t < 1:
            raise SpecError(f"lookahead target must lie in (0, 1), got {t!r}; e.g. target=0.001")
        h = self.horizon
        if h is not None and (isinstance(h, bool) or not isinstance(h, int | float | np.integer)
                              or not math.isfinite(h) or int(h) != h or h < 1):
            raise SpecError(f"lookahead horizon must be an integer ≥ 1 (slots), got {h!r}")
        if h is not None:
            object.__setattr__(self, "horizon", int(h))

    def check_workload(self, workload: Workload) -> None:
        """Cache the classes' decode survival functions and the grid (no workload is refused)."""
        laws = [c.lengths.decode_law for c in workload.classes]
        h = self.horizon
        if h is None:
            h = 1
            for law in laws:
                cdf = np.cumsum(law.probs)
                q = law.values[min(int(np.searchsorted(cdf, HORIZON_QUANTILE)), law.values.size - 1)]
                h = max(h, int(q))
        object.__setattr__(self, "_tables", (_sf_table(laws), _grid(h), h))

    def horizon_used(self) -> int:
        """H of the cached workload (``horizon``, or the default of the module docstring)."""
        return self._cached()[2]

    def _cached(self) -> tuple[np.ndarray, np.ndarray, int]:
        try:
            return self._tables
        except AttributeError:
            raise SettingError("lookahead needs the workload's decode laws: build a SimConfig with "
                               "it (or call policy.check_workload(workload)) before running") from None

    def select(self, sim: SlotState) -> int:
        room = self.seq_room(sim)
        if not len(sim.queue) or room < 1:
            return 0
        sf, grid, _ = self._cached()
        M = sim.memory_tokens
        usage = sim.usage
        q = sim.queue
        s_arr, g_arr, c_arr = [], [], []
        for rid in sim.active_ids():
            s = sim.S[rid]
            s_arr.append(s)
            g_arr.append(sim.current_memory(rid) - s - 1)
            c_arr.append(q.class_of(rid))
        block = int(sim.mem(1))
        n_grid = grid.size - 1
        if s_arr:  # the active set's terms, once per slot; candidates add one row each
            p_all, c_all = interval_terms(s_arr, g_arr, c_arr, sf, grid, block)
        else:
            p_all, c_all = np.zeros((0, n_grid)), np.zeros((0, n_grid))
        k = 0
        for rid in q:
            if k >= room:
                break
            need = sim.activation_memory(rid)
            if usage + need > M:
                break
            s = sim.S[rid]
            p_row, c_row = interval_terms([s], [need - s - 1], [q.class_of(rid)], sf, grid, block)
            p_all, c_all = np.vstack([p_all, p_row]), np.vstack([c_all, c_row])
            if len(p_all) > 1 and _chernoff_columns(p_all, c_all, M, self.target).sum() > self.target:
                break  # the same test as overflow_bound(...) > target
            usage += need
            k += 1
        return k

    def spec(self) -> str:
        h = "" if self.horizon is None else f",horizon={self.horizon}"
        return f"lookahead:target={self.target!r}{h},requeue={self.requeue}{self._seqs_spec()}"
