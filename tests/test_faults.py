"""Faults: raw pointers read past what SciPy passes, allocations too large for memory, a full disk.

The kernels run in a fresh process: a regression there is a crash or a hang,
which must fail the test, not end the test run.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
from scipy import integrate

import capsules
from capsules.generate import entries, runtime
from capsules.build import plan
from capsules.signatures import match
from capsules.generate.module import read_exports

pytestmark = pytest.mark.compile

# Raw kernels that read or write past what SciPy passes; line numbers matter.
OUT_OF_BOUNDS = """
#pythran export capsule past_end(int32, float64*)
def past_end(n, x):
    return x[n + 3]


#pythran export capsule before_start(int32, float64*)
def before_start(n, x):
    return x[-1] + x[0]


#pythran export capsule through_helper(int32, float64*, float64*)
def through_helper(n, x, ud):
    s = 0.0
    for i in range(n):
        s += x[i]
    return s + weight(ud, int(x[0] * 10.0))


def weight(ud, k):
    return ud[k]


#pythran export capsule endless_line(float64*, int64, float64*, int64, float64*)
def endless_line(line_in, n_in, line_out, n_out, ud):
    i = 0
    while True:
        line_out[i] = line_in[i]
        i += 1
    return 1


#pythran export capsule second_value(float64*, int64, float64*, float64*)
def second_value(buffer, size, out, ud):
    out[0] = buffer[size - 1]
    out[1] = 0.0
    return 1


#pythran export capsule extra_coordinate(int64*, float64*, int32, int32, float64*)
def extra_coordinate(oc, ic, orank, irank, ud):
    for i in range(irank):
        ic[i] = oc[i] * 1.0
    ic[irank] = 0.0
    return 1


#pythran export capsule last_items(int32, float64*, int32*)
def last_items(n, x, ud):
    return x[n - 1] + ud[n - 1]
"""

RUN_OUT_OF_BOUNDS = """
import json, pickle, sys
import numpy as np
from scipy import integrate, ndimage
import capsules

mod = capsules.load(sys.argv[1], cache=sys.argv[2], checked=True)
image = np.ones((6, 7))
calls = {
    "past_end": lambda: integrate.nquad(mod.past_end.lowlevel(), [[0, 1], [0, 1]]),
    "before_start": lambda: integrate.quad(mod.before_start.lowlevel(), 0, 1),
    "through_helper": lambda: integrate.quad(mod.through_helper.lowlevel([1.0, 2.0, 3.0]), 0, 1),
    "endless_line": lambda: ndimage.generic_filter1d(image, mod.endless_line.lowlevel(), 3),
    "second_value": lambda: ndimage.generic_filter(image, mod.second_value.lowlevel(), size=3),
    "extra_coordinate": lambda: ndimage.geometric_transform(image, mod.extra_coordinate.lowlevel()),
}
outcome = {}
for name, call in calls.items():
    try:
        call()
        outcome[name] = None
    except Exception as err:
        error = err if isinstance(err, capsules.KernelError) else err.__cause__
        outcome[name] = [str(error), type(error.__cause__).__name__]
# reads within what SciPy and user_data hold still work, also after pickling the callable
box = [[0, 1], [0, 1]]
outcome["within"] = integrate.nquad(mod.last_items.lowlevel([5, 7]), box)[0]
outcome["pickled"] = integrate.nquad(pickle.loads(pickle.dumps(mod.last_items.lowlevel([5, 7]))), box)[0]
outcome["helper_within"] = integrate.quad(mod.through_helper.lowlevel(np.arange(11.0)), 0, 1)[0]
print(json.dumps(outcome))
"""


@pytest.fixture(scope="module")
def out_of_bounds(tmp_path_factory, cache_dir) -> dict:
    path = tmp_path_factory.mktemp("faults") / "pointers.py"
    path.write_text(OUT_OF_BOUNDS.lstrip())
    capsules.build([path], cache=cache_dir, checked=True)
    done = subprocess.run([sys.executable, "-c", RUN_OUT_OF_BOUNDS, str(path), str(cache_dir)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"the process died ({done.returncode}): {done.stderr[-2000:]}"
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize(
    ("case", "line", "message"),
    [
        ("past_end", 1, "x[5] is out of range (x has 2 items)"),
        ("before_start", 6, "x[-1] is out of range (x has 1 item)"),
        ("through_helper", 11, "ud[5] is out of range (ud has 3 items)"),  # user_data, read in a helper
        ("endless_line", 23, "line_out[7] is out of range (line_out has 7 items)"),  # hung before
        ("second_value", 32, "out[1] is out of range (out has 1 item)"),
        ("extra_coordinate", 39, "ic[2] is out of range (ic has 2 items)"),
    ],
)
def test_checked_build_bounds_checks_raw_pointers(out_of_bounds, case, line, message):
    error, cause = out_of_bounds[case]
    assert error == f"pointers.py:{line}: '{case}' raised IndexError: {message}"
    assert cause == "IndexError"


def test_checked_raw_kernels_read_within_bounds_as_before(out_of_bounds):
    assert out_of_bounds["within"] == pytest.approx(0.5 + 7.0)  # x[1] over the unit square, plus ud[1]
    assert out_of_bounds["pickled"] == out_of_bounds["within"]
    assert out_of_bounds["helper_within"] == pytest.approx(0.5 + 4.5)  # x, plus the mean of ud[int(10 x)]


def test_default_build_passes_bare_pointers(write_kernel):
    """The length of each pointer, and user_data's header, are the checked build's alone."""
    path = write_kernel(OUT_OF_BOUNDS.lstrip(), "pointers.py")
    exports = [(s, match(s)) for s in read_exports(path) if s.capsule]
    default = entries.source(exports, "pointers.py")
    checked = entries.source(exports, "pointers.py", checked=True)
    assert "pythonic::types::pointer<double>{reinterpret_cast<double*>(a1)}" in default
    assert "user_data_items" not in default and "user_data_items" in checked
    assert "PYTHONIC_TYPES_POINTER_HPP" not in runtime.prologue()
    assert "PYTHONIC_TYPES_POINTER_HPP" in runtime.prologue(checked=True)


def test_checked_user_data_carries_its_length(cache_dir, write_kernel):
    path = write_kernel("#pythran export capsule f(float64, int32*)\ndef f(x, ud):\n    return x * ud[1]\n", "ud.py")
    for checked in (False, True):
        kernel = capsules.load(path, cache=cache_dir, checked=checked).f
        callable_ = kernel.lowlevel([3, 4, 5])
        data = callable_.user_data_array
        assert data.tolist() == [3, 4, 5] and data.dtype == np.int32 and not data.flags.writeable
        assert integrate.quad(callable_, 0, 1)[0] == pytest.approx(2.0)
        if checked:  # two int64 in front of the values: the magic number and how many there are
            header = (ctypes.c_int64 * 2).from_address(data.ctypes.data - 16)
            assert list(header) == [runtime.user_data_header()[0], 3] and data.ctypes.data % 16 == 0


# Allocations no memory can hold.
ALLOCATIONS = """
import numpy as np


#pythran export capsule zeros(float64, float64*)
def zeros(x, ud):
    a = np.zeros(int(ud[0]))
    return x + a[0]


#pythran export capsule empty(float64, float64*)
def empty(x, ud):
    a = np.empty(int(ud[0]))
    a[0] = x
    return a[0]


#pythran export capsule listed(float64, float64*)
def listed(x, ud):
    a = [x] * int(ud[0])
    return a[0]


#capsules filter squares(window; n)
def squares(window, n):
    a = np.ones((int(n), int(n)))
    return window[0] + a[0, 0]
"""

RUN_ALLOCATIONS = """
import json, sys
import numpy as np
from scipy import integrate, ndimage
import capsules

mod = capsules.load(sys.argv[1], cache=sys.argv[2])
calls = {  # with the sizes too large for any address space
    "zeros": (1e17, lambda n: integrate.quad(mod.zeros.lowlevel([n]), 0, 1)[0]),
    "empty": (1e17, lambda n: integrate.quad(mod.empty.lowlevel([n]), 0, 1)[0]),
    "listed": (1e17, lambda n: integrate.quad(mod.listed.lowlevel([n]), 0, 1)[0]),
    "squares": (1e9, lambda n: float(ndimage.generic_filter(np.ones((4, 4)), mod.squares.lowlevel(n=n), size=3)[0, 0])),
}
outcome = {}
for name, (huge, call) in calls.items():
    try:
        call(huge)
        outcome[name] = None
    except Exception as err:
        error = err if isinstance(err, capsules.KernelError) else err.__cause__
        outcome[name] = [str(error), type(error.__cause__).__name__]
    outcome[name + " after"] = call(3.0)  # the kernel and the process stay usable
print(json.dumps(outcome))
"""


@pytest.fixture(scope="module")
def allocations(tmp_path_factory, cache_dir) -> dict:
    path = tmp_path_factory.mktemp("faults") / "allocations.py"
    path.write_text(ALLOCATIONS.lstrip())
    capsules.build([path], cache=cache_dir)
    done = subprocess.run([sys.executable, "-c", RUN_ALLOCATIONS, str(path), str(cache_dir)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"the process died ({done.returncode}): {done.stderr[-2000:]}"  # not SIGSEGV (-11)
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize(
    ("case", "line", "after"),
    [("zeros", 4, 0.5), ("empty", 10, 0.5), ("listed", 17, 0.5), ("squares", 23, 2.0)],
)
def test_an_allocation_too_large_is_a_memory_error_in_the_default_build(allocations, case, line, after):
    error, cause = allocations[case]
    assert error.startswith(f"allocations.py:{line}: '{case}' raised MemoryError: unable to allocate ")
    assert cause == "MemoryError"
    assert allocations[f"{case} after"] == pytest.approx(after)


# ---- a full disk --------------------------------------------------------

SMALL_KERNEL = """
#pythran export capsule f(float64, float64*)
def f(x, ud):
    return x * ud[0]
"""


@pytest.fixture
def small_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A 2 MB tmpfs, as a disk that fills up; skipped where mounting is not permitted."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if shutil.which("mount") is None or not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root and mount(8)")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    # precompiled headers (about 50 MB) are made in the background: not on this disk
    monkeypatch.setenv("CAPSULES_PCH", "0")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(disk: Path, leave: int) -> None:
    """Fill the disk but for ``leave`` bytes."""
    (disk / "filler").unlink(missing_ok=True)
    info = os.statvfs(disk)
    with open(disk / "filler", "wb") as filler:
        filler.write(b"\0" * max(0, info.f_bavail * info.f_frsize - leave))


def test_a_full_disk_is_reported_as_such_and_publishes_nothing(small_disk, tmp_path, capsys):
    cache = capsules.Cache(small_disk / "cache")

    def published() -> set[str]:
        return {p.name for p in cache.base.iterdir() if len(p.name) == 64}

    # how much a build of this kernel writes, measured by building it once
    probe = tmp_path / "probe.py"
    probe.write_text(SMALL_KERNEL)
    before = shutil.disk_usage(small_disk).used
    capsules.build([probe], cache=cache)
    needed = shutil.disk_usage(small_disk).used - before
    reasons = set()
    # from nothing left (the first write fails) to almost enough (the link fails), in sixteenths:
    # where this process's writes end and the compiler's begin moves with the size of what is generated
    for leave in (needed * k // 16 for k in range(16)):
        path = tmp_path / f"k{leave}.py"
        path.write_text(f"# {uuid.uuid4()}\n{SMALL_KERNEL}")  # a new source: a new build
        _fill(small_disk, leave)
        entries = published()
        try:
            capsules.build([path], cache=cache)
        except capsules.CacheError as err:
            message = str(err)
        else:
            continue  # it fitted after all (the disk counts in pages)
        assert message.startswith(f"{cache.root}: the disk (or quota) is full: "), message
        assert f", while building {path.name} (nothing was published)" in message
        assert "Traceback" not in message and "C++ compilation failed" not in message
        reasons.add(message.split(": the disk (or quota) is full: ")[1].split(", while building")[0])
        assert cache.lookup(plan(path).key) is None and published() == entries
        assert list((cache.base / "tmp").iterdir()) == []  # the staging directory went too
    assert len(reasons) >= 2, reasons  # failures in this process and in the compiler's

    from capsules.cli import main

    _fill(small_disk, 0)
    path.write_text(f"# {uuid.uuid4()}\n{SMALL_KERNEL}")
    assert main(["build", str(path), "--cache", str(cache.root)]) == 1
    err = capsys.readouterr().err
    assert f"{cache.root}: the disk (or quota) is full: " in err and "Traceback" not in err

    (small_disk / "filler").unlink()
    capsules.build([path], cache=cache)  # with room again, the same cache builds


FAILING_COMPILERS = {
    # a compiler that fails and says nothing: the log's first line is its command
    "silent": ("exit 1\n", "exited with status 1 and printed nothing"),
    "a flag refused": ("echo \"cc1plus: error: unrecognized command-line option '-fbogus'\"\nexit 1\n",
                       "cc1plus: error: unrecognized command-line option '-fbogus'"),
}


@pytest.mark.parametrize("case", FAILING_COMPILERS)
def test_a_failing_compiler_shows_its_first_error_once_and_no_command(tmp_path, case):
    script, shown = FAILING_COMPILERS[case]
    compiler = tmp_path / "failing-c++"
    compiler.write_text("#!/bin/sh\n" + script)
    compiler.chmod(0o755)
    kernels = Path(__file__).resolve().parent.parent / "kernels"
    done = subprocess.run(
        [sys.executable, "-m", "capsules", "build", str(kernels / "filters.py"), "--cache", str(tmp_path / "c")],
        env={**os.environ, "CXX": str(compiler)}, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.count(shown) == 1, done.stderr  # filters.py compiles in two parts: one error is enough
    assert "-DNDEBUG" not in done.stderr  # no command line
    assert "pythran:" not in done.stderr  # pythran's checker is not asked why a compiler would not start
    assert max(map(len, done.stderr.splitlines())) <= 200 + len(str(tmp_path)) + 40


# ---- a limit on file sizes (ulimit -f) ------------------------------------


def _build_under_size_limit(path: Path, cache: Path, limit: int) -> subprocess.CompletedProcess:
    import resource

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run(
        [sys.executable, "-m", "capsules", "build", str(path), "--cache", str(cache)],
        env={**os.environ, "CAPSULES_PCH": "0"}, preexec_fn=limited, capture_output=True, text=True,
        stdin=subprocess.DEVNULL, check=False,
    )


@pytest.mark.compile
def test_a_limit_on_file_sizes_is_one_message_and_publishes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("CAPSULES_PCH", "0")  # as in the limited builds: the same C++
    cache = tmp_path / "cache"
    source = f"# {uuid.uuid4()}\n" + (Path(__file__).resolve().parent.parent / "kernels" / "filters.py").read_text()
    probe = tmp_path / "k9.py"  # names of one length: C++ files of one size
    probe.write_text(source)
    written = capsules.build([probe], cache=cache)[0].entry.directory
    request, cxx = (written / "request.json").stat().st_size, next(written.glob("*.cpp")).stat().st_size
    assert request < cxx  # so that each limit stops a different writer
    reasons = set()
    # the first write of this process; the compiler process's C++; the compiler's own output
    for k, limit in enumerate((0, (request + cxx) // 2, cxx)):
        path = tmp_path / f"k{k}.py"
        path.write_text(source.replace("# ", f"# {k}", 1))  # a new source of the same size: a new build
        done = _build_under_size_limit(path, cache, limit)
        assert done.returncode == 1 and "Traceback" not in done.stderr and "capsules/" not in done.stderr
        (message,) = [line for line in done.stderr.splitlines() if line.startswith(f"{cache}: ")]
        assert message.startswith(f"{cache}: a file passed the limit on file sizes (ulimit -f): "), done.stderr
        assert message.endswith(f", while building {path.name} (nothing was published). Raise the limit "
                                "('ulimit -f unlimited' in the shell that builds)")
        reasons.add(message.split("(ulimit -f): ")[1].split(", while building")[0])
        assert capsules.Cache(cache).lookup(plan(path).key) is None
        assert list((cache / "v1" / "tmp").iterdir()) == []  # the staging directory went too
    assert len(reasons) >= 2, reasons  # the file's errno in the processes, the signal in the compiler


# ---- a raw kernel's pointer used as a number -----------------------------

POINTER_MISUSES = {
    "used as a number": ("def f(n, x):\n    y = 2.0 * n\n    return y + x\n", 5, "x is declared float64*, a pointer, "
                         "and is used here as a number: index it, x[0] for the first value, x[i] for the others",
                         "return y + x"),
    "returned": ("def f(n, x):\n    return x\n", 4, "x is declared float64*, a pointer, and is returned: return a "
                 "value it points to, x[0] or x[i]", "return x"),
    "in a helper": ("def f(n, x):\n    return scaled(x, n)\n\ndef scaled(values, n):\n    return math.sqrt(values) * n\n",
                    7, "'scaled': values is declared float64*, a pointer, and is used here as a number",
                    "return math.sqrt(values) * n"),
}


@pytest.mark.compile
@pytest.mark.parametrize("case", POINTER_MISUSES)
def test_a_pointer_used_as_a_number_is_named_at_the_user_s_line(tmp_path, case):
    body, line, message, shown = POINTER_MISUSES[case]
    path = tmp_path / "kernel.py"
    path.write_text(f"import math\n#pythran export capsule f(int32, float64*)\n{body}")
    done = subprocess.run(
        [sys.executable, "-m", "capsules", "build", path.name, "--cache", str(tmp_path / "cache")], cwd=tmp_path,
        capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr and "capsules/" not in done.stderr
    (located,) = [text for text in done.stderr.splitlines() if text.startswith("kernel.py:")]
    assert located.startswith(f"kernel.py:{line}: ") and message in located, done.stderr
    assert f"\n    {shown}\n" in done.stderr
    assert "error:" not in done.stderr and "pythonic::" not in done.stderr  # no C++ in Python's terms
