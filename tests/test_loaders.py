"""load_workload: preset names, trace:PATH, TOML workload files, and their error messages."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from numerics.data.loaders import load_workload, load_workload_file
from numerics.data.presets import PRESETS, data_dir, load_preset
from numerics.errors import SpecError, TraceError, UnstableWorkloadError, WorkloadError
from numerics.model.specs import parse_law
from numerics.model.workload import IndependentLengths, JointLengths, RequestClass, Workload

UNKNOWN = r"not a preset \(azure-conv, azure-code, sharegpt, mooncake\), a \.toml file or trace:PATH"
#: Moments of the same parsed laws agree to float rounding (the same sums in the same order).
SAME_LAW_REL = 1e-12


def _toml(tmp_path: Path, text: str, name: str = "workload.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _lengths_csv(tmp_path: Path, rows: str, name: str = "trace.csv") -> Path:
    path = tmp_path / name
    path.write_text("num_prefill_tokens,num_decode_tokens\n" + rows)
    return path


# ---------------------------------------------------------------------- dispatch
@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_names(name):
    assert load_workload(name) is load_preset(name)


def test_trace_prefix(tmp_path):
    path = _lengths_csv(tmp_path, "10,2\n20,4\n")
    wl = load_workload(f"trace:{path}")
    (cls,) = wl.classes
    assert isinstance(cls.lengths, JointLengths)
    assert wl.name == "trace"
    assert wl.mean_memory_time == pytest.approx((10 * 2 + 3 + 20 * 4 + 10) / 2)


def test_trace_prefix_on_real_data():
    folder = data_dir()
    if folder is None or not (folder / "AzureLLMInferenceTrace_conv.csv").is_file():
        pytest.skip("third-party data not present (set FLOWSTAB_DATA)")
    wl = load_workload(f"trace:{folder / 'AzureLLMInferenceTrace_conv.csv'}")
    # README quick statistics: 5.53 req/s, output mean 211.1 (printed rounded).
    assert abs(wl.classes[0].rate_per_s - 5.53) <= 0.005
    assert abs(wl.mean_decode - 211.1) <= 0.05


def test_path_object(tmp_path):
    path = _toml(tmp_path, '[[class]]\nprompt = 1\ndecode = "2"\n')
    assert load_workload(path).name == "workload"


@pytest.mark.parametrize("spec", ["azure", "chat.yaml", "geom:mean=200"])
def test_unknown_name(spec):
    with pytest.raises(SpecError, match=rf"'{spec}': {UNKNOWN}$"):
        load_workload(spec)


def test_trace_file_without_prefix_gets_a_hint():
    with pytest.raises(SpecError, match=rf"{UNKNOWN}; to read a trace file write trace:x\.csv"):
        load_workload("x.csv")


@pytest.mark.parametrize("spec", ["", "   ", None, 5])
def test_not_a_string(spec):
    with pytest.raises(SpecError, match="a workload must be a non-empty string"):
        load_workload(spec)


def test_empty_trace_prefix():
    with pytest.raises(SpecError, match="trace: needs a file"):
        load_workload("trace:  ")


def test_missing_trace_file(tmp_path):
    with pytest.raises(TraceError, match="not found"):
        load_workload(f"trace:{tmp_path / 'nope.csv'}")


# ---------------------------------------------------------------------- TOML round trip
TWO_CLASSES = """\
name = "chat-and-code"
memory_tokens = 500000

[[class]]
name = "chat"
prompt = "lognormal:median=1000,sigma=0.9,max=8192"
decode = "geom:mean=200,max=1000"
rate = 0.02

[[class]]
name = "code"
prompt = 1500
decode = "nbinom:n=0.5,p=0.02,shift=6,max=1900"
rate = 0.01
"""


def test_toml_round_trip_two_classes(tmp_path):
    path = _toml(tmp_path, TWO_CLASSES)
    wl = load_workload(str(path))
    expected = Workload(
        (
            RequestClass.independent(
                parse_law("lognormal:median=1000,sigma=0.9,max=8192"),
                parse_law("geom:mean=200,max=1000"),
                0.02,
                "chat",
            ),
            RequestClass.independent(
                parse_law(1500), parse_law("nbinom:n=0.5,p=0.02,shift=6,max=1900"), 0.01, "code"
            ),
        ),
        "chat-and-code",
        500000,
    )
    assert wl.name == "chat-and-code"
    assert wl.memory_tokens == 500000
    assert [c.name for c in wl.classes] == ["chat", "code"]
    assert wl.rates_per_slot.tolist() == [0.02, 0.01]
    assert wl.mix == pytest.approx([2 / 3, 1 / 3])
    assert wl.source == f"workload file {path}"
    for got, want in zip(wl.classes, expected.classes, strict=True):
        assert isinstance(got.lengths, IndependentLengths)
        assert got.lengths.prompt.label == want.lengths.prompt.label
        assert got.lengths.decode.label == want.lengths.decode.label
        assert got.mean_memory_time == pytest.approx(want.mean_memory_time, rel=SAME_LAW_REL)
    assert wl.mean_memory_time == pytest.approx(expected.mean_memory_time, rel=SAME_LAW_REL)
    assert math.isfinite(wl.mean_memory_time)
    # The file's text is all that defines it: loading twice gives equal workloads.
    again = load_workload_file(path)
    assert again.mean_memory_time == wl.mean_memory_time


def test_toml_defaults(tmp_path):
    path = _toml(
        tmp_path,
        '[[class]]\nprompt = 100\ndecode = "geom:mean=50"\n'
        '[[class]]\nprompt = "200"\ndecode = 7\n',
        name="mix.toml",
    )
    wl = load_workload(str(path))
    assert wl.name == "mix"
    assert wl.memory_tokens is None
    assert [c.name for c in wl.classes] == ["class1", "class2"]
    assert wl.rates_per_slot is None
    assert wl.mix.tolist() == [0.5, 0.5]


def test_toml_trace_class_relative_to_the_file(tmp_path):
    folder = tmp_path / "sub"
    folder.mkdir()
    _lengths_csv(folder, "10,2\n10,2\n20,4\n", name="t.csv")
    path = _toml(
        folder,
        '[[class]]\nname = "replay"\ntrace = "t.csv"\nrate = 0.5\n'
        '[[class]]\nname = "synthetic"\nprompt = 5\ndecode = "3"\nrate = 1.5\n',
    )
    wl = load_workload(str(path))
    replay, synthetic = wl.classes
    assert isinstance(replay.lengths, JointLengths)
    assert replay.rate_per_slot == 0.5
    assert replay.rate_per_s is None  # a lengths CSV has no timestamps
    assert replay.mean_memory_time == pytest.approx((2 * 23 + 90) / 3)
    assert synthetic.mean_memory_time == pytest.approx(5 * 3 + 6)
    assert wl.mix.tolist() == [0.25, 0.75]


def test_toml_trace_class_with_timestamps(tmp_path):
    trace = tmp_path / "m.jsonl"
    trace.write_text(
        '{"timestamp": 0, "input_length": 1, "output_length": 2}\n'
        '{"timestamp": 2000, "input_length": 3, "output_length": 4}\n'
    )
    path = _toml(tmp_path, f'[[class]]\ntrace = "{trace}"\n')  # an absolute path
    (cls,) = load_workload(str(path)).classes
    assert cls.rate_per_s == pytest.approx(0.5)
    assert np.array_equal(np.sort(cls.lengths.decode_values), [2, 4])


# ---------------------------------------------------------------------- TOML errors
def test_toml_missing_file(tmp_path):
    with pytest.raises(WorkloadError, match=r"workload file .*nope\.toml not found"):
        load_workload(str(tmp_path / "nope.toml"))


def test_toml_unusable_path():
    with pytest.raises(WorkloadError, match="is not a usable file path"):
        load_workload("x" * 5000 + ".toml")


def test_toml_directory(tmp_path):
    folder = tmp_path / "dir.toml"
    folder.mkdir()
    with pytest.raises(WorkloadError, match="is a directory"):
        load_workload(str(folder))


def test_toml_not_utf8(tmp_path):
    path = tmp_path / "workload.toml"
    path.write_bytes(b'name = "\xff"\n')
    with pytest.raises(SpecError, match=r"workload\.toml: not a UTF-8 text file"):
        load_workload(str(path))


@pytest.mark.parametrize(
    ("text", "exc", "pattern"),
    [
        ("name = \n", SpecError, r"^workload\.toml: not valid TOML \("),
        ("", SpecError, r"^workload\.toml: no \[\[class\]\] tables"),
        ('name = "x"\n', SpecError, r"no \[\[class\]\] tables"),
        ('[class]\nprompt = 1\ndecode = "2"\n', SpecError, r"write each class as \[\[class\]\]"),
        ("class = [1, 2]\n", SpecError, r"'class' must be a list of \[\[class\]\] tables"),
        ('memory = 5\n[[class]]\nprompt = 1\ndecode = "2"\n', SpecError,
         r"^workload\.toml: unknown key\(s\) memory; a workload file has name, memory_tokens"),
        ('name = 3\n[[class]]\nprompt = 1\ndecode = "2"\n', SpecError,
         r"name must be a non-empty string, got 3"),
        ('memory_tokens = 0\n[[class]]\nprompt = 1\ndecode = "2"\n', SpecError,
         r"memory_tokens must be a positive integer number of tokens, got 0"),
        ('memory_tokens = 1.5\n[[class]]\nprompt = 1\ndecode = "2"\n', SpecError,
         r"memory_tokens must be a positive integer"),
        ('memory_tokens = true\n[[class]]\nprompt = 1\ndecode = "2"\n', SpecError,
         r"memory_tokens must be a positive integer"),
        ('[[class]]\nname = "chat"\nprompt = 1\ndecode = "geom:mean=0"\n', SpecError,
         r"^workload\.toml, class 'chat': decode: 'geom:mean=0': a geometric on "),
        ('[[class]]\nname = "chat"\nprompt = "lognormal:median=5"\ndecode = "2"\n', SpecError,
         r"^workload\.toml, class 'chat': prompt: 'lognormal:median=5': lognormal needs"),
        ('[[class]]\nname = "chat"\nprompt = 1.5\ndecode = "2"\n', SpecError,
         r"class 'chat': prompt: expected a spec string or an integer, got 1\.5"),
        ('[[class]]\nname = "chat"\nprompt = 1\ndecode = true\n', SpecError,
         r"class 'chat': decode: expected a spec string or an integer, got True"),
        ('[[class]]\nname = "chat"\nprompt = 1\ndecode = "poisson:mean=3"\n', WorkloadError,
         r"^workload\.toml, class 'chat': decode law poisson:mean=3 puts mass .* at O = 0"),
        ('[[class]]\nname = "chat"\nprompt = 1\n', SpecError,
         r"class 'chat': missing decode; give prompt and decode length specs"),
        ('[[class]]\nname = "chat"\n', SpecError, r"class 'chat': missing prompt and decode"),
        ('[[class]]\nname = "chat"\nprompt = 1\ndecode = "2"\nrates = 1\n', SpecError,
         r"class 'chat': unknown key\(s\) rates"),
        ('[[class]]\nname = ""\nprompt = 1\ndecode = "2"\n', SpecError,
         r"class #1: name must be a non-empty string"),
        ('[[class]]\nname = "a"\nprompt = 1\ndecode = "2"\nrate = 0\n', SpecError,
         r"class 'a': rate must be a positive number of requests per slot, got 0"),
        ('[[class]]\nname = "a"\nprompt = 1\ndecode = "2"\nrate = -0.5\n', SpecError,
         r"rate must be a positive number"),
        ('[[class]]\nname = "a"\nprompt = 1\ndecode = "2"\nrate = "fast"\n', SpecError,
         r"rate must be a positive number of requests per slot, got 'fast'"),
        ('[[class]]\nname = "a"\nprompt = 1\ndecode = "2"\nrate = true\n', SpecError,
         r"rate must be a positive number"),
        ('[[class]]\nname = "a"\nprompt = 1\ndecode = "2"\nrate = inf\n', SpecError,
         r"rate must be a positive number"),
        ('[[class]]\nname = "a"\nprompt = 1\ndecode = "2"\nrate = 1\n'
         '[[class]]\nname = "b"\nprompt = 1\ndecode = "2"\n', SpecError,
         r"class\(es\) 'b' give no rate but 'a' do; give every class a rate"),
        ('[[class]]\nname = "a"\nprompt = 1\ndecode = "2"\n'
         '[[class]]\nname = "a"\nprompt = 3\ndecode = "4"\n', SpecError,
         r"class names must be distinct; repeated: a"),
        ('[[class]]\nname = "a"\ntrace = "t.csv"\nprompt = 1\n', SpecError,
         r"class 'a': give either trace or prompt and decode, not both"),
        ('[[class]]\nname = "a"\ntrace = 5\n', SpecError,
         r"class 'a': trace must be a file path string"),
        ('[[class]]\nname = "a"\ntrace = "absent.csv"\n', TraceError,
         r"^workload\.toml, class 'a': trace: trace file .*absent\.csv not found"),
        ('[[class]]\nname = "a"\nprompt = 1\ndecode = "zipf:a=2.5"\n', WorkloadError, None),
    ],
)
def test_toml_errors(tmp_path, text, exc, pattern):
    path = _toml(tmp_path, text)
    if pattern is None:
        # A heavy-tailed decode law loads (E[W] = ∞ is the planner's business, not the loader's).
        wl = load_workload(str(path))
        with pytest.raises(UnstableWorkloadError, match="clip it with max=L"):
            wl.require_finite_memory_time()
        return
    with pytest.raises(exc, match=pattern):
        load_workload(str(path))


def test_toml_bad_trace_in_class(tmp_path):
    _lengths_csv(tmp_path, "10,0\n", name="zero.csv")
    path = _toml(tmp_path, '[[class]]\nname = "replay"\ntrace = "zero.csv"\n')
    with pytest.raises(
        TraceError, match=r"workload\.toml, class 'replay': trace: .*decode length < 1"
    ):
        load_workload(str(path))


# ---------------------------------------------------------------------- traces with classes
def _classed_csv(tmp_path: Path, name: str = "mixed.csv") -> Path:
    path = tmp_path / name
    path.write_text("arrived_at,num_prefill_tokens,num_decode_tokens,class\n"
                    "0,10,2,chat\n1,20,4,batch\n2,10,2,chat\n3,30,1,chat\n4,5,5,7\n")
    return path


def test_trace_prefix_with_classes(tmp_path):
    wl = load_workload(f"trace:{_classed_csv(tmp_path)}")
    assert [c.name for c in wl.classes] == ["chat", "batch", "7"]
    assert wl.mix.tolist() == pytest.approx([0.6, 0.2, 0.2])
    assert [c.rate_per_s for c in wl.classes] == pytest.approx([0.6, 0.2, 0.2])  # 4 gaps in 4 s


def test_toml_trace_class_picks_a_label(tmp_path):
    _classed_csv(tmp_path)
    path = _toml(tmp_path, '[[class]]\nname = "c"\ntrace = "mixed.csv"\nlabel = "chat"\nrate = 0.5\n'
                           '[[class]]\nname = "s"\ntrace = "mixed.csv"\nlabel = 7\nrate = 0.25\n')
    chat, seven = load_workload(str(path)).classes
    assert chat.rate_per_slot == 0.5
    assert chat.rate_per_s == pytest.approx(0.6)
    assert sorted(chat.lengths.decode_values.tolist()) == [1, 2]  # (10, 2) twice, (30, 1)
    assert chat.mean_memory_time == pytest.approx((2 * (10 * 2 + 3) + 30 * 1 + 1) / 3)
    assert seven.mean_memory_time == pytest.approx(5 * 5 + 15)


@pytest.mark.parametrize(
    ("table", "pattern"),
    [
        ('trace = "mixed.csv"\n', r"class 'a': trace .*mixed\.csv has a class column \(classes "
                                  r"'chat', 'batch', '7'\); pick one with label = \"chat\", or load "
                                  r"the whole trace as a multi-class workload with trace:PATH"),
        ('trace = "mixed.csv"\nlabel = "code"\n',
         r"class 'a': trace .*mixed\.csv has no class 'code'; its classes are 'chat', 'batch', '7'"),
        ('trace = "plain.csv"\nlabel = "chat"\n',
         r"class 'a': label 'chat' picks a class, but trace .*plain\.csv has no class column"),
        ('prompt = 1\ndecode = "2"\nlabel = "chat"\n',
         r"class 'a': label picks a class of a trace; give trace = \"PATH\" too, or drop label"),
        ('trace = "mixed.csv"\nlabel = 1.5\n', r"label must be a class name \(a string or an "
                                               r"integer\), got 1\.5"),
        ('trace = "mixed.csv"\nlabel = ""\n', r"label must be a class name"),
        ('trace = "mixed.csv"\nlabel = true\n', r"label must be a class name"),
    ],
)
def test_toml_trace_label_errors(tmp_path, table, pattern):
    _classed_csv(tmp_path)
    _lengths_csv(tmp_path, "10,2\n", name="plain.csv")
    path = _toml(tmp_path, '[[class]]\nname = "a"\n' + table)
    with pytest.raises(SpecError, match=pattern):
        load_workload(str(path))
