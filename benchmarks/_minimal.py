"""The minimal compiled loops that :mod:`bench_engine` (measurement 2) times the kernel against.

The same model as the kernel's greedy run: arrivals pre-drawn, FIFO queue, greedy admission while
usage + S + 1 ≤ limit, LIFO eviction with recompute (the evicted request rejoins the queue's head),
one token per active request per slot, completion frees S + O. ``minimal_wheel`` is event driven
(a completion timing wheel, a LIFO stack with lazy deletion), ``minimal_scan`` sweeps the active
set every slot (O(tokens)). bench_engine checks that both count what the engines count before it
times them.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["COUNTS", "MINIMAL", "minimal_scan", "minimal_wheel"]


# The waiting queue of both loops: a ring buffer ``queue`` of n + 1 slots, head index ``qh``,
# length ``qlen`` (updated copies returned, numba has no mutable scalars).
@njit(cache=True, inline="always")
def _arrive_admit(queue, qh, qlen, arrival_slot, nxt, t, s, usage, limit, order, k):
    """The queue's part of slot t (usage already counts this slot's growth): the requests ``nxt,
    nxt + 1, …`` arriving in slot t join the tail; then greedy admission: while the head fits
    (usage + S + 1 ≤ limit) it leaves the queue, its S + 1 tokens are added to usage and its id is
    written to ``order[k]``, k += 1 (the activation order). Returns (qh, qlen, nxt, usage, k)."""
    cap = queue.size
    while nxt < arrival_slot.size and arrival_slot[nxt] == t:
        j = qh + qlen
        queue[j - cap if j >= cap else j] = nxt
        qlen += 1
        nxt += 1
    while qlen > 0 and usage + s[queue[qh]] + 1 <= limit:
        rid = queue[qh]
        qh = 0 if qh + 1 == cap else qh + 1
        qlen -= 1
        usage += s[rid] + 1
        order[k] = rid
        k += 1
    return qh, qlen, nxt, usage, k


@njit(cache=True, inline="always")
def _requeue_evicted(queue, qh, qlen, rid, g, dropped, evictions, wasted):
    """Recompute eviction of ``rid`` after g generated tokens: a drop on admission (g = 0) or an
    eviction wasting g tokens; it rejoins the queue at its head. Returns (qh, qlen, dropped,
    evictions, wasted)."""
    if g == 0:
        dropped += 1
    else:
        evictions += 1
        wasted += g
    qh = queue.size - 1 if qh == 0 else qh - 1
    queue[qh] = rid
    return qh, qlen + 1, dropped, evictions, wasted


@njit(cache=True)
def minimal_wheel(s, o, arrival_slot, limit, memory, slots):
    """Greedy/LIFO/recompute with only counters: a completion wheel of doubly linked lists (an
    evicted request is unlinked in O(1)) and a LIFO stack of activations with lazy deletion."""
    n = s.size
    queue = np.empty(n + 1, np.int64)
    qh = 0
    qlen = 0
    wheel = 2
    for i in range(n):
        wheel = max(wheel, o[i] + 1)
    bucket = np.full(wheel, -1, np.int64)
    nxt_in = np.empty(n, np.int64)
    prv_in = np.empty(n, np.int64)
    act = np.empty(n, np.int64)
    active = np.zeros(n, np.bool_)
    stack = np.empty(n, np.int64)
    sp = 0
    n_active = usage = nxt = completed = evictions = dropped = wasted = tokens = 0
    for t in range(slots):
        usage += n_active  # growth of the requests active since the previous slot
        qh, qlen, nxt, usage, top = _arrive_admit(queue, qh, qlen, arrival_slot, nxt, t, s, usage, limit,
                                                  stack, sp)
        for i in range(sp, top):
            rid = stack[i]
            act[rid] = t
            active[rid] = True
            b = (t + o[rid] - 1) % wheel
            head = bucket[b]
            nxt_in[rid] = head
            prv_in[rid] = -1
            if head >= 0:
                prv_in[head] = rid
            bucket[b] = rid
        n_active += top - sp
        sp = top
        while usage > memory:
            sp -= 1
            rid = stack[sp]
            if not active[rid]:
                continue
            g = t - act[rid]
            usage -= s[rid] + g + 1
            active[rid] = False
            n_active -= 1
            nx, pv = nxt_in[rid], prv_in[rid]
            if pv >= 0:
                nxt_in[pv] = nx
            else:
                bucket[(act[rid] + o[rid] - 1) % wheel] = nx
            if nx >= 0:
                prv_in[nx] = pv
            qh, qlen, dropped, evictions, wasted = _requeue_evicted(queue, qh, qlen, rid, g, dropped,
                                                                    evictions, wasted)
        tokens += n_active
        b = t % wheel
        rid = bucket[b]
        bucket[b] = -1
        while rid >= 0:
            usage -= s[rid] + o[rid]
            active[rid] = False
            n_active -= 1
            completed += 1
            rid = nxt_in[rid]
        if sp > 2 * n_active + 64:
            w = 0
            for i in range(sp):
                if active[stack[i]]:
                    stack[w] = stack[i]
                    w += 1
            sp = w
    return nxt, completed, evictions, dropped, wasted, tokens, qlen, n_active


@njit(cache=True)
def minimal_scan(s, o, arrival_slot, limit, memory, slots):
    """The same model with the active set in activation order, swept every slot for completions."""
    n = s.size
    queue = np.empty(n + 1, np.int64)
    qh = 0
    qlen = 0
    rid_at = np.empty(n, np.int64)
    act_at = np.empty(n, np.int64)
    done_at = np.empty(n, np.int64)
    n_active = usage = nxt = completed = evictions = dropped = wasted = tokens = 0
    for t in range(slots):
        usage += n_active  # growth of the requests active since the previous slot
        qh, qlen, nxt, usage, top = _arrive_admit(queue, qh, qlen, arrival_slot, nxt, t, s, usage, limit,
                                                  rid_at, n_active)
        for i in range(n_active, top):
            act_at[i] = t
            done_at[i] = t + o[rid_at[i]] - 1
        n_active = top
        while usage > memory:
            n_active -= 1
            rid = rid_at[n_active]
            g = t - act_at[n_active]
            usage -= s[rid] + g + 1
            qh, qlen, dropped, evictions, wasted = _requeue_evicted(queue, qh, qlen, rid, g, dropped,
                                                                    evictions, wasted)
        tokens += n_active
        w = 0
        for i in range(n_active):
            if done_at[i] == t:
                usage -= s[rid_at[i]] + o[rid_at[i]]
                completed += 1
            else:
                rid_at[w], act_at[w], done_at[w] = rid_at[i], act_at[i], done_at[i]
                w += 1
        n_active = w
    return nxt, completed, evictions, dropped, wasted, tokens, qlen, n_active


#: The minimal loops by name.
MINIMAL = {"wheel": minimal_wheel, "scan": minimal_scan}
#: What each loop returns, in order (the engine's run totals of the same names).
COUNTS = ("arrived", "completed", "evictions", "dropped", "wasted", "tokens", "waiting_end", "active_end")
