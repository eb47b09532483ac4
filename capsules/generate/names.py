"""The names of what capsules generates beside the user's code: one prefix, which no user name starts with."""

from __future__ import annotations

PREFIX = "_capsules_"


def adapter(kernel: str) -> str:
    """The generated function SciPy's capsule calls for the natural kernel ``kernel``."""
    return PREFIX + kernel


def imaginary(kernel: str) -> str:
    """The generated function, and the kernel, of the imaginary part of a kernel declared ``-> complex``."""
    return PREFIX + "imag_" + kernel


def twin(kernel: str) -> str:
    """The name of the kernel's twin that takes SciPy's pointers (capsules.generate.rewrite.pointer_twin)."""
    return PREFIX + "raw_" + kernel


def length(argument: str) -> str:
    """The twin's argument holding the length of the pointer ``argument``."""
    return f"{PREFIX}len_{argument}"


def parameter(name: str) -> str:
    """The adapter's argument holding an unpacked parameter: its value, or a pointer to its items."""
    return f"{PREFIX}p_{name}"


def extent(name: str, axis: int) -> str:
    """The adapter's argument holding an array parameter's length along ``axis``."""
    return f"{PREFIX}n{axis}_{name}"


def kernel_of(function: str) -> str:
    """The user's kernel a generated adapter serves; any other function's own name."""
    return function[len(PREFIX) :] if function.startswith(PREFIX) else function


def entry_point(kernel: str) -> str:
    """The C++ entry point with SciPy's signature for ``kernel`` (capsules.generate.entries)."""
    return f"capsules_entry_{kernel}"
