"""Experiment: which extra compiler flags should capsules build with by default?

Builds the modules of benchmarks/kernels that the chosen workloads use once
per flag set (through the CAPSULES_CXXFLAGS variable, which capsules appends
to its default flags), then times the workloads (by default W3a, W4 and W3b,
the filters) for every build, interleaved with the hand-written C callback,
and reports each build's median time as a ratio to C.

    python benchmarks/flags.py
    python benchmarks/flags.py --quick
    python benchmarks/flags.py --set= --set=-funroll-loops --workloads W3a,W4 --repeats 31 --json out.json
    python benchmarks/flags.py --set= --set=-fno-plt --workloads W1,W2

A build's results must match C to 1e-12 (relative); flags that change more
than rounding (such as -ffast-math) are not candidates and are flagged.
The "replica" sets add a macro nothing reads: the same code built again
under another module name, which shows how far two builds of identical
code differ: the noise floor of this table.  Their instructions sit at the
same offsets; to move the code itself, add -falign-functions=32 or =64.
The repeats run in blocks, each block in another order of the builds, so no
build always follows the same neighbour; the spread column gives the lowest
and highest of the per-block ratios.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness as H  # noqa: E402

DEFAULT_SETS = [
    "",
    "-DCAPSULES_BENCH_REPLICA=1",
    "-DCAPSULES_BENCH_REPLICA=2",
    "-falign-loops=32",
    "-falign-loops=64",
    "-funroll-loops",
    "-fno-semantic-interposition",
    "-funroll-loops -fno-semantic-interposition",
    "-mprefer-vector-width=256",
    "-ffp-contract=fast",
]
DEFAULT_WORKLOADS = "W3a,W4,W3b"
NOTES = {
    "-ffp-contract=fast": "fuses multiply-adds: undoes capsules' bit-for-bit agreement with plain Python",
    "-mprefer-vector-width=256": "gcc 12 tunes -march=native on this CPU as 'generic', which lets it use 512-bit "
    "vectors",
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def label(flags: str) -> str:
    words = flags.split()
    replica = [w.rsplit("=", 1)[-1] for w in words if "CAPSULES_BENCH_REPLICA" in w]
    rest = " ".join(w for w in words if "CAPSULES_BENCH_REPLICA" not in w)
    if not replica:
        return rest or "(none: the defaults)"
    if not rest:
        return f"(none: replica {replica[0]}, the same code built again)"
    return f"{rest} (replica {replica[0]}, the same code built again)"


def modules_for(keys: list[str]) -> list[str]:
    """The capsules modules (benchmarks/kernels) that the workloads ``keys`` call."""
    return sorted({H.CAPSULES_MODULES[kernel] for key in keys for kernel in KERNELS[key]})


def build_variants(flag_sets: list[str], modules: list[str],
                   cache: Path) -> list[tuple[str, H.CapsulesProvider, float]]:
    """Build and load ``modules`` once per flag set: (flags, provider, build seconds of all)."""
    import capsules

    paths = [H.KERNELS / f"{name}.py" for name in modules]
    saved = os.environ.get("CAPSULES_CXXFLAGS")
    out = []
    try:
        for flags in flag_sets:
            os.environ["CAPSULES_CXXFLAGS"] = flags
            results = capsules.build(paths, cache=cache)
            loaded = {name: capsules.load(path, cache=cache) for name, path in zip(modules, paths, strict=True)}
            seconds = sum(r.seconds if r.built else float(r.entry.data.get("build_seconds", 0.0)) for r in results)
            built = sum(r.built for r in results)
            out.append((flags, H.CapsulesProvider(loaded, name=label(flags)), seconds))
            log(f"{label(flags)}: {built} built, {len(results) - built} cached ({seconds:.1f} s)")
    finally:
        if saved is None:
            os.environ.pop("CAPSULES_CXXFLAGS", None)
        else:
            os.environ["CAPSULES_CXXFLAGS"] = saved
    return out


def measure(st: H.Setup, sizes: H.Sizes, keys: list[str], blocks: int) -> dict[str, dict[str, list[H.Result]]]:
    """Per workload and build, one Result per block; each block starts the interleaving one build later."""
    measured: dict[str, dict[str, list[H.Result]]] = {}
    for key in keys:
        (w,) = H.make_workloads(st, sizes, {key}, python=False)
        measured[key] = {case.impl: [] for case in w.cases}
        for block in range(blocks):
            if block:
                w.cases = w.cases[1:] + w.cases[:1]
            for r in H.measure(w, sizes.repeats):
                measured[key][r.impl].append(r)
        log(f"{key}: {len(w.cases)} callbacks x {blocks} block(s) x {sizes.repeats} repeats")
    return measured


def summarize(results: list[H.Result], c: list[H.Result], floor: list[H.Result], is_floor: bool) -> dict[str, Any]:
    med, c_med, f_med = (statistics.median(x for r in rs for x in r.samples) for rs in (results, c, floor))
    low, c_low = (min(x for r in rs for x in r.samples) for rs in (results, c))
    devs = [r.deviation for r in results if r.deviation is not None]
    return {
        "median_s": med,
        "min_s": low,
        "ratio_to_c": med / c_med,
        "ratio_to_c_min": low / c_low,
        "block_ratios": [r.median / cr.median for r, cr in zip(results, c, strict=True)],
        "above_floor": (med - f_med) / (c_med - f_med) if not is_floor and c_med > f_med else None,
        "deviation": max(devs) if devs else None,
        "samples_s": [r.samples for r in results],
    }


TITLES = {
    "W1": "quad of exp(-x^2) sin^2(50x), limit=1000",
    "W2": "nquad of the 3-D Genz oscillatory integrand",
    "W3a": "generic_filter, local range, {filter_n}x{filter_n}, size 5",
    "W3b": "generic_filter, local variance, {filter_n}x{filter_n}, size 5",
    "W4": "generic_filter1d, moving average of length 9, {filter1d_n}x{filter1d_n}",
    "W5": "geometric_transform, rotation by 30 degrees, order=1, {rotate_n}x{rotate_n}",
}
KERNELS = {"W1": ["osc"], "W2": ["genz"], "W3a": ["local_range"], "W3b": ["local_variance"],
           "W4": ["moving_average"], "W5": ["rotate"]}


def markdown(report: dict[str, Any]) -> str:
    from capsules.build import NATIVE_FLAGS

    sizes, keys, rows = report["sizes"], report["workloads"], report["rows"]
    lines = ["# capsules build flags against hand-written C", ""]
    lines += H.machine_markdown(report["machine"])
    lines += [
        f"- {report['blocks']} block(s) x {sizes['repeats']} interleaved repeats, each block in another order of "
        "the builds; " + "; ".join(f"{k}: {TITLES[k].format(**sizes)}" for k in keys),
        f"- capsules' defaults: {' '.join(NATIVE_FLAGS)} (after pythran's own flags); each set below is appended "
        "through CAPSULES_CXXFLAGS. C: gcc -O3 -march=native (GNU C, so multiply-adds are fused).",
        f"- run took {report['seconds']:.0f} s",
        *(f"- note: {n}" for n in report["notes"]),
        "",
        "## Ratio to C (lower is faster)",
        "",
        "*median*: median over all blocks / C's; *min*: fastest sample / C's fastest, which other work on the "
        "machine disturbs less.",
        "",
        "| CAPSULES_CXXFLAGS | build s | " + " | ".join(f"{k} median | {k} min" for k in keys)
        + " | max deviation | note |",
        "|---|---|" + "---|---|" * len(keys) + "---|---|",
    ]
    for row in rows:
        devs = [row[k]["deviation"] for k in keys if row[k]["deviation"] is not None]
        dev = max(devs) if devs else None
        cells = [row["label"], "-" if row["build_s"] is None else f"{row['build_s']:.1f}"]
        cells += [f"{row[k][q]:.3f}" for k in keys for q in ("ratio_to_c", "ratio_to_c_min")]
        cells += [H.fmt_dev(dev) + ("" if dev is None or dev <= H.RTOL else " **MISMATCH**"), row["note"]]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for k in keys:
        lines += [f"## {k}: {TITLES[k].format(**sizes)}", "",
                  "*spread*: lowest and highest per-block ratio; *above floor*: (median - floor) / (C - floor), "
                  "the kernel's own cost relative to C's.", "",
                  "| CAPSULES_CXXFLAGS | min ms | median ms | ratio to C | spread | above floor |",
                  "|---|---|---|---|---|---|"]
        for row in rows:
            r = row[k]
            spread = f"{min(r['block_ratios']):.3f}-{max(r['block_ratios']):.3f}"
            above = "-" if r["above_floor"] is None else f"{r['above_floor']:.3f}"
            lines.append(f"| {row['label']} | {H.fmt_time(r['min_s'])} | {H.fmt_time(r['median_s'])} | "
                         f"{r['ratio_to_c']:.3f} | {spread} | {above} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", action="append", dest="sets", metavar="FLAGS",
                        help="a flag set to try, repeatable; write --set=-funroll-loops (with '='), and --set= "
                             "for the defaults (default: a built-in list)")
    parser.add_argument("--workloads", default=DEFAULT_WORKLOADS, help=f"default {DEFAULT_WORKLOADS}")
    parser.add_argument("--repeats", type=int, help="interleaved repeats per block (default 15, quick 3)")
    parser.add_argument("--blocks", type=int, help="blocks of repeats, each in another order (default 4, quick 1)")
    parser.add_argument("--quick", action="store_true", help="small images, 3 repeats, 1 block")
    parser.add_argument("--cache", type=Path, default=H.CACHE / "flags", help="capsules cache for these builds")
    parser.add_argument("--json", metavar="FILE")
    parser.add_argument("--markdown", metavar="FILE")
    args = parser.parse_args(argv)

    keys = [k.strip() for k in args.workloads.split(",") if k.strip()]
    unknown = [k for k in keys if k not in TITLES]
    if unknown:
        parser.error(f"unknown workload(s) {', '.join(unknown)}; choose from {', '.join(TITLES)}")
    flag_sets = args.sets if args.sets is not None else DEFAULT_SETS
    if len({label(f) for f in flag_sets}) < len(flag_sets):
        parser.error("two flag sets are the same set")
    sizes = H.Sizes.quick() if args.quick else H.Sizes()
    sizes.repeats = args.repeats or (3 if args.quick else 15)
    blocks = args.blocks or (1 if args.quick else 4)
    report: dict[str, Any] = {"machine": H.machine(), "sizes": vars(sizes), "blocks": blocks,
                              "workloads": keys, "flag_sets": flag_sets, "notes": H.compiler_env_notes()}
    started = time.perf_counter()
    with H.tempdir("capsules-flags-") as tmp:
        lib, _, _ = H.build_c(Path(tmp))
        variants = build_variants(flag_sets, modules_for(keys), args.cache)
        c, floor = H.CProvider(lib), H.CProvider(lib, noop=True)
        measured = measure(H.Setup([c, *(v[1] for v in variants)], floor), sizes, keys, blocks)

    rows = []
    names = [("hand-written C (gcc -O3 -march=native)", c.name, None, ""),
             *((v[1].name, v[1].name, v[2], NOTES.get(v[0], "")) for v in variants),
             ("floor (no-op C callback)", floor.name, None, "SciPy's own cost")]
    for shown, impl, build_s, note in names:
        row: dict[str, Any] = {"label": shown, "build_s": build_s, "note": note}
        for key in keys:
            m = measured[key]
            row[key] = summarize(m[impl], m[c.name], m[floor.name], impl == floor.name)
        rows.append(row)
    report["rows"] = rows
    report["seconds"] = time.perf_counter() - started
    report["machine"]["loadavg_at_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())

    text = markdown(report)
    H.report(text, args.markdown)
    if args.json:
        H.write_json(args.json, report)
    bad = [row["label"] for row in rows for k in keys if row[k]["deviation"] is not None
           and row[k]["deviation"] > H.RTOL]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
