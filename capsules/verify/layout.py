"""Verify's view of a kernel: the kind of call SciPy makes to it, and the names and types of what it takes."""

from __future__ import annotations

import ast
import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from ..generate.parameters import types_of
from ..load import Kernel
from ..signatures import FORMS, Form
from .settings import SHAPES


USER_DATA_ITEMS = 16  # for a raw kernel whose subscripts of user_data are not constants
# the kind of call each SciPy target makes
_KINDS = {"generic_filter": "filter", "generic_filter1d": "filter1d", "geometric_transform": "mapping"}


def form_of(kernel: Kernel) -> Form:
    """The SciPy form of a kernel's signature."""
    return next(f for f in FORMS if f.text == kernel.signature)


class Layout:
    """What verify knows of one kernel's calls: its SciPy form, its kind of call, its arguments and parameters."""

    def __init__(self, kernel: Kernel, function: Callable[..., Any], text: str = "") -> None:
        self.kernel = kernel
        self.spec, self.form = kernel.spec, form_of(kernel)
        self.natural = bool(self.spec.role)
        kind = _KINDS.get(self.form.targets[0], "integrand")
        self.kind = "quad" if kind == "integrand" and self.form.args[0] == "double" else kind
        self.role = self.spec.role or self.form.targets[0]
        # a natural kernel's runtime parameters, in the order lowlevel() takes them, with their types
        count = len(self.kernel.parameters)
        self.types = dict(zip(self.kernel.parameters, types_of(self.spec.parameter_types, count)))
        slot = self.form.user_data
        self.reads_user_data = not self.natural and slot is not None and self.spec.reads[slot] is not None
        self.parameters = self._parameter_names(function)
        self.user_data_items = self._user_data_items(text) if self.reads_user_data else 0

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

    def values_name(self) -> str:
        """The name of the values argument (the point, the window, the input line, the coordinates)."""
        if self.natural:
            return self.spec.provided[0]
        return self.spec.params[1 if self.kind == "integrand" else 0]

    def _user_data_items(self, text: str) -> int:
        """How many user_data items to pass: those the kernel reads, when it subscripts user_data by constants only."""
        reads = self.spec.reads[self.form.user_data] or 0
        if reads and _constant_subscripts(text, self.spec.name, self.user_data_name):
            return reads
        return max(reads, USER_DATA_ITEMS)

    @property
    def user_data_name(self) -> str:
        """The name of a raw kernel's user_data argument."""
        return self.spec.params[self.form.user_data] if self.form.user_data is not None else "user_data"

    def user_data(self, data: tuple[Any, ...]) -> np.ndarray | None:
        """A raw kernel's user_data items as the array its Python function takes, or None."""
        if not self.reads_user_data:
            return None
        return np.array(data, dtype=self.kernel.user_data_dtype)


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
