"""Shared machinery of benchmarks/run.py and benchmarks/flags.py.

Builds every implementation of the benchmark kernels (capsules, hand-written
C through ctypes, cffi API mode, Cython, numba ``@cfunc``, pure-Python
callbacks), defines the workloads W1-W5 as SciPy calls, times them with
interleaved repeats and cross-checks their results against the C reference.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import gc
import importlib
import importlib.util
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import archspec.cpu
import numpy as np
import scipy
from scipy import LowLevelCallable, integrate, ndimage

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
KERNELS = HERE / "kernels"
C_DIR = HERE / "c"
CYTHON_PYX = HERE / "cython" / "cy_kernels.pyx"
CACHE = HERE / ".cache"
CAPSULES_CACHE = CACHE / "capsules"

C_FLAGS = ("-O3", "-march=native")
RTOL = 1e-12
PLAIN_C = "C (ctypes)"
EXPERT_C = "expert C (ctypes)"
# The C builds a workload's headline ratio is taken against: the fastest of them in the same run.
C_BASELINES = (PLAIN_C, EXPERT_C, "cffi (API mode)", "Cython")

# The SciPy signature of every kernel (what each implementation is handed to SciPy as).
SIGNATURES = {
    "osc": "double (double)",
    "genz": "double (int, double *, void *)",
    "local_range": "int (double *, npy_intp, double *, void *)",
    "local_variance": "int (double *, npy_intp, double *, void *)",
    "moving_average": "int (double *, npy_intp, double *, npy_intp, void *)",
    "rotate": "int (npy_intp *, double *, int, int, void *)",
}
# kernel -> the capsules module (benchmarks/kernels/<name>.py) and numba module that hold it
CAPSULES_MODULES = {
    "osc": "quad_integrands",
    "genz": "quad_integrands",
    "local_range": "filters",
    "local_variance": "filters",
    "moving_average": "filters",
    "rotate": "transforms",
}
NUMBA_MODULES = {
    "quad_integrands": "numba_quad",
    "filters": "numba_filters",
    "transforms": "numba_transforms",
}
# kernel -> the do-nothing C callback with the same signature (the floor)
NOOPS = {
    "osc": "noop_quad",
    "genz": "noop_nquad",
    "local_range": "noop_filter",
    "local_variance": "noop_filter",
    "moving_average": "noop_filter1d",
    "rotate": "noop_transform",
}

# W2: Genz oscillatory parameters (u1, a1, a2, a3); W5: rotation angle
GENZ = (0.3, 10.0, 20.0, 30.0)
ANGLE = math.radians(30.0)

if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))


# --------------------------------------------------------------------------- building


def pair_table(names: tuple[str, str], rows: Iterable[tuple[str, list[float], list[float]]], digits: int) -> Iterator[str]:
    """A markdown table of two implementations timed in pairs: medians, minimums (ms) and the ratio of the medians."""
    a, b = names
    yield f"| workload | {a} median, ms | {b} median, ms | {a} min, ms | {b} min, ms | {a} / {b} (median) |"
    yield "|---|---|---|---|---|---|"
    for name, first, second in rows:
        ms = [statistics.median(first) * 1e3, statistics.median(second) * 1e3, min(first) * 1e3, min(second) * 1e3]
        cells = " | ".join(f"{t:.{digits}f}" for t in ms)
        yield f"| {name} | {cells} | {statistics.median(first) / statistics.median(second):.3f} |"


def _c_types() -> dict[str, tuple[Any, list[Any]]]:
    d, dp, i, ip, vp = ctypes.c_double, ctypes.POINTER(ctypes.c_double), ctypes.c_int, ctypes.c_ssize_t, ctypes.c_void_p
    ipp = ctypes.POINTER(ctypes.c_ssize_t)
    protos = {
        "osc": (d, [d]),
        "genz": (d, [i, dp, vp]),
        "local_range": (i, [dp, ip, dp, vp]),
        "local_variance": (i, [dp, ip, dp, vp]),
        "moving_average": (i, [dp, ip, dp, ip, vp]),
        "rotate": (i, [ipp, dp, i, i, vp]),
    }
    for kernel, noop in NOOPS.items():
        protos[noop] = protos[kernel]
    protos[FIXED_C_KERNEL] = protos["moving_average"]  # only in the expert build
    return protos


def expert_c_flags() -> tuple[str, ...]:
    """The expert C's flags: capsules' own, in its order, and the hints.

    A capsules build compiles with pythran's flags, then its own
    (capsules.build.NATIVE_FLAGS); both are read where they are kept, so
    they never drift.  Of pythran's, the code-generation ones (``-f...``:
    no errno from libm, hidden visibility) apply to C; ``-std=c++17`` and
    the C++ warnings do not.  -DEXPERT turns on what benchmarks/c/kernels.c
    says a C programmer would state: restrict, SciPy's range promise on W4,
    W1's padded frame and 256-bit vectors in the generic_filter kernels.
    """
    import pythran.config

    from capsules.build import NATIVE_FLAGS

    pythran_flags = [f for f in pythran.config.cfg.get("compiler", "cflags").split() if f.startswith("-f")]
    return (*pythran_flags, *NATIVE_FLAGS, "-DEXPERT")


def build_c(tmp: Path, flags: tuple[str, ...] = C_FLAGS,
            name: str = "libbench_kernels.so") -> tuple[ctypes.CDLL, float, list[str]]:
    """Compile benchmarks/c/kernels.c with gcc and ``flags`` (plain: -O3 -march=native) into ``tmp``."""
    out = tmp / name
    cmd = ["gcc", *flags, "-shared", "-fPIC", "-o", str(out), str(C_DIR / "kernels.c"), "-lm"]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    lib = ctypes.CDLL(str(out))
    for name, (restype, argtypes) in _c_types().items():
        if hasattr(lib, name):
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = restype, argtypes
    return lib, seconds, cmd


def build_cffi(tmp: Path) -> tuple[Any, float]:
    """Compile the same C source as a cffi API-mode extension; return the module."""
    import cffi

    ffi = cffi.FFI()
    ffi.cdef((C_DIR / "kernels.h").read_text())
    ffi.set_source(
        "_bench_cffi_kernels",
        '#include "kernels.c"',
        include_dirs=[str(C_DIR)],
        extra_compile_args=list(C_FLAGS),
        libraries=["m"],
    )
    start = time.perf_counter()
    with _quiet():
        binary = ffi.compile(tmpdir=str(tmp / "cffi"), verbose=False)
    seconds = time.perf_counter() - start
    return _import_path("_bench_cffi_kernels", Path(binary)), seconds


_CYTHON_BUILD = r"""
import sys, time
start = time.perf_counter()
from Cython.Build import cythonize
from setuptools import Extension
from setuptools.dist import Distribution
pyx, out, tmp, flags = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split()
ext = Extension("cy_kernels", [pyx], extra_compile_args=flags)
exts = cythonize([ext], build_dir=tmp, quiet=True)
cmd = Distribution({"ext_modules": exts}).get_command_obj("build_ext")
cmd.build_lib, cmd.build_temp = out, tmp
cmd.ensure_finalized()
cmd.run()
print("SECONDS", time.perf_counter() - start)
"""


def build_cython(tmp: Path) -> tuple[Any, float]:
    """Cythonize and compile benchmarks/cython/cy_kernels.pyx (-O3 -march=native); return the module."""
    importlib.import_module("Cython")  # ImportError when Cython is missing
    out, work = tmp / "cython", tmp / "cython-build"
    proc = subprocess.run(
        [sys.executable, "-c", _CYTHON_BUILD, str(CYTHON_PYX), str(out), str(work), " ".join(C_FLAGS)],
        capture_output=True,
        text=True,
    )
    found = re.search(r"SECONDS (\S+)", proc.stdout)
    if proc.returncode or not found:
        raise RuntimeError(f"Cython build failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    binary = next(out.glob("cy_kernels*.so"))
    return _import_path("cy_kernels", binary), float(found.group(1))


def load_numba() -> tuple[dict[str, Any], float, dict[str, float]]:
    """Import the numba kernel modules (each import compiles its cfuncs); return them and the times."""
    start = time.perf_counter()
    importlib.import_module("numba")
    import_seconds = time.perf_counter() - start
    modules, compile_seconds = {}, {}
    for group, name in NUMBA_MODULES.items():
        start = time.perf_counter()
        modules[group] = importlib.import_module(f"peers.{name}")
        compile_seconds[group] = time.perf_counter() - start
    return modules, import_seconds, compile_seconds


FIXED = "capsules, length fixed at build time"
FIXED_C = "expert C, length fixed at 9"
FIXED_C_KERNEL = "moving_average_9"  # benchmarks/c/kernels.c, built with -DEXPERT only


def fixed_width_average(cache: Path = CAPSULES_CACHE) -> Any:
    """W4's kernel built with its width as a literal (what capsules knows and hand-written C does not)."""
    import capsules

    mod = capsules.load(KERNELS / "filters.py", cache=cache, constants={"moving_average_fixed": {"width": 9}})
    return mod.moving_average_fixed.lowlevel()


def load_capsules(cache: Path = CAPSULES_CACHE, jobs: int = 2) -> tuple[dict[str, Any], list[Any]]:
    """Build (if needed) and load benchmarks/kernels/*.py with capsules' default flags."""
    import capsules

    paths = [KERNELS / f"{group}.py" for group in NUMBA_MODULES]
    results = capsules.build(paths, cache=cache, jobs=jobs)
    return {p.stem: capsules.load(p, cache=cache) for p in paths}, results


PREBUILT = "capsules, prebuilt for every CPU level"


def load_prebuilt(tmp: Path, jobs: int = 2) -> tuple[dict[str, Any], dict[str, Any]]:
    """benchmarks/kernels as a wheel ships them (every CPU level, no -march=native), loaded with build=False.

    Returns the modules and, per module, the level this CPU runs and the bytes each level adds to a wheel.
    """
    import capsules
    from capsules.prebuilt import PREBUILT_DIR, build_into

    package = tmp / "prebuilt"
    package.mkdir()
    paths = [Path(shutil.copy(KERNELS / f"{group}.py", package / f"{group}.py")) for group in NUMBA_MODULES]
    build_into(paths, package / PREBUILT_DIR, cache=CAPSULES_CACHE, jobs=jobs)
    mods = {p.stem: capsules.load(p, build=False) for p in paths}
    info = {
        name: {"level": m.entry.level, "bytes": {lv: b.stat().st_size for lv, b in m.entry.binaries.items()}}
        for name, m in mods.items()
    }
    return mods, info


def _import_path(name: str, binary: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, str(binary))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[name] = module
    return module


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence what compilers and setuptools print on file descriptors 1 and 2."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 1)
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


# --------------------------------------------------------------------------- implementations


class Provider:
    """Hands out SciPy callbacks of one implementation, keeping their user_data alive."""

    name = ""
    compiled = True

    def __init__(self) -> None:
        self._keep: list[Any] = []

    def _data(self, user_data: tuple[float, ...] | None) -> np.ndarray | None:
        if user_data is None:
            return None
        array = np.array(user_data, dtype=np.float64)
        self._keep.append(array)
        return array

    def callback(self, kernel: str, user_data: tuple[float, ...] | None = None) -> Any:
        raise NotImplementedError


class CProvider(Provider):
    name = PLAIN_C

    def __init__(self, lib: ctypes.CDLL, noop: bool = False, name: str = PLAIN_C) -> None:
        super().__init__()
        self.lib, self.noop, self.name = lib, noop, name
        if noop:
            self.name = "floor (no-op C)"

    def fixed_width(self) -> Any:
        """W4's moving average built knowing its width is 9 (the expert build only)."""
        return LowLevelCallable(getattr(self.lib, FIXED_C_KERNEL), None, SIGNATURES["moving_average"])

    def callback(self, kernel: str, user_data: tuple[float, ...] | None = None) -> Any:
        fn = getattr(self.lib, NOOPS[kernel] if self.noop else kernel)
        data = self._data(user_data)
        pointer = None if data is None else ctypes.c_void_p(data.ctypes.data)
        return LowLevelCallable(fn, pointer, SIGNATURES[kernel])


class CapsulesProvider(Provider):
    name = "capsules"

    def __init__(self, modules: dict[str, Any], name: str = "capsules") -> None:
        super().__init__()
        self.modules, self.name = modules, name

    def callback(self, kernel: str, user_data: tuple[float, ...] | None = None) -> Any:
        k = self.modules[CAPSULES_MODULES[kernel]][kernel]
        return k.lowlevel(user_data=None if user_data is None else list(user_data))


class CffiProvider(Provider):
    name = "cffi (API mode)"

    def __init__(self, module: Any) -> None:
        super().__init__()
        self.module = module

    def callback(self, kernel: str, user_data: tuple[float, ...] | None = None) -> Any:
        ffi, lib = self.module.ffi, self.module.lib
        data = self._data(user_data)
        pointer = None if data is None else ffi.cast("void *", data.ctypes.data)
        return LowLevelCallable(ffi.addressof(lib, kernel), pointer, SIGNATURES[kernel])


class CythonProvider(Provider):
    name = "Cython"

    def __init__(self, module: Any) -> None:
        super().__init__()
        self.module = module

    def callback(self, kernel: str, user_data: tuple[float, ...] | None = None) -> Any:
        data = self._data(user_data)
        pointer = None if data is None else ctypes.c_void_p(data.ctypes.data)
        return LowLevelCallable.from_cython(self.module, kernel, pointer)


class NumbaProvider(Provider):
    name = "numba @cfunc"

    def __init__(self, modules: dict[str, Any]) -> None:
        super().__init__()
        self.modules = modules

    def callback(self, kernel: str, user_data: tuple[float, ...] | None = None) -> Any:
        fn = getattr(self.modules[CAPSULES_MODULES[kernel]], kernel)
        data = self._data(user_data)
        pointer = None if data is None else ctypes.c_void_p(data.ctypes.data)
        return LowLevelCallable(fn.ctypes, pointer, SIGNATURES[kernel])


class PythonProvider(Provider):
    """Pure-Python callbacks; the workloads call them in SciPy's Python-callback form."""

    name = "pure Python"
    compiled = False


@dataclass
class Setup:
    """Every implementation that could be built, and why the others were skipped."""

    providers: list[Provider]
    floor: Provider
    notes: list[str] = field(default_factory=list)
    compile: dict[str, Any] = field(default_factory=dict)
    tmp: Path | None = None


def _build_peer(name: str, package: str, build: Callable[[], Any], notes: list[str]) -> Any:
    """Build one optional peer; a peer that is missing or fails to build is noted, not fatal."""
    short = name.split(" ")[0]
    try:
        return build()
    except ImportError as err:
        notes.append(f"{short}: skipped, not installed ({err}; pip install {package}).")
    except Exception as err:  # noqa: BLE001 - a peer that fails to build is reported, not fatal
        notes.append(f"{short}: skipped, its build failed: {type(err).__name__}: {str(err)[:300]}")
    return None


def setup(tmp: Path, *, jobs: int = 2, log: Callable[[str], None] = print) -> Setup:
    """Build all implementations into ``tmp`` (capsules into benchmarks/.cache)."""
    notes: list[str] = []
    compile_info: dict[str, Any] = {}

    lib, seconds, cmd = build_c(tmp)
    compile_info[PLAIN_C] = {"seconds": seconds, "what": " ".join(cmd[:-4]) + " kernels.c (all kernels)"}
    c, floor = CProvider(lib), CProvider(lib, noop=True)
    expert_lib, seconds, cmd = build_c(tmp, expert_c_flags(), "libbench_kernels_expert.so")
    compile_info[EXPERT_C] = {"seconds": seconds, "what": " ".join(cmd[:-4]) + " kernels.c (all kernels)"}
    log(f"built plain and expert C kernels ({seconds:.2f} s)")

    start = time.perf_counter()
    mods, results = load_capsules(jobs=jobs)
    log(f"capsules kernels ready ({time.perf_counter() - start:.2f} s; "
        f"{sum(r.built for r in results)} of {len(results)} module(s) compiled now)")
    providers: list[Provider] = [c, CProvider(expert_lib, name=EXPERT_C), CapsulesProvider(mods)]
    prebuilt, compile_info[PREBUILT] = load_prebuilt(tmp, jobs)
    providers.append(CapsulesProvider(prebuilt, PREBUILT))
    log(f"capsules prebuilt kernels ready (levels: {sorted({m['level'] for m in compile_info[PREBUILT].values()})})")

    for name, build, provider, what, package in (
        ("cffi (API mode)", build_cffi, CffiProvider, "ffi.compile() of kernels.c (all kernels)", "cffi"),
        ("Cython", build_cython, CythonProvider, "cythonize + build_ext of cy_kernels.pyx (all kernels)", "cython"),
    ):
        peer = _build_peer(name, package, lambda build=build: build(tmp), notes)
        if peer is not None:
            module, seconds = peer
            providers.append(provider(module))
            compile_info[name] = {"seconds": seconds, "what": what}
            log(f"built {name} ({seconds:.2f} s)")

    try:
        modules, import_seconds, per_module = load_numba()
        providers.append(NumbaProvider(modules))
        compile_info["numba @cfunc"] = {
            "seconds": sum(per_module.values()),
            "import_numba_seconds": import_seconds,
            "per_module": per_module,
            "what": "import of the @cfunc modules (compiles each cfunc; 'import numba' not included)",
        }
        log(f"compiled numba cfuncs ({sum(per_module.values()):.2f} s, after {import_seconds:.2f} s import numba)")
    except ImportError as err:
        notes.append(f"numba: skipped, not installed ({err}; pip install numba).")
    except Exception as err:  # noqa: BLE001 - a peer that fails to build is reported, not fatal
        notes.append(f"numba: skipped, its build failed: {type(err).__name__}: {str(err)[:300]}")

    providers.append(PythonProvider())
    return Setup(providers, floor, notes, compile_info, tmp)


# --------------------------------------------------------------------------- workloads


@dataclass
class Case:
    """One implementation of one workload: ``run()`` does one timing sample."""

    impl: str
    run: Callable[[], Any]
    calls: int = 1  # SciPy calls per sample
    scale: float = 1.0  # factor from the measured input size to the workload's size
    reference: Any = None  # the C result on the same input, for the cross-check
    note: str = ""
    check: bool = True


@dataclass
class Workload:
    key: str
    title: str
    cases: list[Case]
    floor_note: str = ""
    reference: str = "C (ctypes)"  # the case whose result the others are checked against


@dataclass
class Sizes:
    quad_calls: int = 100
    nquad_calls: int = 2
    filter_n: int = 1000
    filter_py_n: int = 200
    filter1d_n: int = 2000
    filter1d_py_n: int = 2000
    rotate_n: int = 1000
    rotate_py_n: int = 250
    repeats: int = 21

    @classmethod
    def quick(cls) -> Sizes:
        return cls(quad_calls=10, nquad_calls=1, filter_n=250, filter_py_n=60, filter1d_n=500, filter1d_py_n=500,
                   rotate_n=250, rotate_py_n=80, repeats=3)


def image(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random((n, n))


def rotation_data(n: int) -> tuple[float, ...]:
    centre = (n - 1) / 2.0
    return (math.cos(ANGLE), math.sin(ANGLE), centre, centre)


def make_workloads(st: Setup, sizes: Sizes, only: set[str] | None = None, python: bool = True) -> list[Workload]:
    """The workloads W1-W5 (W3 as two kernels), each with a case per implementation and the floor.

    ``only`` picks workloads by key ("W3" means W3a and W3b); ``python=False``
    leaves the pure-Python callbacks out.  The first provider is the reference
    (the hand-written C).
    """
    from peers import python_callbacks as py

    compiled = [p for p in (*st.providers, st.floor) if p.compiled]
    python = python and any(not p.compiled for p in st.providers)
    ref = st.providers[0]  # hand-written C
    out: list[Workload] = []

    def want(key: str) -> bool:
        return only is None or key in only or key.rstrip("ab") in only

    if want("W1"):
        n = sizes.quad_calls
        cases = [Case(p.name, functools.partial(_repeat_quad, p.callback("osc"), n), calls=n) for p in compiled]
        if python:
            cases.append(Case("pure Python", functools.partial(_repeat_quad, py.osc, n), calls=n))
        out.append(Workload(
            "W1", f"quad of exp(-x^2) sin^2(50x) on [-10, 10], limit=1000 ({n} calls per sample)", cases,
            "returns 0.0: quad stops after one 21-point rule, so this is quad's per-call overhead only"))

    if want("W2"):
        n = sizes.nquad_calls
        cases = [Case(p.name, functools.partial(_repeat_nquad, p.callback("genz", GENZ), n, ()), calls=n)
                 for p in compiled]
        if python:
            cases.append(Case("pure Python", functools.partial(_repeat_nquad, py.genz, n, GENZ), calls=n))
        out.append(Workload(
            "W2", f"nquad of the 3-D Genz oscillatory integrand cos(2 pi u1 + a.x) on [0,1]^3, (u1, a) = {GENZ} "
                  f"as user_data ({n} call(s) per sample)", cases,
            "returns 0.0: 21^3 points and no subdivision, so this is nquad's nesting overhead only"))

    for key, kernel, label, pyfun in (("W3a", "local_range", "local range", py.local_range),
                                      ("W3b", "local_variance", "local variance", py.local_variance)):
        if not want(key):
            continue
        n, m = sizes.filter_n, sizes.filter_py_n
        img, small = image(n, 1), image(m, 1)
        cases = [Case(p.name, functools.partial(ndimage.generic_filter, img, p.callback(kernel), size=5))
                 for p in compiled]
        if python:
            cases.append(Case(
                "pure Python", functools.partial(ndimage.generic_filter, small, pyfun, size=5), scale=(n / m) ** 2,
                reference=ndimage.generic_filter(small, ref.callback(kernel), size=5), note=_scaled_note(m, n)))
        out.append(Workload(key, f"generic_filter, {n}x{n} float64, size=5: {label}", cases,
                            "writes 0.0: SciPy's buffer filling and per-pixel call overhead"))

    if want("W4"):
        n, m = sizes.filter1d_n, sizes.filter1d_py_n
        img = image(n, 2)
        cases = [Case(p.name, functools.partial(ndimage.generic_filter1d, img, p.callback("moving_average"), 9))
                 for p in compiled]
        if any(isinstance(p, CapsulesProvider) for p in compiled):
            cases.append(Case(FIXED, functools.partial(ndimage.generic_filter1d, img, fixed_width_average(), 9),
                              note="natural kernel, width fixed at build time: constants={...: {'width': 9}}"))
        expert = next((p for p in compiled if p.name == EXPERT_C), None)
        if expert is not None:
            cases.append(Case(FIXED_C, functools.partial(ndimage.generic_filter1d, img, expert.fixed_width(), 9),
                              note="the counterpart of the row above: the width stated as a promise"))
        if python:
            note = "numpy on each line, one Python call per line"
            if m == n:
                cases.append(Case("pure Python", functools.partial(ndimage.generic_filter1d, img, py.moving_average,
                                                                   9), note=note))
            else:
                small = image(m, 2)
                cases.append(Case(
                    "pure Python", functools.partial(ndimage.generic_filter1d, small, py.moving_average, 9),
                    scale=(n / m) ** 2, reference=ndimage.generic_filter1d(small, ref.callback("moving_average"), 9),
                    note=f"{note}; {_scaled_note(m, n)}"))
        out.append(Workload("W4", f"generic_filter1d, {n}x{n} float64, moving average of length 9", cases,
                            "returns at once: SciPy's line buffering and per-line call overhead"))

    if want("W5"):
        n, m = sizes.rotate_n, sizes.rotate_py_n
        img, small = image(n, 3), image(m, 3)
        cases = [Case(p.name, functools.partial(ndimage.geometric_transform, img,
                                                p.callback("rotate", rotation_data(n)), order=1))
                 for p in compiled]
        if python:
            cases.append(Case(
                "pure Python",
                functools.partial(ndimage.geometric_transform, small, py.make_rotate(*rotation_data(m)), order=1),
                scale=(n / m) ** 2,
                reference=ndimage.geometric_transform(small, ref.callback("rotate", rotation_data(m)), order=1),
                note=_scaled_note(m, n)))
        out.append(Workload(
            "W5", f"geometric_transform, {n}x{n} float64, rotation by 30 degrees about the centre, order=1", cases,
            "identity mapping: interpolates every pixel, while the rotation maps the corners outside the image, "
            "so it can cost more than the real kernel"))

    for w in out:
        w.reference = ref.name
        for case in w.cases:
            case.check = not case.impl.startswith("floor")
    return out


def _repeat_quad(f: Any, n: int) -> float:
    for _ in range(n):
        value = integrate.quad(f, -10.0, 10.0, limit=1000)[0]
    return value


def _repeat_nquad(f: Any, n: int, args: tuple) -> float:
    for _ in range(n):
        value = integrate.nquad(f, [[0.0, 1.0]] * 3, args=args)[0]
    return value


def _scaled_note(small: int, big: int) -> str:
    return f"timed on {small}x{small}, scaled x{(big / small) ** 2:g} to {big}x{big}"


# --------------------------------------------------------------------------- timing and checking


@dataclass
class Result:
    impl: str
    samples: list[float]  # seconds per SciPy call, at the workload's full size
    value: Any
    deviation: float | None
    note: str = ""
    comparable: bool = True  # a checked result on the workload's own input (not the floor, not scaled)

    @property
    def minimum(self) -> float:
        return min(self.samples)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)


def relative_deviation(value: Any, reference: Any) -> float:
    """max |value - reference| / max |reference|."""
    a, b = np.asarray(value, dtype=float), np.asarray(reference, dtype=float)
    if a.shape != b.shape:
        return math.inf
    scale = float(np.max(np.abs(b))) if b.size else 0.0
    diff = float(np.max(np.abs(a - b))) if b.size else 0.0
    if not math.isfinite(diff):
        return math.inf
    return diff / scale if scale else diff


def measure(workload: Workload, repeats: int, rng: np.random.Generator | None = None) -> list[Result]:
    """Interleaved repeats: every case once per round, after one warm-up call each.

    Without ``rng`` each round runs the cases in their listed order (A B C
    A B C ...); with it, each round in an order of its own drawn from
    ``rng``, so that no case always follows the same neighbour (the one
    that empties the caches, say).  Sample k of every case comes from
    round k, which the paired bootstrap (benchmarks/stats.py) relies on.
    """
    values = [case.run() for case in workload.cases]  # warm-up, and the results to check
    samples: list[list[float]] = [[] for _ in workload.cases]
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeats):
            order = range(len(workload.cases)) if rng is None else rng.permutation(len(workload.cases))
            for i in order:
                case = workload.cases[i]
                start = time.perf_counter()
                case.run()
                samples[i].append((time.perf_counter() - start) / case.calls * case.scale)
    finally:
        if was_enabled:
            gc.enable()
    reference = next(v for c, v in zip(workload.cases, values, strict=True) if c.impl == workload.reference)
    results = []
    for case, value, times in zip(workload.cases, values, samples, strict=True):
        dev = None
        if case.check:
            dev = relative_deviation(value, case.reference if case.reference is not None else reference)
        results.append(Result(case.impl, times, value, dev, case.note, case.check and case.reference is None))
    return results


# --------------------------------------------------------------------------- machine description


def _run(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout
    except OSError:
        return ""


def _version(distribution: str) -> str:
    """An installed distribution's version, without importing it (numba alone takes 0.5 s)."""
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def compiler_env_notes() -> list[str]:
    """Note compiler variables that change capsules' builds (they are in its cache key) but not the C reference."""
    return [
        f"{name}={os.environ[name]!r} is set: it reaches capsules' compile command (and its cache key), "
        "not the hand-written C's gcc command."
        for name in ("CXXFLAGS", "LDFLAGS", "CXX", "CPPFLAGS")
        if os.environ.get(name)
    ]


def machine() -> dict[str, Any]:
    lscpu = _run(["lscpu"])
    fields = {}
    for line in lscpu.splitlines():
        name, _, value = line.partition(":")
        fields[name.strip()] = value.strip()
    gcc = _run(["gcc", "--version"]).splitlines()
    return {
        "cpu": fields.get("Model name", platform.processor() or "unknown"),
        # a cloud's "AMD EPYC" may be any generation: say which, and its widest vectors
        "microarchitecture": archspec.cpu.host().name,
        "avx512": "avx512f" in fields.get("Flags", "").split(),
        # family and model name the generation where the model name and archspec cannot (AMD 25/17: Zen 4)
        "cpu_family_model": f"{fields.get('CPU family', '?')}/{fields.get('Model', '?')}",
        "cpus": fields.get("CPU(s)", str(os.cpu_count())),
        "cpu_flags": fields.get("Flags", "").split(),
        "threads_per_core": fields.get("Thread(s) per core", "?"),
        "hypervisor": fields.get("Hypervisor vendor", ""),
        "os": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "pythran": _version("pythran"),
        "capsules": _version("pythran-capsules"),
        "gcc": gcc[0] if gcc else "not found",
        "cffi": _version("cffi"),
        "cython": _version("Cython"),
        "numba": _version("numba"),
        "loadavg_at_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def git_state() -> dict[str, Any]:
    """The commit the benchmarks ran at, and whether the work tree differed from it."""
    commit = _run(["git", "-C", str(REPO), "rev-parse", "HEAD"]).strip()
    changed = _run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"]).strip()
    return {"commit": commit or "unknown", "dirty": bool(changed)}


def machine_markdown(m: dict[str, Any]) -> list[str]:
    return [
        f"- CPU: {m['cpu']} ({m.get('microarchitecture', '?')}, "
        f"{'with' if m.get('avx512') else 'no'} AVX-512), {m['cpus']} CPU(s), {m['threads_per_core']} thread(s) per core"
        + (f", virtual machine ({m['hypervisor']})" if m["hypervisor"] else ""),
        f"- OS: {m['os']}",
        f"- Python {m['python']}, numpy {m['numpy']}, scipy {m['scipy']}, pythran {m['pythran']}, "
        f"capsules {m['capsules']}",
        f"- {m['gcc']}",
        f"- peers: cffi {m['cffi']}, Cython {m['cython']}, numba {m['numba']}",
        f"- load average (1, 5, 15 min) at the start: {m['loadavg_at_start']}"
        + (f"; at the end: {m['loadavg_at_end']}" if m.get("loadavg_at_end") else "")
        + " (this benchmark itself adds about 1)",
    ]


def report(text: str, markdown: str | None) -> None:
    """Print a benchmark's report, and write it to the ``--markdown`` file if one was given."""
    print(text)
    if markdown:
        Path(markdown).write_text(text if text.endswith("\n") else text + "\n")


def fmt_time(seconds: float) -> str:
    """Milliseconds with three significant digits."""
    ms = seconds * 1e3
    if ms >= 100:
        return f"{ms:.0f}"
    if ms >= 10:
        return f"{ms:.1f}"
    if ms >= 1:
        return f"{ms:.2f}"
    return f"{ms:.3f}"


def fmt_dev(dev: float | None) -> str:
    if dev is None:
        return "-"
    if dev == 0:
        return "0"
    return f"{dev:.1e}"


def write_json(path: str | Path, data: Any) -> None:
    Path(path).write_text(json.dumps(data, indent=1, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return None  # result arrays are not stored
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return str(value)


def tempdir(prefix: str) -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix=prefix)
