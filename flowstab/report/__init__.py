"""``flowstab report``: one self-contained HTML page for a workload on a KV cache.

:func:`build_report` computes the plan, the stability conditions, a policy comparison by
simulation and the verification status of the claims used, and lays them out as HTML with every
formula and figure embedded; :func:`write_report` writes ``DIR/report.html``. The modules:

* :mod:`flowstab.report.config` — :class:`ReportConfig` (what a report covers), its defaults and
  validation, and the output folder check;
* :mod:`flowstab.report.compute` — the computations: plan, simulation, claims ledger;
* :mod:`flowstab.report.sections` — the HTML sections;
* :mod:`flowstab.report.html` — HTML building blocks and the page assembly;
* :mod:`flowstab.report.figures` — the figures, as PNG data URIs;
* :mod:`flowstab.report.latex` — formulas typeset offline by matplotlib's mathtext.

Importing this package does not import matplotlib or sympy.
"""

from flowstab.report.compute import compare_policies, report_claims
from flowstab.report.config import (
    DEFAULT_MEMORY_TOKENS,
    DEFAULT_REPLICATIONS,
    DEFAULT_SLOTS,
    DEFAULT_STEP_TIME,
    DEFAULT_STEP_TIME_SPEC,
    STEP_TIME_PROVENANCE,
    ReportConfig,
    ReportOutputError,
)
from flowstab.report.html import Report, build_report, write_report
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
