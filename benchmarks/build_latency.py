"""Build latency: capsules against the bare toolchain it drives, with a breakdown of where time goes.

    python benchmarks/build_latency.py [--repeats 3] [--markdown FILE]

For each module, interleaved over the repeats:

- ``capsules build FILE --force`` into a fresh cache (the first build of a
  kernel), its wall time from a subprocess, and the phases
  the build records in ``entry.json`` (``phase_seconds``: the parent's scan of
  the export comments, the child process, and inside it importing pythran,
  generating C++, the compiler call);
- the same with ``CAPSULES_CORES=1``: one compiler process, where a module
  of several kernels otherwise compiles in parts on the cores it has;
- ``capsules build FILE --force`` into a cache that has built it twice: the
  edit-and-rebuild loop, where pythran's core headers and the module's own
  are precompiled for these flags (``v1/pch``, made in the background from
  the second build on);
- the bare toolchain doing the same compile: ``pythran -E FILE`` and then
  one compiler call with exactly the flags the fresh-cache build used (read
  from its build log; a build split into parts gives its first part's
  compile flags and its link flags).

capsules' own modules are compiled to bytecode first, as an installed
package has them (:func:`bytecode`).

Then a cold ``capsules build kernels/`` with -j 1 and -j 2, a no-op rebuild,
and the edit loop in a notebook: a fresh IPython shell (a subprocess) runs
each module as a ``%%capsules`` cell into a fresh cache, then the same cell
edited (a comment added, a new build) several times, a few seconds apart as
a person edits; the first cell pays for importing pythran, the edits find it
imported, in the compiler server the session keeps (``capsules.workers``),
from the first pythran's core headers precompiled, and from the second the
module's own.
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MODULES = ("kernels/integrands.py", "kernels/filters.py")
PYTHRAN = Path(sys.executable).parent / "pythran"


def wall(command: list[str], **kwargs) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{shlex.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    return seconds


def capsules_build(module: str, tmp: Path, cores: int | None = None) -> tuple[float, dict[str, float], list[str]]:
    """One cold build of ``module``: wall seconds, recorded phases, and its compile as one compiler command.

    ``cores``: ``$CAPSULES_CORES``, the compiler processes the build may run at once (default: all CPUs).
    """
    cache = Path(tempfile.mkdtemp(dir=tmp))
    cache.chmod(0o700)
    env = {**os.environ, **({"CAPSULES_CORES": str(cores)} if cores else {})}
    command = [sys.executable, "-m", "capsules", "build", str(REPO / module), "--cache", str(cache), "--force"]
    seconds = wall(command, env=env)
    (entry,) = (cache / "v1").glob("*/entry.json")
    log = [shlex.split(line) for line in (entry.parent / "build.log").read_text().splitlines() if line.strip()]
    return seconds, json.loads(entry.read_text())["phase_seconds"], whole_command(log)


def whole_command(log: list[list[str]]) -> list[str]:
    """The compiler command of a build compiled whole (as pythran's own build does), from its build log.

    A build split across cores logs one compile per part (``-DCAPSULES_PART=k -c``) and a link; the
    whole command is the first part's compile with the link's flags, without the part.
    """
    first = log[0]
    if "-DCAPSULES_PART=0" not in first:
        return first
    link = next(line for line in log if any(arg.endswith(".part0.o") for arg in line) and "-c" not in line)
    binary = link.index("-o") + 1
    flags = [arg for arg in first[1 : first.index("-c")] if not arg.startswith(("-DCAPSULES_PART", "-DPyInit_"))]
    cpp = first[first.index("-c") + 1]
    return [first[0], "-shared", *flags, cpp, "-o", link[binary], *link[binary + 1 :]]


def warm_cache(module: str, tmp: Path) -> Path:
    """A cache that built ``module`` twice, with its precompiled headers made."""
    cache = tmp / f"warm-{Path(module).stem}"
    if not cache.exists():
        cache.mkdir(mode=0o700)
        for _ in range(2):
            wall([sys.executable, "-m", "capsules", "build", str(REPO / module), "--cache", str(cache), "--force"])
        _wait_for_headers(cache)
    return cache


def _wait_for_headers(cache: Path) -> None:
    """Until the precompiled headers the builds started are made (two minutes at most)."""
    pch = cache / "v1" / "pch"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if list(pch.glob("*/*.gch")) and not list(pch.glob("*/making")):
            return
        time.sleep(0.2)


def capsules_rebuild(module: str, tmp: Path) -> float:
    """``capsules build --force`` in a cache that built before: what an edit costs."""
    cache = warm_cache(module, tmp)
    return wall([sys.executable, "-m", "capsules", "build", str(REPO / module), "--cache", str(cache), "--force"])


def bare_toolchain(module: str, command: list[str], tmp: Path) -> tuple[float, float]:
    """``pythran -E`` then the same compiler command on its output: seconds for each."""
    work = Path(tempfile.mkdtemp(dir=tmp))
    cpp = work / "module.cpp"
    generate = wall([str(PYTHRAN), "-E", str(REPO / module), "-o", str(cpp)], cwd=work)
    # capsules' command with pythran's C++ in place of capsules' (which adds the entry points)
    source = next(i for i, arg in enumerate(command) if arg.endswith(".cpp"))
    compile_ = [*command[:source], str(cpp), "-o", str(work / "module.so"), *command[source + 3 :]]
    return generate, wall(compile_, cwd=work)


def whole_tree(tmp: Path, jobs: int) -> float:
    cache = Path(tempfile.mkdtemp(dir=tmp))
    cache.chmod(0o700)
    seconds = wall([sys.executable, "-m", "capsules", "build", "kernels", "--cache", str(cache), "-j", str(jobs)],
                   cwd=REPO)
    _wait_for_headers(cache)  # made in the background after the batch: not to slow what is timed next
    return seconds


def noop(tmp: Path) -> float:
    cache = tmp / "noop-cache"
    if not cache.exists():
        cache.mkdir(mode=0o700)
        wall([sys.executable, "-m", "capsules", "build", "kernels", "--cache", str(cache), "-j", "2"], cwd=REPO)
    return wall([sys.executable, "-m", "capsules", "build", "kernels", "--cache", str(cache)], cwd=REPO)


EDIT_LOOP = """
import json, sys, time
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
shell.run_line_magic("load_ext", "capsules")
source, cache, edits = open(sys.argv[1]).read(), sys.argv[2], int(sys.argv[3])
seconds = []
for edit in range(edits + 1):
    start = time.perf_counter()
    shell.run_cell_magic("capsules", f"--cache {cache}", f"{source}\\n# edit {edit}\\n")
    seconds.append(time.perf_counter() - start)
    time.sleep(float(sys.argv[4]))  # the person reads the result and edits
print(json.dumps(seconds))
"""
EDITS = 5
PAUSE = 5.0  # seconds between two edits: reading the result, editing the cell


def notebook_edits(module: str, tmp: Path) -> list[float]:
    """Seconds per ``%%capsules`` cell: the first into a fresh cache, then each edit."""
    cache = Path(tempfile.mkdtemp(dir=tmp))
    cache.chmod(0o700)
    done = subprocess.run([sys.executable, "-c", EDIT_LOOP, str(REPO / module), str(cache), str(EDITS), str(PAUSE)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0 or not done.stdout.strip():
        raise SystemExit(f"the notebook edit loop failed:\n{done.stdout}\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(repeats: int, tmp: Path) -> dict:
    rows: dict[str, list] = {}
    for _ in range(repeats):
        for module in MODULES:
            seconds, phases, command = capsules_build(module, tmp)
            rows.setdefault(f"capsules {module}", []).append(seconds)
            rows.setdefault(f"one process {module}", []).append(capsules_build(module, tmp, cores=1)[0])
            rows.setdefault(f"rebuild {module}", []).append(capsules_rebuild(module, tmp))
            rows.setdefault(f"phases {module}", []).append(phases)
            generate, compile_ = bare_toolchain(module, command, tmp)
            rows.setdefault(f"bare {module}", []).append((generate, compile_))
            cells = notebook_edits(module, tmp)
            rows.setdefault(f"cell {module}", []).append(cells[0])
            rows.setdefault(f"edit {module}", []).extend(cells[1:])
        for jobs in (1, 2):
            rows.setdefault(f"tree -j {jobs}", []).append(whole_tree(tmp, jobs))
        rows.setdefault("noop", []).append(noop(tmp))
    return rows


def markdown(rows: dict, repeats: int) -> str:
    med = statistics.median
    lines = [
        "# Build latency", "",
        f"- {platform.processor() or platform.machine()}, {os.cpu_count()} CPU(s); Python {platform.python_version()}; "
        f"load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        f"- {repeats} interleaved repeats; medians, with the range in brackets", "",
        "| module | capsules, fresh cache | the same, one compiler process | capsules, cache that built before "
        "| bare: pythran -E | bare: compiler | bare total |",
        "|---|---|---|---|---|---|---|",
    ]
    for module in MODULES:
        caps = rows[f"capsules {module}"]
        gen = [g for g, _ in rows[f"bare {module}"]]
        comp = [c for _, c in rows[f"bare {module}"]]
        total = [g + c for g, c in rows[f"bare {module}"]]
        again = rows[f"rebuild {module}"]
        one = rows[f"one process {module}"]
        lines.append(f"| {module} | {_s(caps)} | {_s(one)} | {_s(again)} | {_s(gen)} | {_s(comp)} | {_s(total)} |")
    lines += ["", "Where a capsules build's time goes (medians of the phases it records, seconds):", "",
              "| module | scan (parent) | child process | import pythran | generate C++ | compiler |",
              "|---|---|---|---|---|---|"]
    for module in MODULES:
        phases = rows[f"phases {module}"]
        cells = [f"{med(p[name] for p in phases):.2f}" for name in
                 ("scan", "child", "import_pythran", "generate_cxx", "compile")]
        lines.append(f"| {module} | " + " | ".join(cells) + " |")
    count = len(list((REPO / "kernels").glob("*.py")))
    lines += ["", f"- cold `capsules build kernels/` ({count} modules): -j 1 {_s(rows['tree -j 1'])}, "
              f"-j 2 {_s(rows['tree -j 2'])}",
              f"- no-op `capsules build kernels/` (a subprocess, interpreter start included): {_s(rows['noop'])}", "",
              f"Edit and rebuild in a notebook (`%%capsules` in IPython; {EDITS} edits per repeat, {PAUSE:.0f} s apart):", "",
              "| module | first cell, fresh cache | each edit | bare toolchain, per edit |", "|---|---|---|---|"]
    for module in MODULES:
        total = [g + c for g, c in rows[f"bare {module}"]]
        lines.append(f"| {module} | {_s(rows[f'cell {module}'])} | {_s(rows[f'edit {module}'])} | {_s(total)} |")
    lines.append("")
    return "\n".join(lines)


def _s(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} s [{min(values):.2f}-{max(values):.2f}]"


def bytecode() -> None:
    """capsules' modules compiled to bytecode, as an installed package has them.

    A development checkout may have none: where PYTHONDONTWRITEBYTECODE is
    set, each ``capsules`` command would compile the package's modules from
    source as it starts, about 70 ms of a no-op build's 0.28 s here.
    """
    spec = importlib.util.find_spec("capsules")
    found = (spec.submodule_search_locations or []) if spec else []
    folders = {REPO / "capsules", *map(Path, found)}
    for folder in folders:
        compileall.compile_dir(str(folder), quiet=1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--markdown", help="also write the table to this file")
    args = parser.parse_args(argv)
    bytecode()
    with tempfile.TemporaryDirectory(prefix="capsules-latency-") as tmp:
        text = markdown(measure(args.repeats, Path(tmp)), args.repeats)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
