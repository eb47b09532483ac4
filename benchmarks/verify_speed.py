"""How long ``capsules verify kernels/`` takes with a warm cache, as a user runs it.

    python benchmarks/verify_speed.py [--repeats 5] [--examples 100] [--cache DIR]

Builds kernels/ once (so that every run finds its builds in the cache),
then runs ``capsules verify kernels/`` in a fresh process ``--repeats``
times, seeds 0, 1, ...: each wall time includes starting Python, importing
capsules and Hypothesis, loading every build and checking every kernel.
Prints each run's wall time and CPU time (user + system, of the child: on
a machine shared with other work the wall time grows with the load, the
CPU time much less), then their medians and ranges.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(cache: str, examples: int, seed: int) -> tuple[float, float, str]:
    """One ``capsules verify kernels/`` in a fresh process: its wall and CPU times and its summary line."""
    command = [sys.executable, "-m", "capsules", "verify", str(ROOT / "kernels"), "--cache", cache,
               "--examples", str(examples), "--seed", str(seed)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"})
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    if done.returncode not in (0, 1):
        raise SystemExit(f"capsules verify failed:\n{done.stderr}")
    return seconds, cpu, done.stdout.strip().splitlines()[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--examples", type=int, default=100)
    parser.add_argument("--cache", help="cache directory (default: a fresh one, built first)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as fresh:
        cache = args.cache or fresh
        subprocess.run([sys.executable, "-m", "capsules", "build", str(ROOT / "kernels"), "--cache", cache],
                       check=True, capture_output=True)
        walls, cpus = [], []
        for seed in range(args.repeats):
            seconds, cpu, summary = run(cache, args.examples, seed)
            walls.append(seconds)
            cpus.append(cpu)
            print(f"seed {seed}: {seconds:6.1f} s wall, {cpu:5.1f} s CPU   {summary}", flush=True)
    print(f"over {args.repeats} runs of {args.examples} examples per kernel, load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs:")
    for name, values in (("wall", walls), ("CPU", cpus)):
        print(f"  {name:<4} median {statistics.median(values):.1f} s, range {min(values):.1f} to {max(values):.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
