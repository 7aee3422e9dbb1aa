"""The one plotting module: palette, figure files and the policy lines shared by the front ends.

``flowstab compare --plot``, the HTML report and ``paper_figs`` all draw with the Okabe–Ito palette
(distinguishable under the common colour-vision deficiencies) and save through :func:`savefig`,
which turns an unwritable path into :class:`numerics.errors.OutputError`. matplotlib is imported
inside the functions that draw, never when this module is imported.
"""

from __future__ import annotations

__all__ = ["OKABE_ITO", "PLOT_SUFFIXES"]

#: The Okabe–Ito palette (blue, vermilion, green, purple, orange, sky blue, black, yellow).
OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
#: The figure file types the front ends write.
PLOT_SUFFIXES = (".png", ".pdf", ".svg")
