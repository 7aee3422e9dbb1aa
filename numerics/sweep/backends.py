"""Sweep backends: where the cells run — in this process, a local process pool, or a Dask cluster.

Every backend is a generator of ``(cell, summary)`` pairs in completion order; the workers only
simulate (:func:`_simulate_cell`), and the caller (:func:`numerics.sweep.run.run_sweep`) writes
every checkpoint as results arrive. Closing the generator stops the backend (the pool is shut
down, the Dask futures are cancelled). A failed cell, a worker that died (out of memory?) or a
Dask worker killed by its nanny is a :class:`~numerics.sweep.config.SweepError` naming the cell.

The pool's worker function is looked up on the :mod:`numerics.sweep` package when the pool starts,
and the workload a pool worker holds is readable there too (``numerics.sweep._WORKER_WORKLOAD``),
so that a test may replace the worker function on the package.

Examples
--------
>>> choose_backend(processes=1, pending=8, client=None), choose_backend(None, 1, None)
('serial', 'serial')
>>> choose_backend(processes=4, pending=8, client=None)
'pool'
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any, Literal

from numerics.errors import FlowstabError
from numerics.sweep.cells import SweepCell, _sim_kwargs, describe_cell
from numerics.sweep.config import SweepConfig, SweepError

__all__ = ["BACKENDS", "Backend", "cell_results", "choose_backend", "connect"]

#: Where the cells run: inline in this process, a local process pool, or a Dask cluster.
Backend = Literal["serial", "pool", "dask"]
BACKENDS: tuple[Backend, ...] = ("serial", "pool", "dask")


def _cpus() -> int:
    return os.cpu_count() or 1


def choose_backend(processes: int | None, pending: int, client: Any) -> Backend:
    """``dask`` with a client; ``serial`` for one process, one pending cell or one CPU; else ``pool``."""
    if client is not None:
        return "dask"
    if processes == 1 or pending == 1 or (processes is None and _cpus() == 1):
        return "serial"
    return "pool"


def cell_results(config: SweepConfig, cells: Sequence[SweepCell], backend: Backend, *,
                 processes: int | None = None, client: Any = None) -> Iterator[tuple[SweepCell, dict]]:
    """Run ``cells`` on ``backend``: a generator of ``(cell, numeric summary)`` as cells finish.

    ``processes`` sizes the pool (default the CPU count); ``client`` is the Dask client.
    """
    if backend == "dask":
        return _dask(config, cells, client)
    if backend == "serial":
        return _inline(config, cells)
    if backend == "pool":
        return _pool(config, cells, processes or _cpus())
    raise SweepError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")


def _simulate_cell(workload, kwargs: dict, policy_spec: str, engine: str) -> dict:
    """Run one cell; the numeric summary (a top-level function, so workers can unpickle it)."""
    from numerics.model.steptime import StepTimeModel
    from numerics.sim.config import SimConfig
    from numerics.sim.policies import parse_policy
    from numerics.sim.replicate import _numeric_summary
    from numerics.sim.results import simulate

    kw = dict(kwargs)
    kw["step_time"] = StepTimeModel.from_spec(kw["step_time"]) if kw["step_time"] else None
    cfg = SimConfig(workload=workload, policy=parse_policy(policy_spec), **kw)
    return _numeric_summary(simulate(cfg, engine=engine, records=False).summary)


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
    from concurrent.futures.process import BrokenProcessPool

    from numerics import sweep

    worker = sweep._simulate_in_worker  # looked up on the package: see the module docstring
    # never more workers than cells or CPUs (--processes 10000 on 2 cores starts 2)
    pool = ProcessPoolExecutor(max_workers=min(processes, len(cells), _cpus()), initializer=_init_worker,
                               initargs=(config.workload,))
    try:
        futures = {pool.submit(worker, kwargs, spec, config.engine): cell
                   for cell, kwargs, spec in _jobs(config, cells)}
        for future in as_completed(futures):
            yield futures[future], _result(future, futures[future], BrokenProcessPool, _POOL_DIED)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def connect(address):
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
    from distributed import KilledWorker, as_completed

    futures = {}
    try:
        workload = client.scatter(config.workload, broadcast=True, hash=False)
        for cell, kwargs, spec in _jobs(config, cells):
            f = client.submit(_simulate_cell, workload, kwargs, spec, config.engine,
                              key=f"flowstab-cell-{cell.key}", retries=0)
            futures[f] = cell
        for future in as_completed(list(futures), loop=client.loop):
            yield futures[future], _result(future, futures[future], KilledWorker, _DASK_DIED)
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


#: What a lost worker means, per backend ({cell}: the cell, {exc}: the backend's error).
_POOL_DIED = ("a worker process died while running cell {cell} (out of memory?); the finished cells "
              "are checkpointed: resume with fewer --processes")
_DASK_DIED = ("Dask workers died while running cell {cell} ({exc}); the finished cells are "
              "checkpointed: resume once the cluster is healthy")


def _result(future, cell: SweepCell, died: type[BaseException], message: str) -> dict:
    """The future's summary; a failed cell, or a lost worker (``died``, told by ``message``), is a
    :class:`~numerics.sweep.config.SweepError`."""
    try:
        return future.result()
    except FlowstabError as exc:
        raise SweepError(f"cell {describe_cell(cell)} failed: {exc}") from None
    except died as exc:
        raise SweepError(message.format(cell=describe_cell(cell), exc=exc)) from None

