"""The public API of ``numerics`` and ``flowstab``: every exported name resolves, and importing the
packages stays cheap (no cvxpy, matplotlib, numba or torch until a name that needs them is used)."""

import subprocess
import sys

import pytest

import flowstab
import numerics

#: Heavy optional dependencies that ``import numerics, flowstab`` must not load.
HEAVY = ("cvxpy", "matplotlib", "numba", "torch")


@pytest.mark.parametrize("package", [numerics, flowstab], ids=lambda p: p.__name__)
def test_every_exported_name_resolves(package):
    missing = [name for name in package.__all__ if getattr(package, name, None) is None]
    assert missing == []
    assert len(set(package.__all__)) == len(package.__all__)


def test_flowstab_re_exports_the_objects_of_numerics():
    # names flowstab defines itself (its version, the load_workload front door) are its own
    shared = [name for name in flowstab.__all__ if hasattr(numerics, name)
              and not getattr(getattr(flowstab, name), "__module__", "flowstab").startswith("flowstab")]
    assert len(shared) > 30
    assert [n for n in shared if getattr(flowstab, n) is not getattr(numerics, n)] == []


@pytest.mark.parametrize("name", ["exact_tail", "exact_flow_rate", "exact_tail_per_class",
                                  "alg1_staircase", "flow_region_boundary", "design_rates",
                                  "design_budgets"])
def test_exact_region_and_design_entry_points_are_public(name):
    assert name in numerics.__all__
    assert name in flowstab.__all__


def test_unknown_names_raise_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        _ = numerics.no_such_name
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        _ = flowstab.no_such_name


def test_importing_the_packages_loads_no_heavy_dependency():
    code = (
        "import sys, numerics, flowstab\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
