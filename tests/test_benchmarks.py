"""The benchmark runs and its implementations agree; timings are never asserted here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

RUN = Path(__file__).resolve().parent.parent / "benchmarks" / "run.py"
sys.path.insert(0, str(RUN.parent))

import stats  # noqa: E402
import table  # noqa: E402

ROOT = RUN.parent.parent
LATEST = RUN.parent / "results" / "latest.json"


@pytest.mark.compile
def test_quick_benchmark_runs_and_agrees(tmp_path):
    out = tmp_path / "bench.json"
    env = {**os.environ, "CAPSULES_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run(
        [sys.executable, str(RUN), "--quick", "--skip-compile", "--skip-cold-start", "--json", str(out)],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["ok"] is True
    keys = [w["key"] for w in report["workloads"]]
    assert keys == ["W1", "W2", "W3a", "W3b", "W4", "W5"]
    for workload in report["workloads"]:
        impls = {r["impl"]: r for r in workload["results"]}
        assert {"C (ctypes)", "expert C (ctypes)", "capsules", "pure Python"} <= set(impls)
        assert workload["fastest_c"] in {"C (ctypes)", "expert C (ctypes)", "cffi (API mode)", "Cython"}
        assert impls[workload["fastest_c"]]["ratio_to_fastest_c"] == 1.0
        for result in workload["results"]:
            assert result["ok"], (workload["key"], result["impl"], result["deviation"])
            if result["deviation"] is not None:
                assert result["deviation"] <= 1e-12
            assert result["median_s"] > 0
    assert "| W1 |" in proc.stdout  # the markdown table
    assert report["method"]["seed"] >= 0 and report["git"]["commit"]

    # the guard against that run: 1 is a ratio that moved (timing noise may do that); a crash is not
    again = subprocess.run(
        [sys.executable, str(RUN), "--quick", "--only", "W1", "--skip-compile", "--skip-cold-start",
         "--compare", str(out)],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert again.returncode in (0, 1), again.stderr[-3000:]
    assert "## Against the baseline" in again.stdout
    assert "| W1 | capsules |" in again.stdout


@pytest.mark.compile
@pytest.mark.parametrize(
    ("script", "args", "table"),
    [("flags.py", ["--quick", "--set=", "--workloads", "W1", "--repeats", "1", "--blocks", "1"], "| (none: the defaults) |"),
     ("filter1d_widths.py", ["--widths", "3", "--repeats", "1", "--size", "200"], "| 3 |"),
     ("w1_frames.py", ["--processes", "1", "--repeats", "1"], "| C, 8 bytes of padding |")],
)
def test_the_flag_experiments_run_and_agree(tmp_path, script, args, table):
    proc = subprocess.run(
        [sys.executable, str(RUN.parent / script), *args, "--cache", str(tmp_path / "cache")],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]  # every build's results match C to 1e-12
    assert table in proc.stdout


def _rounds(seed: int, n: int = 21) -> np.ndarray:
    """Times per round with a machine that slows some rounds by up to 3x for everyone."""
    rng = np.random.default_rng(seed)
    return rng.uniform(1.0, 3.0, n) * rng.uniform(0.99, 1.01, n)


def test_the_interval_is_paired_by_round():
    base = _rounds(1)
    found = stats.ratios({"C": base, "k": 2 * base}, ["C"], np.random.default_rng(0), 500)
    # the slow rounds slow both alike: the ratio is 2 in every replicate, so the interval is a point
    assert found["k"] == stats.Ratio(2.0, 2.0, 2.0)
    unpaired = stats.ratios({"C": base, "k": 2 * _rounds(2)}, ["C"], np.random.default_rng(0), 500)
    assert unpaired["k"].high - unpaired["k"].low > 0.5


def test_the_fastest_baseline_is_chosen_in_every_replicate():
    base = _rounds(3)
    samples = {"plain": base * 1.5, "expert": base * _rounds(4) / 2, "k": base}
    found = stats.ratios(samples, ["plain", "expert"], np.random.default_rng(0), 500)
    point = min(np.median(samples["plain"]), np.median(samples["expert"]))
    assert found["k"].value == pytest.approx(np.median(base) / point)
    # the baseline is the faster of the two in each replicate, never above either
    assert found["plain"].low >= 1.0 and found["expert"].low >= 1.0
    assert found["k"].low <= found["k"].value <= found["k"].high


def _report(ratios: dict[str, tuple[float, float, float]]) -> dict:
    return {"machine": {"cpu": "x"}, "sizes": {}, "workloads": [
        {"key": key, "results": [{"impl": "capsules", "ratio_to_fastest_c": r, "interval_to_fastest_c": [lo, hi]}]}
        for key, (r, lo, hi) in ratios.items()]}


def test_the_guard_flags_a_ratio_that_left_its_interval():
    before = _report({"W1": (1.00, 0.98, 1.02), "W3a": (1.00, 0.98, 1.02), "W4": (0.60, 0.50, 0.70)})
    now = _report({"W1": (1.01, 0.99, 1.03), "W3a": (1.10, 1.07, 1.13), "W4": (0.45, 0.40, 0.65)})
    found = {c.workload: c for c in stats.changes(before, now)}
    # W4: the new ratio is outside the old interval, but the old one inside the new: a noisy run, not a move
    assert [found[k].verdict for k in ("W1", "W3a", "W4")] == ["within its interval", "SLOWER", "within its interval"]
    text = stats.changes_markdown(list(found.values()), before, now)
    assert "| W3a | capsules | 1.000 [0.980, 1.020] | 1.100 [1.070, 1.130] | SLOWER |" in text
    assert "1 of 3 ratio(s) moved." in text


def test_the_guard_compares_only_what_both_runs_measured():
    before = _report({"W1": (1.0, 0.9, 1.1)})
    now = _report({"W1": (0.5, 0.45, 0.55), "W2": (3.0, 2.9, 3.1)})
    (change,) = stats.changes(before, now)
    assert (change.workload, change.verdict) == ("W1", "FASTER")


@pytest.mark.parametrize("page", ["docs/performance.md"])
def test_the_published_tables_are_what_the_latest_run_renders(page):
    # run table.py --write after a new latest.json: no page may show other figures than the run's
    rendered = table.render(json.loads(LATEST.read_text()))
    assert table.block((ROOT / page).read_text()) == rendered


def test_the_table_replaces_only_the_text_between_its_markers():
    page = f"# Title\n\nbefore\n\n{table.START}\nold table\n{table.END}\n\nafter\n"
    new = table.replace_block(page, "| new |\n", "page.md")
    assert new == f"# Title\n\nbefore\n\n{table.START}\n| new |\n{table.END}\n\nafter\n"
    assert table.block(new) == "| new |\n"
    with pytest.raises(ValueError, match="page.md: needs one"):
        table.replace_block("no markers\n", "| new |\n", "page.md")
    with pytest.raises(ValueError, match="needs one"):
        table.replace_block(f"{table.END}\n{table.START}\n", "x\n", "page.md")


@pytest.mark.compile
def test_the_nquad_benchmark_runs_and_agrees(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(RUN.parent / "nquad.py"), "--quick", "--cache", str(tmp_path / "cache")],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]  # the threaded sweep equals the serial loop
    rows = {line.split(" | ")[1]: line for line in proc.stdout.splitlines() if line.startswith("| W2, 3-D | capsules.nquad")}
    assert len(rows) == 3, rows
    for same in ("capsules.nquad, capsule", "capsules.nquad, C inlined into the driver"):  # as scipy.nquad, to the bit
        assert rows[same].endswith("| 82467 | identical |"), rows[same]


@pytest.mark.compile
def test_the_data_benchmark_runs_and_agrees_with_its_c(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(RUN.parent / "data.py"), "--repeats", "1", "--cache", str(tmp_path / "cache")],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]  # it stops where capsules and C disagree
    assert "| quad, linear interpolation over 1,000 points |" in proc.stdout
    assert "| generic_filter, weighted 5x5, 500x500 |" in proc.stdout
