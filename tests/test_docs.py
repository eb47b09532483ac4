"""The documentation's promises about itself: one page for figures, one table for environment variables."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FIGURES_PAGE = ROOT / "docs" / "performance.md"
# a measured time, size, share or ratio: 1.3 s, 40 ms, 14 kB, 9%, 0.57x
FIGURE = re.compile(r"\b\d+(\.\d+)? ?(s|ms|µs|kB|MB|GB|seconds|minutes)\b|\b\d+(\.\d+)?%|\b\d+(\.\d+)?x\b")


def _prose(page: Path) -> list[tuple[int, str]]:
    """The page's lines outside fenced blocks and headings, numbered from 1."""
    lines, fenced = [], False
    for number, line in enumerate(page.read_text().splitlines(), 1):
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and not line.startswith("#"):
            lines.append((number, line))
    return lines


def test_measured_figures_are_given_on_the_performance_page_only():
    found = [f"{page.relative_to(ROOT)}:{number}: {line.strip()}" for page in PAGES if page != FIGURES_PAGE
             for number, line in _prose(page) if FIGURE.search(line)]
    assert not found, "cite docs/performance.md instead:\n" + "\n".join(found)


def test_the_figure_pattern_finds_figures():
    assert all(FIGURE.search(s) for s in ("took 1.3 s", "40 ms", "within 2%", "ran at 0.57x C", "14 kB"))
    assert not any(FIGURE.search(s) for s in ("x86_64_v3", "5x5 windows", "a 1000x1000 image", "float64"))


def test_every_environment_variable_the_package_reads_is_in_the_table():
    code = "\n".join(path.read_text() for path in sorted((ROOT / "capsules").glob("*.py")))
    read = set(re.findall(r"os\.environ(?:\.get\(|\[)\"([A-Z_]+)\"", code))
    toolchain = re.search(r"TOOLCHAIN_ENV = \(([^)]*)\)", code)
    if toolchain:
        read |= set(re.findall(r"\"([A-Z_]+)\"", toolchain.group(1)))
    assert {"CAPSULES_CACHE", "CAPSULES_CPU", "CXX"} <= read  # the search above still finds what it looks for
    table = (ROOT / "docs" / "environment.md").read_text()
    documented = set(re.findall(r"^\| (.+?) \|", table, re.M)[1:])  # the first column, below its heading
    named = {name for cell in documented for name in re.findall(r"`([A-Z_]+)`", cell)}
    assert read <= named, f"not in docs/environment.md: {sorted(read - named)}"


def test_packages_shown_or_shipped_require_the_distribution_by_its_own_name():
    tomls = [block for page in PAGES for block in re.findall(r"```toml\n(.*?)```", page.read_text(), re.S)]
    tomls.append((ROOT / "examples" / "package" / "pyproject.toml").read_text())
    requirements = [re.findall(r"\"([^\"]+)\"", line) for text in tomls for line in text.splitlines()
                    if line.startswith(("requires", "dependencies"))]
    named = {re.split(r"[<>=!~\[; ]", req)[0] for found in requirements for req in found}
    assert "pythran-capsules" in named and "capsules" not in named, named
