"""Presets (stored fits) and the fitting code that produced them.

The stored numbers in :mod:`numerics.data.presets` are checked three ways: against themselves with no
data present (the specs parse, the stored fitted E[W] is what the specs give), against the data
files' checksums and row counts in the data folder's ``README.md`` (``$FLOWSTAB_DATA``,
:mod:`numerics.data.paths`), and by refitting every preset from the data (when
present) with :func:`numerics.data.fitting.fit_preset`.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pytest

from numerics.data import presets
from numerics.data.fitting import FAMILIES, fit_length_law, fit_preset, main, stored_block
from numerics.data.presets import DEFAULT_PRESET, PRESETS, data_dir, load_preset
from numerics.data.traces import Trace, load_trace
from numerics.errors import WorkloadError
from numerics.model.specs import parse_law
from numerics.model.workload import IndependentLengths

#: Stored quality numbers are written with 6 significant digits (``fitting._g6``), so a value
#: recomputed from the same spec differs from the stored one by at most half a unit in the 6th
#: digit: relative 5e-6. Refitting is deterministic (same data, same optimiser start and
#: tolerances), so any larger difference means the code, the libraries or the data changed.
STORED_REL = 1e-5
#: Absolute slack for stored numbers near 0 (a correlation of 0.00115 printed to 6 digits).
STORED_ABS = 1e-9
#: README "Files" tables: rows per data file.
README_ROWS = {
    "azure-conv": 19366,
    "azure-code": 8819,
    "sharegpt": 30731,
    "mooncake": 12031,
}


def _data_file(name: str) -> Path:
    folder = data_dir()
    if folder is None or not (folder / name).is_file():
        pytest.skip(f"third-party data {name} not present (set FLOWSTAB_DATA)")
    return folder / name


def _close(got: float | None, stored: float | None) -> bool:
    if got is None or stored is None:
        return got is stored
    return math.isclose(got, stored, rel_tol=STORED_REL, abs_tol=STORED_ABS)


# ---------------------------------------------------------------------- stored presets, no data
def test_the_four_presets():
    assert set(PRESETS) == {"azure-conv", "azure-code", "sharegpt", "mooncake"}
    assert DEFAULT_PRESET == "azure-conv"
    assert PRESETS["sharegpt"].rate_per_s is None  # the ShareGPT table has no timestamps
    for name, p in PRESETS.items():
        assert p.name == name
        assert p.n_requests == README_ROWS[name]
        assert 0 <= p.ks_prompt <= 1
        assert 0 <= p.ks_decode <= 1
        assert -1 <= p.so_correlation <= 1
        assert "@" in p.source


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_loads_with_no_data(name, tmp_path, monkeypatch):
    monkeypatch.setenv("FLOWSTAB_DATA", str(tmp_path))  # an empty folder: no trace anywhere
    presets._build.cache_clear()
    wl = load_preset(name)
    (cls,) = wl.classes
    p = PRESETS[name]
    assert wl.name == name
    assert cls.name == name
    assert cls.rate_per_slot is None
    assert cls.rate_per_s == p.rate_per_s
    assert isinstance(cls.lengths, IndependentLengths)
    assert wl.source.startswith(f"preset {name}: fitted to {p.data_file}")
    assert math.isfinite(wl.mean_memory_time)
    assert wl.bounded  # clipped at the trace's maxima
    # The stored fitted E[W] is what the stored specs give (6 significant digits).
    assert _close(wl.mean_memory_time, p.mean_memory_time_fit)
    # Two stored values, each within 5e-6 relative, give a ratio within 1e-5.
    ratio = p.mean_memory_time_fit / p.mean_memory_time_data
    assert abs(ratio - 1 - p.rel_err_memory_time) <= 2 * STORED_REL
    assert cls.lengths.prompt.label == p.prompt_spec
    assert cls.lengths.decode.label == p.decode_spec
    assert p.prompt_spec.endswith(f",max={int(wl.max_prompt)}")
    assert p.decode_spec.endswith(f",max={int(wl.max_decode)}")


def test_load_preset_returns_the_same_workload():
    assert load_preset("azure-code") is load_preset(" azure-code ")


def test_unknown_preset():
    with pytest.raises(
        WorkloadError,
        match=r"unknown preset 'azure'; known presets: azure-conv, azure-code, sharegpt, mooncake",
    ):
        load_preset("azure")
    with pytest.raises(WorkloadError, match="unknown preset"):
        load_preset(["azure-conv"])


def test_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("FLOWSTAB_DATA", str(tmp_path))
    assert data_dir() == tmp_path
    monkeypatch.setenv("FLOWSTAB_DATA", str(tmp_path / "absent"))
    assert data_dir() is None
    monkeypatch.delenv("FLOWSTAB_DATA")
    default = Path(__file__).resolve().parents[2] / "shared" / "data"  # <checkout>/../shared/data
    assert data_dir() == (default if default.is_dir() else None)


# ---------------------------------------------------------------------- stored presets vs data
@pytest.mark.parametrize("name", sorted(n for n, p in PRESETS.items() if p.data_sha256))
def test_data_checksum(name):
    p = PRESETS[name]
    digest = hashlib.sha256(_data_file(p.data_file).read_bytes()).hexdigest()
    assert digest == p.data_sha256


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_refit_matches_stored_numbers(name):
    p = PRESETS[name]
    fit = fit_preset(load_trace(_data_file(p.data_file)))
    # The specs are strings of 4-significant-digit parameters: they must agree exactly.
    assert fit.prompt.spec == p.prompt_spec
    assert fit.decode.spec == p.decode_spec
    assert fit.n_requests == p.n_requests
    for got, stored in [
        (fit.rate_per_s, p.rate_per_s),
        (fit.prompt.ks, p.ks_prompt),
        (fit.decode.ks, p.ks_decode),
        (fit.mean_memory_time_data, p.mean_memory_time_data),
        (fit.mean_memory_time_fit, p.mean_memory_time_fit),
        (fit.rel_err_memory_time, p.rel_err_memory_time),
        (fit.so_correlation, p.so_correlation),
    ]:
        assert _close(got, stored), (got, stored)
    # The emitted block reproduces the stored entry.
    assert f'"prompt_spec": "{p.prompt_spec}"' in stored_block({name: fit})


# ---------------------------------------------------------------------- fitting: the likelihood
def _loglik(spec: str, samples: np.ndarray) -> float:
    """Log-likelihood of samples under parse_law(spec), straight from the TokenLaw's masses."""
    law = parse_law(spec)
    idx = np.searchsorted(law.values, samples)
    assert np.array_equal(law.values[idx], samples)  # every sample is in the stored support
    return float(np.sum(np.log(law.probs[idx])))


#: The optimiser's likelihood (log Φ differences, log-gamma, regularised beta) and the TokenLaw's
#: masses (scipy cdf/sf differences, renormalised by ~1e-15) agree to float rounding summed over
#: a few hundred terms.
SAME_LIKELIHOOD_REL = 1e-9


#: (spec, max_tokens, min_length) fitted in the tests below; geom has no separate likelihood.
FIT_CASES = [
    ("lognormal:median=40,sigma=0.7", None, 1),
    ("lognormal:median=40,sigma=0.7,max=80", 80, 1),
    ("nbinom:n=1.5,p=0.03,shift=3", None, 0),
    ("nbinom:n=1.5,p=0.03,shift=1,max=60", 60, 1),
    ("geom:mean=30", None, 1),
    ("geom:mean=30,max=50", 50, 1),
]


@pytest.mark.parametrize(
    ("spec", "max_tokens", "min_length"),
    [case for case in FIT_CASES if not case[0].startswith("geom")],
)
def test_optimised_likelihood_is_parse_laws(spec, max_tokens, min_length):
    # The likelihood the optimiser maximises is that of the law parse_law builds from the spec.
    from numerics.data import fitting

    samples = parse_law(spec).sample(2000, rng=5)
    tally = fitting._tally(samples, max_tokens, min_length, "x")
    kw = dict(p.split("=") for p in spec.split(":")[1].split(","))
    if spec.startswith("lognormal"):
        mine = fitting._lognormal_loglik(
            math.log(float(kw["median"])), float(kw["sigma"]), tally
        )
    else:
        mine = fitting._nbinom_loglik(float(kw["n"]), float(kw["p"]), int(kw["shift"]), tally)
    assert mine == pytest.approx(_loglik(spec, samples), rel=SAME_LIKELIHOOD_REL)


@pytest.mark.parametrize(("spec", "max_tokens", "min_length"), FIT_CASES)
def test_fit_recovers_the_law_and_maximises_its_likelihood(spec, max_tokens, min_length):
    samples = parse_law(spec).sample(4000, rng=20260411)
    family = spec.split(":")[0]
    fit = fit_length_law(
        samples, max_tokens=max_tokens, families=(family,), min_length=min_length
    )
    assert fit.family == family
    assert fit.n_samples == samples.size
    if max_tokens is not None:
        assert fit.spec.endswith(f",max={max_tokens}")
    # The reported log-likelihood is that of the rounded spec, as parse_law defines the law.
    assert fit.loglik == pytest.approx(_loglik(fit.spec, samples), rel=1e-12, abs=1e-9)
    # The maximum likelihood is at least that of the true law (up to 4-digit rounding, whose
    # cost is second order at the optimum: far below 0.1 nat here).
    assert fit.loglik >= _loglik(spec, samples) - 0.1
    # And a local maximum: nudging any fitted parameter by ±1% lowers the likelihood.
    params = fit.spec.split(":", 1)[1].split(",")
    for i, part in enumerate(params):
        key, value = part.split("=")
        if key in ("max", "shift"):
            continue
        for factor in (0.99, 1.01):
            v = float(value) * factor
            if key == "p" and v >= 1:
                continue
            nudged = params.copy()
            nudged[i] = f"{key}={v}"
            assert _loglik(f"{family}:{','.join(nudged)}", samples) < fit.loglik


def test_lognormal_data_picks_lognormal_with_close_parameters():
    samples = parse_law("lognormal:median=150,sigma=0.8,max=1000").sample(5000, rng=7)
    fit = fit_length_law(samples, max_tokens=1000, min_length=1)
    assert fit.family == "lognormal"
    kw = dict(p.split("=") for p in fit.spec.split(":")[1].split(","))
    # Standard errors of the log-median and the log-sd: σ/√n ≈ 0.011 and σ/√(2n) ≈ 0.008; allow 4.
    se = 0.8 / math.sqrt(5000)
    assert abs(math.log(float(kw["median"]) / 150)) < 4 * se
    assert abs(float(kw["sigma"]) - 0.8) < 4 * se
    assert fit.ks < 0.03  # the DKW bound at n = 5000: P(KS > 0.03) ≤ 2e^{-2·5000·0.0009} ≈ 2e-4


def test_fit_result_fields():
    samples = np.array([1, 2, 2, 3, 3, 3, 4, 5, 8, 13])
    fit = fit_length_law(samples, min_length=1)
    assert fit.family in FAMILIES
    assert fit.aic == pytest.approx(min(a for _, _, a in fit.candidates))
    assert [f for f, _, _ in fit.candidates] == list(FAMILIES)
    assert fit.mean_data == pytest.approx(4.4)
    law = fit.law()
    assert fit.mean_fit == pytest.approx(law.mean)
    # KS by hand: largest gap between the two CDFs at the integers 0..13.
    grid = np.arange(14)
    emp = np.array([np.mean(samples <= x) for x in grid])
    assert fit.ks == pytest.approx(np.max(np.abs(emp - (1 - law.sf(grid)))), abs=1e-12)


def test_parameters_are_rounded_to_four_significant_digits():
    samples = parse_law("nbinom:n=2.345678,p=0.0123456,shift=7").sample(3000, rng=3)
    fit = fit_length_law(samples, families=("nbinom",))
    kw = dict(p.split("=") for p in fit.spec.split(":")[1].split(","))
    assert kw["shift"] == str(samples.min())
    for key in ("n", "p"):
        digits = kw[key].replace(".", "").lstrip("0")
        assert len(digits) <= 4, fit.spec


def test_shift_is_at_least_one_for_decode_lengths():
    samples = np.array([0, 1, 1, 2, 3, 5, 8])
    assert ",shift" not in fit_length_law(samples, families=("nbinom",)).spec
    decode = fit_length_law(samples + 1, families=("nbinom",), min_length=1)
    assert ",shift=1" in decode.spec


def test_samples_above_the_clip_count_at_it():
    samples = np.array([1, 2, 3, 4, 50, 60])
    fit = fit_length_law(samples, max_tokens=10, families=("geom",))
    assert fit.spec.endswith(",max=10")
    assert fit.mean_data == pytest.approx((1 + 2 + 3 + 4 + 10 + 10) / 6)
    assert fit.loglik == pytest.approx(_loglik(fit.spec, np.minimum(samples, 10)))


def test_zeros_rule_out_lognormal_and_geom():
    samples = np.array([0, 0, 1, 3, 4, 9])
    fit = fit_length_law(samples)
    assert fit.family == "nbinom"
    assert [(f, a) for f, _, a in fit.candidates if f != "nbinom"] == [
        ("lognormal", math.inf),
        ("geom", math.inf),
    ]
    with pytest.raises(WorkloadError, match="none of lognormal, geom can produce"):
        fit_length_law(samples, families=("lognormal", "geom"))


@pytest.mark.parametrize(
    ("samples", "kwargs", "pattern"),
    [
        ([1, 2, 3], {"families": ("weibull",)}, "unknown family 'weibull'"),
        ([1, 2, 3], {"families": ()}, "unknown family"),
        ([], {}, "non-empty"),
        ([[1, 2]], {}, "1-d"),
        ([1.5, 2], {}, "integers"),
        ([1, np.nan], {}, "finite"),
        ([0, 1, 2], {"min_length": 1}, "1 lengths are below 1"),
        ([5, 5, 5], {}, "every length equals 5.*deterministic spec '5'"),
        ([1, 2, 3], {"max_tokens": 0}, "max_tokens must be an integer ≥ 1"),
        ([1, 2, 3], {"max_tokens": 2.5}, "max_tokens must be an integer"),
    ],
)
def test_fit_errors(samples, kwargs, pattern):
    with pytest.raises(WorkloadError, match=pattern):
        fit_length_law(np.asarray(samples), label="x", **kwargs)


def test_fit_preset_on_a_small_trace():
    rng = np.random.default_rng(11)
    prompt = parse_law("nbinom:n=2,p=0.01,shift=5").sample(3000, rng)
    decode = parse_law("geom:mean=40").sample(3000, rng)
    trace = Trace(prompt, decode, np.arange(3000) / 2.0, "synthetic.csv", "azure")
    fit = fit_preset(trace)
    assert fit.rate_per_s == pytest.approx(2.0)
    assert fit.prompt.spec.endswith(f",max={prompt.max()}")
    assert fit.decode.spec.endswith(f",max={decode.max()}")
    s, o = prompt.astype(float), decode.astype(float)
    assert fit.mean_memory_time_data == pytest.approx(np.mean(s * o + o * (o + 1) / 2))
    wl = fit.workload()
    assert fit.mean_memory_time_fit == pytest.approx(wl.mean_memory_time)
    assert fit.rel_err_memory_time == pytest.approx(
        fit.mean_memory_time_fit / fit.mean_memory_time_data - 1
    )
    assert fit.so_correlation == pytest.approx(np.corrcoef(s, o)[0, 1])
    # Independent synthetic lengths: the fitted E[W] is within a few percent of the sample's.
    assert abs(fit.rel_err_memory_time) < 0.05


# ---------------------------------------------------------------------- python -m numerics.data.fitting
def test_main_without_data(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FLOWSTAB_DATA", str(tmp_path / "absent"))
    assert main([]) == 2
    assert "no data folder" in capsys.readouterr().err


def test_main_unknown_preset(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FLOWSTAB_DATA", str(tmp_path))
    assert main(["nope"]) == 2
    assert "unknown preset 'nope'" in capsys.readouterr().err


def test_main_missing_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FLOWSTAB_DATA", str(tmp_path))
    assert main(["azure-code"]) == 2
    assert "AzureLLMInferenceTrace_code.csv not found" in capsys.readouterr().err


def test_main_prints_the_stored_block(capsys):
    _data_file(PRESETS["azure-code"].data_file)
    assert main(["azure-code"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# Written by `python -m numerics.data.fitting`")
    assert f'"prompt_spec": "{PRESETS["azure-code"].prompt_spec}"' in out
    namespace: dict = {}
    exec("from typing import Any\n" + out, namespace)
    stored = namespace["_FITTED"]["azure-code"]
    assert stored == {k: v for k, v in presets._FITTED["azure-code"].items()}
