"""Stage 4a: the cache key of a build, the sha256 of everything that changes its binary.

The source's bytes, the flags, the compiler and its environment, pythran
and its configuration, the Python ABI, NumPy, the platform, the CPU for a
native build, capsules' version and its generator's own code.  Computed
without running a compiler or importing pythran: ``load()`` computes it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import platform
import re
import sys
import sysconfig
from functools import lru_cache
from pathlib import Path
from typing import Any

from . import levels
from ._version import __version__
from .child.protocol import compiler_identity


def cache_key(
    source: bytes,
    flags: tuple[str, ...],
    native: bool,
    checked: bool = False,
    constants: dict[str, dict[str, float]] | None = None,
    variants: dict[str, list[str]] | None = None,
    file_name: str = "",
) -> tuple[str, dict[str, Any]]:
    """The cache key of a kernel source built with ``flags``, and what went into it.

    ``file_name`` is in it because the binary names its file in the errors its kernels raise.
    """
    inputs = {
        "source_sha256": hashlib.sha256(source).hexdigest(),
        "file_name": file_name,
        "capsules": __version__,
        "generator": generator_digest(),
        "pythran": pythran_version(),
        "pythranrc": _pythranrc_digest(),
        "toolchain": toolchain(),
        "flags": list(flags),
        "python": sys.implementation.cache_tag,
        "ext_suffix": sysconfig.get_config_var("EXT_SUFFIX"),
        "numpy": numpy_version(),
        "platform": sysconfig.get_platform(),
        "cpu": cpu_id() if native else None,
        "checked": checked,
        "constants": constants or {},
        "variants": variants or {levels.NATIVE: []},
    }
    blob = json.dumps(inputs, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest(), inputs


# What a build generates changes when these change, even at the same version
# number: the generation package (its modules, headers and templates), the
# compiler process, and the modules of capsules the generation package
# imports (found in its imports, so that none is forgotten).
GENERATOR_PACKAGES = ("generate", "child")
_PARENT_IMPORT = re.compile(r"^[ \t]*from \.\.(\w*)[\w.]* import ([\w ,]+)", re.MULTILINE)


def generator_files() -> list[Path]:
    """Every file whose content shapes what a build generates and compiles (see GENERATOR_PACKAGES)."""
    here = Path(__file__).parent
    files = {f for package in GENERATOR_PACKAGES for f in (here / package).rglob("*")
             if f.is_file() and f.suffix in (".py", ".hpp", ".in")}
    for file in sorted(f for f in files if f.suffix == ".py"):
        # from ..spec import ExportSpec; from .. import natural, spec (a regular expression: load() reads this)
        for module, imported in _PARENT_IMPORT.findall(file.read_text(encoding="utf-8")):
            files |= {here / f"{name.strip()}.py" for name in ([module] if module else imported.split(","))}
    return sorted(f for f in files if f.is_file())


@lru_cache(maxsize=1)
def generator_digest() -> str:
    """sha256 of the files that generate what is compiled (:func:`generator_files`), with their names."""
    digest = hashlib.sha256()
    here = Path(__file__).parent
    for path in generator_files():
        digest.update(path.relative_to(here).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


@lru_cache(maxsize=1)
def pythran_version() -> str:
    """Pythran's version, read from its source without importing it (import costs 0.5 s)."""
    spec = importlib.util.find_spec("pythran")
    if spec is None or spec.origin is None:
        return "missing"
    text = (Path(spec.origin).parent / "version.py").read_text()
    found = re.search(r"__version__\s*=\s*['\"]([^'\"]+)", text)
    return found.group(1) if found else "unknown"


@lru_cache(maxsize=1)
def cpu_id() -> str:
    """What ``-march=native`` compiles for: this CPU's model and feature flags."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return f"{platform.machine()}:{platform.processor()}"
    fields = {}
    for line in info.split("\n\n", 1)[0].splitlines():
        name, _, value = line.partition(":")
        fields[name.strip()] = value.strip()
    wanted = ("vendor_id", "cpu family", "model", "model name", "flags", "CPU implementer", "CPU part", "Features")
    summary = {k: fields[k] for k in wanted if k in fields}
    return platform.machine() + ":" + hashlib.sha256(json.dumps(summary, sort_keys=True).encode()).hexdigest()[:16]


# Environment variables that reach the compile line (capsules/_compile.py).
TOOLCHAIN_ENV = ("CXX", "CPPFLAGS", "CXXFLAGS", "LDFLAGS")


def toolchain() -> dict[str, Any]:
    """The compiler environment of a build: variables that change the compile line, and the C++ compiler."""
    env = {name: os.environ[name] for name in TOOLCHAIN_ENV if name in os.environ}
    # the resolved binary and its size and mtime tell compilers apart without running one (load() must stay fast)
    return {"env": env, "cxx": compiler_identity(env.get("CXX") or sysconfig.get_config_var("CXX") or "c++")}


def numpy_version() -> str:
    import numpy

    return numpy.__version__


def _pythranrc_digest() -> str | None:
    # a user's .pythranrc can change compiler flags, and so the binary; found
    # where pythran looks: $PYTHRANRC, else $XDG_CONFIG_HOME or $HOME
    home = os.environ.get("XDG_CONFIG_HOME") or os.environ.get("HOME") or "~"
    rc = Path(os.environ.get("PYTHRANRC") or Path(home).expanduser() / ".pythranrc")
    try:
        return hashlib.sha256(rc.read_bytes()).hexdigest()
    except OSError:
        return None
