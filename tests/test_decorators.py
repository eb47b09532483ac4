"""Inline kernels: the decorators, what they lift from their module, and what they refuse."""

from __future__ import annotations

import ast
import concurrent.futures
import ctypes
import importlib.util
import itertools
import math
import multiprocessing
import os
import pickle
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from scipy import integrate, ndimage

import capsules
from capsules import inline
from capsules.discover import kernel_files

pytestmark = pytest.mark.compile

_COUNTER = itertools.count()


@pytest.fixture(autouse=True)
def session_cache(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Inline kernels build into the default cache: the session's."""
    monkeypatch.setenv("CAPSULES_CACHE", str(cache_dir))
    return cache_dir


@pytest.fixture
def script(tmp_path: Path) -> Callable[[str], ModuleType]:
    """Write a module (dedented) and import it under a fresh name, as a script would be run."""

    def make(text: str, name: str = "script.py") -> ModuleType:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip())
        spec = importlib.util.spec_from_file_location(f"inline_script_{next(_COUNTER)}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return make


EVERY_ROLE = """
    import math
    import numpy as np
    import capsules

    SCALE = 2.0 * math.pi
    HALF = (0.5, 0.25)


    def bump(t):
        return math.exp(-t * t) * inner(t)


    def inner(t):
        return 1.0 + HALF[1] * t


    @capsules.integrand("x, y; a, b")
    def gauss(x, y, a, b):
        return bump(a * x) * math.cos(b * y) / SCALE


    @capsules.filter("window; k")
    def spread(window, k):
        return k * (np.max(window) - np.min(window))


    @capsules.filter1d("line_in, line_out; alpha")
    def ewma(line_in, line_out, alpha):
        acc = line_in[0]
        for i in range(line_out.shape[0]):
            acc = alpha * line_in[i + 1] + (1.0 - alpha) * acc
            line_out[i] = acc


    @capsules.mapping("out; dx, dy")
    def shift(out, dx, dy):
        return (out[0] - dy, out[1] - dx)


    @capsules.raw("int32, float64*, float64*")
    def nquad_example(n, x, cp):
        return cp[0] + x[0] - x[1] * x[2]
"""


@pytest.fixture(scope="module")
def every_role(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> ModuleType:
    path = tmp_path_factory.mktemp("roles") / "roles.py"
    path.write_text(textwrap.dedent(EVERY_ROLE).lstrip())
    spec = importlib.util.spec_from_file_location("inline_every_role", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for kernel in (module.gauss, module.spread, module.ewma, module.shift, module.nquad_example):
        kernel.build(cache_dir)
    return module


def test_decorating_builds_nothing(script: Callable[[str], ModuleType], cache_dir: Path) -> None:
    mod = script("""
        import capsules

        @capsules.integrand("x; a")
        def f(x, a):
            return a * x
    """)
    assert isinstance(mod.f, capsules.Kernel) and not mod.f.built
    assert mod.f(2.0, 3.0) == 6.0  # the plain Python function
    assert "not built" in repr(mod.f)


def test_integrand_against_python_and_closed_form(every_role: ModuleType) -> None:
    g = every_role.gauss
    compiled = integrate.dblquad(g.lowlevel(a=1.0, b=2.0), 0, 1, 0, 1)[0]
    python = integrate.dblquad(lambda y, x: g(x, y, 1.0, 2.0), 0, 1, 0, 1)[0]
    assert compiled == pytest.approx(python, rel=1e-13)
    # closed form with b = 0: (1 / 2pi) int_0^1 e^{-x^2} (1 + x/4) dx
    value = integrate.dblquad(g.lowlevel(a=1.0, b=0.0), 0, 1, 0, 1)[0]
    exact = (math.sqrt(math.pi) / 2 * math.erf(1.0) + (1 - math.exp(-1.0)) / 8) / (2 * math.pi)
    assert value == pytest.approx(exact, rel=1e-12)
    assert g.signature == "double (int, double *, void *)"
    assert g.parameters == ("a", "b")


def test_filter_against_ndimage(every_role: ModuleType) -> None:
    image = np.random.default_rng(1).random((40, 50))
    out = ndimage.generic_filter(image, every_role.spread.lowlevel(k=2.0), size=3)
    expected = 2.0 * (ndimage.maximum_filter(image, size=3) - ndimage.minimum_filter(image, size=3))
    np.testing.assert_array_equal(out, expected)


def test_filter1d_against_python(every_role: ModuleType) -> None:
    image = np.random.default_rng(2).random((6, 30))
    compiled = ndimage.generic_filter1d(image, every_role.ewma.lowlevel(alpha=0.3), 3)
    python = ndimage.generic_filter1d(image, every_role.ewma.py, 3, extra_arguments=(0.3,))
    np.testing.assert_array_equal(compiled, python)


def test_mapping_against_python(every_role: ModuleType) -> None:
    image = np.random.default_rng(3).random((20, 30))
    compiled = ndimage.geometric_transform(image, every_role.shift.lowlevel(dx=1.5, dy=-2.0), order=1)
    python = ndimage.geometric_transform(image, lambda out: every_role.shift(out, 1.5, -2.0), order=1)
    np.testing.assert_array_equal(compiled, python)


def test_raw_form(every_role: ModuleType) -> None:
    k = every_role.nquad_example
    result = integrate.nquad(k.lowlevel(user_data=[1.0]), [[0, 10], [-10, 0], [-1, 1]])[0]
    assert result == pytest.approx(1200.0, rel=1e-12)
    point, c = (ctypes.c_double * 3)(1.0, 2.0, 3.0), ctypes.c_double(1.0)
    assert k.as_ctypes()(3, point, ctypes.addressof(c)) == k.py(3, [1.0, 2.0, 3.0], [1.0]) == -4.0


def test_equal_to_the_same_kernel_as_a_file(
    every_role: ModuleType, write_kernel: Callable[..., Path], load_kernel_file: Callable[[Path], capsules.KernelModule]
) -> None:
    """The file twin of ``gauss`` (helpers and constants copied by hand) gives the same bits."""
    path = write_kernel("""
        import math
        SCALE = 2.0 * math.pi
        HALF = (0.5, 0.25)
        def bump(t):
            return math.exp(-t * t) * inner(t)
        def inner(t):
            return 1.0 + HALF[1] * t
        #capsules integrand gauss(x, y; a, b)
        def gauss(x, y, a, b):
            return bump(a * x) * math.cos(b * y) / SCALE
    """, name="twin.py")
    twin = load_kernel_file(path).gauss
    for a, b in [(1.0, 2.0), (0.3, -4.0), (7.0, 0.0)]:
        inline_result = integrate.dblquad(every_role.gauss.lowlevel(a=a, b=b), -1, 2, 0, 1)
        file_result = integrate.dblquad(twin.lowlevel(a=a, b=b), -1, 2, 0, 1)
        assert inline_result == file_result


def test_what_is_lifted(every_role: ModuleType) -> None:
    text = every_role.gauss.module.path.read_text()
    lines = text.splitlines()
    origin = Path(every_role.__file__).read_text().splitlines()
    # each lifted line sits at its own line number; the decorator became the role comment
    for number, line in enumerate(lines, start=1):
        if line and not line.startswith("#capsules"):
            assert origin[number - 1].startswith(line.split(" = ")[0]), (number, line)
    assert "#capsules integrand gauss(x, y; a, b)" in lines
    assert "def bump(t):" in lines and "def inner(t):" in lines and "HALF = (0.5, 0.25)" in lines
    assert "import numpy as np" not in text and "capsules" not in text.replace("#capsules", "")
    assert "def spread" not in text  # other kernels of the file stay out


def test_pickles_into_a_spawn_pool(every_role: ModuleType) -> None:
    kernel = every_role.gauss
    assert pickle.loads(pickle.dumps(kernel))(0.5, 0.5, 1.0, 2.0) == kernel(0.5, 0.5, 1.0, 2.0)
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        remote = list(pool.map(_integrate_gauss, [kernel] * 2, [1.0, 3.0]))
    local = [integrate.dblquad(kernel.lowlevel(a=a, b=2.0), 0, 1, 0, 1)[0] for a in (1.0, 3.0)]
    assert remote == local


def _integrate_gauss(kernel: capsules.Kernel, a: float) -> float:
    assert isinstance(kernel, capsules.InlineKernel)
    return integrate.dblquad(kernel.lowlevel(a=a, b=2.0), 0, 1, 0, 1)[0]


def test_edit_rebuilds_and_unchanged_costs_a_lookup(tmp_path: Path, cache_dir: Path) -> None:
    source = """
        import capsules
        FACTOR = {factor}
        @capsules.integrand("x; a")
        def f(x, a):
            return FACTOR * a * x
    """
    path = tmp_path / "edited.py"
    results, keys = [], []
    for factor in (2.0, 2.0, 5.0):
        path.write_text(textwrap.dedent(source.format(factor=factor)).lstrip())
        spec = importlib.util.spec_from_file_location(f"edited_{next(_COUNTER)}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        results.append(integrate.quad(module.f.lowlevel(a=1.0), 0, 1)[0])
        keys.append(module.f.module.key)
    assert results == [pytest.approx(1.0), pytest.approx(1.0), pytest.approx(2.5)]
    assert keys[0] == keys[1] != keys[2]


def test_cli_builds_a_scripts_kernels(tmp_path: Path, cache_dir: Path) -> None:
    path = tmp_path / "prebuild.py"
    path.write_text(textwrap.dedent("""
        import math
        from capsules import integrand

        @integrand("x; k")
        def wave(x, k):
            return math.sin(k * x)

        if __name__ == "__main__":
            from scipy import integrate
            print(wave.module.entry.key == wave.module.key, integrate.quad(wave.lowlevel(k=1.0), 0, math.pi)[0])
    """).lstrip())
    env = {**__import__("os").environ, "CAPSULES_CACHE": str(cache_dir)}
    built = subprocess.run([sys.executable, "-m", "capsules", "build", str(path)], capture_output=True, text=True,
                           env=env)
    assert built.returncode == 0, built.stderr
    assert f"{path}:wave" in built.stdout
    again = subprocess.run([sys.executable, "-m", "capsules", "build", str(path)], capture_output=True, text=True,
                           env=env)
    assert "up to date" in again.stdout and "0 compiled" in again.stdout
    ran = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert float(ran.stdout.split()[1]) == pytest.approx(2.0)


REFUSED = {
    "list": ("LST = [1.0]  # <-", "return LST[0] * x", "'LST', which is not a number or a tuple of numbers"),
    "string": ("NAME = 'abc'  # <-", "return len(NAME) * x", "'NAME', which is not a number"),
    "class": ("class K:\n    pass", "return K() * x  # <-", "'K', a class (line 2)"),
    "undefined": ("", "return nothere * x  # <-", "'nothere', which is not defined at the top level"),
    "twice": ("T = 1.0\nT = 2.0", "return T * x  # <-", "bound more than once at the top level (lines 2, 3)"),
    "relative": ("from .sibling import g  # <-", "return g(x)", "relative import"),
    "capsules itself": ("", "return capsules.__version__  # <-", "from capsules itself"),
    "loop variable": ("for Q in range(2):\n    pass", "return Q * x  # <-", "top-level 'for' statement (line 2)"),
}


@pytest.mark.parametrize("case", REFUSED)
def test_refused_with_file_and_line(tmp_path: Path, case: str) -> None:
    before, body, message = REFUSED[case]
    text = f"import capsules\n{before}\n\n\n@capsules.integrand('x; a')\ndef k(x, a):\n    {body}\n"
    path = tmp_path / f"refused_{next(_COUNTER)}.py"
    path.write_text(text)
    lines = text.splitlines()
    marked = next(i for i, line in enumerate(lines, start=1) if line.endswith("# <-"))
    if case == "relative":  # importing the file would fail first: lift it from its source, as the CLI does
        _, errors = inline.lift_source(str(path), text)
        err = errors[0]
    else:
        spec = importlib.util.spec_from_file_location(f"refused_{next(_COUNTER)}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        with pytest.raises(capsules.SpecError) as caught:
            module.k.lowlevel(a=1.0)
        err = caught.value
    assert message in err.message
    assert (err.path, err.line, err.source_line) == (str(path), marked, lines[marked - 1])


def test_closure_refused_when_decorating(script: Callable[..., ModuleType]) -> None:
    with pytest.raises(capsules.SpecError, match="defined inside 'outer'") as caught:
        script("""
            import capsules

            def outer():
                c = 2.0
                @capsules.integrand("x; a")
                def inner(x, a):
                    return c * x
                return inner

            outer()
        """, name="closure.py")
    assert caught.value.path.endswith("closure.py") and caught.value.line == 5


def test_arguments_checked_when_decorating(script: Callable[..., ModuleType]) -> None:
    with pytest.raises(capsules.SpecError, match=r"takes \(x, a\), but the decorator lists \(x, y, a\)") as caught:
        script("""
            import capsules

            @capsules.integrand("x, y; a")
            def k(x, a):
                return x
        """, name="mismatch.py")
    assert caught.value.line == 3
    with pytest.raises(capsules.SpecError, match=r"takes 2 argument\(s\), but @raw lists 3"):
        script("""
            import capsules

            @capsules.raw("int32, float64*, float64*")
            def k(n, x):
                return x[0]
        """, name="rawcount.py")


def test_foreign_decorator_on_a_helper_refused(script: Callable[..., ModuleType]) -> None:
    mod = script("""
        import functools
        import capsules

        @functools.lru_cache
        def helper(x):
            return x

        @capsules.integrand("x; a")
        def k(x, a):
            return helper(x)
    """, name="foreign.py")
    with pytest.raises(capsules.SpecError, match="decorated with '@functools.lru_cache'") as caught:
        mod.k.build()
    assert caught.value.line == 4


BUILD_ERRORS = [
    # a pythran type error in the body: the body's line
    ("typing", "import math\n", "return math.cos('abc') + x", "    return math.cos('abc') + x", None),
    # a return SciPy cannot use: the decorator's line
    ("return", "", "return 'text'", "@capsules.integrand('x; a')", "must return a number"),
]


@pytest.mark.parametrize(("case", "imports", "body", "shown", "message"), BUILD_ERRORS, ids=[b[0] for b in BUILD_ERRORS])
def test_build_errors_name_the_users_line(
    script: Callable[..., ModuleType], case: str, imports: str, body: str, shown: str, message: str | None
) -> None:
    mod = script(f"import capsules\n{imports}\n\n@capsules.integrand('x; a')\ndef k(x, a):\n    {body}\n",
                 name=f"builderr_{case}.py")
    with pytest.raises(capsules.BuildError) as caught:
        mod.k.lowlevel(a=1.0)
    err = caught.value
    text = Path(mod.__file__).read_text().splitlines()
    assert err.path == mod.__file__
    assert text[err.line - 1] == shown and err.source_line == shown
    assert message is None or message in err.message
    assert "_capsules_" not in str(err)


def test_runtime_errors_name_the_users_file(script: Callable[..., ModuleType]) -> None:
    mod = script("""
        import capsules

        @capsules.filter("window; k")
        def picky(window, k):
            if window[0] > k:
                raise ValueError("too big")
            return window[0]
    """, name="picky.py")
    image = np.arange(16.0).reshape(4, 4)
    with pytest.raises(capsules.KernelError, match=r"picky\.py:3: 'picky' raised ValueError: \(?too big"):
        ndimage.generic_filter(image, mod.picky.lowlevel(k=5.0), size=1)
    with pytest.raises(capsules.UserDataError) as caught:
        mod.picky.lowlevel()
    assert caught.value.path == mod.__file__ and caught.value.line == 3


def test_lift_keeps_line_numbers() -> None:
    text = textwrap.dedent("""
        import math, json
        from math import (
            cos,
            sin,
        )
        A = 1.0; B = 2.0
        def k(x, a):
            return cos(x) * A + B
    """)
    node = next(n for n in ast.parse(text).body if getattr(n, "name", "") == "k")
    lifted = inline.lift("t.py", text, node, inline.natural_form("integrand", "k", ("x", "a"), "x; a"))
    assert lifted.text.splitlines() == [
        "", "", "from math import cos", "", "", "", "A = 1.0; B = 2.0", "def k(x, a):",
        "    return cos(x) * A + B",
        "#capsules integrand k(x; a)",  # the line above the def is taken: after the end
    ]
    moved = lifted.relocate(capsules.SpecError("bad", path="gen.py", line=10), "gen.py")
    assert (moved.path, moved.line, moved.source_line) == ("t.py", 8, "def k(x, a):")


def test_load_of_a_decorated_script_says_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "deco.py"
    path.write_text("import capsules\n\n\n@capsules.integrand('x; a')\ndef k(x, a):\n    return a * x\n")
    with pytest.raises(capsules.SpecError, match=r"import the script and call kernel.lowlevel\(\)") as caught:
        capsules.load(path, cache=tmp_path / "cache")
    assert str(caught.value).startswith(f"{path}:4: ") and f"capsules build {path}" in str(caught.value)


SCRIPTS = {
    # the lines above a function `k`, and whether that makes a script of inline kernels (decorated on line 4)
    "import as": ("import capsules as cp\n\n\n@cp.integrand('x')", True),
    "from import": ("from capsules import integrand\n\n\n@integrand('x')", True),
    "from import as": ("from capsules import integrand as ig\n\n\n@ig('x')", True),
    "import among others": ("import math, capsules\n\n\n@capsules.integrand('x')", True),
    "another library's filter": ("import django.template\nregister = django.template.Library()\n\n@register.filter", False),
    "not at the top level": ("import capsules\n\nif True:\n    @capsules.integrand('x')", False),
}


@pytest.mark.parametrize("case", SCRIPTS)
def test_one_rule_tells_a_script_of_inline_kernels(tmp_path: Path, case: str) -> None:
    header, script = SCRIPTS[case]
    folder = tmp_path / "project"
    folder.mkdir()
    path = folder / "deco.py"
    indent = header.splitlines()[-1].partition("@")[0]
    path.write_text(f"{header}\n{indent}def k(x):\n{indent}    return x\n")
    (folder / "other.py").write_text("#capsules integrand f(x)\ndef f(x):\n    return x\n")
    # the folder scan takes the file, and capsules.load() refuses it, for the same files
    assert (path in kernel_files([folder])) is script
    try:
        capsules.load(path, cache=tmp_path / "cache", build=False)
    except capsules.CapsulesError as err:
        refused = "kernels are decorated" in str(err)
        assert not refused or str(err).startswith(f"{path}:4: "), err
    else:
        refused = False
    assert refused is script


def test_a_lambda_is_refused_when_decorating(script: Callable[..., ModuleType]) -> None:
    with pytest.raises(capsules.SpecError, match="a lambda cannot be compiled") as caught:
        script("import capsules\nk = capsules.integrand('x; a')(lambda x, a: a * x)\n")
    assert caught.value.line == 2


def test_a_kernel_decorated_twice_is_refused(script: Callable[..., ModuleType]) -> None:
    with pytest.raises(capsules.SpecError, match="'k' is decorated twice") as caught:
        script("""
            import capsules


            @capsules.integrand("x; a")
            @capsules.integrand("x; a")
            def k(x, a):
                return a * x
        """)
    assert caught.value.line == 4


def test_a_body_edited_after_import_is_refused_not_compiled(script: Callable[..., ModuleType], cache_dir: Path) -> None:
    module = script("import capsules\n\n\n@capsules.integrand('x; a')\ndef k(x, a):\n    return a * x\n")
    path = Path(module.__file__)
    path.write_text(path.read_text().replace("return a * x", "return a * x * 10"))  # the same lines
    with pytest.raises(capsules.SpecError, match="the source of 'k' changed since it was defined") as caught:
        module.k.build(cache_dir)
    assert str(caught.value).startswith(f"{path}:4: ")


def test_a_kernel_typed_at_the_interactive_prompt_says_it_cannot_be_read() -> None:
    # Python 3.13's prompt names each input <python-input-N> and keeps only its own text
    code = """
import linecache
import capsules

source = '@capsules.integrand("x")\\ndef f(x):\\n    return math.cos(x)\\n'
linecache.cache["<python-input-2>"] = (len(source), None, source.splitlines(True), "<python-input-2>")
exec(compile(source, "<python-input-2>", "exec"))
try:
    f.lowlevel()
except capsules.SpecError as err:
    print(err)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.startswith("<python-input-2>:1: cannot read the source of 'f'"), done.stdout + done.stderr


DECORATING_ERRORS = {
    "names": ("@capsules.integrand('x, y; a')\ndef k(x, a):", "'k' takes (x, a), but the decorator lists (x, y, a)"),
    "twice": ("@capsules.filter('w; a')\n@capsules.integrand('x; a')\ndef k(x, a):", "'k' is decorated twice"),
    "raw": ("@capsules.raw('float64, float64')\ndef k(x):", "'k' takes 1 argument(s), but @raw lists 2"),
    "not a function": ("@capsules.integrand('x')\n@functools.lru_cache\ndef k(x):",
                       "@integrand compiles a plain function defined with 'def', not _lru_cache_wrapper 'k'"),
}


@pytest.mark.parametrize("case", DECORATING_ERRORS)
def test_an_error_when_decorating_shows_the_users_line_and_no_capsules_frame(tmp_path: Path, case: str) -> None:
    header, message = DECORATING_ERRORS[case]
    path = tmp_path / "deco.py"
    path.write_text(f"import functools\nimport capsules\n\n{header}\n    return x\n")
    done = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, check=False)
    lines = done.stderr.splitlines()
    # at the decorator's line, or (Python 3.10 runs decorators at the def's line) the def's
    assert re.match(rf"capsules\.errors\.SpecError: {re.escape(str(path))}:[4-6]: {re.escape(message)}",
                    lines[-1]), done.stderr
    # the decorator's line (Python 3.11 and later) or its function's (3.10)
    assert re.search(rf'File "{re.escape(str(path))}", line [4-6]\b', done.stderr), done.stderr
    # no frame of capsules': the decorator's own frame is shown at the user's line
    frames = [line for line in lines if line.lstrip().startswith('File "')]
    assert frames and all(f'File "{path}"' in line for line in frames), done.stderr


def test_a_bare_decorators_error_shows_the_users_line(tmp_path: Path) -> None:
    path = tmp_path / "bare.py"
    path.write_text("import capsules\n\n\n@capsules.integrand\ndef k(*x):\n    return x[0]\n")
    done = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, check=False)
    assert re.search(rf"SpecError: {re.escape(str(path))}:[45]: 'k' must take plain positional arguments\n\Z",
                     done.stderr), done.stderr
    # used bare, the decorator is the function the user's line calls: that one frame is capsules'
    assert sum('File "' in line and "capsules" + os.sep in line for line in done.stderr.splitlines()) == 1


def test_a_recursive_kernel_and_mutually_recursive_helpers(script: Callable[[str], ModuleType]) -> None:
    mod = script("""
        import capsules


        def even(k, x):
            return 1.0 if k <= 0 else 1.0 + x * odd(k - 1, x)


        def odd(k, x):
            return 1.0 if k <= 0 else 1.0 - x * even(k - 1, x)


        @capsules.integrand("x; n")
        def series(x, n):
            if n <= 0:
                return even(3, x)
            return 1.0 + x * series(x, n - 1)
    """)
    assert mod.series.module.path.read_text().count("def series(") == 1  # laid out once
    compiled = integrate.quad(mod.series.lowlevel(n=2.0), 0, 1, epsabs=0, epsrel=1e-13)[0]
    python = integrate.quad(mod.series, 0, 1, args=(2.0,), epsabs=0, epsrel=1e-13)[0]
    # 1 + x + x^2 (1 + x - x^2 - x^3) over [0, 1]
    assert compiled == pytest.approx(python, rel=1e-15)
    assert compiled == pytest.approx(1 + 1 / 2 + 1 / 3 + 1 / 4 - 1 / 5 - 1 / 6, rel=1e-13)


def test_typed_parameters_in_the_decorators_string(script: Callable[[str], ModuleType]) -> None:
    mod = script("""
        import capsules


        @capsules.filter("window; weights: float64[:, :], bias: int64")
        def weighted(window, weights, bias):
            total = 0.0
            rows, columns = weights.shape
            for i in range(rows):
                for j in range(columns):
                    total += window[i * columns + j] * weights[i, j]
            return total + bias
    """)
    image, weights = np.random.default_rng(2).normal(size=(17, 19)), np.arange(12.0).reshape(3, 4) / 10
    got = ndimage.generic_filter(image, mod.weighted.lowlevel(weights=weights, bias=2), size=weights.shape)
    assert np.allclose(got, ndimage.correlate(image, weights) + 2, rtol=1e-13, atol=1e-12)
    with pytest.raises(capsules.UserDataError, match="parameter bias"):
        mod.weighted.lowlevel(weights=weights, bias=0.5)


def test_a_complex_integrand_from_the_decorators_string(script: Callable[[str], ModuleType]) -> None:
    mod = script("""
        import cmath

        import capsules


        @capsules.integrand("x; k, table: float64[:] -> complex")
        def wave(x, k, table):
            return cmath.exp(1j * k * x) * table[1]
    """)
    parts = mod.wave.lowlevel(k=4.0, table=[0.0, 1.5])
    compiled = integrate.quad(parts.real, 0, 1)[0] + 1j * integrate.quad(parts.imag, 0, 1)[0]
    python = integrate.quad(mod.wave, 0, 1, args=(4.0, [0.0, 1.5]), complex_func=True)[0]
    assert compiled == pytest.approx(python, rel=1e-13)
    assert pickle.loads(pickle.dumps(parts)).imag.signature == parts.imag.signature
