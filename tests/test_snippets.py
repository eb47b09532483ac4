"""Every Python block of the README and of docs/, run as a reader runs them, with what they print checked.

A page's Python blocks run in order as one script, from the repository's
root, each block at the line it has in the page, so that an error names the
page's line.  A ``text`` block right after a Python block is what that block
prints: it is compared as doctest compares (``...`` stands for any text).  A
block that cannot run as written is marked on the line before it with
``<!-- not run: REASON -->``, and its test says the reason.

The blocks are written out as Python files rather than run by sybil or
pytest-examples, which execute them with the Markdown page as their source
file: an inline kernel's decorator reads the function's source from its file,
which must then be Python.
"""

from __future__ import annotations

import doctest
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
NOT_RUN = re.compile(r"^<!-- not run: (?P<reason>\S.*?) -->$")
MARK = "--- block at line "

pytestmark = pytest.mark.compile


@dataclass(frozen=True)
class Block:
    """A fenced block of a page: its language, the index of its fence line, its lines."""

    language: str
    fence: int
    lines: tuple[str, ...]
    not_run: str | None
    output: tuple[str, ...] | None = None  # the text block that follows it, for a Python block


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of a Markdown page, each Python block with the text block that follows it."""
    text = page.read_text().splitlines()
    found: list[Block] = []
    i = 0
    while i < len(text):
        if not text[i].startswith("```"):
            i += 1
            continue
        end = next(j for j in range(i + 1, len(text)) if text[j].startswith("```"))
        before = next((line for line in reversed(text[:i]) if line.strip()), "")
        marked = NOT_RUN.match(before)
        found.append(Block(text[i][3:].strip(), i, tuple(text[i + 1 : end]), marked and marked.group("reason")))
        i = end + 1
    for k, block in enumerate(found[1:], 1):
        previous = found[k - 1]
        between = text[previous.fence + len(previous.lines) + 2 : block.fence]
        if previous.language == "python" and block.language == "text" and not any(s.strip() for s in between):
            found[k - 1] = Block(previous.language, previous.fence, previous.lines, previous.not_run, block.lines)
    return found


def script(page: Path) -> tuple[str, list[Block]]:
    """The page's runnable Python blocks as one script, each at its own lines, each announcing itself first."""
    lines = [""] * len(page.read_text().splitlines())
    runnable = [b for b in blocks(page) if b.language == "python" and b.not_run is None]
    for block in runnable:
        lines[block.fence] = f"print({MARK!r} + {str(block.fence + 1)!r}, flush=True)"
        lines[block.fence + 1 : block.fence + 1 + len(block.lines)] = block.lines
    return "\n".join(lines) + "\n", runnable


def _with_python(page: Path) -> bool:
    return any(b.language == "python" for b in blocks(page))


@pytest.fixture(scope="module")
def env(cache_dir: Path) -> dict[str, str]:
    """The session's cache, where the other tests build the same kernel files."""
    return {**os.environ, "CAPSULES_CACHE": str(cache_dir), "MPLBACKEND": "Agg"}


@pytest.mark.parametrize("page", [p for p in PAGES if _with_python(p)], ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_python_block_runs_and_prints_what_the_page_shows(page, env, tmp_path):
    text, runnable = script(page)
    skipped = [f"line {b.fence + 1}: {b.not_run}" for b in blocks(page) if b.language == "python" and b.not_run]
    if not runnable:
        pytest.skip("; ".join(skipped))
    path = tmp_path / f"{page.stem.replace('-', '_')}.py"  # named after the page, so an error names it
    path.write_text(text)
    done = subprocess.run([sys.executable, str(path)], cwd=ROOT, env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=900, check=False)
    failed = f"{page.name}: the block that failed is the last one announced"
    assert done.returncode == 0, f"{failed}\n{done.stdout}{done.stderr}"
    printed = dict(re.findall(rf"^{re.escape(MARK)}(\d+)\n(.*?)(?=^{re.escape(MARK)}|\Z)", done.stdout, re.M | re.S))
    checker = doctest.OutputChecker()
    for block in runnable:
        got = printed[str(block.fence + 1)]
        if block.output is not None:
            want = "\n".join(block.output) + "\n"
            options = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
            where = f"{page.name}:{block.fence + 1}"
            assert checker.check_output(want, got, options), f"{where}: printed\n{got}\nnot\n{want}"


def test_the_runner_reads_a_page_as_written(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# t\n\n```python\nprint(1 + 1)\n```\n\n```text\n2\n```\n\n<!-- not run: a fragment -->\n"
                    "```python\nundefined_name\n```\n")
    found = blocks(page)
    assert [(b.language, b.fence, b.not_run, b.output) for b in found] == [
        ("python", 2, None, ("2",)), ("text", 6, None, None), ("python", 11, "a fragment", None)]
    text, runnable = script(page)
    assert text.splitlines()[3] == "print(1 + 1)" and "undefined_name" not in text and len(runnable) == 1


def test_the_debugging_page_builds_a_kernel_with_symbols_and_debug_information(tmp_path, cache_dir):
    elffile = pytest.importorskip("elftools.elf.elffile", reason="needs pyelftools (auditwheel's, in the test extra)")
    page = ROOT / "docs" / "debugging.md"
    (command,) = [b for b in blocks(page) if b.language == "sh" and "PYTHRANRC" in "".join(b.lines)]
    steps = "\n".join(line for line in command.lines if not line.startswith("gdb "))  # gdb would wait for a crash
    (tmp_path / "kernels").mkdir()
    (tmp_path / "kernels" / "integrands.py").write_text((ROOT / "kernels" / "integrands.py").read_text())
    env = {**os.environ, "CAPSULES_CACHE": str(cache_dir),
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    done = subprocess.run(["bash", "-c", f"set -e\n{steps}"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=900, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    load = ("import capsules; print(capsules.load('kernels/integrands.py').entry.directory)")
    shown = subprocess.run([sys.executable, "-c", load], cwd=tmp_path, capture_output=True, text=True, check=True,
                           env={**env, "PYTHRANRC": str(tmp_path / "debug.pythranrc"), "CAPSULES_CXXFLAGS": "-g"})
    (binary,) = Path(shown.stdout.strip()).glob("*.so")
    with binary.open("rb") as stream:
        sections = {section.name for section in elffile.ELFFile(stream).iter_sections()}
    assert {".debug_info", ".symtab"} <= sections, sorted(sections)
