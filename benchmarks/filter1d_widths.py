"""W4 at other window lengths: generic_filter1d's moving average, from 3 to 25 points.

    python benchmarks/filter1d_widths.py [--repeats 11] [--widths 3,5,7,9,15,25] [--markdown FILE]
    python benchmarks/filter1d_widths.py --set= --set=-freorder-blocks-algorithm=simple

run.py times W4 at one length, 9.  The kernel's inner loop runs that many
times per output, and where its last iterations and their branches land in
the code depends on the compiler, its flags and the length.  This times
hand-written C, numba and capsules (its defaults, or each CAPSULES_CXXFLAGS
set given with --set, with a replica of each: the same code built again) at
several lengths, interleaved, each length a run of its own, and reports
every median as a ratio to C.  Every result must match C to 1e-12.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness as H  # noqa: E402
from flags import build_variants  # noqa: E402


def with_replicas(flag_sets: list[str]) -> list[str]:
    """Each flag set, then the same set built again under another macro (another build of the same code)."""
    return [s for flags in flag_sets for s in (flags, f"{flags} -DCAPSULES_BENCH_REPLICA=1".strip())]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", action="append", dest="sets", metavar="FLAGS",
                        help="a CAPSULES_CXXFLAGS set, repeatable; --set= for the defaults (the default)")
    parser.add_argument("--widths", default="3,5,7,9,15,25")
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--size", type=int, default=2000, help="the image is size x size (default 2000, as W4)")
    parser.add_argument("--cache", type=Path, default=H.CACHE / "flags", help="capsules cache for these builds")
    parser.add_argument("--markdown", metavar="FILE")
    args = parser.parse_args(argv)
    widths = [int(w) for w in args.widths.split(",")]
    started = time.perf_counter()
    with H.tempdir("capsules-widths-") as tmp:
        lib, _, _ = H.build_c(Path(tmp))
        providers: list[H.Provider] = [H.CProvider(lib)]
        try:
            providers.append(H.NumbaProvider(H.load_numba()[0]))
        except ImportError:
            print("numba is not installed: left out", file=sys.stderr)
        providers += [v[1] for v in build_variants(with_replicas(args.sets or [""]), ["filters"], args.cache)]
        image = np.random.default_rng(7).random((args.size, args.size))
        rows = []
        for width in widths:
            cases = [H.Case(p.name, functools.partial(ndimage.generic_filter1d, image,
                                                      p.callback("moving_average"), width)) for p in providers]
            results = H.measure(H.Workload(f"W4, {width} points", "", cases), args.repeats)
            bad = [r.impl for r in results if r.deviation is not None and r.deviation > H.RTOL]
            if bad:
                raise SystemExit(f"width {width}: {', '.join(bad)} differ from C by more than {H.RTOL}")
            medians = {r.impl: statistics.median(r.samples) for r in results}
            rows.append((width, medians))
    names = [p.name for p in providers]
    lines = ["# W4 at other window lengths", "", *H.machine_markdown(H.machine()),
             f"- generic_filter1d moving average on a {args.size}x{args.size} image; {args.repeats} interleaved "
             f"repeats per length; median time over C's median; run took {time.perf_counter() - started:.0f} s", "",
             "| points | C, ms | " + " | ".join(names[1:]) + " |", "|---|---|" + "---|" * (len(names) - 1)]
    for width, medians in rows:
        c = medians[names[0]]
        lines.append(f"| {width} | {c * 1e3:.2f} | " + " | ".join(f"{medians[n] / c:.3f}" for n in names[1:]) + " |")
    text = "\n".join(lines) + "\n"
    H.report(text, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
