"""The compiled kernel of :mod:`numerics.sim.fast` (imports numba; import lazily).

``policy`` is a :class:`~numerics.sim.state.KernelCode` as an int: 0 activates ``budgets[t]``
head-of-queue requests, 1 admits FCFS under ``(1 − pparams[0])·M`` with at most ``pparams[1]``
active requests (0: no cap), 2 reserves S + ``pparams[0]`` tokens per request.

The accounting is the Python engine's (:mod:`numerics.sim.engine`): a request popped in the slot
that activated it is dropped on admission (``n_drop``), not evicted; ``first_act``/``last_act``
are the activations that produced a token, ``act_slot`` the current one.
"""

import math

import numpy as np
from numba import njit

__all__ = ["kernel"]


@njit(cache=True)
def kernel(s_arr, o_arr, arrival_slot, budgets, policy, pparams, keep, requeue_head,
           memory, slots, warmup, stride, step_kind, sparams):
    n = s_arr.size
    first_act = np.full(n, -1, np.int64)
    last_act = np.full(n, -1, np.int64)
    act_slot = np.full(n, -1, np.int64)
    done_slot = np.full(n, -1, np.int64)
    n_evict = np.zeros(n, np.int64)
    n_drop = np.zeros(n, np.int64)
    wasted = np.zeros(n, np.int64)
    g0 = np.zeros(n, np.int64)
    active = np.zeros(n, np.bool_)
    cap = n + 1
    qbuf = np.empty(cap, np.int64)
    qh = 0
    qlen = 0
    stack = np.empty(n + 1, np.int64)
    sp = 0
    # Completion timing wheel: bucket (slot mod W) holds a doubly linked list of the requests
    # that complete in that slot; W exceeds any remaining decode length, so a bucket read at slot
    # t holds exactly the completions due at t. An evicted request is unlinked in O(1).
    wheel = 2
    for i in range(n):
        if o_arr[i] + 1 > wheel:
            wheel = o_arr[i] + 1
    bucket = np.full(wheel, -1, np.int64)
    nxt_in = np.full(n, -1, np.int64)
    prv_in = np.full(n, -1, np.int64)
    n_rec = (slots + stride - 1) // stride
    ts_usage = np.zeros(n_rec, np.int64)
    ts_queue = np.zeros(n_rec, np.int64)
    ts_active = np.zeros(n_rec, np.int64)
    ts_act = np.zeros(n_rec, np.int64)
    ts_ev = np.zeros(n_rec, np.int64)
    ts_drop = np.zeros(n_rec, np.int64)
    ts_clock = np.zeros(n_rec)
    clock_at = np.zeros(slots + 1)
    end_clock = np.zeros(slots)
    usage = 0
    n_active = 0
    sum_s_active = 0
    nxt = 0
    completed = 0
    total_ev = 0
    total_drop = 0
    tokens = 0
    win_tokens = 0
    win_wasted = 0
    win_ev = 0
    win_drop = 0
    win_active_max = 0
    clock = 0.0
    for t in range(slots):
        clock_at[t] = clock
        while nxt < n and arrival_slot[nxt] == t:
            qbuf[(qh + qlen) % cap] = nxt
            qlen += 1
            nxt += 1
        usage += n_active
        # activation
        k = 0
        if policy == 0:
            k = min(budgets[t], qlen)
        elif policy == 1:
            limit = (1.0 - pparams[0]) * memory
            seqcap = pparams[1] - n_active if pparams[1] > 0 else qlen
            u = usage
            while k < qlen and k < seqcap:
                rid = qbuf[(qh + k) % cap]
                need = s_arr[rid] + (g0[rid] if keep else 0) + 1
                if u + need > limit:
                    break
                u += need
                k += 1
        else:
            rcap = pparams[0]
            reserved = sum_s_active + n_active * rcap
            while k < qlen:
                rid = qbuf[(qh + k) % cap]
                need = s_arr[rid] + rcap
                if reserved + need > memory:
                    break
                reserved += need
                k += 1
        prefill = 0
        base = sp  # this slot's activations go on the stack above it
        for _ in range(k):
            rid = qbuf[qh]
            qh = (qh + 1) % cap
            qlen -= 1
            g = g0[rid] if keep else 0
            g0[rid] = g
            act_slot[rid] = t
            active[rid] = True
            n_active += 1
            sum_s_active += s_arr[rid]
            usage += s_arr[rid] + g + 1
            stack[sp] = rid
            sp += 1
            prefill += s_arr[rid] + (g if keep else 0)
            slot_done = (t + o_arr[rid] - g - 1) % wheel
            head = bucket[slot_done]
            nxt_in[rid] = head
            prv_in[rid] = -1
            if head >= 0:
                prv_in[head] = rid
            bucket[slot_done] = rid
        # overflow: LIFO eviction (a request activated in this slot is dropped on admission)
        evicted = 0
        dropped = 0
        while usage > memory:
            sp -= 1
            rid = stack[sp]
            if not active[rid]:
                continue
            g = g0[rid] + (t - act_slot[rid])
            usage -= s_arr[rid] + g + 1
            active[rid] = False
            n_active -= 1
            sum_s_active -= s_arr[rid]
            # unlink from the completion wheel
            nx = nxt_in[rid]
            pv = prv_in[rid]
            if pv >= 0:
                nxt_in[pv] = nx
            else:
                bucket[(act_slot[rid] + o_arr[rid] - g0[rid] - 1) % wheel] = nx
            if nx >= 0:
                prv_in[nx] = pv
            if act_slot[rid] == t:  # void activation: nothing emitted, nothing lost
                n_drop[rid] += 1
                dropped += 1
                prefill -= s_arr[rid] + g  # g = the kept progress (0 under recompute)
            else:
                n_evict[rid] += 1
                evicted += 1
                if keep:
                    g0[rid] = g
                else:
                    wasted[rid] += g
                    g0[rid] = 0
                    if t >= warmup:
                        win_wasted += g
            if requeue_head:
                qh = (qh - 1) % cap
                qbuf[qh] = rid
            else:
                qbuf[(qh + qlen) % cap] = rid
            qlen += 1
        for i in range(base, sp):  # this slot's activations that stay: they emit a token
            rid = stack[i]
            if first_act[rid] < 0:
                first_act[rid] = t
            last_act[rid] = t
        total_ev += evicted
        total_drop += dropped
        if t >= warmup:
            win_ev += evicted
            win_drop += dropped
            if n_active > win_active_max:
                win_active_max = n_active
        if t % stride == 0:
            j = t // stride
            ts_usage[j] = usage
            ts_queue[j] = qlen
            ts_active[j] = n_active
            ts_act[j] = k - dropped
            ts_ev[j] = evicted
            ts_drop[j] = dropped
            ts_clock[j] = clock
        batch = n_active
        kv = usage
        tokens += n_active
        if t >= warmup:
            win_tokens += n_active
        rid = bucket[t % wheel]
        bucket[t % wheel] = -1
        while rid >= 0:
            nx = nxt_in[rid]
            usage -= s_arr[rid] + o_arr[rid]
            active[rid] = False
            n_active -= 1
            sum_s_active -= s_arr[rid]
            done_slot[rid] = t
            completed += 1
            rid = nx
        # compact the stack when it holds many finished requests
        if sp > 2 * n_active + 64:
            w = 0
            for i in range(sp):
                if active[stack[i]]:
                    stack[w] = stack[i]
                    w += 1
            sp = w
        if step_kind == 0:
            clock += sparams[0]
        elif step_kind == 1:
            clock += sparams[0] + sparams[1] * batch + sparams[2] * kv + sparams[3] * prefill
        elif step_kind == 2:
            clock += sparams[4] + sparams[5] * math.ceil((batch + prefill) / sparams[6])
        end_clock[t] = clock
    clock_at[slots] = clock
    return (first_act, last_act, act_slot, done_slot, n_evict, n_drop, wasted, ts_usage, ts_queue,
            ts_active, ts_act, ts_ev, ts_drop, ts_clock, clock_at, end_clock, nxt, completed,
            total_ev, total_drop, tokens, win_tokens, win_wasted, qlen, n_active, win_ev, win_drop,
            win_active_max)
