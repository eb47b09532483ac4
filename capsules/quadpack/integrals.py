"""Front end for integrals: ``nquad``, ``quad``, ``dblquad``, ``tplquad`` and ``inner``, every level compiled.

SciPy's nquad runs every level but the innermost in Python; these run all
of them in the compiled driver (``capsules.quadpack.driver``), with the
GIL released, and keep SciPy's conventions: the argument order, the first
variable innermost, quad's defaults (epsabs = epsrel = 1.49e-8, limit = 50),
its flags as ``IntegrationWarning`` with its messages, and nquad's
``abserr`` (the largest of every quad call's) and ``neval`` (the innermost
calls' evaluations).  The integrand and any bound that varies are compiled
callables: a ``scipy.LowLevelCallable`` (from a capsules kernel, numba,
Cython, ctypes or cffi), a capsules ``Kernel``, a ctypes or cffi function.
"""

from __future__ import annotations

import ctypes
import functools
import sys
import threading
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scipy import LowLevelCallable

from ..errors import IntegrationInputError, SignatureError
from ..load import Kernel
from .driver import Bound, Driver, Level, Problem, driver

# The integrand's C signatures SciPy's quad accepts, and the driver's number for each.
FORMS = {
    "double (int, double *, void *)": 0,
    "double (int, double *)": 1,
    "double (double, void *)": 2,
    "double (double)": 3,
}
ONE_VARIABLE = 2  # the forms from here on take x alone: one variable, no args
# A bound that varies is called with the outer variables: an array.
BOUND_FORMS = {name: form for name, form in FORMS.items() if form < ONE_VARIABLE}
DEFAULTS = {"epsabs": 1.49e-8, "epsrel": 1.49e-8, "limit": 50}
# quad's options that change nothing without a weight; those that do are refused
IGNORED = {"maxp1", "limlst"}
REFUSED = {"points", "weight", "wvar", "wopts"}
ALL_VARIABLES = -1  # a bound called with every value after its variable, as nquad calls a range function

# scipy.integrate.quad's messages, by QUADPACK's ier.
MESSAGES = {
    1: "The maximum number of subdivisions ({limit}) has been achieved.\n  "
    "If increasing the limit yields no improvement it is advised to analyze \n  "
    "the integrand in order to determine the difficulties.  If the position of a \n  "
    "local difficulty can be determined (singularity, discontinuity) one will \n  "
    "probably gain from splitting up the interval and calling the integrator \n  "
    "on the subranges.  Perhaps a special-purpose integrator should be used.",
    2: "The occurrence of roundoff error is detected, which prevents \n  "
    "the requested tolerance from being achieved.  The error may be \n  underestimated.",
    3: "Extremely bad integrand behavior occurs at some points of the\n  integration interval.",
    4: "The algorithm does not converge.  Roundoff error is detected\n  "
    "in the extrapolation table.  It is assumed that the requested tolerance\n  "
    "cannot be achieved, and that the returned result (if full_output = 1) is \n  "
    "the best which can be obtained.",
    5: "The integral is probably divergent, or slowly convergent.",
}


@dataclass(frozen=True)
class Callee:
    """A compiled function: its address, its user_data pointer, its form, and what keeps them alive."""

    address: int
    user_data: int | None
    form: int
    keep: Any


@dataclass(frozen=True)
class Side:
    """One end of a range: a constant, or a compiled function of the values at ``idx`` (or of all, ``None``)."""

    value: float = 0.0
    callee: Callee | None = None
    idx: tuple[int, ...] | None = None


@dataclass(frozen=True)
class LevelSpec:
    """One variable: its range and quad's options for it."""

    lo: Side
    hi: Side
    epsabs: float
    epsrel: float
    limit: int


def nquad(
    func: Any, ranges: Sequence[Any], args: Sequence[float] | None = None, opts: Any = None,
    full_output: bool = False,
) -> tuple[float, float] | tuple[float, float, dict[str, int]]:
    """Integration over multiple variables, as ``scipy.integrate.nquad``, with every level compiled.

    Parameters
    ----------
    func
        The integrand ``f(x0, x1, ..., xn, *args)``: a ``scipy.LowLevelCallable`` with one of
        quad's signatures (``double (int, double *, void *)``, ``double (int, double *)``; the
        one-variable forms for a 1-D integral without args), a capsules ``Kernel`` (its
        ``lowlevel()``), or a ctypes or cffi function.  A Python function is refused: use
        ``scipy.integrate.nquad`` for it.
    ranges
        One ``(lo, hi)`` per variable, the first variable's first (it is the innermost).
        A bound is a number (infinite ones included) or a compiled function with the array
        signature, called with the outer variables and then ``args``, as nquad calls a
        range function: ``lo(x1, ..., xn, *args)`` for ``x0``'s range.
    args
        Numbers passed after the variables, to the integrand and to the bounds.
    opts
        quad's ``epsabs``, ``epsrel`` and ``limit``: one dict for every level, or a list of
        dicts, one per variable in the order of ``ranges``.
    full_output
        Also return ``{'neval': N}``, the number of integrand evaluations; issues no
        warnings, as SciPy's ``nquad`` does.

    Returns
    -------
    result : float
        The integral.
    abserr : float
        The largest error estimate of all the quad calls, as nquad reports it.
    out_dict : dict
        With ``full_output``: ``{'neval': N}``.

    Warns
    -----
    IntegrationWarning
        SciPy's message for each flag a quad call ended with (subdivision limit, roundoff,
        bad integrand, no convergence, divergence): each message once per call of
        ``nquad``, in the order they first happened (SciPy warns at every quad call that
        ends with a flag; Python's default filter shows each message once).

    Raises
    ------
    KernelError
        A capsules kernel raised: the integral stops.
    KeyboardInterrupt
        Ctrl-C (in the main thread) stops the integral within about 20 ms of evaluations.
    IntegrationInputError, SignatureError
        An argument is not one this function can integrate.
    """
    callee = callee_of(func, "func", FORMS)
    levels = level_specs(ranges, opts)
    return run(callee, levels, argument_values(args), full_output, stacklevel=3, caller="nquad")


def quad(
    func: Any, a: float, b: float, args: Sequence[float] = (), full_output: int = 0,
    epsabs: float = 1.49e-8, epsrel: float = 1.49e-8, limit: int = 50, points: Any = None, weight: Any = None,
) -> tuple[float, float]:
    """``scipy.integrate.quad`` of a compiled integrand over ``(a, b)``, with the GIL released.

    Takes what :func:`nquad` takes for one variable; ``full_output`` and quad's
    ``points`` and ``weight`` are not supported (use ``scipy.integrate.quad``).
    """
    unsupported = {"full_output": bool(full_output), "points": points is not None, "weight": weight is not None}
    for name, given in unsupported.items():
        if given:
            raise IntegrationInputError(f"capsules.quad: '{name}' is not supported; use scipy.integrate.quad")
    callee = callee_of(func, "func", FORMS)
    level = LevelSpec(constant(a, "a"), constant(b, "b"), *tolerances({"epsabs": epsabs, "epsrel": epsrel,
                                                                       "limit": limit}, "quad"))
    return run(callee, [level], argument_values(args), False, stacklevel=3, caller="quad")


def dblquad(
    func: Any, a: float, b: float, gfun: Any, hfun: Any, args: Sequence[float] = (),
    epsabs: float = 1.49e-8, epsrel: float = 1.49e-8,
) -> tuple[float, float]:
    """``scipy.integrate.dblquad``: the integral of ``func(y, x)`` for x in (a, b), y in (gfun(x), hfun(x)).

    ``gfun`` and ``hfun`` are numbers or compiled functions of ``x`` alone (array
    signature, called with one value), as SciPy calls them.
    """
    callee = callee_of(func, "func", FORMS)
    tol = tolerances({"epsabs": epsabs, "epsrel": epsrel}, "dblquad")
    levels = [
        LevelSpec(side(gfun, "gfun", (1,)), side(hfun, "hfun", (1,)), *tol),
        LevelSpec(constant(a, "a"), constant(b, "b"), *tol),
    ]
    return run(callee, levels, argument_values(args), False, stacklevel=3, caller="dblquad")


def tplquad(
    func: Any, a: float, b: float, gfun: Any, hfun: Any, qfun: Any, rfun: Any, args: Sequence[float] = (),
    epsabs: float = 1.49e-8, epsrel: float = 1.49e-8,
) -> tuple[float, float]:
    """``scipy.integrate.tplquad``: ``func(z, y, x)`` over x in (a, b), y in (gfun, hfun), z in (qfun, rfun).

    Bounds are numbers or compiled functions (array signature), called as
    SciPy calls them: ``gfun(x)``, ``hfun(x)``, ``qfun(x, y)``, ``rfun(x, y)``.
    """
    callee = callee_of(func, "func", FORMS)
    tol = tolerances({"epsabs": epsabs, "epsrel": epsrel}, "tplquad")
    levels = [
        LevelSpec(side(qfun, "qfun", (2, 1)), side(rfun, "rfun", (2, 1)), *tol),
        LevelSpec(side(gfun, "gfun", (2,)), side(hfun, "hfun", (2,)), *tol),
        LevelSpec(constant(a, "a"), constant(b, "b"), *tol),
    ]
    return run(callee, levels, argument_values(args), False, stacklevel=3, caller="tplquad")


def inner(func: Any, ranges: Sequence[Any], opts: Any = None) -> LowLevelCallable:
    """The integral over the inner variables, as a function of the outer ones: a capsule for SciPy.

    Returns a ``scipy.LowLevelCallable`` with the signature ``double (int, double *, void *)``
    that computes ``nquad(func, ranges, args=(outer..., *args), opts)``: the values SciPy
    passes it (the outer variables, then quad's ``args``) follow the inner variables, for
    the integrand and for the bounds.  ``scipy.integrate.quad``, ``nquad`` (or
    ``capsules.nquad``) then integrate the outer levels around it.

    Each call warns as :func:`nquad` does; a kernel's exception is left pending with NaN
    returned, so SciPy raises it when it returns.
    """
    callee = callee_of(func, "func", BOUND_FORMS)
    levels = level_specs(ranges, opts)
    problem, keep = problem_of(callee, levels, [])
    messages = (ctypes.c_char_p * (6 * len(levels)))(
        *(message(code % 6, levels[code // 6].limit).encode() if code % 6 else b"" for code in range(6 * len(levels)))
    )
    problem.messages = messages
    problem.main_thread = 1
    entry = driver().inner
    made = InnerCallable(entry, ctypes.c_void_p(ctypes.addressof(problem)), (problem, messages, keep, callee))
    made.arguments = (func, ranges, opts)
    return made


class InnerCallable(LowLevelCallable):
    """The inner-levels capsule; keeps its problem (the user_data) and the callables it calls alive.

    It pickles as the call that made it (for process pools), when its
    integrand and bounds pickle (a capsules kernel's callables do).
    """

    arguments: tuple[Any, Any, Any]

    def __new__(cls, entry: Any, pointer: ctypes.c_void_p, keep: Any) -> InnerCallable:
        self = super().__new__(cls, entry, pointer, "double (int, double *, void *)")
        self.keep = keep
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return inner, self.arguments


def run(
    callee: Callee, levels: list[LevelSpec], args: list[float], full_output: bool, stacklevel: int,
    caller: str, engine: Driver | None = None,
) -> Any:
    """Integrate in ``engine`` (the driver by default), with the GIL released.

    Raise what a kernel raised, and warn as SciPy would.  ``caller``: the
    function of capsules that integrates (``"nquad"``), as its errors name it.
    """
    check_arity(callee, len(levels), len(args), caller)
    if callee.form >= ONE_VARIABLE and len(levels) + len(args) > 1:
        raise IntegrationInputError(
            f"func takes one double ({callee.keep.signature!r}) but the integral has {len(levels)} variable(s) and "
            f"{len(args)} argument(s); give it the signature 'double (int, double *, void *)'"
        )
    problem, keep = problem_of(callee, levels, args)
    counts = (ctypes.c_int64 * (6 * len(levels)))()
    order = (ctypes.c_int32 * (6 * len(levels)))()
    problem.ier_counts, problem.order = counts, order
    problem.main_thread = int(threading.current_thread() is threading.main_thread())
    engine = engine or driver()
    status = engine.run(ctypes.byref(problem))
    if status == 1:
        engine.restore(ctypes.byref(problem))
    if status == 2:
        raise MemoryError("capsules.nquad: out of memory for the subinterval lists (limit too large?)")
    del keep
    if full_output:
        return problem.value, problem.abserr, {"neval": problem.neval}
    warn_flags([order[k] for k in range(problem.norder)], levels, stacklevel + 1)
    return problem.value, problem.abserr


def check_arity(callee: Callee, variables: int, args: int, caller: str) -> None:
    """Refuse a capsules integrand given other than one range (or argument) per variable it declares.

    Its compiled code would fail at its first call, naming the kernel only;
    other callables cannot say how many values they read.
    """
    kernel = getattr(callee.keep, "kernel", None)  # what Kernel.lowlevel() made knows its kernel
    if not isinstance(kernel, Kernel) or kernel.spec.role != "integrand" or len(kernel.spec.provided) == variables + args:
        return
    declared = kernel.spec.provided
    given = f"{variables} range(s)" + (f" and {args} argument(s)" if args else "")
    raise IntegrationInputError(
        f"'{kernel.name}' integrates {len(declared)} variable(s) ({', '.join(declared)}), but capsules.{caller} "
        f"was given {given}: give one range per variable, or the last ones as args",
        **kernel.spec.where(),
    )


def warn_flags(codes: list[int], levels: list[LevelSpec], stacklevel: int) -> None:
    """SciPy's IntegrationWarning for each flag, each message once, in the order they first happened."""
    from scipy.integrate import IntegrationWarning  # imported by the first warning: importing capsules stays light

    shown: set[str] = set()
    for code in codes:
        text = message(code % 6, levels[code // 6].limit)
        if text not in shown:
            shown.add(text)
            warnings.warn(text, IntegrationWarning, stacklevel=stacklevel)


def message(ier: int, limit: int) -> str:
    """scipy.integrate.quad's message for QUADPACK's flag ``ier``."""
    return MESSAGES[ier].format(limit=limit)


def problem_of(callee: Callee, levels: list[LevelSpec], args: list[float]) -> tuple[Problem, list[Any]]:
    """The driver's description of an integral, and the ctypes objects it points into."""
    array = (Level * len(levels))()
    keep: list[Any] = [array, callee.keep]
    for k, spec in enumerate(levels):
        array[k].lo, array[k].hi = bound_of(spec.lo, keep), bound_of(spec.hi, keep)
        array[k].epsabs, array[k].epsrel, array[k].limit = spec.epsabs, spec.epsrel, spec.limit
    values = (ctypes.c_double * max(1, len(args)))(*args)
    keep.append(values)
    problem = Problem(ndim=len(levels), nargs=len(args), form=callee.form, function=callee.address,
                      user_data=callee.user_data, levels=array, args=values,
                      empty_is_zero=int(scipy_skips_empty_ranges()))
    return problem, keep


@functools.lru_cache(maxsize=1)
def scipy_skips_empty_ranges() -> bool:
    """Whether the installed SciPy's quad returns 0 for ``a == b`` without calling the integrand.

    Newer SciPy does; older SciPy integrates the empty interval (21 calls).
    Asked of SciPy itself, once: its answer decides nquad's ``neval``.
    """
    from scipy import integrate

    calls: list[float] = []
    integrate.quad(lambda x: calls.append(x) or 0.0, 1.0, 1.0)
    return not calls


def bound_of(spec: Side, keep: list[Any]) -> Bound:
    if spec.callee is None:
        return Bound(value=spec.value)
    idx = (ctypes.c_int32 * max(1, len(spec.idx or ())))(*(spec.idx or ()))
    keep += [idx, spec.callee.keep]
    nidx = ALL_VARIABLES if spec.idx is None else len(spec.idx)
    return Bound(function=spec.callee.address, user_data=spec.callee.user_data, form=spec.callee.form,
                 nidx=nidx, idx=idx)


def level_specs(ranges: Any, opts: Any) -> list[LevelSpec]:
    """One LevelSpec per variable, from nquad's ``ranges`` and ``opts``."""
    entries = items(ranges)
    if not entries:
        raise IntegrationInputError(f"ranges must be a non-empty list of (lo, hi) pairs, not {ranges!r}")
    per_level = per_level_opts(opts, len(entries))
    specs = []
    for k, entry in enumerate(entries):
        name = f"ranges[{k}]"
        if callable(entry):
            raise IntegrationInputError(
                f"{name} is a Python function: capsules.nquad takes (lo, hi) pairs whose bounds are numbers "
                "or compiled functions (scipy.LowLevelCallable); for Python range functions use "
                "scipy.integrate.nquad"
            )
        pair = items(entry)
        if pair is None or len(pair) != 2:
            raise IntegrationInputError(f"{name} must be a (lo, hi) pair, not {entry!r}")
        tol = tolerances(per_level[k], f"opts[{k}]" if isinstance(opts, Sequence) else "opts")
        specs.append(LevelSpec(side(pair[0], f"{name}[0]", None), side(pair[1], f"{name}[1]", None), *tol))
    return specs


def items(value: Any) -> list[Any] | None:
    """The items of a list, tuple or array (as SciPy iterates them), or None for anything else."""
    if isinstance(value, (str, bytes, Mapping)) or callable(value):
        return None
    try:
        return list(value)
    except TypeError:
        return None


def per_level_opts(opts: Any, depth: int) -> list[Mapping[str, Any]]:
    if opts is None:
        return [{}] * depth
    if isinstance(opts, Mapping):
        return [opts] * depth
    if isinstance(opts, Sequence) and not isinstance(opts, (str, bytes)) and len(opts) == depth:
        for k, one in enumerate(opts):
            if not isinstance(one, Mapping):
                raise IntegrationInputError(
                    f"opts[{k}] must be a dict of quad's options, not {one!r} (for option functions use "
                    "scipy.integrate.nquad)"
                )
        return list(opts)
    raise IntegrationInputError(f"opts must be a dict, or a list of {depth} dicts (one per variable), not {opts!r}")


def tolerances(given: Mapping[str, Any], name: str) -> tuple[float, float, int]:
    """``(epsabs, epsrel, limit)`` from one level's options, checked as QUADPACK checks them."""
    for key, value in given.items():
        if key in REFUSED and value is not None:
            raise IntegrationInputError(
                f"{name}: '{key}' is not supported by capsules.nquad (only epsabs, epsrel and limit); "
                "use scipy.integrate.nquad"
            )
        if key not in DEFAULTS and key not in IGNORED and key not in REFUSED:
            raise IntegrationInputError(f"{name}: unknown option '{key}' (quad takes epsabs, epsrel, limit)")
    values = {**DEFAULTS, **{k: v for k, v in given.items() if k in DEFAULTS}}
    epsabs, epsrel = real(values["epsabs"], f"{name}['epsabs']"), real(values["epsrel"], f"{name}['epsrel']")
    limit = values["limit"]
    if isinstance(limit, bool) or not isinstance(limit, int) and not hasattr(limit, "__index__"):
        raise IntegrationInputError(f"{name}['limit'] must be an integer, not {limit!r}")
    if int(limit) < 1 or int(limit) > 2**31 - 8:
        raise IntegrationInputError(f"{name}: Invalid 'limit' argument. There must be at least one subinterval")
    if epsabs <= 0 and epsrel < max(50 * sys.float_info.epsilon, 5e-29):
        raise IntegrationInputError(
            f"{name}: If 'epsabs'<=0, 'epsrel' must be greater than both 5e-29 and 50*(machine epsilon)."
        )
    return epsabs, epsrel, int(limit)


def side(value: Any, name: str, idx: tuple[int, ...] | None) -> Side:
    """One end of a range: a number, or a compiled function (called with the values at ``idx``)."""
    if is_number(value):
        return constant(value, name)
    return Side(callee=callee_of(value, name, BOUND_FORMS), idx=idx)


def constant(value: Any, name: str) -> Side:
    return Side(value=real(value, name))


def real(value: Any, name: str) -> float:
    if not is_number(value):
        raise IntegrationInputError(f"{name} must be a real number, not {value!r}")
    return float(value)


def is_number(value: Any) -> bool:
    """Whether ``value`` is a real number (a bound, an argument): what float() takes, but no text or bool."""
    if isinstance(value, (bool, str, bytes, complex)):
        return False
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def argument_values(args: Any) -> list[float]:
    """nquad's ``args`` as numbers (a compiled integrand reads them as doubles); a lone number is one argument."""
    if args is None:
        return []
    values = items(args)
    if values is None:
        values = [args]
    return [real(value, f"args[{k}]") for k, value in enumerate(values)]


def callee_of(obj: Any, name: str, forms: Mapping[str, int]) -> Callee:
    """The address, user_data and form of a compiled function: a LowLevelCallable, Kernel, ctypes or cffi function."""
    if isinstance(obj, Kernel):
        obj = obj.lowlevel()
    elif isinstance(obj, ctypes._CFuncPtr) or type(obj).__module__ == "_cffi_backend":
        obj = LowLevelCallable(obj)
    elif not isinstance(obj, LowLevelCallable):
        what = "a Python function" if callable(obj) else f"{obj!r}"
        raise IntegrationInputError(
            f"{name} is {what}: capsules.nquad integrates compiled functions only (a scipy.LowLevelCallable, "
            "a capsules kernel, a ctypes or cffi function); for Python functions use scipy.integrate.nquad"
        )
    signature = obj.signature
    if signature not in forms:
        raise SignatureError(f"{name} has the signature {signature!r}; capsules.nquad takes {', '.join(forms)}")
    capsule = tuple.__getitem__(obj, 0)
    address = _CAPSULE_POINTER(capsule, signature.encode())
    return Callee(address, _CAPSULE_CONTEXT(capsule), forms[signature], obj)


# ctypes.pythonapi's functions are shared by the whole process: take private prototypes
_CAPSULE_POINTER = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.py_object, ctypes.c_char_p)(
    ("PyCapsule_GetPointer", ctypes.pythonapi)
)
_CAPSULE_CONTEXT = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.py_object)(("PyCapsule_GetContext", ctypes.pythonapi))
