r"""Per-slot invariants of the slot engine, checked from the outside.

:class:`InvariantChecker` is the ``check`` callback of :func:`numerics.sim.simulate`: the engine
calls it every slot t after the overflow check (step 3 of the slot, before the tokens of step 4).
It only reads the run state (``cfg``, ``queue``, ``usage``, ``n_active``, ``stack``, ``active``,
``S``, ``O``, ``g0``, ``act_slot``, ``first_act``, ``last_act``, ``arrival_slot``, ``done_slot``,
``n_evict``, ``n_drop``, ``wasted``, ``total_evictions``, ``total_dropped``, ``memory_tokens``,
``block``, ``keep``, ``n_req``) and keeps its own book of the active set, so a bookkeeping slip in
the engine shows up as a disagreement between two independent accounts.

At every slot t it asserts

* **request conservation**: A_t = C_t + |queue| + |active|, with A_t the requests arrived by slot t
  and C_t those completed by the end of slot t − 1;
* **memory from scratch**: ``usage`` = Σ_active m(S + g + 1), with g = g₀ + (t − τ) the tokens a
  request activated at τ with kept progress g₀ has generated before slot t, and
  m(x) = b·⌈x/b⌉ for blocks of b tokens; 0 ≤ g < O for every active request;
* **capacity**: ``usage`` ≤ M after eviction; and when the slot evicted, the last request evicted
  was needed (``usage`` + its memory > M: the engine evicts only while U > M);
* **causality**: no request is active before its arrival slot; a request completes exactly at the
  end of slot τ + O − g₀ − 1 of its last activation (it emits its O-th token there), never earlier,
  never later;
* **LIFO eviction**: the active stack after eviction is either the previous one followed by the
  requests activated this slot, or a prefix of the previous one (eviction pops the most recently
  activated first); an evicted request lost its progress (``recompute``: g₀ = 0, its tokens added
  to ``wasted``) or kept it (``keep-progress``) and waits in the queue again;
* **fair accounting**: the evictions the engine counts are exactly the previously active requests
  it popped (a request popped in its activation slot is a drop on admission, not an eviction);
  a dropped request keeps its progress, wastes nothing and gets no first or last activation from
  that slot; every request activated this slot that stays has its last activation (and, if it is
  its first token, its first activation) at this slot;
* **FIFO activation** (for :class:`~numerics.sim.policies.FlowControl`,
  :class:`~numerics.sim.policies.Greedy`, :class:`~numerics.sim.policies.AlphaProtection` and
  :class:`~numerics.sim.policies.Reserve`, as long as nothing has been evicted: only then is the
  queue order the arrival order, whatever the requeue position): requests are activated in
  arrival order, i.e. by increasing request id.

On the general step loop of the real-engine batching options (docs/engines.md; the run state has
``gen``, ``pf``, ``target``, ``chunk``, ``used``, ``emits``) it keeps its own book of each active
request's tokens and prefill progress and asserts the same conservation, memory (a request that
emits holds m(S + g + 1), one still prefilling m(p), a stalled one what it held), capacity, LIFO,
eviction and FIFO invariants, and the rules of the mode: ``mixed`` — every active request emits
and prefills at once; ``prefill-first`` — a step with an admission decodes no running request, one
without decodes all, and two or more prefills fit the token budget; ``chunked`` — the tokens of a
step stay within the budget and go in activation order (after a request is cut short, no later
one gets any and nothing is admitted), a request emits when its prefill completes and only then;
at most ``max_seqs`` active; and no admission in a step that preempted when the rule is on.

With ``scan_queue=True`` it also walks the waiting queue every slot (O(queue) per slot): every
waiting request has arrived, is neither active nor finished, appears once, and holds no progress
under ``recompute``; and (FIFO, no eviction yet) the queue is exactly the arrived, not yet activated
requests in arrival order; the drops on admission the engine counts in the slot are exactly the
waiting requests whose current activation is this slot. :meth:`InvariantChecker.finish` checks the
end-of-run identities, e.g.
token conservation: tokens emitted = Σ_completed O + Σ_active g + Σ_waiting g₀ + Σ wasted.

Examples
--------
>>> from numerics.sim import SimConfig, parse_policy, simulate
>>> from numerics.model.specs import parse_law
>>> from numerics.model.workload import Workload
>>> wl = Workload.single(parse_law("uniform:1,10"), parse_law("geom:mean=8,max=40"))
>>> cfg = SimConfig(wl, 200, parse_policy("greedy"), slots=300, arrival_rate=1.5, seed=3)
>>> checker = InvariantChecker()
>>> res = simulate(cfg, check=checker)
>>> checker.finish()
>>> checker.slots_checked
300
"""

from __future__ import annotations

from typing import NoReturn

from numerics.sim.policies import AlphaProtection, FlowControl, Greedy, Reserve

__all__ = ["FIFO_POLICIES", "InvariantChecker"]

#: Policies that activate from the head of the FIFO waiting queue (they return a count).
FIFO_POLICIES = (FlowControl, Greedy, AlphaProtection, Reserve)


def _blocks(tokens: int, block: int) -> int:
    """m(x) = b·⌈x/b⌉, computed here independently of the engine's helper."""
    return -(-tokens // block) * block


class InvariantChecker:
    """Assert the slot engine's invariants every slot; use as ``simulate(cfg, check=checker)``.

    Parameters
    ----------
    scan_queue : bool
        Also walk the waiting queue every slot (see the module docstring). Costs O(queue) per slot;
        turn it off for long overloaded runs.
    fifo : bool or None
        Check FIFO activation order while nothing has been evicted. None (default) decides from the
        policy's type (:data:`FIFO_POLICIES`; subclasses are not assumed FIFO).

    Attributes
    ----------
    sim : object
        The run state of the last call (for :meth:`finish` and post-run inspection).
    slots_checked : int
        Number of slots checked so far.
    arrived, completed : int
        Requests arrived by the last checked slot, and completed before it.
    evictions_seen : int
        Evictions observed: previously active requests popped by the overflow check (exact; the
        engine's count must equal it every slot).
    drops_seen : int
        Drops on admission observed: in FIFO tracking, and with ``scan_queue`` every slot
        (without either, a drop leaves no trace in the active set and is not counted here).
    fifo_slots : int
        Slots in which the FIFO activation order was checked.

    Raises
    ------
    AssertionError
        From a call, naming the slot and the invariant that failed.
    """

    def __init__(self, *, scan_queue: bool = True, fifo: bool | None = None) -> None:
        self.scan_queue = scan_queue
        self.fifo = fifo
        self.sim = None
        self.slots_checked = 0
        self.arrived = 0
        self.completed = 0
        self.evictions_seen = 0
        self.drops_seen = 0
        self.fifo_slots = 0
        self._dropped_before = 0  # the engine's count of drops at the previous check
        self._fifo_ok = True  # no eviction seen yet: the queue is in arrival order
        self._next_fifo = 0  # the request id FIFO activation must take next
        # the active stack at the previous check: (id, activation slot, g0, evictions, wasted)
        self._prev: list[tuple[int, int, int, int, int]] = []
        # step loop: (id, tokens after the slot, prefilled, prefill target, evictions, wasted)
        self._book: list[tuple[int, int, int, int, int, int]] = []

    # ------------------------------------------------------------------ per slot
    def __call__(self, sim, t: int) -> None:
        """Check slot ``t`` of ``sim`` (called by the engine after eviction)."""
        if self.sim is None:
            self.sim = sim
            if self.fifo is None:
                self.fifo = type(sim.cfg.policy) in FIFO_POLICIES
        where = f"slot {t}"
        if sim is not self.sim:
            _fail(where, "the checker is bound to another run (use one checker per run)")
        if t != self.slots_checked:
            _fail(where, f"expected a check of slot {self.slots_checked}")
        self.slots_checked += 1
        m_tokens, block, keep = sim.memory_tokens, sim.block, sim.keep
        S, O, g0, act = sim.S, sim.O, sim.g0, sim.act_slot
        arrival, done, active = sim.arrival_slot, sim.done_slot, sim.active

        # arrivals by slot t (ids arrive in order; trace replay fills arrival slots online)
        n = sim.n_req
        j = self.arrived
        while j < n and 0 <= arrival[j] <= t:
            j += 1
        self.arrived = j
        if hasattr(sim, "gen"):  # the general step loop: its own book and rules
            self._step_check(sim, t, where)
            return

        # completions at the end of slot t - 1: exactly the previously active requests whose O-th
        # token fell there; the others are still active or were evicted in this slot
        kept: list[tuple[int, int, int, int, int]] = []
        for entry in self._prev:
            rid, a, g, _, _ = entry
            due = a + O[rid] - g - 1
            if done[rid] >= 0:
                if due != t - 1 or done[rid] != t - 1:
                    _fail(where, f"request {rid} (activated at slot {a} with {g} tokens kept, "
                                 f"O = {O[rid]}) completed at slot {done[rid]}, expected {due}")
                if active[rid]:
                    _fail(where, f"completed request {rid} is still active")
                self.completed += 1
            elif due == t - 1:
                _fail(where, f"request {rid} should have completed at the end of slot {due} "
                             f"(activated at slot {a}, O = {O[rid]}, {g} tokens kept) but did not")
            else:
                kept.append(entry)

        # the live stack now, in activation order; LIFO: the previous stack plus this slot's
        # activations, or a prefix of the previous stack
        live = [i for i in sim.stack if active[i]]
        if len(set(live)) != len(live):
            _fail(where, "a request is twice in the active stack")
        if len(live) != sim.n_active:
            _fail(where, f"n_active = {sim.n_active} but {len(live)} active requests are on the stack")
        prev_ids = [e[0] for e in kept]
        if live[: len(kept)] == prev_ids:
            new, evicted_prev = live[len(kept):], []
        elif live == prev_ids[: len(live)]:
            new, evicted_prev = [], kept[len(live):]
        else:
            _fail(where, f"not LIFO: the active stack {live[:8]}... is neither the previous stack "
                         f"{prev_ids[:8]}... plus new activations nor a prefix of it")
        first, last_act = sim.first_act, sim.last_act
        for rid in new:
            if act[rid] != t:
                _fail(where, f"request {rid} is new on the stack but was activated at {act[rid]}")
            if not 0 <= arrival[rid] <= t:
                _fail(where, f"request {rid} is active but arrives at slot {arrival[rid]}")
            if last_act[rid] != t or not arrival[rid] <= first[rid] <= t:
                _fail(where, f"request {rid} activated at slot {t} reports first/last activation "
                             f"{first[rid]}/{last_act[rid]} (arrival {arrival[rid]})")

        # evicted requests: counted, progress lost (recompute) or kept (keep-progress)
        # (tokens generated before slot t, when it was evicted: g + (t - a))
        gone = [(rid, g + (t - a), ne, wa) for rid, a, g, ne, wa in evicted_prev]
        dropped_now = self._evictions(sim, where, gone, " (a drop on admission is no eviction)")
        last_evicted_memory = None
        if evicted_prev:  # the lowest one on the stack went last
            rid, a, g, _, _ = evicted_prev[0]
            last_evicted_memory = _blocks(S[rid] + g + (t - a) + 1, block)

        # FIFO activation order while nothing has been evicted
        fifo_tracked = bool(self.fifo and self._fifo_ok)  # this slot's drops are counted below
        if fifo_tracked:
            lo, hi = self._fifo_order(where, act, t, new, "activation", "activated")
            dropped = list(range(lo + len(new), hi))  # activated in slot t and dropped at once
            for rid in dropped:
                if active[rid]:
                    _fail(where, f"request {rid} is active but not on the stack")
                if sim.n_drop[rid] != 1 or sim.n_evict[rid] != 0:
                    _fail(where, f"request {rid}, dropped on admission, counts {sim.n_drop[rid]} drops "
                                 f"and {sim.n_evict[rid]} evictions (want 1 and 0)")
                if first[rid] != -1 or last_act[rid] != -1 or sim.wasted[rid] != 0:
                    _fail(where, f"request {rid}, dropped on admission, reports an activation or waste")
            self._fifo_advance(where, hi, len(dropped), dropped_now, bool(evicted_prev))
            if dropped and not evicted_prev:  # the lowest one on the stack went last
                low = dropped[0]
                last_evicted_memory = _blocks(S[low] + (g0[low] if keep else 0) + 1, block)

        # memory: recomputed from scratch, within M, and no needless eviction
        usage = 0
        for rid in live:
            gen = g0[rid] + (t - act[rid])
            if not 0 <= gen < O[rid]:
                _fail(where, f"active request {rid} has generated {gen} tokens of O = {O[rid]}")
            usage += _blocks(S[rid] + gen + 1, block)
        if sim.usage != usage:
            _fail(where, f"incremental usage {sim.usage} ≠ {usage} recomputed over the {len(live)} "
                         f"active requests (block size {block})")
        if usage > m_tokens:
            _fail(where, f"usage {usage} > M = {m_tokens} after eviction")
        if last_evicted_memory is not None and usage + last_evicted_memory <= m_tokens:
            _fail(where, f"evicted one request too many: usage {usage} + {last_evicted_memory} of "
                         f"the last request evicted ≤ M = {m_tokens}")

        self._conservation(sim, where, live, dropped_now, fifo_tracked)

        self._prev = [(i, act[i], g0[i], sim.n_evict[i], sim.wasted[i]) for i in live]

    check = __call__

    def _evictions(self, sim, where: str, evicted: list[tuple[int, int, int, int]], note: str = "") -> int:
        """Check this slot's evictions: each counted, its progress kept (keep-progress: g0 = the
        tokens it had generated) or lost and wasted (recompute: g0 = 0, waste + those tokens), and
        the engine's total = the evictions seen. ``evicted``: (id, tokens generated, evictions and
        waste before) each; ``note`` ends the total's message. Returns this slot's drops on admission."""
        keep, g0 = sim.keep, sim.g0
        for rid, gen, ne, wa in evicted:
            if sim.n_evict[rid] != ne + 1:
                _fail(where, f"the eviction of request {rid} was not counted")
            want_g0, want_waste = (gen, 0) if keep else (0, gen)
            if g0[rid] != want_g0 or sim.wasted[rid] - wa != want_waste:
                _fail(where, f"{sim.cfg.eviction} eviction of request {rid} after {gen} tokens should "
                             f"leave g0 = {want_g0} and waste {want_waste}; got g0 = {g0[rid]}, wasted "
                             f"{sim.wasted[rid] - wa}")
        self.evictions_seen += len(evicted)
        if sim.total_evictions != self.evictions_seen:
            _fail(where, f"the engine counts {sim.total_evictions} evictions, but {self.evictions_seen} "
                         f"previously active requests were evicted{note}")
        dropped_now = sim.total_dropped - self._dropped_before
        self._dropped_before = sim.total_dropped
        return dropped_now

    def _fifo_order(self, where: str, act, t: int, new: list[int], noun: str, verb: str) -> tuple[int, int]:
        """FIFO while nothing has been evicted: the ids ``lo..hi-1`` activated in slot t (from the
        next one in FIFO order on) begin with exactly this slot's new ones. Returns (lo, hi)."""
        lo = hi = self._next_fifo
        while hi < self.arrived and act[hi] == t:
            hi += 1
        if new != list(range(lo, lo + len(new))):
            _fail(where, f"FIFO {noun} out of arrival order: {verb} {new[:8]}, expected consecutive ids "
                         f"from {lo}")
        return lo, hi

    def _fifo_advance(self, where: str, hi: int, dropped: int, dropped_now: int, evicted: bool) -> None:
        """The FIFO order's ``dropped`` drops on admission are the engine's; the next FIFO id is
        ``hi``; an eviction or a drop ends the FIFO tracking, else the slot counts as tracked."""
        if dropped != dropped_now:
            _fail(where, f"the engine counts {dropped_now} drops on admission, FIFO order {dropped}")
        self.drops_seen += dropped
        self._next_fifo = hi
        if evicted or dropped:
            self._fifo_ok = False
        else:
            self.fifo_slots += 1

    def _conservation(self, sim, where: str, live: list[int], dropped_now: int, fifo_tracked: bool) -> None:
        """Requests are conserved: arrived = completed + waiting + active; then the queue scan."""
        waiting = len(sim.queue)
        if self.arrived != self.completed + waiting + len(live):
            _fail(where, f"{self.arrived} arrived ≠ {self.completed} completed + {waiting} waiting "
                         f"+ {len(live)} active")
        if self.scan_queue:
            self._scan(sim, where, live, dropped_now, fifo_tracked)

    def _scan(self, sim, where: str, live: list[int], dropped_now: int, fifo_tracked: bool) -> None:
        t = self.slots_checked - 1
        waiting = list(sim.queue)
        dropped = [rid for rid in waiting if sim.act_slot[rid] == t]
        if len(dropped) != dropped_now:
            _fail(where, f"the engine counts {dropped_now} drops on admission, but {len(dropped)} "
                         "requests activated in this slot wait again")
        for rid in dropped:
            if sim.last_act[rid] == t or sim.first_act[rid] == t:
                _fail(where, f"request {rid}, dropped on admission, reports an activation at slot {t}")
        if not fifo_tracked:  # (FIFO tracking counted them already)
            self.drops_seen += len(dropped)
        if len(waiting) != len(sim.queue):
            _fail(where, "the queue's length disagrees with its items")
        if len(set(waiting)) != len(waiting):
            _fail(where, "a request waits twice")
        if sum(sim.active) != len(live):
            _fail(where, "an active request is not on the stack")
        for rid in waiting:
            if sim.active[rid]:
                _fail(where, f"request {rid} is both waiting and active")
            if sim.done_slot[rid] >= 0:
                _fail(where, f"finished request {rid} waits again")
            if not 0 <= sim.arrival_slot[rid] <= t:
                _fail(where, f"request {rid} waits before arriving")
            if not (0 <= sim.g0[rid] < sim.O[rid]) or (sim.g0[rid] and not sim.keep):
                _fail(where, f"request {rid} waits with {sim.g0[rid]} tokens of progress "
                             f"(O = {sim.O[rid]}, {sim.cfg.eviction})")
        if self.fifo and self._fifo_ok and waiting != list(range(self._next_fifo, self.arrived)):
            _fail(where, f"with FIFO activation and no eviction the queue should hold the ids "
                         f"{self._next_fifo}..{self.arrived - 1} in order")

    # ------------------------------------------------------------------ the step loop
    def _step_check(self, sim, t: int, where: str) -> None:
        """Slot ``t`` of the general step loop (:class:`numerics.sim.engine._StepSim`): its own
        book of each active request's progress, and the rules of the batching mode."""
        cfg = sim.cfg
        mode, keep, block, m_tokens = cfg.batching, sim.keep, sim.block, sim.memory_tokens
        budget = cfg.max_batched_tokens
        S, O, g0, gen, pf, target = sim.S, sim.O, sim.g0, sim.gen, sim.pf, sim.target
        act, active, done = sim.act_slot, sim.active, sim.done_slot
        emits, chunk, used = sim.emits, sim.chunk, sim.used

        # completions at the end of slot t - 1: exactly the requests that emitted their O-th token
        kept = []
        for entry in self._book:
            rid, g_after = entry[0], entry[1]
            if g_after == O[rid]:
                if done[rid] != t - 1 or active[rid]:
                    _fail(where, f"request {rid} emitted its O-th token ({O[rid]}) at slot {t - 1} "
                                 f"but reports completion slot {done[rid]}")
                self.completed += 1
            elif done[rid] >= 0:
                _fail(where, f"request {rid} completed at slot {done[rid]} after {g_after} of "
                             f"{O[rid]} tokens")
            else:
                kept.append(entry)

        # LIFO: the stack is a prefix of the previous one, then this slot's admissions
        live = list(sim.stack)
        if len(set(live)) != len(live) or any(not active[i] for i in live):
            _fail(where, "the active stack repeats a request or holds an inactive one")
        if len(live) != sim.n_active or sum(active) != len(live):
            _fail(where, f"n_active = {sim.n_active} but {len(live)} requests are on the stack")
        n_old = 0
        while n_old < min(len(live), len(kept)) and live[n_old] == kept[n_old][0] \
                and act[live[n_old]] != t:  # (one evicted and readmitted in this slot is new)
            n_old += 1
        new, evicted_prev = live[n_old:], kept[n_old:]
        for rid in new:
            if act[rid] != t or not 0 <= sim.arrival_slot[rid] <= t:
                _fail(where, f"not LIFO: request {rid} is above the kept stack but was admitted at "
                             f"slot {act[rid]} (arrival {sim.arrival_slot[rid]})")
        if evicted_prev and new and not (cfg.admits_after_preemption and mode == "chunked"):
            _fail(where, f"evicted {len(evicted_prev)} running requests and admitted {len(new)} in the "
                         f"same slot ({mode}, admission after preemption {cfg.admits_after_preemption})")

        # evicted requests: counted; progress kept (keep-progress) or lost and wasted (recompute)
        gone = [(rid, g_after, ne, wa) for rid, g_after, _, _, ne, wa in evicted_prev]
        dropped_now = self._evictions(sim, where, gone)

        # each live request's tokens this slot, from the book, and the memory it holds
        books = {e[0]: e for e in kept[:n_old]}
        usage = processed = 0
        short = False  # chunked: a request got fewer tokens than it needed; the later ones get none
        for rid in live:
            if rid in books:
                _, g_after, pf_before, tgt, _, _ = books[rid]
                if gen[rid] != g_after or target[rid] != tgt:
                    _fail(where, f"request {rid} reports {gen[rid]} tokens and prefill {target[rid]}, "
                                 f"its book {g_after} and {tgt}")
            else:
                pf_before, tgt = 0, S[rid] + g0[rid]
                if gen[rid] != g0[rid] or target[rid] != tgt or (g0[rid] and not keep):
                    _fail(where, f"request {rid} admitted with {g0[rid]} tokens kept ({cfg.eviction}) "
                                 f"reports {gen[rid]} tokens and prefill {target[rid]}")
            if not 0 <= gen[rid] < O[rid]:
                _fail(where, f"active request {rid} has generated {gen[rid]} tokens of O = {O[rid]}")
            prefilling = pf_before < tgt
            c = pf[rid] - pf_before
            need = tgt - pf_before if prefilling else 1
            want_used = c if prefilling else int(emits[rid])
            if c < 0 or c != chunk[rid] or (c and not prefilling) or used[rid] != want_used \
                    or pf[rid] > tgt:
                _fail(where, f"request {rid}: prefill {pf_before} → {pf[rid]} of {tgt}, chunk "
                             f"{chunk[rid]}, {used[rid]} tokens used, emits {emits[rid]}: inconsistent")
            if prefilling and emits[rid] != (pf[rid] == tgt):
                _fail(where, f"request {rid} {'emits' if emits[rid] else 'does not emit'} with "
                             f"{pf[rid]} of {tgt} prompt tokens prefilled")
            if mode != "chunked" and rid not in books and pf[rid] != tgt:
                _fail(where, f"{mode} prefills at once, but request {rid} has {pf[rid]} of {tgt}")
            if mode == "mixed" and not emits[rid]:
                _fail(where, f"mixed: active request {rid} emits no token")
            if mode == "chunked":
                if short and (used[rid] or rid not in books):
                    _fail(where, f"chunked: request {rid} got tokens after an earlier one was cut short")
                short = short or used[rid] < need
            processed += used[rid]
            if emits[rid]:
                usage += _blocks(S[rid] + gen[rid] + 1, block)
                if gen[rid] == g0[rid] and (sim.last_act[rid] != t
                                            or not sim.arrival_slot[rid] <= sim.first_act[rid] <= t):
                    _fail(where, f"request {rid} emits its first token of an activation at slot {t} "
                                 f"but reports first/last activation {sim.first_act[rid]}/"
                                 f"{sim.last_act[rid]}")
            else:
                usage += _blocks(pf[rid] if pf[rid] < tgt else S[rid] + gen[rid], block)
        if mode == "prefill-first":
            old_emit = any(emits[i] for i in live[:n_old])
            if new and old_emit:
                _fail(where, "prefill-first: a step that prefills decodes nothing, but a running "
                             "request emits")
            if not new and not all(emits[i] for i in live):
                _fail(where, "prefill-first: a step without prefill decodes every running request")
            pre = sum(chunk[i] for i in new)
            if budget is not None and len(new) > 1 and pre > budget:
                _fail(where, f"prefill-first: {pre} prompt tokens in one step, budget {budget}")
        if mode == "chunked" and processed > budget:
            _fail(where, f"chunked: the step processed {processed} tokens, budget {budget}")
        if sim.usage != usage:
            _fail(where, f"usage {sim.usage} ≠ {usage} recomputed over the {len(live)} active requests")
        if usage > m_tokens:
            _fail(where, f"usage {usage} > M = {m_tokens} after eviction")
        seqs = cfg.policy.max_seqs
        if seqs is not None and len(live) > seqs:
            _fail(where, f"{len(live)} active requests, more than max_seqs = {seqs}")
        if evicted_prev:  # the lowest one evicted was needed: usage + what it would hold > M
            rid, g_after, pf_before, tgt, _, _ = evicted_prev[0]
            bound = _blocks((S[rid] + g_after if pf_before >= tgt else tgt) + 1, block)
            if usage + bound <= m_tokens:
                _fail(where, f"evicted one request too many: usage {usage} + {bound} ≤ M = {m_tokens}")

        # FIFO admission while nothing has been evicted: ids in arrival order (unless an evicted
        # request may be readmitted in its eviction slot: chunked with admission after preemption)
        if evicted_prev and mode == "chunked" and cfg.admits_after_preemption:
            self._fifo_ok = False
        if self.fifo and self._fifo_ok:
            lo, hi = self._fifo_order(where, act, t, new, "admission", "admitted")
            self._fifo_advance(where, hi, hi - lo - len(new), dropped_now, bool(evicted_prev))
            fifo_tracked = True
        else:
            fifo_tracked = False
        if not cfg.admits_after_preemption and mode != "prefill-first" and evicted_prev and dropped_now:
            _fail(where, "a step that preempted admitted (and dropped) a request")

        self._conservation(sim, where, live, dropped_now, fifo_tracked)
        if self.scan_queue:
            for rid in sim.queue:
                if gen[rid] != g0[rid] or pf[rid]:
                    _fail(where, f"waiting request {rid} holds progress {gen[rid]} ≠ g0 {g0[rid]} "
                                 f"or prefill {pf[rid]}")
        self._book = [(i, gen[i] + emits[i], pf[i], target[i], sim.n_evict[i], sim.wasted[i])
                      for i in live]

    # ------------------------------------------------------------------ end of run
    def finish(self, sim=None) -> None:
        """Check the end-of-run identities of the checked run (after :func:`simulate` returns).

        Every slot was checked; requests are conserved (arrived = completed + waiting + active,
        in the run's own counters too); per-request evictions and drops on admission add up to the
        run's totals; tokens are conserved: tokens emitted = Σ_completed O +
        Σ_active g + Σ_waiting g₀ + Σ wasted, where g = g₀ + (T − τ) for a request active at the
        end of T slots (the step loop counts g itself: ``gen``).
        """
        sim = self.sim if sim is None else sim
        where = "end of run"
        if sim is None:
            _fail(where, "finish() before any slot was checked")
        slots = sim.cfg.slots
        if self.slots_checked != slots:
            _fail(where, f"checked {self.slots_checked} of {slots} slots")
        stepped = hasattr(sim, "gen")
        if stepped:
            last = sum(1 for e in self._book if e[1] == sim.O[e[0]])
        else:
            last = sum(1 for rid, a, g, _, _ in self._prev if a + sim.O[rid] - g - 1 == slots - 1)
        completed = self.completed + last
        if sim.completed != completed or sum(d >= 0 for d in sim.done_slot) != completed:
            _fail(where, f"the run counts {sim.completed} completions, the checker {completed}")
        if sim.arrived != self.arrived:
            _fail(where, f"the run counts {sim.arrived} arrivals, the checker {self.arrived}")
        if sim.arrived != completed + len(sim.queue) + sim.n_active:
            _fail(where, "arrived ≠ completed + waiting + active")
        if sum(sim.n_evict) != sim.total_evictions or sum(sim.n_drop) != sim.total_dropped:
            _fail(where, f"per-request evictions/drops ({sum(sim.n_evict)}/{sum(sim.n_drop)}) ≠ the "
                         f"run's totals ({sim.total_evictions}/{sim.total_dropped})")
        emitted = sum(sim.wasted)
        for rid in range(sim.n_req):
            if sim.done_slot[rid] >= 0:
                emitted += sim.O[rid]
            elif sim.active[rid]:
                emitted += sim.gen[rid] if stepped else sim.g0[rid] + (slots - sim.act_slot[rid])
            else:
                emitted += sim.g0[rid]
        if sim.tokens_generated != emitted:
            _fail(where, f"tokens emitted {sim.tokens_generated} ≠ {emitted} accounted for by the "
                         "completed, active, waiting and wasted requests")


def _fail(where: str, message: str) -> NoReturn:
    """Raise the checker's error (explicitly, so that ``python -O`` keeps the checks)."""
    raise AssertionError(f"{where}: {message}")
