"""Experiment: W1's integrand with more stack, in several fresh processes.

    python benchmarks/w1_frames.py [--processes 5] [--repeats 15] [--markdown FILE]

W1's integrand calls sin and exp, and its compiled frame holds two spilled
doubles: gcc gives it 24 bytes of stack.  SciPy's quad reaches it through
a thunk that restores five saved registers and jumps to it, so its frame
lies on the slots the thunk saved them in.  On some CPUs the integrand
then runs much slower with that frame than with a larger one, although
the instructions are the same but for the size subtracted from the stack
pointer.  This builds the hand-written C of W1 three times with gcc -O3
-march=native, unpadded and with 8 and 32 bytes of unused stack, and the
same instructions as hand-written assembly with the two doubles kept on
the stack or in a static buffer instead (x86-64 only), and times them in
fresh processes, interleaved with capsules' build (which reserves 40
unused bytes in a straight integrand's frame) and numba's cfunc of the
same integrand.  The frame size of each C build is read from its machine
code (objdump).
"""

from __future__ import annotations

import argparse
import json
import platform
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
# (frame bytes, where the two doubles are kept): the C build's instructions, with gcc's frame or another
FRAMES = ((24, "stack"), (40, "stack"), (24, "static"), (8, "static"))
ASSEMBLY_HEAD = """\t.section .rodata
\t.p2align 4
fifty:\t.double 50.0, 0.0
sign:\t.quad 0x8000000000000000, 0
\t.bss
\t.p2align 6
kept:\t.zero 64
\t.text
"""


def _assembly(frame: int, where: str) -> str:
    """W1's integrand as gcc compiles it, but with this frame and the two doubles kept ``where``."""
    at = {0: "0(%rsp)", 8: "8(%rsp)"} if where == "stack" else {0: "kept(%rip)", 8: "kept+8(%rip)"}
    name = f"osc_{frame}_{where}"
    lines = [f".globl {name}", f".type {name},@function", ".p2align 4", f"{name}:", f"sub ${frame},%rsp",
             "vmovsd %xmm0,%xmm0,%xmm1", "vmulsd fifty(%rip),%xmm0,%xmm0", f"vmovsd %xmm1,{at[8]}",
             "call sin@PLT", f"vmovsd {at[8]},%xmm1", f"vmovsd %xmm0,{at[0]}", "vxorpd sign(%rip),%xmm1,%xmm0",
             "vmulsd %xmm1,%xmm0,%xmm0", "call exp@PLT", f"vmovsd {at[0]},%xmm2", f"add ${frame},%rsp",
             "vmulsd %xmm2,%xmm0,%xmm0", "vmulsd %xmm2,%xmm0,%xmm0", "ret"]
    return "\n".join(lines) + "\n"


def build(folder: Path) -> dict[str, tuple[str, str]]:
    """The native builds, by label: ``library:function`` and the function's frame size."""
    (folder / "osc.c").write_text(SOURCE)
    builds = {}
    for pad in PADS:
        lib = folder / f"osc_pad{pad}.so"
        subprocess.run(["gcc", "-O3", "-march=native", "-shared", "-fPIC", f"-DPAD={pad}", str(folder / "osc.c"),
                        "-o", str(lib), "-lm"], check=True)
        code = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(lib)], capture_output=True, text=True).stdout
        frame = re.search(r"<osc>:\n\s*\w+:\s*sub\s+\$(0x[0-9a-f]+),%rsp", code)
        builds[f"C, {pad} bytes of padding"] = (f"{lib}:osc", f"{int(frame.group(1), 16)} bytes" if frame else "?")
    if platform.machine() == "x86_64" and "avx" in Path("/proc/cpuinfo").read_text():
        (folder / "frames.s").write_text(ASSEMBLY_HEAD + "".join(_assembly(*f) for f in FRAMES)
                                         + '.section .note.GNU-stack,"",@progbits\n')
        lib = folder / "frames.so"
        subprocess.run(["gcc", "-shared", "-fPIC", str(folder / "frames.s"), "-o", str(lib), "-lm"], check=True)
        for frame, where in FRAMES:
            builds[f"assembly, doubles kept in {'the frame' if where == 'stack' else 'a static buffer'}"
                   f" ({frame})"] = (f"{lib}:osc_{frame}_{where}", f"{frame} bytes")
    return builds


def child(libraries: list[str], repeats: int, cache: str) -> dict[str, tuple[float, float]]:
    """Median ms per quad call of each implementation, interleaved, in this process, and its integral."""
    import ctypes

    from scipy import LowLevelCallable, integrate

    import capsules

    calls = {}
    for name in libraries:
        lib, symbol = name.rsplit(":", 1)
        function = getattr(ctypes.CDLL(lib), symbol)
        function.restype, function.argtypes = ctypes.c_double, [ctypes.c_double]
        calls[name] = LowLevelCallable(function)
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


def table(runs: list[dict], builds: dict[str, tuple[str, str]], repeats: int) -> str | None:
    """The markdown report, or None (said on stderr) where a build's integral differs from the unpadded C's."""
    labels = {lib: label for label, (lib, _) in builds.items()}
    frames = dict(builds.values())
    plain = next(iter(builds.values()))[0]
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
        libraries = [lib for lib, _ in builds.values()]
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
