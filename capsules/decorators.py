"""Inline kernels: decorators that compile a function of a script, a module or a notebook.

::

    import math, capsules
    from scipy import integrate

    @capsules.integrand("x, y, z; a, b")      # the grammar of the #capsules comment
    def osc(x, y, z, a, b):
        return math.cos(a * x + b * y + z)

    integrate.nquad(osc.lowlevel(a=1.0, b=2.0), [[0, 1]] * 3)
    osc(0.1, 0.2, 0.3, 1.0, 2.0)              # still the plain Python function

The decorated object is a :class:`~capsules.Kernel` that compiles lazily:
importing a module full of kernels reads nothing; the first ``lowlevel()``,
``as_ctypes()`` or ``signature`` lifts the function and what it uses into a
kernel module (``capsules.inline``), then loads it like a kernel file:
from the cache when that exact source was built before, else by building it.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import linecache
import os
import threading
import re
import sys
from collections.abc import Callable
from pathlib import Path
from types import FunctionType
from typing import Any, TypeVar, overload

from scipy import LowLevelCallable

from . import inline
from .cache import Cache
from .errors import CapsulesError, KernelError, SpecError
from .generate.roles import ROLES
from .load import ComplexParts, Kernel, KernelModule, callables, load, prebuilt_module
from .prebuilt import not_built_either
from .reporting import cell_name, decorator_at, for_user
from .natural import different_names, listed_names

F = TypeVar("F", bound=Callable[..., Any])
C = TypeVar("C", bound=Callable[..., Any])


def _user_facing(function: C) -> C:
    """Raise capsules' errors from here, not from deep inside: the message says where the user's line is.

    This frame is then the only one of capsules' in the traceback (and in
    IPython, a located error shows as its message alone).
    """

    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except CapsulesError as err:
            raise for_user(err).with_traceback(None) from err.__cause__

    return call  # type: ignore[return-value]


class InlineKernel:
    """A kernel written inline: call it as Python, ask it for a ``LowLevelCallable``.

    What the decorators return, and what a ``%%capsules`` cell puts in the
    notebook's namespace.  It is a :class:`~capsules.Kernel`: it holds the
    Kernel it builds, located at the user's file and line, and hands it
    everything but its name and its Python function.

    Everything a Kernel offers (``lowlevel``, ``as_ctypes``, ``signature``,
    ``targets``, pickling) builds it on first use; :meth:`build` does so at
    once, to see errors early.
    """

    def __init__(
        self, function: Callable[..., Any], declaration: inline.Declaration, *, checked: bool = False,
        portable: bool = False,
    ) -> None:
        functools.update_wrapper(self, function)
        self.function = function
        # a stat, not a read: importing a module of kernels still reads nothing
        self.defined = file_stamp(function.__code__.co_filename)
        self.declaration = declaration
        self.checked, self.portable = checked, portable
        self._kernel: Kernel | None = None
        self._lock = threading.Lock()

    @classmethod
    def loaded(cls, function: Callable[..., Any], kernel: Kernel, lifted: inline.Lifted) -> InlineKernel:
        """An inline kernel already built: ``kernel``, whose errors ``lifted`` locates, with its Python twin."""
        made = cls(function, inline.Declaration(kernel.spec.role or inline.RAW, kernel.name, ""))
        made._kernel = _located(kernel, lifted)
        return made

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.function(*args, **kwargs)

    name = property(lambda self: self.declaration.name, doc="The function's name.")
    py = property(lambda self: self.function, doc="The function itself, run as plain Python.")
    # the rest is the built kernel's
    spec = property(lambda self: self.kernel.spec, doc="The export, located in the user's file.")
    matched = property(lambda self: self.kernel.matched)
    capsule = property(lambda self: self.kernel.capsule)
    module = property(lambda self: self.kernel.module, doc="The generated kernel module, loaded.")
    address = property(lambda self: self.kernel.address)
    signature = property(lambda self: self.kernel.signature, doc=Kernel.signature.__doc__)
    targets = property(lambda self: self.kernel.targets, doc=Kernel.targets.__doc__)
    user_data_dtype = property(lambda self: self.kernel.user_data_dtype, doc=Kernel.user_data_dtype.__doc__)
    parameters = property(lambda self: self.kernel.parameters, doc=Kernel.parameters.__doc__)

    @property
    @_user_facing
    def kernel(self) -> Kernel:
        """The compiled kernel (built on first use), its errors located at the user's file and line."""
        kernel = self.build()._kernel
        assert kernel is not None
        return kernel

    @property
    def built(self) -> bool:
        """Whether the compiled kernel is loaded in this process."""
        return self._kernel is not None

    @_user_facing
    def build(self, cache: Cache | str | Path | None = None) -> InlineKernel:
        """Compile (or load from the cache) now; returns the kernel.

        Raises
        ------
        SpecError, SignatureError, BuildError
            Located at the user's file and line.
        """
        with self._lock:
            if self._kernel is None:
                self._kernel = self._load(cache)
        return self

    @_user_facing
    def lowlevel(self, user_data: Any = None, **parameters: Any) -> LowLevelCallable | ComplexParts:
        """As :meth:`Kernel.lowlevel`; the callable keeps this inline kernel alive (and pickles as it)."""
        return callables(self, self.kernel.user_data_array(user_data, **parameters))  # type: ignore[arg-type]

    @_user_facing
    def user_data_array(self, user_data: Any = None, **parameters: Any) -> Any:
        """As :meth:`Kernel.user_data_array`."""
        return self.kernel.user_data_array(user_data, **parameters)

    @_user_facing
    def as_ctypes(self) -> Any:
        """As :meth:`Kernel.as_ctypes`."""
        return self.kernel.as_ctypes()

    def _load(self, cache: Cache | str | Path | None) -> Kernel:
        lifted = lift_function(self.function, self.declaration, self.defined)
        shown = cell_name(lifted.origin)
        if shown is not None:  # an IPython cell: its kernels' run-time errors name it as the notebook does
            KernelError.shown_as[lifted.filename] = shown
        origin = Path(lifted.origin)
        # a package's prebuilt binaries first (its wheel carries them): no cache, no pythran, no compiler
        installed, unsuitable = prebuilt_module(origin, lifted.text.encode(), checked=self.checked, constants={},
                                                kernel=lifted.name)
        if installed is not None:
            return _located(installed[lifted.name], lifted)
        path = None
        try:
            cache = cache if isinstance(cache, Cache) else Cache(cache)
            path = cache.source_file(lifted.filename, lifted.text.encode())
            module = load(path, cache=cache, checked=self.checked, portable=self.portable)
        except CapsulesError as err:
            if unsuitable is not None:
                raise not_built_either(unsuitable, err, path=origin, line=lifted.line) from err
            raise (lifted.relocate(err, path) if path else err) from err.__cause__
        return _located(module[lifted.name], lifted)

    def __repr__(self) -> str:
        if self._kernel is None:
            return (f"<InlineKernel {self.declaration.role} {self.name} from {self.function.__code__.co_filename} "
                    "(not built)>")
        return f"<InlineKernel {self.name}: {self.signature!r} for {', '.join(self.targets)}>"

    def __reduce__(self) -> tuple[Any, ...]:
        # the generated module pickles with its source and binary (capsules.ship)
        return _restore, (self.module, self.name)


Kernel.register(InlineKernel)


def _located(kernel: Kernel, lifted: inline.Lifted) -> Kernel:
    """``kernel`` of the generated module, its export located at the user's file and line (for its errors)."""
    line = lifted.line
    spec = dataclasses.replace(
        kernel.spec, path=lifted.origin, line=line, source_line=inline.line_text(lifted.origin_lines, line)
    )
    return Kernel(spec, kernel.matched, kernel.capsule, kernel.module)


def _restore(module: KernelModule, name: str) -> InlineKernel:
    """An unpickled inline kernel: the shipped module's, its Python twin imported from the generated source."""
    built = module[name]
    lines = tuple(module.path.read_text().splitlines())
    lifted = inline.Lifted(str(module.path), name, "", built.spec.line, built.spec.line, lines)
    return InlineKernel.loaded(getattr(module.python_module(), name), built, lifted)


def lift_function(
    function: Callable[..., Any], form: inline.Declaration, defined: tuple[int, int] | None = None
) -> inline.Lifted:
    """The generated kernel module of a decorated function, read from its source file as it is now.

    ``defined`` is the file's :func:`file_stamp` when the function was
    defined: a file changed since then is refused, since what it holds now
    may not be what the function runs.

    Raises
    ------
    SpecError
        The source cannot be found, has changed since the function was
        defined, or uses what cannot be compiled.
    """
    code = function.__code__
    filename = code.co_filename
    if os.path.exists(filename):
        linecache.checkcache(filename)  # an edited file is read again
    # the interactive prompt keeps each input apart: what an earlier one imported is not in this one's text
    text = "" if _PROMPT.fullmatch(filename) else "".join(linecache.getlines(filename, function.__globals__))
    where = {"path": filename, "line": code.co_firstlineno}
    if not text:
        raise SpecError(f"cannot read the source of '{form.name}': compile it from a file, a notebook cell "
                        "or a %%capsules cell", **where)
    try:
        tree = ast.parse(text, filename=filename)
    except SyntaxError:
        tree = None
    node = inline.find_function(tree, function.__name__, code.co_firstlineno) if tree else None
    if node is None or (defined is not None and file_stamp(filename) != defined):
        raise SpecError(f"the source of '{form.name}' changed since it was defined; run the file again", **where)
    return inline.lift(filename, text, node, form, tree)


# the file names Python's interactive prompt gives its inputs (3.13's REPL, and the classic one)
_PROMPT = re.compile(r"<python-input-\d+>|<stdin>")


def file_stamp(filename: str) -> tuple[int, int] | None:
    """When a source file last changed, and its size; None for a source that is not a file (a cell, a prompt)."""
    try:
        info = os.stat(filename)
    except (OSError, ValueError):
        return None
    return info.st_mtime_ns, info.st_size


def _check(function: Callable[..., Any], form: inline.Declaration) -> None:
    """What can be checked when decorating, cheaply: the function's kind and its arguments."""
    code = function.__code__
    where = {"path": code.co_filename, "line": code.co_firstlineno}
    if function.__name__ == "<lambda>":
        raise SpecError("a lambda cannot be compiled: capsules compiles functions defined with 'def' at the top "
                        "level of a file; define it with 'def' and decorate that", **where)
    if code.co_freevars or "<locals>" in function.__qualname__:
        outer = function.__qualname__.split(".<locals>")[0]
        raise SpecError(f"'{form.name}' is defined inside '{outer}': capsules compiles top-level functions "
                        "(a closure's variables cannot be compiled); move it to the module's top level", **where)
    if code.co_flags & 0x0C or code.co_kwonlyargcount:  # *args, **kwargs, keyword-only
        raise SpecError(f"'{form.name}' must take plain positional arguments", **where)
    arguments = code.co_varnames[: code.co_argcount]
    if form.role == inline.RAW:
        types = [t for t in form.text.split(",") if t.strip()] if form.text else []
        if len(types) != len(arguments):
            raise SpecError(f"'{form.name}' takes {len(arguments)} argument(s), but @raw lists {len(types)} "
                            f"type(s) ({form.text})", **where)
        return
    listed = listed_names(form.text)
    if listed != arguments:
        raise SpecError(different_names(form.name, arguments, listed, "the decorator"), **where)


def _plain(function: Any, role: str) -> None:
    """Refuse what a decorator cannot compile before reading it: a kernel already, or not a function."""
    if isinstance(function, InlineKernel):
        code = function.function.__code__
        raise SpecError(f"'{function.name}' is decorated twice: one capsules decorator makes it a kernel",
                        path=code.co_filename, line=code.co_firstlineno)
    if not isinstance(function, FunctionType):
        name = getattr(function, "__name__", None)
        what = f"{type(function).__name__} {name!r}" if isinstance(name, str) else type(function).__name__
        raise SpecError(f"@{role} compiles a plain function defined with 'def', not {what}: decorate the "
                        "function itself, with no other decorator", **_applied_at())


def _applied_at() -> dict[str, Any]:
    """The file and line that applied a decorator: the first frame outside capsules."""
    frame = sys._getframe(1)
    while frame is not None and Path(frame.f_code.co_filename).parent == _PACKAGE:
        frame = frame.f_back
    return {} if frame is None else {"path": frame.f_code.co_filename, "line": frame.f_lineno}


_PACKAGE = Path(__file__).parent


def _decorator(role: str) -> Callable[..., Any]:
    summary = ROLES[role].summary

    @overload
    def decorate(arguments: F, /) -> InlineKernel: ...
    @overload
    def decorate(arguments: str | None = None, /, *, checked: bool = False,
                 portable: bool = False) -> Callable[[F], InlineKernel]: ...

    def decorate(arguments: Any = None, /, *, checked: bool = False, portable: bool = False) -> Any:
        bare = callable(arguments)  # @capsules.filter, not called: this frame is the user's callee

        def wrap(function: Callable[..., Any]) -> InlineKernel:
            _plain(function, role)
            code = function.__code__
            names = code.co_varnames[: code.co_argcount]
            form = inline.natural_form(role, function.__name__, names, None if bare else arguments)
            _check(function, form)
            return InlineKernel(function, form, checked=checked, portable=portable)

        located = decorator_at(1, role, wrap)
        return located(arguments) if bare else located

    decorate.__name__ = decorate.__qualname__ = role
    decorate.__doc__ = f"""Compile the decorated function as a natural ``{role}`` kernel: {summary}.

    Parameters
    ----------
    arguments
        What the ``#capsules {role}`` comment would hold between its
        parentheses: what SciPy provides, then ``;`` and the parameters
        passed by name to ``lowlevel``, each typed or not
        (``"x; table: float64[:], x0"``); an integrand's may end
        ``-> complex``.  Left out, the first argument(s) are what SciPy
        provides and the rest are parameters.
    checked
        Build the checked variant (bounds-checked views and pointers, division by zero
        and asserts raised, non-finite results reported).
    portable
        Build for every CPU level instead of this CPU (as for wheels).

    Returns
    -------
    InlineKernel
        Callable as the plain function; compiled at its first ``lowlevel()``.
    """
    return decorate


integrand = _decorator("integrand")
filter = _decorator("filter")  # noqa: A001  (capsules.filter, as in scipy.ndimage)
filter1d = _decorator("filter1d")
mapping = _decorator("mapping")


def raw(types: str, /, *, checked: bool = False, portable: bool = False) -> Callable[[F], InlineKernel]:
    """Compile the decorated function as a raw capsule, in SciPy's pointer form.

    Parameters
    ----------
    types
        The pythran types of a ``#pythran export capsule`` comment, e.g.
        ``"int32, float64*, float64*"`` for ``double f(int n, double *x,
        void *user_data)`` with float64 user_data.
    checked, portable
        As for :func:`integrand`.
    """

    def wrap(function: Callable[..., Any]) -> InlineKernel:
        _plain(function, inline.RAW)
        form = inline.raw_form(function.__name__, types)
        _check(function, form)
        return InlineKernel(function, form, checked=checked, portable=portable)

    return decorator_at(1, "raw", wrap)


__all__ = ["InlineKernel", "filter", "filter1d", "integrand", "lift_function", "mapping", "raw"]
