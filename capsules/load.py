"""Stage 6: import a build and hand its capsules to SciPy.

``load`` finds (or builds) the cache entry of a kernel file, imports the
binary under its own module name, and wraps each capsule in a
:class:`Kernel`.  ``Kernel.lowlevel`` returns a ``scipy.LowLevelCallable``
whose user_data is a private copy of the values it was given, converted to
the dtype the kernel reads, and kept alive by the callable itself.
"""

from __future__ import annotations

import abc
import ctypes
import importlib.machinery
import importlib.util
import operator
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from scipy import LowLevelCallable

from . import inline, prebuilt, userdata
from .build import Plan, build_plan, plan
from .cache import Cache, Entry, read_only_lookup
from .child.protocol import read_exports
from .errors import BuildError, CacheError, CapsulesError, PrebuiltError, SpecError, UserDataError
from .generate.names import imaginary
from .signatures import Signature, match
from .source import decode_source
from .spec import ExportSpec

_LOADED: dict[str, KernelModule] = {}
_LOCK = threading.Lock()

_get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
_get_pointer.restype = ctypes.c_void_p
_get_pointer.argtypes = (ctypes.py_object, ctypes.c_char_p)


class Kernel(metaclass=abc.ABCMeta):
    """One compiled capsule: its SciPy signature, its address and its Python original.

    An inline kernel (:class:`~capsules.InlineKernel`) is a Kernel too: it
    holds the Kernel it builds and hands it everything but its name and
    its Python function.
    """

    def __init__(self, spec: ExportSpec, matched: Signature, capsule: Any, module: KernelModule) -> None:
        self.spec = spec
        self.matched = matched  # the SciPy form the export matched
        self.capsule = capsule
        self.module = module
        self.address: int = _get_pointer(capsule, matched.text.encode())

    name = property(lambda self: self.spec.name, doc="The function's name.")
    signature = property(lambda self: self.matched.text, doc="The exact C signature SciPy matches.")
    targets = property(lambda self: self.matched.targets, doc="Names of the SciPy functions that accept it.")
    user_data_dtype = property(lambda self: self.matched.user_data_dtype, doc="dtype of user_data, or None.")

    @property
    def py(self) -> Any:
        """The same function, run as plain Python (imported from the kernel source)."""
        return getattr(self.module.python_module(), self.name)

    @property
    def parameters(self) -> tuple[str, ...]:
        """A natural kernel's parameters, passed by name to :meth:`lowlevel`."""
        return self.spec.parameters

    def lowlevel(self, user_data: Any = None, **parameters: Any) -> LowLevelCallable | ComplexParts:
        """A ``scipy.LowLevelCallable`` for this kernel (two, for an integrand declared ``-> complex``).

        Parameters
        ----------
        user_data
            For a raw kernel: None, a float, a sequence of numbers or a 1-D
            numpy array.  It is copied into an array of the dtype the kernel
            declares, which the returned callable keeps alive.  A bare int (an
            address) and ctypes pointers are refused: their lifetime cannot be
            guaranteed.
        **parameters
            For a natural kernel (``#capsules`` comment): its parameters by
            name, e.g. ``lowlevel(a=1.0, b=2.0)``; all must be given.  A
            typed array parameter takes an array (``table=values``).

        Returns
        -------
        LowLevelCallable or ComplexParts
            The callable; for an integrand declared ``-> complex``, its real
            and imaginary parts (``.real``, ``.imag``), which share one copy
            of the parameters.
        """
        return callables(self, self.user_data_array(user_data, **parameters))

    def user_data_array(self, user_data: Any = None, **parameters: Any) -> np.ndarray | None:
        """The user_data :meth:`lowlevel` passes for these arguments: a private, read-only array, or None."""
        if self.spec.role:
            user_data = userdata.parameters(self.spec, user_data, parameters)
        elif parameters:
            raise UserDataError(
                f"'{self.name}' is a raw kernel: pass user_data=..., not parameters by name "
                f"({', '.join(parameters)})",
                **self.spec.where(),
            )
        return userdata.convert(self.spec, self.matched, user_data, checked=self.module.checked)

    def as_ctypes(self) -> Any:
        """The compiled function as a ctypes function pointer, for C libraries that take callbacks.

        A checked build reads how many items user_data holds from a header in
        front of the copy :meth:`lowlevel` makes: pass the address of
        ``lowlevel(...).user_data_array``, not a pointer of your own.
        """
        form = self.matched.form
        return ctypes.CFUNCTYPE(_CTYPES[form.ret], *(_CTYPES[a] for a in form.args))(self.address)

    def __repr__(self) -> str:
        return f"<Kernel {self.module.name}.{self.name}: {self.signature!r} for {', '.join(self.targets)}>"

    def __reduce__(self) -> tuple[Any, ...]:
        # a capsule does not pickle: ship the module (see capsules.ship) and look the name up there
        return operator.getitem, (self.module, self.name)


@dataclass(frozen=True)
class ComplexParts:
    """What :meth:`Kernel.lowlevel` returns for an integrand declared ``-> complex``: one callable per part.

    SciPy's integrators call C functions that return real numbers, so the
    real and the imaginary part are two compiled functions, integrated one
    after the other, as ``quad(..., complex_func=True)`` does with a Python
    function::

        parts = mod.wave.lowlevel(k=3.0)
        value = quad(parts.real, 0, 1)[0] + 1j * quad(parts.imag, 0, 1)[0]
    """

    real: KernelCallable
    imag: KernelCallable


def callables(kernel: Kernel, data: np.ndarray | None) -> KernelCallable | ComplexParts:
    """What ``lowlevel`` returns for ``kernel`` with this user_data (an inline kernel's too)."""
    real = KernelCallable(kernel, data)
    if kernel.spec.part != "real":
        return real
    return ComplexParts(real, KernelCallable(kernel.module[imaginary(kernel.name)], data))


class KernelCallable(LowLevelCallable):
    """What :meth:`Kernel.lowlevel` returns: a ``LowLevelCallable`` that keeps its kernel and user_data alive.

    It pickles as the kernel and the user_data values (see capsules.ship).
    """

    # LowLevelCallable is a tuple with no __dict__ slots of its own; a
    # subclass gets a __dict__, where the user_data buffer is kept alive.
    def __new__(cls, kernel: Kernel, data: np.ndarray | None) -> KernelCallable:
        pointer = None if data is None else ctypes.c_void_p(data.ctypes.data)
        self = super().__new__(cls, kernel.capsule, pointer, kernel.signature)
        self.kernel = kernel
        self.user_data_array = data
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        from . import ship  # pickling is that stage's business: imported when something is pickled

        return ship.receive_callable, (self.kernel, self.user_data_array)


class KernelModule:
    """A loaded kernel file: its capsules as :class:`Kernel` objects.

    ``mod.f`` and ``mod["f"]`` give a kernel, iteration gives them all.
    Plain (non-capsule) pythran exports are reachable as attributes too and
    are the compiled functions themselves.
    """

    def __init__(self, path: Path, entry: Entry, native: ModuleType) -> None:
        self.path = path
        self.entry = entry
        self.native = native
        self.exports = tuple(ExportSpec.from_json(e, str(path)) for e in entry.data["exports"])
        self._python: ModuleType | None = None
        capsules = {name: capsule for name, capsule, _kind in read_exports(entry.binary)}
        self._kernels = {s.name: Kernel(s, match(s), capsules[s.name], self) for s in self.exports if s.capsule}

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def key(self) -> str:
        return self.entry.key

    @property
    def checked(self) -> bool:
        """Whether this is a checked build (see ``load(..., checked=True)``)."""
        return bool(self.entry.data["inputs"].get("checked"))

    def __getitem__(self, name: str) -> Kernel:
        try:
            return self._kernels[name]
        except KeyError:
            raise KeyError(f"{self.path} has no capsule export '{name}' (it has: {', '.join(self._kernels)})") from None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name in self._kernels:
            return self._kernels[name]
        if any(e.name == name for e in self.exports):
            return getattr(self.native, name)
        raise AttributeError(f"{self.path} exports no '{name}'")

    def __iter__(self) -> Iterator[Kernel]:
        # the imaginary part of a complex integrand comes with its real part (lowlevel().imag)
        return (k for k in self._kernels.values() if k.spec.part != "imag")

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | {e.name for e in self.exports})

    def __repr__(self) -> str:
        return f"<KernelModule {self.path} [{', '.join(self._kernels)}] key={self.key[:12]}>"

    def __reduce__(self) -> tuple[Any, ...]:
        from . import ship  # pickling is that stage's business: imported when something is pickled

        return ship.receive, (ship.pack(self),)

    def python_module(self) -> ModuleType:
        """The kernel source imported as plain Python (once, under a name of its own)."""
        if self._python is None:
            self._python = _import_source(self.path, f"capsules_py_{self.entry.module_name}")
        return self._python


def load(
    path: str | Path,
    *,
    cache: Cache | str | Path | None = None,
    build: bool = True,
    portable: bool = False,
    checked: bool = False,
    constants: Mapping[str, Mapping[str, float]] | None = None,
) -> KernelModule:
    """Load a kernel file's build, building it first if needed.

    Prebuilt binaries beside the file (``__capsules__/<stem>/``, as a
    package's wheel installs them) come first when they were built from
    these exact bytes and suit this interpreter and CPU: then nothing is
    compiled and pythran is not imported.  Otherwise the cache is used.

    Parameters
    ----------
    path
        The kernel source (a ``.py`` file with pythran export comments).
    cache
        Cache directory; default ``$CAPSULES_CACHE`` or the per-user cache.
    build
        If False, never compile: raise :class:`CapsulesError` when the cache
        has no build of this exact source and configuration
        (:class:`PrebuiltError`, naming each difference, when prebuilt
        binaries exist but do not suit).
    portable
        Load (or build) the portable variant instead of the native one.
    checked
        Load (or build) the checked variant: bounds-checked views and raw
        pointers (user_data included), division by zero and failing asserts
        raised, non-finite results reported.
    constants
        Fix natural kernels' parameters at build time, as literals the
        compiler folds and unrolls with: ``{"moving_average": {"length": 9}}``.
        A fixed parameter is no longer passed to ``lowlevel``; each set of
        constants is a build of its own.
    """
    path = Path(path)
    planned = plan(path, portable=portable, checked=checked, constants=constants)
    _refuse_decorated_script(path, planned.source)
    module, unsuitable = prebuilt_module(path, planned.source, checked=checked, constants=planned.constants)
    return module or from_entry(path, _find_entry(planned, cache, build, unsuitable))


def prebuilt_module(
    path: Path, source: bytes, *, checked: bool, constants: dict[str, Any], kernel: str = ""
) -> tuple[KernelModule | None, str | None]:
    """A package's prebuilt binaries of ``source`` beside ``path``, loaded, or why none suit (see capsules.prebuilt).

    They come first, before any cache: no cache, no pythran, no compiler.
    For the inline kernel ``kernel`` of the module ``path``, ``source`` is
    the module generated for it, kept beside its binaries.
    """
    entry, unsuitable = prebuilt.find(path, source, checked=checked, constants=constants, kernel=kernel)
    if entry is None:
        return None, unsuitable
    return from_entry(entry.directory / prebuilt.INLINE_SOURCE if kernel else path, entry), None


def _refuse_decorated_script(path: Path, source: bytes) -> None:
    """A script whose kernels are decorated is built kernel by kernel, from its imported functions: say so."""
    line = inline.script_line(decode_source(source, path))
    if line is not None:
        raise SpecError(
            "this script's kernels are decorated, and capsules.load() takes a kernel file with '#pythran export' "
            "or '#capsules' comments: import the script and call kernel.lowlevel() on its kernels (built at first "
            f"use), or build them ahead with 'capsules build {path}'",
            path=path, line=line,
        )


def from_entry(path: Path, entry: Entry) -> KernelModule:
    """The module of a cache entry whose source is ``path``, its binary imported once per process."""
    with _LOCK:
        loaded = _LOADED.get(entry.key)
        if loaded is None or loaded.path != path:
            native = loaded.native if loaded is not None else _import_binary(entry)
            loaded = _LOADED[entry.key] = KernelModule(path, entry, native)
    return loaded


def loaded(key: str) -> KernelModule | None:
    """The module of the build ``key``, if this process has loaded it."""
    with _LOCK:
        return _LOADED.get(key)


def _find_entry(planned: Plan, cache: Cache | str | Path | None, build: bool, unsuitable: str | None) -> Entry:
    """The cache's entry for a plan, built if allowed; ``unsuitable`` says why prebuilt binaries were passed over."""
    shared = read_only_lookup(planned.key)  # $CAPSULES_CACHE_PATH, in front of the user's own cache
    if shared is not None:
        return shared
    if build:
        try:
            return build_plan(planned, cache if isinstance(cache, Cache) else Cache(cache)).entry
        except BuildError as err:
            if unsuitable is None:
                raise
            raise prebuilt.not_built_either(unsuitable, err, path=planned.path) from err
    try:
        cache = cache if isinstance(cache, Cache) else Cache(cache)
        entry = cache.lookup(planned.key)
    except CacheError:
        if unsuitable is None:
            raise
        entry = None  # the prebuilt binaries are what matters here: say why they do not suit
    if entry is not None:
        return entry
    if unsuitable is not None:
        raise PrebuiltError(
            f"{unsuitable}. Install the package's wheel built for this Python and platform, or allow "
            "building from source (load(..., build=True), needs pythran and a C++ compiler)",
            path=planned.path,
        )
    raise CapsulesError(
        f"no build of this source in {cache.root} (key {planned.key[:12]}); run 'capsules build {planned.path}' "
        "or call load(..., build=True)",
        path=planned.path,
    )


def _import_binary(entry: Entry) -> ModuleType:
    name = entry.module_name
    if name in sys.modules:
        return sys.modules[name]
    loader = importlib.machinery.ExtensionFileLoader(name, str(entry.binary))
    spec = importlib.util.spec_from_file_location(name, str(entry.binary), loader=loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    sys.modules[name] = module
    return module


def _import_source(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, str(path))
    if spec is None or spec.loader is None:
        raise CapsulesError("cannot import the kernel source as Python", path=path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_CTYPES: dict[str, Any] = {
    "double": ctypes.c_double,
    "int": ctypes.c_int,
    "npy_intp": ctypes.c_ssize_t,
    "double *": ctypes.POINTER(ctypes.c_double),
    "npy_intp *": ctypes.POINTER(ctypes.c_ssize_t),
    "void *": ctypes.c_void_p,
}
