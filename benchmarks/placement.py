"""Run time across processes: the same workloads in several fresh interpreters.

    python benchmarks/placement.py [--processes 7] [--only W1,W2] [--markdown FILE]

``run.py`` interleaves every implementation in one process, which cancels
the machine's drift but not the placement of code and data: where the
loader puts each library and where the allocator puts each buffer changes
with every process (address-space layout randomisation).  On some CPUs
that moves a workload whose kernel calls libm (W1: exp and sin; W2: cos)
by up to 1.5x for *every* compiled implementation, hand-written C
included, as a load happens to share its low address bits with a recent
store or a call lands badly in the branch predictor.  This runs
``run.py --only ...`` in several processes and reports, per
implementation, the median and the range of its per-process ratio to C.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def one_process(only: str, repeats: int, out: Path, key: str = "ratio_to_c") -> dict[str, dict[str, float]]:
    """Ratios (to plain C, or ``key``) of each implementation, per workload, from one fresh ``run.py``."""
    subprocess.run(
        [sys.executable, str(HERE / "run.py"), "--only", only, "--repeats", str(repeats), "--skip-compile",
         "--skip-cold-start", "--placement", "0", "--json", str(out)],
        check=True, capture_output=True,
    )
    report = json.loads(out.read_text())
    return {w["key"]: {r["impl"]: r[key] for r in w["results"] if r.get(key)} for w in report["workloads"]}


def across(only: str, repeats: int, processes: int) -> dict[str, dict[str, list[float]]]:
    """Each implementation's ratio to the fastest C of its workload, once per fresh process."""
    with tempfile.TemporaryDirectory() as tmp:
        runs = [one_process(only, repeats, Path(tmp) / f"{i}.json", "ratio_to_fastest_c") for i in range(processes)]
    return {key: {impl: [run[key][impl] for run in runs] for impl in runs[0][key] if all(impl in run[key] for run in runs)}
            for key in runs[0]}


def markdown(runs: list[dict[str, dict[str, float]]], only: str, repeats: int) -> str:
    lines = [f"# Run time across {len(runs)} processes", "",
             f"`run.py --only {only} --repeats {repeats}` in {len(runs)} fresh processes; per implementation, "
             "the median of its per-process ratio to C, and the range.", ""]
    for key in runs[0]:
        impls = [i for i in runs[0][key] if all(i in run[key] for run in runs)]
        lines += [f"| {key} | median ratio to C | range |", "|---|---|---|"]
        for impl in impls:
            ratios = [run[key][impl] for run in runs]
            lines.append(f"| {impl} | {statistics.median(ratios):.3g} | {min(ratios):.3g} - {max(ratios):.3g} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=7)
    parser.add_argument("--only", default="W1,W2")
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--markdown", help="also write the table to this file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        runs = [one_process(args.only, args.repeats, Path(tmp) / f"{i}.json") for i in range(args.processes)]
    text = markdown(runs, args.only, args.repeats)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
