"""Shared test configuration: Hypothesis profiles.

Profiles (pick one with the environment variable ``HYPOTHESIS_PROFILE``):

* ``dev`` (default): ~50 examples per property, random seeds, the example database on;
* ``ci`` (the default when ``CI=true``): the same number of examples, derandomized so that a CI
  run is reproducible, no deadline (shared CI runners have noisy timings), no database;
* ``thorough``: ~1000 examples per property, for a run before a release.

No profile sets a deadline: timings on a shared two-core machine are noisy, and speed is measured
in ``benchmarks/``, never asserted in tests.

Tests that take more than about 3 s carry ``@pytest.mark.slow``: ``make test-fast`` deselects
them (``-m "not slow"``, notebooks ignored), ``make test`` runs everything.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("dev", max_examples=50, deadline=None)
settings.register_profile("ci", max_examples=50, derandomize=True, deadline=None, database=None)
settings.register_profile("thorough", max_examples=1000, deadline=None)

_IN_CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if _IN_CI else "dev"))


def assert_one_line_cli_error(capsys, argv, needle: str) -> None:
    """Run the CLI on ``argv``: exit status 2, nothing on stdout, one ``flowstab: error:`` line."""
    from flowstab.cli import main

    try:
        code = main(argv)
    except SystemExit as exc:  # argparse usage errors exit from inside main
        code = exc.code
    assert code == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("flowstab: error:")
    assert "Traceback" not in err
    assert needle in lines[0]


def run_checked(cfg, fifo: bool, *, repeat: bool = False):
    """Run ``cfg`` on the Python engine with the per-slot invariant checker and return the result.

    Checks what every policy owes: the checker's invariants every slot (conservation, memory ≤ M
    after eviction, LIFO eviction, and FIFO activation when ``fifo``), every slot checked, the
    recorded KV never above M, ``max_seqs`` never exceeded; with ``repeat``, the same seed gives
    the same records.
    """
    import pandas as pd

    from numerics.sim import simulate
    from numerics.sim.checks import InvariantChecker

    checker = InvariantChecker(fifo=fifo)
    res = simulate(cfg, check=checker, engine="python")
    checker.finish()
    assert checker.slots_checked == cfg.slots
    assert (res.timeseries["kv_tokens"] <= cfg.memory_tokens).all()
    if cfg.policy.max_seqs is not None:
        assert res.summary["active_max"] <= cfg.policy.max_seqs
    if repeat:
        pd.testing.assert_frame_equal(res.records, simulate(cfg, engine="python").records)
    return res
