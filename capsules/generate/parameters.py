"""Typed parameters of natural kernels: the types a parameter may have, and how the adapter receives them.

A parameter is a float64 unless its ``#capsules`` comment gives it a type
(``n: int64``, ``table: float64[:]``, ``weights: float64[:, :]``).
``Kernel.lowlevel`` packs every parameter into one user_data block
(capsules.userdata writes it, ``runtime/parameters.hpp`` reads it): word
``k`` holds the ``k``-th parameter's value where it is a scalar, else where
the array's record starts, as a word index; a record is the array's shape,
one word per axis, then its items in C order.  A float64 scalar stays where
the adapter reads it (``ud[k]``), so a kernel of float64 scalars reads the
block it always read.  Any other parameter is unpacked by the entry point
(capsules.generate.entries), which passes it to the adapter as arguments
after SciPy's: an int64 scalar as itself, an array as a pointer to its items
and one length per axis, from which the adapter makes the view the kernel
takes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from . import names

FLOAT64 = "float64"


@dataclass(frozen=True)
class ParameterType:
    """One type a natural kernel's parameter may have."""

    dtype: str  # numpy's name of the items' type
    rank: int  # 0: a scalar

    @property
    def spelling(self) -> str:
        """The type as a ``#capsules`` comment writes it: ``float64``, ``int32[:]``, ``float64[:, :]``."""
        return self.dtype + (f"[{', '.join(':' * self.rank)}]" if self.rank else "")

    @property
    def unpacked(self) -> bool:
        """Whether the entry point unpacks it from the block (everything but a float64 scalar, read as ``ud[k]``)."""
        return self.rank > 0 or self.dtype != FLOAT64


SCALARS = (FLOAT64, "int64")
ITEMS = (FLOAT64, "int64", "int32")
TYPES: dict[str, ParameterType] = {
    t.spelling: t
    for t in (
        *(ParameterType(dtype, 0) for dtype in SCALARS),
        *(ParameterType(dtype, rank) for rank in (1, 2) for dtype in ITEMS),
    )
}
_SPACE = re.compile(r"\s+")


def parameter_type(text: str) -> ParameterType | None:
    """The type a comment spells (spaces are free: ``float64[:,:]``), or None for no such type."""
    compact = _SPACE.sub("", text)
    return next((t for t in TYPES.values() if _SPACE.sub("", t.spelling) == compact), None)


def types_of(spellings: tuple[str, ...], count: int) -> tuple[ParameterType, ...]:
    """The types of ``count`` parameters recorded as ``spellings`` (none recorded: all float64)."""
    return tuple(TYPES[s] for s in spellings) if spellings else (TYPES[FLOAT64],) * count


def adapter_arguments(name: str, kind: ParameterType) -> list[tuple[str, str]]:
    """The adapter's arguments (name, pythran type) for an unpacked parameter: the value, or a pointer and lengths."""
    if kind.rank == 0:
        return [(names.parameter(name), kind.dtype)]
    return [(names.parameter(name), f"{kind.dtype}*")] + [
        (names.extent(name, axis), "int64") for axis in range(kind.rank)
    ]


def adapter_value(name: str, kind: ParameterType) -> str:
    """What the adapter passes to the kernel for an unpacked parameter: the value, or a view of the items."""
    if kind.rank == 0:
        return names.parameter(name)
    extents = [names.extent(name, axis) for axis in range(kind.rank)]
    shape = extents[0] if kind.rank == 1 else f"({', '.join(extents)})"
    return f"_capsules_as_array({names.parameter(name)}, {shape})"


def unpacking(kind: ParameterType, index: int, user_data: str) -> list[str]:
    """C++ expressions of the entry point for an unpacked parameter's adapter arguments (see parameters.hpp).

    ``index``: the parameter's word in the block; ``user_data``: the entry
    point's user_data argument.  A pointer's expression is its address.
    """
    if kind.rank == 0:
        return [f"capsules_rt::parameter_word({user_data}, {index})"]
    return [f"capsules_rt::parameter_items({user_data}, {index}, {kind.rank})"] + [
        f"capsules_rt::parameter_extent({user_data}, {index}, {axis})" for axis in range(kind.rank)
    ]

