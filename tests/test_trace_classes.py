"""Traces keep classes: the optional ``class`` column/key of every trace format, vidur's
``arrived_at`` column, the multi-class workload a classed trace builds, and its replay.

The end-to-end check is Dong & Cao §4.1's three deterministic classes, (S, O) = (10, 20),
(10, 40), (10, 60), so w_k = S·O + O(O+1)/2 = (410, 1220, 2430), with M = 16 492: replayed under
``budgets:4,4,4`` (Algorithm 1) with more arrivals per class than its budget admits, the KV memory
climbs to Σ b_k w_k = 4·(410 + 1220 + 2430) = 16 240 ≤ M and never beyond.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from numerics.data.loaders import load_workload
from numerics.data.traces import CLASS_COLUMN, TRACE_FORMATS, Trace, load_trace
from numerics.errors import TraceError, WorkloadError
from numerics.model.steptime import StepTimeModel
from numerics.model.workload import JointLengths, Workload
from numerics.sim import SimConfig, parse_policy, simulate

#: Timestamps: 7 fractional digits (Azure) parse to integer ns; ms/1000 and plain seconds are
#: float divisions; all agree with the written values to far below a nanosecond.
TIME_ABS_TOL = 1e-9

#: (seconds, prompt, decode, class) of a small trace written in file order (unsorted in time).
ROWS = [
    (0.0, 5, 3, "chat"),
    (2.0, 7, 2, "code"),
    (1.0, 3, 4, "chat"),
    (3.0, 9, 1, "batch"),
    (4.0, 5, 3, "code"),
]
#: The same rows sorted by time (the order a Trace keeps): stable argsort of the seconds.
SORTED = sorted(ROWS, key=lambda r: r[0])
#: Classes in order of first appearance in the file.
NAMES = ("chat", "code", "batch")
TIMED = {"azure", "mooncake", "vidur"}


def _write(folder: Path, fmt: str, rows, with_class: bool = True) -> Path:
    """A trace file of format ``fmt`` holding ``rows``; the class column/key when asked."""
    if fmt == "mooncake":
        path = folder / "t.jsonl"
        lines = []
        for t, s, o, k in rows:
            rec = {"timestamp": t * 1000, "input_length": s, "output_length": o, "hash_ids": [1]}
            if with_class:
                rec[CLASS_COLUMN] = k
            lines.append(json.dumps(rec))
        path.write_text("\n".join(lines) + "\n")
        return path
    header = {
        "azure": "TIMESTAMP,ContextTokens,GeneratedTokens",
        "vidur": "arrived_at,num_prefill_tokens,num_decode_tokens",
        "lengths": "num_prefill_tokens,num_decode_tokens",
    }[fmt]
    out = [header + (",class" if with_class else "")]
    for t, s, o, k in rows:
        cells = {
            "azure": [f"2023-11-16 18:00:{int(t):02d}.{round((t % 1) * 1e7):07d}", s, o],
            "vidur": [t, s, o],
            "lengths": [s, o],
        }[fmt]
        out.append(",".join(map(str, cells + ([k] if with_class else []))))
    path = folder / "t.csv"
    path.write_text("\n".join(out) + "\n")
    return path


# ---------------------------------------------------------------------- every format
@pytest.mark.parametrize("fmt", TRACE_FORMATS)
def test_every_format_reads_the_class_column(tmp_path, fmt):
    trace = load_trace(_write(tmp_path, fmt, ROWS))
    assert trace.format == fmt
    assert trace.class_names == NAMES
    order = SORTED if fmt in TIMED else ROWS  # rows are sorted by time when there is a time
    assert trace.prompt.tolist() == [s for _, s, _, _ in order]
    assert trace.decode.tolist() == [o for _, _, o, _ in order]
    assert [NAMES[k] for k in trace.class_index] == [k for *_, k in order]
    assert trace.class_index.dtype == np.int64
    assert trace.n_classes == 3
    assert trace.class_counts.tolist() == [2, 2, 1]
    with pytest.raises(ValueError, match="read-only"):
        trace.class_index[0] = 1
    if fmt in TIMED:
        assert trace.timestamps_s.tolist() == pytest.approx([0, 1, 2, 3, 4], abs=TIME_ABS_TOL)
    else:
        assert trace.timestamps_s is None
    assert "3 classes" in repr(trace)


@pytest.mark.parametrize("fmt", TRACE_FORMATS)
def test_every_format_without_the_class_column_is_as_before(tmp_path, fmt):
    trace = load_trace(_write(tmp_path, fmt, ROWS, with_class=False))
    assert trace.format == fmt
    assert trace.class_names is None
    assert trace.class_index is None
    assert trace.n_classes == 1
    assert trace.class_counts.tolist() == [5]
    wl = trace.to_workload()
    assert type(wl) is Workload  # the one-class workload of before
    assert wl.weights is None
    (cls,) = wl.classes
    assert cls.name == wl.name == "t"
    assert cls.rate_per_slot is None
    assert cls.rate_per_s == (1.0 if fmt in TIMED else None)  # (5 - 1) requests over 4 s
    assert wl.source == f"trace {trace.source} ({fmt}, 5 requests)"
    assert "classes" not in repr(trace)


def test_vidur_columns(tmp_path):
    # vidur's trace CSV: arrived_at in seconds (any origin, any order), other columns ignored
    path = tmp_path / "v.csv"
    path.write_text("request_id,arrived_at,num_prefill_tokens,num_decode_tokens,model_id\n"
                    "0,10.5,100,20,1\n1,10.25,50,5,1\n2,12.5,7,1,1\n")
    trace = load_trace(path)
    assert trace.format == "vidur"
    assert trace.timestamps_s.tolist() == pytest.approx([0.0, 0.25, 2.25], abs=TIME_ABS_TOL)
    assert trace.prompt.tolist() == [50, 100, 7]
    assert trace.decode.tolist() == [5, 20, 1]
    assert trace.rate_per_s == pytest.approx(2 / 2.25)
    assert trace.class_names is None


def test_a_lengths_csv_without_arrived_at_stays_lengths(tmp_path):
    path = tmp_path / "l.csv"
    path.write_text("num_prefill_tokens,num_decode_tokens,num_total_tokens\n1,2,3\n")
    assert load_trace(path).format == "lengths"


# ---------------------------------------------------------------------- labels
def test_integer_labels_are_ordered_numerically(tmp_path):
    path = tmp_path / "l.csv"
    path.write_text("num_prefill_tokens,num_decode_tokens,class\n"
                    "1,1,2\n2,1,0\n3,1,07\n4,1,-1\n5,1, 7 \n6,1,+0\n")
    trace = load_trace(path)
    assert trace.class_names == ("-1", "0", "2", "7")  # "07", " 7 " and "7" are class 7
    assert trace.class_index.tolist() == [2, 1, 3, 0, 3, 1]
    assert [c.name for c in trace.to_workload().classes] == ["-1", "0", "2", "7"]


def test_string_labels_keep_first_appearance_and_are_stripped(tmp_path):
    path = tmp_path / "l.csv"
    path.write_text("num_prefill_tokens,num_decode_tokens,class\n"
                    "1,1, long\n2,1,short \n3,1,long\n4,1,1\n")
    trace = load_trace(path)
    assert trace.class_names == ("long", "short", "1")  # one non-integer label: all strings
    assert trace.class_index.tolist() == [0, 1, 0, 2]


def test_jsonl_labels_may_be_ints_or_strings(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text(
        '{"timestamp": 0, "input_length": 1, "output_length": 1, "class": 1}\n'
        '{"timestamp": 1, "input_length": 1, "output_length": 1, "class": "1"}\n'
        '{"timestamp": 2, "input_length": 1, "output_length": 1, "class": 0}\n'
    )
    trace = load_trace(path)
    assert trace.class_names == ("0", "1")
    assert trace.class_index.tolist() == [1, 1, 0]


def test_unsorted_times_carry_the_classes_along(tmp_path):
    path = tmp_path / "v.csv"
    path.write_text("arrived_at,num_prefill_tokens,num_decode_tokens,class\n"
                    "3,30,3,c\n1,10,1,a\n2,20,2,b\n1,11,1,b\n")
    trace = load_trace(path)
    assert trace.class_names == ("c", "a", "b")  # file order, not time order
    assert trace.prompt.tolist() == [10, 11, 20, 30]
    assert [trace.class_names[k] for k in trace.class_index] == ["a", "b", "b", "c"]


# ---------------------------------------------------------------------- bad input
_J = '{"timestamp": 0, "input_length": 1, "output_length": 1'
_LENGTHS = "num_prefill_tokens,num_decode_tokens,class\n"
_VIDUR = "arrived_at,num_prefill_tokens,num_decode_tokens\n"


@pytest.mark.parametrize(
    ("name", "text", "pattern"),
    [
        # empty labels in a CSV class column
        ("l.csv", _LENGTHS + "1,2,a\n3,4,\n5,6,\n",
         r"2 row\(s\) have an empty 'class' label \(first at line 3: ''\); "
         r"give every row a class label, or drop the class column"),
        ("l.csv", _LENGTHS + "1,2,   \n", r"1 row\(s\) have an empty 'class' label \(first at line 2"),
        # JSON lines: a class key on some lines only, empty or non-string/int labels
        ("m.jsonl", f'{_J}, "class": "a"}}\n{_J}}}\n',
         r"line 2 has no 'class' key but line 1 does; give every line a class or none"),
        ("m.jsonl", f'{_J}}}\n\n{_J}, "class": "a"}}\n',
         r"line 3 has a 'class' key but line 1 does not; give every line a class or none"),
        ("m.jsonl", f'{_J}, "class": null}}\n', r"1 row\(s\) have an empty 'class' label \(first at line 1"),
        ("m.jsonl", f'{_J}, "class": "a"}}\n{_J}, "class": " "}}\n',
         r"empty 'class' label \(first at line 2"),
        ("m.jsonl", f'{_J}, "class": 1.5}}\n', r"line 1: class label 1\.5 is a float; class labels must be "
                                               r"strings or integers"),
        ("m.jsonl", f'{_J}, "class": true}}\n', r"class label True is a bool"),
        ("m.jsonl", f'{_J}, "class": "a"}}\n{_J}, "class": ["a"]}}\n',
         r"line 2: class label \['a'\] is a list"),
        # vidur arrival times that are not numbers
        ("v.csv", _VIDUR + "0,1,1\nsoon,1,1\n",
         r"1 row\(s\) have a 'arrived_at' that is not a number \(first at line 3: 'soon'\); "
         r"vidur's arrived_at is seconds"),
        ("v.csv", _VIDUR + "inf,1,1\n", r"'arrived_at' that is not a number"),
        ("v.csv", _VIDUR + ",1,1\n", r"'arrived_at' that is not a number \(first at line 2: ''\)"),
    ],
)
def test_bad_trace_files(tmp_path, name, text, pattern):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(TraceError, match=pattern):
        load_trace(path)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"class_names": ("a",)}, "give class_names and class_index together, or neither"),
        ({"class_index": [0, 0]}, "together, or neither"),
        ({"class_names": (), "class_index": [0, 0]}, "class_names must be non-empty strings"),
        ({"class_names": ("a", ""), "class_index": [0, 1]}, "non-empty strings"),
        ({"class_names": ("a", 1), "class_index": [0, 1]}, "non-empty strings"),
        ({"class_names": ("a", "a"), "class_index": [0, 1]}, "must be distinct"),
        ({"class_names": ("a",), "class_index": [0]}, "one integer per request"),
        ({"class_names": ("a",), "class_index": [0.0, 0.0]}, "one integer per request"),
        ({"class_names": ("a", "b"), "class_index": [0, 2]}, r"must lie in 0\.\.1"),
        ({"class_names": ("a", "b"), "class_index": [-1, 1]}, r"must lie in 0\.\.1"),
        ({"class_names": ("a", "b", "c"), "class_index": [0, 2]},
         r"class\(es\) 'b' have no requests; drop them from class_names"),
    ],
)
def test_trace_validates_its_classes(kwargs, pattern):
    with pytest.raises(TraceError, match=pattern):
        Trace([1, 2], [1, 1], None, "x.csv", "lengths", **kwargs)


def test_lengths_of_an_unknown_class(tmp_path):
    trace = load_trace(_write(tmp_path, "lengths", ROWS))
    with pytest.raises(TraceError, match=r"has no class 'nope'; it has classes 'chat', 'code'"):
        trace.lengths("nope")
    plain = load_trace(_write(tmp_path, "vidur", ROWS, with_class=False))
    with pytest.raises(TraceError, match="has no class 'chat'; it has no class labels"):
        plain.lengths("chat")


def test_trace_workload_validates_weights(tmp_path):
    wl = load_trace(_write(tmp_path, "lengths", ROWS)).to_workload()
    for weights in [(), (1.0, 1.0), (1.0, 0.0, 1.0), (1.0, float("nan"), 1.0)]:
        with pytest.raises(WorkloadError, match="weights must be one positive number per class"):
            Workload(wl.classes, "w", weights=weights)


@given(st.lists(st.sampled_from(["a", "b", "7", "", " ", "x y", "é", '"q"', "-2"]),
                min_size=1, max_size=8))
def test_arbitrary_labels_give_a_trace_or_a_trace_error(labels):
    text = "num_prefill_tokens,num_decode_tokens,class\n" + "".join(
        f"{i},{i + 1},{k}\n" for i, k in enumerate(labels))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "c.csv"
        path.write_text(text)
        trace = None
        with contextlib.suppress(TraceError):
            trace = load_trace(path)
        if trace is None:
            assert any(not k.strip() for k in labels)
            return
        assert trace.class_counts.sum() == len(labels)
        assert trace.class_counts.min() >= 1
        wl = trace.to_workload()
        assert wl.mix.sum() == pytest.approx(1.0)
        for k, cls in enumerate(wl.classes):
            rows = trace.class_index == k
            s, o = trace.prompt[rows].astype(float), trace.decode[rows].astype(float)
            assert cls.mean_memory_time == pytest.approx(np.mean(s * o + o * (o + 1) / 2))


# ---------------------------------------------------------------------- the workload
def test_classed_trace_workload_has_the_classes_mix_and_rates(tmp_path):
    trace = load_trace(_write(tmp_path, "azure", ROWS))
    wl = trace.to_workload()
    assert wl.weights is not None
    assert wl.name == "t"
    assert [c.name for c in wl.classes] == list(NAMES)
    assert wl.mix.tolist() == pytest.approx([0.4, 0.4, 0.2])
    assert wl.rates_per_slot is None
    assert all(c.rate_per_slot is None for c in wl.classes)
    # the trace's rate, (5 - 1)/4 s = 1 req/s, shared by class counts
    assert trace.rate_per_s == pytest.approx(1.0)
    assert [c.rate_per_s for c in wl.classes] == pytest.approx([0.4, 0.4, 0.2])
    assert trace.class_rates_per_s().tolist() == pytest.approx([0.4, 0.4, 0.2])
    chat, code, batch = (c.lengths for c in wl.classes)
    assert isinstance(chat, JointLengths)
    assert sorted(zip(chat.prompt_values.tolist(), chat.decode_values.tolist(), strict=True)) == [
        (3, 4), (5, 3)]
    assert sorted(zip(code.prompt_values.tolist(), code.decode_values.tolist(), strict=True)) == [
        (5, 3), (7, 2)]
    assert (batch.prompt_values.tolist(), batch.decode_values.tolist()) == ([9], [1])
    # the mixture is the pooled trace: the same E[W] as the one-class law of all rows
    assert wl.mean_memory_time == pytest.approx(trace.lengths().mean_memory_time, rel=1e-12)
    assert wl.source == f"trace {trace.source} (azure, 5 requests, 3 classes)"
    assert "weight 0.4" in wl.describe()


def test_classed_lengths_csv_has_no_rates(tmp_path):
    wl = load_trace(_write(tmp_path, "lengths", ROWS)).to_workload("mine")
    assert wl.name == "mine"
    assert [c.name for c in wl.classes] == list(NAMES)  # the classes keep their labels
    assert [c.rate_per_s for c in wl.classes] == [None, None, None]
    assert wl.mix.tolist() == pytest.approx([0.4, 0.4, 0.2])


def test_with_total_rate_keeps_the_mix(tmp_path):
    wl = load_trace(_write(tmp_path, "vidur", ROWS)).to_workload().with_total_rate(2.0)
    assert type(wl) is Workload
    assert wl.rates_per_slot.tolist() == pytest.approx([0.8, 0.8, 0.4])
    assert [c.rate_per_s for c in wl.classes] == pytest.approx([0.4, 0.4, 0.2])


def test_trace_prefix_builds_the_multiclass_workload(tmp_path):
    path = _write(tmp_path, "mooncake", ROWS)
    wl = load_workload(f"trace:{path}")
    assert wl.weights is not None
    assert [c.name for c in wl.classes] == list(NAMES)
    assert wl.mix.tolist() == pytest.approx([0.4, 0.4, 0.2])


def test_poisson_runs_draw_classes_by_the_trace_mix(tmp_path):
    # with a per-slot rate the engine samples the workload: classes by π_k = n_k / n
    wl = load_trace(_write(tmp_path, "lengths", ROWS)).to_workload()
    res = simulate(SimConfig(wl, 10_000, parse_policy("greedy"), slots=4000, arrival_rate=2.0,
                             seed=3))
    share = np.bincount(res.records.cls, minlength=3) / len(res.records)
    # 8000 draws: each share's standard error is ≤ 0.0055, so 0.03 is > 5 standard errors
    np.testing.assert_allclose(share, [0.4, 0.4, 0.2], atol=0.03)


# ---------------------------------------------------------------------- replay (Dong & Cao §4.1)
DONG_CAO = [(10, 20), (10, 40), (10, 60)]
DONG_CAO_W = [s * o + o * (o + 1) // 2 for s, o in DONG_CAO]
DONG_CAO_M = 16_492
BUDGETS = (4, 4, 4)
PEAK = sum(b * w for b, w in zip(BUDGETS, DONG_CAO_W, strict=True))


def _dong_cao_trace(tmp_path: Path) -> Path:
    # 6 requests of each class every 0.1 s for 80 steps of τ = 0.1 s: 1.5× each class's budget,
    # so every class queue stays non-empty for 120 slots, ≥ 60 slots past the longest decode.
    lines = ["arrived_at,num_prefill_tokens,num_decode_tokens,class"]
    for step in range(80):
        for k, (s, o) in enumerate(DONG_CAO):
            lines += [f"{step / 10},{s},{o},{k}"] * 6
    path = tmp_path / "dong_cao.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_dong_cao_constants():
    assert DONG_CAO_W == [410, 1220, 2430]
    assert PEAK == 16_240 <= DONG_CAO_M


def test_replay_keeps_classes_under_per_class_budgets(tmp_path):
    trace = load_trace(_dong_cao_trace(tmp_path))
    wl = trace.to_workload()
    assert trace.class_names == ("0", "1", "2")
    assert trace.class_counts.tolist() == [480, 480, 480]
    cfg = SimConfig(wl, DONG_CAO_M, parse_policy("budgets:4,4,4"), slots=200, arrivals="trace",
                    trace=trace, step_time=StepTimeModel("const", c0=0.1), seed=0)
    res = simulate(cfg)
    rec = res.records.sort_values("request")
    assert rec.cls.tolist() == trace.class_index.tolist()  # each request keeps its class
    np.testing.assert_allclose(rec.arrival_s, trace.timestamps_s, atol=TIME_ABS_TOL)
    kv = res.timeseries.kv_tokens.to_numpy()
    assert kv.max() == PEAK  # Σ b_k w_k, reached ...
    assert np.all(kv <= PEAK)  # ... and never exceeded
    assert res.summary["kv_peak_tokens"] == PEAK
    assert res.summary["evictions"] == 0
    assert res.summary["completed"] == 1440


def test_cli_replays_a_classed_trace(tmp_path, capsys):
    from flowstab.cli import main

    path = _dong_cao_trace(tmp_path)
    code = main(["simulate", "--workload", f"trace:{path}", "--memory", str(DONG_CAO_M), "--policy",
                 "budgets:4,4,4", "--arrivals", "trace", "--step-time", "const:0.1", "--slots", "200",
                 "--warmup", "0", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    data = json.loads(out)
    assert data["kv_peak_tokens"] == PEAK
    assert data["evictions"] == 0
    assert data["completed"] == 1440


def test_trace_workload_pickles_and_prints_as_a_workload(tmp_path):
    import dataclasses
    import pickle

    wl = load_trace(_write(tmp_path, "lengths", ROWS)).to_workload()
    assert repr(wl) == "Workload('t', classes=['chat', 'code', 'batch'])"
    for copy in (pickle.loads(pickle.dumps(wl)), dataclasses.replace(wl, memory_tokens=100)):
        assert copy.weights is not None
        assert copy.mix.tolist() == pytest.approx([0.4, 0.4, 0.2])
