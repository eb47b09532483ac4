"""Experiment: W1's integrand with more stack, in several fresh processes.

    python benchmarks/w1_frames.py [--processes 5] [--repeats 15] [--markdown FILE]

W1's integrand calls sin and exp, and its compiled frame holds two spilled
doubles: gcc gives it 24 bytes of stack.  On some CPUs, called from
SciPy's quad, the integrand runs much slower with that frame than with a
larger one, although the instructions are the same but for the size
subtracted from the stack pointer.  This builds the hand-written C of W1
three times with gcc -O3 -march=native, unpadded and with 8 and 32 bytes
of unused stack, and times them in fresh processes, interleaved with
capsules' build and numba's cfunc of the same integrand.  The frame size
of each C build is read from its machine code (objdump).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import harness as H  # noqa: E402

SOURCE = """
#include <math.h>
double osc(double x) {
#if PAD
  volatile char pad[PAD];
  pad[0] = 0;
#endif
  double s = sin(50.0 * x);
  return exp(-x * x) * s * s;
}
"""
PADS = (0, 8, 32)


def build(folder: Path) -> dict[str, tuple[Path, str]]:
    """The C builds, by label: the library and its frame size as objdump shows it."""
    (folder / "osc.c").write_text(SOURCE)
    builds = {}
    for pad in PADS:
        lib = folder / f"osc_pad{pad}.so"
        subprocess.run(["gcc", "-O3", "-march=native", "-shared", "-fPIC", f"-DPAD={pad}", str(folder / "osc.c"),
                        "-o", str(lib), "-lm"], check=True)
        code = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(lib)], capture_output=True, text=True).stdout
        frame = re.search(r"<osc>:\n\s*\w+:\s*sub\s+\$(0x[0-9a-f]+),%rsp", code)
        builds[f"C, {pad} bytes of padding"] = (lib, f"{int(frame.group(1), 16)} bytes" if frame else "?")
    return builds


def child(libraries: list[str], repeats: int, cache: str) -> dict[str, tuple[float, float]]:
    """Median ms per quad call of each implementation, interleaved, in this process, and its integral."""
    import ctypes

    from scipy import LowLevelCallable, integrate

    import capsules

    calls = {}
    for lib in libraries:
        function = ctypes.CDLL(lib).osc
        function.restype, function.argtypes = ctypes.c_double, [ctypes.c_double]
        calls[lib] = LowLevelCallable(function)
    calls["capsules"] = capsules.load(H.KERNELS / "quad_integrands.py", cache=cache).osc.lowlevel()
    try:
        from peers import numba_quad
    except ImportError:  # numba is optional here, as in run.py
        pass
    else:
        calls["numba @cfunc"] = LowLevelCallable(numba_quad.osc.ctypes)
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            for _ in range(20):
                integrate.quad(call, -10, 10, limit=1000)
            times[name].append((time.perf_counter() - start) / 20 * 1e3)
    return {name: (statistics.median(times[name]), integrate.quad(call, -10, 10, limit=1000)[0])
            for name, call in calls.items()}


def table(runs: list[dict], builds: dict[str, tuple[Path, str]], repeats: int) -> str | None:
    """The markdown report, or None (said on stderr) where a build's integral differs from the unpadded C's."""
    labels = {str(lib): label for label, (lib, _) in builds.items()}
    frames = {str(lib): frame for lib, frame in builds.values()}
    plain = str(next(iter(builds.values()))[0])
    for run in runs:  # the same integral from every build, to 1e-12
        wrong = [name for name, (_, value) in run.items() if abs(value - run[plain][1]) > 1e-12 * abs(run[plain][1])]
        if wrong:
            print(f"results differ from the unpadded C: {', '.join(labels.get(n, n) for n in wrong)}", file=sys.stderr)
            return None
    lines = [f"# W1 and the integrand's stack frame, {len(runs)} processes", "", *H.machine_markdown(H.machine()),
             "", f"Median ms per quad call in each process ({repeats} interleaved repeats of 20 calls), "
             "and its ratio to the unpadded C.", "",
             "| implementation | frame | ms per process | ratio to C, median (range) |", "|---|---|---|---|"]
    for name in runs[0]:
        ratios = [run[name][0] / run[plain][0] for run in runs]
        lines.append(f"| {labels.get(name, name)} | {frames.get(name, '-')} | "
                     f"{', '.join(f'{run[name][0]:.3f}' for run in runs)} | "
                     f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f}) |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--markdown", help="also write the table to this file")
    parser.add_argument("--cache", default=str(H.CAPSULES_CACHE), help="capsules cache for its build")
    parser.add_argument("--child", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        print(json.dumps(child(args.child, args.repeats, args.cache)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        builds = build(Path(tmp))
        libraries = [str(lib) for lib, _ in builds.values()]
        runs = []
        for _ in range(args.processes):
            done = subprocess.run([sys.executable, __file__, "--repeats", str(args.repeats), "--cache", args.cache,
                                   "--child", *libraries], check=True, capture_output=True, text=True)
            runs.append(json.loads(done.stdout.splitlines()[-1]))
    text = table(runs, builds, args.repeats)
    if text is None:
        return 1
    H.report(text, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
