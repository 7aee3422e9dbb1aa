"""``flowstab report``: one self-contained HTML page for a workload on a KV cache.

:func:`build_report` computes the plan, the stability conditions, a policy comparison by
simulation and the verification status of the claims used, and lays them out as HTML with every
formula and figure embedded (:mod:`flowstab.report.build`); :func:`write_report` writes
``DIR/report.html``. Formulas are typeset offline by matplotlib's mathtext
(:mod:`flowstab.report.latex`); figures are in :mod:`flowstab.report.figures`, HTML helpers in
:mod:`flowstab.report.html`. Importing this package does not import matplotlib or sympy.
"""

from flowstab.report.build import (
    DEFAULT_MEMORY_TOKENS,
    DEFAULT_REPLICATIONS,
    DEFAULT_SLOTS,
    DEFAULT_STEP_TIME,
    DEFAULT_STEP_TIME_SPEC,
    STEP_TIME_PROVENANCE,
    Report,
    ReportConfig,
    ReportOutputError,
    build_report,
    compare_policies,
    report_claims,
    write_report,
)
from flowstab.report.latex import formula_html, render_latex

__all__ = [
    "DEFAULT_MEMORY_TOKENS",
    "DEFAULT_REPLICATIONS",
    "DEFAULT_SLOTS",
    "DEFAULT_STEP_TIME",
    "DEFAULT_STEP_TIME_SPEC",
    "STEP_TIME_PROVENANCE",
    "Report",
    "ReportConfig",
    "ReportOutputError",
    "build_report",
    "compare_policies",
    "formula_html",
    "render_latex",
    "report_claims",
    "write_report",
]
