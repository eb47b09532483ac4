"""Benchmarks: capsules side by side with every peer, on the same SciPy workloads.

    python benchmarks/run.py                 # full run, markdown table on stdout
    python benchmarks/run.py --quick         # short smoke run (well under a minute)
    python benchmarks/run.py --json out.json --markdown out.md --plot out.png
    python benchmarks/run.py --compare benchmarks/results/latest.json   # the regression guard

Implementations: capsules (default flags), hand-written C through ctypes,
plain (gcc -O3 -march=native, the reference of the cross-check) and expert
(capsules' flags and the hints in benchmarks/c/kernels.c), cffi API mode,
Cython, numba @cfunc, pure-Python callbacks, and the floor (the same SciPy
call with a do-nothing C callback).  Peers that are not installed are
skipped with a note.  Each round runs them in an order shuffled from
--seed; each ratio is over the fastest C of its workload, with a bootstrap
interval (benchmarks/stats.py).  Every result is checked against the plain
C result (max |a - c| / max |c| <= 1e-12); the exit status is 1 if one is
not, or if --compare finds a ratio that moved.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness as H  # noqa: E402
import placement  # noqa: E402
import stats  # noqa: E402
import table  # noqa: E402

# rounds per workload in each fresh process of the placement runs
PLACEMENT_REPEATS = 7

ORDER = [
    H.PLAIN_C, H.EXPERT_C, "cffi (API mode)", "Cython", "capsules", H.PREBUILT, H.FIXED, H.FIXED_C, "numba @cfunc",
    "pure Python", "floor (no-op C)",
]
NUMBA = "numba @cfunc"
ABOVE_FLOOR = ("W3a", "W3b", "W4")  # workloads whose floor is the same SciPy work minus the kernel


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- run time


@dataclass(frozen=True)
class Method:
    """How the rounds are ordered and the intervals drawn: both from one recorded seed."""

    seed: int
    replicates: int = stats.REPLICATES

    def generators(self) -> tuple[np.random.Generator, np.random.Generator]:
        """The generator of the rounds' order, and the bootstrap's: independent streams of the seed."""
        order, bootstrap = np.random.SeedSequence(self.seed).spawn(2)
        return np.random.default_rng(order), np.random.default_rng(bootstrap)


def run_workloads(st: H.Setup, sizes: H.Sizes, only: set[str] | None, method: Method) -> list[dict[str, Any]]:
    order, bootstrap = method.generators()
    out = []
    for w in H.make_workloads(st, sizes, only):
        start, load = time.perf_counter(), os.getloadavg()[0]
        results = H.measure(w, sizes.repeats, order)
        out.append(_workload_report(w, results, bootstrap, method.replicates))
        out[-1]["loadavg_1min_at_start"] = load
        log(f"{w.key}: {len(results)} implementations x {sizes.repeats} repeats in "
            f"{time.perf_counter() - start:.1f} s")
    return out


def _workload_report(w: H.Workload, results: list[H.Result], rng: np.random.Generator,
                     replicates: int) -> dict[str, Any]:
    by = {r.impl: r for r in results}
    c, floor, caps = by[H.PLAIN_C], by.get("floor (no-op C)"), by.get("capsules")
    samples = {r.impl: r.samples for r in results}
    to_fastest = stats.ratios(samples, H.C_BASELINES, rng, replicates)
    to_c = stats.ratios(samples, [H.PLAIN_C], rng, replicates)
    # paired with numba directly: tighter than setting two intervals against the fastest C side by side
    to_numba = stats.ratios(samples, [NUMBA], rng, replicates) if NUMBA in samples else {}
    rows = []
    for r in results:
        above = None
        if w.key in ABOVE_FLOOR and floor is not None and r is not floor and c.median > floor.median:
            above = (r.median - floor.median) / (c.median - floor.median)
        rows.append({
            "impl": r.impl,
            "min_s": r.minimum,
            "median_s": r.median,
            "ratio_to_fastest_c": to_fastest[r.impl].value,
            "interval_to_fastest_c": [to_fastest[r.impl].low, to_fastest[r.impl].high],
            "ratio_to_c": to_c[r.impl].value,
            "interval_to_c": [to_c[r.impl].low, to_c[r.impl].high],
            **({"ratio_to_numba": to_numba[r.impl].value,
                "interval_to_numba": [to_numba[r.impl].low, to_numba[r.impl].high]} if to_numba else {}),
            "ratio_to_c_min": r.minimum / c.minimum,
            "ratio_above_floor": above,
            "deviation": r.deviation,
            "ok": r.deviation is None or r.deviation <= H.RTOL,
            "bitwise_equal_to_capsules": None if caps is None or r is caps or not r.comparable
            else _same(r.value, caps.value),
            "note": r.note,
            "samples_s": r.samples,
        })
    return {"key": w.key, "title": w.title, "floor_note": w.floor_note, "fastest_c": fastest_c(results).impl,
            "results": rows}


def fastest_c(results: list[H.Result]) -> H.Result:
    """The fastest C build of a workload by median, in this run: plain, expert, cffi or Cython."""
    return min((r for r in results if r.impl in H.C_BASELINES), key=lambda r: r.median)


def _same(a: Any, b: Any) -> bool:
    import numpy as np

    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and bool(np.array_equal(a, b))


# --------------------------------------------------------------------------- compile and rebuild


def _capsules_cli(args: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "capsules", *args], cwd=H.REPO, env=env,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(f"capsules {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return seconds, proc.stdout


def capsules_compile_times(tmp: Path, env: dict[str, str]) -> dict[str, Any]:
    """`capsules build benchmarks/kernels --force -j 1` into a fresh cache: seconds per module."""
    cache = tmp / "compile-cache"
    wall, text = _capsules_cli(["build", str(H.KERNELS), "--cache", str(cache), "--force", "-j", "1"], env)
    modules = {}
    for line in text.splitlines():
        found = re.match(r"built\s+(\S+)\s+\(([\d.]+) s\)", line)
        if found:
            modules[Path(found.group(1)).stem] = float(found.group(2))
    return {"modules": modules, "wall_s": wall}


def noop_rebuild(env: dict[str, str], repeats: int, jobs: int) -> dict[str, Any]:
    """`capsules build kernels/` once to fill the cache, then again: the second is timed (a subprocess each)."""
    cache = str(H.CAPSULES_CACHE)
    first, _ = _capsules_cli(["build", "kernels", "--cache", cache, "-j", str(jobs)], env)
    walls, reported, text = [], [], ""
    for _ in range(repeats):
        wall, text = _capsules_cli(["build", "kernels", "--cache", cache], env)
        walls.append(wall)
        found = re.search(r"in ([\d.]+) s", text)
        reported.append(float(found.group(1)) if found else None)
    return {"first_wall_s": first, "walls_s": walls, "median_wall_s": statistics.median(walls),
            "reported_s": reported, "output": text.strip()}


# --------------------------------------------------------------------------- cold start

_COLD = {
    "W1": {
        "prelude": "from scipy import integrate",
        "call": "integrate.quad(f, -10.0, 10.0, limit=1000)",
        "kernel": "osc",
        "module": "quad_integrands",
        "python": "from peers.python_callbacks import osc as f",
    },
    "W3a": {
        "prelude": "import numpy as np\nfrom scipy import ndimage\nimg = np.random.default_rng(0).random((100, 100))",
        "call": "ndimage.generic_filter(img, f, size=5)",
        "kernel": "local_range",
        "module": "filters",
        "python": "from peers.python_callbacks import local_range as f",
    },
}


def _cold_script(variant: str, scenario: dict[str, str], so: Path) -> str:
    kernel, module = scenario["kernel"], scenario["module"]
    if variant == "capsules":
        body = (f"import capsules\n{scenario['prelude']}\n"
                f"mod = capsules.load({str(H.KERNELS / (module + '.py'))!r}, cache={str(H.CAPSULES_CACHE)!r}, "
                f"build=False)\nf = mod.{kernel}.lowlevel()")
    elif variant.startswith("numba"):
        body = (f"{scenario['prelude']}\nfrom scipy import LowLevelCallable\n"
                f"from peers import {H.NUMBA_MODULES[module]} as mod\n"
                f"f = LowLevelCallable(mod.{kernel}.ctypes, None, {H.SIGNATURES[kernel]!r})")
    elif variant == H.PLAIN_C:
        restype, argtypes = H._c_types()[kernel]
        body = (f"import ctypes\n{scenario['prelude']}\nfrom scipy import LowLevelCallable\n"
                f"fn = ctypes.CDLL({str(so)!r}).{kernel}\n"
                f"fn.restype = ctypes.{restype.__name__}\n"
                f"fn.argtypes = [{', '.join(_ctypes_expr(a) for a in argtypes)}]\n"
                f"f = LowLevelCallable(fn, None, {H.SIGNATURES[kernel]!r})")
    else:  # pure Python
        body = f"{scenario['prelude']}\n{scenario['python']}"
    return (f"import time\nt0 = time.perf_counter()\nimport sys\nsys.path.insert(0, {str(H.HERE)!r})\n"
            f"{body}\n{scenario['call']}\nprint('COLD', time.perf_counter() - t0)\n")


def _ctypes_expr(t: Any) -> str:
    name = t.__name__
    if name.startswith("LP_"):
        return f"ctypes.POINTER(ctypes.{name[3:]})"
    return f"ctypes.{name}"


def cold_start(tmp: Path, env: dict[str, str], so: Path, repeats: int, scenarios: list[str],
               variants: list[str]) -> dict[str, Any]:
    """Fresh interpreters: import + load + lowlevel() + first call, interleaved; seconds in-process and wall."""
    numba_cache = tmp / "numba-cold-cache"
    envs = {
        "numba @cfunc, no cache (compiles)": {**env, "BENCH_NUMBA_CACHE": "0"},
        "numba @cfunc, cache=True (warm)": {**env, "BENCH_NUMBA_CACHE": "1", "NUMBA_CACHE_DIR": str(numba_cache)},
    }
    out: dict[str, Any] = {}
    for key in scenarios:
        scenario = _COLD[key]
        scripts = {v: _cold_script(v, scenario, so) for v in variants}
        for v, script in scripts.items():  # warm-up: fills numba's cache and the OS file cache
            _cold_once(script, envs.get(v, env))
        times: dict[str, list[tuple[float, float]]] = {v: [] for v in variants}
        for _ in range(repeats):
            for v, script in scripts.items():
                times[v].append(_cold_once(script, envs.get(v, env)))
        out[key] = {
            "what": f"`{scenario['call']}` with kernel '{scenario['kernel']}' (module {scenario['module']})",
            "results": {v: {"inproc_s": [t[0] for t in ts], "wall_s": [t[1] for t in ts],
                            "median_inproc_s": statistics.median(t[0] for t in ts),
                            "median_wall_s": statistics.median(t[1] for t in ts)} for v, ts in times.items()},
        }
        log(f"cold start {key}: {len(variants)} variants x {repeats}")
    return out


def _cold_once(script: str, env: dict[str, str]) -> tuple[float, float]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, cwd=H.REPO)
    wall = time.perf_counter() - start
    found = re.search(r"COLD (\S+)", proc.stdout)
    if proc.returncode or not found:
        raise RuntimeError(f"cold-start script failed:\n{script}\n{proc.stdout}\n{proc.stderr}")
    return float(found.group(1)), wall


# --------------------------------------------------------------------------- report


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else H.fmt_time(seconds)


def _ratio(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.3g}" if x < 100 else f"{x:.0f}"


def _interval(bounds: list[float]) -> str:
    return f"({_ratio(bounds[0])}-{_ratio(bounds[1])})"


def _prebuilt_markdown(report: dict[str, Any]) -> list[str]:
    """The portable multi-level build against the native one, and what each level adds to a wheel."""
    info = report.get("compile", {}).get("peers", {}).get(H.PREBUILT)
    if not info:
        return []
    ratios = []
    for w in report["workloads"]:
        by = {r["impl"]: r for r in w["results"]}
        if H.PREBUILT in by and "capsules" in by:
            ratios.append(f"{w['key']} {by[H.PREBUILT]['median_s'] / by['capsules']['median_s']:.3f}")
    lines = ["## Prebuilt for every CPU level (as in a wheel)", "",
             f"Median time of the prebuilt build over the native (`-march=native`) build, same run: "
             f"{', '.join(ratios)}. Level this CPU ran, and bytes per level in a wheel:", "",
             "| module | level run | " + " | ".join(sorted(next(iter(info.values()))["bytes"])) + " |",
             "|---|---|" + "---|" * len(next(iter(info.values()))["bytes"])]
    for module, m in info.items():
        lines.append(f"| {module} | {m['level']} | " + " | ".join(str(m["bytes"][k]) for k in sorted(m["bytes"])) + " |")
    return lines + [""]


def markdown(report: dict[str, Any]) -> str:
    lines = ["# capsules benchmarks", ""]
    lines += H.machine_markdown(report["machine"])
    sizes = report["sizes"]
    method, git = report["method"], report["git"]
    lines += [f"- mode: {report['mode']}, {sizes['repeats']} interleaved rounds per workload, each in its own "
              f"order (seed {method['seed']}); run took {report['seconds']:.0f} s",
              f"- commit {git['commit']}{' with local changes' if git['dirty'] else ''}", "",
              "## Headline", "", table.render(report)]

    impls = ORDER  # a peer that was skipped keeps its column, marked "skipped"
    lines += ["## Run time: ratio to the fastest C (medians)", "",
              "Each cell is the median time of the implementation divided by the median time of the fastest C "
              "build of that workload in this run (lower is faster): the fastest of plain C, expert C, cffi and "
              "Cython, named in the second column with its median in ms per SciPy call.", ""]
    header = ["workload", "fastest C", "ms", *impls]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for w in report["workloads"]:
        by = {r["impl"]: r for r in w["results"]}
        cells = [w["key"], w["fastest_c"], _ms(by[w["fastest_c"]]["median_s"])]
        cells += [_ratio(by[i]["ratio_to_fastest_c"]) if i in by else "skipped" for i in impls]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for w in report["workloads"]:
        lines.append(f"- **{w['key']}**: {w['title']}")
    lines.append("")
    lines += _placement_markdown(report.get("placement"))

    lines += ["## Details", "",
              "Times in ms per SciPy call at the workload's full size. *to fastest C*: medians, over the "
              "fastest C's, and the 95% interval (a paired bootstrap over the rounds, "
              f"B = {report['method']['bootstrap_replicates']}); *ratio to C*: medians, over plain C's; *(mins)*: the "
              "fastest sample over plain C's fastest, less sensitive to other work on the machine. "
              "*above floor*: (impl - floor) / (C - floor) of the medians, "
              "the kernel's own cost relative to C's, where the floor does the same SciPy work minus the kernel "
              "(W3, W4). *deviation*: max |impl - C| / max |C| over the result.", "",
              "| workload | implementation | min | median | to fastest C | ratio to C | ratio to C (mins) "
              "| above floor | deviation | note |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for w in report["workloads"]:
        for r in sorted(w["results"], key=lambda r: ORDER.index(r["impl"]) if r["impl"] in ORDER else 99):
            note = r["note"]
            if r["impl"].startswith("floor"):
                note = w["floor_note"]
            dev = H.fmt_dev(r["deviation"]) + ("" if r["ok"] else " **MISMATCH**")
            lines.append(f"| {w['key']} | {r['impl']} | {_ms(r['min_s'])} | {_ms(r['median_s'])} | "
                         f"{_ratio(r['ratio_to_fastest_c'])} {_interval(r['interval_to_fastest_c'])} | "
                         f"{_ratio(r['ratio_to_c'])} | {_ratio(r['ratio_to_c_min'])} | "
                         f"{_ratio(r['ratio_above_floor'])} | {dev} | {note} |")
    lines.append("")

    comp = report.get("compile")
    if comp:
        lines += ["## Compile time", "", "| implementation | what | seconds |", "|---|---|---|"]
        cap = comp.get("capsules")
        if cap:
            for module, seconds in cap["modules"].items():
                kernels = ", ".join(k for k, m in H.CAPSULES_MODULES.items() if m == module)
                lines.append(f"| capsules | `capsules build --force -j 1`: {module}.py ({kernels}) | {seconds:.2f} |")
            lines.append(f"| capsules | whole `capsules build benchmarks/kernels --force -j 1` command (wall) | "
                         f"{cap['wall_s']:.2f} |")
        elif comp.get("capsules_skipped"):
            lines.append(f"| capsules | {comp['capsules_skipped']} | - |")
        for name, info in comp["peers"].items():
            if name == H.PREBUILT:
                continue
            lines.append(f"| {name} | {info['what']} | {info['seconds']:.2f} |")
            if "per_module" in info:
                for module, seconds in info["per_module"].items():
                    lines.append(f"| {name} | {module} cfuncs | {seconds:.2f} |")
                lines.append(f"| {name} | `import numba` | {info['import_numba_seconds']:.2f} |")
        lines.append("")

    lines += _prebuilt_markdown(report)
    rebuild = report.get("noop_rebuild")
    if rebuild:
        lines += ["## No-op rebuild", "",
                  f"`capsules build kernels` (the repository's kernels/), run in a subprocess after a first run "
                  f"filled the cache: median wall time {rebuild['median_wall_s']:.2f} s over "
                  f"{len(rebuild['walls_s'])} run(s) (interpreter start included); the command itself reports "
                  f"{', '.join(f'{x:.2f}' for x in rebuild['reported_s'] if x is not None)} s.", ""]

    cold = report.get("cold_start")
    if cold:
        keys = list(cold)
        lines += ["## Cold start", "",
                  "A fresh interpreter per run (median of the runs, ms): the imports, getting the callback "
                  "(capsules: load() of an existing cache entry + lowlevel(); numba: importing the @cfunc module, "
                  "which compiles, or reads numba's cache; C: ctypes.CDLL of the prebuilt library) and the first "
                  "SciPy call. *in-process* is timed from the script's first line; *wall* adds the interpreter's "
                  "own start.", "",
                  "| variant | " + " | ".join(f"{k} in-process | {k} wall" for k in keys) + " |",
                  "|---|" + "---|---|" * len(keys)]
        variants = list(cold[keys[0]]["results"])
        for v in variants:
            cells = []
            for k in keys:
                r = cold[k]["results"].get(v)
                cells += [_ms(r["median_inproc_s"]), _ms(r["median_wall_s"])] if r else ["-", "-"]
            lines.append(f"| {v} | " + " | ".join(cells) + " |")
        lines.append("")
        for k in keys:
            lines.append(f"- **{k}**: {cold[k]['what']}, {len(next(iter(cold[k]['results'].values()))['wall_s'])} "
                         "run(s) per variant, interleaved, after one untimed run each")
        lines.append("")

    lines += ["## Notes", ""]
    lines += [f"- {n}" for n in report["notes"]]
    lines.append("")
    return "\n".join(lines)


def plot(report: dict[str, Any], path: str) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "--plot: matplotlib is not installed; no chart written."
    workloads = report["workloads"]
    impls = [i for i in ORDER if any(r["impl"] == i for w in workloads for r in w["results"])]
    fig, ax = plt.subplots(figsize=(10, 4.8))
    width = 0.8 / max(1, len(impls))
    for j, impl in enumerate(impls):
        xs, ys = [], []
        for i, w in enumerate(workloads):
            for r in w["results"]:
                if r["impl"] == impl:
                    xs.append(i + (j - (len(impls) - 1) / 2) * width)
                    ys.append(r["ratio_to_fastest_c"])
        ax.bar(xs, ys, width, label=impl)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_xticks(range(len(workloads)), [w["key"] for w in workloads])
    ax.set_ylabel("median time / the fastest C (log)")
    ax.set_title(f"capsules benchmarks ({report['mode']}): ratio to the fastest C, lower is faster")
    ax.legend(fontsize=8, ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return None


# --------------------------------------------------------------------------- main


def _placement_markdown(placed: dict[str, Any] | None) -> list[str]:
    """The ratios to the fastest C in fresh processes: median and range over the processes."""
    if not placed:
        return []
    lines = [f"## Across {placed['processes']} fresh processes", "",
             f"The same workloads in {placed['processes']} new interpreters ({placed['repeats']} rounds each), "
             "where the loader and the allocator place code and data anew: per implementation, the median of its "
             "per-process ratio to the fastest C of that process, and the range. The intervals above cover one "
             "process's rounds; this is how far placement moves each figure.", "",
             "| workload | implementation | median | range |", "|---|---|---|---|"]
    for key, impls in placed["ratios"].items():
        for impl, ratios in impls.items():
            lines.append(f"| {key} | {impl} | {statistics.median(ratios):.3g} | {min(ratios):.3g} - {max(ratios):.3g} |")
    return lines + [""]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, 3 repeats, one cold start each")
    parser.add_argument("--repeats", type=int, help="interleaved repeats per workload (default 21, quick 3)")
    parser.add_argument("--only", help="comma-separated workloads, e.g. W1,W3 (default: all)")
    parser.add_argument("--seed", type=int, help="seed of the rounds' order and of the bootstrap (default: drawn, "
                                                 "and recorded in the report)")
    parser.add_argument("--bootstrap", type=int, default=stats.REPLICATES, metavar="B",
                        help=f"bootstrap replicates per workload (default {stats.REPLICATES})")
    parser.add_argument("--compare", metavar="BASELINE.json", help="flag capsules' ratios to the fastest C that "
                        "moved beyond their intervals since BASELINE.json (run.py --json); exit status 1 if one did")
    parser.add_argument("--json", metavar="FILE", help="write every sample and figure as JSON")
    parser.add_argument("--markdown", metavar="FILE", help="write the markdown report to FILE too")
    parser.add_argument("--plot", metavar="FILE.png", help="bar chart of the ratios to the fastest C (needs matplotlib)")
    parser.add_argument("--skip-compile", action="store_true", help="skip the compile-time measurements")
    parser.add_argument("--placement", type=int, default=5, metavar="N",
                        help="then rerun the workloads in N fresh processes, to show how placement of code and data "
                             "moves each ratio (default 5; 0: none; --quick: none)")
    parser.add_argument("--skip-cold-start", action="store_true", help="skip the fresh-interpreter measurements")
    parser.add_argument("-j", "--jobs", type=int, default=2, help="capsules modules to compile at once (setup)")
    return parser


def _environment_notes() -> tuple[list[str], dict[str, str]]:
    """What in the environment could change the figures, and the environment for subprocesses."""
    notes: list[str] = []
    extra = os.environ.pop("CAPSULES_CXXFLAGS", None)
    if extra:
        notes.append(f"CAPSULES_CXXFLAGS={extra!r} was set and is ignored: capsules runs with its default flags.")
    env = {k: v for k, v in os.environ.items() if k != "CAPSULES_CXXFLAGS"}
    for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS"):
        if name in os.environ:
            notes.append(f"{name}={os.environ[name]} was set in the environment.")
    return notes + H.compiler_env_notes(), env


def _measure_all(report: dict[str, Any], args: argparse.Namespace, sizes: H.Sizes, method: Method,
                 env: dict[str, str]) -> None:
    """Build every implementation, time the workloads, then compile times and cold starts as asked."""
    only = {k.strip().upper().replace("W3A", "W3a").replace("W3B", "W3b") for k in args.only.split(",")} \
        if args.only else None
    with H.tempdir("capsules-bench-") as tmpname:
        tmp = Path(tmpname)
        st = H.setup(tmp, jobs=args.jobs, log=log)
        report["notes"] += st.notes
        report["workloads"] = run_workloads(st, sizes, only, method)

        compile_info: dict[str, Any] = {"peers": st.compile}
        if args.skip_compile or args.quick:
            compile_info["capsules_skipped"] = "not measured (--quick or --skip-compile)"
        else:
            log("compile times: capsules build --force ...")
            compile_info["capsules"] = capsules_compile_times(tmp, env)
        report["compile"] = compile_info

        if not args.skip_compile:
            log("no-op rebuild of kernels/ ...")
            report["noop_rebuild"] = noop_rebuild(env, 1 if args.quick else 5, args.jobs)

        if not args.skip_cold_start:
            variants = ["pure Python", H.PLAIN_C, "capsules"]
            if any(isinstance(p, H.NumbaProvider) for p in st.providers):
                variants += ["numba @cfunc, no cache (compiles)", "numba @cfunc, cache=True (warm)"]
            report["cold_start"] = cold_start(tmp, env, tmp / "libbench_kernels.so", 1 if args.quick else 5,
                                              ["W1"] if args.quick else ["W1", "W3a"], variants)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    baseline = json.loads(Path(args.compare).read_text()) if args.compare else None  # fail before the run
    started = time.perf_counter()
    notes, env = _environment_notes()
    sizes = H.Sizes.quick() if args.quick else H.Sizes()
    if args.repeats:
        sizes.repeats = args.repeats
    method = Method(secrets.randbits(32) if args.seed is None else args.seed, args.bootstrap)

    report: dict[str, Any] = {"mode": "quick" if args.quick else "full", "sizes": asdict(sizes),
                              "method": _method_record(method), "machine": H.machine(), "git": H.git_state(),
                              "notes": notes}
    _measure_all(report, args, sizes, method, env)
    placements = 0 if args.quick else args.placement
    if placements:
        only = ",".join(w["key"] for w in report["workloads"])
        log(f"placement: {placements} fresh processes, {PLACEMENT_REPEATS} rounds each")
        report["placement"] = {"processes": placements, "repeats": PLACEMENT_REPEATS,
                               "ratios": placement.across(only, PLACEMENT_REPEATS, placements)}
    notes += _method_notes(report)
    report["seconds"] = time.perf_counter() - started
    report["machine"]["loadavg_at_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    bad = [(w["key"], r["impl"], r["deviation"]) for w in report["workloads"] for r in w["results"] if not r["ok"]]
    report["ok"] = not bad
    for key, impl, dev in bad:
        notes.append(f"MISMATCH: {key} {impl} deviates from C by {dev:.3g} (limit {H.RTOL:g}).")

    text = markdown(report)
    moved = False
    if baseline is not None:
        found = stats.changes(baseline, report)
        moved = any(c.moved for c in found)
        log(f"against {args.compare}: {sum(c.moved for c in found)} of {len(found)} ratio(s) moved")
        text += "\n" + stats.changes_markdown(found, baseline, report)
    H.report(text, args.markdown)
    if args.json:
        H.write_json(args.json, report)
    if args.plot:
        problem = plot(report, args.plot)
        if problem:
            log(problem)
    return 0 if report["ok"] and not moved else 1


def _method_record(method: Method) -> dict[str, Any]:
    return {"seed": method.seed, "order": "each round in its own order, shuffled from the seed",
            "bootstrap_replicates": method.replicates, "interval_level": stats.LEVEL,
            "interval": "paired percentile bootstrap over the rounds; the fastest C chosen again in each replicate"}


def _method_notes(report: dict[str, Any]) -> list[str]:
    from capsules.build import NATIVE_FLAGS

    same: dict[str, list[str]] = {}
    for w in report["workloads"]:
        for r in w["results"]:
            if r.get("bitwise_equal_to_capsules"):
                same.setdefault(r["impl"], []).append(w["key"])
    equal = "; ".join(f"{impl} in {', '.join(keys)}" for impl, keys in same.items()) or "none"
    return [
        "Method: one process; each workload runs every implementation once per round (A B C ... A B C ...) "
        "after one untimed warm-up call each, with the garbage collector off during the rounds; min and median "
        "over the rounds; ratios are medians over the fastest C's median (and, in the details, over plain C's).",
        "Same computation everywhere: the kernels in benchmarks/kernels (capsules), benchmarks/c/kernels.c (C via "
        "ctypes and cffi API mode), benchmarks/cython/cy_kernels.pyx and benchmarks/peers/numba_*.py do the same "
        "operations in the same order; the pure-Python callbacks (benchmarks/peers/python_callbacks.py) use "
        "SciPy's Python-callback forms (numpy on the buffer for W3/W4).",
        "Pure Python on W3 and W5 is timed on a smaller image and scaled linearly by the pixel count (see the "
        "note column); its result is checked against C on that same smaller image.",
        f"Build flags: plain C, cffi and Cython: gcc {' '.join(H.C_FLAGS)}; expert C: gcc "
        f"{' '.join(H.expert_c_flags())} (capsules' own flags, and the hints benchmarks/c/kernels.c describes: "
        "restrict, W4's range promise, W1's padded frame, 256-bit vectors in the generic_filter kernels); "
        f"capsules: its defaults, {' '.join(NATIVE_FLAGS)}, after pythran's own flags.",
        "Deviations: gcc compiles C in its GNU mode, which fuses a*b+c into FMA instructions "
        "(-ffp-contract=fast), so plain C, cffi and Cython differ from the others in the last bits where the kernel has "
        "a multiply-add (W2, W3b, W5). capsules and expert C (-ffp-contract=off) and numba (no fastmath) do not fuse. "
        f"Results bit-for-bit equal to capsules' in this run: {equal}.",
        "The machine may be shared with other work; interleaving spreads any interference over all "
        "implementations alike, but single figures can move by several per cent between runs.",
    ]


if __name__ == "__main__":
    sys.exit(main())
