"""The compiled pass of :func:`numerics.sim.results._summary` over the window's arrivals (numba).

One loop over the requests that arrived in the window builds the three arrays the latency and
TTFT statistics need — the latency censored at the horizon, the latency of the finished ones, the
TTFT censored at the horizon — and counts the completions in the window, where the numpy version
made about ten array-sized temporaries (masks, differences, ``np.where``) to the same integers.
The statistics themselves (means and np.quantile's floats) are then taken by numpy on these
arrays, exactly as before. Imported lazily (numba).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["slot_window"]


@njit(cache=True)
def slot_window(arrival, first, done, lo, horizon, warmup):  # pragma: no cover - compiled
    """(latency censored, latency of the finished, TTFT censored, completions in the window).

    ``arrival``, ``first``, ``done``: per request id (the first ``m`` arrivals, in arrival order),
    the arrival slot, the slot of the first activation that produced a token and the completion
    slot (−1 when missing); ``lo``: the first id that arrived in the window (slot ≥ ``warmup``).
    Latency = done − arrival + 1, censored at horizon − arrival when unfinished; TTFT = first −
    arrival + 1, censored likewise when never started.
    """
    m = arrival.size
    n = m - lo
    lat_c = np.empty(n, np.int64)
    ttft_c = np.empty(n, np.int64)
    lat_f = np.empty(n, np.int64)
    nf = 0
    done_in_window = 0
    for i in range(lo):  # earlier arrivals may finish in the window too
        if done[i] >= warmup:
            done_in_window += 1
    for j in range(n):
        i = lo + j
        a = arrival[i]
        d = done[i]
        f = first[i]
        if d >= 0:
            lat = d - a + 1
            lat_c[j] = lat
            lat_f[nf] = lat
            nf += 1
            if d >= warmup:
                done_in_window += 1
        else:
            lat_c[j] = horizon - a
        ttft_c[j] = f - a + 1 if f >= 0 else horizon - a
    return lat_c, lat_f[:nf], ttft_c, done_in_window


@njit(cache=True)
def int_range(x):  # pragma: no cover - compiled
    """(min, max) of the non-empty integer array ``x`` in one pass."""
    lo = x[0]
    hi = x[0]
    for v in x:
        if v < lo:
            lo = v
        elif v > hi:
            hi = v
    return lo, hi


@njit(cache=True)
def int_order_stats(x, ranks):  # pragma: no cover - compiled
    """The values of ranks ``ranks`` (0-based, sorted order) of the integers ``x``, by counting.

    One pass for the range, one to count each value, one walk up the cumulative counts: O(n +
    range), no sort and no array-sized temporary. The caller keeps the range small (≤ n/2).
    """
    lo, hi = int_range(x)
    counts = np.zeros(hi - lo + 1, np.int64)
    for v in x:
        counts[v - lo] += 1
    out = np.empty(ranks.size, np.int64)
    order = np.argsort(ranks)
    k = 0
    cum = 0
    for value in range(hi - lo + 1):
        cum += counts[value]
        while k < ranks.size and ranks[order[k]] < cum:
            out[order[k]] = lo + value
            k += 1
        if k == ranks.size:
            break
    return out



@njit(cache=True)
def mean_and_sq_dev(y):  # pragma: no cover - compiled
    """(mean, Σ (y − mean)²) of the non-empty array ``y``: two passes, float64 accumulators."""
    total = 0.0
    for v in y:
        total += v
    mean = total / y.size
    ss = 0.0
    for v in y:
        d = v - mean
        ss += d * d
    return mean, ss
