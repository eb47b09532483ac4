"""Stage 5a: CPU levels, the instruction-set variants a portable build carries.

A native build (``-march=native``) runs only on CPUs like the one that built
it.  A portable build, for a wheel, a shared cache or a mixed cluster,
compiles the same C++ once per level and the loader picks the best level
this CPU supports.  On x86-64 the levels are the psABI's: the baseline
(SSE2), x86-64-v3 (AVX2, FMA, BMI2: Haswell and Zen 1 on) and x86-64-v4
(AVX-512).  Other architectures get one baseline build.

The CPU is identified by archspec, the library Spack uses, rather than by
parsing feature flags by hand.  ``CAPSULES_CPU=<level>`` makes the loader
act as if the CPU supported no more than that level (for tests, and to
compare variants on one machine).
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from functools import lru_cache

from .errors import CapsulesError, PrebuiltError

NATIVE = "native"
BASELINE = "baseline"


@dataclass(frozen=True)
class Level:
    """One variant of a build: its name (an archspec target) and the flags that select it."""

    name: str
    flags: tuple[str, ...]


# gcc >= 11 and clang >= 12 know the x86-64-vN names.  -mtune=generic: tuned
# for no CPU in particular, as a wheel's binaries should be.
X86_64 = (
    Level("x86_64", ("-march=x86-64", "-mtune=generic")),
    Level("x86_64_v3", ("-march=x86-64-v3", "-mtune=generic")),
    # 256-bit vectors, as gcc's own tuning for AVX-512 Intel CPUs prefers:
    # 512-bit ones made short-window filters slower (benchmarks/RESULTS.md)
    Level("x86_64_v4", ("-march=x86-64-v4", "-mtune=generic", "-mprefer-vector-width=256")),
)
OTHER = (Level(BASELINE, ("-mtune=generic",)),)


def portable_levels(machine: str | None = None) -> tuple[Level, ...]:
    """The levels a portable build compiles for on this (or the named) machine architecture."""
    machine = (machine or platform.machine()).lower()
    return X86_64 if machine in ("x86_64", "amd64") else OTHER


def pick(available: list[str] | tuple[str, ...]) -> str:
    """The best of ``available`` variant names this process can run.

    Raises
    ------
    PrebuiltError
        None of them runs on this CPU, or below the level ``$CAPSULES_CPU`` caps it at.
    """
    if NATIVE in available or BASELINE in available:
        return NATIVE if NATIVE in available else BASELINE
    runnable = [name for name in available if supports(name)]
    if not runnable:
        raise PrebuiltError(_none_runs(available))
    order = [level.name for level in X86_64]
    return max(runnable, key=lambda name: order.index(name) if name in order else -1)


def _none_runs(available: list[str] | tuple[str, ...]) -> str:
    """Why no level of ``available`` runs here: ``$CAPSULES_CPU`` where this CPU runs one of them, else the CPU."""
    import archspec.cpu

    cap = os.environ.get("CAPSULES_CPU")
    listed = ", ".join(available)
    if cap and any(_host() >= archspec.cpu.TARGETS[n] for n in available if n in archspec.cpu.TARGETS):
        return f"CAPSULES_CPU={cap} allows none of the levels built ({listed}): unset it, or set it to one of them"
    return f"this CPU ({host_name()}) supports none of the levels built ({listed})"


def supports(name: str) -> bool:
    """Whether this CPU (as archspec identifies it, capped by ``$CAPSULES_CPU``) runs level ``name``."""
    import archspec.cpu

    target = archspec.cpu.TARGETS.get(name)
    if target is None:
        return False
    cap = os.environ.get("CAPSULES_CPU")
    if cap:
        if cap not in archspec.cpu.TARGETS:
            raise CapsulesError(f"CAPSULES_CPU={cap!r} is not a CPU level archspec knows (e.g. x86_64, x86_64_v3)")
        if not archspec.cpu.TARGETS[cap] >= target:
            return False
    return _host() >= target


def host_name() -> str:
    """This CPU's microarchitecture as archspec names it (e.g. ``icelake``)."""
    return str(_host())


@lru_cache(maxsize=1)
def _host():  # type: ignore[no-untyped-def]
    import archspec.cpu

    return archspec.cpu.host()
