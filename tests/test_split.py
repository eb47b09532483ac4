"""A build across cores: split into parts, each compiling some kernels, linked into one binary that computes
exactly what the whole module's binary computes; or compiled whole, the compile begun while pythran generates."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from pathlib import Path

import numpy as np
import pytest
from scipy import integrate, ndimage

import capsules
from capsules import workers
from capsules.child.cxx import _in_parts, _part_specs
from capsules.generate import entries

MODULE = """
from math import exp, sin, sqrt


#pythran export capsule bump(float64, float64*)
def bump(x, data):
    return exp(-data[0] * x * x) * sin(3.0 * x) ** 2


#pythran export capsule spread(float64*, int64, float64*, float64*)
def spread(buffer, filter_size, return_value, user_data):
    s = 0.0
    for i in range(filter_size):
        s += buffer[i] * buffer[i]
    return_value[0] = sqrt(s / filter_size)
    return 1


#pythran export capsule drift(int64*, float64*, int32, int32, float64*)
def drift(output_coordinates, input_coordinates, output_rank, input_rank, user_data):
    for i in range(input_rank):
        input_coordinates[i] = output_coordinates[i] - user_data[i]
    return 1
"""
CXX_ERROR = """
#pythran export capsule fine(float64, float64*)
def fine(x, data):
    return x * data[0]


#pythran export capsule broken(int32, float64*, float64*)
def broken(n, x, cp):
    return cp[0] + [1.0]
"""


def _build(path: Path, cache: Path, cores: int, monkeypatch: pytest.MonkeyPatch) -> capsules.KernelModule:
    monkeypatch.setenv("CAPSULES_CORES", str(cores))
    capsules.build([path], cache=cache, force=True)
    monkeypatch.delenv("CAPSULES_CORES")
    return capsules.load(path, cache=cache, build=False)


def _compiles(module: capsules.KernelModule) -> list[str]:
    log = (module.entry.binary.parent / "build.log").read_text()
    return [line for line in log.splitlines() if line.startswith(("g++", "c++", "clang", os.environ.get("CXX", "c++")))]


def _results(module: capsules.KernelModule) -> list[np.ndarray]:
    image = np.random.default_rng(5).standard_normal((23, 19))
    value, _ = integrate.quad(module.bump.lowlevel([0.5]), -4.0, 4.0)
    filtered = ndimage.generic_filter(image, module.spread.lowlevel(), size=(3, 4))
    moved = ndimage.geometric_transform(image, module.drift.lowlevel([1.5, -2.25]), order=1)
    return [np.array(value), filtered, moved]


def _python(module: capsules.KernelModule) -> list[np.ndarray]:
    """The same SciPy calls with each kernel as plain Python."""
    image = np.random.default_rng(5).standard_normal((23, 19))
    value, _ = integrate.quad(lambda x: module.bump.py(x, np.array([0.5])), -4.0, 4.0)

    def spread(window: np.ndarray) -> float:
        out = np.empty(1)
        module.spread.py(window, len(window), out, None)
        return out[0]

    def drift(coordinates: tuple[int, ...]) -> tuple[float, ...]:
        given, out = np.array(coordinates, dtype=np.int64), np.empty(2)
        module.drift.py(given, out, 2, 2, np.array([1.5, -2.25]))
        return tuple(out)

    return [np.array(value), ndimage.generic_filter(image, spread, size=(3, 4)),
            ndimage.geometric_transform(image, drift, order=1)]


@pytest.mark.compile
def test_split_build_computes_what_the_whole_build_and_python_compute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # two files (a process loads a module's binary once) and two caches (copies of a source share an entry)
    (tmp_path / "split.py").write_text(MODULE)
    (tmp_path / "whole.py").write_text(MODULE)
    split = _build(tmp_path / "split.py", tmp_path / "split", 2, monkeypatch)
    whole = _build(tmp_path / "whole.py", tmp_path / "whole", 1, monkeypatch)
    compiles = _compiles(split)
    assert sum("-DCAPSULES_PART=0" in c for c in compiles) == 1
    assert sum("-DCAPSULES_PART=1" in c for c in compiles) == 1
    assert any(".part0.o" in c and ".part1.o" in c and " -c " not in c for c in compiles), "the parts are linked"
    assert not any("CAPSULES_PART" in c for c in _compiles(whole))
    assert not list(split.entry.binary.parent.glob("*.o")), "the parts' objects are not kept"
    # generated in parts: each part's C++ has its own kernels and none of the other part's
    sections = _sections(split)
    functions = json.loads((split.entry.directory / "request.json").read_text())["parts"]["functions"]
    assert sorted(set(functions.values())) == [0, 1] and len(sections) == 2
    for function, part in functions.items():
        assert [f"struct {function}\n" in section for section in sections] == [k == part for k in range(2)]
    for got, same, reference in zip(_results(split), _results(whole), _python(split)):
        np.testing.assert_array_equal(got, same)
        np.testing.assert_array_equal(got, reference)


def _sections(module: capsules.KernelModule) -> list[str]:
    """The C++ pythran generated for each part of a split build (none when it was generated whole)."""
    cpp = (module.entry.directory / f"{module.entry.module_name}.cpp").read_text()
    return re.split(r"^#elif CAPSULES_PART == \d+\n", cpp.split("\n#endif  // CAPSULES_PROLOGUE\n", 1)[1], flags=re.M)[1:]


RANDOM = """
import random


#pythran export capsule noisy(float64, float64*)
def noisy(x, data):
    return x + data[0] * random.random()


#pythran export capsule plain(float64, float64*)
def plain(x, data):
    return x * data[0]
"""


@pytest.mark.compile
def test_kernels_drawing_random_numbers_are_generated_and_compiled_whole(
    write_kernel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = _build(write_kernel(RANDOM), tmp_path / "cache", 2, monkeypatch)
    assert not _sections(module)
    assert not any("CAPSULES_PART" in c for c in _compiles(module))
    value, _ = integrate.quad(module.noisy.lowlevel([0.0]), 0.0, 2.0)
    assert value == 2.0  # x + 0 * random(): the generator ran, its draw was multiplied by 0
    assert integrate.quad(module.plain.lowlevel([3.0]), 0.0, 2.0)[0] == pytest.approx(6.0, rel=1e-14)


UNBOUND = """
#pythran export capsule fine(float64, float64*)
def fine(x, data):
    return x * data[0]


#pythran export capsule unbound(float64, float64*)
def unbound(x, data):
    return x + nowhere(data[0])
"""


@pytest.mark.compile
@pytest.mark.parametrize("cores", [1, 2])
def test_an_error_pythran_finds_in_one_part_is_reported_as_for_the_whole_module(
    write_kernel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cores: int
) -> None:
    path = write_kernel(UNBOUND)
    monkeypatch.setenv("CAPSULES_CORES", str(cores))
    with pytest.raises(capsules.BuildError) as info:
        capsules.build([path], cache=tmp_path / "cache")
    assert str(info.value).splitlines()[0] == f"{path}:8: pythran: Unbound identifier nowhere"


@pytest.mark.compile
def test_a_kernel_that_fails_in_its_part_is_located(write_kernel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_kernel(CXX_ERROR)
    monkeypatch.setenv("CAPSULES_CORES", "2")
    with pytest.raises(capsules.BuildError) as info:
        capsules.build([path], cache=tmp_path / "cache")
    assert str(info.value).startswith(f"{path}:7: C++ compilation of 'broken' failed\n")


def test_partition_puts_the_heaviest_kernel_on_the_lightest_part() -> None:
    assert entries.partition([10, 1, 1, 8], 2) == [0, 1, 1, 1]
    assert entries.partition([3, 3, 3], 5) == [0, 1, 2]  # never more parts than kernels
    assert entries.partition([4, 4, 4, 4], 2) == [0, 1, 0, 1]
    assert entries.partition([7], 3) == [0]


def test_generated_entries_name_their_part_only_when_split() -> None:
    whole = entries.source([], "k.py")
    assert "#if !defined(CAPSULES_PART)" not in whole
    split = entries.source([], "k.py", parts=[])
    assert "#if !defined(CAPSULES_PART) || CAPSULES_PART == 0\n" in split  # the exports function: part 0


PYTHRAN_FUNCTION = """inline
typename __pythran_m::{name}::type<double>::result_type {name}(double x) 
{{
  return __pythran_m::{name}()(x);
}}
"""


def test_pythrans_functions_are_defined_in_their_part_and_declared_in_the_others() -> None:
    code = "#include <x>\n" + PYTHRAN_FUNCTION.format(name="f") + PYTHRAN_FUNCTION.format(name="g")
    guarded = _in_parts(code, {"f": 0, "g": 1})
    assert guarded is not None
    for name, part in (("f", 0), ("g", 1)):
        block = re.search(rf"#if [^\n]*CAPSULES_PART == {part}\n(.*?)#else\n(.*?)#endif\n", guarded, re.S)
        assert block is not None
        assert block.group(1) == PYTHRAN_FUNCTION.format(name=name)
        assert block.group(2) == f"typename __pythran_m::{name}::type<double>::result_type {name}(double x);\n"
    # a function not where pythran writes it: the build is compiled whole
    assert _in_parts(code, {"f": 0, "h": 1}) is None
    # kernels drawing random numbers share a generator, which each part would have its own copy of
    for header in ("random/random.hpp", "numpy/random/normal.hpp"):
        assert _in_parts(f"#include <pythonic/include/{header}>\n" + code, {"f": 0, "g": 1}) is None


def test_each_part_exports_its_own_capsules_and_the_first_part_the_rest() -> None:
    from pythran.spec import spec_parser

    specs = spec_parser(MODULE + "\n#pythran export plain(float)\ndef plain(x):\n    return x\n")
    functions = {"bump": 1, "spread": 0, "drift": 1}
    first, second = (_part_specs(specs, functions, k) for k in range(2))
    assert sorted(first.capsules) == ["spread"] and list(first.functions) == ["plain"]
    assert sorted(second.capsules) == ["bump", "drift"] and not second.functions and not second.ufuncs
    assert sorted(specs.capsules) == ["bump", "drift", "spread"] and list(specs.functions) == ["plain"]  # a copy


def test_a_batch_shares_the_cores_among_the_builds_it_runs_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CAPSULES_CORES", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    assert workers.cores() == 8
    with workers.expect(10, 4):
        assert workers.cores() == 2
    with workers.expect(1, 4):  # one build runs alone, however many jobs were allowed
        assert workers.cores() == 8
    monkeypatch.setenv("CAPSULES_CORES", "1")
    assert workers.cores() == 1


ONE_KERNEL = """
from math import exp


#pythran export capsule gauss(float64, float64*)
def gauss(x, data):
    return exp(-data[0] * x * x)
"""


def _headers_read(module: capsules.KernelModule) -> list[str]:
    """The files the compiler read, as its -H lists them in the build log."""
    log = (module.entry.directory / "build.log").read_text()
    return [line.split(" ", 1)[1] for line in log.splitlines() if re.match(r"^\.+ ", line)]


@pytest.mark.compile
def test_a_whole_build_reads_the_prologue_while_pythran_generates_the_rest(
    write_kernel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAPSULES_CXXFLAGS", "-H")  # the compiler lists each file it reads
    module = _build(write_kernel(ONE_KERNEL), tmp_path / "cache", 2, monkeypatch)
    assert "/dev/stdin" in _headers_read(module), "the C++ after the prologue came on the compiler's stdin"
    value, _ = integrate.quad(module.gauss.lowlevel([0.5]), -3.0, 3.0)
    reference, _ = integrate.quad(lambda x: module.gauss.py(x, np.array([0.5])), -3.0, 3.0)
    assert value == reference
    # the log's command, run on the module's C++ as the cache keeps it, makes the same code
    command = shlex.split((module.entry.directory / "build.log").read_text().splitlines()[0])
    again = tmp_path / "again.so"
    command[command.index("-o") + 1] = str(again)
    command[next(i for i, arg in enumerate(command) if arg.endswith(".cpp"))] = str(
        module.entry.directory / f"{module.entry.module_name}.cpp")
    subprocess.run(command, check=True, capture_output=True)
    assert _text(again) == _text(module.entry.binary)
    # one core: no compile begins before the C++ is whole
    whole = _build(write_kernel(ONE_KERNEL, "other.py"), tmp_path / "cache", 1, monkeypatch)
    assert "/dev/stdin" not in _headers_read(whole)


def _text(binary: Path) -> bytes:
    """The machine code of a binary (its .text section)."""
    return subprocess.run(["objcopy", "-O", "binary", "--only-section=.text", str(binary), "/dev/stdout"],
                          check=True, capture_output=True).stdout


@pytest.mark.compile
@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="lists the processes from /proc (Linux)")
def test_a_build_that_pythran_fails_leaves_no_compiler_running(
    write_kernel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_kernel(UNBOUND.split("\n\n\n")[1])  # the one kernel that names nothing defined
    monkeypatch.setenv("CAPSULES_CORES", "2")
    with pytest.raises(capsules.BuildError) as info:
        capsules.build([path], cache=tmp_path / "cache")
    assert "Unbound identifier nowhere" in str(info.value)
    running = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            running.append(cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            pass
    assert not [command for command in running if str(tmp_path / "cache") in command]
