r"""Sweeps: a grid of simulations → one Parquet table, checkpointed cell by cell.

A sweep config (TOML; ``examples/sweep.toml`` in the repository is a commented example) names a
workload, the grid axes and the run settings::

    [workload]                 # exactly one of: preset, file, trace, or prompt + decode
    preset = "azure-conv"      # file = "wl.toml" / trace = "t.csv" (relative to the config file)

    [grid]                     # lists (a single value counts as a one-element list)
    policy = ["flow:rate=0.9*lambda_max", "flow:rate=r_star", "greedy", "alpha:0.1"]
    load = [0.5, 0.8, 0.95]    # fractions of λ_max; or arrival_rate = [...] in requests/slot
    memory_tokens = [65536, 131072]
    block_size = [1]           # default [1]
    seeds = [0, 1]             # or: replications = 4 and seed = 0

    [run]
    slots = 20000
    warmup = 2000              # default slots // 10
    arrivals = "poisson"       # poisson | deterministic | bernoulli
    eviction = "recompute"     # recompute | keep-progress
    engine = "auto"            # auto | fast | python
    epsilon = 1e-6             # the ε of r_star (default 1e-6)
    step_time = "const:0.02"   # optional: adds metrics in seconds

**Cells.** The cells are the Cartesian product policy × rate × M × b × seed, in that order (seed
varies fastest), so a grid of sizes :math:`n_P, n_R, n_M, n_B, n_S` has
:math:`n_P n_R n_M n_B n_S` cells. All cells with the same seed see the same arrivals (common
random numbers, as in ``flowstab compare``). Relative values are resolved per cell:

* ``load = ρ`` gives the total arrival rate :math:`\lambda = \rho\,\lambda_{max}(M)` with
  :math:`\lambda_{max}(M) = M / E[W]` and :math:`W = S O + O(O+1)/2` (Prop. 3.2; the paging of
  ``block_size`` is not part of λ_max);
* in a ``flow`` policy, ``rate=c*lambda_max`` is :math:`c\,\lambda_{max}(M)` and
  ``rate=c*r_star`` is :math:`c\,r^*(\varepsilon)`, the plan's flow-control rate at ``[run]
  epsilon`` for the spec's budget law (:func:`numerics.analysis.plan.make_plan`); ``c*`` may be omitted.

Replications (``replications = n``, ``seed = s``) use the seeds of
:func:`~numerics.sim.replicate.replication_seeds`: the children of ``SeedSequence(s).spawn(n)``.

**Checkpoints.** Each cell has a key: the first 24 hex digits (96 bits) of the SHA-256 of a
canonical JSON of everything that determines its result and its row — the workload's content
(every class's rate and length-law arrays, not its file name), the run settings, the cell's grid
coordinates and resolved policy, the package version and :data:`SWEEP_SCHEMA`. A finished cell is
written to ``<out>.cells/<key>.json`` (to a temporary file first, then renamed: a killed sweep
leaves either the whole file or none). With ``resume=True`` the cells whose checkpoint exists are
read back and only the rest run; without it an existing checkpoint folder (or results file) is an
error, never overwritten. The table is assembled from the checkpoints in cell order, so it does not
depend on the order in which the cells finished, on the backend, or on interruptions.

**Backends.** A local process pool (``processes``, default the CPU count; 1 runs inline), or a
Dask distributed cluster (``dask_address``: a scheduler address or a ``distributed.Client``); the
workers only simulate, this process writes every checkpoint as results arrive.

Examples
--------
>>> import pathlib, tempfile
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> config = sweep_config_from_dict({
...     "workload": {"prompt": 20, "decode": "geom:mean=10"},
...     "grid": {"policy": ["flow:rate=1.2*lambda_max", "greedy"], "load": [0.5, 0.8],
...              "memory_tokens": [2000], "seeds": [0]},
...     "run": {"slots": 500}})
>>> cells = sweep_cells(config)  # E[W] = 20·10 + E[O(O+1)]/2 = 300, so λ_max = 2000/300
>>> cells[0].policy, round(cells[0].flow_rate, 9), round(cells[0].arrival_rate, 6), len(cells)
('flow:rate=1.2*lambda_max', 8.0, 3.333333, 4)
>>> table = run_sweep(config, folder / "toy.parquet", processes=1, progress=False)
>>> table.shape[0], table.attrs["sweep"]["ran"]
(4, 4)
>>> again = run_sweep(config, folder / "toy.parquet", resume=True, processes=1, progress=False)
>>> again.attrs["sweep"]["ran"], again.equals(table)
(0, True)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
import sys
import time
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from numerics.errors import FlowstabError, SpecError

__all__ = [
    "SWEEP_SCHEMA",
    "SweepCell",
    "SweepConfig",
    "SweepError",
    "checkpoint_dir",
    "load_sweep_config",
    "run_sweep",
    "sweep_cells",
    "sweep_config_from_dict",
]

#: Version of the cell key and checkpoint layout; bumping it makes old checkpoints unused.
SWEEP_SCHEMA = 1
#: Hex digits of SHA-256 kept in a cell key (96 bits: a collision among 10^9 cells has
#: probability ~ 10^18 / 2^97 ≈ 6e-12).
KEY_HEX_DIGITS = 24
#: Largest grid accepted; a typo such as seeds = range(10^6) should be an error, not a week of work.
MAX_CELLS = 1_000_000
#: Size limits of one run, the same as ``flowstab simulate``'s (flowstab.cli): the engine keeps
#: ~80 bytes per slot and ~150 bytes per request, so 10^8 of either is ~10 GB per worker.
MAX_SLOTS = 10**8
MAX_EXPECTED_REQUESTS = 10**8
MAX_MEMORY_TOKENS = 10**12
ARRIVALS = ("poisson", "deterministic", "bernoulli")
EVICTIONS = ("recompute", "keep-progress")
ENGINES = ("auto", "fast", "python")
DEFAULT_EPSILON = 1e-6
#: Suffix of the checkpoint folder next to the results file.
CELLS_SUFFIX = ".cells"
MANIFEST = "_sweep.json"

_TABLES = ("workload", "grid", "run")
_WORKLOAD_KEYS = ("preset", "file", "trace", "prompt", "decode")
_GRID_KEYS = ("policy", "arrival_rate", "load", "memory_tokens", "block_size", "seeds",
              "replications", "seed")
_RUN_KEYS = ("slots", "warmup", "arrivals", "eviction", "engine", "epsilon", "step_time")
_KEY_RE = re.compile(rf"^[0-9a-f]{{{KEY_HEX_DIGITS}}}\.json$")
_RELATIVE_RE = re.compile(r"^(?:(?P<c>[^*]+?)\s*\*\s*)?(?P<ref>lambda_max|r_star)$")


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
    """

    workload: Any
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
    arrivals: str
    eviction: str
    engine: str
    epsilon: float
    step_time: str | None
    source: str = "<dict>"

    def to_dict(self) -> dict:
        """The config as plain JSON-ready values (the workload as given, not its laws)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "workload"}
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}


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


# ------------------------------------------------------------------------------ config
def load_sweep_config(path: str | os.PathLike) -> SweepConfig:
    """Read and validate a sweep config TOML file (format in the module docstring).

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
        source=source,
    )
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


# ------------------------------------------------------------------------------ cells
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


def _check_policy(policy, workload, spec: str) -> None:
    from numerics.sim.policies import ClassBudgets, Reserve

    if isinstance(policy, Reserve) and policy.max_tokens is None \
            and not math.isfinite(workload.max_decode):
        raise SpecError(f"policy {spec!r}: the decode lengths are unbounded; give the reservation "
                        "per request, e.g. reserve:max=2048")
    if isinstance(policy, ClassBudgets) and len(policy.budgets) != len(workload.classes):
        raise SpecError(f"policy {spec!r}: {len(policy.budgets)} budget(s) for a workload with "
                        f"{len(workload.classes)} class(es); give one per class")


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


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("flowstab")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


def _step_time_fields(spec: str | None) -> dict | None:
    if spec is None:
        return None
    from numerics.model.steptime import StepTimeModel

    return {k: repr(v) for k, v in dataclasses.asdict(StepTimeModel.from_spec(spec)).items()}


def _run_fields(config: SweepConfig) -> dict:
    """What every cell shares, as it enters the key."""
    return {
        "schema": SWEEP_SCHEMA,
        "version": _package_version(),
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

    Every cell is resolved (relative rates) and checked (its :class:`~numerics.sim.SimConfig` is
    built) here, so a bad combination is an error before anything runs.

    Raises
    ------
    SpecError
        A policy spec that does not parse or does not fit the workload, or a cell whose run is
        invalid (e.g. a Bernoulli arrival rate above 1); the message names the cell.
    """
    from numerics.sim import fast
    from numerics.sim.engine import SimConfig
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
                    _check_policy(policy, workload, spec)
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
                if total * config.slots > MAX_EXPECTED_REQUESTS:
                    raise SpecError(
                        f"{config.source}: λ × slots = {total:g} × {config.slots:,} requests is beyond "
                        f"the simulator's limit of {MAX_EXPECTED_REQUESTS:.0e} per run")
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
                            raise SpecError(f"{config.source}: cell {_describe(cell)}: {exc}") from None
                        if config.engine == "fast" and not fast.fast_supported(sim):
                            raise SpecError(
                                f"{config.source}: cell {_describe(cell)}: [run] engine = 'fast' runs "
                                "flow/greedy/alpha/reserve with block_size 1 only; use engine = 'auto'")
                        cells.append(cell)
    keys = [c.key for c in cells]
    if len(set(keys)) != len(keys):  # pragma: no cover - 96-bit keys of distinct coordinates
        raise SweepError("two cells share a key; report this as a bug")
    object.__setattr__(config, "_cells", tuple(cells))
    return cells


def _describe(cell: SweepCell) -> str:
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
    }
    if workload is not None:
        from numerics.model.steptime import StepTimeModel

        out["workload"] = workload
        out["step_time"] = StepTimeModel.from_spec(config.step_time) if config.step_time else None
    return out


# ------------------------------------------------------------------------------ workers
def _simulate_cell(workload, kwargs: dict, policy_spec: str, engine: str) -> dict:
    """Run one cell; the numeric summary (a top-level function, so workers can unpickle it)."""
    from numerics.model.steptime import StepTimeModel
    from numerics.sim.engine import SimConfig
    from numerics.sim.policies import parse_policy
    from numerics.sim.replicate import _numeric_summary
    from numerics.sim.results import simulate

    kw = dict(kwargs)
    kw["step_time"] = StepTimeModel.from_spec(kw["step_time"]) if kw["step_time"] else None
    cfg = SimConfig(workload=workload, policy=parse_policy(policy_spec), **kw)
    return _numeric_summary(simulate(cfg, engine=engine).summary)


_WORKER_WORKLOAD = None


def _init_worker(workload) -> None:
    global _WORKER_WORKLOAD
    _WORKER_WORKLOAD = workload


def _simulate_in_worker(kwargs: dict, policy_spec: str, engine: str) -> dict:
    return _simulate_cell(_WORKER_WORKLOAD, kwargs, policy_spec, engine)


def _jobs(config: SweepConfig, cells: Sequence[SweepCell]):
    return [(cell, _sim_kwargs(config, cell), cell.policy_resolved) for cell in cells]


def _inline(config, cells) -> Iterator[tuple[SweepCell, dict]]:
    for cell, kwargs, spec in _jobs(config, cells):
        yield cell, _simulate_cell(config.workload, kwargs, spec, config.engine)


def _pool(config, cells, processes: int) -> Iterator[tuple[SweepCell, dict]]:
    from concurrent.futures import ProcessPoolExecutor, as_completed

    pool = ProcessPoolExecutor(max_workers=min(processes, len(cells)), initializer=_init_worker,
                               initargs=(config.workload,))
    try:
        futures = {pool.submit(_simulate_in_worker, kwargs, spec, config.engine): cell
                   for cell, kwargs, spec in _jobs(config, cells)}
        for future in as_completed(futures):
            yield futures[future], _result(future, futures[future])
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _connect(address):
    """A ``distributed.Client`` for ``address`` (or ``address`` itself when it is one), and whether
    this function opened it (then the caller closes it)."""
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover - a declared dependency
        raise SweepError("--dask needs the 'distributed' package: pip install 'dask[distributed]'") \
            from None
    if isinstance(address, Client):
        return address, False
    _check_dask_address(address)
    try:
        return Client(address, set_as_default=False), True
    except (OSError, ValueError, TypeError) as exc:
        raise SweepError(f"cannot connect to the Dask scheduler at {address!r} ({exc}); check "
                         "the address (e.g. tcp://host:8786) and that the scheduler runs") from None


def _dask(config, cells, client) -> Iterator[tuple[SweepCell, dict]]:
    from distributed import as_completed

    futures = {}
    try:
        workload = client.scatter(config.workload, broadcast=True, hash=False)
        for cell, kwargs, spec in _jobs(config, cells):
            f = client.submit(_simulate_cell, workload, kwargs, spec, config.engine,
                              key=f"flowstab-cell-{cell.key}", retries=0)
            futures[f] = cell
        for future in as_completed(list(futures), loop=client.loop):
            yield futures[future], _result(future, futures[future])
    finally:
        if futures:
            client.cancel(list(futures))


def _check_dask_address(address) -> None:
    """Reject a malformed address before ``Client`` sees it (a Client that fails in its
    constructor can hang for a minute in its finaliser at exit)."""
    from distributed.comm.addressing import get_address_host_port, parse_address
    from distributed.comm.registry import get_backend

    hint = "give the scheduler's address, e.g. tcp://host:8786"
    if not isinstance(address, str) or not address.strip():
        raise SweepError(f"--dask: {hint}; got {address!r}")
    try:
        scheme, _ = parse_address(address)
        get_backend(scheme)
        if scheme in ("tcp", "tls", "ws", "wss"):
            get_address_host_port(address)
    except ValueError as exc:
        raise SweepError(f"--dask {address!r}: {exc}; {hint}") from None


def _result(future, cell: SweepCell) -> dict:
    from concurrent.futures.process import BrokenProcessPool

    try:
        return future.result()
    except FlowstabError as exc:
        raise SweepError(f"cell {_describe(cell)} failed: {exc}") from None
    except BrokenProcessPool:
        raise SweepError(f"a worker process died while running cell {_describe(cell)} (out of "
                         "memory?); the finished cells are checkpointed: resume with fewer "
                         "--processes") from None
    except Exception as exc:
        if type(exc).__name__ != "KilledWorker":  # distributed.KilledWorker, without importing it
            raise
        raise SweepError(f"Dask workers died while running cell {_describe(cell)} ({exc}); the "
                         "finished cells are checkpointed: resume once the cluster is healthy") from None


# ------------------------------------------------------------------------------ checkpoints
def checkpoint_dir(out_path: str | os.PathLike) -> Path:
    """The folder of per-cell checkpoints of a results file: ``<out>.cells``."""
    p = Path(out_path)
    return p.with_name(p.name + CELLS_SUFFIX)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _record(cell: SweepCell, summary: dict) -> dict:
    return {"schema": SWEEP_SCHEMA, "key": cell.key, "cell": dataclasses.asdict(cell),
            "summary": summary}


def _save(folder: Path, cell: SweepCell, summary: dict) -> dict:
    text = json.dumps(_record(cell, summary), sort_keys=False)
    _write_atomic(folder / f"{cell.key}.json", text.encode())
    return json.loads(text)  # exactly what a resumed sweep will read back


def _load(folder: Path, cells: Sequence[SweepCell], notes: list[str]) -> dict[str, dict]:
    """Finished cells' records by key; unreadable ones are noted and will run again."""
    wanted = {c.key for c in cells}
    done: dict[str, dict] = {}
    stray = 0
    for p in sorted(folder.iterdir()):
        if p.name.endswith(".tmp"):  # a write cut short by a kill: the cell did not finish
            p.unlink(missing_ok=True)
            continue
        if not _KEY_RE.match(p.name):
            continue
        key = p.name[: -len(".json")]
        if key not in wanted:
            stray += 1
            continue
        try:
            rec = json.loads(p.read_text(encoding="utf-8"))
            ok = rec.get("key") == key and isinstance(rec.get("summary"), dict)
        except (OSError, ValueError, AttributeError):
            ok = False
        if ok:
            done[key] = rec
        else:
            notes.append(f"checkpoint {p.name} is unreadable; its cell runs again")
    if stray:
        notes.append(f"{stray} checkpoint(s) in {folder} belong to no cell of this config "
                     "(changed grid or settings); they are kept but not used")
    return done


def _cpus() -> int:
    return os.cpu_count() or 1


def _collect(results, folder: Path, records: dict, total: int, resumed: int, progress: bool) -> None:
    """Checkpoint each result as it arrives, with a progress bar (cells done / total, ETA)."""
    from tqdm import tqdm

    bar = tqdm(total=total, initial=resumed, unit="cell", desc="flowstab sweep", file=sys.stderr,
               disable=None if progress else True, dynamic_ncols=True)
    try:
        for cell, summary in results:
            records[cell.key] = _save(folder, cell, summary)
            bar.update(1)
    finally:
        bar.close()
        results.close()  # stops the backend (pool shutdown, Dask futures cancelled) on an error


def _check_output(out: Path, resume: bool) -> None:
    if out.suffix.lower() != ".parquet":
        raise SweepError(f"{out}: the results file must end in .parquet")
    if out.is_dir():
        raise SweepError(f"{out} is a directory; give a file name such as results.parquet")
    if not out.parent.is_dir():
        raise SweepError(f"{out}: folder {str(out.parent)!r} does not exist")
    if not os.access(out.parent, os.W_OK):
        raise SweepError(f"{out}: folder {str(out.parent)!r} is not writable")
    folder = checkpoint_dir(out)
    if not resume:
        if folder.exists():
            raise SweepError(f"checkpoints of an earlier sweep exist in {folder}; pass --resume "
                             "(resume=True) to continue it, or remove that folder to start afresh")
        if out.exists():
            raise SweepError(f"{out} exists; remove it or choose another output file (a sweep never "
                             "overwrites a table it did not build)")
    elif folder.exists() and not folder.is_dir():
        raise SweepError(f"{folder} exists and is not a folder; remove it")


def _table(config: SweepConfig, cells: Sequence[SweepCell], records: dict[str, dict]) -> pd.DataFrame:
    """One row per cell in cell order: coordinates, then every numeric summary metric."""
    first = ["cell", "cell_key", "policy", "policy_resolved", "flow_rate_per_slot", "load",
             "arrival_rate_per_slot", "memory_tokens", "block_size"]
    if config.replication_root is not None:
        first.append("replication")
    first.append("seed")
    rows = []
    for cell in cells:
        summary = records[cell.key]["summary"]
        row = {
            "cell": cell.index, "cell_key": cell.key, "policy": cell.policy,
            "policy_resolved": cell.policy_resolved, "flow_rate_per_slot": cell.flow_rate,
            "load": cell.load, "arrival_rate_per_slot": cell.arrival_rate,
            "memory_tokens": cell.memory_tokens, "block_size": cell.block_size,
        }
        if cell.replication is not None:
            row["replication"] = cell.replication
        row["seed"] = cell.seed
        row.update({k: v for k, v in summary.items() if k not in row})
        rows.append(row)
    df = pd.DataFrame(rows)
    rest = [c for c in df.columns if c not in first]
    df = df[first + rest]
    for col in ("cell", "memory_tokens", "block_size", "seed", "replication"):
        if col in df:
            df[col] = df[col].astype(np.int64)
    return df.reset_index(drop=True)


def _write_parquet(df: pd.DataFrame, out: Path, config: SweepConfig) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[b"flowstab.sweep"] = json.dumps({
        "config": config.to_dict(), "version": _package_version(), "schema": SWEEP_SCHEMA,
        "cells": len(df),
    }, default=str).encode()
    table = table.replace_schema_metadata(meta)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, out)


# ------------------------------------------------------------------------------ run
def run_sweep(
    config: SweepConfig | Mapping | str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    resume: bool = False,
    processes: int | None = None,
    dask_address: Any = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Run every cell of a sweep (or, with ``resume``, those not yet checkpointed) → Parquet.

    Parameters
    ----------
    config : SweepConfig, dict or path
        A validated config, a parsed TOML dict, or the path of a sweep TOML file.
    out_path : str or path-like
        The results file (``.parquet``); checkpoints go to ``<out_path>.cells/``.
    resume : bool
        Reuse the checkpoints of an earlier, interrupted (or finished) run of this sweep. Without
        it an existing checkpoint folder or results file is an error.
    processes : int, optional
        Local worker processes (default ``os.cpu_count()``); 1 runs the cells in this process.
    dask_address : str or distributed.Client, optional
        Run the cells on this Dask cluster instead of a local pool.
    progress : bool
        A tqdm progress bar on stderr (shown only when stderr is a terminal).

    Returns
    -------
    pandas.DataFrame
        One row per cell, in cell order: ``cell``, ``cell_key``, ``policy``, ``policy_resolved``,
        ``flow_rate_per_slot`` (NaN for other policies), ``load``, ``arrival_rate_per_slot``,
        ``memory_tokens``, ``block_size``, [``replication``], ``seed``, then every numeric key of
        :attr:`SimResult.summary <numerics.sim.results.SimResult.summary>`. The same table is
        written to ``out_path``. ``attrs["sweep"]`` holds ``cells``, ``ran``, ``resumed``,
        ``checkpoints`` (the folder), ``seconds`` and ``notes`` (things worth telling the user).

    Raises
    ------
    SpecError
        The config is invalid.
    SweepError
        The output or checkpoint paths are unusable (see ``resume``), the Dask scheduler cannot be
        reached, ``processes`` is not a positive integer, or a cell failed (the finished ones stay
        checkpointed; fix the cause and resume).
    """
    t0 = time.perf_counter()
    if isinstance(config, Mapping):
        config = sweep_config_from_dict(config)
    elif not isinstance(config, SweepConfig):
        config = load_sweep_config(config)
    if processes is not None and (isinstance(processes, bool) or not isinstance(processes, int)
                                  or processes < 1):
        raise SweepError(f"processes must be a positive integer, got {processes!r}")
    if processes is not None and dask_address is not None:
        raise SweepError("give either processes (a local pool) or dask_address, not both")
    out = Path(out_path)
    cells = sweep_cells(config)
    _check_output(out, resume)
    client, own = _connect(dask_address) if dask_address is not None else (None, False)
    try:
        folder = checkpoint_dir(out)
        folder.mkdir(exist_ok=True)
        notes: list[str] = []
        records = _load(folder, cells, notes) if resume else {}
        _write_atomic(folder / MANIFEST, json.dumps(
            {"schema": SWEEP_SCHEMA, "config": config.to_dict(), "cells": len(cells)},
            default=str, indent=1).encode())
        pending = [c for c in cells if c.key not in records]
        resumed = len(cells) - len(pending)
        if pending:
            if client is not None:
                results = _dask(config, pending, client)
            elif processes == 1 or len(pending) == 1 or (processes is None and _cpus() == 1):
                results = _inline(config, pending)
            else:
                results = _pool(config, pending, processes or _cpus())
            _collect(results, folder, records, len(cells), resumed, progress)
    finally:
        if own:
            client.close()
    df = _table(config, cells, records)
    _write_parquet(df, out, config)
    df.attrs["sweep"] = {"cells": len(cells), "ran": len(pending), "resumed": resumed,
                         "checkpoints": str(folder), "seconds": time.perf_counter() - t0,
                         "notes": notes}
    return df
