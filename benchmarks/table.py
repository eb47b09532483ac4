"""The headline table of a run.py JSON report: the one source of the figures on the performance page.

    python benchmarks/table.py benchmarks/results/latest.json                 # print the table
    python benchmarks/table.py benchmarks/results/latest.json --write docs/performance.md
    python benchmarks/table.py benchmarks/results/latest.json --check docs/performance.md

``--write`` replaces the text between the lines ``<!-- bench-table:start -->``
and ``<!-- bench-table:end -->`` of each file with the table; ``--check``
exits with status 1, naming the file, where that text differs from it.
No figure is typed by hand: edit the report (run run.py again), not the pages.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

START = "<!-- bench-table:start -->"
END = "<!-- bench-table:end -->"
LABELS = {
    "W1": "W1 `quad`, exp(-x²)·sin²(50x)",
    "W2": "W2 `nquad`, 3-D Genz oscillatory",
    "W3a": "W3a `generic_filter`, 5×5 local range",
    "W3b": "W3b `generic_filter`, 5×5 local variance",
    "W4": "W4 `generic_filter1d`, moving average of 9",
    "W5": "W5 `geometric_transform`, rotation",
}
SHORT_C = {"C (ctypes)": "plain C", "expert C (ctypes)": "expert C", "cffi (API mode)": "cffi", "Cython": "Cython"}
FIXED, FIXED_C = "capsules, length fixed at build time", "expert C, length fixed at 9"
COLUMNS = (("capsules", "capsules"), ("numba @cfunc", "numba `@cfunc`"))
# The floor (a do-nothing callback) at this share of the fastest C's time or more: SciPy's own work dominates.
SCIPY_BOUND = 0.9
WIDTH = 100  # the pages' line length


def _ratio(row: Mapping[str, Any] | None, to: str = "fastest_c") -> str:
    if row is None or f"ratio_to_{to}" not in row:
        return "not run"
    low, high = row[f"interval_to_{to}"]
    return f"{row[f'ratio_to_{to}']:.2f} ({low:.2f}–{high:.2f})"


def _ms(seconds: float) -> str:
    ms = seconds * 1e3
    return f"{ms:.3g}" if ms < 100 else f"{ms:.0f}"


def rows(report: Mapping[str, Any]) -> list[str]:
    """One line per workload: the fastest C, its time, and each column's ratio to it with the interval."""
    header = ["workload", "fastest C, ms", *(title for _, title in COLUMNS), "capsules / numba"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for w in report["workloads"]:
        by = {r["impl"]: r for r in w["results"]}
        fastest = SHORT_C.get(w["fastest_c"], w["fastest_c"])
        cells = [LABELS.get(w["key"], w["key"]), f"{fastest}, {_ms(by[w['fastest_c']]['median_s'])}"]
        cells += [_ratio(by.get(impl)) for impl, _ in COLUMNS]
        cells.append(_ratio(by.get("capsules"), "numba"))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def host(report: Mapping[str, Any]) -> str:
    m, git, method = report["machine"], report["git"], report["method"]
    vm = f", virtual machine ({m['hypervisor']})" if m.get("hypervisor") else ""
    return (f"Host: {m['cpu']} (family/model {m.get('cpu_family_model', '?')}, {m['microarchitecture']}, "
            f"{'with' if m['avx512'] else 'no'} AVX-512), "
            f"{m['cpus']} CPU(s){vm}; Python {m['python']}, NumPy {m['numpy']}, SciPy {m['scipy']}, "
            f"Pythran {m['pythran']}, {m['gcc'].split(' (')[0]} {m['gcc'].rsplit(' ', 1)[-1]}; "
            f"commit {git['commit'][:10]}{' with local changes' if git['dirty'] else ''}, seed {method['seed']}, "
            f"{report['sizes']['repeats']} rounds, B = {method['bootstrap_replicates']}.")


def caveats(report: Mapping[str, Any]) -> list[str]:
    """What a reader must know to read the figures: the load, W1's frame, where SciPy's own work dominates."""
    m = report["machine"]
    loads = [w["loadavg_1min_at_start"] for w in report["workloads"]]
    out = [f"Load: the load average was {m['loadavg_at_start'].split()[0]} at the start and "
           f"{m['loadavg_at_end'].split()[0]} at the end ({min(loads):.1f}–{max(loads):.1f} as each workload "
           f"began) on {m['cpus']} CPU(s): other work shared the host, and the intervals carry that noise.",
           "One process: an interval covers this run's rounds, not where another process places code and data "
           "(benchmarks/placement.py), nor another host."]
    w1 = next((w for w in report["workloads"] if w["key"] == "W1"), None)
    if w1 is not None:
        plain = {r["impl"]: r for r in w1["results"]}.get("C (ctypes)")
        out.append("W1's frame effect is host-specific: the expert C and capsules give the integrand 40 unused "
                   "bytes of stack, which made it much faster on some hosts and changed nothing on others "
                   "(benchmarks/w1_frames.py measures yours); plain C keeps gcc's frame"
                   + (f", and ran at {_ratio(plain)} here." if plain else "."))
    w4 = {r["impl"]: r for w in report["workloads"] if w["key"] == "W4" for r in w["results"]}
    if FIXED in w4 and FIXED_C in w4:
        out.append(f"W4 with its width fixed at 9 when built (capsules' `constants=`, not the default build): "
                   f"capsules {_ratio(w4[FIXED])}, and the expert C told the same width {_ratio(w4[FIXED_C])}.")
    for w in report["workloads"]:
        floor = next((r for r in w["results"] if r["impl"].startswith("floor")), None)
        if floor is not None and floor["ratio_to_fastest_c"] >= SCIPY_BOUND:
            out.append(f"{w['key']} spends its time in SciPy: a do-nothing callback takes "
                       f"{floor['ratio_to_fastest_c']:.2f} of the fastest C's time.")
    return out


def render(report: Mapping[str, Any]) -> str:
    """The table, the host and the caveats, as markdown (what goes between the markers)."""
    intro = ("Median time over the median of the fastest C build of the same workload in the same run "
             "(plain C, expert C, cffi or Cython; lower is faster), with its 95% bootstrap interval in parentheses. "
             "*capsules / numba*: capsules' median over numba's, paired round by round, which shows a lead "
             "the two columns' intervals, each against the fastest C, can hide.")
    lines = [textwrap.fill(intro, WIDTH), "", *rows(report), "", textwrap.fill(host(report), WIDTH), ""]
    lines += [textwrap.fill(c, WIDTH, initial_indent="- ", subsequent_indent="  ") for c in caveats(report)]
    return "\n".join(lines) + "\n"


def replace_block(text: str, table: str, name: str) -> str:
    """``text`` with the lines between the markers replaced by ``table``."""
    if text.count(START) != 1 or text.count(END) != 1 or text.index(START) > text.index(END):
        raise ValueError(f"{name}: needs one {START} line and, after it, one {END} line")
    head, rest = text.split(START + "\n", 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table}{END}{tail}"


def block(text: str) -> str:
    """The text between the markers (what ``replace_block`` wrote)."""
    return text.split(START + "\n", 1)[1].split(END, 1)[0]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="a run.py --json report")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", nargs="+", type=Path, metavar="FILE", help="replace the table in FILE(s)")
    action.add_argument("--check", nargs="+", type=Path, metavar="FILE", help="exit 1 if a FILE's table differs")
    args = parser.parse_args(argv)
    table = render(json.loads(args.report.read_text()))
    if not (args.write or args.check):
        print(table, end="")
        return 0
    stale = []
    for path in args.write or args.check:
        text = path.read_text()
        new = replace_block(text, table, str(path))
        if args.write and new != text:
            path.write_text(new)
        elif args.check and new != text:
            stale.append(path)
    for path in stale:
        print(f"{path}: its table is not what {args.report} gives; run table.py --write", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
