"""The static C++ of every build: real headers in ``runtime/``, read with importlib.resources.

The generated C++ holds their text (a build's C++ is one self-contained
file, which its log's command compiles again): the *prologue* before
pythran's C++, and the entry runtime after it, before the entry points.
Each header says what must come before it (:data:`NEEDS`);
tests/test_runtime.py compiles each on its own, after those alone.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

# In the order they go into the C++: each needs those before it in its list.
PROLOGUE = ("xsimd_scalar.hpp", "allocation.hpp")
CHECKED_PROLOGUE = (*PROLOGUE, "user_data.hpp", "checked_pointer.hpp")
ENTRY_RUNTIME = ("part.hpp", "entry_runtime.hpp", "parameters.hpp")
# Only a build with a kernel whose parameters are not all float64 scalars reads them from a block
# (capsules.generate.parameters): the others' C++ goes without it.
TYPED_PARAMETERS = "parameters.hpp"
# What a header needs before it: headers of runtime/, or <pythran's> (which a build's C++ includes
# before the entry runtime).  A header not listed needs nothing.
NEEDS: dict[str, tuple[str, ...]] = {
    "checked_pointer.hpp": ("allocation.hpp", "user_data.hpp"),
    "entry_runtime.hpp": (
        "allocation.hpp", "<pythonic/python/exception_handler.hpp>", "<pythonic/include/types/NoneType.hpp>",
        "part.hpp",
    ),
}


@lru_cache(maxsize=None)
def header(name: str) -> str:
    """The text of one header of ``runtime/``."""
    return resources.files(__package__).joinpath("runtime", name).read_text(encoding="utf-8")


def prologue(checked: bool = False) -> str:
    """C++ to put before pythran's: allocation that throws; in a checked build, bounds-checked pointers.

    It is guarded like a header: a build may include it precompiled, with
    the headers that follow it, before the C++ that starts with it.
    """
    body = "".join(header(name) for name in (CHECKED_PROLOGUE if checked else PROLOGUE))
    return f"#ifndef CAPSULES_PROLOGUE\n#define CAPSULES_PROLOGUE\n{body}#endif  // CAPSULES_PROLOGUE\n"


def entry_runtime(typed: bool = False) -> str:
    """C++ to put after pythran's, before the entry points: what they share (``typed``: and parameters.hpp)."""
    return "".join(header(name) for name in ENTRY_RUNTIME if typed or name != TYPED_PARAMETERS)


def user_data_header() -> tuple[int, int]:
    """The magic number in front of a checked build's user_data, and the header's size in bytes (user_data.hpp)."""
    text = header("user_data.hpp")
    magic = re.search(r"#define CAPSULES_USER_DATA_MAGIC (0x[0-9a-fA-F]+)LL", text)
    size = re.search(r"#define CAPSULES_USER_DATA_HEADER (\d+)", text)
    assert magic and size, "user_data.hpp defines CAPSULES_USER_DATA_MAGIC and CAPSULES_USER_DATA_HEADER"
    return int(magic.group(1), 16), int(size.group(1))
