"""Stage 7: pickle loaded kernels, to run them in other processes and on other machines.

SciPy holds the GIL while it calls a LowLevelCallable, so sweeps and big
images scale out with processes (a ``ProcessPoolExecutor``, Dask workers),
and a PyCapsule does not pickle.  A :class:`KernelModule` therefore pickles
as a :class:`Shipment`: the source bytes it was built from, the sender's
cache key and entry (key inputs, exports), and the binaries with their sha256
(20-40 kB each for the bundled kernels; a portable build carries one per CPU
level, so a mixed cluster needs no compiler).  A :class:`Kernel` pickles as (module,
name), the object ``lowlevel()`` returns as (kernel, user_data values): their
``__reduce__`` (in capsules.load) hands them to this module.

The receiving process, with its default cache (``$CAPSULES_CACHE`` or the
per-user one), takes the first of:

1. a module it already received (or loaded) in this process;
2. its own build of the same source and flags (its own cache key);
3. the sender's build, when the binary suits this process (same Python ABI,
   NumPy, platform, capsules, and the same CPU for a native build): from its
   cache, else the carried binary, checked against its sha256 and published
   into its cache;
4. a build from the carried source (this needs pythran and a C++ compiler).

Unpickling runs code, as with any pickle: only load pickles you trust.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import LowLevelCallable

from .build import SOURCE_COPY, build_plan, is_portable, plan
from .cache import KEY, Cache, Entry, EntryData, check_entry_data, read_only_lookup
from .errors import CacheError, CapsulesError
from .load import Kernel, KernelCallable, KernelModule, from_entry, loaded
from .userdata import held

# What a binary asks of the process that imports it.  The other key inputs
# (compiler, pythran, pythranrc) say how it was made, not where it runs.
RUNTIME_INPUTS = ("capsules", "generator", "python", "ext_suffix", "numpy", "platform", "cpu")

_RECEIVED: dict[tuple[str, str], KernelModule] = {}
_PACKED: dict[tuple[str, str], Shipment] = {}
HOW: dict[str, str] = {}  # sender's key -> "loaded", "cache", "binary" or "built" (for tests and logs)
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Shipment:
    """What a pickled :class:`KernelModule` carries."""

    path: str  # the sender's source path: reused when it holds the same bytes
    source: bytes
    key: str
    entry: EntryData  # the sender's entry.json: module name, exports, key inputs, variants
    binaries: dict[str, bytes]  # variant (CPU level) -> binary; empty: build from the source

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Refuse a shipment whose names could reach outside the cache.

        Pickles are trusted by design; what costs nothing is still checked, so
        that a damaged or altered one cannot write outside the cache.  An
        unpickled shipment never ran ``__post_init__``: :func:`receive` calls
        this before it touches the cache.

        Raises
        ------
        CacheError
            The shipment is malformed, or its key, variants or source do not match.
        """
        typed = (
            isinstance(self.path, str) and "\0" not in self.path and isinstance(self.source, bytes)
            and isinstance(self.key, str) and isinstance(self.binaries, dict)
            and all(isinstance(binary, bytes) for binary in self.binaries.values())
        )
        if not typed:
            raise CacheError("the shipped build has fields of the wrong type", path=str(self.path))
        try:
            check_entry_data(self.entry)
        except ValueError as err:
            raise CacheError(f"the shipped build is malformed: {err}", path=self.path) from None
        if not (KEY.fullmatch(self.key) and self.entry["key"] == self.key):
            raise CacheError(f"the shipped cache key {self.key!r} is not a sha256 hex digest", path=self.path)
        if not set(self.binaries) <= set(self.entry["variants"]):
            raise CacheError("the shipped binaries are not the build's variants", path=self.path)
        if hashlib.sha256(self.source).hexdigest() != self.inputs.get("source_sha256"):
            raise CacheError("the shipped source does not match its build", path=self.path)
        if self.name in ("", ".", ".."):
            raise CacheError("the shipped source has no file name", path=self.path)

    @property
    def inputs(self) -> dict[str, Any]:
        return self.entry["inputs"]

    @property
    def flags(self) -> tuple[str, ...]:
        return tuple(self.inputs["flags"])

    @property
    def portable(self) -> bool:
        return is_portable(self.flags)

    @property
    def checked(self) -> bool:
        return bool(self.inputs.get("checked", False))

    @property
    def constants(self) -> dict[str, dict[str, float]]:
        return dict(self.inputs.get("constants") or {})

    @property
    def name(self) -> str:
        return Path(self.path).name


def pack(module: KernelModule) -> Shipment:
    """The shipment of a loaded module (what ``pickle`` stores for it), read once per process."""
    entry = module.entry
    with _LOCK:
        shipment = _PACKED.get((entry.key, str(module.path)))
        if shipment is None:
            binaries = {level: path.read_bytes() for level, path in entry.binaries.items()}
            shipment = Shipment(str(module.path), _built_source(module), entry.key, entry.data, binaries)
            _PACKED[(entry.key, str(module.path))] = shipment
    return shipment


def receive(shipment: Shipment) -> KernelModule:
    """The module a shipment describes, in this process (the inverse of :func:`pack`)."""
    shipment.check()
    memo = (shipment.key, shipment.path)
    with _LOCK:
        module = loaded(shipment.key)
        if module is None or str(module.path) != shipment.path:
            module = _RECEIVED.get(memo)
        if module is None:
            module, HOW[shipment.key] = _find(shipment, Cache())
        HOW.setdefault(shipment.key, "loaded")
        _RECEIVED[memo] = module
    return module


def receive_callable(kernel: Kernel, user_data: np.ndarray | None) -> LowLevelCallable:
    """Unpickle the object ``Kernel.lowlevel`` returns (its user_data was checked when it was made)."""
    if user_data is None:
        return KernelCallable(kernel, None)
    return KernelCallable(kernel, held(np.ascontiguousarray(user_data), checked=kernel.module.checked))


def _find(shipment: Shipment, cache: Cache) -> tuple[KernelModule, str]:
    source = _source_copy(shipment, cache)
    planned = plan(source, portable=shipment.portable, checked=shipment.checked, constants=shipment.constants)
    entry = read_only_lookup(planned.key) or cache.lookup(planned.key)
    if entry is not None:
        return _module(shipment, source, entry), "cache"
    if _suits(shipment.inputs, planned.inputs):
        entry = cache.lookup(shipment.key)
        if entry is not None:
            return _module(shipment, source, entry), "cache"
        if _binary_ok(shipment):
            return _module(shipment, source, _publish(shipment, cache)), "binary"
    return _module(shipment, source, build_plan(planned, cache).entry), "built"


def _suits(sent: dict[str, Any], here: dict[str, Any]) -> bool:
    return all(sent.get(name) == here.get(name) for name in RUNTIME_INPUTS)


def _binary_ok(shipment: Shipment) -> bool:
    variants = shipment.entry["variants"]
    return bool(shipment.binaries) and set(shipment.binaries) == set(variants) and all(
        hashlib.sha256(binary).hexdigest() == variants[level]["sha256"] for level, binary in shipment.binaries.items()
    )


def _publish(shipment: Shipment, cache: Cache) -> Entry:
    data = {k: v for k, v in shipment.entry.items() if k != "key"}
    with cache.lock(shipment.key):
        entry = cache.lookup(shipment.key)
        if entry is not None:
            return entry
        cache.discard(shipment.key)
        with cache.staging() as staged:
            for level, binary in shipment.binaries.items():
                (staged / data["variants"][level]["binary"]).write_bytes(binary)
            (staged / shipment.name).write_bytes(shipment.source)
            return cache.publish(staged, shipment.key, data)


def _module(shipment: Shipment, copy: Path, entry: Entry) -> KernelModule:
    # Kernel.py imports the source: the sender's path if it holds the same bytes, else our copy
    original = Path(shipment.path)
    return from_entry(original if _holds(original, shipment.source) else copy, entry)


def _source_copy(shipment: Shipment, cache: Cache) -> Path:
    """``v1/sources/<sha256>/<name>``: the shipped source, kept under its own file name."""
    return cache.source_file(shipment.name, shipment.source)


def _built_source(module: KernelModule) -> bytes:
    """The exact bytes the module's binary was built from (its file may have changed since)."""
    want = module.entry.data["inputs"]["source_sha256"]
    directory = module.entry.directory
    candidates = [directory / SOURCE_COPY, directory / module.path.name, module.path, *directory.glob("*.py")]
    for path in candidates:
        try:
            source = path.read_bytes()
        except OSError:
            continue
        if hashlib.sha256(source).hexdigest() == want:
            return source
    raise CapsulesError(
        "cannot pickle this module: its source changed since it was built and the cache kept no copy", path=module.path
    )


def _holds(path: Path, source: bytes) -> bool:
    try:
        return path.read_bytes() == source
    except OSError:
        return False


__all__ = ["RUNTIME_INPUTS", "Shipment", "pack", "receive", "receive_callable"]
