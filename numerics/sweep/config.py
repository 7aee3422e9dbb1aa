r"""Sweep configs: the TOML format, its parsing and every check of a grid before it runs.

The format is described in :mod:`numerics.sweep` (``examples/sweep.toml`` in the repository is a
commented example). :func:`sweep_config_from_dict` checks each key with a message that names it
(``[run] slots``, ``[grid] memory_tokens``, ...), then resolves and checks every cell
(:func:`numerics.sweep.cells.sweep_cells`: each cell's :class:`~numerics.sim.config.SimConfig` is
built), so that no run fails midway. The run limits are the simulator's own
(:mod:`numerics.sim.config`).

Examples
--------
>>> cfg = sweep_config_from_dict({"workload": {"prompt": 20, "decode": 10},
...                               "grid": {"policy": "greedy", "arrival_rate": [0.5, 1.0],
...                                        "memory_tokens": 2000}})
>>> cfg.arrival_rates, cfg.memory_tokens, cfg.seeds, cfg.slots, cfg.warmup
((0.5, 1.0), (2000,), (0,), 10000, 1000)
>>> sweep_config_from_dict({"workload": {"prompt": 20, "decode": 10},
...                         "grid": {"policy": "greedy", "memory_tokens": 2000}, "run": {"slots": 0}})
Traceback (most recent call last):
...
numerics.errors.SpecError: <dict>: [run] slots must be one integer ≥ 1, got 0
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from numerics.errors import FlowstabError, SpecError
from numerics.model.workload import MAX_MEMORY_TOKENS, Workload
from numerics.sim.config import ARRIVALS as _SIM_ARRIVALS
from numerics.sim.config import (
    BATCHING_MODES,
    ENGINES,
    EVICTION_MODES,
    MAX_SLOTS,
    Batching,
    EngineName,
    EvictionMode,
)

__all__ = [
    "ARRIVALS",
    "DEFAULT_EPSILON",
    "ENGINES",
    "EVICTIONS",
    "MAX_CELLS",
    "SweepArrivals",
    "SweepConfig",
    "SweepError",
    "load_sweep_config",
    "sweep_config_from_dict",
]

#: Largest grid accepted; a typo such as seeds = range(10^6) should be an error, not a week of work.
MAX_CELLS = 1_000_000
#: The arrival processes of a grid: the simulator's, but trace replay (one run, not a grid).
SweepArrivals = Literal["poisson", "deterministic", "bernoulli"]
ARRIVALS: tuple[SweepArrivals, ...] = tuple(a for a in _SIM_ARRIVALS if a != "trace")
EVICTIONS: tuple[EvictionMode, ...] = EVICTION_MODES
DEFAULT_EPSILON = 1e-6

_TABLES = ("workload", "grid", "run")
_WORKLOAD_KEYS = ("preset", "file", "trace", "prompt", "decode")
_GRID_KEYS = ("policy", "arrival_rate", "load", "memory_tokens", "block_size", "seeds",
              "replications", "seed")
_RUN_KEYS = ("slots", "warmup", "arrivals", "eviction", "engine", "epsilon", "step_time", "batching",
             "max_batched_tokens", "admit_after_preemption")


class SweepError(FlowstabError):
    """A sweep cannot start or continue: existing checkpoints, an unusable output path, a cluster
    that cannot be reached, or a cell that failed."""


@dataclass(frozen=True, eq=False)
class SweepConfig:
    """A validated sweep config (build it with :func:`load_sweep_config` or
    :func:`sweep_config_from_dict`).

    Parameters
    ----------
    workload : Workload
    workload_spec : dict
        The ``[workload]`` table as given (for provenance).
    policies : tuple of str
        Policy specs as written (relative rates unresolved).
    arrival_rates, loads : tuple of float or None
        Exactly one is set, or neither when the workload's classes carry their own rates.
    memory_tokens, block_sizes, seeds : tuple of int
    replication_root : int or None
        The root seed when the seeds come from ``replications``; None for explicit seeds.
    slots, warmup : int
    arrivals, eviction, engine : str
    epsilon : float
        The ε of ``r_star``.
    step_time : str or None
    source : str
        Where the config came from (a file name, or ``"<dict>"``).
    batching : {"mixed", "prefill-first", "chunked"}
    max_batched_tokens : int or None
    admit_after_preemption : bool or None
        The real-engine batching options of :class:`~numerics.sim.config.SimConfig` ([run]
        ``batching``, ``max_batched_tokens``, ``admit_after_preemption``; docs/engines.md).
    """

    workload: Workload
    workload_spec: dict
    policies: tuple[str, ...]
    arrival_rates: tuple[float, ...] | None
    loads: tuple[float, ...] | None
    memory_tokens: tuple[int, ...]
    block_sizes: tuple[int, ...]
    seeds: tuple[int, ...]
    replication_root: int | None
    slots: int
    warmup: int
    arrivals: SweepArrivals
    eviction: EvictionMode
    engine: EngineName
    epsilon: float
    step_time: str | None
    source: str = "<dict>"
    batching: Batching = "mixed"
    max_batched_tokens: int | None = None
    admit_after_preemption: bool | None = None

    def to_dict(self) -> dict:
        """The config as plain JSON-ready values (the workload as given, not its laws)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "workload"}
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}



def load_sweep_config(path: str | os.PathLike) -> SweepConfig:
    """Read and validate a sweep config TOML file (format in :mod:`numerics.sweep`).

    Raises
    ------
    SpecError
        The file is missing, is not valid TOML, or a key is unknown, missing or malformed; the
        message names the key and the expected form.
    WorkloadError
        The workload it names is invalid.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"sweep config {str(p)!r}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"sweep config {str(p)!r}: cannot read it ({exc})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{p.name}: not valid TOML ({exc})") from None
    return sweep_config_from_dict(data, base_dir=p.parent, source=p.name)


def sweep_config_from_dict(
    data: Mapping, base_dir: str | os.PathLike = ".", source: str = "<dict>"
) -> SweepConfig:
    """Validate a parsed sweep config (the TOML's tables as dicts); paths are relative to ``base_dir``.

    Raises :class:`~numerics.errors.SpecError` (or a :class:`~numerics.errors.WorkloadError` from
    the workload) with a message that names the offending key.
    """
    from numerics.sim.replicate import replication_seeds

    if not isinstance(data, Mapping):
        raise SpecError(f"{source}: a sweep config is a table with [workload], [grid] and [run]")
    _no_unknown(data, _TABLES, source, "")
    tables = {}
    for name in _TABLES:
        t = data.get(name, {})
        if not isinstance(t, Mapping):
            raise SpecError(f"{source}: {name} must be a table ([{name}]), got {t!r}")
        tables[name] = t
    for name in ("workload", "grid"):
        if not tables[name]:
            raise SpecError(f"{source}: missing [{name}] table (see examples/sweep.toml)")
    where = source
    workload = _read_workload(tables["workload"], Path(base_dir), where)
    run = tables["run"]
    _no_unknown(run, _RUN_KEYS, where, "[run] ")
    slots = _one_int(run.get("slots", 10_000), f"{where}: [run] slots", least=1)
    if slots > MAX_SLOTS:
        raise SpecError(f"{where}: [run] slots = {slots:.3g} is beyond the simulator's limit of "
                        f"{MAX_SLOTS:.0e} slots per run")
    warmup = _one_int(run.get("warmup", slots // 10), f"{where}: [run] warmup", least=0)
    if warmup >= slots:
        raise SpecError(f"{where}: [run] warmup = {warmup} must be less than slots = {slots}")
    if run.get("arrivals") == "trace":
        raise SpecError(f"{where}: [run] arrivals must be one of {', '.join(ARRIVALS)}; trace replay "
                        "is one run, not a grid (flowstab simulate --arrivals trace)")
    arrivals = _choice(run.get("arrivals", "poisson"), ARRIVALS, f"{where}: [run] arrivals")
    eviction = _choice(run.get("eviction", "recompute"), EVICTIONS, f"{where}: [run] eviction")
    engine = _choice(run.get("engine", "auto"), ENGINES, f"{where}: [run] engine")
    epsilon = _one_number(run.get("epsilon", DEFAULT_EPSILON), f"{where}: [run] epsilon")
    if not 0 < epsilon < 1:
        raise SpecError(f"{where}: [run] epsilon must lie in (0, 1), e.g. 1e-6; got {epsilon!r}")
    step_time = run.get("step_time")
    if step_time is not None:
        from numerics.model.steptime import StepTimeModel

        if not isinstance(step_time, str):
            raise SpecError(f"{where}: [run] step_time must be a spec string, e.g. 'const:0.02'")
        try:
            StepTimeModel.from_spec(step_time)
        except FlowstabError as exc:
            raise SpecError(f"{where}: [run] step_time: {exc}") from None
    batching = _choice(run.get("batching", "mixed"), BATCHING_MODES, f"{where}: [run] batching")
    budget = run.get("max_batched_tokens")
    if budget is not None:
        budget = _one_int(budget, f"{where}: [run] max_batched_tokens", least=1)
    admit = run.get("admit_after_preemption")
    if admit is not None and not isinstance(admit, bool):
        raise SpecError(f"{where}: [run] admit_after_preemption must be true or false, got {admit!r}")

    grid = tables["grid"]
    _no_unknown(grid, _GRID_KEYS, where, "[grid] ")
    if "policy" not in grid:
        raise SpecError(f"{where}: [grid] policy is missing; give a list of policy specs, "
                        "e.g. policy = ['flow:rate=0.9*lambda_max', 'greedy']")
    policies = _list(grid["policy"], f"{where}: [grid] policy", "policy specs, e.g. ['greedy']")
    for i, spec in enumerate(policies):
        if not isinstance(spec, str) or not spec.strip():
            raise SpecError(f"{where}: [grid] policy[{i}] must be a non-empty spec string such as "
                            f"'greedy' or 'flow:rate=0.9*lambda_max', got {spec!r}")
    policies = [s.strip() for s in policies]
    _distinct(policies, f"{where}: [grid] policy")
    if "arrival_rate" in grid and "load" in grid:
        raise SpecError(f"{where}: [grid] give either arrival_rate (requests/slot) or load "
                        "(fractions of λ_max), not both")
    arrival_rates = loads = None
    if "arrival_rate" in grid:
        arrival_rates = _positive_numbers(grid["arrival_rate"], f"{where}: [grid] arrival_rate",
                                          "arrival rates in requests per slot, e.g. [0.5, 1.0]")
    elif "load" in grid:
        loads = _positive_numbers(grid["load"], f"{where}: [grid] load",
                                  "fractions of λ_max, e.g. [0.5, 0.9]")
    elif workload.rates_per_slot is None:
        raise SpecError(f"{where}: [grid] needs arrival_rate = [...] (requests per slot) or "
                        "load = [...] (fractions of λ_max): the workload's classes carry no rates")
    if "memory_tokens" in grid:
        memory = _positive_ints(grid["memory_tokens"], f"{where}: [grid] memory_tokens",
                                "KV-cache sizes in tokens, e.g. [65536, 131072]")
    elif workload.memory_tokens is not None:
        memory = (int(workload.memory_tokens),)
    else:
        raise SpecError(f"{where}: [grid] memory_tokens is missing; give KV-cache sizes in tokens, "
                        "e.g. memory_tokens = [65536]")
    for m in memory:
        if m > MAX_MEMORY_TOKENS:
            raise SpecError(f"{where}: [grid] memory_tokens: {m:.3g} tokens is beyond the "
                            f"simulator's limit of {MAX_MEMORY_TOKENS:.0e}")
    blocks = _positive_ints(grid.get("block_size", [1]), f"{where}: [grid] block_size",
                            "block sizes in tokens, e.g. [1, 16]")
    if "seeds" in grid and ("replications" in grid or "seed" in grid):
        raise SpecError(f"{where}: [grid] give either seeds = [...] or replications = N (with an "
                        "optional root seed = S), not both")
    root = None
    if "replications" in grid:
        n = _one_int(grid["replications"], f"{where}: [grid] replications", least=1)
        root = _one_int(grid.get("seed", 0), f"{where}: [grid] seed", least=0)
        if n > MAX_CELLS:
            raise SpecError(f"{where}: [grid] replications = {n} is more than {MAX_CELLS:,}")
        seeds = tuple(replication_seeds(root, n))
    elif "seed" in grid:
        raise SpecError(f"{where}: [grid] seed is the root of replications = N; for explicit "
                        "seeds write seeds = [0, 1, ...]")
    else:
        seeds = _nonnegative_ints(grid.get("seeds", [0]), f"{where}: [grid] seeds",
                                  "non-negative integers, e.g. [0, 1, 2]")
    n_rates = len(arrival_rates or loads or (None,))
    n_cells = len(policies) * n_rates * len(memory) * len(blocks) * len(seeds)
    if n_cells > MAX_CELLS:
        raise SpecError(f"{where}: the grid has {n_cells:,} cells, more than {MAX_CELLS:,}; "
                        "split the sweep")
    config = SweepConfig(
        workload=workload, workload_spec=dict(tables["workload"]), policies=tuple(policies),
        arrival_rates=arrival_rates, loads=loads, memory_tokens=memory, block_sizes=blocks,
        seeds=seeds, replication_root=root, slots=slots, warmup=warmup, arrivals=arrivals,
        eviction=eviction, engine=engine, epsilon=float(epsilon), step_time=step_time,
        source=source, batching=batching, max_batched_tokens=budget, admit_after_preemption=admit,
    )
    from numerics.sweep.cells import sweep_cells

    sweep_cells(config)  # resolve and check every cell now, so that no run fails midway
    return config


def _no_unknown(table: Mapping, allowed: Sequence[str], where: str, prefix: str) -> None:
    extra = [k for k in table if k not in allowed]
    if extra:
        what = "tables" if not prefix else "keys"
        raise SpecError(f"{where}: {prefix}unknown key {extra[0]!r}; the {what} are "
                        f"{', '.join(allowed)}")


def _read_workload(table: Mapping, folder: Path, where: str):
    from numerics.data.loaders import load_workload, load_workload_file
    from numerics.data.traces import load_trace
    from numerics.model.specs import parse_law
    from numerics.model.workload import Workload

    _no_unknown(table, _WORKLOAD_KEYS, where, "[workload] ")
    forms = [k for k in ("preset", "file", "trace") if k in table]
    laws = "prompt" in table or "decode" in table
    if len(forms) + laws != 1:
        raise SpecError(f"{where}: [workload] give exactly one of preset = NAME, file = "
                        "'workload.toml', trace = 'trace.csv', or prompt = SPEC with decode = SPEC")
    try:
        if laws:
            if not ("prompt" in table and "decode" in table):
                raise SpecError("give both prompt and decode, e.g. prompt = 100, "
                                "decode = 'geom:mean=200'")
            p, d = table["prompt"], table["decode"]
            for key, v in (("prompt", p), ("decode", d)):
                if isinstance(v, bool) or not isinstance(v, str | int):
                    raise SpecError(f"{key} must be a law spec string or an integer, got {v!r}")
            wl = Workload.single(parse_law(p), parse_law(d), name="sweep")
            return Workload(wl.classes, "sweep", None, f"prompt {p}, decode {d}")
        key = forms[0]
        value = table[key]
        if not isinstance(value, str) or not value.strip():
            raise SpecError(f"{key} must be a non-empty string, got {value!r}")
        if key == "preset":
            from numerics.data.presets import PRESETS

            if value not in PRESETS:
                raise SpecError(f"unknown preset {value!r}; presets: {', '.join(PRESETS)}")
            return load_workload(value)
        path = Path(value).expanduser()
        path = path if path.is_absolute() else folder / path
        if key == "file":
            return load_workload_file(path)
        return load_trace(path).to_workload()
    except FlowstabError as exc:
        raise type(exc)(f"{where}: [workload] {exc}") from None


def _list(value, what: str, expected: str) -> list:
    values = list(value) if isinstance(value, list | tuple) else [value]
    if not values:
        raise SpecError(f"{what} is empty; expected a list of {expected}")
    return values


def _distinct(values: Sequence, what: str) -> None:
    seen = set()
    for v in values:
        if v in seen:
            raise SpecError(f"{what} lists {v!r} twice; each value must appear once")
        seen.add(v)


def _is_number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _positive_numbers(value, what: str, expected: str) -> tuple[float, ...]:
    values = _list(value, what, expected)
    for v in values:
        if not _is_number(v) or not math.isfinite(v) or v <= 0:
            raise SpecError(f"{what}: {v!r} is not a positive number; expected a list of {expected}")
    out = tuple(float(v) for v in values)
    _distinct(out, what)
    return out


def _ints(value, what: str, expected: str, least: int) -> tuple[int, ...]:
    values = _list(value, what, expected)
    for v in values:
        if not _is_number(v) or not math.isfinite(v) or v != int(v) or v < least:
            raise SpecError(f"{what}: {v!r} is not an integer ≥ {least}; expected a list of {expected}")
    out = tuple(int(v) for v in values)
    _distinct(out, what)
    return out


def _positive_ints(value, what: str, expected: str) -> tuple[int, ...]:
    return _ints(value, what, expected, 1)


def _nonnegative_ints(value, what: str, expected: str) -> tuple[int, ...]:
    return _ints(value, what, expected, 0)


def _one_int(value, what: str, least: int) -> int:
    if not _is_number(value) or not math.isfinite(value) or value != int(value) or value < least:
        raise SpecError(f"{what} must be one integer ≥ {least}, got {value!r}")
    return int(value)


def _one_number(value, what: str) -> float:
    if not _is_number(value) or not math.isfinite(value):
        raise SpecError(f"{what} must be a number, got {value!r}")
    return float(value)


def _choice(value, allowed: Sequence[str], what: str) -> str:
    if value not in allowed:
        raise SpecError(f"{what} must be one of {', '.join(allowed)}, got {value!r}")
    return value

