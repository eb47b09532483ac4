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
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, overload

from . import inline, natural, prebuilt
from .cache import Cache
from .errors import CapsulesError, PrebuiltError, SpecError
from .load import Kernel, KernelModule, from_entry, load
from .spec import ExportSpec

F = TypeVar("F", bound=Callable[..., Any])


class InlineKernel(Kernel):
    """A kernel written inline: call it as Python, ask it for a ``LowLevelCallable``.

    What the decorators return, and what a ``%%capsules`` cell puts in the
    notebook's namespace.

    Everything a :class:`~capsules.Kernel` offers (``lowlevel``, ``as_ctypes``,
    ``signature``, ``targets``, ``py``, pickling) builds it on first use;
    :meth:`build` does so at once, to see errors early.
    """

    def __init__(
        self, function: Callable[..., Any], form: inline.Form, *, checked: bool = False, portable: bool = False
    ) -> None:
        functools.update_wrapper(self, function)
        self.function = function
        self.form = form
        self.checked, self.portable = checked, portable
        self._built: Kernel | None = None
        self._lifted: inline.Lifted | None = None
        self._lock = threading.Lock()

    @classmethod
    def loaded(cls, function: Callable[..., Any], kernel: Kernel, lifted: inline.Lifted) -> InlineKernel:
        """An inline kernel already built: ``kernel``, whose errors ``lifted`` locates, with its Python twin."""
        made = cls(function, inline.Form(kernel.spec.role or inline.RAW, kernel.name, ""))
        made._built, made._lifted = kernel, lifted
        return made

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.function(*args, **kwargs)

    name = property(lambda self: self.form.name, doc="The function's name.")
    py = property(lambda self: self.function, doc="The function itself, run as plain Python.")
    spec = property(lambda self: self._spec(), doc="The export, located in the user's file.")
    _signature = property(lambda self: self.build()._built._signature)  # type: ignore[union-attr]
    capsule = property(lambda self: self.build()._built.capsule)  # type: ignore[union-attr]
    module = property(lambda self: self.build()._built.module, doc="The generated kernel module, loaded.")
    address = property(lambda self: self.build()._built.address)  # type: ignore[union-attr]

    @property
    def built(self) -> bool:
        """Whether the compiled kernel is loaded in this process."""
        return self._built is not None

    def build(self, cache: Cache | str | Path | None = None) -> InlineKernel:
        """Compile (or load from the cache) now; returns the kernel.

        Raises
        ------
        SpecError, SignatureError, BuildError
            Located at the user's file and line.
        """
        with self._lock:
            if self._built is None:
                self._built = self._load(cache)
        return self

    def _load(self, cache: Cache | str | Path | None) -> Kernel:
        lifted = self._lifted = lift_function(self.function, self.form)
        origin = Path(lifted.origin)
        # a package's prebuilt binaries first (its wheel carries them): no cache, no pythran, no compiler
        entry, unsuitable = prebuilt.find(origin, lifted.text.encode(), checked=self.checked, constants={},
                                          kernel=lifted.name)
        if entry is not None:
            return from_entry(entry.directory / prebuilt.INLINE_SOURCE, entry)[lifted.name]
        path = None
        try:
            cache = cache if isinstance(cache, Cache) else Cache(cache)
            path = cache.source_file(lifted.filename, lifted.text.encode())
            module = load(path, cache=cache, checked=self.checked, portable=self.portable)
        except CapsulesError as err:
            if unsuitable is not None:
                raise PrebuiltError(f"{unsuitable}; building it here failed too: {err}", path=origin,
                                    line=lifted.line) from err
            raise (lifted.relocate(err, path) if path else err) from err.__cause__
        return module[lifted.name]

    def _spec(self) -> ExportSpec:
        built, lifted = self.build()._built, self._lifted
        assert built is not None and lifted is not None
        line = lifted.line
        return dataclasses.replace(
            built.spec, path=lifted.origin, line=line, source_line=inline.line_text(lifted.origin_lines, line)
        )

    def __repr__(self) -> str:
        if self._built is None:
            return f"<InlineKernel {self.form.role} {self.name} from {self.function.__code__.co_filename} (not built)>"
        return f"<InlineKernel {self.name}: {self.signature!r} for {', '.join(self.targets)}>"

    def __reduce__(self) -> tuple[Any, ...]:
        # the generated module pickles with its source and binary (capsules.ship)
        return _restore, (self.module, self.name)


def _restore(module: KernelModule, name: str) -> InlineKernel:
    """An unpickled inline kernel: the shipped module's, its Python twin imported from the generated source."""
    built = module[name]
    lines = tuple(module.path.read_text().splitlines())
    lifted = inline.Lifted(str(module.path), name, "", built.spec.line, built.spec.line, lines)
    return InlineKernel.loaded(getattr(module.python_module(), name), built, lifted)


def lift_function(function: Callable[..., Any], form: inline.Form) -> inline.Lifted:
    """The generated kernel module of a decorated function, read from its source file as it is now.

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
    text = "".join(linecache.getlines(filename, function.__globals__))
    where = {"path": filename, "line": code.co_firstlineno}
    if not text:
        raise SpecError(f"cannot read the source of '{form.name}': compile it from a file, a notebook cell "
                        "or a %%capsules cell", **where)
    try:
        tree = ast.parse(text, filename=filename)
    except SyntaxError:
        tree = None
    node = inline.find_function(tree, function.__name__, code.co_firstlineno) if tree else None
    if node is None:
        raise SpecError(f"the source of '{form.name}' changed since it was defined; run the file again", **where)
    return inline.lift(filename, text, node, form, tree)


def _check(function: Callable[..., Any], form: inline.Form) -> None:
    """What can be checked when decorating, cheaply: the function's kind and its arguments."""
    code = function.__code__
    where = {"path": code.co_filename, "line": code.co_firstlineno}
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
    provided, _, parameters = form.text.partition(";")
    listed = tuple(n.strip() for n in f"{provided},{parameters}".split(",") if n.strip())
    if listed != arguments:
        raise SpecError(f"'{form.name}' takes ({', '.join(arguments)}), but the decorator lists "
                        f"({', '.join(listed)}): they must be the same names in the same order", **where)


def _decorator(role: str) -> Callable[..., Any]:
    summary = natural.ROLES[role].summary

    @overload
    def decorate(arguments: F, /) -> InlineKernel: ...
    @overload
    def decorate(arguments: str | None = None, /, *, checked: bool = False,
                 portable: bool = False) -> Callable[[F], InlineKernel]: ...

    def decorate(arguments: Any = None, /, *, checked: bool = False, portable: bool = False) -> Any:
        if callable(arguments):  # used bare: @capsules.filter
            return decorate()(arguments)

        def wrap(function: Callable[..., Any]) -> InlineKernel:
            code = function.__code__
            names = code.co_varnames[: code.co_argcount]
            form = inline.natural_form(role, function.__name__, names, arguments)
            _check(function, form)
            return InlineKernel(function, form, checked=checked, portable=portable)

        return wrap

    decorate.__name__ = decorate.__qualname__ = role
    decorate.__doc__ = f"""Compile the decorated function as a natural ``{role}`` kernel: {summary}.

    Parameters
    ----------
    arguments
        What the ``#capsules {role}`` comment would hold between its
        parentheses: what SciPy provides, then ``;`` and the parameters
        passed by name to ``lowlevel``.  Left out, the first argument(s)
        are what SciPy provides and the rest are parameters.
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
        form = inline.raw_form(function.__name__, types)
        _check(function, form)
        return InlineKernel(function, form, checked=checked, portable=portable)

    return wrap


__all__ = ["InlineKernel", "filter", "filter1d", "integrand", "lift_function", "mapping", "raw"]
