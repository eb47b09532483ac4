"""The ``capsules`` command: parses arguments and calls the library, nothing more."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ._version import __version__
from .build import BuildResult, Unit, build, clean_targets, kernel_files, units
from .cache import Cache
from .errors import CapsulesError, SpecError
from .prebuilt import build_into
from . import workers
from .generate.module import NOTHING_TO_BUILD, Scan, scan
from .signatures import match
from .spec import ExportSpec
from .verify import EXAMPLES, ULP, parse_domain, verify

_PRINT = threading.Lock()
LIST_WIDTH = 100  # columns `capsules list` fits in, unless --wide


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code (0 success, 1 any error; verify: 1 a divergence, 2 nothing checked)."""
    args = _parser().parse_args(argv)
    try:
        code = args.run(args)
        sys.stdout.flush()  # a closed pipe shows here, not in Python's final flush
        return code
    except CapsulesError as err:
        _error(err)
        return args.failed  # 1; capsules verify's 1 means a divergence, so its errors give 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (capsules list | head -1): stop quietly, as other tools do; point
        # stdout at /dev/null so that Python's final flush does not fail again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="capsules", description="Compile Python kernels with pythran into SciPy LowLevelCallables."
    )
    parser.add_argument("--version", action="version", version=f"capsules {__version__}")
    parser.set_defaults(failed=1)
    sub = parser.add_subparsers(required=True, metavar="COMMAND")
    paths = {"nargs": "*", "default": ["kernels"], "metavar": "PATH", "help": "kernel files or directories"}
    cache = {"metavar": "DIR", "help": "cache directory (default: $CAPSULES_CACHE or the user cache)"}

    p = sub.add_parser("build", help="compile kernel modules into the cache")
    p.add_argument("paths", **paths)
    p.add_argument("--cache", **cache)
    p.add_argument("-j", "--jobs", type=int, default=workers.cpus(), metavar="N",
                   help="modules to compile at once (default: the number of CPUs)")
    p.add_argument("--force", action="store_true", help="rebuild even if the cache has a valid build")
    p.add_argument("--portable", action="store_true", help="do not target this CPU (no -march=native)")
    p.add_argument("--checked", action="store_true",
                   help="bounds-checked views and pointers (user_data too), division by zero and asserts raised, "
                        "non-finite results reported")
    p.add_argument("--const", action="append", default=[], metavar="KERNEL.PARAM=VALUE",
                   help="fix a natural kernel's parameter at build time (repeatable)")
    p.add_argument("--into", metavar="DIR",
                   help="build for every CPU level and write DIR/<stem>/ for shipping (e.g. PKG/__capsules__)")
    p.set_defaults(run=_build)

    p = sub.add_parser("list", help="show each capsule's C signature and the SciPy functions that accept it")
    p.add_argument("paths", **paths)
    p.add_argument("--wide", action="store_true",
                   help="one long line per kernel, with its pythran export (default: fit 100 columns)")
    p.set_defaults(run=_list)

    p = sub.add_parser("check", help="validate export comments and signatures without compiling")
    p.add_argument("paths", **paths)
    p.set_defaults(run=_check)

    p = sub.add_parser("clean", help="remove the builds of the given sources, or every build, from the cache")
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="kernel files or folders whose builds to remove (default: every build)")
    p.add_argument("--cache", **cache)
    p.set_defaults(run=_clean)

    p = sub.add_parser("demo", help="build the bundled kernels and time them against the same Python callbacks")
    p.add_argument("--cache", **cache)
    p.add_argument("--plot", metavar="FILE.png", help="save a figure of the images and speedups (needs matplotlib)")
    p.add_argument("-j", "--jobs", type=int, default=workers.cpus(), metavar="N",
                   help="modules to compile at once (default: the number of CPUs)")
    p.add_argument("--quick", action="store_true", help="small problem sizes, one run each")
    p.set_defaults(run=_demo)

    p = sub.add_parser("verify", help="check each compiled kernel against its own Python, on generated inputs")
    p.add_argument("paths", **paths)
    p.add_argument("--examples", type=int, default=EXAMPLES, metavar="N",
                   help=f"inputs to try per kernel (default: {EXAMPLES})")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the generated inputs (default: 0)")
    p.add_argument("--domain", action="append", default=[], metavar="NAME=LO:HI",
                   help="draw NAME's values from [LO, HI] (repeatable); a kernel's own '#capsules verify' "
                        "comment wins")
    p.add_argument("--ulp", type=int, default=ULP, metavar="K",
                   help=f"values within K units in the last place agree (default: {ULP})")
    p.add_argument("--checked", action="store_true", help="verify the checked build")
    p.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    p.add_argument("--cache", **cache)
    p.set_defaults(run=_verify, failed=2)
    return parser


def _build(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    outcomes: list[BuildResult | CapsulesError] = []
    report = _reporter(outcomes)
    options = {"cache": args.cache, "jobs": args.jobs, "force": args.force, "checked": args.checked,
               "constants": _constants(args.const), "on_result": report}
    try:
        if args.into:
            for _result, written in build_into(args.paths, args.into, **options):
                print(f"wrote       {written}")
        else:
            build(args.paths, portable=args.portable, **options)
    except CapsulesError as err:
        if not any(o is err for o in outcomes):  # not a module's own failure: not reported yet
            raise
        print(f"{sum(isinstance(o, CapsulesError) for o in outcomes)} of {len(outcomes)} module(s) failed",
              file=sys.stderr)
        return 1
    built = sum(isinstance(o, BuildResult) and o.built for o in outcomes)
    print(f"{len(outcomes)} module(s), {built} compiled, in {time.perf_counter() - start:.2f} s")
    return 0


def _reporter(outcomes: list[BuildResult | CapsulesError]) -> Callable[[Path, BuildResult | CapsulesError], None]:
    """A build() on_result callback: one line per module as it finishes, outcomes collected."""

    def report(path: Path, outcome: BuildResult | CapsulesError) -> None:
        with _PRINT:
            outcomes.append(outcome)
            if isinstance(outcome, CapsulesError):
                print(f"failed      {path}", flush=True)
                _error(outcome)
            else:
                state = "built" if outcome.built else "up to date"
                print(f"{state:<11} {path}  ({outcome.seconds:.2f} s)", flush=True)

    return report


def _demo(args: argparse.Namespace) -> int:
    from . import demo  # imports most of SciPy: only the demo pays for it

    if args.plot:
        demo.require_matplotlib()  # before minutes of compiling, not after
    print(f"building the bundled kernels in {demo.kernels_dir()}", flush=True)
    start = time.perf_counter()
    demo.build_kernels(cache=args.cache, jobs=args.jobs, on_result=_reporter([]))
    print(f"built in {time.perf_counter() - start:.1f} s; timing each kernel as a Python callback and as a capsule\n",
          flush=True)
    rows = demo.tour(cache=args.cache, settings=demo.Settings.quick() if args.quick else demo.Settings())
    print(demo.format_table(rows))
    if args.plot:
        print(f"figure saved to {demo.plot(rows, args.plot)}")
    bad = [row.step for row in rows if not row.ok]
    if bad:
        print(f"capsule result out of tolerance: {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0


def _verify(args: argparse.Namespace) -> int:
    """Exit 0 when every kernel agrees, 1 when any diverges (2, from main, when they cannot be checked)."""
    start = time.perf_counter()
    domains = dict(parse_domain(text) for text in args.domain)
    report = verify(args.paths, examples=args.examples, seed=args.seed, domains=domains, ulp=args.ulp,
                    checked=args.checked, cache=args.cache)
    print(report)
    if args.json:
        report.write_json(args.json)
    diverging = len(report.divergences)
    print(f"{len(report.results)} kernel(s): {len(report.results) - diverging} agree, {diverging} diverge, "
          f"in {time.perf_counter() - start:.1f} s")
    return 1 if diverging else 0


def _constants(items: list[str]) -> dict[str, dict[str, float]]:
    constants: dict[str, dict[str, float]] = {}
    for item in items:
        name, _, value = item.partition("=")
        kernel, _, parameter = name.partition(".")
        try:
            number = float(value)
        except ValueError:
            number = None
        if not kernel or not parameter or number is None:
            raise CapsulesError(f"--const {item!r}: expected KERNEL.PARAM=NUMBER, e.g. moving_average.length=9")
        constants.setdefault(kernel, {})[parameter] = number
    return constants


def _list(args: argparse.Namespace) -> int:
    rows = [("kernel", "pythran export", "C signature", "accepted by")]
    notes: dict[int, list[str]] = {}
    todo, problems = units(kernel_files(args.paths))
    failed = _report_all(problems)
    for unit in todo:
        path, result = unit.path, _scan(unit)
        failed += _report_all(result.errors)
        for spec in result.exports:
            if not spec.capsule:
                rows.append((f"{path.stem}.{spec.name}", spec.pythran, "(Python function, not a capsule)", "-"))
                notes[len(rows) - 1] = _doc_lines(spec)
                continue
            try:
                sig = match(spec)
            except CapsulesError as err:
                failed += _report_all([unit.relocate(err, path)])
                continue
            rows.append((f"{path.stem}.{spec.name}", spec.declared, sig.text, ", ".join(sig.targets)))
            notes[len(rows) - 1] = _doc_lines(spec)
    if args.wide:
        _table(rows, notes)
    else:
        _table(*_narrow(rows, notes), width=LIST_WIDTH)
    return 1 if failed else 0


def _narrow(rows: list[tuple[str, ...]], notes: dict[int, list[str]]) -> tuple[list[tuple[str, ...]], dict[int, list[str]]]:
    """``list``'s table within LIST_WIDTH: what does not fit goes under each row."""
    # the pythran export column goes: a capsule's C signature says it again, a function's goes below
    notes = {i: [*notes[i], f"pythran export: {row[1]}"] if row[3] == "-" else notes[i] for i, row in enumerate(rows) if i}
    narrow = [(kernel, signature, targets) for kernel, _, signature, targets in rows]
    if sum(max(len(r[i]) for r in narrow) for i in range(3)) + 4 <= LIST_WIDTH:
        return narrow, notes
    notes = {i: [*lines, f"accepted by: {rows[i][3]}"] if rows[i][3] != "-" else lines for i, lines in notes.items()}
    return [(kernel, signature) for kernel, signature, _ in narrow], notes


def _doc_lines(spec: ExportSpec) -> list[str]:
    layout = f"user_data: {spec.user_data_layout}" if spec.user_data_layout else ""
    return [line for line in (spec.formula, layout) if line]


def _scan(unit: Unit) -> Scan:
    """The exports of a kernel file, or of an inline kernel's module (errors at the user's lines)."""
    if unit.lifted is None:
        return scan(unit.path)
    result = scan(unit.path, unit.lifted.text)
    return dataclasses.replace(result, errors=tuple(unit.relocate(e, unit.path) for e in result.errors))


def _check(args: argparse.Namespace) -> int:
    files = kernel_files(args.paths)
    todo, found = units(files)
    problems, kernels = _report_all(found), 0
    for unit in todo:
        result = _scan(unit)
        problems += _report_all(result.errors)
        if not result.exports and not result.errors:  # what build would refuse, check refuses too
            problems += _report_all([SpecError(NOTHING_TO_BUILD, path=unit.path)])
        for spec in (s for s in result.exports if s.capsule):
            kernels += 1
            try:
                match(spec)
            except CapsulesError as err:
                problems += _report_all([unit.relocate(err, unit.path)])
    if problems:
        print(f"{problems} problem(s) in {len(files)} file(s)", file=sys.stderr)
        return 1
    print(f"ok: {kernels} capsule(s) in {len(files)} file(s)")
    return 0


def _clean(args: argparse.Namespace) -> int:
    cache = Cache.existing(args.cache)
    sources = clean_targets(args.paths, cache)
    count = cache.clean(sources)
    print(f"removed {count} build(s) from {cache.root}" + (f" made from {', '.join(args.paths)}" if sources else ""))
    return 0


def _report_all(errors: Sequence[CapsulesError]) -> int:
    for err in errors:
        _error(err)
    return len(errors)


def _error(err: CapsulesError) -> None:
    print(err.report(), file=sys.stderr)


def _table(rows: list[tuple[str, ...]], notes: dict[int, list[str]] | None = None, width: int | None = None) -> None:
    """Print rows in aligned columns; ``notes[i]`` are indented lines printed under row i, wrapped to ``width``."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, row in enumerate(rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        for line in (notes or {}).get(i, []):
            print(textwrap.fill(line, width, initial_indent="    ", subsequent_indent="      ") if width else f"    {line}")
