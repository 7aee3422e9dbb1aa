"""The compiled kernel of :mod:`numerics.sim.fast` (imports numba; import lazily).

One slot loop for every rule that the compiled engine runs; ``policy`` (an int) picks the
activation rule:

* 0 (:attr:`~numerics.sim.state.KernelCode.BUDGET`) activates ``budgets[t]`` head-of-queue
  requests;
* 1 (``FCFS_MEMORY``) admits FCFS while the usage stays ≤ (1 − ``pparams[0]``)·M;
* 2 (``RESERVE``) admits FCFS while Σ_active m(S + L) + m(S_new + L) ≤ M, L = ``pparams[0]``;
* 3 (:data:`CLASS_BUDGETS`, Algorithm 1) activates up to ``class_budgets[k]`` requests of class k,
  FIFO within each class, class 0's first;
* 4 (:data:`MCSF`) activates the longest prefix of the waiting requests sorted by (remaining
  decode, id) for which the usage stays ≤ M at every future completion time;
* 5 (``BUDGET_FIT``) rules 0 and 1 at once: at most ``budgets[t]`` head-of-queue requests, each
  only while the usage stays ≤ (1 − ``pparams[0]``)·M (flow control with a fit check, pparams[0] = 0);
* 6 (:data:`MC`, Jaillet et al.'s MC-Benchmark with the true lengths) MC-SF's future-memory check
  in FIFO order: the same heap, keyed by queue position instead of by remaining decode (arrivals
  and tail requeues numbered up from 0, head requeues down from −1), so it admits the head of
  the queue while the check passes and stops at the first that fails.

Every rule admits at most ``pparams[1]`` − active requests in a slot (max_seqs; 0: no cap); per-class
budgets under that cap take the chosen class heads in global FIFO order (arrivals and tail
requeues numbered up from 0, head requeues down from −1, as :class:`~numerics.sim.state.WaitingQueue`
orders them).

The semantics and the accounting are the Python engine's (:mod:`numerics.sim.engine`): a request
popped in the slot that activated it is dropped on admission (``n_drop``), not evicted;
``first_act``/``last_act`` are the activations that produced a token, ``act_slot`` the current
one. Memory is counted in blocks of ``block`` tokens, m(x) = b·⌈x/b⌉. With ``trace`` the arrivals
come from ``arrival_time`` (seconds) through the step-time clock, and ``arrival_slot`` is filled
as they arrive.

Data structures: the waiting queue is a ring buffer per lane (one lane for the FIFO rules, one per
class for per-class budgets; a lane never holds more requests than exist of it), or for MC-SF a
binary heap keyed by (remaining decode, id) — never rescanned; completions sit on a timing wheel of
doubly linked lists (an evicted request is unlinked in O(1)); the LIFO stack is compacted lazily;
with blocks b > 1, ``nphase[r]`` counts the active requests whose memory crosses into a new block
in the slots t ≡ r (mod b). MC-SF sorts the active set by remaining decode once per slot in which
a request waits, and checks each candidate in O(active + admitted) (:func:`_peak_usage`).

``full`` chooses what is kept: with it every per-request record and the full time series; without
it (summary-only) only the per-request first activation and completion slots (int32), the KV
usage of the recorded window slots and the queue of the recorded second half — what the summary
needs — so the kernel's memory is ~37 bytes per request (int32 ids and slots, int64 kept
progress) plus at most 16 bytes per recorded slot.
"""

import math

import numpy as np
from numba import njit

__all__ = ["CLASS_BUDGETS", "MC", "MCSF", "kernel"]

#: The kernel's code of per-class budgets (Algorithm 1).
CLASS_BUDGETS = 3
#: The kernel's code of MC-SF.
MCSF = 4
#: The kernel's code of MC (FIFO with MC-SF's future-memory check).
MC = 6


@njit(cache=True, inline="always")
def _mem(x, b):
    return x if b == 1 else ((x + b - 1) // b) * b


@njit(cache=True)
def _queue_lanes(n, cls, lanes, mcsf, lane_of_cls):
    """The waiting queue's ring buffers, one lane per class for per-class budgets (else one lane;
    MC-SF keeps its queue in a heap, so a stub lane): (lane_cap, lane_off, qbuf). Shared by the
    event kernel and the step kernel (:mod:`numerics.sim._kernel_step`); run once per run."""
    lane_cap = np.zeros(lanes, np.int64)
    if mcsf:
        lane_cap[0] = 1
    elif lane_of_cls:
        for i in range(n):
            lane_cap[cls[i]] += 1
        for k in range(lanes):
            lane_cap[k] += 1
    else:
        lane_cap[0] = n + 1
    lane_off = np.zeros(lanes, np.int64)
    for k in range(1, lanes):
        lane_off[k] = lane_off[k - 1] + lane_cap[k - 1]
    qbuf = np.empty(lane_off[lanes - 1] + lane_cap[lanes - 1], np.int32)
    return lane_cap, lane_off, qbuf


@njit(cache=True)
def _heap_push(hkey, hid, size, key, rid):
    i = size
    while i > 0:
        p = (i - 1) >> 1
        if hkey[p] < key or (hkey[p] == key and hid[p] < rid):
            break
        hkey[i] = hkey[p]
        hid[i] = hid[p]
        i = p
    hkey[i] = key
    hid[i] = rid
    return size + 1


@njit(cache=True)
def _heap_pop(hkey, hid, size):
    """Remove the root (the caller read it); return the new size."""
    size -= 1
    key = hkey[size]
    rid = hid[size]
    i = 0
    while True:
        c = 2 * i + 1
        if c >= size:
            break
        if c + 1 < size and (hkey[c + 1] < hkey[c] or (hkey[c + 1] == hkey[c] and hid[c + 1] < hid[c])):
            c += 1
        if key < hkey[c] or (key == hkey[c] and rid < hid[c]):
            break
        hkey[i] = hkey[c]
        hid[i] = hid[c]
        i = c
    if size > 0:
        hkey[i] = key
        hid[i] = rid
    return size


@njit(cache=True)
def _peak_usage(ell, mm, r, extra_ell, extra_m):
    """max over τ ∈ {0} ∪ {ℓ_j − 1} of Σ_{ℓ_j > τ} (m_j + τ), for the r items (ℓ ascending) and
    one extra item (``extra_ell`` 0: none); every ℓ ≥ 1, so τ = 0 counts every item."""
    peak = 0
    tot = 0
    cnt = 0
    i = r - 1
    pending = extra_ell > 0
    while i >= 0 or pending:
        if pending and (i < 0 or extra_ell >= ell[i]):
            cur = extra_ell
            tot += extra_m
            pending = False
        else:
            cur = ell[i]
            tot += mm[i]
            i -= 1
        cnt += 1
        nxt_ell = -1
        if pending and (i < 0 or extra_ell >= ell[i]):
            nxt_ell = extra_ell
        elif i >= 0:
            nxt_ell = ell[i]
        if nxt_ell != cur:  # the last item with ℓ = cur: every item alive at τ = cur − 1 is in
            u = tot + (cur - 1) * cnt
            if u > peak:
                peak = u
    return peak if tot <= peak else tot


@njit(cache=True, error_model="numpy")
def kernel(s_arr, o_arr, arrival_slot, budgets, policy, pparams, keep, requeue_head,
           memory, slots, warmup, stride, step_kind, sparams,
           cls, class_budgets, block, trace, arrival_time, clock_tol, full):
    n = s_arr.size
    nf = n if full else 1
    first_act = np.full(n, -1, np.int32)
    done_slot = np.full(n, -1, np.int32)
    last_act = np.full(nf, -1, np.int32)
    n_evict = np.zeros(nf, np.int32)
    n_drop = np.zeros(nf, np.int32)
    wasted = np.zeros(nf, np.int64)
    act_slot = np.empty(n, np.int32)  # read only while active
    g0 = np.zeros(n, np.int64)
    active = np.zeros(n, np.bool_)
    stack = np.empty(n + 1, np.int32)
    sp = 0
    # ---- the waiting queue: ring buffers per lane, or a heap for MC-SF
    mcsf = policy == MCSF or policy == MC  # the future-memory rules keep their queue in a heap
    fifo_heap = policy == MC  # keyed by queue position (MC), else by remaining decode (MC-SF)
    hfront = -1  # MC's heap keys: head requeues down from −1, arrivals and tail requeues up from 0
    hback = 0
    seq_max = int(pparams[1])  # max_seqs, every rule (0: no cap)
    lanes = class_budgets.size if policy == CLASS_BUDGETS else 1
    lane_of_cls = policy == CLASS_BUDGETS
    lane_cap, lane_off, qbuf = _queue_lanes(n, cls, lanes, mcsf, lane_of_cls)
    qh = np.zeros(lanes, np.int64)
    ql = np.zeros(lanes, np.int64)
    merged = lane_of_cls and seq_max > 0  # per-class budgets under max_seqs
    qkey = np.empty(n if merged else 1, np.int64)  # FIFO keys: arrivals up from 0, head pushes down
    kback = 0
    kfront = -1
    taken = np.zeros(lanes, np.int64)
    hkey = np.empty(n if mcsf else 1, np.int64)
    hid = np.empty(n if mcsf else 1, np.int32)
    hsize = 0
    qlen = 0  # waiting requests, every lane
    # MC-SF's scratch: the active items (remaining ℓ, memory m), sorted by ℓ, and the admitted
    ell = np.empty(n if mcsf else 1, np.int64)
    mm = np.empty(n if mcsf else 1, np.int64)
    ell_s = np.empty(n if mcsf else 1, np.int64)
    mm_s = np.empty(n if mcsf else 1, np.int64)
    # ---- the completion wheel: bucket (slot mod W) links the requests completing in that slot
    wheel = 2
    for i in range(n):
        if o_arr[i] + 1 > wheel:
            wheel = o_arr[i] + 1
    bucket = np.full(wheel, -1, np.int32)
    nxt_in = np.empty(n, np.int32)
    prv_in = np.empty(n, np.int32)
    nphase = np.zeros(block, np.int64)
    # ---- recorded series
    n_rec = (slots + stride - 1) // stride
    jw0 = (warmup + stride - 1) // stride  # first recorded window slot
    jh0 = (slots // 2 + stride - 1) // stride  # first recorded slot of the second half
    nr = n_rec if full else 1
    ts_usage = np.zeros(n_rec if full else n_rec - jw0, np.int64)
    ts_queue = np.zeros(n_rec if full else n_rec - jh0, np.int64)
    ts_active = np.zeros(nr, np.int64)
    ts_act = np.zeros(nr, np.int64)
    ts_ev = np.zeros(nr, np.int64)
    ts_drop = np.zeros(nr, np.int64)
    ts_clock = np.zeros(nr)
    timed = step_kind >= 0
    clock_at = np.zeros(slots + 1 if timed else 1)
    end_clock = np.zeros(slots if timed else 1)
    usage = 0
    n_active = 0
    reserved = 0  # Σ_active m(S + L), for the reserve rule
    rcap = int(pparams[0]) if policy == 2 else 0
    limit = (1.0 - pparams[0]) * memory  # the FCFS rule: usage after admission ≤ limit
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
    t_wheel = 0  # t mod wheel
    t_block = 0  # t mod block
    rec_in = 0  # slots until the next recorded one
    jr = -1  # index of the last recorded slot
    for t in range(slots):
        if timed:
            clock_at[t] = clock
        # 1. arrivals: by arrival slot, or (trace replay) by arrival time ≤ the slot's start clock,
        #    which sets the arrival slot
        while nxt < n and (arrival_time[nxt] <= clock + clock_tol if trace else arrival_slot[nxt] == t):
            rid = nxt
            nxt += 1
            if trace:
                arrival_slot[rid] = t
            if mcsf:
                if fifo_heap:
                    hsize = _heap_push(hkey, hid, hsize, hback, rid)
                    hback += 1
                else:
                    hsize = _heap_push(hkey, hid, hsize, o_arr[rid], rid)
            else:
                k = cls[rid] if lane_of_cls else 0
                j = qh[k] + ql[k]
                if j >= lane_cap[k]:
                    j -= lane_cap[k]
                qbuf[lane_off[k] + j] = rid
                ql[k] += 1
                if merged:
                    qkey[rid] = kback
                    kback += 1
            qlen += 1
        # growth of the requests that stay active from the previous slot
        if block == 1:
            usage += n_active
        else:
            usage += block * nphase[t_block]
        # 2. activation, FIFO within each lane: the rule decides on a lane's head, one at a
        #    time, at most ``room`` (max_seqs − active) in all; MC-SF chooses first (its choice
        #    sits on the stack above sp, in order)
        room = seq_max - n_active if seq_max > 0 else qlen
        chosen = 0
        if mcsf and hsize > 0 and room > 0:
            r = 0
            for i in range(sp):
                rid = stack[i]
                if active[rid]:
                    g = g0[rid] + (t - act_slot[rid])
                    ell[r] = o_arr[rid] - g
                    mm[r] = _mem(s_arr[rid] + g + 1, block)
                    r += 1
            order = np.argsort(ell[:r])
            for i in range(r):
                ell_s[i] = ell[order[i]]
                mm_s[i] = mm[order[i]]
            if _peak_usage(ell_s, mm_s, r, 0, 0) <= memory:
                while hsize > 0 and chosen < room:
                    rid = hid[0]
                    gk = g0[rid] if keep else 0
                    c_ell = o_arr[rid] - gk
                    c_m = _mem(s_arr[rid] + gk + 1, block)
                    if _peak_usage(ell_s, mm_s, r, c_ell, c_m) > memory:
                        break
                    hsize = _heap_pop(hkey, hid, hsize)
                    stack[sp + chosen] = rid
                    chosen += 1
                    j = r  # insert (c_ell, c_m) into the sorted items
                    while j > 0 and ell_s[j - 1] > c_ell:
                        ell_s[j] = ell_s[j - 1]
                        mm_s[j] = mm_s[j - 1]
                        j -= 1
                    ell_s[j] = c_ell
                    mm_s[j] = c_m
                    r += 1
        prefill = 0
        base = sp  # this slot's activations go on the stack above it
        activated = 0
        k = 0  # the lane of the next activation
        cnt = 0  # activations from lane k (per-class budgets in class order)
        if merged:
            taken[:] = 0
        while activated < room:
            if mcsf:
                if activated == chosen:
                    break
                rid = stack[sp]  # already chosen, in order
            else:
                if merged:  # budgets under max_seqs: the heads of the classes in global FIFO order
                    k = -1
                    best = 0
                    for c in range(lanes):
                        if taken[c] < class_budgets[c] and ql[c] > 0:
                            key = qkey[qbuf[lane_off[c] + qh[c]]]
                            if k < 0 or key < best:
                                k = c
                                best = key
                    if k < 0:
                        break
                    taken[k] += 1
                elif lane_of_cls:  # budgets: class 0's first, then class 1's, ...
                    while k < lanes and (cnt >= class_budgets[k] or ql[k] == 0):
                        k += 1
                        cnt = 0
                    if k == lanes:
                        break
                    cnt += 1
                elif ql[0] == 0 or ((policy == 0 or policy == 5) and activated >= budgets[t]):
                    break
                h = qh[k]
                rid = qbuf[lane_off[k] + h]
                if policy == 1 or policy == 5:
                    if usage + _mem(s_arr[rid] + (g0[rid] if keep else 0) + 1, block) > limit:
                        break
                elif policy == 2 and reserved + _mem(s_arr[rid] + rcap, block) > memory:
                    break
                h += 1
                if h == lane_cap[k]:
                    h = 0
                qh[k] = h
                ql[k] -= 1
            activated += 1
            qlen -= 1
            g = g0[rid] if keep else 0  # (under recompute g0 is 0 while waiting)
            act_slot[rid] = t
            if first_act[rid] < 0:  # taken back if it is dropped in step 3
                first_act[rid] = t
            active[rid] = True
            n_active += 1
            if policy == 2:
                reserved += _mem(s_arr[rid] + rcap, block)
            usage += _mem(s_arr[rid] + g + 1, block)
            stack[sp] = rid
            sp += 1
            prefill += s_arr[rid] + g
            if block > 1:
                nphase[(t - s_arr[rid] - g) % block] += 1
            slot_done = t_wheel + o_arr[rid] - g - 1
            if slot_done >= wheel:
                slot_done -= wheel
            head = bucket[slot_done]
            nxt_in[rid] = head
            prv_in[rid] = -1
            if head >= 0:
                prv_in[head] = rid
            bucket[slot_done] = rid
        # 3. overflow: LIFO eviction (a request activated in this slot is dropped on admission)
        evicted = 0
        dropped = 0
        while usage > memory:
            sp -= 1
            rid = stack[sp]
            if not active[rid]:
                continue
            a = act_slot[rid]
            g = g0[rid] + (t - a)
            usage -= _mem(s_arr[rid] + g + 1, block)
            active[rid] = False
            n_active -= 1
            if policy == 2:
                reserved -= _mem(s_arr[rid] + rcap, block)
            if block > 1:
                nphase[(a - s_arr[rid] - g0[rid]) % block] -= 1
            # unlink from the completion wheel
            nx = nxt_in[rid]
            pv = prv_in[rid]
            if pv >= 0:
                nxt_in[pv] = nx
            else:
                bucket[(a + o_arr[rid] - g0[rid] - 1) % wheel] = nx
            if nx >= 0:
                prv_in[nx] = pv
            if a == t:  # void activation: nothing emitted, nothing lost
                if first_act[rid] == t:
                    first_act[rid] = -1
                if full:
                    n_drop[rid] += 1
                dropped += 1
                prefill -= s_arr[rid] + g  # g = the kept progress (0 under recompute)
            else:
                if full:
                    n_evict[rid] += 1
                evicted += 1
                if keep:
                    g0[rid] = g
                else:
                    if full:
                        wasted[rid] += g
                    g0[rid] = 0
                    if t >= warmup:
                        win_wasted += g
            if fifo_heap:
                if requeue_head:
                    hsize = _heap_push(hkey, hid, hsize, hfront, rid)
                    hfront -= 1
                else:
                    hsize = _heap_push(hkey, hid, hsize, hback, rid)
                    hback += 1
            elif mcsf:
                hsize = _heap_push(hkey, hid, hsize, o_arr[rid] - (g0[rid] if keep else 0), rid)
            else:
                k = cls[rid] if lane_of_cls else 0
                if requeue_head:
                    h = qh[k] - 1
                    if h < 0:
                        h += lane_cap[k]
                    qh[k] = h
                    qbuf[lane_off[k] + h] = rid
                    if merged:
                        qkey[rid] = kfront
                        kfront -= 1
                else:
                    j = qh[k] + ql[k]
                    if j >= lane_cap[k]:
                        j -= lane_cap[k]
                    qbuf[lane_off[k] + j] = rid
                    if merged:
                        qkey[rid] = kback
                        kback += 1
                ql[k] += 1
            qlen += 1
        if full:
            for i in range(base, sp):  # this slot's activations that stay: they emit a token
                last_act[stack[i]] = t
        total_ev += evicted
        total_drop += dropped
        if t >= warmup:
            win_ev += evicted
            win_drop += dropped
            win_tokens += n_active
            if n_active > win_active_max:
                win_active_max = n_active
        if rec_in == 0:
            rec_in = stride
            jr += 1
            if full:
                ts_usage[jr] = usage
                ts_queue[jr] = qlen
                ts_active[jr] = n_active
                ts_act[jr] = activated - dropped
                ts_ev[jr] = evicted
                ts_drop[jr] = dropped
                ts_clock[jr] = clock
            else:
                if jr >= jw0:
                    ts_usage[jr - jw0] = usage
                if jr >= jh0:
                    ts_queue[jr - jh0] = qlen
        rec_in -= 1
        batch = n_active
        kv = usage
        tokens += n_active
        # 4. completions free their memory at the end of the slot
        rid = bucket[t_wheel]
        bucket[t_wheel] = -1
        while rid >= 0:
            nx = nxt_in[rid]
            usage -= _mem(s_arr[rid] + o_arr[rid], block)
            active[rid] = False
            n_active -= 1
            if policy == 2:
                reserved -= _mem(s_arr[rid] + rcap, block)
            if block > 1:
                nphase[(act_slot[rid] - s_arr[rid] - g0[rid]) % block] -= 1
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
        if timed:
            if step_kind == 0:
                clock += sparams[0]
            elif step_kind == 1:
                clock += sparams[0] + sparams[1] * batch + sparams[2] * kv + sparams[3] * prefill
            else:
                clock += sparams[4] + sparams[5] * math.ceil((batch + prefill) / sparams[6])
            end_clock[t] = clock
        t_wheel += 1
        if t_wheel == wheel:
            t_wheel = 0
        if block > 1:
            t_block += 1
            if t_block == block:
                t_block = 0
    if timed:
        clock_at[slots] = clock
    return (first_act, last_act, act_slot, done_slot, n_evict, n_drop, wasted, ts_usage, ts_queue,
            ts_active, ts_act, ts_ev, ts_drop, ts_clock, clock_at, end_clock, nxt, completed,
            total_ev, total_drop, tokens, win_tokens, win_wasted, qlen, n_active, win_ev, win_drop,
            win_active_max)
