"""Straight kernels: no loop, and nothing called but math, so that each call is short whatever its arguments.

A straight integrand's entry point neither counts calls to ask Python for a
Ctrl-C nor lets the compiler lay out its stack frame alone (see
capsules.generate.entries, and CAPSULES_FRAME_PAD in runtime/entry_runtime.hpp).
"""

from __future__ import annotations

import ast

from ..source import bound_names

# Calls a straight kernel may make: scalar functions whose time does not
# depend on their arguments' size; of math's, not those that run over an
# iterable or count up to an argument.
_SCALAR_BUILTINS = frozenset({"abs", "float", "int", "bool", "round"})
_LOOPING_MATH = frozenset({"fsum", "prod", "dist", "sumprod", "factorial", "comb", "perm"})


def math_names(tree: ast.Module) -> tuple[frozenset[str], frozenset[str]]:
    """The module's names for ``math`` itself (``import math``) and for its functions (``from math import sin``).

    A name the module also binds otherwise (a ``def sin``, an assignment) is neither.
    """
    modules, functions, rebound = set(), set(), set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            modules |= {a.asname or a.name for a in node.names if a.name == "math"}
            rebound |= {a.asname or a.name.split(".")[0] for a in node.names if a.name != "math"}
        elif isinstance(node, ast.ImportFrom) and node.module == "math" and not node.level:
            functions |= {a.asname or a.name for a in node.names if a.name not in _LOOPING_MATH}
        else:
            rebound |= set(bound_names(node))
    return frozenset(modules - rebound), frozenset(functions - rebound)


def is_straight(node: ast.AST, names: tuple[frozenset[str], frozenset[str]]) -> bool:
    """Whether a kernel's body has no loop and calls only math functions and scalar builtins."""
    modules, functions = names
    for sub in ast.walk(node):
        if sub is not node and isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            return False
        if isinstance(sub, (ast.For, ast.AsyncFor, ast.While, ast.comprehension)):
            return False
        if isinstance(sub, ast.Call):
            f = sub.func
            by_module = (isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id in modules
                         and f.attr not in _LOOPING_MATH)
            by_name = isinstance(f, ast.Name) and (f.id in functions or f.id in _SCALAR_BUILTINS)
            if not (by_module or by_name):
                return False
    return True
