"""Stage 7: check each compiled kernel against its own Python, on inputs Hypothesis generates.

Pythran compiles Python with C's semantics in places: an int64 wraps where
Python's integers grow, a float division by zero gives inf where Python
raises, ``math.sqrt(-1)`` gives nan.  :func:`verify` calls each capsule the
way SciPy calls it, through its C function pointer with SciPy's argument
layout, and the function the user wrote with the same logical arguments,
and compares the two on inputs Hypothesis generates for the kernel's role.
The first input where they differ is shrunk to the smallest Hypothesis
finds, and its cause named when it is one of the known classes
(:data:`CAUSES`).

Two results agree when both raise, when both report failure (an ndimage
callback's 0), or when every value is within ``ulp`` units in the last
place, NaN matching NaN and a zero matching only a zero of the same sign.

A kernel narrows its inputs or widens its tolerance with a comment above
its export comment (or decorator), which the verifier reads::

    #capsules verify x=0:1 user_data=0:10 ulp=8
    #pythran export capsule f(int32, float64*, float64*)
"""

from __future__ import annotations

import ast
import ctypes
import inspect
import json
import math
import random
import re
import struct
import warnings
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from . import workers
from .build import Unit, build, kernel_files, units
from .cache import Cache
from .decorators import InlineKernel, lift_function
from .errors import CapsulesError, KernelError, SpecError
from .generate.parameters import ParameterType, types_of
from .load import ComplexParts, Kernel, KernelCallable, KernelModule, load
from .signatures import FORMS, Form
from .source import decode_source, read_source

EXAMPLES = 100
ULP = 4
# How SciPy's callers shape their calls, by default: (lowest, highest)
SHAPES: dict[str, tuple[int, int]] = {
    "variables": (1, 3),  # a raw integrand's n (quad passes 1; nquad 1 or more)
    "filter_size": (1, 9),  # a generic_filter window (a generic_filter1d filter: FILTER1D_SIZE)
    "output_length": (1, 8),  # a generic_filter1d output line
    "rank": (1, 3),  # a geometric_transform's coordinates
}
FILTER1D_SIZE = (1, 5)
COORDINATES = (0, 65535)  # the output coordinates of an image this size
USER_DATA_ITEMS = 16  # for a raw kernel whose subscripts of user_data are not constants
ARRAY_LENGTH = (1, 6)  # each axis of a natural kernel's array parameter (len(NAME))

CAUSES: dict[str, str] = {
    "int-overflow": "int64 wrap-around: Python's integers grow past 2**63, the compiled ones wrap",
    "float-to-int": "a float too large for an int64: Python converts it exactly (or raises), C's conversion "
    "gives nonsense",
    "division-by-zero": "float division by zero: Python raises ZeroDivisionError, C gives inf or nan",
    "math-domain": "math domain error: Python raises ValueError, C gives nan or -inf",
    "overflow": "overflow: Python raises OverflowError, C gives inf",
    "index": "an index out of range: Python raises IndexError, a build that is not checked reads past the end",
    "python-raises": "Python raises where the compiled kernel returns a value",
    "compiled-raises": "the compiled kernel raises where Python returns a value",
    "typing": "a different value, with no error on either side: Pythran's typing or C's semantics (round, % of "
    "a negative divisor, an argument's C type) or another implementation of a library function",
}

# Finite floats a kernel meets at its edges: zeros of both signs, the smallest
# subnormal and normal numbers, the largest finite ones.
SPECIAL_FLOATS = (0.0, -0.0, 1.0, -1.0, 5e-324, -5e-324, 2.2250738585072014e-308, 1e-300, -1e-300,
                  1e300, -1e300, 1.7976931348623157e308, -1.7976931348623157e308)
_VERIFY = re.compile(r"^\s*#\s*capsules\s+verify\b(.*)$")
# lines that start a kernel: a verify comment applies to the first one below it
_KERNEL_START = re.compile(r"^\s*(#\s*pythran\s+export\b|#\s*capsules\s+(?!verify\b)\w|@)")
_OPTION = re.compile(r"^(len\(\w+\)|\w+(?:\[\d+\])?)=([^:]+)(?::(.+))?$")


# ------------------------------------------------------------------ settings


@dataclass(frozen=True)
class Settings:
    """How one kernel is checked: examples, seed, tolerance and the domains of its inputs.

    ``domains`` maps an argument's or parameter's name (``x``, ``a``,
    ``user_data``, ``user_data[0]``), a shape (``variables``,
    ``filter_size``, ``output_length``, ``rank``) or ``len(user_data)`` to
    the closed range ``(low, high)`` its values are drawn from.
    ``any_zero``: a zero matches a zero of either sign (for a kernel that
    picks one of equal values, such as a median).  ``atol``: values this
    close agree whatever their ulp (for a function whose relative error
    grows near its zeros).
    """

    examples: int = EXAMPLES
    seed: int = 0
    ulp: int = ULP
    domains: tuple[tuple[str, tuple[float, float]], ...] = ()
    any_zero: bool = False
    atol: float = 0.0

    def __post_init__(self) -> None:
        if self.examples < 1:
            raise CapsulesError(f"examples must be at least 1, not {self.examples}")
        if self.ulp < 0:
            raise CapsulesError(f"ulp must be 0 or more, not {self.ulp}")
        for name, (low, high) in self.domains:
            if not low <= high:
                raise CapsulesError(f"domain {name}={low:g}:{high:g} is empty")

    def domain(self, name: str, default: tuple[float, float] | None = None) -> tuple[float, float] | None:
        """The range of ``name``'s values, or ``default``."""
        return dict(self.domains).get(name, default)

    def with_domains(self, domains: Mapping[str, tuple[float, float]]) -> Settings:
        """These settings, ``domains`` replacing those of the same names."""
        merged = dict(self.domains) | dict(domains)
        return replace(self, domains=tuple(sorted(merged.items())))


def parse_domain(text: str) -> tuple[str, tuple[float, float]]:
    """``"x=0:1"`` -> ``("x", (0.0, 1.0))``; ``"len(user_data)=6"`` -> ``("len(user_data)", (6.0, 6.0))``.

    Raises
    ------
    CapsulesError
        The text is not ``NAME=LOW:HIGH`` or ``NAME=VALUE`` with numbers, ``LOW <= HIGH``.
    """
    found = _OPTION.match(text.strip())
    try:
        low = float(found.group(2)) if found else math.nan
        high = float(found.group(3)) if found and found.group(3) is not None else low
    except ValueError:
        low = high = math.nan
    if found is None or not low <= high:
        raise CapsulesError(f"domain {text!r}: expected NAME=LOW:HIGH (numbers, LOW <= HIGH), e.g. x=0:1")
    return found.group(1), (low, high)


def comment_settings(
    text: str, path: str, line: int, settings: Settings, names: Collection[str] | None = None
) -> Settings:
    """``settings`` with the kernel's own ``#capsules verify`` comments applied: those above ``line``.

    A verify comment applies to the first kernel below it (an export
    comment, a ``#capsules`` role comment or a decorator), and wins over the
    command line's options for that kernel.  ``names``: those a domain may
    name (the kernel's arguments, parameters and shapes), when known.

    Raises
    ------
    SpecError
        A verify comment is malformed or names what the kernel does not
        have (located at its line).
    """
    lines = text.splitlines()
    mine: list[int] = []
    for number in range(line - 1, 0, -1):
        source = lines[number - 1] if number <= len(lines) else ""
        if _VERIFY.match(source):
            mine.append(number)
        elif _KERNEL_START.match(source):
            break
    for number in reversed(mine):
        settings = _apply(_VERIFY.match(lines[number - 1]).group(1), settings, names,
                          {"path": path, "line": number, "source_line": lines[number - 1].rstrip()})
    return settings


def _tolerance(word: str, settings: Settings, where: dict[str, Any]) -> Settings:
    name, _, value = word.partition("=")
    try:
        number = int(value) if name == "ulp" else float(value)
        if number >= 0:
            return replace(settings, **{name: number})
    except ValueError:
        pass
    kind = "a whole number" if name == "ulp" else "a number"
    raise SpecError(f"'{word}': {name} takes {kind}, 0 or more", **where)


def _apply(options: str, settings: Settings, names: Collection[str] | None, where: dict[str, Any]) -> Settings:
    domains: dict[str, tuple[float, float]] = {}
    for word in options.split():
        if word == "domain":  # "#capsules verify domain x=0:1" reads better to some
            continue
        if word == "any-zero":
            settings = replace(settings, any_zero=True)
            continue
        if word.startswith(("ulp=", "atol=")):
            settings = _tolerance(word, settings, where)
            continue
        try:
            name, bounds = parse_domain(word)
        except CapsulesError as err:
            raise SpecError(f"'#capsules verify': {err.message}", **where) from None
        if names is not None and _base(name) not in names:
            raise SpecError(f"'#capsules verify': the kernel below has no '{_base(name)}' (a domain may name "
                            f"{', '.join(names)})", **where)
        domains[name] = bounds
    return settings.with_domains(domains)


def _base(name: str) -> str:
    """The argument a domain is about: ``user_data`` for ``user_data[2]`` and ``len(user_data)``."""
    found = re.match(r"^len\((\w+)\)$", name) or re.match(r"^(\w+)\[\d+\]$", name)
    return found.group(1) if found else name


# ------------------------------------------------------------------ results


@dataclass(frozen=True)
class Divergence:
    """The smallest input found at which a kernel's compiled and Python results differ."""

    inputs: str
    compiled: str
    python: str
    cause: str  # a key of CAUSES
    detail: str = ""  # where in the kernel's source, when known

    @property
    def explanation(self) -> str:
        """The cause in words, and the line of the kernel it comes from when known."""
        return CAUSES[self.cause] + (f" ({self.detail})" if self.detail else "")


@dataclass(frozen=True)
class KernelResult:
    """One kernel's verdict."""

    path: str
    line: int
    kernel: str
    role: str
    settings: Settings
    divergence: Divergence | None = None

    @property
    def agrees(self) -> bool:
        """Whether no input was found at which the two sides differ."""
        return self.divergence is None

    def message(self) -> str:
        """``path:line: kernel: compiled gives A, Python gives B for inputs ...``, or that it agrees."""
        where = f"{self.path}:{self.line}: {self.kernel}"
        if self.divergence is None:
            domains = ", ".join(f"{n}={_bounds(lo, hi)}" for n, (lo, hi) in self.settings.domains)
            within = f" within {domains}" if domains else ""
            atol = f", atol {self.settings.atol:g}" if self.settings.atol else ""
            return (f"{where}: agrees on {self.settings.examples} examples{within} "
                    f"(ulp {self.settings.ulp}{atol}, seed {self.settings.seed})")
        d = self.divergence
        return (f"{where}: compiled {d.compiled}, Python {d.python} for inputs {d.inputs}\n"
                f"    cause: {d.explanation}")

    def to_json(self) -> dict[str, Any]:
        """This result as JSON data: where, its settings, and its divergence if any."""
        data: dict[str, Any] = {
            "path": self.path, "line": self.line, "kernel": self.kernel, "role": self.role,
            "agrees": self.agrees, "examples": self.settings.examples, "seed": self.settings.seed,
            "ulp": self.settings.ulp, "atol": self.settings.atol, "any_zero": self.settings.any_zero, "domains": {n: list(b) for n, b in self.settings.domains},
        }
        if self.divergence is not None:
            d = self.divergence
            data["divergence"] = {"inputs": d.inputs, "compiled": d.compiled, "python": d.python,
                                  "cause": d.cause, "explanation": d.explanation, "message": self.message()}
        return data


@dataclass(frozen=True)
class Report:
    """What :func:`capsules.verify` found, one :class:`KernelResult` per kernel."""

    results: tuple[KernelResult, ...]

    @property
    def agrees(self) -> bool:
        """Whether every kernel agrees with its Python."""
        return all(r.agrees for r in self.results)

    @property
    def divergences(self) -> tuple[KernelResult, ...]:
        """The results of the kernels that diverge."""
        return tuple(r for r in self.results if not r.agrees)

    def __str__(self) -> str:
        return "\n".join(r.message() for r in self.results)

    def to_json(self) -> dict[str, Any]:
        """The report as JSON data: ``{"agrees": bool, "kernels": [...]}``, for a CI to read."""
        return {"version": 1, "agrees": self.agrees, "kernels": [r.to_json() for r in self.results]}

    def write_json(self, path: str | Path) -> None:
        """Write :meth:`to_json` to ``path``."""
        Path(path).write_text(json.dumps(self.to_json(), indent=2) + "\n")


# ------------------------------------------------------------------ the kernels to check


@dataclass(frozen=True)
class Subject:
    """A compiled kernel, the Python function it was compiled from, and where to report it.

    ``text`` is the module as Python, its lines numbered as in ``path``
    (for an inline kernel, the module lifted from the script); ``comments``
    the text whose ``#capsules verify`` comments apply.
    """

    kernel: Kernel
    function: Callable[..., Any]
    path: str
    line: int
    text: str
    comments: str


Target = Kernel | KernelModule | str | Path


def verify(
    target: Target | Iterable[Target],
    *,
    examples: int = EXAMPLES,
    seed: int = 0,
    domains: Mapping[str, tuple[float, float]] | None = None,
    ulp: int = ULP,
    checked: bool = False,
    cache: Cache | str | Path | None = None,
) -> Report:
    """Check compiled kernels against the Python they were compiled from.

    Parameters
    ----------
    target
        A kernel (a file's or an inline one), a loaded module, a kernel
        file, a script with inline kernels, a directory (its kernel files),
        or a list of these.  Files are built first if needed.
    examples
        How many inputs Hypothesis generates per kernel (more when shrinking).
    seed
        The seed of Hypothesis's generator: the same seed, the same inputs.
    domains
        ``{"x": (0.0, 1.0)}``: the range of an argument's or parameter's
        values, of ``user_data``'s items, or a shape (see
        :class:`~capsules.verify.Settings`).
        A kernel's own ``#capsules verify`` comment wins over these.
    ulp
        The largest difference, in units in the last place, at which two
        values still agree.
    checked, cache
        The build of files to check (``load(..., checked=True)``), and the
        cache to find or build it in; a kernel or module given is checked
        as it was loaded (an inline kernel not yet built is built there).

    Returns
    -------
    Report
        One result per kernel; ``report.agrees`` is True when all agree.

    Raises
    ------
    CapsulesError
        A file cannot be read or built, or a verify comment is malformed.
    """
    settings = Settings(examples, seed, ulp).with_domains(domains or {})
    return Report(tuple(check(subject, settings) for subject in subjects(target, checked=checked, cache=cache)))


def subjects(target: Target | Iterable[Target], *, checked: bool = False,
             cache: Cache | str | Path | None = None) -> Iterator[Subject]:
    """The kernels ``target`` names, each built (or loaded) and paired with its Python."""
    if isinstance(target, (str, Path)):
        yield from _file_subjects(target, checked, cache)
    elif isinstance(target, Kernel):
        yield _kernel_subject(target, cache)
    elif isinstance(target, KernelModule):
        yield from (_kernel_subject(k, cache) for k in target)
    else:
        for one in target:
            yield from subjects(one, checked=checked, cache=cache)


def _file_subjects(path: str | Path, checked: bool, cache: Cache | str | Path | None) -> Iterator[Subject]:
    cache = cache if isinstance(cache, Cache) else Cache(cache)
    # every module at once, on every core; each then loads from the cache
    build([path], cache=cache, checked=checked, jobs=workers.cpus())
    todo, problems = units(kernel_files([path]))
    if problems:
        raise problems[0]
    for unit in todo:
        yield from _unit_subjects(unit, checked, cache)


def _unit_subjects(unit: Unit, checked: bool, cache: Cache) -> Iterator[Subject]:
    built = None
    try:
        built = unit.generated(cache)
        module = load(built, cache=cache, checked=checked)
    except CapsulesError as err:
        raise unit.relocate(err, built) from err
    if unit.lifted is None:
        yield from (_kernel_subject(k, cache) for k in module)
        return
    kernel = module[unit.kernel]
    function = getattr(module.python_module(), kernel.name)
    origin = "\n".join(unit.lifted.origin_lines)
    yield Subject(kernel, function, str(unit.path), unit.lifted.line, unit.lifted.text, origin)


def _kernel_subject(kernel: Kernel, cache: Cache | str | Path | None) -> Subject:
    if isinstance(kernel, InlineKernel):
        kernel.build(cache)  # as it was decorated (checked or not); nothing to do if it is built
        lifted = lift_function(kernel.function, kernel.declaration, kernel.defined)
        return Subject(kernel, kernel.py, lifted.origin, lifted.line, lifted.text, "\n".join(lifted.origin_lines))
    text = decode_source(read_source(kernel.module.path), kernel.module.path)
    return Subject(kernel, kernel.py, kernel.spec.path, kernel.spec.line, text, text)


# ------------------------------------------------------------------ one kernel


def check(subject: Subject, settings: Settings) -> KernelResult:
    """Search for an input at which the subject's compiled and Python results differ."""
    from hypothesis import HealthCheck, Phase, find
    from hypothesis import settings as hypothesis_settings
    from hypothesis.errors import Flaky, NoSuchExample

    caller = Caller(subject.kernel, subject.function, subject.text)
    settings = comment_settings(subject.comments, subject.path, subject.line, settings, caller.names)
    result = KernelResult(subject.path, subject.line, subject.kernel.name, caller.role, settings)
    failures: list[Case] = []

    def differs(case: Case) -> bool:
        if agree(caller.compiled(case), caller.python(case), settings):
            return False
        failures.append(case)
        return True

    options = hypothesis_settings(max_examples=settings.examples, database=None, deadline=None,
                                  phases=(Phase.generate, Phase.shrink), suppress_health_check=list(HealthCheck))
    try:
        case = find(caller.cases(settings), differs, settings=options, random=random.Random(settings.seed))
    except NoSuchExample:
        return result
    except Flaky:  # a result that did not repeat: report the first input that differed, unshrunk
        if not failures:
            raise
        case = failures[0]
    return replace(result, divergence=caller.divergence(case, subject))


@dataclass(frozen=True)
class Outcome:
    """What one side did: its values (a result, a line, coordinates), its success flag, or what it raised.

    A complex integrand's values are its real and imaginary parts (``parts``).
    """

    values: tuple[float, ...] = ()
    ok: bool = True
    error: BaseException | None = field(default=None, compare=False)
    parts: bool = False

    def __str__(self) -> str:
        if self.error is not None:
            return f"raises {type(self.error).__name__}: {self.error}"
        if not self.ok:
            return "reports failure (returns 0)"
        if self.parts:
            return f"gives {complex(*self.values)!r}"
        shown = ", ".join(_number(v) for v in self.values)
        return f"gives {shown}" if len(self.values) == 1 else f"gives [{shown}]"


def agree(compiled: Outcome, python: Outcome, settings: Settings) -> bool:
    """Whether two outcomes agree: both raise, both fail, or every value is :func:`close`."""
    if compiled.error is not None or python.error is not None:
        return compiled.error is not None and python.error is not None
    if not (compiled.ok and python.ok):
        return compiled.ok == python.ok
    return len(compiled.values) == len(python.values) and all(
        close(a, b, settings) for a, b in zip(compiled.values, python.values)
    )


def close(a: float, b: float, settings: Settings) -> bool:
    """``a`` and ``b`` within ``ulp`` units in the last place (or ``atol``).

    NaN matches NaN, an infinity the same infinity, a zero a zero of its sign.
    """
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if a == 0.0 and b == 0.0:
        return settings.any_zero or math.copysign(1.0, a) == math.copysign(1.0, b)
    if math.isinf(a) or math.isinf(b):  # an overflow is no rounding error, however near the largest float
        return a == b
    return abs(_ordinal(a) - _ordinal(b)) <= settings.ulp or abs(a - b) <= settings.atol


def _ordinal(x: float) -> int:
    """Floats in order as integers: neighbours differ by 1 (both zeros are 0)."""
    bits = struct.unpack("<q", struct.pack("<d", x))[0]
    return bits if bits >= 0 else -(bits & 0x7FFF_FFFF_FFFF_FFFF)


def _bounds(low: float, high: float) -> str:
    """``0:1`` for a range, ``3`` for one value, as a '#capsules verify' comment writes them."""
    shown = [repr(int(x)) if float(x).is_integer() and abs(x) < 1e16 else repr(float(x)) for x in (low, high)]
    return shown[0] if low == high else ":".join(shown)


def _number(x: float) -> str:
    return repr(float(x)) if isinstance(x, float) and not float(x).is_integer() else repr(x)


def _value(x: Any) -> str:
    """A parameter's value as the user would write it: a number, or an array as nested lists."""
    if isinstance(x, np.ndarray):
        return repr(x.tolist())
    return _number(x)


def _copied(x: Any) -> Any:
    return x.copy() if isinstance(x, np.ndarray) else x


# ------------------------------------------------------------------ inputs


@dataclass(frozen=True)
class Case:
    """One input, as the role sees it.

    ``values``: the integration point, the window or the input line;
    ``count``: the output line's length; ``coords``: the output
    coordinates; ``data``: a raw kernel's user_data, or a natural kernel's
    parameters (in the order ``lowlevel`` takes them): a float, an int or
    a numpy array each, as its type declares.
    """

    values: tuple[float, ...] = ()
    count: int = 0
    coords: tuple[int, ...] = ()
    data: tuple[Any, ...] = ()


# the kind of call each SciPy target makes
_KINDS = {"generic_filter": "filter", "generic_filter1d": "filter1d", "geometric_transform": "mapping"}
_C_TYPES = {"double": ctypes.c_double, "int": ctypes.c_int, "npy_intp": ctypes.c_ssize_t}


def form_of(kernel: Kernel) -> Form:
    """The SciPy form of a kernel's signature."""
    return next(f for f in FORMS if f.text == kernel.signature)


class Caller:
    """Calls one kernel both ways, compiled as SciPy calls it and as plain Python, on a :class:`Case`."""

    def __init__(self, kernel: Kernel, function: Callable[..., Any], text: str = "") -> None:
        self.kernel, self.function = kernel, function
        self.spec, self.form = kernel.spec, form_of(kernel)
        self.natural = bool(self.spec.role)
        kind = _KINDS.get(self.form.targets[0], "integrand")
        self.kind = "quad" if kind == "integrand" and self.form.args[0] == "double" else kind
        self.role = self.spec.role or self.form.targets[0]
        self.c_functions: dict[int, Any] = {}  # by address: a complex integrand's parts are two functions
        # a natural kernel's runtime parameters, in the order lowlevel() takes them, with their types
        count = len(self.kernel.parameters)
        self.types = dict(zip(self.kernel.parameters, types_of(self.spec.parameter_types, count)))
        slot = self.form.user_data
        self.reads_user_data = not self.natural and slot is not None and self.spec.reads[slot] is not None
        self.parameters = self._parameter_names(function)
        self.user_data_items = self._user_data_items(text) if self.reads_user_data else 0

    def c_function(self, address: int) -> Any:
        """The C function at ``address``, typed as SciPy calls it."""
        if address not in self.c_functions:
            restype = _C_TYPES[self.form.ret]
            argtypes = [_C_TYPES.get(a, ctypes.c_void_p) for a in self.form.args]
            # PYFUNCTYPE keeps the GIL and raises the exception a failing kernel sets, as SciPy's callers see it
            self.c_functions[address] = ctypes.PYFUNCTYPE(restype, *argtypes)(address)
        return self.c_functions[address]

    # ---------------------------------------------------------------- names

    @property
    def names(self) -> tuple[str, ...]:
        """What a domain may name for this kernel: its arguments or parameters, then the shapes."""
        own = self.spec.provided + self.parameters if self.natural else self.spec.params
        return (*own, *SHAPES)

    def _parameter_names(self, function: Callable[..., Any]) -> tuple[str, ...]:
        """Every parameter of a natural kernel, in the function's order (build-time constants too)."""
        if not self.natural:
            return ()
        names = tuple(inspect.signature(function).parameters)
        return names[len(self.spec.provided):]

    def _values_name(self) -> str:
        """The name of the values argument (the point, the window, the input line, the coordinates)."""
        if self.natural:
            return self.spec.provided[0]
        return self.spec.params[1 if self.kind == "integrand" else 0]

    def _user_data_items(self, text: str) -> int:
        """How many user_data items to pass: those the kernel reads, when it subscripts user_data by constants only."""
        reads = self.spec.reads[self.form.user_data] or 0
        if reads and _constant_subscripts(text, self.spec.name, self._user_data_name):
            return reads
        return max(reads, USER_DATA_ITEMS)

    @property
    def _user_data_name(self) -> str:
        return self.spec.params[self.form.user_data] if self.form.user_data is not None else "user_data"

    # ---------------------------------------------------------------- strategies

    def cases(self, settings: Settings) -> Any:
        """A Hypothesis strategy of the inputs this kernel's role is called with."""
        from hypothesis import strategies as st

        data = self._data(settings)
        if self.kind in ("quad", "integrand"):
            if self.natural:
                names = self.spec.provided
                return st.builds(Case, values=st.tuples(*(_floats(settings.domain(n)) for n in names)), data=data)
            low, high = (1, 1) if self.kind == "quad" else _shape(settings, "variables")
            points = st.integers(low, high).flatmap(
                lambda n: st.lists(_floats(settings.domain(self._values_name())), min_size=n, max_size=n))
            return st.builds(Case, values=points.map(tuple), data=data)
        if self.kind == "filter":
            low, high = _shape(settings, "filter_size")
            window = st.lists(_floats(settings.domain(self._values_name())), min_size=max(low, 1), max_size=high)
            return st.builds(Case, values=window.map(tuple), data=data)
        if self.kind == "filter1d":
            return self._lines(settings, data)
        low, high = _shape(settings, "rank")
        coordinate = st.integers(*_int_range(settings.domain(self._values_name(), COORDINATES)))
        coords = st.lists(coordinate, min_size=max(low, 1), max_size=high)
        return st.builds(Case, coords=coords.map(tuple), data=data)

    def _lines(self, settings: Settings, data: Any) -> Any:
        from hypothesis import strategies as st

        sizes = st.integers(*_int_range(settings.domain("filter_size", FILTER1D_SIZE), low=1))
        lengths = st.integers(*_int_range(settings.domain("output_length", SHAPES["output_length"]), low=1))
        value = _floats(settings.domain(self._values_name()))

        def line(shape: tuple[int, int]) -> Any:
            size, count = shape
            values = st.lists(value, min_size=count + size - 1, max_size=count + size - 1)
            return st.builds(Case, values=values.map(tuple), count=st.just(count), data=data)

        return st.tuples(sizes, lengths).flatmap(line)

    def _data(self, settings: Settings) -> Any:
        """The strategy of a natural kernel's parameters, or of a raw kernel's user_data items."""
        from hypothesis import strategies as st

        if self.natural:
            return st.tuples(*(_parameter(name, kind, settings) for name, kind in self.types.items()))
        if not self.reads_user_data:
            return st.just(())
        name = self._user_data_name
        items = self.user_data_items
        count = int(settings.domain(f"len({name})", (items, items))[0])
        dtype = np.dtype(self.kernel.user_data_dtype)
        every = settings.domain(name)
        return st.tuples(*(_items(dtype, settings.domain(f"{name}[{i}]", every)) for i in range(count)))

    # ---------------------------------------------------------------- the two sides

    def compiled(self, case: Case) -> Outcome:
        """Call the capsule's C function as SciPy does: its argument layout, user_data from ``lowlevel``.

        A complex integrand's two functions are called in turn, as SciPy
        integrates ``lowlevel().real`` and ``lowlevel().imag``.
        """
        if self.natural:
            made = self.kernel.lowlevel(**dict(zip(self.kernel.parameters, case.data)))
        else:
            made = self.kernel.lowlevel(user_data=self._user_data(case))
        if not isinstance(made, ComplexParts):
            return self._call(made, case)
        real, imag = self._call(made.real, case), self._call(made.imag, case)
        if real.error is not None or imag.error is not None:
            return real if real.error is not None else imag
        return Outcome(real.values + imag.values, parts=True)

    def _call(self, callable_: KernelCallable, case: Case) -> Outcome:
        """One C function of the kernel called on ``case``, with the user_data ``callable_`` holds."""
        held = callable_.user_data_array
        user_data = None if held is None else held.ctypes.data
        arrays, args, out = self._c_arguments(case)
        if self.form.user_data is not None:
            args.append(user_data)
        try:
            returned = self.c_function(callable_.kernel.address)(*args)
        except Exception as err:  # noqa: BLE001  (the kernel's own exception, whatever it is)
            cause = err.__cause__
            if cause is None and isinstance(err, KernelError):
                return Outcome(ok=False)  # an ndimage callback returned 0 without raising: failure, as 0 in Python
            return Outcome(error=_unwrapped(cause) if cause is not None else err)
        del arrays  # kept alive until the call returned
        if self.form.ret == "double":
            return Outcome((returned,))
        return Outcome(tuple(float(v) for v in out), ok=returned != 0)

    def _c_arguments(self, case: Case) -> tuple[list[np.ndarray], list[Any], np.ndarray]:
        """The arrays to keep alive, the C arguments before user_data, and the array the kernel writes."""
        nothing = np.empty(0)
        if self.kind == "quad":
            return [], [case.values[0]], nothing
        if self.kind == "integrand":
            point = np.array(case.values, dtype=np.float64)
            return [point], [len(case.values), point.ctypes.data], nothing
        if self.kind == "filter":
            window, out = np.array(case.values, dtype=np.float64), np.full(1, np.nan)
            return [window, out], [window.ctypes.data, len(window), out.ctypes.data], out
        if self.kind == "filter1d":
            line, out = np.array(case.values, dtype=np.float64), np.full(case.count, np.nan)
            return [line, out], [line.ctypes.data, len(line), out.ctypes.data, case.count], out
        coords, out = np.array(case.coords, dtype=np.intp), np.full(len(case.coords), np.nan)
        return [coords, out], [coords.ctypes.data, out.ctypes.data, len(coords), len(coords)], out

    def python(self, case: Case, function: Callable[..., Any] | None = None) -> Outcome:
        """Call the function the user wrote (or ``function``, a copy of it) with the same logical arguments."""
        function = function or self.function
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")  # a numpy scalar's overflow warns: its value is what counts
            try:
                return self._natural(case, function) if self.natural else self._raw(case, function)
            except Exception as err:  # noqa: BLE001  (what the user's function raises is the result)
                return Outcome(error=err)

    def _all_parameters(self, case: Case) -> list[Any]:
        """Every parameter's value for the Python side, an array a copy of its own (the function may write it)."""
        fixed, given = dict(self.spec.constants), dict(zip(self.kernel.parameters, case.data))
        return [fixed[p] if p in fixed else _copied(given[p]) for p in self.parameters]

    def _natural(self, case: Case, call: Callable[..., Any]) -> Outcome:
        parameters = self._all_parameters(case)
        if self.kind == "integrand" and self.spec.part:
            value = complex(call(*case.values, *parameters))
            return Outcome((value.real, value.imag), parts=True)
        if self.kind == "integrand":
            return Outcome((float(call(*case.values, *parameters)),))
        if self.kind == "filter":
            return Outcome((float(call(np.array(case.values), *parameters)),))
        if self.kind == "filter1d":
            out = np.full(case.count, np.nan)
            call(np.array(case.values), out, *parameters)
            return Outcome(tuple(float(v) for v in out))
        result = call(np.array(case.coords, dtype=np.int64), *parameters)
        return Outcome(tuple(float(v) for v in result))

    def _raw(self, case: Case, call: Callable[..., Any]) -> Outcome:
        user_data = self._user_data(case)
        tail = [user_data] if self.form.user_data is not None else []
        if self.kind == "quad":
            return Outcome((float(call(case.values[0], *tail)),))
        if self.kind == "integrand":
            return Outcome((float(call(len(case.values), np.array(case.values), *tail)),))
        if self.kind == "filter":
            window, out = np.array(case.values), np.full(1, np.nan)
            flag = call(window, len(window), out, *tail)
        elif self.kind == "filter1d":
            line, out = np.array(case.values), np.full(case.count, np.nan)
            flag = call(line, len(line), out, case.count, *tail)
        else:
            coords, out = np.array(case.coords, dtype=np.int64), np.full(len(case.coords), np.nan)
            flag = call(coords, out, len(coords), len(coords), *tail)
        return Outcome(tuple(float(v) for v in out), ok=bool(flag))

    def _user_data(self, case: Case) -> np.ndarray | None:
        if not self.reads_user_data:
            return None
        return np.array(case.data, dtype=self.kernel.user_data_dtype)

    # ---------------------------------------------------------------- reporting

    def describe(self, case: Case) -> str:
        """The input as the user's function sees it: ``x=0.0, y=1.5; a=2.0``."""
        if self.natural:
            given = dict(zip(self.kernel.parameters, case.data))
            parameters = ", ".join(f"{p}={_value(v)}" for p, v in given.items())
            named = self._described(case, self.spec.provided)
            return f"{named}; {parameters}" if parameters else named
        shown = self._described(case, self.spec.params)
        if self.reads_user_data:
            shown += f", {self._user_data_name}=[{', '.join(_number(v) for v in case.data)}]"
        return shown

    def _described(self, case: Case, names: Sequence[str]) -> str:
        """The values, windows, lines or coordinates of ``case``, under the kernel's own argument names."""
        values = ", ".join(_number(v) for v in case.values)
        if self.kind == "mapping":
            rank = "" if self.natural else f", {names[2]}={names[3]}={len(case.coords)}"
            return f"{names[0]}={list(case.coords)}{rank}"
        if self.natural and self.kind == "integrand":
            return ", ".join(f"{n}={_number(v)}" for n, v in zip(names, case.values))
        if self.kind == "quad":
            return f"{names[0]}={values}"
        if self.kind == "integrand":
            return f"{names[0]}={len(case.values)}, {names[1]}=[{values}]"
        if self.natural:
            count = f", len({names[1]})={case.count}" if self.kind == "filter1d" else ""
            return f"{names[0]}=[{values}]{count}"
        count = f", {names[3]}={case.count}" if self.kind == "filter1d" else ""
        return f"{names[0]}=[{values}], {names[1]}={len(case.values)}{count}"

    def divergence(self, case: Case, subject: Subject) -> Divergence:
        compiled, python = self.compiled(case), self.python(case)
        cause, detail = classify(compiled, python, self.probe(case, subject), subject.path)
        return Divergence(self.describe(case), str(compiled), str(python), cause, detail)

    def probe(self, case: Case, subject: Subject) -> Probe:
        """Run the Python side once more in a copy of its module that notes integers past int64."""
        probe = Probe()
        try:
            function = probe.instrumented(subject.text, subject.path, self.function.__name__)
        except Exception:  # noqa: BLE001  (a module that cannot run again: classify without the probe)
            return probe
        probe.outcome = self.python(case, function)
        return probe


def _unwrapped(error: BaseException) -> BaseException:
    """A compiled kernel's exception as Python would word it: Pythran puts its message in parentheses."""
    text = str(error)
    if len(error.args) == 1 and text.startswith("(") and text.endswith(")"):
        try:
            return type(error)(text[1:-1])
        except Exception:  # noqa: BLE001  (an exception type that takes other arguments: keep it as it is)
            return error
    return error


def _constant_subscripts(text: str, function: str, name: str) -> bool:
    """Whether ``function`` of the module ``text`` uses its argument ``name`` only as ``name[k]``, k a constant."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return False
    node = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function), None)
    if node is None:
        return False
    constant = {id(sub.value) for sub in ast.walk(node) if isinstance(sub, ast.Subscript)
                and isinstance(sub.slice, ast.Constant) and type(sub.slice.value) is int}
    return all(id(use) in constant for use in ast.walk(node) if isinstance(use, ast.Name) and use.id == name)


def _shape(settings: Settings, name: str) -> tuple[int, int]:
    return _int_range(settings.domain(name, SHAPES[name]), low=1)


def _int_range(bounds: tuple[float, float], low: int | None = None) -> tuple[int, int]:
    lo, hi = math.ceil(bounds[0]), math.floor(bounds[1])
    if low is not None:
        lo, hi = max(lo, low), max(hi, low)
    return lo, max(lo, hi)


def _floats(bounds: tuple[float, float] | None) -> Any:
    """Finite floats in ``bounds`` (all of them by default), the special values among them often."""
    from hypothesis import strategies as st

    low, high = bounds if bounds is not None else (-math.inf, math.inf)
    lo = None if math.isinf(low) else low
    hi = None if math.isinf(high) else high
    specials = [x for x in SPECIAL_FLOATS if _signed(low) <= _signed(x) <= _signed(high)]
    floats = st.floats(lo, hi, allow_nan=False, allow_infinity=False)
    # floats first: a divergence shrinks to the simplest float that shows it (710.0 for exp), not to a special
    return st.one_of(floats, st.sampled_from(specials)) if specials else floats


def _signed(x: float) -> tuple[float, float]:
    """``x`` for ordering as Hypothesis bounds floats: -0.0 below 0.0."""
    return x, math.copysign(1.0, x)


def _parameter(name: str, kind: ParameterType, settings: Settings) -> Any:
    """A natural kernel's parameter of type ``kind``: a float, an int or an array, within its domain.

    An array's items are drawn from the domain of its name (``table=0:1``),
    the length of each of its axes from ``len(NAME)`` (:data:`ARRAY_LENGTH`
    by default).
    """
    from hypothesis.extra import numpy as hnp

    dtype = np.dtype(kind.dtype)
    if kind.rank == 0:
        return _items(dtype, settings.domain(name))
    low, high = _int_range(settings.domain(f"len({name})", ARRAY_LENGTH), low=1)
    shapes = hnp.array_shapes(min_dims=kind.rank, max_dims=kind.rank, min_side=low, max_side=high)
    return hnp.arrays(dtype, shapes, elements=_items(dtype, settings.domain(name)))


def _items(dtype: np.dtype, bounds: tuple[float, float] | None) -> Any:
    """user_data items of ``dtype``, in ``bounds``."""
    from hypothesis import strategies as st

    if dtype.kind == "f":
        if dtype.itemsize == 4:
            low, high = bounds if bounds is not None else (-math.inf, math.inf)
            return st.floats(None if math.isinf(low) else low, None if math.isinf(high) else high,
                             allow_nan=False, allow_infinity=False, width=32)
        return _floats(bounds)
    if dtype.kind == "b":
        return st.booleans().map(float)
    info = np.iinfo(dtype)
    low, high = bounds if bounds is not None else (info.min, info.max)
    return st.integers(max(info.min, math.ceil(low)), min(info.max, math.floor(high)))


# ------------------------------------------------------------------ causes

INT64 = (-(2**63), 2**63 - 1)
_CONVERSIONS = frozenset({"int", "round", "floor", "ceil", "trunc"})


class Probe:
    """Notes the first integer outside int64 that the Python side makes, and the line that made it."""

    def __init__(self) -> None:
        self.line: int | None = None
        self.conversion = False
        self.outcome: Outcome | None = None

    def note(self, value: Any, line: int, conversion: bool) -> Any:
        if self.line is None and type(value) is int and not INT64[0] <= value <= INT64[1]:
            self.line, self.conversion = line, conversion
        return value

    def instrumented(self, text: str, path: str, name: str) -> Callable[..., Any]:
        """``name`` from ``text`` run again, every integer operation and conversion noted."""
        tree = _Noting().visit(ast.parse(text, filename=path))
        namespace: dict[str, Any] = {"__name__": "capsules_verify_probe", "__file__": path, _NOTE: self.note}
        exec(compile(ast.fix_missing_locations(tree), path, "exec"), namespace)  # noqa: S102  (the user's own module)
        return namespace[name]


_NOTE = "_capsules_verify_note"


class _Noting(ast.NodeTransformer):
    """Wraps arithmetic and conversions to int in calls that note their results."""

    def _wrap(self, node: ast.expr, conversion: bool) -> ast.expr:
        call = ast.Call(ast.Name(_NOTE, ast.Load()),
                        [node, ast.Constant(getattr(node, "lineno", 0)), ast.Constant(conversion)], [])
        return ast.copy_location(call, node)

    def visit_BinOp(self, node: ast.BinOp) -> ast.expr:
        return self._wrap(self.generic_visit(node), False)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.expr:
        return self._wrap(self.generic_visit(node), False)

    def visit_Call(self, node: ast.Call) -> ast.expr:
        self.generic_visit(node)
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        return self._wrap(node, name in _CONVERSIONS)

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.stmt:
        self.generic_visit(node)
        if not isinstance(node.target, ast.Name):
            return node
        value = ast.BinOp(ast.Name(node.target.id, ast.Load()), node.op, node.value)
        assign = ast.Assign([node.target], self._wrap(ast.copy_location(value, node), False))
        return ast.copy_location(assign, node)


def classify(compiled: Outcome, python: Outcome, probe: Probe, path: str) -> tuple[str, str]:
    """The known cause of a divergence (a key of :data:`CAUSES`) and the line of the kernel it comes from."""
    if probe.line is not None:
        return ("float-to-int" if probe.conversion else "int-overflow"), f"line {probe.line}"
    error = python.error
    if error is None:
        return ("compiled-raises" if compiled.error is not None else "typing"), ""
    noted = probe.outcome.error if probe.outcome is not None else None
    line = _raised_at(noted, path) if noted is not None else None
    line = line or _raised_at(error, path)
    where = f"line {line}" if line else ""
    text = str(error)
    if isinstance(error, ZeroDivisionError):
        return "division-by-zero", where
    if isinstance(error, OverflowError):
        if "convert float" in text:
            return "float-to-int", where
        return ("int-overflow" if "int too large" in text else "overflow"), where
    if isinstance(error, ValueError):
        return ("float-to-int" if "convert float NaN" in text else
                "math-domain" if "math domain" in text else "python-raises"), where
    if isinstance(error, IndexError):
        return "index", where
    return "python-raises", where


def _raised_at(error: BaseException, path: str) -> int | None:
    """The last line of ``path`` in the traceback of ``error``."""
    line, tb = None, error.__traceback__
    while tb is not None:
        if Path(tb.tb_frame.f_code.co_filename) == Path(path):
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
