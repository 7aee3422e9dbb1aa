"""Trace loading: the real third-party files (when present) and every error path.

Reference values for the real traces come from the data folder's ``README.md`` (``$FLOWSTAB_DATA``,
:mod:`numerics.data.paths`; its "Files" and "Quick statistics" tables, computed when the data was
copied, independently of this module); each is printed there rounded, so each check allows half a
unit in the last printed digit.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from numerics.data.presets import data_dir
from numerics.data.traces import Trace, load_trace
from numerics.errors import TraceError
from numerics.model.workload import JointLengths, Workload

AZURE_HEADER = "TIMESTAMP,ContextTokens,GeneratedTokens\n"
#: Exact float comparisons of timestamps: 7 fractional digits (100 ns) parse to integer
#: nanoseconds; converting to seconds as float64 rounds at ~1e-16 relative of a ≤1-hour span.
TIME_ABS_TOL = 1e-9


def _data_file(name: str) -> Path:
    folder = data_dir()
    if folder is None or not (folder / name).is_file():
        pytest.skip(f"third-party data {name} not present (set FLOWSTAB_DATA)")
    return folder / name


def _write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def _half_unit(printed: str) -> float:
    """Half a unit in the last digit of a number printed as ``printed`` (README rounding)."""
    decimals = len(printed.split(".")[1]) if "." in printed else 0
    return 0.5 * 10.0**-decimals


# ---------------------------------------------------------------------- the real files
REAL = [
    # file, format, rows (README "Files" tables), has timestamps
    ("AzureLLMInferenceTrace_conv.csv", "azure", 19366, True),
    ("AzureLLMInferenceTrace_code.csv", "azure", 8819, True),
    ("mooncake_conversation_trace.jsonl", "mooncake", 12031, True),
    ("sharegpt_8k_lengths_llama2.csv", "lengths", 30731, False),
]


@pytest.mark.parametrize(("name", "fmt", "rows", "timed"), REAL)
def test_real_trace_rows_and_format(name, fmt, rows, timed):
    trace = load_trace(_data_file(name))
    assert trace.format == fmt
    assert trace.n_requests == rows
    assert (trace.timestamps_s is not None) == timed
    assert trace.decode.min() >= 1
    assert trace.prompt.dtype == np.int64
    if timed:
        assert trace.timestamps_s[0] == 0.0
        assert np.all(np.diff(trace.timestamps_s) >= 0)
    else:
        assert trace.rate_per_s is None


# README "Quick statistics" (computed there): span s, mean rate req/s, prompt p50 / mean / max,
# output p50 / mean / max, all as printed.
AZURE_STATS = {
    "AzureLLMInferenceTrace_conv.csv": {
        "span": "3502", "rate": "5.53", "prompt_p50": "1020", "prompt_mean": "1155",
        "prompt_max": "14050", "out_p50": "129", "out_mean": "211.1", "out_max": "1000",
    },
    "AzureLLMInferenceTrace_code.csv": {
        "span": "3436", "rate": "2.57", "prompt_p50": "1469", "prompt_mean": "2048",
        "prompt_max": "7437", "out_p50": "13", "out_mean": "27.9", "out_max": "1899",
    },
}


@pytest.mark.parametrize("name", sorted(AZURE_STATS))
def test_azure_readme_statistics(name):
    trace = load_trace(_data_file(name))
    ref = AZURE_STATS[name]
    got = {
        "span": trace.span_s,
        "rate": trace.rate_per_s,
        "prompt_p50": np.median(trace.prompt),
        "prompt_mean": trace.prompt.mean(),
        "prompt_max": trace.prompt.max(),
        "out_p50": np.median(trace.decode),
        "out_mean": trace.decode.mean(),
        "out_max": trace.decode.max(),
    }
    for key, printed in ref.items():
        assert abs(got[key] - float(printed)) <= _half_unit(printed), (key, got[key], printed)


def test_azure_conv_timestamps_have_sub_microsecond_precision():
    # First two rows of the conv file: 18:15:46.6805900 and 18:15:50.9951690.
    trace = load_trace(_data_file("AzureLLMInferenceTrace_conv.csv"))
    assert trace.timestamps_s[1] == pytest.approx(4.314579, abs=TIME_ABS_TOL)


def test_mooncake_readme_statistics():
    # README: "input mean ~12k tokens, output mean ~343"; timestamps in ms.
    trace = load_trace(_data_file("mooncake_conversation_trace.jsonl"))
    assert round(trace.prompt.mean(), -3) == 12000
    assert abs(trace.decode.mean() - 343) <= _half_unit("343")
    assert trace.timestamps_s.max() == pytest.approx(3536.999, abs=TIME_ABS_TOL)


def test_sharegpt_readme_statistics():
    # README: "output capped at 1024", no timestamps.
    trace = load_trace(_data_file("sharegpt_8k_lengths_llama2.csv"))
    assert trace.decode.max() == 1024
    assert trace.timestamps_s is None


def test_the_perf_model_file_is_not_a_trace():
    with pytest.raises(TraceError, match=r"unrecognised columns .*TIMESTAMP,ContextTokens"):
        load_trace(_data_file("splitwise_perf_model.csv"))


def test_real_trace_to_workload():
    trace = load_trace(_data_file("AzureLLMInferenceTrace_code.csv"))
    wl = trace.to_workload()
    (cls,) = wl.classes
    assert wl.name == "AzureLLMInferenceTrace_code"
    assert cls.rate_per_slot is None
    assert cls.rate_per_s == trace.rate_per_s
    assert "AzureLLMInferenceTrace_code.csv" in wl.source
    s, o = trace.prompt.astype(float), trace.decode.astype(float)
    assert wl.mean_memory_time == pytest.approx(np.mean(s * o + o * (o + 1) / 2), rel=1e-12)


# ---------------------------------------------------------------------- small files, each format
def test_azure_small(tmp_path):
    path = _write(
        tmp_path,
        "a.csv",
        AZURE_HEADER
        + "2023-11-16 18:15:46.6805900,374,44\n"
        + "2023-11-16 18:15:47.0000001,396,109\n"
        + "2023-11-16 18:15:48.6805900,100,1",  # no trailing newline, as upstream
    )
    trace = load_trace(path)
    assert trace.format == "azure"
    assert trace.prompt.tolist() == [374, 396, 100]
    assert trace.decode.tolist() == [44, 109, 1]
    assert trace.timestamps_s.tolist() == pytest.approx([0.0, 0.3194101, 2.0], abs=TIME_ABS_TOL)
    assert trace.rate_per_s == pytest.approx(1.0)  # (3 - 1) requests over 2 s
    assert trace.source == str(path)


def test_azure_unsorted_rows_are_sorted_by_time(tmp_path):
    path = _write(
        tmp_path,
        "a.csv",
        AZURE_HEADER
        + "2023-11-16 18:15:48.5,3,30\n"
        + "2023-11-16 18:15:46,1,10\n"
        + "2023-11-16 18:15:47.25,2,20\n",
    )
    trace = load_trace(path)
    assert trace.prompt.tolist() == [1, 2, 3]
    assert trace.decode.tolist() == [10, 20, 30]
    assert trace.timestamps_s.tolist() == pytest.approx([0.0, 1.25, 2.5], abs=TIME_ABS_TOL)


def test_header_and_values_with_spaces(tmp_path):
    path = _write(
        tmp_path, "a.csv", "TIMESTAMP, ContextTokens ,GeneratedTokens\n2023-11-16 18:15:46, 5 ,7\n"
    )
    trace = load_trace(path)
    assert trace.prompt.tolist() == [5]
    assert trace.rate_per_s is None  # one request: no rate


def test_lengths_csv_ignores_other_columns(tmp_path):
    path = _write(
        tmp_path,
        "l.csv",
        "num_prefill_tokens,num_decode_tokens,num_total_tokens,pd_ratio\n"
        "74,918,992,0.08\n290,905,1195,0.32\n10,1.0,11,x\n",
    )
    trace = load_trace(path)
    assert trace.format == "lengths"
    assert trace.prompt.tolist() == [74, 290, 10]
    assert trace.decode.tolist() == [918, 905, 1]  # "1.0" is an integer
    assert trace.timestamps_s is None
    assert trace.rate_per_s is None
    assert trace.span_s is None


def test_mooncake_small(tmp_path):
    path = _write(
        tmp_path,
        "m.jsonl",
        '{"timestamp": 0, "input_length": 6758, "output_length": 500, "hash_ids": [0, 1]}\n'
        "\n"
        '{"timestamp": 1500, "input_length": 7322, "output_length": 3, "extra": "x"}\n'
        '{"timestamp": 4000, "input_length": 10, "output_length": 1}\n',
    )
    trace = load_trace(path)
    assert trace.format == "mooncake"
    assert trace.prompt.tolist() == [6758, 7322, 10]
    assert trace.decode.tolist() == [500, 3, 1]
    assert trace.timestamps_s.tolist() == pytest.approx([0.0, 1.5, 4.0], abs=TIME_ABS_TOL)
    assert trace.rate_per_s == pytest.approx(0.5)


def test_lengths_and_workload_from_small_trace(tmp_path):
    path = _write(
        tmp_path,
        "l.csv",
        "num_prefill_tokens,num_decode_tokens\n10,2\n10,2\n20,4\n",
    )
    trace = load_trace(path)
    joint = trace.lengths()
    assert isinstance(joint, JointLengths)
    assert joint.probs.tolist() == pytest.approx([2 / 3, 1 / 3])
    # W = S·O + O(O+1)/2: (10·2 + 3) twice and 20·4 + 10 once.
    assert joint.mean_memory_time == pytest.approx((2 * 23 + 90) / 3)
    wl = trace.to_workload("mine")
    assert isinstance(wl, Workload)
    assert wl.name == "mine"
    assert wl.classes[0].name == "mine"
    assert wl.classes[0].rate_per_s is None
    assert "lengths" in wl.source
    assert "3 requests" in wl.source
    assert "3 requests" in repr(trace)


def test_trace_arrays_are_read_only(tmp_path):
    trace = load_trace(_write(tmp_path, "l.csv", "num_prefill_tokens,num_decode_tokens\n1,2\n"))
    with pytest.raises(ValueError, match="read-only"):
        trace.prompt[0] = 5


# ---------------------------------------------------------------------- every error path
def test_missing_file(tmp_path):
    with pytest.raises(TraceError, match="not found"):
        load_trace(tmp_path / "nope.csv")


def test_directory(tmp_path):
    with pytest.raises(TraceError, match="is a directory"):
        load_trace(tmp_path)


@pytest.mark.parametrize("content", ["", "  \n\n", b""])
def test_empty_file(tmp_path, content):
    with pytest.raises(TraceError, match="is empty"):
        load_trace(_write(tmp_path, "e.csv", content))


def test_header_only(tmp_path):
    with pytest.raises(TraceError, match="header but no rows"):
        load_trace(_write(tmp_path, "h.csv", AZURE_HEADER))


def test_unknown_columns(tmp_path):
    with pytest.raises(TraceError, match=r"unrecognised columns \(a, b\); expected .*"
                       r"TIMESTAMP,ContextTokens,GeneratedTokens.*num_prefill_tokens"):
        load_trace(_write(tmp_path, "u.csv", "a,b\n1,2\n"))


def test_partial_azure_columns(tmp_path):
    with pytest.raises(TraceError, match="azure trace but lacks columns GeneratedTokens"):
        load_trace(_write(tmp_path, "p.csv", "TIMESTAMP,ContextTokens\n2023-11-16 18:15:46,1\n"))


@pytest.mark.parametrize(
    ("rows", "pattern"),
    [
        ("x,1\n2,y\nz,3\n", r"2 row\(s\) have a non-numeric 'num_prefill_tokens' \(first at line 2"),
        ("1,1\n,2\n", r"1 row\(s\) have a non-numeric 'num_prefill_tokens' \(first at line 3: ''"),
        ("1,nan\n", r"non-numeric 'num_decode_tokens'"),
        ("1,inf\n", r"infinite or implausibly large 'num_decode_tokens'"),
        ("-inf,1\n", r"negative 'num_prefill_tokens'"),
        ("1.5,2\n2,3\n2.25,1\n", r"2 row\(s\) have a non-integer 'num_prefill_tokens'"),
        ("-1,2\n3,4\n", r"1 row\(s\) have a negative 'num_prefill_tokens'"),
        ("1,-2\n", r"negative 'num_decode_tokens'"),
        ("1,1e30\n", r"implausibly large 'num_decode_tokens' \(> 2\*\*53\)"),
        ("1,0\n2,0\n3,1\n4,0\n", r"3 row\(s\) have decode length < 1 \(first at line 2\); "
                                 r"decode lengths must be ≥ 1"),
    ],
)
def test_bad_values(tmp_path, rows, pattern):
    path = _write(tmp_path, "v.csv", "num_prefill_tokens,num_decode_tokens\n" + rows)
    with pytest.raises(TraceError, match=pattern):
        load_trace(path)


def test_unparseable_timestamps(tmp_path):
    path = _write(
        tmp_path,
        "t.csv",
        AZURE_HEADER + "2023-11-16 18:15:46.68,1,2\nyesterday,1,2\n2023-13-45 99:00:00,1,2\n",
    )
    with pytest.raises(TraceError, match=r"2 row\(s\) have an unparseable 'TIMESTAMP' "
                       r"\(first at line 3: 'yesterday'\); expected timestamps like 2023-11-16"):
        load_trace(path)


@pytest.mark.parametrize(
    "text",
    [
        "num_prefill_tokens,num_decode_tokens\n1,2\n3,4,5\n",  # a long row later on
        "num_prefill_tokens,num_decode_tokens\n1,2,3\n4,5\n",  # a long first row
        'num_prefill_tokens,num_decode_tokens\n"1,2\n',  # an unclosed quote
    ],
)
def test_malformed_csv(tmp_path, text):
    with pytest.raises(TraceError, match="malformed CSV"):
        load_trace(_write(tmp_path, "m.csv", text))


def test_not_utf8(tmp_path):
    path = _write(tmp_path, "b.csv", b"num_prefill_tokens,num_decode_tokens\n1,\xff\xfe\n")
    with pytest.raises(TraceError, match="not a UTF-8 text file"):
        load_trace(path)


@pytest.mark.parametrize(
    ("lines", "pattern"),
    [
        ('{"timestamp": 0, "input_length": 1, "output_length": 2}\n{"timestamp": 1,',
         r"line 2: not valid JSON"),
        ('{"timestamp": 0, "input_length": 1, "output_length": 2}\n[1, 2]\n',
         r"line 2: expected a JSON object"),
        ('{"timestamp": 0, "input_length": 1, "output_length": 2}\n'
         '{"timestamp": 0, "input_length": 1}\n', r"line 2: missing key\(s\) output_length"),
        ('{"time": 0, "prompt": 1}\n', r"unrecognised keys \(prompt, time\); expected"),
        ('{"timestamp": 0, "input_length": 1}\n', r"mooncake trace but lacks keys output_length"),
        ('{"timestamp": "noon", "input_length": 1, "output_length": 2}\n',
         r"1 row\(s\) have a 'timestamp' that is not a number \(first at line 1: 'noon'\); "
         r"Mooncake timestamps are milliseconds"),
        ('{"timestamp": 0, "input_length": true, "output_length": 2}\n',
         r"non-numeric 'input_length'"),
        ('{"timestamp": 0, "input_length": 1, "output_length": 0}\n'
         '{"timestamp": 0, "input_length": 1, "output_length": 0}\n',
         r"2 row\(s\) have decode length < 1"),
        ('{"timestamp": 0, "input_length": 1.5, "output_length": 1}\n', r"non-integer"),
        ('{"timestamp": 0, "input_length": 1' + "0" * 400 + ', "output_length": 1}\n',
         r"implausibly large 'input_length'"),
        ('{"timestamp": 1e400, "input_length": 1, "output_length": 1}\n',
         r"'timestamp' that is not a number"),
        ('{"timestamp": 0, "input_length": [1], "output_length": 1}\n',
         r"non-numeric 'input_length' \(first at line 1: \[1\]\)"),
    ],
)
def test_bad_jsonl(tmp_path, lines, pattern):
    with pytest.raises(TraceError, match=pattern):
        load_trace(_write(tmp_path, "m.jsonl", lines))


def test_byte_order_mark(tmp_path):
    bom = b"\xef\xbb\xbf"
    csv = _write(tmp_path, "b.csv", bom + b"num_prefill_tokens,num_decode_tokens\n1,2\n")
    assert load_trace(csv).decode.tolist() == [2]
    jsonl = _write(
        tmp_path, "b.jsonl", bom + b'{"timestamp": 0, "input_length": 1, "output_length": 2}\n'
    )
    assert load_trace(jsonl).format == "mooncake"


def test_jsonl_not_utf8(tmp_path):
    path = _write(tmp_path, "m.jsonl", b'{"timestamp": 0, "input_length": "\xff"}\n')
    with pytest.raises(TraceError, match="not a UTF-8 text file"):
        load_trace(path)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs a non-root POSIX user")
def test_unreadable_file(tmp_path):
    path = _write(tmp_path, "secret.csv", "num_prefill_tokens,num_decode_tokens\n1,2\n")
    path.chmod(0)
    with pytest.raises(TraceError, match="cannot read"):
        load_trace(path)


def test_read_failure_is_a_trace_error(tmp_path, monkeypatch):
    path = _write(tmp_path, "l.csv", "num_prefill_tokens,num_decode_tokens\n1,2\n")

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "open", refuse)
    with pytest.raises(TraceError, match=r"cannot read the file \(Permission denied\)"):
        load_trace(path)


@pytest.mark.parametrize(
    ("path", "pattern"),
    [("x" * 5000 + ".csv", "is not a usable file path"), ("bad\0name.csv", "not found")],
)
def test_unusable_path(path, pattern):
    with pytest.raises(TraceError, match=pattern):
        load_trace(path)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"prompt": [1, 2], "decode": [1]}, "equal length"),
        ({"prompt": [1.5], "decode": [1]}, "integers"),
        ({"prompt": [-1], "decode": [1]}, "negative"),
        ({"prompt": [1], "decode": [0]}, "decode length < 1"),
        ({"prompt": [1], "decode": [1], "timestamps_s": [math.nan]}, "finite timestamp"),
        ({"prompt": [1], "decode": [1], "format": "parquet"}, "format must be one of"),
        ({"prompt": ["a"], "decode": [1]}, "finite numbers"),
    ],
)
def test_trace_validates_its_fields(kwargs, pattern):
    args = {"timestamps_s": None, "source": "x.csv", "format": "lengths", **kwargs}
    with pytest.raises(TraceError, match=pattern):
        Trace(**args)


@given(st.binary(max_size=200))
def test_arbitrary_bytes_give_a_trace_or_a_trace_error(data):
    # Whatever the bytes, load_trace returns a Trace or raises TraceError, never a raw
    # pandas/json/OS error.
    with tempfile.TemporaryDirectory() as folder:
        for name in ("f.csv", "f.jsonl"):
            path = Path(folder) / name
            path.write_bytes(data)
            with contextlib.suppress(TraceError):
                assert isinstance(load_trace(path), Trace)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["1", "0", "-3", "2.5", "x", "", " 7 ", "1e3", "nan", '"4"']),
            st.sampled_from(["1", "0", "12", "3.0", "y", "", "-1", "inf"]),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_arbitrary_lengths_csv_rows(rows):
    text = "num_prefill_tokens,num_decode_tokens\n" + "".join(f"{a},{b}\n" for a, b in rows)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "rows.csv"
        path.write_text(text)
        try:
            trace = load_trace(path)
        except TraceError:
            return
        assert trace.decode.min() >= 1
        assert trace.prompt.min() >= 0


def test_gzip_compressed_traces_load_like_plain_ones(tmp_path):
    # Issue 15: a .jsonl.gz trace got a misleading CSV message; compressed traces now load
    import gzip

    csv_text = ("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.5,10,3\n"
                "2023-11-16 18:15:47.0,20,4\n")
    jsonl_text = ('{"timestamp": 0, "input_length": 10, "output_length": 3}\n'
                  '{"timestamp": 1000, "input_length": 20, "output_length": 4}\n')
    for name, text in (("t.csv", csv_text), ("t.jsonl", jsonl_text)):
        plain, packed = tmp_path / name, tmp_path / f"{name}.gz"
        plain.write_text(text)
        packed.write_bytes(gzip.compress(text.encode()))
        a, b = load_trace(plain), load_trace(packed)
        assert list(a.prompt) == list(b.prompt) == [10, 20]
        assert list(a.decode) == list(b.decode) == [3, 4]
        assert list(a.timestamps_s) == list(b.timestamps_s)
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(gzip.compress(jsonl_text.encode())[:30])  # a download cut short
    with pytest.raises(TraceError, match=r"cut\.jsonl\.gz: (cannot read the file|a damaged gzip file)"):
        load_trace(cut)
