"""``python -m paper_figs``: run (or reuse) every experiment, then draw every figure.

Usage::

    python -m paper_figs [--quick] [--only NAME[,NAME]] [--out DIR] [--results DIR] [--rerun]

For each figure the experiment's results file ``<results>/<name>.json`` is reused when it exists
with the same config, seed and quick flag (``--rerun`` recomputes it), then ``fig_<name>.plot``
draws it to ``<out>/<name>.pdf`` and ``.png``. ``<out>/manifest.json`` lists, per figure, its files,
the results file and its SHA-256, and the experiment and plot seconds. Progress goes to stderr;
bad input is one line ``paper_figs: error: ...`` and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from paper_figs import FIGURES, figure_module

__all__ = ["main", "resolve_names"]

PROG = "paper_figs"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{PROG}: error: {message} (see 'python -m {PROG} --help')\n")


def _build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=f"python -m {PROG}", description="Regenerate every paper figure.")
    p.add_argument("--quick", action="store_true", help="small experiment configs (CI): ~1 minute")
    p.add_argument("--only", metavar="NAME[,NAME]", help=f"figures to make: {', '.join(FIGURES)} "
                   "(or f1, f2, ...)")
    p.add_argument("--out", default="paper_figs/out", metavar="DIR", help="figure folder")
    p.add_argument("--results", default="results", metavar="DIR", help="results folder")
    p.add_argument("--rerun", action="store_true",
                   help="recompute experiments even when a results file with the same config exists")
    return p


def resolve_names(text: str | None) -> list[str]:
    """Figure names from ``--only`` (full names or short labels ``f1``…); ValueError if unknown."""
    if text is None:
        return list(FIGURES)
    short = {n.split("_", 1)[0]: n for n in FIGURES}
    out: list[str] = []
    for part in text.split(","):
        key = part.strip().lower()
        if not key:
            continue
        name = key if key in FIGURES else short.get(key)
        if name is None:
            raise ValueError(f"--only: unknown figure {part.strip()!r}; choose from "
                             f"{', '.join(FIGURES)} (or {', '.join(short)})")
        if name not in out:
            out.append(name)
    if not out:
        raise ValueError("--only: give at least one figure name, e.g. --only f1,f2")
    return out


def _say(msg: str) -> None:
    print(f"{PROG}: {msg}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = _build_parser().parse_args(argv)
    try:
        names = resolve_names(args.only)
    except ValueError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    from numerics.errors import FlowstabError
    from paper_figs.io import load_or_run, load_results, manifest_entry, read_manifest, write_manifest
    from paper_figs.style import mark_quick, save_figure

    out_dir = Path(args.out)
    figures = read_manifest(out_dir)
    total = time.perf_counter()
    try:
        for i, name in enumerate(names, start=1):
            t0 = time.perf_counter()
            _say(f"[{i}/{len(names)}] {name}: experiment ...")
            path, reused = load_or_run(name, args.quick, args.results, args.rerun)
            t_exp = time.perf_counter() - t0
            doc = load_results(path)
            t1 = time.perf_counter()
            fig = figure_module(name).plot(doc)
            if doc["provenance"].get("quick"):
                mark_quick(fig)
            files = save_figure(fig, out_dir, name)
            writer = getattr(figure_module(name), "write_table", None)
            if writer is not None:  # the figure's numbers beside it, as CSV (and more: a list)
                written = writer(doc, out_dir / f"{name}.csv")
                files.extend(written if isinstance(written, list) else [written])
            t_plot = time.perf_counter() - t1
            figures[name] = manifest_entry(files, path, doc, reused, t_exp, t_plot)
            how = "reused" if reused else f"computed in {t_exp:.1f} s"
            _say(f"[{i}/{len(names)}] {name}: results {how}; plotted in {t_plot:.1f} s -> "
                 f"{files[0].with_suffix('.{pdf,png}')}")
    except (FlowstabError, OSError) as exc:
        print(f"{PROG}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    manifest_path = write_manifest(out_dir, figures)
    _say(f"{len(names)} figure(s) in {time.perf_counter() - total:.1f} s; manifest {manifest_path}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
