"""Verify's calls: a kernel called as SciPy calls it, through its C function pointer, and as the Python it was written in."""

from __future__ import annotations

import ctypes
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import KernelError
from ..load import ComplexParts, KernelCallable
from .compare import Outcome
from .inputs import Case
from .layout import Layout


_C_TYPES = {"double": ctypes.c_double, "int": ctypes.c_int, "npy_intp": ctypes.c_ssize_t}


class Caller:
    """Calls one kernel both ways, compiled as SciPy calls it and as plain Python, on a :class:`Case`."""

    def __init__(self, layout: Layout, function: Callable[..., Any]) -> None:
        self.layout, self.function = layout, function
        self.c_functions: dict[int, Any] = {}  # by address: a complex integrand's parts are two functions

    def c_function(self, address: int) -> Any:
        """The C function at ``address``, typed as SciPy calls it."""
        if address not in self.c_functions:
            restype = _C_TYPES[self.layout.form.ret]
            argtypes = [_C_TYPES.get(a, ctypes.c_void_p) for a in self.layout.form.args]
            # PYFUNCTYPE keeps the GIL and raises the exception a failing kernel sets, as SciPy's callers see it
            self.c_functions[address] = ctypes.PYFUNCTYPE(restype, *argtypes)(address)
        return self.c_functions[address]

    def both(self, case: Case) -> tuple[Outcome, Outcome]:
        """The compiled and the Python outcome on ``case``.

        Where Python raises IndexError and the build does not check indices,
        the compiled side is not called: it would read past the end of an
        array, and may crash the process.
        """
        python = self.python(case)
        if isinstance(python.error, IndexError) and not self.layout.kernel.module.checked:
            return Outcome(not_called="a build without checks would read out of range here; "
                                      "verify the checked build to see what it does"), python
        return self.compiled(case), python

    def compiled(self, case: Case) -> Outcome:
        """Call the capsule's C function as SciPy does: its argument layout, user_data from ``lowlevel``.

        A complex integrand's two functions are called in turn, as SciPy
        integrates ``lowlevel().real`` and ``lowlevel().imag``.
        """
        if self.layout.natural:
            made = self.layout.kernel.lowlevel(**dict(zip(self.layout.kernel.parameters, case.data)))
        else:
            made = self.layout.kernel.lowlevel(user_data=self.layout.user_data(case.data))
        if not isinstance(made, ComplexParts):
            return self._call(made, case)
        real, imag = self._call(made.real, case), self._call(made.imag, case)
        if real.error is not None or imag.error is not None:
            return real if real.error is not None else imag
        return Outcome(real.values + imag.values, parts=True)

    def _call(self, callable_: KernelCallable, case: Case) -> Outcome:
        """One C function of the kernel called on ``case``, with the user_data ``callable_`` holds."""
        held = callable_.user_data_array
        user_data = None if held is None else held.ctypes.data
        arrays, args, out = self._c_arguments(case)
        if self.layout.form.user_data is not None:
            args.append(user_data)
        try:
            returned = self.c_function(callable_.kernel.address)(*args)
        except Exception as err:  # noqa: BLE001  (the kernel's own exception, whatever it is)
            cause = err.__cause__
            if cause is None and isinstance(err, KernelError):
                return Outcome(ok=False)  # an ndimage callback returned 0 without raising: failure, as 0 in Python
            return Outcome(error=_unwrapped(cause) if cause is not None else err)
        del arrays  # kept alive until the call returned
        if self.layout.form.ret == "double":
            return Outcome((returned,))
        return Outcome(tuple(float(v) for v in out), ok=returned != 0)

    def _c_arguments(self, case: Case) -> tuple[list[np.ndarray], list[Any], np.ndarray]:
        """The arrays to keep alive, the C arguments before user_data, and the array the kernel writes."""
        nothing = np.empty(0)
        if self.layout.kind == "quad":
            return [], [case.values[0]], nothing
        if self.layout.kind == "integrand":
            point = np.array(case.values, dtype=np.float64)
            return [point], [len(case.values), point.ctypes.data], nothing
        if self.layout.kind == "filter":
            window, out = np.array(case.values, dtype=np.float64), np.full(1, np.nan)
            return [window, out], [window.ctypes.data, len(window), out.ctypes.data], out
        if self.layout.kind == "filter1d":
            line, out = np.array(case.values, dtype=np.float64), np.full(case.count, np.nan)
            return [line, out], [line.ctypes.data, len(line), out.ctypes.data, case.count], out
        coords, out = np.array(case.coords, dtype=np.intp), np.full(len(case.coords), np.nan)
        return [coords, out], [coords.ctypes.data, out.ctypes.data, len(coords), len(coords)], out

    def python(self, case: Case, function: Callable[..., Any] | None = None) -> Outcome:
        """Call the function the user wrote (or ``function``, a copy of it) with the same logical arguments."""
        function = function or self.function
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")  # a numpy scalar's overflow warns: its value is what counts
            try:
                return self._natural(case, function) if self.layout.natural else self._raw(case, function)
            except Exception as err:  # noqa: BLE001  (what the user's function raises is the result)
                return Outcome(error=err)

    def _all_parameters(self, case: Case) -> list[Any]:
        """Every parameter's value for the Python side, an array a copy of its own (the function may write it)."""
        fixed, given = dict(self.layout.spec.constants), dict(zip(self.layout.kernel.parameters, case.data))
        return [fixed[p] if p in fixed else _copied(given[p]) for p in self.layout.parameters]

    def _natural(self, case: Case, call: Callable[..., Any]) -> Outcome:
        parameters = self._all_parameters(case)
        if self.layout.kind == "integrand" and self.layout.spec.part:
            value = complex(call(*case.values, *parameters))
            return Outcome((value.real, value.imag), parts=True)
        if self.layout.kind == "integrand":
            return Outcome((float(call(*case.values, *parameters)),))
        if self.layout.kind == "filter":
            return Outcome((float(call(np.array(case.values), *parameters)),))
        if self.layout.kind == "filter1d":
            out = np.full(case.count, np.nan)
            call(np.array(case.values), out, *parameters)
            return Outcome(tuple(float(v) for v in out))
        result = call(np.array(case.coords, dtype=np.int64), *parameters)
        return Outcome(tuple(float(v) for v in result))

    def _raw(self, case: Case, call: Callable[..., Any]) -> Outcome:
        user_data = self.layout.user_data(case.data)
        tail = [user_data] if self.layout.form.user_data is not None else []
        if self.layout.kind == "quad":
            return Outcome((float(call(case.values[0], *tail)),))
        if self.layout.kind == "integrand":
            return Outcome((float(call(len(case.values), np.array(case.values), *tail)),))
        if self.layout.kind == "filter":
            window, out = np.array(case.values), np.full(1, np.nan)
            flag = call(window, len(window), out, *tail)
        elif self.layout.kind == "filter1d":
            line, out = np.array(case.values), np.full(case.count, np.nan)
            flag = call(line, len(line), out, case.count, *tail)
        else:
            coords, out = np.array(case.coords, dtype=np.int64), np.full(len(case.coords), np.nan)
            flag = call(coords, out, len(coords), len(coords), *tail)
        return Outcome(tuple(float(v) for v in out), ok=bool(flag))


def _unwrapped(error: BaseException) -> BaseException:
    """A compiled kernel's exception as Python would word it: Pythran puts its message in parentheses."""
    text = str(error)
    if len(error.args) == 1 and text.startswith("(") and text.endswith(")"):
        try:
            return type(error)(text[1:-1])
        except Exception:  # noqa: BLE001  (an exception type that takes other arguments: keep it as it is)
            return error
    return error


def _copied(x: Any) -> Any:
    return x.copy() if isinstance(x, np.ndarray) else x
