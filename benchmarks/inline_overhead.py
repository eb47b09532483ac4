"""What an inline kernel costs when its build is cached, against loading the same kernel from a file.

    python benchmarks/inline_overhead.py [--repeats 31] [--markdown FILE]

Two scripts with the same kernel: one decorates it (``@capsules.integrand``),
the other loads a kernel file (``capsules.load``).  Each run is a fresh
interpreter that imports capsules and SciPy first, then times, with
``time.perf_counter``, what differs: importing the script module and its
kernel's first ``lowlevel()`` for the inline form; ``capsules.load()`` and the
first ``lowlevel()`` for the file.  Both builds are in the cache beforehand
(a private one, under the system's temporary directory), and the two forms
alternate run by run so that drifts of the machine hit both alike.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

KERNEL = """
import math

SCALE = 0.5


def damp(t):
    return math.exp(-SCALE * t * t)
"""

INLINE = KERNEL.replace("import math\n", "import math\n\nimport capsules\n") + """

@capsules.integrand("x, y; a, b")
def wave(x, y, a, b):
    return damp(x) * math.cos(a * x + b * y)
"""

FILE = KERNEL + """

#capsules integrand wave(x, y; a, b)
def wave(x, y, a, b):
    return damp(x) * math.cos(a * x + b * y)
"""

TIMED = {
    "inline": """
        start = time.perf_counter()
        import inline_script
        inline_script.wave.lowlevel(a=1.0, b=2.0)
    """,
    "file": """
        start = time.perf_counter()
        module = capsules.load(os.path.join(HERE, "file_kernel.py"))
        module.wave.lowlevel(a=1.0, b=2.0)
    """,
}

RUN = """
import os, sys, time
HERE = {here!r}
sys.path.insert(0, HERE)
import capsules, scipy.integrate, scipy.ndimage
{timed}
print(time.perf_counter() - start)
"""


def once(form: str, here: Path, env: dict[str, str]) -> float:
    code = RUN.format(here=str(here), timed=textwrap.dedent(TIMED[form]))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(done.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=31)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        here = Path(work)
        (here / "inline_script.py").write_text(INLINE)
        (here / "file_kernel.py").write_text(FILE)
        env = {**os.environ, "CAPSULES_CACHE": str(here / "cache")}
        for form in TIMED:  # build both, and warm the file system cache
            once(form, here, env)
        times: dict[str, list[float]] = {form: [] for form in TIMED}
        for i in range(args.repeats):
            for form in (TIMED if i % 2 == 0 else reversed(list(TIMED))):
                times[form].append(once(form, here, env))
    report = _report(times)
    print(report)
    if args.markdown:
        args.markdown.write_text(report + "\n")


def _report(times: dict[str, list[float]]) -> str:
    med = {form: statistics.median(values) * 1e3 for form, values in times.items()}
    quartiles = {form: statistics.quantiles([v * 1e3 for v in values], n=4) for form, values in times.items()}
    pairs = [(i - f) * 1e3 for i, f in zip(times["inline"], times["file"])]
    rows = [
        "| form | median (ms) | quartiles (ms) |",
        "|---|---|---|",
        *(f"| {form} | {med[form]:.2f} | {quartiles[form][0]:.2f} - {quartiles[form][2]:.2f} |" for form in times),
    ]
    rows.append("")
    rows.append(
        f"inline - file, paired by run: median {statistics.median(pairs):+.2f} ms "
        f"({len(pairs)} pairs, quartiles {statistics.quantiles(pairs, n=4)[0]:+.2f} to "
        f"{statistics.quantiles(pairs, n=4)[2]:+.2f} ms)"
    )
    return "\n".join(rows)


if __name__ == "__main__":
    main()
