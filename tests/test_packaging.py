"""Prebuilt kernels in wheels: the build hook, loading with no compiler, mismatches, CPU levels.

The example package (examples/package) is built once per session with the
standard front end (``python -m build``, with build isolation) and the hatch
hook, its build requirement pythran-capsules taken from a wheelhouse holding
this checkout's wheel, never from the package index.  It is then installed
the same way into a new virtual environment in which every compiler call fails.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import numpy as np
import pytest
import scipy
from scipy import integrate

import capsules
from capsules import levels, prebuilt, ship
from capsules.cli import main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "package"
X86_64 = platform.machine().lower() in ("x86_64", "amd64")
LEVELS = [level.name for level in levels.portable_levels()]

pytestmark = pytest.mark.compile


def _run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False, **kwargs)
    assert done.returncode == 0, f"{' '.join(map(str, command))}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This checkout's wheel, and a constraints file that takes pythran-capsules from it and nowhere else.

    The constraint is a direct reference to the file, so pip can never pick a copy from the package
    index; NumPy and SciPy are pinned to this environment's, the ones the example's wheel is then built
    against and run with (a NumPy 1.x build is refused under NumPy 2).
    """
    house = tmp_path_factory.mktemp("wheelhouse")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(house), str(ROOT)])
    (ours,) = house.glob("pythran_capsules-*.whl")
    assert ours.name.startswith(f"pythran_capsules-{capsules.__version__}-"), ours.name
    (house / "constraints.txt").write_text(
        f"pythran-capsules @ {ours.as_uri()}\nnumpy=={np.__version__}\nscipy=={scipy.__version__}\n"
    )
    return house


def _pip_env(wheelhouse: Path) -> dict[str, str]:
    return {**os.environ, "PIP_CONSTRAINT": str(wheelhouse / "constraints.txt")}


@pytest.fixture(scope="session")
def example_wheel(tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path) -> Path:
    """examples/package built into a wheel by `python -m build`, isolated, in a copy of its folder.

    The isolated build environment installs the build requirement pythran-capsules by its name; the
    constraints file (which pip reads from the environment there too) makes that this checkout's wheel.
    """
    source = tmp_path_factory.mktemp("example") / "package"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("dist", "build", "__capsules__", "__pycache__"))
    out = tmp_path_factory.mktemp("example-dist")
    done = _run([sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(source)], env=_pip_env(wheelhouse))
    output = done.stdout + done.stderr
    assert "Creating isolated environment" in output and f"pythran-capsules=={capsules.__version__}" in output, output
    (wheel,) = out.glob("*.whl")
    return wheel


@pytest.fixture(scope="session")
def no_compiler(tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path, example_wheel: Path) -> dict:
    """A new venv with the example's wheel, its dependency pythran-capsules resolved to this checkout's wheel.

    CC and CXX exit 1, and the cache is unusable.
    """
    base = tmp_path_factory.mktemp("nocompiler")
    venv = base / "venv"
    _run([sys.executable, "-m", "venv", str(venv)])
    python = venv / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "-q", str(example_wheel)], env=_pip_env(wheelhouse))
    failing = base / "failing-compiler"
    failing.write_text("#!/bin/sh\necho 'no compiler here' >&2\nexit 1\n")
    failing.chmod(0o755)
    blocker = base / "not-a-directory"
    blocker.write_text("")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "CAPSULES_CPU")}
    env.update(CC=str(failing), CXX=str(failing), CAPSULES_CACHE=str(blocker / "cache"))
    return {"python": str(python), "env": env, "cwd": str(base)}  # cwd: no capsules/ source tree on sys.path


def test_wheel_has_a_platform_tag_and_every_level(example_wheel):
    tag = example_wheel.name.removesuffix(".whl").split("-", 2)[2]
    assert not tag.endswith("none-any")
    assert tag.split("-")[2] == sysconfig.get_platform().replace("-", "_").replace(".", "_")
    names = zipfile.ZipFile(example_wheel).namelist()
    assert "quadfilt/__capsules__/kernels/entry.json" in names
    binaries = [n for n in names if n.startswith("quadfilt/__capsules__/kernels/") and n.endswith(".so")]
    assert sorted(b.split(".")[1] for b in binaries) == sorted(LEVELS)
    # the inline kernel of quadfilt/inline.py, with the module generated for it
    assert {"quadfilt/__capsules__/inline.gauss_cos/entry.json", "quadfilt/__capsules__/inline.gauss_cos/kernel.py"} \
        <= set(names)
    inline = [n for n in names if n.startswith("quadfilt/__capsules__/inline.gauss_cos/") and n.endswith(".so")]
    assert len(inline) == len(LEVELS)
    # capsules.nquad's driver, once for the package, without its sources or build log
    assert sorted(n for n in names if "/capsules_quadpack/" in n) == [
        "quadfilt/__capsules__/capsules_quadpack/capsules_quadpack.so",
        "quadfilt/__capsules__/capsules_quadpack/entry.json",
    ]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="manylinux tags are for Linux")
def test_auditwheel_accepts_the_wheel_for_a_manylinux_tag(example_wheel):
    pytest.importorskip("auditwheel")
    done = _run([sys.executable, "-m", "auditwheel", "show", str(example_wheel)])
    assert re.search(r'consistent with the\s+following platform tag: "manylinux_2_\d+_', done.stdout), done.stdout


CHECK = """
import math, sys
import numpy as np
from scipy import integrate
import quadfilt
errors = quadfilt.selfcheck()
k = quadfilt.KERNELS
# the compiled kernels against the same functions run as plain Python
plain = integrate.quad(lambda x: k.damped.py(x, 0.5, 3.0), 0, 5, epsabs=1e-13, epsrel=1e-13, limit=200)[0]
assert abs(quadfilt.damped_integral(0.5, 3.0, upper=5) - plain) < 1e-12
g = quadfilt.inline.gauss_cos
assert g.module.entry.directory.name == "inline.gauss_cos", g.module.entry.directory
plain = integrate.quad(lambda x: g(x, 1.5), -30, 30, epsabs=1e-13, epsrel=1e-13, limit=200)[0]
assert abs(integrate.quad(g.lowlevel(w=1.5), -30, 30, epsabs=1e-13, epsrel=1e-13, limit=200)[0] - plain) < 1e-13
assert "pythran" not in sys.modules, "pythran was imported"
print(k.entry.level, repr(quadfilt.bump_integral(3.0)), repr(quadfilt.smooth_edges(np.eye(16)).sum()))
"""


ORIGIN = "import importlib.metadata as m; print(m.distribution('pythran-capsules').read_text('direct_url.json'))"


def _in_venv(no_compiler: dict, *args: str, **env: str) -> str:
    return _run([no_compiler["python"], *args], env={**no_compiler["env"], **env}, cwd=no_compiler["cwd"]).stdout


def test_installed_wheel_runs_with_no_compiler_and_no_pythran(no_compiler):
    level = _in_venv(no_compiler, "-c", CHECK).split()[0]
    assert level == levels.pick(LEVELS)
    checked = _in_venv(no_compiler, "-m", "quadfilt")
    origin = _in_venv(no_compiler, "-c", ORIGIN)
    assert "wheelhouse" in origin and "pythran_capsules-" in origin, origin
    assert f"ok: prebuilt {level} variant" in checked and f"ok: inline kernel prebuilt {level} variant" in checked


INTEGRALS = """
import numpy as np
from scipy import integrate
import capsules
from capsules.quadpack.driver import driver
import quadfilt
f = quadfilt.KERNELS.damped.lowlevel(k=0.5, w=3.0)
ours, theirs = capsules.nquad(f, [[0, 5]], full_output=True), integrate.nquad(f, [[0, 5]], full_output=True)
np.testing.assert_array_max_ulp(ours[0], theirs[0], 4)
assert ours[2] == theirs[2], (ours, theirs)
np.testing.assert_array_max_ulp(capsules.quad(f, 0, np.inf)[0], integrate.quad(f, 0, np.inf)[0], 4)
print(driver().path)
"""


def test_installed_wheel_integrates_with_the_driver_it_ships_and_no_compiler(no_compiler):
    """capsules.nquad and quad on a prebuilt kernel, SciPy's answers, the driver taken from the wheel."""
    path = Path(_in_venv(no_compiler, "-c", INTEGRALS).strip())
    assert path.parts[-4:] == ("quadfilt", "__capsules__", "capsules_quadpack", "capsules_quadpack.so"), path
    assert "site-packages" in path.parts


@pytest.mark.skipif(not X86_64, reason="one baseline variant on this architecture")
def test_forced_baseline_cpu_loads_the_baseline_variant_with_the_same_results(no_compiler):
    best = _in_venv(no_compiler, "-c", CHECK).split()
    baseline = _in_venv(no_compiler, "-c", CHECK, CAPSULES_CPU="x86_64").split()
    assert baseline[0] == "x86_64"
    assert baseline[1:] == best[1:]  # bit for bit: no FMA contraction, no reordering


@pytest.fixture
def unpacked(example_wheel, tmp_path) -> Path:
    """The example's kernel file and prebuilt directory, unpacked from the wheel."""
    with zipfile.ZipFile(example_wheel) as wheel:
        wheel.extractall(tmp_path, [n for n in wheel.namelist() if n.startswith("quadfilt/")])
    return tmp_path / "quadfilt" / "kernels.py"


def _edit_entry(kernel: Path, change) -> None:
    path = prebuilt.directory_for(kernel) / "entry.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["inputs"].update(python="cpython-399", ext_suffix=".cpython-399-x.so"),
         f"built for cpython-399, this is {sys.implementation.cache_tag}"),
        (lambda d: d["inputs"].update(platform="win-amd64"), f"built for win-amd64, this is {sysconfig.get_platform()}"),
        (lambda d: d.update(exports_symbol="capsules_exports_v0"), "built with entry points capsules_exports_v0"),
        (lambda d: d["inputs"].update(checked=True), "built with checks, asked for checked=False"),
        (lambda d: d.update(format="something else"), "not a capsules prebuilt entry"),
    ],
)
def test_unsuitable_prebuilt_binaries_are_refused_saying_what_differs(unpacked, tmp_path, change, message):
    _edit_entry(unpacked, change)
    with pytest.raises(capsules.PrebuiltError, match="do not suit") as info:
        capsules.load(unpacked, build=False, cache=tmp_path / "cache")
    assert message in str(info.value) and str(info.value).startswith(str(unpacked))
    assert "Install the package's wheel built for this Python" in str(info.value)


@pytest.mark.skipif(np.__version__.startswith("1."), reason="needs NumPy 2 to meet a NumPy 1 build")
def test_a_numpy_1_build_is_refused_under_numpy_2(unpacked, tmp_path):
    _edit_entry(unpacked, lambda d: d.update(numpy_abi=1))
    with pytest.raises(capsules.PrebuiltError, match="built against NumPy 1.x"):
        capsules.load(unpacked, build=False, cache=tmp_path / "cache")


def test_edited_kernel_file_is_refused_without_build_and_rebuilt_with_it(unpacked, tmp_path, cache_dir):
    unpacked.write_text(unpacked.read_text() + "\n# edited\n")
    with pytest.raises(capsules.PrebuiltError, match="the kernel file changed since its binaries were built"):
        capsules.load(unpacked, build=False, cache=tmp_path / "cache")
    mod = capsules.load(unpacked, cache=cache_dir)  # allowed to build: the cache's native build
    assert mod.entry.level == "native" and prebuilt.PREBUILT_DIR not in str(mod.entry.directory)


def test_a_damaged_prebuilt_binary_is_never_imported(unpacked, tmp_path):
    level = levels.pick(LEVELS)
    (binary,) = prebuilt.directory_for(unpacked).glob(f"*.{level}.*")
    blob = bytearray(binary.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    binary.write_bytes(bytes(blob))
    with pytest.raises(capsules.PrebuiltError, match="damaged"):
        capsules.load(unpacked, build=False, cache=tmp_path / "cache")


def test_prebuilt_kernels_equal_plain_python(unpacked, tmp_path):
    mod = capsules.load(unpacked, build=False, cache=tmp_path / "cache")
    assert prebuilt.PREBUILT_DIR in str(mod.entry.directory)
    got, _ = integrate.quad(mod.damped.lowlevel(k=0.7, w=2.0), 0, 4, epsabs=1e-13, epsrel=1e-13)
    want, _ = integrate.quad(lambda x: mod.damped.py(x, 0.7, 2.0), 0, 4, epsabs=1e-13, epsrel=1e-13)
    assert got == want


def test_build_into_writes_every_level_and_never_replaces_foreign_files(tmp_path, cache_dir, capsys):
    kernel = tmp_path / "integrands.py"
    shutil.copy(ROOT / "kernels" / "integrands.py", kernel)
    into = tmp_path / "__capsules__"
    assert main(["build", str(kernel), "--into", str(into), "--cache", str(cache_dir)]) == 0
    data = json.loads((into / "integrands" / "entry.json").read_text())
    assert sorted(data["variants"]) == sorted(LEVELS)
    assert main(["build", str(kernel), "--into", str(into), "--cache", str(cache_dir)]) == 0  # replaces its own
    mine = into / "other"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    other = tmp_path / "other.py"
    shutil.copy(kernel, other)
    assert main(["build", str(other), "--into", str(into), "--cache", str(cache_dir)]) == 1
    assert "is not a capsules prebuilt directory" in capsys.readouterr().err
    assert (mine / "notes.txt").read_text() == "mine"


def test_portable_build_carries_every_level_and_pickles_them_all(cache_dir):
    mod = capsules.load(ROOT / "kernels" / "genz.py", cache=cache_dir, portable=True)
    assert sorted(mod.entry.binaries) == sorted(LEVELS)
    assert mod.entry.level == levels.pick(LEVELS)
    assert sorted(ship.pack(mod).binaries) == sorted(LEVELS)


PORTABLE_LEVEL = """
import sys, capsules
mod = capsules.load(sys.argv[1], cache=sys.argv[2], portable=True, build=False)
print(mod.entry.level, repr(mod.gaussian.py(2, [0.3, 0.6], [1.0, 2.0, 0.5, 0.5])))
"""


@pytest.mark.skipif(not X86_64, reason="one baseline variant on this architecture")
def test_forced_cpu_level_picks_that_variant_of_a_portable_cache_build(cache_dir):
    path = ROOT / "kernels" / "genz.py"
    capsules.load(path, cache=cache_dir, portable=True)
    for cap in ("x86_64", "x86_64_v3"):
        env = {**os.environ, "CAPSULES_CPU": cap}
        done = _run([sys.executable, "-c", PORTABLE_LEVEL, str(path), str(cache_dir)], env=env)
        assert done.stdout.split()[0] == cap


def test_an_unknown_cpu_level_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("CAPSULES_CPU", "pentium9")
    with pytest.raises(capsules.CapsulesError, match="CAPSULES_CPU='pentium9' is not a CPU level"):
        levels.supports("x86_64_v3")


def test_unsuitable_prebuilt_is_reported_even_where_no_cache_can_be_made(unpacked, tmp_path):
    _edit_entry(unpacked, lambda d: d["inputs"].update(platform="win-amd64"))
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(capsules.PrebuiltError, match="built for win-amd64"):
        capsules.load(unpacked, build=False, cache=blocker / "cache")


CAPPED = """
import sys, capsules
from scipy import integrate
mod = capsules.load(sys.argv[1], build=sys.argv[2] == "build")
print(mod.entry.level, integrate.quad(mod.f.lowlevel(), 0, 1)[0])
"""


@pytest.mark.skipif(not X86_64, reason="one baseline variant on this architecture")
def test_a_cpu_cap_below_every_prebuilt_level_names_the_variable_and_builds_from_source(tmp_path, cache_dir):
    kernel = tmp_path / "capped.py"
    kernel.write_text("#pythran export capsule f(int32, float64*)\ndef f(n, x):\n    return 3.0 * x[0] * x[0]\n")
    assert main(["build", str(kernel), "--into", str(tmp_path / "__capsules__"), "--cache", str(cache_dir)]) == 0
    env = {**os.environ, "CAPSULES_CPU": "i686", "CAPSULES_CACHE": str(tmp_path / "cache")}
    refused = subprocess.run([sys.executable, "-c", CAPPED, str(kernel), "no-build"], env=env, capture_output=True,
                             text=True, check=False)
    last = refused.stderr.strip().splitlines()[-1]
    assert last.startswith(f"capsules.errors.PrebuiltError: {kernel}: its prebuilt binaries in "), refused.stderr
    assert "CAPSULES_CPU=i686 allows none of the levels built (x86_64, x86_64_v3, x86_64_v4)" in last
    assert "this CPU" not in last
    built = _run([sys.executable, "-c", CAPPED, str(kernel), "build"], env=env)  # as where no prebuilt level fits
    level, value = built.stdout.split()
    assert level == levels.NATIVE and float(value) == pytest.approx(1.0) and built.stderr == ""


HOOKED = """\
[build-system]
requires = [{requires}]
build-backend = "hatchling.build"

[project]
name = "hooked"
version = "0.1"

[tool.hatch.build.targets.wheel]
packages = ["src/hooked"]

[tool.hatch.build.targets.wheel.hooks.capsules]
{settings}
"""
BROKEN_KERNEL = "#pythran export capsule f(float64)\ndef f(x):\n    return x + undefined_name\n"
HOOK_ERRORS = {
    # settings: (where, message, the line shown under it)
    "no kernel": ('kernels = []', "pyproject.toml:13", "kernels lists no kernel file: ", "kernels = []"),
    "not a list": ("kernels = 5", "pyproject.toml:13", "kernels must be a list of paths, not 5", "kernels = 5"),
    "jobs": ('kernels = ["src/hooked/ok.py"]\njobs = "two"', "pyproject.toml:14", "jobs must be a whole number",
             'jobs = "two"'),
    "missing file": ('kernels = ["src/hooked/missing.py"]', "src/hooked/missing.py", "no such file or directory", ""),
    "failed build": ('kernels = ["src/hooked/broken.py"]', "src/hooked/broken.py:3",
                     "pythran: Unbound identifier undefined_name", "return x + undefined_name"),
}


def _hooked_project(base: Path, settings: str, requires: str = '"hatchling", "pythran-capsules"') -> Path:
    package = base / "src" / "hooked"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "ok.py").write_text("#pythran export capsule f(float64)\ndef f(x):\n    return 2.0 * x\n")
    (package / "broken.py").write_text(BROKEN_KERNEL)
    (base / "pyproject.toml").write_text(HOOKED.format(requires=requires, settings=settings))
    return base


def _build_wheel(project: Path, cache: Path) -> subprocess.CompletedProcess:
    """``python -m build`` without isolation: the hook from this environment."""
    return subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--skip-dependency-check", str(project)],
        env={**os.environ, "CAPSULES_CACHE": str(cache)}, capture_output=True, text=True,
        stdin=subprocess.DEVNULL, check=False,
    )


@pytest.mark.parametrize("case", HOOK_ERRORS)
def test_each_error_of_the_build_hook_is_one_located_message(tmp_path, cache_dir, case):
    settings, where, message, shown = HOOK_ERRORS[case]
    project = _hooked_project(tmp_path / "project", settings)
    done = _build_wheel(project, cache_dir)
    assert done.returncode != 0 and not list((project / "dist").glob("*.whl"))
    assert "Traceback" not in done.stderr and "capsules/" not in done.stderr, done.stderr
    located = [line for line in done.stderr.splitlines() if line.startswith(f"{project}/{where}: ")]
    assert len(located) == 1 and message in located[0], done.stderr
    assert not shown or f"\n    {shown}\n" in done.stderr


def test_the_build_hook_warns_when_the_build_requirements_lack_it(tmp_path, cache_dir):
    project = _hooked_project(tmp_path / "project", 'kernels = ["src/hooked/ok.py"]', requires='"hatchling"')
    done = _build_wheel(project, cache_dir)
    assert done.returncode == 0, done.stderr
    assert "requires does not list 'pythran-capsules'" in done.stderr
    documented = (ROOT / "docs" / "troubleshooting.md").read_text()
    quoted = re.search(r"will fail with '(.*)'", done.stderr).group(1)
    assert quoted in documented  # hatchling's own words, which the page explains


def test_troubleshooting_quotes_hatchling_s_error_for_a_hook_it_does_not_know(tmp_path, cache_dir):
    project = _hooked_project(tmp_path / "project", 'kernels = ["src/hooked/ok.py"]')
    text = (project / "pyproject.toml").read_text()
    (project / "pyproject.toml").write_text(text.replace("hooks.capsules]", "hooks.capsulez]"))  # what lacks us sees
    done = _build_wheel(project, cache_dir)
    (line,) = [line for line in done.stderr.splitlines() if "Unknown build hook" in line]
    assert line.replace("capsulez", "capsules") in (ROOT / "docs" / "troubleshooting.md").read_text().splitlines()
