"""The %%capsules cell magic, in a real IPython shell, and the quickstart notebook in a real Jupyter kernel."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import integrate, ndimage

import capsules

pytestmark = pytest.mark.compile

IPython = pytest.importorskip("IPython", reason="the notebook tests need IPython (the test extra installs it)")
ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "examples" / "quickstart.ipynb"


@pytest.fixture(scope="module")
def shell(cache_dir: Path) -> Any:
    """An IPython shell in this process, with the extension loaded and the session's cache."""
    from IPython.core.interactiveshell import InteractiveShell

    os.environ["CAPSULES_CACHE"] = str(cache_dir)
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "capsules")
    yield shell
    InteractiveShell.clear_instance()


def run(shell: Any, cell: str) -> Any:
    """Run a cell as the notebook would (it gets an execution count); return its result."""
    return shell.run_cell(cell, store_history=True)


def test_comment_kernels_replace_their_functions(shell: Any) -> None:
    result = run(shell, """%%capsules
import math

#capsules integrand osc(x, y; a)
def osc(x, y, a):
    return math.cos(a * x + y)

#pythran export capsule nquad_f(int32, float64*, float64*)
def nquad_f(n, x, cp):
    return cp[0] + x[0] - x[1] * x[2]
""")
    result.raise_error()
    osc, nquad_f = shell.user_ns["osc"], shell.user_ns["nquad_f"]
    assert isinstance(osc, capsules.InlineKernel) and osc.built
    compiled = integrate.dblquad(osc.lowlevel(a=2.0), 0, 1, 0, 1)[0]
    # int_0^1 int_0^1 cos(2x + y) dx dy = (cos 2 + cos 1 - cos 3 - 1) / 2
    assert compiled == pytest.approx((math.cos(2) + math.cos(1) - math.cos(3) - 1) / 2, rel=1e-12)
    assert osc(0.5, 0.25, 2.0) == math.cos(1.25)  # still the Python function
    assert integrate.nquad(nquad_f.lowlevel(user_data=[1.0]), [[0, 10], [-10, 0], [-1, 1]])[0] == pytest.approx(1200)


def test_decorated_kernels_in_a_cell_are_built(shell: Any) -> None:
    run(shell, """%%capsules
import capsules

@capsules.filter("window; k")
def scaled_max(window, k):
    return k * window.max()
""").raise_error()
    kernel = shell.user_ns["scaled_max"]
    assert kernel.built
    image = np.random.default_rng(4).random((30, 30))
    np.testing.assert_array_equal(
        ndimage.generic_filter(image, kernel.lowlevel(k=3.0), size=3), 3.0 * ndimage.maximum_filter(image, size=3)
    )


def test_typed_parameters_in_a_cell(shell: Any) -> None:
    run(shell, """%%capsules
#capsules integrand tabulated(x; table: float64[:], dx)
def tabulated(x, table, dx):
    i = min(int(x / dx), len(table) - 1)
    return table[i]
""").raise_error()
    kernel = shell.user_ns["tabulated"]
    table = np.array([1.0, 4.0, 2.0, 8.0])
    # a step function: each step's value over its width of 0.25
    got = integrate.quad(kernel.lowlevel(table=table, dx=0.25), 0, 1, points=[0.25, 0.5, 0.75])[0]
    assert got == pytest.approx(table.sum() * 0.25, rel=1e-13)
    assert got == pytest.approx(integrate.quad(kernel, 0, 1, args=(table, 0.25), points=[0.25, 0.5, 0.75])[0])


def test_decorators_work_in_plain_cells(shell: Any) -> None:
    """Without the magic: IPython keeps the cell's source, and the first lowlevel() compiles from it."""
    run(shell, "import math, capsules\n\n@capsules.integrand('x; a')\ndef plain(x, a):\n    return a * math.sin(x)\n"
        ).raise_error()
    kernel = shell.user_ns["plain"]
    assert not kernel.built
    assert integrate.quad(kernel.lowlevel(a=2.0), 0, math.pi)[0] == pytest.approx(4.0, rel=1e-13)


def test_an_edited_cell_reloads_in_the_same_process(shell: Any) -> None:
    values = []
    for factor in ("2.0", "7.0", "2.0"):
        run(shell, f"%%capsules\n#capsules integrand lin(x; a)\ndef lin(x, a):\n    return {factor} * a * x\n")
        values.append(integrate.quad(shell.user_ns["lin"].lowlevel(a=1.0), 0, 1)[0])
    assert values == [pytest.approx(1.0), pytest.approx(3.5), pytest.approx(1.0)]


ERRORS = {
    # the cell's own line, numbered from the cell's first line after %%capsules
    "comment": ("#capsules integrand bad(x, y; a)\ndef bad(x, a):\n    return x\n", 1, "the comment lists (x, y, a)"),
    "pythran": ("import math\n#capsules integrand bad(x; a)\ndef bad(x, a):\n    return math.cos('no') + x\n", 4,
                "pythran"),
    "decorated": ("import capsules\n\n@capsules.integrand('x; a')\ndef bad(x, a):\n    return 'text'\n", 3,
                  "must return a number"),
    "refused": ("import capsules\nLIST = [1.0]\n@capsules.integrand('x; a')\ndef bad(x, a):\n    return LIST[0]\n", 2,
                "not a number or a tuple of numbers"),
    "syntax": ("import math\n#capsules integrand bad(x; a)\ndef bad(x, a)\n    return x\n", 3, "not valid Python"),
    "nul": ("x = 1\n\0garbage\n", 2, "null bytes"),
}


@pytest.mark.parametrize("case", ERRORS)
def test_errors_show_the_cells_lines(shell: Any, case: str, capsys: pytest.CaptureFixture[str]) -> None:
    body, line, message = ERRORS[case]
    result = run(shell, "%%capsules\n" + body)
    count = result.execution_count  # the cell's own number: In[count]
    err = result.error_in_exec
    assert isinstance(err, capsules.CapsulesError)
    assert str(err).startswith(f"In[{count}]:{line}: ") and message in str(err)
    assert err.source_line == body.splitlines()[line - 1]
    shown = capsys.readouterr()
    text = shown.out + shown.err
    assert f"In[{count}]:{line}:" in text and "Traceback" not in text  # the located message, not capsules' frames


BAD_OPTIONS = {
    "unknown": ("--fast", "unrecognized arguments: --fast"),
    "garbage": ("garbage )(", "unrecognized arguments: garbage )("),
    "missing value": ("--checked --cache", "argument --cache: expected one argument"),
    "unclosed quote": ("--cache 'unclosed", "No closing quotation"),
    "NUL byte": ("--cache x\0y", "a NUL byte"),
}


@pytest.mark.parametrize("case", BAD_OPTIONS)
def test_a_bad_option_line_is_one_message_at_the_cell(
    shell: Any, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    options, reason = BAD_OPTIONS[case]
    result = run(shell, f"%%capsules {options}\n#capsules integrand k(x)\ndef k(x):\n    return x\n")
    err, count = result.error_in_exec, result.execution_count
    assert isinstance(err, capsules.SpecError)
    assert str(err) == (f"In[{count}]: %%capsules options: {reason}; the options are --checked, --portable, "
                        "--cache DIR")
    assert err.source_line == f"%%capsules {options}"
    shown = capsys.readouterr()
    # that message and the line, escaped: no usage printed by argparse, no traceback, no raw NUL byte
    assert (shown.out + shown.err).splitlines() == [
        f"SpecError: {err}", "    " + f"%%capsules {options}".replace("\0", "\\x00")]


def test_a_kernel_failing_at_run_time_names_its_cell(shell: Any) -> None:
    cell = "%%capsules\n#capsules integrand fails(x)\ndef fails(x):\n    if x > 0.5:\n        raise ValueError('too far')\n    return x\n"
    built = run(shell, cell)
    assert built.error_in_exec is None
    count = built.execution_count
    result = run(shell, "from scipy import integrate\nintegrate.quad(fails.lowlevel(), 0, 1)")
    cause = result.error_in_exec.__cause__
    assert isinstance(cause, capsules.KernelError)
    assert str(cause).startswith(f"In[{count}]:1: 'fails' raised ValueError")


DECORATED = {  # a decorated kernel in an ordinary cell: its mistake, where it is, and what is said
    "decorating": ("@capsules.integrand('x, y; a')\ndef k(x, a):\n    return a * x\n", 1,
                   "SpecError", "'k' takes (x, a), but the decorator lists (x, y, a)"),
    "building": ("@capsules.integrand('x; a')\ndef g(x, a):\n    return a * x + 'q'\n\ng.build()\n", 3,
                 "BuildError", "Invalid operand for `+`"),
}


@pytest.mark.parametrize("case", DECORATED)
def test_a_decorated_kernels_error_in_a_cell_is_its_message_at_the_cell(
    shell: Any, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cell, line, kind, message = DECORATED[case]
    result = run(shell, "import capsules\n" + cell)
    count, err = result.execution_count, result.error_in_exec
    assert type(err).__name__ == kind and str(err).startswith(f"In[{count}]:{line + 1}: ") and message in str(err)
    shown = capsys.readouterr()
    text = shown.out + shown.err
    # the located message and the offending line, as for %%capsules cells: no traceback, no cell file name
    assert text.startswith(f"{kind}: In[{count}]:{line + 1}: ") and "Traceback" not in text, text
    assert "ipython-input" not in text and "capsules" + os.sep not in text, text
    assert text.rstrip().endswith(cell.splitlines()[line - 1].strip()), text


def test_a_decorated_kernel_failing_at_run_time_names_its_cell(shell: Any) -> None:
    defined = run(shell, "import capsules\n\n@capsules.integrand('x', checked=True)\ndef tilt(x):\n"
                         "    return 1.0 / (x - x)\n\ntilt.build()\n")
    assert defined.error_in_exec is None
    result = run(shell, "capsules.quad(tilt, 0, 1)")
    assert isinstance(result.error_in_exec, capsules.KernelError)
    assert str(result.error_in_exec).startswith(f"In[{defined.execution_count}]:3: 'tilt' raised ZeroDivisionError")


def test_a_decorated_kernels_error_in_a_jupyter_kernel_is_its_message_at_the_cell(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nbformat = pytest.importorskip("nbformat", reason="needs nbformat (test extra)")
    nbclient = pytest.importorskip("nbclient", reason="needs nbclient and ipykernel (test extra)")
    cells = ["import capsules", "@capsules.integrand('x, y; a')\ndef k(x, a):\n    return a * x"]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    monkeypatch.setenv("CAPSULES_CACHE", str(cache_dir))
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3", allow_errors=True).execute()
    [error] = notebook.cells[1].outputs
    # ipykernel names the cell's file /tmp/ipykernel_<pid>/<hash>.py: the notebook shows In[2]
    assert error.output_type == "error" and error.ename == "SpecError"
    assert error.traceback == ["SpecError: In[2]:1: 'k' takes (x, a), but the decorator lists (x, y, a): they must "
                               "be the same names in the same order", "    @capsules.integrand('x, y; a')"]


def _printed(notebook: Any) -> str:
    return "\n".join(
        output.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    )


TIMED = re.compile(r"^(python callback|capsule|speed-up): .*$", re.MULTILINE)  # measured: differ between runs


def test_quickstart_notebook_runs_in_a_jupyter_kernel(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nbformat = pytest.importorskip("nbformat", reason="needs nbformat (test extra)")
    nbclient = pytest.importorskip("nbclient", reason="needs nbclient and ipykernel (test extra)")
    monkeypatch.setenv("CAPSULES_CACHE", str(cache_dir))
    committed = nbformat.read(QUICKSTART, as_version=4)
    notebook = nbformat.read(QUICKSTART, as_version=4)
    for cell in notebook.cells:  # run from a clean copy: nothing the committed outputs hold reaches the run
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
                            ).execute()
    text = _printed(notebook)
    # the repository keeps the outputs a reader sees on the page: this run's, measured times aside
    assert TIMED.sub("", _printed(committed)) == TIMED.sub("", text), "execute the notebook and commit its outputs"
    values = dict(re.findall(r"^([\w -]+): (.+)$", text, re.MULTILINE))
    assert float(values["nquad"]) == pytest.approx(1200.0, rel=1e-12)
    assert values["signature"] == "double (int, double *, void *)"
    compiled, python, exact = (float(values[k]) for k in ("compiled", "python", "closed form"))
    assert compiled == pytest.approx(exact, rel=1e-12) and python == pytest.approx(exact, rel=1e-12)
    # x in [0, 1] outside and y in [0, 2] inside; the variables swapped give (2 cos 2 - cos 4 - 1) / 2
    assert exact == pytest.approx((math.cos(1.0) + math.cos(4.0) - math.cos(5.0) - 1.0) / 2.0, rel=1e-15)
    assert abs(compiled - (2 * math.cos(2.0) - math.cos(4.0) - 1.0) / 2.0) > 0.05
    assert values["equal to maximum_filter - minimum_filter"] == "True"
    assert re.fullmatch(r"\d+x", values["speed-up"])  # measured, not asserted: a figure is printed
