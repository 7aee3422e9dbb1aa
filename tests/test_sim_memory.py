"""Bounded memory and fast summaries (issue 12, item 4).

* The summary is computed from per-request arrays, never from the records table; these tests
  recompute it the old way — pandas on the ``records`` and ``timeseries`` tables — and require
  the same values, exactly (the queue slope to float rounding: it is now the exactly rounded
  least-squares slope, which ``np.polyfit`` approximates).
* ``simulate(cfg, records=False)`` builds no table, gives the same summary, and on the compiled
  engine keeps per request only what the summary needs. Its peak memory is measured with
  ``tracemalloc`` (numpy's and numba's allocations are both traced): the bound below is a
  property of the data structures, not a timing.
"""

from __future__ import annotations

import tracemalloc
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from numerics.data.traces import Trace
from numerics.model.specs import parse_law
from numerics.model.steptime import StepTimeModel
from numerics.model.workload import RequestClass, Workload
from numerics.sim import SimConfig, parse_policy, simulate
from numerics.sim.fast import fast_supported
from numerics.sim.results import _mean_std, _slope, quantiles

STEP = StepTimeModel.from_spec("linear:c0=0.01,cb=1e-4,ck=1e-6,cp=1e-3")
TWO = Workload((
    RequestClass.independent(parse_law("10"), parse_law("20"), 0.3, "a"),
    RequestClass.independent(parse_law("uniform:1,20"), parse_law("geom:mean=30,max=90"), 0.2, "b"),
))
#: Relative tolerance of the queue slope against np.polyfit (an SVD least-squares solve).
SLOPE_REL = 1e-9
#: Peak bytes per request of a summary-only run on the compiled engine: the drawn requests and the
#: Python engine's per-request lists while the run state is set up (~110 B), then the kernel's
#: int32 working arrays (~33 B) beside the drawn prompts, decodes and arrival slots; measured 126
#: on azure-conv. The full tables of the records mode take ~330.
SUMMARY_BYTES_PER_REQUEST = 160


#: The summary's KV statistics are a float sum and a dot product of deviations, the reference's
#: pandas' own mean and std: the same numbers up to rounding (relative error ≲ n·2⁻⁵³ for n slots).
ROUNDED = ("kv_util_mean", "kv_util_std")
KV_REL = 1e-9


def _reference_summary(res) -> dict:
    """The summary's window statistics recomputed from the records and time-series tables."""
    cfg, rec, ts = res.config, res.records, res.timeseries
    w, horizon = cfg.warmup, cfg.slots
    win = rec[rec.arrival_slot >= w]
    fin = win.completion_slot.notna().to_numpy()
    arr = win.arrival_slot.to_numpy()
    lat = win.latency_slots.to_numpy(dtype=np.int64, na_value=0)
    ttft = win.ttft_slots.to_numpy(dtype=np.int64, na_value=0)
    started = win.first_activation_slot.notna().to_numpy()
    lat_cens = pd.Series(np.where(fin, lat, horizon - arr))
    ttft_cens = pd.Series(np.where(started, ttft, horizon - arr))
    finished = pd.Series(lat[fin])
    kv = ts.kv_tokens[ts.slot >= w] / cfg.memory_tokens
    out = {
        "arrived": len(rec),
        "completed": int(rec.completion_slot.notna().sum()),
        "throughput_requests_per_slot": int((rec.completion_slot >= w).sum()) / (horizon - w),
        "completed_fraction": float(fin.mean()),
        "latency_censored_fraction": float((~fin).mean()),
        "kv_util_mean": float(kv.mean()),
        "kv_util_std": float(kv.std(ddof=0)),
        "kv_peak_tokens": int(ts.kv_tokens[ts.slot >= w].max()),
        "evictions": int(ts.evictions[ts.slot >= w].sum()) if cfg.stride == 1 else None,
    }
    for name, x, qs in (("latency", lat_cens, (95, 99)), ("latency_finished", finished, (95, 99)),
                        ("ttft", ttft_cens, (99,))):
        out[f"{name}_mean_slots"] = float(x.mean())
        for q in qs:
            out[f"{name}_p{q}_slots"] = float(x.quantile(q / 100))
    if cfg.step_time is not None:
        end_s = res.summary["duration_s"]  # the clock at the horizon (tests/test_accounting.py)
        lat_s = win.latency_s.to_numpy()
        ttft_s = win.ttft_s.to_numpy()
        arr_s = win.arrival_s.to_numpy()
        for name, x, qs in (("latency", pd.Series(np.where(fin, lat_s, end_s - arr_s)), (95, 99)),
                            ("latency_finished", pd.Series(lat_s[fin]), (95, 99)),
                            ("ttft", pd.Series(np.where(started, ttft_s, end_s - arr_s)), (99,))):
            out[f"{name}_mean_s"] = float(x.mean())
            for q in qs:
                out[f"{name}_p{q}_s"] = float(x.quantile(q / 100))
    return out


def _polyfit_slope(res) -> float:
    ts = res.timeseries
    q = ts.queue[ts.slot >= res.config.slots // 2].to_numpy(dtype=float)
    if q.size < 2:
        return 0.0
    return float(np.polyfit(np.arange(q.size, dtype=float), q, 1)[0]) / res.config.stride


def _trace() -> Trace:
    rng = np.random.default_rng(3)
    n = 1500
    t = np.cumsum(rng.exponential(0.02, n))
    return Trace(rng.integers(1, 30, n), rng.integers(1, 60, n), t - t[0], "drawn", "lengths", ("a", "b"),
                 rng.integers(0, 2, n))


CONFIGS = {
    "greedy, overload": SimConfig(TWO, 300, parse_policy("greedy"), slots=1500, arrival_rate=1.5, warmup=150,
                                  seed=1),
    "flow, step time, stride 3": SimConfig(TWO, 600, parse_policy("flow:rate=1.2"), slots=1500,
                                           arrival_rate=0.8, warmup=100, seed=2, step_time=STEP, stride=3),
    "budgets, blocks, keep-progress": SimConfig(TWO, 500, parse_policy("budgets:2,1"), slots=1200,
                                                arrival_rate=1.0, warmup=100, seed=3, block_size=8,
                                                eviction="keep-progress", step_time=STEP),
    "mcsf, underload": SimConfig(TWO, 800, parse_policy("mcsf"), slots=1000, arrival_rate=0.4, warmup=100,
                                 seed=4),
    "trace replay": SimConfig(_trace().to_workload(), 300, parse_policy("alpha:0.1"), slots=800,
                              arrivals="trace", trace=_trace(), warmup=80, step_time=STEP),
    "chunked prefill (the step loop)": SimConfig(TWO, 400, parse_policy("greedy"), slots=1000,
                                                      arrival_rate=1.0, warmup=100, seed=5, step_time=STEP,
                                                      batching="chunked", max_batched_tokens=48),
}


#: Every config on the Python engine, and on the compiled one where it runs it.
RUNS = [(name, engine) for name in CONFIGS for engine in ("python", "fast")
        if engine == "python" or fast_supported(CONFIGS[name])]


@pytest.mark.parametrize(("name", "engine"), RUNS)
def test_summary_from_arrays_equals_the_tables(name, engine):
    res = simulate(CONFIGS[name], engine=engine)
    ref = _reference_summary(res)
    for key, value in ref.items():
        if value is None:
            continue
        got = res.summary[key]
        if key in ROUNDED:
            assert got == pytest.approx(value, rel=KV_REL, abs=1e-15), (key, got, value)
            continue
        assert got == value or (got != got and value != value), (key, got, value)
    assert res.summary["queue_slope"] == pytest.approx(_polyfit_slope(res), rel=SLOPE_REL, abs=1e-12)
    only = simulate(CONFIGS[name], engine=engine, records=False)
    assert only.records is None
    assert only.timeseries is None
    assert only.summary.keys() == res.summary.keys()
    for key, value in res.summary.items():
        assert only.summary[key] == value or (value != value and only.summary[key] != only.summary[key]), key


def test_summary_only_with_a_per_slot_check():
    from numerics.sim.checks import InvariantChecker

    cfg = CONFIGS["greedy, overload"]
    checker = InvariantChecker()
    only = simulate(cfg, check=checker, records=False)
    checker.finish()
    assert only.records is None
    assert only.summary == simulate(cfg, engine="python").summary


@pytest.mark.parametrize("y", [
    [0, 0], [5, 5, 5, 5], [3, 1], list(range(10)), [7] * 999,
    [2**40, 0, 2**33 + 5, 17, 2**45 - 1], list(np.random.default_rng(0).integers(0, 2**31, 3000)),
])
def test_slope_is_the_exactly_rounded_least_squares_slope(y):
    arr = np.asarray(y, dtype=np.int64)
    n = arr.size
    exact = Fraction(12 * sum(i * int(v) for i, v in enumerate(y)) - 6 * (n - 1) * sum(int(v) for v in y),
                     n * (n * n - 1))
    assert _slope(arr) == float(exact)
    x = np.arange(n, dtype=float)
    assert _slope(arr) == pytest.approx(np.polyfit(x, arr.astype(float), 1)[0], rel=1e-9, abs=1e-9)


def test_slope_of_long_series_spans_chunks():
    from numerics.sim import results

    rng = np.random.default_rng(1)
    y = rng.integers(0, 10**6, 3 * results._CHUNK + 11)
    n = y.size
    x = np.arange(n, dtype=object)
    exact = Fraction(int(12 * (x * y.astype(object)).sum() - 6 * (n - 1) * int(y.sum())), n * (n * n - 1))
    assert _slope(y) == float(exact)


def test_summary_only_memory_per_request_is_bounded():
    # a workload where requests outnumber slots, so the per-request bound is what binds
    wl = Workload.single(parse_law("uniform:1,40"), parse_law("geom:mean=8,max=60"))
    cfg = SimConfig(wl, 4000, parse_policy("greedy"), slots=60_000, arrival_rate=3.0, warmup=1000, seed=0)
    simulate(SimConfig(wl, 4000, parse_policy("greedy"), slots=100, arrival_rate=3.0), engine="fast")
    peaks, kept = {}, {}
    for records in (False, True):
        tracemalloc.start()
        res = simulate(cfg, engine="fast", records=records)
        kept[records], peaks[records] = tracemalloc.get_traced_memory()  # while res is alive
        tracemalloc.stop()
        n = res.summary["arrived"]
        del res
    assert n > 150_000
    assert peaks[False] <= SUMMARY_BYTES_PER_REQUEST * n
    assert kept[False] < 100_000  # the summary-only result holds nothing per request
    assert kept[True] > 50 * n  # the tables: 13 columns of 8 bytes per request


@given(st.lists(st.integers(-(2**40), 2**40), min_size=1, max_size=300), st.integers(0, 5),
       st.lists(st.floats(0, 1), min_size=1, max_size=5))
def test_quantiles_are_numpys_floats(values, spread, probs):
    # the counting path (small range) and the fall-back (wide range) both give np.quantile's floats
    x = np.asarray(values, dtype=np.int64)
    narrow = x % (min(10**spread, x.size // 2) + 1)  # a range ≤ n/2: the counting path
    for y in (x, narrow):
        assert np.array_equal(quantiles(y, probs), np.quantile(y, probs))
    floats = narrow / 3
    assert np.array_equal(quantiles(floats, probs), np.quantile(floats, probs))


@given(st.lists(st.integers(0, 2**40), min_size=1, max_size=200_000 // 1000), st.integers(1, 70_000))
def test_mean_std_matches_numpy(values, repeat):
    # chunked deviations (2**16 per chunk): the same numbers as numpy's, up to rounding
    y = np.resize(np.asarray(values, dtype=np.int64), len(values) * (1 + repeat % 3))
    y = np.tile(y, 1 + repeat // 20_000)
    mean, std = _mean_std(y)
    assert mean == pytest.approx(y.mean(), rel=1e-12)
    assert std == pytest.approx(y.std(), rel=1e-9, abs=1e-6 * (1 + abs(y.mean())) * 1e-6)
