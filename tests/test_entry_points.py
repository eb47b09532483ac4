"""The generated entry points: every wrong return type refused at build time, failures located, Ctrl-C obeyed."""

from __future__ import annotations

import ctypes
import platform
import re
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from scipy import integrate, ndimage

import capsules

pytestmark = pytest.mark.compile


@pytest.mark.parametrize(
    ("returned", "kind"),
    [("complex(x, 1.0)", "complex"), ("None", "None"), ("[x, 1.0]", "a non-scalar"), ("(x, 1.0)", "a non-scalar"),
     ("'text'", "str"), ("1", "int64")],
)
def test_every_wrong_integrand_return_type_is_one_located_line(write_kernel, cache_dir, returned, kind):
    path = write_kernel(f"#pythran export capsule f(float64)\ndef f(x):\n    return {returned}\n")
    with pytest.raises(capsules.SignatureError) as info:
        capsules.build([path], cache=cache_dir)
    message = str(info.value)
    assert message.startswith(f"{path}:1: 'f' returns {kind}") and "quad read a C double" in message
    assert "\n" not in message and "static_cast" not in message


def test_a_filter_returning_0_without_raising_is_a_located_error(write_kernel, cache_dir):
    path = write_kernel(
        "#pythran export capsule f(float64*, int64, float64*, float64*)\n"
        "def f(buffer, size, out, ud):\n    out[0] = buffer[0]\n    return 0\n"
    )
    mod = capsules.load(path, cache=cache_dir)
    with pytest.raises(capsules.KernelError, match=rf"{path.name}:1: 'f' returned 0 \(failure\) without raising"):
        ndimage.generic_filter(np.ones((5, 5)), mod.f.lowlevel(), size=3)
    # the failure was handled: the next call starts afresh and fails the same located way
    with pytest.raises(capsules.KernelError, match="returned 0"):
        ndimage.generic_filter(np.ones((3, 3)), mod.f.lowlevel(), size=3)


SLOW_FILTER = """
#capsules filter slow(window; n)
def slow(window, n):
    s = 0.0
    for k in range(int(n)):
        s += window[k % len(window)] * 1e-9
    return s
"""

RUN_UNTIL_INTERRUPTED = """
import signal, sys, time, numpy as np, capsules
from scipy import integrate, ndimage
# Python turns SIGINT into KeyboardInterrupt only where it was not ignored at
# start, and a shell starts background jobs with SIGINT ignored: as a terminal would
signal.signal(signal.SIGINT, signal.default_int_handler)
mod = capsules.load(sys.argv[1], cache=sys.argv[2])
image = np.ones((400, 400))
print("start", flush=True)
start = time.perf_counter()
try:
    ndimage.generic_filter(image, mod.slow.lowlevel(n=200000), size=3)
    print("finished", time.perf_counter() - start, flush=True)
except KeyboardInterrupt:
    print("interrupted", time.perf_counter() - start, flush=True)
"""


def test_ctrl_c_stops_a_long_filter_within_a_second(write_kernel, cache_dir):
    path = write_kernel(textwrap.dedent(SLOW_FILTER), "slow.py")
    capsules.build([path], cache=cache_dir)  # compile first, so only the filter is interrupted
    out, waited = _interrupted_after_a_second([RUN_UNTIL_INTERRUPTED, str(path), str(cache_dir)])
    # 160,000 pixels of 200,000 steps each take far longer than the second allowed here
    assert out.startswith("interrupted"), out
    assert waited < 1.0 + 0.5, f"stopped {waited:.2f} s after Ctrl-C"


def _interrupted_after_a_second(args: list[str]) -> tuple[str, float]:
    """Run ``python -c *args``; a second after it prints "start", Ctrl-C: its output, and the seconds it took to end."""
    proc = subprocess.Popen([sys.executable, "-c", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "start"
    time.sleep(1.0)
    sent = time.perf_counter()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    return out + err, time.perf_counter() - sent


SLOW_INTEGRANDS = """
#pythran export capsule slow_steps(float64, float64*)
def slow_steps(x, ud):
    s = 0.0
    for k in range(int(ud[0])):
        s += 1e-9
    return s + float(int(x * 1000.0) % 2)


#pythran export capsule steps(int32, float64*)
def steps(n, x):
    return float(int(x[0] * 1000.0) % 2) + x[1] * x[2]
"""

INTEGRATE_UNTIL_INTERRUPTED = """
import signal, sys, time, capsules
from scipy import integrate
signal.signal(signal.SIGINT, signal.default_int_handler)
mod = capsules.load(sys.argv[1], cache=sys.argv[2])
print("start", flush=True)
start = time.perf_counter()
try:
    if sys.argv[3] == "quad":  # about a million calls of 0.2 ms: minutes
        integrate.quad(mod.slow_steps.lowlevel([2e5]), 0, 1, limit=100000)
    else:  # inner quads of a straight kernel, the outer ones in Python: minutes
        integrate.nquad(mod.steps.lowlevel(), [[0, 1]] * 3, opts={"limit": 200})
    print("finished", time.perf_counter() - start, flush=True)
except (KeyboardInterrupt, SystemError) as err:
    cause = err if isinstance(err, KeyboardInterrupt) else err.__cause__
    print("interrupted", type(cause).__name__, time.perf_counter() - start, flush=True)
"""


@pytest.mark.parametrize("how", ["quad", "nquad"])
def test_ctrl_c_stops_a_long_integration_within_a_second(write_kernel, cache_dir, how):
    path = write_kernel(textwrap.dedent(SLOW_INTEGRANDS), "slow_integrands.py")
    module = capsules.load(path, cache=cache_dir)
    # the looping kernel asks Python every 256 calls; the straight one has no such test (each
    # call is short): Python sees the Ctrl-C between nquad's inner integrations
    cpp = (module.entry.directory / f"{module.entry.module_name}.cpp").read_text()
    assert "return capsules_entry_slow_steps_asking(" in cpp
    assert "capsules_entry_steps_asking" not in cpp
    out, waited = _interrupted_after_a_second([INTEGRATE_UNTIL_INTERRUPTED, str(path), str(cache_dir), how])
    assert out.startswith("interrupted KeyboardInterrupt"), out
    assert waited < 1.0 + 0.5, f"stopped {waited:.2f} s after Ctrl-C"


DIVISIONS = """
#pythran export capsule quotient(float64, int64*)
def quotient(x, ud):
    k = ud[0] // ud[1]
    k %= ud[1] + ud[2]
    return x + k


#pythran export capsule remainder_filter(float64*, int64, float64*, int64*)
def remainder_filter(buffer, size, out, ud):
    out[0] = buffer[0] + size % ud[0]
    return 1


#pythran export capsule float_floor(float64, float64*)
def float_floor(x, ud):
    return x // ud[0]
"""

DIVIDE_BY_ZERO = """
import sys, numpy as np, capsules
from scipy import integrate, ndimage
mod = capsules.load(sys.argv[1], cache=sys.argv[2])
print(integrate.quad(mod.quotient.lowlevel([7, 2, 1]), 0, 1)[0])
try:
    integrate.quad(mod.quotient.lowlevel([7, 0, 1]), 0, 1)
except SystemError as err:
    print("quad:", type(err.__cause__).__name__, type(err.__cause__.__cause__).__name__)
try:
    ndimage.generic_filter(np.ones((4, 4)), mod.remainder_filter.lowlevel([0]), size=3)
except capsules.KernelError as err:
    print("filter:", type(err.__cause__).__name__)
zero = np.zeros(1)
print("float:", mod.float_floor.as_ctypes()(0.7, zero.ctypes.data))  # IEEE: floor(0.7 / 0.0) = inf, no exception
"""


def _printed(script: str, path, cache_dir) -> list[str]:
    """What ``script`` prints of the kernel file at ``path``, built first, in a process of its own."""
    capsules.build([path], cache=cache_dir)
    done = subprocess.run([sys.executable, "-c", script, str(path), str(cache_dir)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr  # not SIGFPE (-8)
    return done.stdout.splitlines()


def test_integer_division_by_zero_raises_in_the_default_build(write_kernel, cache_dir):
    lines = _printed(DIVIDE_BY_ZERO, write_kernel(DIVISIONS, "divisions.py"), cache_dir)
    assert float(lines[0]) == pytest.approx(0.5 + (7 // 2) % 3)
    assert lines[1] == "quad: KernelError ZeroDivisionError"
    assert lines[2] == "filter: ZeroDivisionError"
    assert lines[3] == "float: inf"


EVERY_KTH = """
#capsules filter1d every_kth(line_in, line_out; k)
def every_kth(line_in, line_out, k):
    for i in range(len(line_out)):
        line_out[i] = line_in[i // int(k)]
"""

EVERY_KTH_BY_ZERO = """
import sys, numpy as np, capsules
from scipy import ndimage
mod = capsules.load(sys.argv[1], cache=sys.argv[2])
image = np.arange(12.0).reshape(2, 6)
print(ndimage.generic_filter1d(image, mod.every_kth.lowlevel(k=2), 1)[1].tolist())
try:
    ndimage.generic_filter1d(image, mod.every_kth.lowlevel(k=0), 1)
except capsules.KernelError as err:
    print(type(err.__cause__).__name__)
"""


def test_a_natural_line_kernel_through_pointers_raises_for_an_integer_division_by_zero(write_kernel, cache_dir):
    lines = _printed(EVERY_KTH_BY_ZERO, write_kernel(EVERY_KTH, "every_kth.py"), cache_dir)
    assert lines == ["[6.0, 6.0, 7.0, 7.0, 8.0, 8.0]", "ZeroDivisionError"]


SHORT_AND_LONG_LOOPS = """
#pythran export capsule footprint_spread(float64*, int64, float64*, float64*)
def footprint_spread(buffer, filter_size, return_value, user_data):
    mean = 0.0
    for i in range(filter_size):
        mean += buffer[i]
    mean /= filter_size
    s = 0.0
    for i in range(filter_size):
        d = buffer[i] - mean
        s += d * d
    return_value[0] = s
    return 1


#pythran export capsule line_spread(float64*, int64, float64*, int64, float64*)
def line_spread(input_line, input_length, output_line, output_length, user_data):
    mean = 0.0
    for i in range(input_length):
        mean += input_line[i]
    mean /= input_length
    s = 0.0
    for i in range(input_length):
        d = input_line[i] - mean
        s += d * d
    for i in range(output_length):
        output_line[i] = s
    return 1
"""


def _skip_unless_gcc(module: capsules.KernelModule, why: str, *, native: bool = True, x86_64: bool = True) -> None:
    """Skip the test, saying ``why``, unless gcc built the module (for the host's instruction set, on x86-64)."""
    command = (module.entry.directory / "build.log").read_text()
    if (not command.startswith(("g++", "c++")) or (native and "-march=native" not in command)
            or (x86_64 and platform.machine() != "x86_64")):
        pytest.skip(why)


def _entry_assembly(assemble, module: capsules.KernelModule, name: str) -> str:
    """The assembly gcc makes of one entry point, from the module's C++ and its build's own compile command."""
    listing, _ = assemble(module, "entries")
    # the mangled name: _Z<length>capsules_entry_<name><parameter types>, with an L when static
    # (not in a split build, whose part 0 names every entry point)
    mangled = f"_ZL?{len('capsules_entry_' + name)}capsules_entry_{name}"
    body = re.search(rf"^({mangled}\w+):\n(.*?)^\s*\.size\s+\1,", listing, re.M | re.S)
    assert body is not None, f"no entry point for {name} in the assembly"
    return body.group(2)


def test_a_footprint_kernel_prefers_short_vectors_and_a_line_kernel_does_not(write_kernel, cache_dir, assemble):
    path = write_kernel(SHORT_AND_LONG_LOOPS, "spreads.py")
    module = capsules.load(path, cache=cache_dir)
    _skip_unless_gcc(module, "the preference is for gcc with the host's instruction set", x86_64=False)
    line = _entry_assembly(assemble, module, "line_spread")
    if "%zmm" not in line:
        pytest.skip("gcc uses no 512-bit vectors on this CPU: nothing to prefer")
    footprint = _entry_assembly(assemble, module, "footprint_spread")
    assert "%zmm" not in footprint and "%ymm" in footprint
    # the same operations in the same order: the results do not change
    image = np.random.default_rng(3).standard_normal((40, 30)) * 5.0 + 2.0
    spread = ndimage.generic_filter(image, module.footprint_spread.lowlevel(), size=5)
    expected = ndimage.generic_filter(image, lambda w: _plain(module.footprint_spread.py, w), size=5)
    np.testing.assert_array_equal(spread, expected)


def _plain(kernel, window):
    out = np.empty(1)
    kernel(window, len(window), out, None)
    return out[0]


WINDOW_SUMS = """
#pythran export capsule window_mean(float64*, int64, float64*, int64, float64*)
def window_mean(input_line, input_length, output_line, output_length, user_data):
    width = input_length - output_length + 1
    for i in range(output_length):
        s = 0.0
        for k in range(width):
            s += input_line[i + k]
        output_line[i] = s / width
    return 1
"""


def _python_lines(kernel, image: np.ndarray, size: int) -> np.ndarray:
    """generic_filter1d's answer with the kernel run as Python, line by line."""
    def line(input_line, output_line):
        kernel(input_line, len(input_line), output_line, len(output_line), None)
    return ndimage.generic_filter1d(image, line, size)


def test_window_sums_run_several_windows_at_once_and_keep_their_order(write_kernel, cache_dir, assemble):
    path = write_kernel(WINDOW_SUMS, "windows.py")
    module = capsules.load(path, cache=cache_dir)
    image = np.random.default_rng(5).standard_normal((7, 300)) * 1e3
    for size in (1, 2, 3, 8, 9, 25):  # each sum in the kernel's order: equal to Python's bit for bit
        np.testing.assert_array_equal(ndimage.generic_filter1d(image, module.window_mean.lowlevel(), size),
                                      _python_lines(module.window_mean.py, image, size))
    # a call that breaks generic_filter1d's promise (a window of at least one
    # point) takes the plain path: the kernel's own answer, no assumption
    line, out = np.arange(3.0), np.full(5, 7.0)
    entry = module.window_mean.as_ctypes()
    doubles = ctypes.POINTER(ctypes.c_double)
    assert entry(line.ctypes.data_as(doubles), 3, out.ctypes.data_as(doubles), 5, None) == 1
    expected = np.full(5, 7.0)
    module.window_mean.py(line, 3, expected, 5, None)
    np.testing.assert_array_equal(out, expected)
    assert np.signbit(out).all()  # 0.0 / -1: -0.0, as in Python
    _skip_unless_gcc(module, "the vector code checked below is gcc's for an x86-64 host's instruction set")
    # several windows at a time: one packed division for several outputs
    assert re.search(r"\bvdivpd\b", _entry_assembly(assemble, module, "window_mean_kept"))


STRAIGHT_INTEGRAND = """
from math import exp, sin


#pythran export capsule osc(float64)
def osc(x):
    s = sin(50.0 * x)
    return exp(-x * x) * s * s
"""


def test_a_straight_integrand_calls_libm_from_a_frame_of_at_least_40_bytes(write_kernel, cache_dir, assemble):
    path = write_kernel(STRAIGHT_INTEGRAND, "straight.py")
    module = capsules.load(path, cache=cache_dir)
    # the same values as Python's, so quad takes the same steps to the same answer
    assert integrate.quad(module.osc.lowlevel(), -3, 3, limit=200) == integrate.quad(module.osc.py, -3, 3, limit=200)
    _skip_unless_gcc(module, "the frame checked below is gcc's on x86-64", native=False)
    # gcc's own frame for it is 24 bytes: its libm calls would push their
    # return address where SciPy's quad thunk saved rbp (CAPSULES_FRAME_PAD)
    frame = re.search(r"^\s*subq\s+\$(\d+), %rsp$", _entry_assembly(assemble, module, "osc"), re.M)
    assert frame is not None and int(frame.group(1)) >= 40


NATURAL_WINDOW_MEANS = """
#capsules filter1d window_mean(line_in, line_out)
def window_mean(line_in, line_out):
    width = len(line_in) - len(line_out) + 1
    for i in range(len(line_out)):
        s = 0.0
        for k in range(width):
            s += line_in[i + k]
        line_out[i] = s / width
"""


def test_a_natural_line_kernel_runs_several_windows_at_once_too(write_kernel, cache_dir, assemble):
    module = capsules.load(write_kernel(NATURAL_WINDOW_MEANS, "natural_windows.py"), cache=cache_dir)
    image = np.random.default_rng(6).standard_normal((7, 300)) * 1e3
    for size in (1, 2, 3, 8, 9, 25):  # SciPy's Python form of a line kernel is the natural one
        np.testing.assert_array_equal(ndimage.generic_filter1d(image, module.window_mean.lowlevel(), size),
                                      ndimage.generic_filter1d(image, module.window_mean.py, size))
    _skip_unless_gcc(module, "the vector code checked below is gcc's for an x86-64 host's instruction set")
    # the lines reach it as SciPy's pointers, which the path for kept promises declares apart
    assert re.search(r"\bvdivpd\b", _entry_assembly(assemble, module, "window_mean_kept"))


MANY_VARIABLES = """
from math import cos, pi


#pythran export capsule genz(int32, float64*, float64*)
def genz(n, x, c):
    t = 2.0 * pi * c[0]
    for i in range(n):
        t += c[i + 1] * x[i]
    return cos(t)
"""


def test_an_integrand_reads_x_a_value_at_a_time_as_its_caller_stored_it(write_kernel, cache_dir, assemble):
    """nquad stores one value of x just before each call: a vector load of x would wait for that store."""
    module = capsules.load(write_kernel(MANY_VARIABLES, "many.py"), cache=cache_dir)
    coefficients = [0.3, 3.0, 5.0, 7.0, 9.0]
    compiled = integrate.nquad(module.genz.lowlevel(coefficients), [[0, 1]] * 4, full_output=True)
    python = integrate.nquad(lambda *x: module.genz.py(4, x, coefficients), [[0, 1]] * 4, full_output=True)
    assert compiled == python  # the same operations in the same order: the same steps and value
    _skip_unless_gcc(module, "the loads checked below are gcc's on x86-64", native=False)
    code = _entry_assembly(assemble, module, "genz")
    assert re.search(r"\bcos\b", code) and not re.search(r"\bv?(movupd|mulpd|addpd|movapd)\b", code), code
