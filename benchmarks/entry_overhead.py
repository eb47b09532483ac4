"""What the entry points' safety checks cost: the same build with and without them, on W1-W5.

    python benchmarks/entry_overhead.py [--repeats 31] [--markdown FILE]

Every generated entry point but a straight integrand's (no loop, nothing
called but math) looks for a pending signal every 256 calls (Ctrl-C) and,
after a failure, returns at once while the error is pending.
This builds benchmarks/kernels with capsules, then compiles the very same
generated C++ again with those two checks deleted (the exact compiler
command of the build log), and times both against the hand-written C in one
interleaved run.
"""

from __future__ import annotations

import argparse
import ctypes
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from scipy import LowLevelCallable

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness as H  # noqa: E402

CHECKS = re.compile(r"^\s*if \(__builtin_expect\(capsules_rt::(due\w*).*\n", re.MULTILINE)
UNCHECKED = "capsules, entry checks deleted"


def unchecked_module(module: Any, work: Path) -> dict[str, Any]:
    """The module's capsules from its own C++ minus the checks, compiled with its own command."""
    entry = module.entry
    cpp_text, count = CHECKS.subn("", (entry.directory / f"{entry.module_name}.cpp").read_text())
    if count > len(module):  # a straight integrand has none (capsules.generate.entries)
        raise SystemExit(f"expected at most one check per entry point in {entry.module_name}.cpp, found {count}")
    cpp, binary = work / f"{entry.module_name}.cpp", work / f"{entry.module_name}{entry.binary.name[len(entry.module_name):]}"
    cpp.write_text(cpp_text)
    command = shlex.split((entry.directory / "build.log").read_text().splitlines()[0])
    source = next(i for i, arg in enumerate(command) if arg.endswith(".cpp"))
    subprocess.run([*command[:source], str(cpp), "-o", str(binary), *command[source + 3 :]], check=True)
    H._import_path(entry.module_name, binary)  # pythran's module init (numpy), then the capsules
    fn = getattr(ctypes.PyDLL(str(binary)), "capsules_exports_v1")
    fn.restype = ctypes.py_object
    return {name: capsule for name, capsule, _kind in fn()}


class UncheckedProvider(H.Provider):
    name = UNCHECKED

    def __init__(self, capsules: dict[str, dict[str, Any]]) -> None:
        super().__init__()
        self.capsules = capsules

    def callback(self, kernel: str, user_data: tuple[float, ...] | None = None) -> Any:
        capsule = self.capsules[H.CAPSULES_MODULES[kernel]][kernel]
        data = self._data(user_data)
        pointer = None if data is None else ctypes.c_void_p(data.ctypes.data)
        return LowLevelCallable(capsule, pointer, H.SIGNATURES[kernel])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=31)
    parser.add_argument("--markdown")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="capsules-entry-") as name:
        tmp = Path(name)
        lib, _, _ = H.build_c(tmp)
        mods, _ = H.load_capsules()
        unchecked = {group: unchecked_module(mod, tmp) for group, mod in mods.items()}
        st = H.Setup([H.CProvider(lib), H.CapsulesProvider(mods), UncheckedProvider(unchecked)],
                     H.CProvider(lib, noop=True))
        sizes = H.Sizes(repeats=args.repeats)
        rows = []
        for w in H.make_workloads(st, sizes, None, python=False):
            by = {r.impl: r for r in H.measure(w, sizes.repeats)}
            with_, without = by["capsules"], by[UNCHECKED]
            same = np.array_equal(np.asarray(with_.value), np.asarray(without.value))
            rows.append((w.key, with_.median / without.median, with_.minimum / without.minimum,
                         with_.median / by["C (ctypes)"].median, same))
    lines = ["# Cost of the entry points' checks (Ctrl-C, stop after a failure)", "",
             f"{args.repeats} interleaved repeats; ratio of capsules' build to the same C++ with the checks deleted.",
             "", "| workload | median ratio | min ratio | capsules / C (median) | results identical |",
             "|---|---|---|---|---|"]
    lines += [f"| {k} | {m:.3f} | {n:.3f} | {c:.3f} | {'yes' if s else 'NO'} |" for k, m, n, c, s in rows]
    lines += ["", f"Geometric mean of the median ratios: "
              f"{statistics.geometric_mean([r[1] for r in rows]):.3f}", ""]
    text = "\n".join(lines)
    H.report(text, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
