r"""LaTeX formulas as self-contained images, rendered offline by matplotlib's mathtext.

The report must work without a network, so no MathJax: each formula of :mod:`theory.registry`
(and each formula instantiated with a workload's numbers) is typeset by matplotlib's mathtext
into an SVG whose glyphs are paths, and embedded as a ``data:image/svg+xml;base64`` URI.

mathtext implements a subset of TeX. :func:`mathtext_source` rewrites the few constructs of the
registry that it lacks into equivalents it knows (``\le`` → ``\leq``, ``\tfrac`` → ``\frac``,
sizing commands such as ``\Big`` and ``\textstyle`` dropped, ``\operatorname{Var}`` →
``\mathrm{Var}``, ``r^*`` → ``r^{\ast}``). A formula that still does not parse is shown as its LaTeX source in
``<code>`` (:func:`formula_html`), never as an error.

Examples
--------
>>> mathtext_source(r"P(S + O \le M) = 1")
'P(S + O \\leq M) = 1'
>>> render_latex(r"\notacommand{x}") is None
True
>>> formula_html(r"\notacommand{x}")
'<code class="tex">\\notacommand{x}</code>'
"""

from __future__ import annotations

import base64
import functools
import html
import io
import re

__all__ = ["Formula", "formula_html", "mathtext_source", "render_latex"]

#: (pattern, replacement) applied in order by :func:`mathtext_source`.
_REWRITES = (
    (re.compile(r"\\(?:Big|big|bigg|Bigg)[lr]?(?![a-zA-Z])"), ""),
    (re.compile(r"\\(?:textstyle|displaystyle|scriptstyle)(?![a-zA-Z])"), ""),
    (re.compile(r"\\!"), ""),
    (re.compile(r"\\tfrac(?![a-zA-Z])"), r"\\frac"),
    (re.compile(r"\\le(?![a-zA-Z])"), r"\\leq"),
    (re.compile(r"\\ge(?![a-zA-Z])"), r"\\geq"),
    (re.compile(r"\\iff(?![a-zA-Z])"), r"\\Leftrightarrow"),
    (re.compile(r"\\operatorname\{([^{}]*)\}"), r"\\mathrm{\1}\\,"),
    (re.compile(r"\^(?:\*|\{\*\})"), r"^{\\ast}"),  # mathtext spaces a bare * as an operator
)
#: Formula size in points (the SVG is 72 units per inch, so it displays at this size).
FONT_SIZE_PT = 13.0
#: Ink colour of the formulas (the report's text colour).
INK = "#1f2933"


def mathtext_source(latex: str) -> str:
    """Rewrite TeX that mathtext lacks into an equivalent it parses (see the module docstring)."""
    out = latex
    for pattern, repl in _REWRITES:
        out = pattern.sub(repl, out)
    return out


class Formula(str):
    """A data URI of a rendered formula, with its depth below the baseline (points)."""

    depth_pt: float
    width_pt: float
    height_pt: float


@functools.lru_cache(maxsize=512)
def render_latex(latex: str, size_pt: float = FONT_SIZE_PT, color: str = INK) -> Formula | None:
    """Typeset ``latex`` (math mode, no dollar signs) to an SVG data URI; None if it cannot.

    Parameters
    ----------
    latex : str
        A TeX math expression, e.g. ``r"\\lambda_{\\max} = M / E[W]"``.
    size_pt : float
        Font size in points.
    color : str
        Ink colour.

    Returns
    -------
    Formula or None
        The data URI (a ``str``) with ``depth_pt``, ``width_pt`` and ``height_pt`` attributes, or
        None when mathtext cannot parse the expression even after :func:`mathtext_source`.
    """
    import matplotlib
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties
    from matplotlib.mathtext import MathTextParser

    text = f"${mathtext_source(latex).strip()}$"
    rc = {"mathtext.fontset": "cm", "svg.fonttype": "path", "svg.hashsalt": "flowstab"}
    with matplotlib.rc_context(rc):
        prop = FontProperties(size=size_pt)
        try:
            width, height, depth, _, _ = MathTextParser("path").parse(text, dpi=72, prop=prop)
        except ValueError:  # mathtext's parse errors are ValueErrors
            return None
        pad = 1.0  # points on every side, so that no glyph touches the clip box
        fig = Figure(figsize=((width + 2 * pad) / 72.0, (height + 2 * pad) / 72.0))
        FigureCanvasSVG(fig)
        fig.patch.set_alpha(0.0)
        fig.text(pad / (width + 2 * pad), (depth + pad) / (height + 2 * pad), text,
                 fontproperties=prop, color=color)
        buf = io.BytesIO()
        fig.savefig(buf, format="svg", dpi=72, metadata={"Date": None}, transparent=True)
    uri = Formula("data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii"))
    uri.depth_pt, uri.width_pt, uri.height_pt = depth + pad, width + 2 * pad, height + 2 * pad
    return uri


def formula_html(latex: str, *, display: bool = False, size_pt: float = FONT_SIZE_PT) -> str:
    """An ``<img>`` of the rendered formula, or the LaTeX source in ``<code>`` if mathtext fails.

    ``display=True`` centres the formula on its own line; inline formulas sit on the baseline.
    """
    uri = None
    if display:  # display style: full-size fractions, as TeX's display math sets them
        uri = render_latex(re.sub(r"\\(?:t)?frac(?![a-zA-Z])", r"\\dfrac", latex), size_pt)
    uri = uri or render_latex(latex, size_pt)
    if uri is None:
        return f'<code class="tex">{html.escape(latex, quote=False)}</code>'
    alt = html.escape(latex, quote=True)
    cls = "math display" if display else "math"
    style = "" if display else f' style="vertical-align:-{uri.depth_pt:.1f}pt"'
    return f'<img class="{cls}" src="{uri}" alt="{alt}" title="{alt}"{style}>'
