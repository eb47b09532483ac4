"""capsules demo, run in --quick mode through the CLI, and the docstring convention capsules list shows."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from capsules import demo
from capsules.build import kernel_files
from capsules.cli import main
from capsules.generate.module import scan

KERNELS = Path(__file__).resolve().parent.parent / "kernels"
ROW = re.compile(r"^(?P<step>.+?)\s{2,}(?P<result>\S+(?: image)?)\s+(?P<error>\d\.\de[+-]\d+)\s+"
                 r"(?P<python>[\d.]+ m?s)\*?\s+(?P<capsule>[\d.]+ m?s)\s+(?P<speedup>[\d,]+)x$")


@pytest.mark.compile
def test_demo_quick_prints_measured_table_and_plot(cache_dir, tmp_path, capsys):
    png = tmp_path / "demo.png"
    args = ["demo", "--quick", "--cache", str(cache_dir), "-j", "2"]
    if demo_can_plot():
        args += ["--plot", str(png)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "building the bundled kernels in" in out and "genz.py" in out
    rows = [m.groupdict() for m in map(ROW.match, out.splitlines()) if m]
    assert [r["step"].split(":")[0].split(",")[0] for r in rows] == [
        "nquad example", "Genz Gaussian integral (2-D)", "local std filter", "log-polar unwarp"]
    assert rows[0]["result"] == "1200"
    assert all(float(r["error"]) < 1e-9 for r in rows)
    # the speed-up column is measured: ROW reads its form, and its value is no pass/fail test
    # (on a loaded machine a quick run's one call can take longer than the Python's)
    assert "* Python time measured on a 60x60 crop and scaled by 25" in out
    if demo_can_plot():
        assert png.read_bytes().startswith(b"\x89PNG") and f"figure saved to {png}" in out


def demo_can_plot() -> bool:
    try:
        demo.require_matplotlib()
    except demo.CapsulesError:
        return False
    return True


def test_plot_without_matplotlib_fails_before_building(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    assert main(["demo", "--quick", "--cache", str(tmp_path / "c"), "--plot", str(tmp_path / "x.png")]) == 1
    captured = capsys.readouterr()
    assert "--plot needs matplotlib: pip install 'pythran-capsules[plot]'" in captured.err
    assert "building" not in captured.out and not (tmp_path / "c").exists()


def test_missing_kernels_folder_is_explained(monkeypatch, tmp_path):
    monkeypatch.setattr(demo, "KERNEL_FILES", ("no_such_kernel.py",))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(demo.CapsulesError, match="the demo needs the bundled kernels/ folder"):
        demo.kernels_dir()


def test_table_marks_scaled_python_times():
    rows = (demo.Row("a", "1", 1e-16, 1e-9, 2.0, 0.01), demo.Row("b", "img", 0.0, 1e-9, 3.0, 0.5, "scaled by 4"))
    table = demo.format_table(rows)
    assert "200x" in table and "3.00 s*" in table and "\n* scaled by 4" in table
    assert all(row.ok for row in rows)


def bundled_exports():
    return [(path.stem, spec) for path in kernel_files([KERNELS]) for spec in scan(path).exports]


@pytest.mark.parametrize(("module", "spec"), bundled_exports(), ids=lambda v: getattr(v, "name", v))
def test_every_bundled_kernel_documents_formula_and_user_data(module, spec):
    assert spec.formula, f"{module}.{spec.name} has no docstring"
    if spec.capsule and not spec.role:  # natural kernels take named parameters, not user_data
        assert spec.user_data_layout, f"{module}.{spec.name}: no 'user_data:' paragraph in its docstring"


def test_list_shows_formula_and_user_data(capsys):
    assert main(["list", str(KERNELS / "genz.py"), str(KERNELS / "filters.py")]) == 0
    lines = capsys.readouterr().out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("genz.gaussian "))
    assert lines[at + 1] == "    Gaussian: f(x) = exp(-sum_i a_i^2 (x_i - u_i)^2)."
    assert lines[at + 2] == "    user_data: [a_1..a_n, u_1..u_n] (2 n values)."
    at = next(i for i, line in enumerate(lines) if line.startswith("filters.local_range "))
    assert lines[at + 2] == "    user_data: none."
