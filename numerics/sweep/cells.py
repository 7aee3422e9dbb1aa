r"""Sweep cells: the grid's expansion, relative rates resolved, and each cell's checkpoint key.

The cells are the Cartesian product policy × rate × M × b × seed, seed fastest (see
:mod:`numerics.sweep`). A cell's key is the first :data:`KEY_HEX_DIGITS` hex digits of the SHA-256
of a canonical JSON of everything that determines its result and its row: the workload's content,
the run settings, the cell's grid coordinates and resolved policy, the package version
(:func:`numerics.provenance.package_version`) and :data:`SWEEP_SCHEMA`.

Examples
--------
>>> from numerics.sweep.config import sweep_config_from_dict
>>> cfg = sweep_config_from_dict({"workload": {"prompt": 20, "decode": 10},
...                               "grid": {"policy": ["flow:rate=0.5*lambda_max", "greedy"],
...                                        "load": 0.5, "memory_tokens": 2000, "seeds": [0, 1]}})
>>> for c in sweep_cells(cfg):  # λ_max = 2000/255
...     print(c.index, c.policy_resolved, c.seed)
0 flow:rate=3.9215686274509802 0
1 flow:rate=3.9215686274509802 1
2 greedy 0
3 greedy 1
>>> len(sweep_cells(cfg)[0].key)
24
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from dataclasses import dataclass

import numpy as np

from numerics.errors import FlowstabError, SpecError
from numerics.provenance import package_version
from numerics.sweep.config import SweepConfig, SweepError

__all__ = ["KEY_HEX_DIGITS", "SWEEP_SCHEMA", "SweepCell", "describe_cell", "sweep_cells"]

#: Version of the cell key and checkpoint layout; bumping it makes old checkpoints unused.
SWEEP_SCHEMA = 1
#: Hex digits of SHA-256 kept in a cell key (96 bits: a collision among 10^9 cells has
#: probability ~ 10^18 / 2^97 ≈ 6e-12).
KEY_HEX_DIGITS = 24
#: The batching options of a sweep's [run] table and their defaults (the paper's model).
_BATCHING_KEYS = ("batching", "max_batched_tokens", "admit_after_preemption")
_BATCHING_DEFAULTS = {"batching": "mixed", "max_batched_tokens": None, "admit_after_preemption": None}
_RELATIVE_RE = re.compile(r"^(?:(?P<c>[^*]+?)\s*\*\s*)?(?P<ref>lambda_max|r_star)$")


@dataclass(frozen=True)
class SweepCell:
    """One grid point: its coordinates, the resolved run and its checkpoint key.

    ``load`` is the grid's value when the grid gives ``load``, else λ/λ_max(M) (NaN-free: ∞ when
    E[W] = ∞). ``replication`` is None for explicit seeds. ``arrival_rate`` is the total arrival
    rate in requests per slot; ``policy_resolved`` the spec that runs (relative rates replaced).
    """

    index: int
    policy: str
    policy_resolved: str
    load: float
    arrival_rate: float
    memory_tokens: int
    block_size: int
    seed: int
    replication: int | None
    key: str

    @property
    def flow_rate(self) -> float:
        """The activation rate r of a ``flow`` policy (requests per slot); NaN for other policies."""
        from numerics.sim.policies import FlowControl, parse_policy

        policy = parse_policy(self.policy_resolved)
        return float(policy.rate) if isinstance(policy, FlowControl) else math.nan


def _lambda_max(workload, memory: int) -> float:
    from numerics.analysis.conditions import lambda_max

    return lambda_max(workload, memory)


def _resolve_policy(spec: str, config: SweepConfig, memory: int, cache: dict) -> str:
    """``spec`` with a relative flow rate (``c*lambda_max``, ``c*r_star``) replaced by its value."""
    name, sep, args = spec.partition(":")
    if name.strip().lower() != "flow" or not sep:
        return spec
    parts = [p.strip() for p in args.split(",")]
    budget = "randomized"
    for p in parts:
        k, _, v = p.partition("=")
        if k.strip() == "budget":
            budget = v.strip()
    out = []
    for p in parts:
        k, eq, v = p.partition("=")
        m = _RELATIVE_RE.match(v.strip()) if eq and k.strip() == "rate" else None
        if m is None:
            out.append(p)
            continue
        c = 1.0
        if m["c"] is not None:
            try:
                c = float(m["c"])
            except ValueError:
                raise SpecError(f"policy {spec!r}: {m['c']!r} is not a number (write e.g. "
                                "rate=0.9*lambda_max)") from None
            if not math.isfinite(c) or c < 0:
                raise SpecError(f"policy {spec!r}: the factor must be a number ≥ 0, got {m['c']}")
        if m["ref"] == "lambda_max":
            base = _lambda_max(config.workload, memory)
        else:
            ck = ("r_star", memory, budget)
            if ck not in cache:
                from numerics.analysis.plan import make_plan
                from numerics.model.budget import BUDGET_LAWS

                if budget not in BUDGET_LAWS:
                    raise SpecError(f"policy {spec!r}: budget must be one of {', '.join(BUDGET_LAWS)}")
                try:
                    cache[ck] = make_plan(config.workload, memory, config.epsilon, budget).flow_rate
                except FlowstabError as exc:
                    raise SpecError(f"policy {spec!r} with M = {memory}: no r_star ({exc})") from None
            base = cache[ck]
        out.append(f"rate={c * base!r}")
    return f"{name}:{','.join(out)}"


def _workload_fingerprint(workload) -> str:
    """SHA-256 of the workload's content: per class (in order) its rate and length-law arrays."""
    from numerics.model.workload import IndependentLengths

    h = hashlib.sha256()

    def add(tag: str, arr=None, value=None) -> None:
        h.update(tag.encode())
        if arr is not None:
            a = np.ascontiguousarray(arr)
            h.update(str(a.dtype).encode() + str(a.shape).encode())
            h.update(a.tobytes())
        if value is not None:
            h.update(repr(value).encode())

    for c in workload.classes:  # names are labels: they do not change a run
        add("class", value=c.rate_per_slot)
        lengths = c.lengths
        if isinstance(lengths, IndependentLengths):
            for tag, law in (("prompt", lengths.prompt), ("decode", lengths.decode)):
                add(tag, law.values)
                add("probs", law.probs, (law.tail_mass, law.tail_excess))
        else:
            add("joint", lengths.prompt_values)
            add("decode", lengths.decode_values)
            add("probs", lengths.probs)
    return h.hexdigest()


def _step_time_fields(spec: str | None) -> dict | None:
    if spec is None:
        return None
    from numerics.model.steptime import StepTimeModel

    return {k: repr(v) for k, v in dataclasses.asdict(StepTimeModel.from_spec(spec)).items()}


def _run_fields(config: SweepConfig) -> dict:
    """What every cell shares, as it enters the key (the batching options only when they differ
    from the paper's model, so that the keys of earlier sweeps stay valid)."""
    batching = {k: getattr(config, k) for k in _BATCHING_KEYS if getattr(config, k) != _BATCHING_DEFAULTS[k]}
    return batching | {
        "schema": SWEEP_SCHEMA,
        "version": package_version(),
        "workload": _workload_fingerprint(config.workload),
        "slots": config.slots,
        "warmup": config.warmup,
        "arrivals": config.arrivals,
        "eviction": config.eviction,
        "engine": config.engine,
        "step_time": _step_time_fields(config.step_time),
    }


def _cell_key(run: dict, cell: dict) -> str:
    text = json.dumps({"run": run, "cell": cell}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:KEY_HEX_DIGITS]


def sweep_cells(config: SweepConfig) -> list[SweepCell]:
    """The grid's cells in table order (policy × rate × M × b × seed, seed fastest).

    Every cell is resolved (relative rates) and checked (:func:`~numerics.sim.config.check_policy`
    and its :class:`~numerics.sim.config.SimConfig`, with the simulator's limits, are built) here,
    so a bad combination is an error before anything runs. The result is cached on ``config``.

    Raises
    ------
    SpecError
        A policy spec that does not parse or does not fit the workload, or a cell whose run is
        invalid (e.g. a Bernoulli arrival rate above 1); the message names the cell.
    """
    from numerics.sim import fast
    from numerics.sim.config import SimConfig, check_policy
    from numerics.sim.policies import parse_policy

    cached = config.__dict__.get("_cells")
    if cached is not None:
        return list(cached)
    workload = config.workload
    run = _run_fields(config)
    cache: dict = {}
    cells: list[SweepCell] = []
    rates = config.loads if config.loads is not None else config.arrival_rates
    for spec in config.policies:
        for rate in rates if rates is not None else (None,):
            for memory in config.memory_tokens:
                lam_max = _lambda_max(workload, memory)
                try:
                    resolved = _resolve_policy(spec, config, memory, cache)
                    policy = parse_policy(resolved)
                    try:
                        check_policy(policy, workload)
                    except FlowstabError as exc:
                        raise SpecError(f"policy {spec!r}: {exc}") from None
                except FlowstabError as exc:
                    raise SpecError(f"{config.source}: [grid] {exc}") from None
                if config.loads is not None:
                    load, total = rate, rate * lam_max
                    if not total > 0:
                        raise SpecError(f"{config.source}: [grid] load needs λ_max > 0, but "
                                        f"E[W] = ∞ for this workload; give arrival_rate instead")
                else:
                    total = rate if rate is not None else float(workload.rates_per_slot.sum())
                    load = total / lam_max if lam_max > 0 else math.inf
                for block in config.block_sizes:
                    for r, seed in enumerate(config.seeds):
                        replication = r if config.replication_root is not None else None
                        coords = {
                            "policy": spec, "policy_resolved": resolved, "load": repr(float(load)),
                            "arrival_rate": repr(float(total)), "memory_tokens": memory,
                            "block_size": block, "seed": seed, "replication": replication,
                        }
                        cell = SweepCell(len(cells), spec, resolved, float(load), float(total),
                                         memory, block, seed, replication, _cell_key(run, coords))
                        try:
                            sim = SimConfig(policy=policy, **_sim_kwargs(config, cell, workload))
                        except FlowstabError as exc:
                            raise SpecError(f"{config.source}: cell {describe_cell(cell)}: {exc}") from None
                        if config.engine == "fast" and not fast.fast_supported(sim):
                            raise SpecError(
                                f"{config.source}: cell {describe_cell(cell)}: [run] engine = 'fast' runs "
                                "only the policies with a compiled rule (not the adaptive or "
                                "state-aware ones); use engine = 'auto'")
                        cells.append(cell)
    keys = [c.key for c in cells]
    if len(set(keys)) != len(keys):  # pragma: no cover - 96-bit keys of distinct coordinates
        raise SweepError("two cells share a key; report this as a bug")
    object.__setattr__(config, "_cells", tuple(cells))
    return cells


def describe_cell(cell: SweepCell) -> str:
    """``#i (policy …, λ = …/slot, M = …, block …, seed …)``: a cell, for messages."""
    return (f"#{cell.index} (policy {cell.policy}, λ = {cell.arrival_rate:.6g}/slot, "
            f"M = {cell.memory_tokens}, block {cell.block_size}, seed {cell.seed})")


def _sim_kwargs(config: SweepConfig, cell: SweepCell, workload=None) -> dict:
    """SimConfig keywords of a cell (its policy aside); step_time stays a spec for pickling."""
    out = {
        "memory_tokens": cell.memory_tokens,
        "slots": config.slots,
        "arrival_rate": cell.arrival_rate if (config.loads or config.arrival_rates) else None,
        "arrivals": config.arrivals,
        "warmup": config.warmup,
        "seed": cell.seed,
        "block_size": cell.block_size,
        "eviction": config.eviction,
        "step_time": config.step_time,
        "batching": config.batching,
        "max_batched_tokens": config.max_batched_tokens,
        "admit_after_preemption": config.admit_after_preemption,
    }
    if workload is not None:
        from numerics.model.steptime import StepTimeModel

        out["workload"] = workload
        out["step_time"] = StepTimeModel.from_spec(config.step_time) if config.step_time else None
    return out

