"""GPU calibration: step-time fits, a probe of a Llama-style decoder, and a real-hardware check.

* :mod:`numerics.calibration.fit` — fit ``StepTimeModel`` forms to measured iteration times
  (splitwise-sim's A100/H100 table included);
* :mod:`numerics.calibration.backends` — a tiny Llama-style decoder over a paged KV pool, in
  numpy (float32, CPU; what CI runs) or torch (bf16 on CUDA; the optional ``gpu`` extra);
* :mod:`numerics.calibration.probe` — time decode and prefill over a grid, fit, write a JSON;
* :mod:`numerics.calibration.engine` — a continuous-batching engine that runs the simulator's
  policy objects on the real KV pool;
* :mod:`numerics.calibration.compare` — measured vs simulated throughput, latency and maximum
  stable rate.

This is the only package that imports torch, and only inside functions. Importing it loads numpy
and pandas only.
"""

_LAZY = {
    "CalibrationError": "numerics.calibration.fit",
    "FitResult": "numerics.calibration.fit",
    "combine_linear": "numerics.calibration.fit",
    "fit_slot": "numerics.calibration.fit",
    "fit_splitwise": "numerics.calibration.fit",
    "fit_step_time": "numerics.calibration.fit",
    "load_splitwise": "numerics.calibration.fit",
    "plot_residuals": "numerics.calibration.fit",
    "ModelConfig": "numerics.calibration.backends",
    "make_backend": "numerics.calibration.backends",
    "ProbeGrid": "numerics.calibration.probe",
    "run_probe": "numerics.calibration.probe",
    "load_calibration": "numerics.calibration.probe",
    "write_calibration": "numerics.calibration.probe",
    "step_time_from_calibration": "numerics.calibration.probe",
    "EngineResult": "numerics.calibration.engine",
    "run_engine": "numerics.calibration.engine",
    "CheckConfig": "numerics.calibration.compare",
    "run_check": "numerics.calibration.compare",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'numerics.calibration' has no attribute {name!r}")


__all__ = sorted(_LAZY)
