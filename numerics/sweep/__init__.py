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

**Modules.** :mod:`~numerics.sweep.config` (the TOML format and its checks),
:mod:`~numerics.sweep.cells` (grid expansion, relative rates, cell keys),
:mod:`~numerics.sweep.backends` (serial, process pool, Dask), :mod:`~numerics.sweep.store`
(checkpoints, manifest, Parquet) and :mod:`~numerics.sweep.run` (:func:`run_sweep`). This package
re-exports their public names.

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

from numerics.model.workload import MAX_MEMORY_TOKENS
from numerics.sim.config import MAX_EXPECTED_REQUESTS, MAX_SLOTS
from numerics.sweep import backends as _backends
from numerics.sweep.backends import BACKENDS, Backend
from numerics.sweep.backends import _simulate_cell as _simulate_cell
from numerics.sweep.backends import _simulate_in_worker as _simulate_in_worker
from numerics.sweep.cells import KEY_HEX_DIGITS, SWEEP_SCHEMA, SweepCell, sweep_cells
from numerics.sweep.config import (
    ARRIVALS,
    DEFAULT_EPSILON,
    ENGINES,
    EVICTIONS,
    MAX_CELLS,
    SweepConfig,
    SweepError,
    load_sweep_config,
    sweep_config_from_dict,
)
from numerics.sweep.run import run_sweep
from numerics.sweep.store import CELLS_SUFFIX, MANIFEST, checkpoint_dir

__all__ = [
    "ARRIVALS",
    "BACKENDS",
    "CELLS_SUFFIX",
    "DEFAULT_EPSILON",
    "ENGINES",
    "EVICTIONS",
    "KEY_HEX_DIGITS",
    "MANIFEST",
    "MAX_CELLS",
    "MAX_EXPECTED_REQUESTS",
    "MAX_MEMORY_TOKENS",
    "MAX_SLOTS",
    "SWEEP_SCHEMA",
    "Backend",
    "SweepCell",
    "SweepConfig",
    "SweepError",
    "checkpoint_dir",
    "load_sweep_config",
    "run_sweep",
    "sweep_cells",
    "sweep_config_from_dict",
]

# The worker functions are re-exported above: the pool runs ``numerics.sweep._simulate_in_worker``
# (looked up here when it starts, so that replacing it on this package takes effect).


def __getattr__(name: str):
    """``_WORKER_WORKLOAD``: the workload a pool worker process holds (None elsewhere)."""
    if name == "_WORKER_WORKLOAD":
        return _backends._WORKER_WORKLOAD
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
