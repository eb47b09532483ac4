"""The benchmark runs and its implementations agree; timings are never asserted here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.compile

RUN = Path(__file__).resolve().parent.parent / "benchmarks" / "run.py"


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
        assert {"C (ctypes)", "capsules", "pure Python"} <= set(impls)
        for result in workload["results"]:
            assert result["ok"], (workload["key"], result["impl"], result["deviation"])
            if result["deviation"] is not None:
                assert result["deviation"] <= 1e-12
            assert result["median_s"] > 0
    assert "| W1 |" in proc.stdout  # the markdown table


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


def test_the_data_benchmark_runs_and_agrees_with_its_c(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(RUN.parent / "data.py"), "--repeats", "1", "--cache", str(tmp_path / "cache")],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]  # it stops where capsules and C disagree
    assert "| quad, linear interpolation over 1,000 points |" in proc.stdout
    assert "| generic_filter, weighted 5x5, 500x500 |" in proc.stdout
