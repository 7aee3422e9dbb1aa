"""The compiled step loop of :mod:`numerics.sim.fast` (imports numba; import lazily).

A twin of the Python engine's general step loop (:class:`numerics.sim.engine._StepSim`): the
batching options of docs/engines.md (``prefill-first``, ``chunked`` under a token budget, no
admission in a step that preempted), with the same per-request state (``gen``, ``pf``,
``target``, ``hold``, and for the slot ``chunk``, ``used``, ``emits``) and the same order of
operations in each slot:

1. arrivals (by arrival slot, or in trace replay by arrival time through the step-time clock);
2. the running requests get their tokens in activation order (one decode token, or the next
   prompt chunk, under the token budget; prefill-first stalls them); with ``chunked``, or without
   admission after preemption, LIFO preemption while U > M;
3. admission: the rule's choice (none after a preemption when so configured), cut to the step's
   token budget, each admitted request prefilled (``chunked``: under the budget left);
4. the overflow check, LIFO; prefill-first: a step whose admissions all dropped is a decode step;
5. the first token of an activation sets ``first_act``/``last_act``; tokens, completions; the
   step is priced τ(requests emitting, KV of the requests processed, prompt tokens prefilled).

``policy`` picks the admission rule, with the codes of :mod:`numerics.sim._kernel`: 0 (per-slot
budgets, pre-drawn), 1 (FCFS while usage + m(S + g + 1) ≤ (1 − ``pparams[0]``)·M), 2 (reserve
m(S + L) per active request, L = ``pparams[0]``), 3 (per-class budgets, Algorithm 1; under
max_seqs the class heads in global FIFO order), 4 (MC-SF: the longest prefix of the waiting
requests sorted by (remaining decode, id) feasible at every future completion) and 6 (MC: the same
check on the waiting requests in FIFO order, the heap keyed by queue position). Each rule
decides first, on the state the Python policy reads (the usage after step 2), and the choice is
then cut and admitted, as the Python loop does. ``pparams[1]`` is max_seqs (0: no cap).

``mode`` is 0 (mixed), 1 (prefill-first) or 2 (chunked); ``tok_budget`` the token budget per step
(−1: none). It returns the 28 outputs of :func:`numerics.sim._kernel.kernel`, in its order, with
the same ``full`` (records) and summary-only layouts.

Cost: O(active) per slot, as the Python loop. The decode branch of :func:`_schedule` is written
out in the two per-request loops, because a helper call with array arguments per request and
slot costs about ten times the step itself. The state is ~92 bytes per request (int64 progress,
hold, chunk and budget columns, int32 slots, stack and queue), more than the event kernel's ~37.
"""

import math

import numpy as np
from numba import njit

from numerics.sim._kernel import _heap_pop, _heap_push, _mem, _peak_usage, _queue_lanes

__all__ = ["step_kernel"]

#: A token budget that never runs out (the Python loop's math.inf).
_INF = 1 << 60
# indices of the scalar state kept in one int64 array ``sc`` (numba has no mutable scalars)
_U, _NA, _LEFT, _PF, _SE, _SD, _WW, _RES, _SP, _HS, _QL, _KF, _KB, _HF, _HB = range(15)


@njit(cache=True, inline="always")
def _set_hold(rid, tokens, hold, sc, block):
    h = _mem(tokens, block)
    sc[_U] += h - hold[rid]
    hold[rid] = h


@njit(cache=True)
def _schedule(rid, left, s_arr, gen, pf, target, hold, chunk, used, emits, sc, block):
    """Give the active ``rid`` its tokens of this slot from ``left``; return what is left."""
    p = pf[rid]
    tg = target[rid]
    chunk[rid] = 0
    if p >= tg:  # decoding
        ok = 1 if left >= 1 else 0
        used[rid] = ok
        emits[rid] = ok == 1
        if ok:
            _set_hold(rid, s_arr[rid] + gen[rid] + 1, hold, sc, block)
        return left - ok
    c = tg - p
    if left < c:
        c = left
    chunk[rid] = c
    used[rid] = c
    pf[rid] = p + c
    emits[rid] = p + c == tg
    _set_hold(rid, tg + 1 if p + c == tg else p + c, hold, sc, block)
    sc[_PF] += c
    return left - c


@njit(cache=True)
def _enqueue(rid, front, cls, lane_of_cls, merged, qbuf, qh, ql, lane_off, lane_cap, qkey, sc):
    """Put ``rid`` in its lane's ring buffer: at the head (``front``) or the tail."""
    k = cls[rid] if lane_of_cls else 0
    if front:
        h = qh[k] - 1
        if h < 0:
            h += lane_cap[k]
        qh[k] = h
        qbuf[lane_off[k] + h] = rid
        if merged:
            qkey[rid] = sc[_KF]
            sc[_KF] -= 1
    else:
        j = qh[k] + ql[k]
        if j >= lane_cap[k]:
            j -= lane_cap[k]
        qbuf[lane_off[k] + j] = rid
        if merged:
            qkey[rid] = sc[_KB]
            sc[_KB] += 1
    ql[k] += 1
    sc[_QL] += 1


@njit(cache=True, inline="always")
def _lane_at(k, i, qbuf, qh, lane_off, lane_cap):
    """The i-th waiting request of lane k (0: its head)."""
    j = qh[k] + i
    if j >= lane_cap[k]:
        j -= lane_cap[k]
    return qbuf[lane_off[k] + j]


@njit(cache=True)
def _evict(t, in_window, keep, requeue_head, memory, block, s_arr, o_arr, cls, policy, rcap,
           stack, gen, g0, pf, hold, chunk, used, emits, act_slot, active, n_evict, n_drop,
           wasted, full, sc, lane_of_cls, merged, qbuf, qh, ql, lane_off, lane_cap, qkey,
           hkey, hid, okey):
    """Pop the active stack (LIFO) while memory exceeds M: a request admitted in this slot is
    dropped on admission, an older one evicted; their tokens go back to the step's budget."""
    while sc[_U] > memory:
        sc[_SP] -= 1
        rid = stack[sc[_SP]]
        sc[_U] -= hold[rid]
        hold[rid] = 0
        active[rid] = False
        sc[_NA] -= 1
        sc[_LEFT] += used[rid]
        sc[_PF] -= chunk[rid]
        pf[rid] = 0
        emits[rid] = False
        if policy == 2:
            sc[_RES] -= _mem(s_arr[rid] + rcap, block)
        if act_slot[rid] == t:
            if full:
                n_drop[rid] += 1
            sc[_SD] += 1
        else:
            if full:
                n_evict[rid] += 1
            sc[_SE] += 1
            g = gen[rid]
            if keep:
                g0[rid] = g
            else:
                if full:
                    wasted[rid] += g
                gen[rid] = 0
                g0[rid] = 0
                if in_window:
                    sc[_WW] += g
        if policy == 6:  # MC: the heap is keyed by queue position (head requeues first)
            if requeue_head:
                key = sc[_HF]
                sc[_HF] -= 1
            else:
                key = sc[_HB]
                sc[_HB] += 1
            okey[rid] = key
            sc[_HS] = _heap_push(hkey, hid, sc[_HS], key, rid)
            sc[_QL] += 1
        elif policy == 4:
            sc[_HS] = _heap_push(hkey, hid, sc[_HS], o_arr[rid] - (g0[rid] if keep else 0), rid)
            sc[_QL] += 1
        else:
            _enqueue(rid, requeue_head, cls, lane_of_cls, merged, qbuf, qh, ql, lane_off, lane_cap,
                     qkey, sc)


@njit(cache=True)
def _mcsf_choose(room, memory, block, keep, s_arr, o_arr, stack, gen, g0, hold, sc, hkey, hid,
                 cand, ell, mm, ell_s, mm_s):
    """MC-SF's choice, popped from the heap into ``cand`` in order; returns how many."""
    r = 0
    for i in range(sc[_SP]):
        rid = stack[i]
        ell[r] = o_arr[rid] - gen[rid]
        mm[r] = hold[rid]
        r += 1
    order = np.argsort(ell[:r])
    for i in range(r):
        ell_s[i] = ell[order[i]]
        mm_s[i] = mm[order[i]]
    chosen = 0
    if _peak_usage(ell_s, mm_s, r, 0, 0) > memory:
        return 0
    while sc[_HS] > 0 and chosen < room:
        rid = hid[0]
        gk = g0[rid] if keep else 0
        c_ell = o_arr[rid] - gk
        c_m = _mem(s_arr[rid] + gk + 1, block)
        if _peak_usage(ell_s, mm_s, r, c_ell, c_m) > memory:
            break
        sc[_HS] = _heap_pop(hkey, hid, sc[_HS])
        cand[chosen] = rid
        chosen += 1
        j = r  # insert (c_ell, c_m) into the sorted items
        while j > 0 and ell_s[j - 1] > c_ell:
            ell_s[j] = ell_s[j - 1]
            mm_s[j] = mm_s[j - 1]
            j -= 1
        ell_s[j] = c_ell
        mm_s[j] = c_m
        r += 1
    return chosen


@njit(cache=True)
def _choose(t, policy, budgets, limit, rcap, room, memory, block, keep, s_arr, g0, sc, cand,
            class_budgets, merged, qbuf, qh, ql, lane_off, lane_cap, qkey, taken):
    """The FIFO rules' choice (0–3) into ``cand``, in the order the Python policy lists it,
    nothing taken from the queue yet; returns how many."""
    nc = 0
    if policy == 3:
        lanes = class_budgets.size
        if merged:  # under max_seqs: the chosen class heads in global FIFO order, ``room`` of them
            taken[:] = 0
            while nc < room:
                k = -1
                best = 0
                for c in range(lanes):
                    if taken[c] < class_budgets[c] and taken[c] < ql[c]:
                        key = qkey[_lane_at(c, taken[c], qbuf, qh, lane_off, lane_cap)]
                        if k < 0 or key < best:
                            k = c
                            best = key
                if k < 0:
                    break
                cand[nc] = _lane_at(k, taken[k], qbuf, qh, lane_off, lane_cap)
                taken[k] += 1
                nc += 1
        else:  # class 0's heads, then class 1's, ...
            for c in range(lanes):
                m = min(class_budgets[c], ql[c])
                for i in range(m):
                    cand[nc] = _lane_at(c, i, qbuf, qh, lane_off, lane_cap)
                    nc += 1
        return nc
    usage = sc[_U]
    reserved = sc[_RES]
    cap = min(room, ql[0])
    if (policy == 0 or policy == 5) and budgets[t] < cap:
        cap = budgets[t]
    while nc < cap:
        rid = _lane_at(0, nc, qbuf, qh, lane_off, lane_cap)
        if policy == 1 or policy == 5:  # 5: flow control with a fit check (limit = M)
            need = _mem(s_arr[rid] + (g0[rid] if keep else 0) + 1, block)
            if usage + need > limit:
                break
            usage += need
        elif policy == 2:
            need = _mem(s_arr[rid] + rcap, block)
            if reserved + need > memory:
                break
            reserved += need
        cand[nc] = rid
        nc += 1
    return nc


@njit(cache=True, error_model="numpy")
def step_kernel(s_arr, o_arr, arrival_slot, budgets, policy, pparams, keep, requeue_head,
                memory, slots, warmup, stride, step_kind, sparams,
                cls, class_budgets, block, trace, arrival_time, clock_tol, full,
                mode, tok_budget, admit_after):
    n = s_arr.size
    nf = n if full else 1
    first_act = np.full(n, -1, np.int32)
    done_slot = np.full(n, -1, np.int32)
    last_act = np.full(nf, -1, np.int32)
    n_evict = np.zeros(nf, np.int32)
    n_drop = np.zeros(nf, np.int32)
    wasted = np.zeros(nf, np.int64)
    act_slot = np.full(n, -1, np.int32)
    g0 = np.zeros(n, np.int64)
    gen = np.zeros(n, np.int64)
    pf = np.zeros(n, np.int64)
    target = np.zeros(n, np.int64)
    hold = np.zeros(n, np.int64)
    chunk = np.zeros(n, np.int64)
    used = np.zeros(n, np.int64)
    emits = np.zeros(n, np.bool_)
    active = np.zeros(n, np.bool_)
    stack = np.empty(n + 1, np.int32)
    cand = np.empty(n + 1, np.int32)
    sc = np.zeros(15, np.int64)
    sc[_KF] = -1
    sc[_HF] = -1
    # ---- the waiting queue: ring buffers per lane (one per class for per-class budgets), or a
    # heap keyed by (remaining decode, id) for MC-SF
    mcsf = policy == 4 or policy == 6  # the future-memory rules (MC-SF, MC) keep a heap
    fifo_heap = policy == 6
    okey = np.empty(n if fifo_heap else 1, np.int64)  # MC: each waiting request's heap key
    seq_max = int(pparams[1])
    lane_of_cls = policy == 3
    lanes = class_budgets.size if lane_of_cls else 1
    lane_cap, lane_off, qbuf = _queue_lanes(n, cls, lanes, mcsf, lane_of_cls)
    qh = np.zeros(lanes, np.int64)
    ql = np.zeros(lanes, np.int64)
    merged = lane_of_cls and seq_max > 0
    qkey = np.empty(n if merged else 1, np.int64)
    taken = np.zeros(lanes, np.int64)
    hkey = np.empty(n if mcsf else 1, np.int64)
    hid = np.empty(n if mcsf else 1, np.int32)
    ell = np.empty(n if mcsf else 1, np.int64)
    mm = np.empty(n if mcsf else 1, np.int64)
    ell_s = np.empty(n if mcsf else 1, np.int64)
    mm_s = np.empty(n if mcsf else 1, np.int64)
    # ---- recorded series
    n_rec = (slots + stride - 1) // stride
    jw0 = (warmup + stride - 1) // stride
    jh0 = (slots // 2 + stride - 1) // stride
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
    rcap = int(pparams[0]) if policy == 2 else 0
    limit = (1.0 - pparams[0]) * memory
    budget = _INF if tok_budget < 0 else tok_budget
    cut = tok_budget >= 0 and mode != 0  # the choice is cut to the step's token budget
    preempt_first = mode == 2 or (mode == 0 and not admit_after)
    nxt = 0
    completed = 0
    total_ev = 0
    total_drop = 0
    tokens = 0
    win_tokens = 0
    win_ev = 0
    win_drop = 0
    win_active_max = 0
    clock = 0.0
    jr = -1
    for t in range(slots):
        if timed:
            clock_at[t] = clock
        # 1. arrivals
        while nxt < n and (arrival_time[nxt] <= clock + clock_tol if trace else arrival_slot[nxt] == t):
            rid = nxt
            nxt += 1
            if trace:
                arrival_slot[rid] = t
            if mcsf:
                key = o_arr[rid]
                if fifo_heap:  # arrivals and tail requeues numbered up from 0
                    key = sc[_HB]
                    sc[_HB] += 1
                    okey[rid] = key
                sc[_HS] = _heap_push(hkey, hid, sc[_HS], key, rid)
                sc[_QL] += 1
            else:
                _enqueue(rid, False, cls, lane_of_cls, merged, qbuf, qh, ql, lane_off, lane_cap,
                         qkey, sc)
        in_window = t >= warmup
        sc[_PF] = 0
        sc[_SE] = 0
        sc[_SD] = 0
        # 2. the running requests, in activation order
        left = budget
        for i in range(sc[_SP]):
            rid = stack[i]
            if mode == 1:
                chunk[rid] = 0
                used[rid] = 0
                emits[rid] = False
            elif pf[rid] >= target[rid]:  # decoding: _schedule's first branch, written out (a
                chunk[rid] = 0            # call per request and slot costs more than the step)
                ok = 1 if left >= 1 else 0
                used[rid] = ok
                emits[rid] = ok == 1
                if ok:
                    h = _mem(s_arr[rid] + gen[rid] + 1, block)
                    sc[_U] += h - hold[rid]
                    hold[rid] = h
                left -= ok
            else:
                left = _schedule(rid, left, s_arr, gen, pf, target, hold, chunk, used, emits, sc,
                                 block)
        sc[_LEFT] = left
        if preempt_first and sc[_U] > memory:
            _evict(t, in_window, keep, requeue_head, memory, block, s_arr, o_arr, cls, policy,
                   rcap, stack, gen, g0, pf, hold, chunk, used, emits, act_slot, active, n_evict,
                   n_drop, wasted, full, sc, lane_of_cls, merged, qbuf, qh, ql, lane_off,
                   lane_cap, qkey, hkey, hid, okey)
        # 3. admission: the rule's choice, cut to the step's token budget
        nc = 0
        if sc[_QL] > 0 and (admit_after or sc[_SE] == 0):
            room = sc[_QL]
            if seq_max > 0:
                room = max(seq_max - sc[_NA], 0)
            if mcsf:
                if room > 0:
                    nc = _mcsf_choose(room, memory, block, keep, s_arr, o_arr, stack, gen, g0,
                                      hold, sc, hkey, hid, cand, ell, mm, ell_s, mm_s)
                    sc[_QL] -= nc
            else:
                nc = _choose(t, policy, budgets, limit, rcap, room, memory, block, keep, s_arr, g0,
                             sc, cand, class_budgets, merged, qbuf, qh, ql, lane_off, lane_cap,
                             qkey, taken)
        k = nc
        if cut:
            left = sc[_LEFT]
            total = 0
            k = 0
            for i in range(nc):
                rid = cand[i]
                need = s_arr[rid] + (g0[rid] if keep else 0)
                if mode == 1:
                    if k and total + need > left:
                        break
                elif left - total <= 0:
                    break
                elif need < 1:
                    need = 1  # an empty prompt's first token is decoded: one token
                total += need
                k += 1
        if mcsf:  # the ones cut go back to the heap
            for i in range(k, nc):
                rid = cand[i]
                key = okey[rid] if fifo_heap else o_arr[rid] - (g0[rid] if keep else 0)
                sc[_HS] = _heap_push(hkey, hid, sc[_HS], key, rid)
                sc[_QL] += 1
        base = sc[_SP]
        for i in range(k):
            rid = cand[i]
            if not mcsf:  # it is the head of its lane
                c = cls[rid] if lane_of_cls else 0
                h = qh[c] + 1
                if h == lane_cap[c]:
                    h = 0
                qh[c] = h
                ql[c] -= 1
                sc[_QL] -= 1
            g = g0[rid] if keep else 0
            g0[rid] = g
            gen[rid] = g
            act_slot[rid] = t
            active[rid] = True
            sc[_NA] += 1
            stack[sc[_SP]] = rid
            sc[_SP] += 1
            target[rid] = s_arr[rid] + g
            pf[rid] = 0
            hold[rid] = 0
            if policy == 2:
                sc[_RES] += _mem(s_arr[rid] + rcap, block)
            if mode == 2:
                sc[_LEFT] = _schedule(rid, sc[_LEFT], s_arr, gen, pf, target, hold, chunk, used,
                                      emits, sc, block)
            else:
                _schedule(rid, _INF, s_arr, gen, pf, target, hold, chunk, used, emits, sc, block)
        # 4. overflow check, LIFO (this slot's admissions first: drops on admission)
        if sc[_U] > memory:
            _evict(t, in_window, keep, requeue_head, memory, block, s_arr, o_arr, cls, policy,
                   rcap, stack, gen, g0, pf, hold, chunk, used, emits, act_slot, active, n_evict,
                   n_drop, wasted, full, sc, lane_of_cls, merged, qbuf, qh, ql, lane_off,
                   lane_cap, qkey, hkey, hid, okey)
        if mode == 1 and sc[_SP] <= base:  # no prefill: a decode step
            for i in range(sc[_SP]):
                rid = stack[i]
                if pf[rid] >= target[rid]:  # decoding, written out as above
                    chunk[rid] = 0
                    used[rid] = 1
                    emits[rid] = True
                    h = _mem(s_arr[rid] + gen[rid] + 1, block)
                    sc[_U] += h - hold[rid]
                    hold[rid] = h
                else:
                    _schedule(rid, _INF, s_arr, gen, pf, target, hold, chunk, used, emits, sc,
                              block)
            if sc[_U] > memory:
                _evict(t, in_window, keep, requeue_head, memory, block, s_arr, o_arr, cls,
                       policy, rcap, stack, gen, g0, pf, hold, chunk, used, emits, act_slot,
                       active, n_evict, n_drop, wasted, full, sc, lane_of_cls, merged, qbuf, qh,
                       ql, lane_off, lane_cap, qkey, hkey, hid, okey)
        sp = sc[_SP]
        batch = 0
        kv = 0
        for i in range(sp):
            rid = stack[i]
            if emits[rid]:
                batch += 1
                if gen[rid] == g0[rid]:  # first token of an activation: TTFT's slot
                    if first_act[rid] < 0:
                        first_act[rid] = t
                    if full:
                        last_act[rid] = t
            if emits[rid] or used[rid]:
                kv += hold[rid]
        n_active = sc[_NA]
        evicted = sc[_SE]
        dropped = sc[_SD]
        total_ev += evicted
        total_drop += dropped
        if in_window:
            win_ev += evicted
            win_drop += dropped
            win_tokens += batch
            if n_active > win_active_max:
                win_active_max = n_active
        if t % stride == 0:
            jr += 1
            if full:
                ts_usage[jr] = sc[_U]
                ts_queue[jr] = sc[_QL]
                ts_active[jr] = n_active
                ts_act[jr] = max(sp - base, 0)
                ts_ev[jr] = evicted
                ts_drop[jr] = dropped
                ts_clock[jr] = clock
            else:
                if jr >= jw0:
                    ts_usage[jr - jw0] = sc[_U]
                if jr >= jh0:
                    ts_queue[jr - jh0] = sc[_QL]
        # 5. tokens; a request that emits its O-th token completes and frees its memory
        tokens += batch
        w = 0
        for i in range(sp):
            rid = stack[i]
            if emits[rid]:
                gen[rid] += 1
                if gen[rid] == o_arr[rid]:
                    sc[_U] -= hold[rid]
                    hold[rid] = 0
                    pf[rid] = 0
                    active[rid] = False
                    sc[_NA] -= 1
                    if policy == 2:
                        sc[_RES] -= _mem(s_arr[rid] + rcap, block)
                    done_slot[rid] = t
                    completed += 1
                    continue
            stack[w] = rid
            w += 1
        sc[_SP] = w
        if timed:
            prefill = sc[_PF]
            if step_kind == 0:
                clock += sparams[0]
            elif step_kind == 1:
                clock += sparams[0] + sparams[1] * batch + sparams[2] * kv + sparams[3] * prefill
            else:
                clock += sparams[4] + sparams[5] * math.ceil((batch + prefill) / sparams[6])
            end_clock[t] = clock
    if timed:
        clock_at[slots] = clock
    return (first_act, last_act, act_slot, done_slot, n_evict, n_drop, wasted, ts_usage, ts_queue,
            ts_active, ts_act, ts_ev, ts_drop, ts_clock, clock_at, end_clock, nxt, completed,
            total_ev, total_drop, tokens, win_tokens, sc[_WW], sc[_QL], sc[_NA], win_ev, win_drop,
            win_active_max)
