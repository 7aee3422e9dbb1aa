"""The report's page: HTML building blocks (page shell with inline CSS, tables, cards, badges)
and the assembly of the whole page, :func:`build_report` and :func:`write_report`.

Everything is inline (no external stylesheet, font or script), so the file works offline and
can be mailed as one attachment. The layout is a single centred column (max width 1 040 px) that
reflows on narrow screens; wide tables scroll inside their own wrapper and images never exceed
their container, so nothing overflows horizontally.

:func:`build_report` runs :func:`flowstab.report.compute.compute` (plan, simulation, claims
ledger), lays the results out with :mod:`flowstab.report.sections`, adds the provenance (git
commit and package versions from :mod:`numerics.provenance`) and embeds the report's numbers as
JSON for programs that read them back.

Examples
--------
>>> fmt(0.468990123)
'0.46899'
>>> fmt(279476.9006, 1)
'279,476.9'
>>> fmt(1e-6)
'1.000e-06'
>>> table(["policy", "req/slot"], [["greedy", 0.25]], numeric=[False, True])[:24]
'<div class="table-wrap">'

A report without simulation or verification, for known lengths S = 100, O = 200:
E[W] = 100·200 + 200·201/2 = 40 100, so λ_max = 50 000/40 100:

>>> from flowstab.report.config import ReportConfig
>>> from numerics.model.specs import parse_law
>>> from numerics.model.workload import Workload
>>> wl = Workload.single(parse_law("100"), parse_law("200"), name="example")
>>> rep = build_report(ReportConfig(wl, 50_000, simulate=False, verify=False))
>>> rep.html.startswith("<!DOCTYPE html>")
True
>>> round(rep.data["plan"]["lambda_max"], 12), round(50_000 / 40_100, 12)
(1.246882793017, 1.246882793017)
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flowstab.report.config import ReportOutputError, check_out_dir

if TYPE_CHECKING:
    from flowstab.report.config import ReportConfig

__all__ = ["CSS", "Report", "badge", "build_report", "card", "esc", "fmt", "page", "section", "table",
           "write_report"]


def esc(text: object) -> str:
    """HTML-escape ``str(text)``."""
    return html.escape(str(text), quote=True)


def fmt(value, decimals: int | None = None, unit: str = "", sig: int = 5) -> str:
    """A number for people: ``sig`` significant digits (or ``decimals``), thousands separators.

    ``unit="%"`` shows a fraction as a percentage; None and non-finite values show as "n/a".
    """
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int) and decimals is None and unit != "%":
        return f"{value:,}"
    value = float(value)
    if not math.isfinite(value):
        return "∞" if value == math.inf else "n/a"
    if unit == "%":
        return f"{100 * value:.{1 if decimals is None else decimals}f}%"
    if decimals is not None:
        return f"{value:,.{decimals}f}"
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e9):
        return f"{value:.3e}"
    if abs(value) >= 1e5:
        return f"{value:,.0f}"
    return f"{value:,.{sig}g}"


def badge(text: str, kind: str) -> str:
    """A coloured pill; ``kind`` in ok, bad, warn, muted, info."""
    return f'<span class="badge {esc(kind)}">{esc(text)}</span>'


def card(label_html: str, value_html: str, sub_html: str = "", accent: str = "") -> str:
    """One tile of the summary grid (every argument but ``accent`` is trusted HTML)."""
    cls = f"tile {accent}".strip()
    sub = f'<div class="tile-sub">{sub_html}</div>' if sub_html else ""
    return (f'<div class="{cls}"><div class="tile-label">{label_html}</div>'
            f'<div class="tile-value">{value_html}</div>{sub}</div>')


def table(
    head: Sequence[str],
    rows: Sequence[Sequence[object]],
    *,
    numeric: Sequence[bool] | None = None,
    raw: bool = False,
    caption: str = "",
    cls: str = "",
    nowrap_first: bool = False,
) -> str:
    """A table in a horizontally scrolling wrapper.

    Parameters
    ----------
    head : sequence of str
        Column headers (escaped; may hold a unit on a second line after ``"\\n"``).
    rows : sequence of sequences
        Cells: numbers are formatted by :func:`fmt`; strings are escaped unless ``raw``.
    numeric : sequence of bool, optional
        Right-align and use tabular figures in these columns (default: numbers are numeric).
    raw : bool
        Cells that are strings are trusted HTML.
    caption : str
        Trusted HTML shown under the table.
    cls : str
        CSS class of the table.
    nowrap_first : bool
        Keep the first column on one line (row labels).
    """
    if numeric is None:
        numeric = [False] + [True] * (len(head) - 1)

    def th(text: str, num: bool) -> str:
        main, _, unit = text.partition("\n")
        unit_html = f'<span class="unit">{esc(unit)}</span>' if unit else ""
        return f'<th class="{"num" if num else ""}">{esc(main)}{unit_html}</th>'

    def td(cell: object, num: bool, first: bool) -> str:
        if isinstance(cell, int | float) and not isinstance(cell, bool):
            text = esc(fmt(cell))
        elif cell is None:
            text = "n/a"
        else:
            text = str(cell) if raw else esc(cell)
        cls = "num" if num else ("nowrap" if first and nowrap_first else "")
        return f'<td class="{cls}">{text}</td>'

    out = [f'<div class="table-wrap"><table class="{esc(cls)}"><thead><tr>']
    out += [th(h, n) for h, n in zip(head, numeric, strict=True)]
    out.append("</tr></thead><tbody>")
    for row in rows:
        cells = (td(c, n, i == 0) for i, (c, n) in enumerate(zip(row, numeric, strict=True)))
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table></div>")
    if caption:
        out.append(f'<p class="caption">{caption}</p>')
    return "".join(out)


def section(anchor: str, title: str, body: str, lead: str = "") -> str:
    """A numbered section (``body`` and ``lead`` are trusted HTML)."""
    lead_html = f'<p class="lead">{lead}</p>' if lead else ""
    return (f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>{lead_html}{body}</section>')


CSS = """
:root {
  --ink: #1f2933; --muted: #5f6b7a; --line: #e3e7ec; --bg: #f6f7f9; --paper: #ffffff;
  --blue: #0072B2; --vermillion: #D55E00; --green: #009E73; --orange: #E69F00; --sky: #56B4E9;
  --purple: #CC79A7;
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body {
  margin: 0; background: var(--bg); color: var(--ink);
  font: 16px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
}
main { max-width: 1040px; margin: 0 auto; padding: 28px 20px 56px; }
header.top { margin-bottom: 18px; }
header.top h1 { font-size: 1.75rem; line-height: 1.25; margin: 0 0 6px; letter-spacing: -0.01em; }
header.top .meta { color: var(--muted); font-size: 0.9rem; }
nav.toc { display: flex; flex-wrap: wrap; gap: 6px 14px; margin: 14px 0 0; font-size: 0.9rem; }
nav.toc a { color: var(--blue); text-decoration: none; }
nav.toc a:hover { text-decoration: underline; }
section {
  background: var(--paper); border: 1px solid var(--line); border-radius: 12px;
  padding: 22px 24px; margin: 18px 0;
}
p, li, dd, figcaption { overflow-wrap: anywhere; }
h2 { font-size: 1.3rem; margin: 0 0 10px; }
h3 { font-size: 1.05rem; margin: 22px 0 8px; }
p { margin: 8px 0; }
p.lead { color: var(--muted); margin-top: 0; }
p.caption, p.note { color: var(--muted); font-size: 0.87rem; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.88em; }
code { background: #f1f3f5; border-radius: 4px; padding: 1px 4px; overflow-wrap: anywhere; }
code.tex { color: var(--vermillion); }
img { max-width: 100%; height: auto; }
img.math { display: inline-block; }
img.math.display { display: block; margin: 6px 0; }
figure { margin: 14px 0 6px; }
figure img { display: block; width: 100%; border: 1px solid var(--line); border-radius: 8px; }
figcaption { color: var(--muted); font-size: 0.87rem; margin-top: 6px; }
.summary {
  display: grid; grid-template-columns: repeat(auto-fill, minmax(270px, 1fr)); gap: 12px; margin: 14px 0 4px;
}
.tile {
  border: 1px solid var(--line); border-left: 5px solid var(--blue); border-radius: 10px;
  padding: 12px 14px; background: #fbfcfd; min-width: 0;
}
.tile.green { border-left-color: var(--green); }
.tile.orange { border-left-color: var(--orange); }
.tile.vermillion { border-left-color: var(--vermillion); }
.tile.purple { border-left-color: var(--purple); }
.tile-label { color: var(--muted); font-size: 0.85rem; font-weight: 600; letter-spacing: 0.01em; }
.tile-value { font-size: 1.45rem; font-weight: 650; font-variant-numeric: tabular-nums; margin-top: 2px; }
.tile-value .u { font-size: 0.85rem; font-weight: 500; color: var(--muted); }
.tile-sub { color: var(--muted); font-size: 0.88rem; font-variant-numeric: tabular-nums; }
.callout {
  border-radius: 10px; padding: 12px 16px; margin: 14px 0 0; background: #eef6fb;
  border: 1px solid #cfe6f4;
}
.callout.warn { background: #fdf5e6; border-color: #f3dfb5; }
.table-wrap { overflow-x: auto; margin: 10px 0; border: 1px solid var(--line); border-radius: 8px; }
table { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
th, td { padding: 7px 10px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
thead th {
  background: #f3f5f8; font-weight: 600; white-space: nowrap; position: sticky; top: 0;
}
th .unit { display: block; font-weight: 400; color: var(--muted); font-size: 0.78rem; }
tbody tr:last-child td { border-bottom: none; }
tbody tr:hover { background: #fafbfc; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td .pm { display: block; color: var(--muted); font-size: 0.78rem; }
td.nowrap { white-space: nowrap; }
td .status { margin-top: 3px; }
code.id, td code { white-space: nowrap; overflow-wrap: normal; }
td img.math { max-width: none; }
td .sub { color: var(--muted); font-size: 0.82rem; margin-top: 3px; }
table.ledger td:first-child { min-width: 13em; }
ul.evidence { margin: 0; padding-left: 1.1em; font-size: 0.84rem; }
ul.evidence li { margin: 0 0 3px; overflow-wrap: anywhere; }
table.sim th, table.sim td { padding: 6px 8px; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; }
.badge {
  display: inline-block; padding: 1px 9px; border-radius: 999px; font-size: 0.78rem; font-weight: 600;
  white-space: nowrap; border: 1px solid transparent;
}
.badge.ok { background: #e3f4ee; color: #00694f; border-color: #b5e2d2; }
.badge.bad { background: #fbe9df; color: #9c3f00; border-color: #f2c6ab; }
.badge.warn { background: #fdf1d8; color: #8a5a00; border-color: #f2d89a; }
.badge.muted { background: #eef0f3; color: #56606b; border-color: #dde1e6; }
.badge.info { background: #e4f0f8; color: #005a8c; border-color: #bcd9ec; }
.cond { border-top: 1px solid var(--line); padding: 14px 0 6px; }
.cond:first-of-type { border-top: none; }
.cond-head { display: flex; flex-wrap: wrap; align-items: baseline; gap: 6px 10px; }
.cond-head .title { font-weight: 600; }
.cond-head .id { color: var(--muted); font-size: 0.85rem; }
.cond .src { color: var(--muted); font-size: 0.85rem; }
.formula-row {
  display: grid; grid-template-columns: 150px minmax(0, 1fr); gap: 4px 12px; align-items: center;
}
.formula-row .k { color: var(--muted); font-size: 0.85rem; }
.formula-row > div { min-width: 0; overflow-x: auto; }
dl.kv { display: grid; grid-template-columns: max-content minmax(0, 1fr); gap: 4px 16px; margin: 8px 0; }
dl.kv dt { color: var(--muted); }
dl.kv dd { margin: 0; font-variant-numeric: tabular-nums; min-width: 0; }
footer { color: var(--muted); font-size: 0.85rem; margin-top: 24px; }
@media (max-width: 640px) {
  main { padding: 16px 10px 40px; }
  section { padding: 16px 14px; }
  .formula-row { grid-template-columns: minmax(0, 1fr); }
  header.top h1 { font-size: 1.4rem; }
}
@media print {
  body { background: #fff; }
  section { break-inside: avoid; border: none; padding: 0; }
}
"""


def page(title: str, body: str, data_json: str = "") -> str:
    """The whole document: ``<head>`` with inline CSS, then ``body`` (trusted HTML).

    ``data_json`` (already JSON) is embedded as ``<script type="application/json"
    id="flowstab-data">`` for programs that read the report's numbers back.
    """
    data = ""
    if data_json:
        safe = data_json.replace("</", "<\\/")
        data = f'<script type="application/json" id="flowstab-data">{safe}</script>'
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="generator" content="flowstab report"><title>{esc(title)}</title>'
        f"<style>{CSS}</style></head><body><main>{body}</main>{data}</body></html>\n"
    )


# ------------------------------------------------------------------------------------ the page
@dataclass(frozen=True, eq=False)
class Report:
    """A built report: the HTML text, the numbers in it (JSON-ready) and step timings (s)."""

    html: str
    data: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)


def build_report(config: ReportConfig, *, progress: bool = False) -> Report:
    """Compute everything and lay it out as one HTML page (see the module docstring).

    Parameters
    ----------
    config : ReportConfig
    progress : bool
        Progress bars (tqdm, on stderr) for the simulation and verification steps.

    Raises what :func:`flowstab.report.compute.compute` raises (no plan exists, bad settings).
    """
    from flowstab.jsonify import json_ready
    from flowstab.report.compute import compute, report_data
    from flowstab.report.sections import FOOTER, body_sections, page_header, provenance_section
    from numerics.provenance import git_revision, versions

    computed = compute(config, progress=progress)
    timings = computed.timings
    t0 = time.perf_counter()
    title = f"flowstab report — {config.workload.name}, M = {computed.plan.memory_tokens:,} tokens"
    sha, vers = git_revision(short=12) or "unknown", versions()
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [page_header(title, stamp, vers, sha), *body_sections(config, computed)]
    timings["layout"] = time.perf_counter() - t0
    parts += [provenance_section(config, timings, vers, sha, stamp), FOOTER]
    data = report_data(config, computed, sha, vers)
    data_json = json.dumps(json_ready(data), default=str)
    return Report(page(title, "".join(parts), data_json), data, timings)


def write_report(config: ReportConfig, out_dir: str | os.PathLike, *, progress: bool = False,
                 overwrite: bool = True) -> Path:
    """Build the report and write ``out_dir/report.html`` atomically; returns its path.

    Raises :class:`~flowstab.report.config.ReportOutputError` when the folder or the file cannot
    be written, or (without ``overwrite``) the file exists — both checked before anything is
    computed. The page is written to a temporary file and renamed over ``report.html``, so a full
    disk leaves the previous report (or none), never a partial one.
    """
    from numerics.errors import OutputError
    from numerics.files import write_text_atomic

    folder = check_out_dir(out_dir, overwrite)
    report = build_report(config, progress=progress)
    path = folder / "report.html"
    try:
        write_text_atomic(path, report.html, "--out")
    except OutputError as exc:
        raise ReportOutputError(str(exc)) from None
    return path
