r"""The hindsight optimum of Jaillet et al. (arXiv:2502.07115): an integer program over known
arrivals and lengths, its LP relaxation, and the policies run on the same instance.

The program (the paper's time-indexed formulation, written in flowstab's slot convention,
docs/model.md). An **instance** is n requests with arrival slots :math:`a_i`, prompts
:math:`s_i`, decode lengths :math:`o_i` (:math:`s_i + o_i \le M`) and the memory M. A binary
:math:`x_{i,\tau}` says that request i starts (is activated) in slot :math:`\tau \ge a_i` and
runs without interruption: in slot :math:`\tau + k - 1` it holds :math:`s_i + k` tokens,
:math:`k = 1..o_i`, and it completes in slot :math:`\tau + o_i - 1`.

.. math::

    \min \sum_i \sum_\tau (\tau + o_i - a_i)\, x_{i,\tau}
    \quad\text{s.t.}\quad \sum_\tau x_{i,\tau} = 1\ \forall i, \qquad
    \sum_i \sum_{\tau \le t < \tau + o_i} (s_i + t - \tau + 1)\, x_{i,\tau} \le M\ \forall t.

**Latency convention.** :math:`\tau + o_i - a_i` = completion slot − arrival slot + 1, the
simulator's ``latency_slots`` (:mod:`numerics.sim.results`): the paper's "start p, finish
p + o, latency p + o − a" with its round p + j = flowstab's slot p + j − 1, so the two
objectives are the same number for the same schedule, and a ratio policy/optimum compares like
with like. The optimum is the least **total** latency (the sum over requests).

**Why it bounds every policy (recompute eviction).** The program is non-preemptive; the policies
may evict. Under ``eviction="recompute"`` an evicted request loses its progress, so its last
activation runs uninterrupted from start to completion; the last activations of all requests
form a schedule that uses at every slot at most the memory the policy used (≤ M; the evicted runs
only add), with the same completion slots. It is feasible for the program, so the optimum ≤ the
policy's total latency. Under ``keep-progress`` an eviction is a genuine pause, and a preemptive
schedule can beat the non-preemptive optimum (a short request that arrives while a long one
fills memory can pass it); there the program is no bound (:func:`compare_policies` says so).
Paged memory (b > 1) only tightens the policies' constraint, so the bound holds for it too.

**Horizon.** Some optimal schedule has no idle slot after the last arrival while a request is
unfinished (shifting every later start one slot earlier into an idle slot keeps memory feasible
and lowers the objective), so every start is ≤ :math:`a_{\max} + \sum_j o_j - o_i`. With a
feasible schedule of total latency L (a list schedule, :func:`list_schedule`) each request's wait
is at most the optimum's total wait ≤ L − Σ o, so moreover :math:`\tau_i \le a_i + L - \sum_j o_j`.
Both cuts keep every optimal solution.

**Solver.** HiGHS through :func:`scipy.optimize.milp`, with a time limit and a relative gap; the
result reports the status, the objective (best feasible), the dual bound and the gap as HiGHS
gives them, so a time-limited run says how far from proven it is. :func:`solve_lp` solves the LP
relaxation (a lower bound for instances too large for the program).
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

from numerics.errors import SettingError, WorkloadError

__all__ = [
    "ArrivalPattern",
    "HindsightResult",
    "Instance",
    "compare_policies",
    "list_schedule",
    "paper_instance",
    "policy_latency",
    "sample_instance",
    "solve_hindsight",
    "solve_lp",
]

#: How the requests of an instance arrive: all in slot 0, or Poisson per slot.
ArrivalPattern = Literal["batch", "poisson"]
#: The largest program :func:`solve_hindsight` builds (start variables); beyond it use the LP or
#: fewer requests.
MAX_VARIABLES = 2_000_000


@dataclass(frozen=True, eq=False)
class Instance:
    """Known requests: arrival slots, prompts, decode lengths (sorted by arrival) and M.

    Raises
    ------
    WorkloadError
        Empty, mismatched or negative arrays, a decode length < 1, or a request with
        s + o > M (it can never run).
    """

    arrival: np.ndarray
    prompt: np.ndarray
    decode: np.ndarray
    memory: int

    def __post_init__(self) -> None:
        a, s, o = (np.asarray(x, dtype=np.int64).ravel() for x in (self.arrival, self.prompt, self.decode))
        if a.size == 0 or not (a.size == s.size == o.size):
            raise WorkloadError("an instance needs equally many (≥ 1) arrivals, prompts and decodes")
        if np.any(a < 0) or np.any(s < 0) or np.any(o < 1):
            raise WorkloadError("arrival slots and prompts must be ≥ 0 and decode lengths ≥ 1")
        m = int(self.memory)
        if np.any(s + o > m):
            worst = int((s + o).max())
            raise WorkloadError(f"a request needs s + o = {worst} > M = {m} tokens and can never "
                                "run; raise the memory or clip the lengths")
        order = np.argsort(a, kind="stable")
        for name, arr in (("arrival", a[order]), ("prompt", s[order]), ("decode", o[order])):
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        object.__setattr__(self, "memory", m)

    @property
    def n(self) -> int:
        """Number of requests."""
        return int(self.arrival.size)

    def horizon(self) -> int:
        """a_max + Σ o: every optimal schedule ends by then (module docstring)."""
        return int(self.arrival.max() + self.decode.sum())


def paper_instance(n: int, rng: np.random.Generator, arrivals: ArrivalPattern = "batch",
                   rate: float | None = None) -> Instance:
    """Jaillet et al.'s synthetic instance: M ~ U{30..50}, s ~ U{1..5}, o ~ U{1..M − s}.

    ``arrivals="batch"``: all in slot 0; ``"poisson"``: independent Poisson(``rate``) counts
    per slot (the request count is n, the slots are those the n arrivals take).
    """
    memory = int(rng.integers(30, 51))
    s = rng.integers(1, 6, size=n)
    o = np.array([rng.integers(1, memory - si + 1) for si in s])
    return Instance(_arrival_slots(n, rng, arrivals, rate), s, o, memory)


def sample_instance(n: int, memory: int, prompt, decode, rng: np.random.Generator,
                    arrivals: ArrivalPattern = "batch", rate: float | None = None) -> Instance:
    """n requests with (s, o) from the :class:`~numerics.model.laws.TokenLaw`\\ s ``prompt`` and
    ``decode`` (independent), arriving as :func:`paper_instance` says."""
    s = np.asarray(prompt.sample(n, rng), dtype=np.int64)
    o = np.asarray(decode.sample(n, rng), dtype=np.int64)
    return Instance(_arrival_slots(n, rng, arrivals, rate), s, o, memory)


def _arrival_slots(n: int, rng: np.random.Generator, arrivals: str, rate: float | None) -> np.ndarray:
    if not isinstance(n, int | np.integer) or n < 1:
        raise SettingError(f"`requests` must be a positive integer, got {n!r}", "requests")
    if arrivals == "batch":
        if rate is not None:
            raise SettingError("`arrival_rate` is for poisson arrivals; batch puts every request "
                               "in slot 0", "arrival_rate", "arrivals")
        return np.zeros(n, dtype=np.int64)
    if arrivals != "poisson":
        raise SettingError(f"`arrivals` must be batch or poisson, got {arrivals!r}", "arrivals")
    if rate is None or not math.isfinite(rate) or rate <= 0:
        raise SettingError(f"poisson arrivals need `arrival_rate` > 0 (requests per slot), got {rate!r}",
                           "arrival_rate")
    # the slot of the k-th arrival of a Poisson(rate)-per-slot process: cumulative counts
    slots, t = [], 0
    while len(slots) < n:
        slots.extend([t] * int(rng.poisson(rate)))
        t += 1
    return np.asarray(slots[:n], dtype=np.int64)


def list_schedule(inst: Instance, order: Literal["fcfs", "shortest"] = "shortest") -> np.ndarray:
    """A feasible non-preemptive schedule: each request, in ``order`` (arrival, or shortest decode
    first), at the earliest slot ≥ its arrival where its whole memory profile fits. Returns the
    start slots (in the instance's order)."""
    a, s, o, m = inst.arrival, inst.prompt, inst.decode, inst.memory
    horizon = inst.horizon() + int(o.max()) + 1
    usage = np.zeros(horizon + int(o.max()) + 1, dtype=np.int64)
    idx = np.arange(inst.n) if order == "fcfs" else np.lexsort((a, o))
    start = np.zeros(inst.n, dtype=np.int64)
    for i in idx:
        prof = s[i] + np.arange(1, o[i] + 1)
        tau = int(a[i])
        while np.any(usage[tau:tau + o[i]] + prof > m):
            tau += 1
        usage[tau:tau + o[i]] += prof
        start[i] = tau
    return start


def schedule_latency(inst: Instance, start: np.ndarray) -> int:
    """Total latency Σ (τ_i + o_i − a_i) of a schedule of start slots."""
    return int(np.sum(np.asarray(start) + inst.decode - inst.arrival))


@dataclass
class HindsightResult:
    """One solve: ``status`` (HiGHS's message), ``optimal`` (proven within the gap), the best
    feasible total latency ``objective`` (None if none), the proven lower ``bound``, the relative
    ``gap`` (objective − bound)/objective, the start slots, the solve time and the program size."""

    status: str
    optimal: bool
    objective: float | None
    bound: float | None
    gap: float | None
    start: np.ndarray | None
    seconds: float
    variables: int
    constraints: int
    relaxed: bool = False
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        """JSON-ready fields (no start slots)."""
        return {"status": self.status, "optimal": self.optimal, "objective": self.objective,
                "bound": self.bound, "gap": self.gap, "seconds": round(self.seconds, 4),
                "variables": self.variables, "constraints": self.constraints,
                "relaxed": self.relaxed, **self.extra}


def _program(inst: Instance, upper: int | None):
    """The program's arrays: objective, the assignment and memory matrices, the (i, τ) of each
    column. ``upper``: a feasible total latency, for the per-request start cut."""
    a, s, o = inst.arrival, inst.prompt, inst.decode
    last_start = inst.horizon() - o  # τ_i ≤ a_max + Σo − o_i
    if upper is not None:
        last_start = np.minimum(last_start, a + (upper - int(o.sum())))
    widths = last_start - a + 1
    if np.any(widths < 1):
        raise WorkloadError("the upper bound given is below every schedule's latency (a bug)")
    n_var = int(widths.sum())
    if n_var > MAX_VARIABLES:
        raise SettingError(f"the program would have {n_var:,} variables (> {MAX_VARIABLES:,}); use "
                           "fewer requests or the LP relaxation (--lp)", "requests")
    req = np.repeat(np.arange(inst.n), widths)
    offsets = np.concatenate([[0], np.cumsum(widths)[:-1]])
    tau = a[req] + (np.arange(n_var) - offsets[req])
    cost = (tau + o[req] - a[req]).astype(float)
    assign = sparse.csr_matrix((np.ones(n_var), (req, np.arange(n_var))), shape=(inst.n, n_var))
    # memory: column (i, τ) puts s_i + k tokens in slot τ + k − 1, k = 1..o_i
    lens = o[req]
    col = np.repeat(np.arange(n_var), lens)
    k = np.arange(int(lens.sum())) - np.repeat(np.cumsum(lens) - lens, lens)  # 0..o_i − 1
    row = tau[col] + k
    val = s[req][col] + k + 1
    n_slots = int(row.max()) + 1
    mem = sparse.csr_matrix((val.astype(float), (row, col)), shape=(n_slots, n_var))
    return cost, assign, mem, req, tau


def _check_size_floor(inst: Instance) -> None:
    """Raise the size error of :func:`_program` early, from a lower bound on its variable count.

    At most k = ⌊M / (min s + 1)⌋ requests hold memory in one slot, so the total completion time
    is at least that of shortest-decode-first on k parallel machines (the optimum of P‖ΣC, a
    relaxation); that lower bound on the latency gives a lower bound on the per-request start
    windows of :func:`_program`'s cut.
    """
    a, s, o = inst.arrival, inst.prompt, inst.decode
    k = max(1, int(inst.memory // (int(s.min()) + 1)))
    spt = np.sort(o)
    done = np.zeros(len(spt), dtype=np.int64)
    for j in range(len(spt)):
        done[j] = spt[j] + (done[j - k] if j >= k else 0)
    upper = max(int(done.sum() - a.sum()), int(o.sum()))
    last_start = np.minimum(inst.horizon() - o, a + (upper - int(o.sum())))
    floor = int(np.maximum(last_start - a + 1, 1).sum())
    if floor > MAX_VARIABLES:
        raise SettingError(f"the program would have at least {floor:,} variables (> {MAX_VARIABLES:,}); "
                           "use fewer requests or the LP relaxation (--lp)", "requests")


@contextlib.contextmanager
def _quiet_stdout():
    """Send file descriptor 1 to /dev/null for the block (output written from C code too), so
    that ``flowstab hindsight --json`` prints JSON only."""
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no usable descriptor 1 (an embedded interpreter): leave it
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def solve_hindsight(inst: Instance, *, time_limit: float = 60.0, mip_rel_gap: float = 1e-6,
                    relax: bool = False) -> HindsightResult:
    """Solve the hindsight program (or its LP relaxation, ``relax=True``) with HiGHS.

    Parameters
    ----------
    inst : Instance
    time_limit : float
        Seconds HiGHS may take; a run stopped by it reports its best objective, bound and gap.
    mip_rel_gap : float
        HiGHS's relative gap for declaring optimality.
    relax : bool
        Solve the LP relaxation (every x in [0, 1]): a lower bound on the optimum.
    """
    if not (time_limit > 0 and math.isfinite(time_limit)):
        raise SettingError(f"`time_limit` must be > 0 seconds, got {time_limit!r}", "time_limit")
    if not 0 <= mip_rel_gap < 1:
        raise SettingError(f"`mip_rel_gap` must lie in [0, 1), got {mip_rel_gap!r}", "mip_rel_gap")
    _check_size_floor(inst)  # before the list schedules, which take minutes on a huge instance
    lists = [list_schedule(inst, order) for order in ("fcfs", "shortest")]
    best_list = min(lists, key=lambda st: schedule_latency(inst, st))
    heuristic = schedule_latency(inst, best_list)
    t0 = time.perf_counter()
    cost, assign, mem, req, tau = _program(inst, heuristic)
    n_var = cost.size
    cons = [LinearConstraint(assign, 1, 1), LinearConstraint(mem, -np.inf, inst.memory)]
    with _quiet_stdout():  # HiGHS's MIP solver prints debug lines from C even with disp=False
        res = milp(cost, constraints=cons, integrality=np.zeros(n_var) if relax else np.ones(n_var),
                   bounds=Bounds(0, 1), options={"time_limit": float(time_limit),
                                                 "mip_rel_gap": float(mip_rel_gap), "disp": False})
    secs = time.perf_counter() - t0
    extra = {"list_schedule_latency": heuristic, "lower_bound_sum_decode": int(inst.decode.sum()),
             "incumbent": "highs"}
    size = {"variables": n_var, "constraints": assign.shape[0] + mem.shape[0]}
    if relax:
        obj = None if res.x is None else float(res.fun)
        return HindsightResult(res.message, res.status == 0, obj, obj, None if obj is None else 0.0,
                               None, secs, relaxed=True, extra=extra, **size)
    bound = getattr(res, "mip_dual_bound", None)
    bound = float(bound) if bound is not None and math.isfinite(bound) else None
    start = None
    if res.x is not None:
        x = np.round(res.x).astype(np.int64)
        start = np.full(inst.n, -1, dtype=np.int64)
        start[req[x == 1]] = tau[x == 1]
        if np.any(start < 0) or not check_schedule(inst, start):
            start = None  # not a schedule after rounding: fall back on the list schedule
    optimal = res.status == 0 and start is not None
    if start is None or schedule_latency(inst, start) > heuristic:
        # a time-limited run whose incumbent is worse than the list schedule (or has none):
        # the best feasible schedule known is the list schedule
        start, extra["incumbent"] = best_list, "list_schedule"
        optimal = optimal and bound is not None and heuristic <= bound + 0.5
    obj = float(schedule_latency(inst, start))
    gap = None if bound is None else max(obj - bound, 0.0) / obj
    return HindsightResult(res.message, optimal, obj, bound, gap, start, secs, extra=extra, **size)


def solve_lp(inst: Instance, *, time_limit: float = 60.0) -> HindsightResult:
    """The LP relaxation of :func:`solve_hindsight`: a lower bound on the total latency."""
    return solve_hindsight(inst, time_limit=time_limit, relax=True)


def check_schedule(inst: Instance, start: np.ndarray) -> bool:
    """Whether start slots form a feasible schedule: τ_i ≥ a_i and memory ≤ M in every slot."""
    start = np.asarray(start, dtype=np.int64)
    if np.any(start < inst.arrival):
        return False
    end = int((start + inst.decode).max())
    usage = np.zeros(end + 1, dtype=np.int64)
    for tau, s, o in zip(start, inst.prompt, inst.decode, strict=True):
        usage[tau:tau + o] += s + np.arange(1, o + 1)
    return bool(usage.max() <= inst.memory)


def _trace_config(inst: Instance, policy, slots: int, seed: int, eviction: str):
    """A :class:`~numerics.sim.config.SimConfig` that replays the instance exactly: a trace with
    timestamps = arrival slots (shifted so the first is 0) and a constant 1-second step, so the
    simulator's slot t starts at clock t and a request with timestamp a arrives in slot a."""
    from numerics.data.traces import Trace
    from numerics.model.steptime import StepTimeModel
    from numerics.sim.config import SimConfig

    shift = int(inst.arrival.min())
    trace = Trace(inst.prompt, inst.decode, (inst.arrival - shift).astype(float),
                  "hindsight instance", "lengths")
    return SimConfig(trace.to_workload("instance"), inst.memory, policy, slots=slots,
                     arrivals="trace", trace=trace, step_time=StepTimeModel.from_spec("const:1"),
                     seed=seed, eviction=eviction), shift


def policy_latency(inst: Instance, policy, *, seed: int = 0, eviction: str = "recompute",
                   check=None) -> dict:
    """Run ``policy`` (a spec or a Policy) on the instance in the simulator (Python engine) →
    ``total_latency`` (Σ completion − arrival + 1), ``evictions``, ``makespan``, ``finished``.

    The horizon starts at twice the instance's and doubles (up to 64×) until every request
    finished; ``finished`` False means a policy that never completed them all (then
    ``total_latency`` is None).
    """
    from numerics.sim.results import simulate

    base = inst.horizon() + int(inst.arrival.max()) + 2
    for factor in (2, 8, 64):
        cfg, shift = _trace_config(inst, policy, base * factor, seed, eviction)
        res = simulate(cfg, check=check, engine="python")
        rec = res.records
        if len(rec) != inst.n:
            raise WorkloadError(f"the simulator saw {len(rec)} of {inst.n} requests (a bug)")
        if not np.array_equal(rec["arrival_slot"].to_numpy() + shift, inst.arrival):
            raise WorkloadError("the simulator's arrival slots differ from the instance's (a bug)")
        done = rec["completion_slot"]
        if not done.isna().any():
            lat = rec["latency_slots"].to_numpy(dtype=np.int64)
            return {"policy": cfg.policy.spec(), "total_latency": int(lat.sum()),
                    "evictions": int(rec["evictions"].sum()),
                    "dropped_on_admission": int(rec["dropped_on_admission"].sum()),
                    "makespan": int(done.max()) + 1 + shift, "finished": True}
    return {"policy": cfg.policy.spec(), "total_latency": None, "evictions": int(rec["evictions"].sum()),
            "dropped_on_admission": int(rec["dropped_on_admission"].sum()), "makespan": None,
            "finished": False}


def compare_policies(inst: Instance, policies, *, seed: int = 0, eviction: str = "recompute",
                     time_limit: float = 60.0, mip_rel_gap: float = 1e-6, lp: bool = False) -> dict:
    """Solve the instance (the program, or with ``lp`` its relaxation) and run each policy on it.

    Returns a JSON-ready dict: the instance's size, ``optimal_total_latency`` (the program's
    best objective; None with ``lp``), ``proven_optimal`` (False when the time limit stopped
    HiGHS: then the value is the best schedule found, and ``solver.gap`` says how far it may be
    from the optimum), ``lower_bound`` (the dual bound or the LP value), the
    ``solver`` fields, ``bound_valid`` (False under keep-progress: module docstring) and, under
    ``policies``, each policy's total latency, its ratio to the optimum (or to the bound) and its
    evictions.
    """
    sol = solve_hindsight(inst, time_limit=time_limit, mip_rel_gap=mip_rel_gap, relax=lp)
    ref = sol.bound if lp else sol.objective
    rows = []
    for pol in policies:
        row = policy_latency(inst, pol, seed=seed, eviction=eviction)
        tl = row["total_latency"]
        row["ratio"] = None if tl is None or not ref else tl / ref
        rows.append(row)
    return {
        "requests": inst.n, "memory_tokens": inst.memory, "sum_decode": int(inst.decode.sum()),
        "optimal_total_latency": None if lp else sol.objective,
        "proven_optimal": bool(sol.optimal and not lp),
        "lower_bound": sol.bound, "solver": sol.as_dict(), "eviction": eviction,
        "bound_valid": eviction == "recompute",
        "ratio_to": "lp_bound" if lp else "optimal_total_latency",
        "policies": rows,
    }
