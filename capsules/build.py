"""Stage 5: build kernel modules into the cache.

For each kernel file: read the exports, match every capsule to its SciPy
signature, compute the cache key, and, if the cache has no valid entry,
compile in a private staging directory (pythran + entry points + g++, in a
child process whose output is the build log), check the return types
pythran inferred, and publish.  ``jobs`` modules compile at once.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sysconfig
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from . import inline, levels, natural, workers
from .discover import kernel_files
from .cache import Cache, Entry, EntryData
from .child.protocol import EXIT_NO_SPACE, LAYOUT_FLAGS, LOOP_FLAGS, NO_SPACE, Built, Request, Result, failed
from .errors import CapsulesError, SignatureError, SpecError
from .failures import build_error, no_space_in_build, pointer_error, syntax_tree
from .generate import entries, runtime
from .generate.module import Scan, read_scan
from .key import cache_key
from .signatures import Signature, check_return, match
from .source import decode_source, functions, identifier, read_source, read_text
from .spec import ExportSpec

# -O3 and the host's full instruction set; pythran's own default is -O2 for a
# generic x86-64.  -ffp-contract=off: no fused multiply-add unless the source
# asks for it, so a compiled kernel gives bit for bit what the same function
# gives as plain Python.  -g0: debug info would be stripped at link time.
#
# The rest is gcc's code layout and loop unrolling, which change no result:
# the order of every operation is kept (benchmarks/FLAGS.md has the
# measurements).  LAYOUT_FLAGS: a loop gcc expects to run 8 times or more
# per entry starts on a 32-byte boundary, so that a short loop never
# straddles a 64-byte line (where the linker put the code decided whether a
# hot loop did); loops entered often but run briefly are not padded.
# LOOP_FLAGS: small loops unrolled, as LLVM (numba) unrolls them, within a
# bound that keeps the vectorized inner loop of a moving average from being
# unrolled again.  Calls to libm keep their PLT stubs (no -fno-plt).  The
# compiler process leaves the gcc-only parameters out for other compilers.
NATIVE_FLAGS = ("-O3", "-march=native", "-ffp-contract=off", "-g0", *LOOP_FLAGS, *LAYOUT_FLAGS)
# A portable build compiles once per CPU level (capsules.levels), each adding its -march.
PORTABLE_FLAGS = ("-O3", "-ffp-contract=off", "-g0", *LOOP_FLAGS, *LAYOUT_FLAGS)
# A checked build turns pythran's asserts on (Python's CFLAGS define NDEBUG).
CHECKED_FLAGS = ("-UNDEBUG",)
# A build split across cores parses pythran's core headers once per part: beyond
# a few parts the parsing, not the code generation, sets the compile's length.
MAX_PARTS = 4
SOURCE_COPY = "source.orig"  # in each entry: the exact source bytes it was built from
# The longest file stem a module name keeps: the build's files are named after the module, with
# suffixes (".x86_64_v4.cpython-312-x86_64-linux-gnu.so.part3.o"), and a kernel file's name may
# already be as long as the file system allows.  The key in the name keeps it unique.
MODULE_STEM = 64


@dataclass(frozen=True)
class Plan:
    """One kernel file's source bytes and the cache key they build under."""

    path: Path
    source: bytes
    flags: tuple[str, ...]
    key: str
    inputs: dict
    checked: bool = False
    constants: dict[str, dict[str, float]] = field(default_factory=dict)
    variants: tuple[levels.Level, ...] = (levels.Level(levels.NATIVE, ()),)

    @property
    def portable(self) -> bool:
        return is_portable(self.flags)

    @property
    def module_name(self) -> str:
        return module_name(self.path, self.key)

    def scan(self) -> Scan:
        """The exports of exactly these source bytes (pythran's parser: slow to import)."""
        text = decode_source(self.source, self.path)
        return read_scan(self.path, text=text, checked=self.checked, constants=self.constants)


@dataclass(frozen=True)
class BuildResult:
    """The outcome of building one kernel file."""

    path: Path
    entry: Entry
    built: bool
    seconds: float
    kernel: str = ""  # an inline kernel of the script at path: its name

    @property
    def key(self) -> str:
        return self.entry.key


def is_portable(flags: Iterable[str]) -> bool:
    """Whether a build's flags make binaries for any CPU of the platform (no ``-march=native``)."""
    return "-march=native" not in flags


def build_flags(portable: bool = False, checked: bool = False) -> tuple[str, ...]:
    """The compiler flags a build uses (``portable`` drops ``-march=native``)."""
    extra = tuple(os.environ.get("CAPSULES_CXXFLAGS", "").split())
    return (PORTABLE_FLAGS if portable else NATIVE_FLAGS) + (CHECKED_FLAGS if checked else ()) + extra


def module_name(path: Path, key: str) -> str:
    """A module name unique to this build, so an edited kernel never meets a stale import."""
    # ASCII only: a non-ASCII module name makes Python look for PyInitU_<punycode>
    stem = identifier(path.stem)[:MODULE_STEM]
    if not stem or stem[0].isdigit():
        stem = "k_" + stem
    return f"{stem}_{key[:12]}"


@dataclass(frozen=True)
class Unit:
    """One module to build: a kernel file, or the module generated for one inline kernel of a script."""

    path: Path
    lifted: inline.Lifted | None = None

    @property
    def shown(self) -> Path:
        """What the user reads: the file, or ``file:kernel`` for an inline kernel."""
        return self.path if self.lifted is None else Path(f"{self.path}:{self.kernel}")

    @property
    def kernel(self) -> str:
        """The inline kernel's name, or ""."""
        return self.lifted.name if self.lifted else ""

    def text(self) -> str:
        return self.lifted.text if self.lifted else read_text(self.path)

    @property
    def size(self) -> int:
        """How big its source is (without reading a kernel file again)."""
        return len(self.lifted.text) if self.lifted else self.path.stat().st_size

    def generated(self, cache: Cache) -> Path:
        """The file to build: the kernel file itself, or the inline kernel's generated module."""
        if self.lifted is None:
            return self.path
        return cache.source_file(self.lifted.filename, self.lifted.text.encode())

    def relocate(self, err: CapsulesError, built: Path | None) -> CapsulesError:
        return self.lifted.relocate(err, built) if self.lifted and built else err


def clean_targets(paths: Iterable[str | Path], cache: Cache) -> list[Path]:
    """What ``capsules clean PATH...`` removes the builds of.

    The paths themselves (a file, or every file in a folder, deleted ones
    included), and the generated modules of the decorated kernels found
    there, which build from the cache's own copy.
    """
    named = [Path(p) for p in paths]
    targets = list(named)
    for path in named:
        try:
            found, _ = units(kernel_files([path]) if path.exists() else [])
        except SpecError:
            continue  # nothing to build there now: its builds are still cleaned by path
        targets += [cache.source_path(u.lifted.filename, u.lifted.text.encode()) for u in found if u.lifted]
    return targets


def units(files: Iterable[Path]) -> tuple[list[Unit], list[CapsulesError]]:
    """The modules to build from kernel files; a script without export comments gives its inline kernels.

    Returns the units and one error per inline kernel that cannot be lifted.
    """
    found: list[Unit] = []
    errors: list[CapsulesError] = []
    for path in files:
        text = read_text(path)
        if inline.script_line(text) is None:
            found.append(Unit(path))
            continue
        lifted, problems = inline.lift_source(str(path), text)
        found += [Unit(path, one) for one in lifted]
        errors += problems
        if not lifted and not problems:
            found.append(Unit(path))  # nothing inline after all: the usual "nothing to build"
    return found, errors


def plan(
    path: str | Path,
    *,
    portable: bool = False,
    checked: bool = False,
    constants: Mapping[str, Mapping[str, float]] | None = None,
) -> Plan:
    """Read a kernel file and compute its cache key; parses and compiles nothing.

    Raises
    ------
    SpecError
        The file cannot be read.
    """
    path = Path(path)
    source = read_source(path)
    fixed = normalize_constants(path, constants or {})
    flags = build_flags(portable, checked)
    variants = levels.portable_levels() if portable else (levels.Level(levels.NATIVE, ()),)
    key, inputs = cache_key(
        source, flags, native=not portable, checked=checked, constants=fixed,
        variants={v.name: list(v.flags) for v in variants}, file_name=path.name,
    )
    return Plan(path, source, flags, key, inputs, checked, fixed, variants)


def normalize_constants(path: Path, constants: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """``{"kernel": {"parameter": value}}`` with finite float values, sorted (it is part of the key)."""
    fixed: dict[str, dict[str, float]] = {}
    for kernel in sorted(constants):
        values = constants[kernel]
        if not isinstance(values, Mapping):
            raise SpecError(f"constants for '{kernel}' must map parameter names to numbers", path=path)
        fixed[kernel] = {}
        for name in sorted(values):
            value = values[name]
            if not natural.is_real(value) or not math.isfinite(value):
                raise SpecError(f"constant {kernel}.{name}={value!r} is not a finite real number", path=path)
            fixed[kernel][name] = float(value)
    return fixed


def check(plan: Plan) -> tuple[Scan, dict[str, Signature]]:
    """The scanned module and the SciPy signature of each capsule.

    Raises
    ------
    SpecError, SignatureError
        The export comments or the capsule signatures are wrong.
    """
    scan = plan.scan()
    return scan, {s.name: match(s) for s in scan.exports if s.capsule}


def build(
    paths: Iterable[str | Path],
    *,
    cache: Cache | str | Path | None = None,
    jobs: int = 1,
    force: bool = False,
    portable: bool = False,
    checked: bool = False,
    constants: Mapping[str, Mapping[str, float]] | None = None,
    on_result: Callable[[Path, BuildResult | CapsulesError], None] | None = None,
) -> list[BuildResult]:
    """Build kernel files (or every kernel file in directories) into the cache.

    Every module is attempted; ``on_result`` is called as each finishes, with
    its result or error.  Afterwards the first error, if any, is raised.
    """
    cache = cache if isinstance(cache, Cache) else Cache(cache)
    todo, problems = units(kernel_files(paths))
    outcomes: dict[Unit, BuildResult | CapsulesError] = {}
    per_unit = _constants_by_unit(todo, constants or {})

    def one(unit: Unit) -> None:
        built = None
        try:
            built = unit.generated(cache)
            outcome: BuildResult | CapsulesError = build_plan(
                plan(built, portable=portable, checked=checked, constants=per_unit[unit]), cache, force=force
            )
            if unit.lifted:
                outcome = dataclasses.replace(outcome, path=unit.path, kernel=unit.kernel)
        except CapsulesError as err:
            outcome = unit.relocate(err, built)
        outcomes[unit] = outcome
        if on_result is not None:
            on_result(unit.shown, outcome)

    for err in problems:
        if on_result is not None:
            on_result(Path(err.path or ""), err)
    # largest sources first: the longest compiles start early and the workers
    # finish together (results keep the order given)
    by_size = sorted(todo, key=lambda u: u.size, reverse=True)
    with workers.expect(len(todo), jobs), ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        try:
            list(pool.map(one, by_size))
        except KeyboardInterrupt:  # stop the builds under way, rather than wait for them
            pool.shutdown(wait=False, cancel_futures=True)
            workers.interrupt()
            raise
    errors = problems + [o for o in (outcomes[u] for u in todo) if isinstance(o, CapsulesError)]
    if errors:
        raise errors[0]
    return [outcomes[u] for u in todo]  # type: ignore[misc]


def _constants_by_unit(
    todo: list[Unit], constants: Mapping[str, Mapping[str, float]]
) -> dict[Unit, dict[str, Mapping[str, float]]]:
    """Each module's share of the constants: those of the natural kernels it declares.

    Raises
    ------
    SpecError
        A constant names a kernel that none of the files declares.
    """
    declared = {u: natural.kernel_names(u.text()) if constants else set() for u in todo}
    unknown = sorted(set(constants) - set().union(*declared.values())) if todo else sorted(constants)
    if unknown:
        files = list(dict.fromkeys(u.path for u in todo))
        where = files[0] if len(files) == 1 else None
        raise SpecError(
            f"constants name {', '.join(map(repr, unknown))}, which no file being built declares as a natural "
            "kernel ('#capsules ROLE name(...)')",
            path=where,
        )
    return {u: {k: v for k, v in constants.items() if k in declared[u]} for u in todo}


def build_plan(plan: Plan, cache: Cache, *, force: bool = False) -> BuildResult:
    """Build one planned module unless the cache already has it."""
    start = time.perf_counter()
    if not force:
        entry = cache.lookup(plan.key)
        if entry is not None:
            return BuildResult(plan.path, entry, False, time.perf_counter() - start)
    with cache.lock(plan.key):
        entry = None if force else cache.lookup(plan.key)
        if entry is None:
            try:
                cache.discard(plan.key)  # a damaged or forced entry is rebuilt, never reused
                entry = _build_entry(plan, cache)
            except OSError as err:  # staging is removed: nothing is published
                if err.errno not in NO_SPACE:
                    raise
                raise no_space_in_build(plan, cache, err.strerror) from None
            return BuildResult(plan.path, entry, True, time.perf_counter() - start)
    return BuildResult(plan.path, entry, False, time.perf_counter() - start)


def _build_entry(plan: Plan, cache: Cache) -> Entry:
    with cache.staging() as staged, _child(staged) as child:
        # the child starts first: its import of pythran overlaps this process's scan
        scanned = time.perf_counter()
        scan, signatures = check(plan)
        scanned = time.perf_counter() - scanned
        capsules = [(s, signatures[s.name]) for s in scan.exports if s.capsule]
        # the exact bytes the key was computed from, for pickling after an edit
        (staged / SOURCE_COPY).write_bytes(plan.source)
        start = time.perf_counter()
        built = _run_child(child, _request(plan, scan, capsules, staged, cache), plan, staged, cache)
        child_seconds = time.perf_counter() - start
        for spec, sig in capsules:
            try:
                check_return(spec, sig, built["returns"][spec.name])
            except SignatureError as err:  # a returned pointer is said so, at its return
                raise pointer_error(plan, [spec], SignatureError, returned=True) or err from None
        data: EntryData = {
            "module_name": plan.module_name,
            "variants": {v.name: {"binary": b} for v, b in zip(plan.variants, built["binaries"])},
            "source": str(plan.path.resolve()),
            "exports": [s.to_json() for s in scan.exports],
            "returns": built["returns"],
            "inputs": plan.inputs,
            "build_seconds": round(time.perf_counter() - start, 3),
            # where a build's time goes (benchmarks/build_latency.py)
            "phase_seconds": {"scan": round(scanned, 4), "child": round(child_seconds, 4), **built["seconds"]},
        }
        return cache.publish(staged, plan.key, data)


@contextmanager
def _child(staged: Path) -> Iterator[workers.Process | subprocess.Popen]:
    """The compiler process for a build in ``staged``; killed if the build stops before it ran."""
    (staged / "build.log").touch(mode=0o600)  # the process writes into it (capsules.workers)
    child = workers.take()
    try:
        yield child
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        if child.stdin is not None:
            child.stdin.close()


def _request(
    plan: Plan, scan: Scan, capsules: list[tuple[ExportSpec, Signature]], staged: Path, cache: Cache
) -> Request:
    """What the compiler process is asked to build: the generated Python and C++, the targets, where to work."""
    source = staged / plan.path.name
    source.write_text(scan.source, encoding="utf-8")  # what pythran compiles: the module and its adapters
    cores = workers.cores()
    parts = _parts(scan.source, capsules, cores // len(plan.variants))
    return {
        "source": str(source),
        "module_dir": str(plan.path.resolve().parent),
        "module_name": plan.module_name,
        "outdir": str(staged),
        "prologue": runtime.prologue(checked=plan.checked),
        "entries": entries.source(capsules, plan.path.name, checked=plan.checked, parts=parts),
        "targets": [
            {"flags": [*plan.flags[:1], *v.flags, *plan.flags[1:]], "binary": _binary_name(plan, v)}
            for v in plan.variants
        ],
        "result": str(staged / "result.json"),
        "log": str(staged / "build.log"),
        # precompiled headers: for native builds, which are the ones people wait for while editing
        "pch": None if plan.portable or os.environ.get("CAPSULES_PCH") == "0" else str(cache.pch_dir()),
        # with more builds to come, the precompiled headers are made now, for them
        "pch_now": workers.more_expected(),
        # a module's own headers are for its edit loop, which builds one module at a time
        "module_pch": not workers.in_batch(),
        # compiler processes at once: the targets side by side, or each split into parts
        "cores": cores,
        "parts": None if parts is None else {
            "count": max(parts) + 1, "functions": {s.function: k for (s, _), k in zip(capsules, parts)},
        },
    }


def _run_child(
    child: workers.Process | subprocess.Popen, request: Request, plan: Plan, staged: Path, cache: Cache
) -> Built:
    """Send the request to the compiler process and wait for its result; raise where the build failed."""
    text = json.dumps(request)
    (staged / "request.json").write_text(text)  # kept with the log, for a failed build
    assert child.stdin is not None
    try:
        child.stdin.write(text.encode())
        child.stdin.close()
    except BrokenPipeError:
        pass  # it died: no result, reported below
    child.wait()
    try:
        result: Result = json.loads((staged / "result.json").read_text())
    except (OSError, ValueError):
        if child.returncode == EXIT_NO_SPACE:  # it could not even write its result
            raise no_space_in_build(plan, cache, "the compiler process could not write its result") from None
        result = failed("internal", "the compiler process died")
    if not result["ok"]:
        raise build_error(plan, result, staged / "build.log", cache)
    return result


def _parts(source: str, capsules: list[tuple[ExportSpec, Signature]], cores: int) -> list[int] | None:
    """The part of a split build each capsule's kernel compiles in, or None to compile the module whole.

    A module of several kernels splits into as many parts as it has cores
    (up to MAX_PARTS), balanced by the kernels' lengths in lines.
    """
    count = min(cores, len(capsules), MAX_PARTS)
    if count < 2:
        return None
    lengths = {
        name: (node.end_lineno or node.lineno) - node.lineno + 1
        for name, node in functions(syntax_tree(source.encode("utf-8"))).items()
    }
    return entries.partition([lengths.get(s.function, 1) for s, _ in capsules], count)


def _binary_name(plan: Plan, variant: levels.Level) -> str:
    level = "" if variant.name == levels.NATIVE else f".{variant.name}"
    return f"{plan.module_name}{level}{sysconfig.get_config_var('EXT_SUFFIX')}"
