"""Stage 5 for integrals: build and load the compiled nquad driver.

The driver (``driver.cpp``, with the QUADPACK port in ``quadpack.hpp``, both
shipped as package data) is one small shared library that takes the
integrand as a function pointer, so it is compiled once per machine and
Python, not once per kernel.  It goes through the kernel cache: a key over
its sources, the compiler, the flags and the Python ABI; the build lock;
a private staging directory; an atomic publish; and the cache's trust
checks before it is loaded.  It is called through ctypes: ``ctypes.CDLL``
releases the GIL for the whole integral.

Where no compiler is at hand, a package's wheel can carry the driver: the
build hook (``capsules.hatch``) compiles it for any CPU of the wheel's
architecture into ``__capsules__/capsules_quadpack/`` beside the package's
prebuilt kernels (:func:`build_into`), and a process that has loaded those
kernels finds it there (:func:`capsules.prebuilt.folders`) before it would
compile one.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import platform
import shlex
import subprocess
import sys
import sysconfig
import threading
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .._version import __version__
from .. import levels, prebuilt
from ..cache import ENTRY_FILE, Cache, Entry, read_only_lookup, verified, write_file
from ..errors import BuildError, CacheError, CapsulesError
from ..failures import summarize
from ..key import cpu_id, toolchain

SOURCES = ("quadpack.hpp", "driver.cpp")
BINARY = "capsules_quadpack.so"
# What decides the results: no fused multiply-add (-ffp-contract=off), so
# that the port computes what QUADPACK's Fortran computes, operation for
# operation, as SciPy's baseline x86-64 build does; -O3 and the host's
# instruction set otherwise, as kernels are built.
FLAGS = ("-O3", "-march=native", "-ffp-contract=off", "-g0", "-std=c++17", "-fPIC", "-shared", "-DNDEBUG")
# In a wheel: for any CPU of the architecture (the driver's own work is
# scalar bookkeeping; the integrand, compiled elsewhere, is what gains from
# a CPU level), so one binary and no level to pick.
PORTABLE_FLAGS = tuple(f for f in FLAGS if f != "-march=native") + ("-mtune=generic",)
PREBUILT = "capsules_quadpack"  # the driver's folder in a package's __capsules__
WHAT = "capsules.quadpack driver"


class Bound(ctypes.Structure):
    """``capsules_nquad_bound``: one end of a range, a constant or a compiled function."""

    _fields_ = [
        ("value", ctypes.c_double),
        ("function", ctypes.c_void_p),
        ("user_data", ctypes.c_void_p),
        ("form", ctypes.c_int32),
        ("nidx", ctypes.c_int32),
        ("idx", ctypes.POINTER(ctypes.c_int32)),
    ]


class Level(ctypes.Structure):
    """``capsules_nquad_level``: one variable's range and tolerances."""

    _fields_ = [
        ("lo", Bound),
        ("hi", Bound),
        ("epsabs", ctypes.c_double),
        ("epsrel", ctypes.c_double),
        ("limit", ctypes.c_int32),
    ]


class Problem(ctypes.Structure):
    """``capsules_nquad_problem``: one integral's inputs and, once run, its outcome."""

    _fields_ = [
        ("ndim", ctypes.c_int32),
        ("nargs", ctypes.c_int32),
        ("form", ctypes.c_int32),
        ("main_thread", ctypes.c_int32),
        ("empty_is_zero", ctypes.c_int32),
        ("function", ctypes.c_void_p),
        ("user_data", ctypes.c_void_p),
        ("levels", ctypes.POINTER(Level)),
        ("args", ctypes.POINTER(ctypes.c_double)),
        ("messages", ctypes.POINTER(ctypes.c_char_p)),
        ("value", ctypes.c_double),
        ("abserr", ctypes.c_double),
        ("neval", ctypes.c_int64),
        ("status", ctypes.c_int32),
        ("norder", ctypes.c_int32),
        ("ier_counts", ctypes.POINTER(ctypes.c_int64)),
        ("order", ctypes.POINTER(ctypes.c_int32)),
        ("error_type", ctypes.c_void_p),
        ("error_value", ctypes.c_void_p),
        ("error_traceback", ctypes.c_void_p),
    ]


@dataclass(frozen=True)
class Driver:
    """The loaded driver: ``run`` releases the GIL, ``restore`` raises what ``run`` held; ``inner`` is the capsule."""

    path: Path
    run: ctypes._CFuncPtr
    restore: ctypes._CFuncPtr
    inner: ctypes._CFuncPtr


_loaded: list[Driver] = []
_loading = threading.Lock()


def driver(cache: Cache | str | Path | None = None) -> Driver:
    """The driver, compiled on first use into ``cache`` (the kernel cache by default) and loaded once per process.

    The first call decides the cache: once loaded, the same binary serves
    every later call, whichever cache they name.

    Raises
    ------
    BuildError
        The C++ compiler failed (its messages are in the error).
    CacheError
        The cache is unusable or unsafe.
    """
    with _loading:
        if not _loaded:
            _loaded.append(load(_find_or_build(cache).binary))
        return _loaded[0]


def _find_or_build(cache: Cache | str | Path | None) -> Entry:
    """This machine's driver from a cache, else one a loaded package ships, else one compiled now into ``cache``."""
    digest, inputs = key()
    try:
        usable, unusable = cache if isinstance(cache, Cache) else Cache(cache), None
    except CacheError as err:
        usable, unusable = None, err  # a shipped driver may still serve
    found = (usable and usable.lookup(digest)) or read_only_lookup(digest) or shipped()
    if found is not None:
        return found
    if usable is None:
        raise unusable  # nowhere to build: say why the cache is unusable
    return _entry(usable, digest, inputs)


def sources() -> dict[str, bytes]:
    """The driver's C++ sources, read from the installed package."""
    folder = resources.files(__package__)
    return {name: (folder / name).read_bytes() for name in SOURCES}


def _source_digests() -> dict[str, str]:
    return {name: hashlib.sha256(data).hexdigest() for name, data in sources().items()}


def compile_command(portable: bool = False) -> tuple[list[str], tuple[str, ...]]:
    """The C++ compiler (``$CXX``, else Python's) and the flags the driver is built with (for a wheel: ``portable``)."""
    compiler = shlex.split(os.environ.get("CXX") or sysconfig.get_config_var("CXX") or "c++")
    extra = tuple(os.environ.get("CAPSULES_CXXFLAGS", "").split())
    return compiler, (PORTABLE_FLAGS if portable else FLAGS) + extra


def key() -> tuple[str, dict]:
    """The cache key of the driver on this machine and Python: sha256 over everything that changes the binary."""
    compiler, flags = compile_command()
    inputs = {
        "what": WHAT,
        "capsules": __version__,
        "sources": _source_digests(),
        "compiler": compiler,
        "toolchain": toolchain(),
        "flags": list(flags),
        "python": sys.implementation.cache_tag,
        "abiflags": getattr(sys, "abiflags", ""),
        "platform": sysconfig.get_platform(),
        "machine": platform.machine(),
        "cpu": cpu_id(),
    }
    blob = json.dumps(inputs, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest(), inputs


def _entry(cache: Cache, digest: str, inputs: dict) -> Entry:
    """Compile the driver into ``cache`` under the build lock, unless another process just did."""
    with cache.lock(digest):
        found = cache.lookup(digest)
        if found is not None:
            return found
        with cache.staging() as staged:
            compile_into(staged)
            data = {"module_name": "capsules_quadpack", "exports": [], "inputs": inputs, "returns": {},
                    "variants": {"native": {"binary": BINARY}}}
            return cache.publish(staged, digest, data)


def build_into(into: str | Path) -> Path:
    """Compile the driver for any CPU of this architecture into ``into/capsules_quadpack/``, as a wheel ships it.

    ``into`` is a package's ``__capsules__`` folder; what was there under
    that name before is replaced only if it is a driver capsules wrote.

    Raises
    ------
    BuildError
        The compiler cannot run or fails.
    CapsulesError
        The target exists and is not a prebuilt driver.
    """
    target = Path(into) / PREBUILT
    if target.exists() and _shipped_data(target) is None:
        raise CapsulesError(f"{target} exists and is not a prebuilt capsules.quadpack driver; not replacing it")
    with prebuilt.replacing(target) as staged:
        compile_into(staged, portable=True)
        _write_shipped_entry(staged)
    return target


def _shipped_inputs() -> dict:
    """What a shipped driver must match here: these sources (the ctypes layout above), this Python and platform."""
    return {
        "what": WHAT,
        "sources": _source_digests(),
        "python": sys.implementation.cache_tag,
        "abiflags": getattr(sys, "abiflags", ""),
        "platform": sysconfig.get_platform(),
    }


def _write_shipped_entry(folder: Path) -> None:
    inputs = _shipped_inputs()
    digest = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()
    binary = hashlib.sha256((folder / BINARY).read_bytes()).hexdigest()
    data = {"format": prebuilt.MARK, "key": digest, "module_name": "capsules_quadpack", "exports": [],
            "inputs": inputs, "returns": {}, "variants": {levels.BASELINE: {"binary": BINARY, "sha256": binary}}}
    for name in (*SOURCES, "build.log"):
        (folder / name).unlink()  # the wheel needs the binary; the sources are in capsules itself
    (folder / ENTRY_FILE).write_text(json.dumps(data, indent=1, sort_keys=True))


def _shipped_data(folder: Path) -> dict | None:
    try:
        data = json.loads((folder / ENTRY_FILE).read_text())
    except (OSError, ValueError):
        return None
    ok = isinstance(data, dict) and data.get("format") == prebuilt.MARK and isinstance(data.get("inputs"), dict)
    return data if ok and data["inputs"].get("what") == WHAT else None


def shipped() -> Entry | None:
    """The driver a loaded package's wheel ships for this Python and these sources, checked; None if none suits."""
    here = _shipped_inputs()
    for folder in prebuilt.folders():
        data = _shipped_data(folder / PREBUILT)
        if data is None or data["inputs"] != here:
            continue
        try:
            return verified(folder / PREBUILT, data, installed=True)
        except (OSError, ValueError, CapsulesError):
            continue  # damaged or unsafe: as if absent, and the next one (or the compiler) serves
    return None


def compile_into(folder: Path, portable: bool = False, extra: tuple[str, ...] = ()) -> None:
    """Write the driver's sources into ``folder`` and compile them there (its build.log records how).

    ``extra``: flags after the driver's own (benchmarks/nquad.py compiles an
    integrand into the driver with them).

    Raises
    ------
    BuildError
        The compiler cannot run or fails.
    """
    for name, data in sources().items():
        write_file(folder / name, data)
    compiler, flags = compile_command(portable)
    include = sysconfig.get_paths()["include"]
    command = [*compiler, *flags, *extra, f"-I{include}", str(folder / "driver.cpp"), "-o", str(folder / BINARY)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, cwd=folder)
    except OSError as err:
        raise BuildError(
            f"cannot run the C++ compiler '{compiler[0]}': {err.strerror}. capsules.nquad compiles its QUADPACK "
            "driver once per machine, unless a package whose prebuilt kernels are loaded ships it: set CXX to a "
            "C++ compiler, or use scipy.integrate.nquad"
        ) from None
    (folder / "build.log").write_text(shlex.join(command) + "\n" + done.stdout + done.stderr)
    if done.returncode != 0:
        raise BuildError(
            f"the C++ compiler failed on capsules' QUADPACK driver (exit {done.returncode})",
            summary=summarize(done.stdout + done.stderr),
        )


def load(binary: Path) -> Driver:
    """The driver compiled into ``binary``, loaded (no checks: :func:`driver` checks what it finds before it loads it)."""
    library = ctypes.CDLL(str(binary))
    holding = ctypes.PyDLL(str(binary))  # keeps the GIL, and raises what is pending when the call returns
    run = library.capsules_nquad
    run.argtypes, run.restype = [ctypes.POINTER(Problem)], ctypes.c_int32
    restore = holding.capsules_nquad_restore
    restore.argtypes, restore.restype = [ctypes.POINTER(Problem)], ctypes.c_int32
    inner = library.capsules_nquad_inner
    inner.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_double), ctypes.c_void_p]
    inner.restype = ctypes.c_double
    return Driver(binary, run, restore, inner)
