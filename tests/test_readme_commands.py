"""Every ``$ flowstab ...`` command in README.md runs as written and prints what README shows.

README's console blocks (fenced as ``console``) hold commands, one per ``$`` line (a trailing
backslash continues it on the next line, ``#`` starts a comment), each followed by the output it
displays, where a line ``...`` stands for any number of lines. Each command runs through
:func:`flowstab.cli.main` — the console script's entry point — in a fresh working directory in
which ``examples/`` is the repository's folder, so relative paths resolve as they do from the
repository root and whatever the command writes stays in the test's temporary folder. It must exit
with status 0, and every line README displays for it must appear in its standard output, in order,
with runs of spaces compared as one.

Only one thing is replaced: the placeholder address of a Dask scheduler (``tcp://scheduler:8786``)
becomes the address of an in-process local cluster. Commands that take more than a few seconds are
marked ``slow`` (they run in ``make test``, not in ``make test-fast``). The README's Python examples
are doctests, collected by pytest's ``--doctest-glob=README.md`` (checked below too).
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

#: README commands that are not ``flowstab`` commands, and the test that runs each of them.
OTHER_COMMANDS = {
    "python -m paper_figs --quick": "tests/test_paper_figs.py (its quick_run fixture)",
}

#: Subcommands whose README examples take 4–7 s each on a two-core machine (five policies
#: simulated, 17-direction regions, the quick claims ledger, the CPU calibration with its check):
#: marked slow. The others take 0.1–2 s.
SLOW_COMMANDS = frozenset({"compare", "region", "check", "calibrate"})

#: The placeholder scheduler address of the README's Dask example.
DASK_PLACEHOLDER = "tcp://scheduler:8786"


@dataclass(frozen=True)
class Example:
    """One README command: its text as written (continuations joined) and the output shown."""

    line: int
    command: str
    shown: tuple[str, ...]

    @property
    def argv(self) -> list[str]:
        return shlex.split(self.command, comments=True)


def readme_examples(text: str | None = None) -> list[Example]:
    """The ``$`` commands of README's console blocks, with the output lines shown after each."""
    lines = (README.read_text(encoding="utf-8") if text is None else text).splitlines()
    examples: list[Example] = []
    in_console = False
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            in_console = line.strip() == "```console"
            i += 1
            continue
        if in_console and line.startswith("$ "):
            start = i + 1
            command = line[2:]
            while command.rstrip().endswith("\\"):  # a backslash continues the command
                i += 1
                command = command.rstrip()[:-1].rstrip() + " " + lines[i].strip()
            shown: list[str] = []
            i += 1
            while i < len(lines) and not lines[i].startswith(("$ ", "```")):
                shown.append(lines[i])
                i += 1
            examples.append(Example(start, command.strip(), tuple(shown)))
            continue
        i += 1
    return examples


def _normalise(line: str) -> str:
    return re.sub(r"\s+", " ", line).strip()


def assert_shows(stdout: str, shown: tuple[str, ...]) -> None:
    """Every shown line (``...`` excepted) is a line of ``stdout``, in the order shown."""
    got = [_normalise(x) for x in stdout.splitlines()]
    at = 0
    for want in (_normalise(x) for x in shown):
        if want in ("", "..."):
            continue
        assert want in got[at:], f"README shows {want!r}; the command printed:\n{stdout}"
        at = got.index(want, at) + 1


EXAMPLES = readme_examples()
FLOWSTAB_EXAMPLES = [e for e in EXAMPLES if e.argv[0] == "flowstab"]


def _param(example: Example):
    marks = [pytest.mark.slow] if example.argv[1] in SLOW_COMMANDS else []
    return pytest.param(example, marks=marks, id=f"L{example.line}-{' '.join(example.argv[1:3])}")


# ----------------------------------------------------------------------------- the extraction
def test_extraction_finds_every_console_command():
    text = ("```console\n$ flowstab plan --prompt 1 \\\n      --decode 2   # why\n...\n  shown\n"
            "$ other x\n```\n```python\n$ flowstab not-a-console-block\n```\n")
    got = readme_examples(text)
    assert [e.command for e in got] == ["flowstab plan --prompt 1 --decode 2   # why", "other x"]
    assert got[0].argv == ["flowstab", "plan", "--prompt", "1", "--decode", "2"]
    assert got[0].shown == ("...", "  shown")
    assert_shows("a\n  shown  \n", got[0].shown)
    with pytest.raises(AssertionError, match="README shows"):
        assert_shows("nothing\n", got[0].shown)


def test_readme_has_flowstab_commands_and_names_the_others():
    assert len(FLOWSTAB_EXAMPLES) >= 10
    others = {e.command.split("#")[0].strip() for e in EXAMPLES if e.argv[0] != "flowstab"}
    assert others == set(OTHER_COMMANDS), "a README command that is not tested; add it here"


def test_readme_python_examples_are_collected_as_doctests():
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         "README.md"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "README.md::README.md" in proc.stdout, proc.stdout


# ------------------------------------------------------------------------------ the commands
@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A fresh working directory in which ``examples/`` is the repository's folder."""
    (tmp_path / "examples").symlink_to(ROOT / "examples", target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def dask_address(request):
    """A Dask scheduler address for the README's ``--dask`` example (an in-process cluster)."""
    example = request.node.callspec.params["example"]
    if DASK_PLACEHOLDER not in example.command:
        yield None
        return
    distributed = pytest.importorskip("distributed")
    # threads, not processes: worker processes take ~15 s to start on a loaded two-core machine
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        yield cluster.scheduler_address


@pytest.mark.parametrize("example", [_param(e) for e in FLOWSTAB_EXAMPLES])
def test_readme_command_runs_as_written(example, workdir, dask_address, capsys):
    from flowstab.cli import main

    argv = example.argv[1:]
    if dask_address is not None:
        argv = [dask_address if a == DASK_PLACEHOLDER else a for a in argv]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse usage errors exit from inside main
        code = exc.code
    out, err = capsys.readouterr()
    if argv[0] == "calibrate" and "--check" in argv and code == 1:
        # exit 1 is the check's FAIL verdict about this machine (the CPU model's timings on a
        # shared, loaded CPU), not an error of the command: the verdict must then say so
        assert "verdict: FAIL" in out, out
        code = 0
    assert code == 0, f"README line {example.line}: `{example.command}` exited {code}:\n{err}"
    assert_shows(out, example.shown)
