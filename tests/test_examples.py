"""Every script in examples/, run as its docstring says (``python examples/NAME.py``), and what it prints checked.

Each script compares its compiled kernels with an independent reference and
prints the comparison; these tests read the printed errors and verdicts.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))

pytestmark = pytest.mark.compile


def _differences(output: str, label: str) -> list[float]:
    return [float(v) for v in re.findall(rf"{re.escape(label)}\s*=?\s*([-+\d.e]+)", output)]


def _small(values: list[float], count: int, tolerance: float = 1e-12) -> None:
    assert len(values) == count and all(v <= tolerance for v in values), values


def check_array_kernels(out: str) -> None:
    _small(_differences(out, "max |p - numpy|") + _differences(out, "max |u - numpy|"), 2, 0.0)
    assert "same object: True" in out and "matches the recurrence: True" in out and ": equal;" in out


def check_filters(out: str) -> None:
    _small(_differences(out, "max |diff|"), 9)
    assert "NaN MISMATCH" not in out


def check_genz_integrals(out: str) -> None:
    _small(_differences(out, "largest relative error:"), 1)
    families = "oscillatory|product_peak|corner_peak|gaussian|continuous|discontinuous"
    assert len(re.findall(rf"^({families}) ", out, re.M)) == 18  # six families in 1, 2 and 3 dimensions


def check_geometric_transform_shift(out: str) -> None:
    assert out.count("equal to the Python mapping") == 2 and "differs" not in out


def check_gsl(out: str) -> None:
    if out.startswith("skipped: "):
        pytest.skip(f"examples/gsl.py: {out.strip()}")
    rows = re.findall(r"^gsl_\w+ .*?\s([\d.e+-]+)\s+[\d.e+-]+$", out, re.M)
    assert len(rows) == 5 and "failed" not in out, out
    assert all(float(error) < 1e-10 for error in rows), rows


def check_nquad_integrand(out: str) -> None:
    values = [float(v) for v in re.findall(r"^nquad with the (?:capsule|Python function):\s+([\d.]+)", out, re.M)]
    assert len(values) == 2 and values[0] == values[1] == pytest.approx(1200.0, rel=1e-12), out


def check_nquad_sweep(out: str) -> None:
    assert "integrals on 1 thread(s)" in out
    worst = float(re.search(r"largest relative difference from the closed forms: (\S+)", out).group(1))
    assert worst < 1e-7


def check_sweep_process_pool(out: str) -> None:
    assert "400 integrals, identical to the serial loop" in out


def check_dask_sweep(out: str) -> None:
    assert re.search(r"^\d+ integrals on Dask, identical to the serial loop", out, re.M), out


def check_transforms(out: str) -> None:
    _small(_differences(out, "max |diff|"), 6)
    assert "the disc r < 40 unwarps to the top 40 rows" in out


CHECKS = {name.removeprefix("check_"): check for name, check in globals().items() if name.startswith("check_")}
NEEDS = {"dask_sweep": "distributed"}  # the dask extra, which the dask tox environment installs


def test_every_example_has_a_check():
    assert sorted(CHECKS) == sorted(path.stem for path in EXAMPLES)


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs_and_its_results_agree_with_the_reference(script, cache_dir):
    needed = NEEDS.get(script.stem)
    if needed and importlib.util.find_spec(needed) is None:
        pytest.skip(f"{script.name} needs {needed} (the dask extra)")
    env = {**os.environ, "CAPSULES_CACHE": str(cache_dir), "MPLBACKEND": "Agg"}
    done = subprocess.run([sys.executable, str(script.relative_to(ROOT))], cwd=ROOT, env=env, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=900, check=False)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stdout + done.stderr
    CHECKS[script.stem](done.stdout)
