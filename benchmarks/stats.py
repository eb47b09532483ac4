"""Statistics of a benchmark run: bootstrap intervals of the ratios, and the regression guard.

A ratio is one implementation's median time over a baseline's median time,
both over the same rounds (``harness.measure``: sample k of every
implementation comes from round k).  Its interval comes from a paired
bootstrap: the rounds are drawn again with replacement, B times, and every
implementation keeps its sample of each drawn round, so a round that the
machine slowed for everyone weighs on both sides of the ratio alike.  The
95% interval is the 2.5th to 97.5th percentile of the B ratios.

numpy does the resampling (one index array for all implementations); SciPy's
``stats.bootstrap`` resamples per statistic, and the fastest C must be
chosen again within each replicate from the same drawn rounds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

REPLICATES = 2000  # B: bootstrap replicates per workload
LEVEL = 0.95


@dataclass(frozen=True)
class Ratio:
    """A ratio of medians and its bootstrap interval."""

    value: float
    low: float
    high: float

    def __post_init__(self) -> None:
        if not self.low <= self.high:
            raise ValueError(f"interval [{self.low}, {self.high}] is reversed")

    def covers(self, x: float) -> bool:
        return self.low <= x <= self.high


def ratios(samples: Mapping[str, Sequence[float]], baselines: Sequence[str], rng: np.random.Generator,
           replicates: int = REPLICATES) -> dict[str, Ratio]:
    """Each implementation's median over the fastest baseline's median, with its 95% interval.

    ``samples`` are per round, the same number for each implementation.
    The baseline is the fastest of ``baselines`` by median, chosen again in
    every replicate, so the interval also covers the luck of that choice
    (the fastest of four noisy C builds is a little fast by chance).
    """
    names = list(samples)
    data = np.array([samples[n] for n in names], dtype=float)  # (implementations, rounds)
    rows = [names.index(b) for b in baselines if b in samples]
    if not rows:
        raise ValueError(f"none of the baselines {list(baselines)} was measured")
    drawn = rng.integers(0, data.shape[1], size=(replicates, data.shape[1]))
    medians = np.median(data[:, drawn], axis=2)  # (implementations, replicates)
    spread = medians / medians[rows].min(axis=0)
    tail = (1 - LEVEL) / 2 * 100
    lows, highs = np.percentile(spread, [tail, 100 - tail], axis=1)
    point = np.median(data, axis=1)
    point = point / point[rows].min()
    # a point outside its own percentile interval is possible with few rounds; the interval is widened to hold it
    return {n: Ratio(float(point[i]), float(min(lows[i], point[i])), float(max(highs[i], point[i])))
            for i, n in enumerate(names)}


# --------------------------------------------------------------------------- the regression guard


@dataclass(frozen=True)
class Change:
    """One implementation's ratio to the fastest C on one workload, in the baseline and now."""

    workload: str
    impl: str
    before: Ratio
    now: Ratio

    @property
    def moved(self) -> bool:
        """The two runs' intervals do not overlap.

        An interval covers the noise of its own run's rounds, not what
        changes between processes (where code and data are placed): a
        looser test (each run's ratio outside the other's interval) flagged
        W3a when the same code ran twice on a busy host.
        """
        return self.now.low > self.before.high or self.now.high < self.before.low

    @property
    def verdict(self) -> str:
        if not self.moved:
            return "within its interval"
        return "SLOWER" if self.now.value > self.before.value else "FASTER"


GUARDED = ("capsules", "capsules, prebuilt for every CPU level", "capsules, length fixed at build time")


def headline(result: Mapping[str, Any]) -> Ratio:
    """A result row's ratio to the fastest C, as stored in run.py's JSON."""
    low, high = result["interval_to_fastest_c"]
    return Ratio(result["ratio_to_fastest_c"], low, high)


def changes(baseline: Mapping[str, Any], current: Mapping[str, Any], impls: Sequence[str] = GUARDED) -> list[Change]:
    """capsules' ratios to the fastest C in two run.py reports, for the workloads and builds both measured."""
    before = {w["key"]: {r["impl"]: r for r in w["results"]} for w in baseline["workloads"]}
    out = []
    for w in current["workloads"]:
        old = before.get(w["key"], {})
        for r in w["results"]:
            if r["impl"] in impls and r["impl"] in old and "interval_to_fastest_c" in old[r["impl"]]:
                out.append(Change(w["key"], r["impl"], headline(old[r["impl"]]), headline(r)))
    return out


def _cell(r: Ratio) -> str:
    return f"{r.value:.3f} [{r.low:.3f}, {r.high:.3f}]"


def _shapes(report: Mapping[str, Any]) -> dict[str, Any]:
    """The sizes of a report's workloads (the number of rounds may differ: it only narrows the intervals)."""
    return {k: v for k, v in report.get("sizes", {}).items() if k != "repeats"}


def changes_markdown(found: Sequence[Change], baseline: Mapping[str, Any], current: Mapping[str, Any]) -> str:
    """The guard's table: every guarded ratio before and now, and whether it moved."""
    lines = ["## Against the baseline", "",
             "Ratio to the fastest C of that workload in each run, with its 95% interval. *Moved*: the two "
             "intervals do not overlap.", ""]
    hosts = [r["machine"].get("cpu", "?") for r in (baseline, current)]
    if hosts[0] != hosts[1]:
        lines += [f"**Different CPUs**: the baseline ran on {hosts[0]}, this run on {hosts[1]}.", ""]
    if _shapes(baseline) != _shapes(current):
        lines += [f"**Different sizes**: the baseline is a {baseline.get('mode')} run, this one {current.get('mode')}; "
                  "their ratios need not agree.", ""]
    lines += ["| workload | implementation | baseline | now | verdict |", "|---|---|---|---|---|"]
    lines += [f"| {c.workload} | {c.impl} | {_cell(c.before)} | {_cell(c.now)} | {c.verdict} |" for c in found]
    moved = [c for c in found if c.moved]
    lines += ["", f"{len(moved)} of {len(found)} ratio(s) moved." if found else "Nothing in common to compare.", ""]
    return "\n".join(lines)
