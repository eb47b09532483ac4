"""The roles of natural kernels: one record each.

A natural kernel's ``#capsules ROLE name(provided; parameters)`` comment (or
its decorator, ``@capsules.ROLE``) names one of these roles.  Its record says
everything capsules knows about the role: what SciPy provides and how many
arguments that takes, the raw pythran types of the adapter that SciPy calls,
the adapter's body, what a checked build checks of the result, what the
kernel must return, and which SciPy functions call it.  A new role is one more
record (and, where SciPy calls it with a C signature of its own, a form in
capsules.signatures).

The bodies are pythran source, ``str.format`` templates of these fields:

=============  ===========================================================
``entry``      the adapter's name (``_capsules_NAME``)
``name``       the kernel's name
``twin``       the name of its pointer twin (capsules.generate.rewrite)
``count``      how many arguments SciPy provides
``provided``   their names, joined by commas
``xx``         ``xx[0], xx[1], ...``: an integrand's variables
``ud``         ``, ud`` where the adapter takes user_data, else nothing
``unpacked``   ``, `` and the arguments the entry point unpacks from user_data
               after SciPy's (capsules.generate.parameters), where there are any
``p``          ``, `` and the parameters' values, where there are any
``check``      the role's ``check``, in a checked build (else nothing)
``part``       in ``parts_body``: ``real`` or ``imag``
=============  ===========================================================
"""

from __future__ import annotations

from dataclasses import dataclass

ND_INTEGRATORS = ("quad", "dblquad", "tplquad", "nquad")


@dataclass(frozen=True)
class Role:
    """One role a natural kernel plays for SciPy (see the module's docstring for the templates' fields)."""

    name: str
    provided: int | None  # how many arguments before ';' (None: one or more)
    summary: str  # what SciPy provides, in words
    types: str  # the raw pythran signature of the adapter, without user_data
    targets: tuple[str, ...]  # the SciPy functions that call it
    returns: str  # what the kernel must return, in words (for errors)
    body: str  # the adapter, calling the kernel with views of SciPy's buffers
    check: str = ""  # what a checked build checks of the result, inserted at {check}
    # the adapter calling the kernel's pointer twin instead, where the kernel
    # only indexes and measures what SciPy provides; "": never
    pointer_body: str = ""
    views: bool = True  # what SciPy provides are views (bounds-checked in a checked build); else floats
    user_data: bool = True  # the adapter always takes user_data (SciPy's form has it); else only with parameters
    # for a kernel declared ``-> complex``: an adapter per part of its result
    # (SciPy's callbacks return real numbers); "": the role has no parts.
    # _capsules_real and _capsules_imag (capsules.generate.adapters) take a
    # float as well as a complex, and keep a zero's sign, which + 0j loses
    parts_body: str = ""


# A mapping's result, res, into SciPy's coordinates: res[i] * 1.0, as for a filter.  A string
# is indexable and * 1.0 compiles for its characters, so it is refused, at its first call, in
# every build.  pythran decides the isinstance test when compiling and compiles one branch;
# the message reads irank (a filter's, size), so that a kernel returning a constant string is
# not folded either, into a build error of the default build alone.
_COORDINATES = """\
    if isinstance(res, str):
        raise TypeError(str.join("", ["{name} must return ", str(irank), " input coordinates, not a string"]))
    else:
        if len(res) != irank:
            raise ValueError("{name} returned the wrong number of input coordinates")
        for i in range(irank):
            ic[i] = res[i] * 1.0
"""


ROLES: dict[str, Role] = {
    role.name: role
    for role in (
        Role(
            "integrand",
            provided=None,
            summary="integration variables",
            types="int32, float64*",
            targets=ND_INTEGRATORS,
            returns="a number",
            # * 1.0, not float(): exactly r for any number, and a build error for a
            # string, which float() would parse at run time
            body="""\
def {entry}(n, xx{ud}{unpacked}):
    if n != {count}:
        raise ValueError("{name} integrates {count} variable(s) ({provided}), but SciPy passed another number")
    r = {name}({xx}{p}) * 1.0
{check}    return r""",
            check="""\
    if not _capsules_np.isfinite(r):
        raise FloatingPointError("{name} returned a non-finite value")
""",
            views=False,
            user_data=False,
            parts_body="""\
def {entry}(n, xx{ud}{unpacked}):
    if n != {count}:
        raise ValueError("{name} integrates {count} variable(s) ({provided}), but SciPy passed another number")
    r = _capsules_{part}({name}({xx}{p}))
{check}    return r""",
        ),
        Role(
            "filter",
            provided=1,
            summary="the window",
            types="float64*, int64, float64*",
            targets=("generic_filter",),
            returns="a number",
            # r * 1.0: exactly r for any number (-0.0 and NaN too), and a build error
            # for None.  A string is refused at the first call, in every build: its
            # characters would be stored as garbage (see _COORDINATES for the test)
            body="""\
def {entry}(buf, size, out, ud{unpacked}):
    r = {name}(_capsules_as_array(buf, size){p})
    if isinstance(r, str):
        raise TypeError(str.join("", ["{name} must return a number for its window of ", str(size),
                                      " values, not a string"]))
    elif r is None:
        raise TypeError(str.join("", ["{name} must return a number for its window of ", str(size),
                                      " values, not None"]))
    else:
        out[0] = r * 1.0
{check}    return 1""",
            check="""\
        if not _capsules_np.isfinite(out[0]):
            raise FloatingPointError("{name} returned a non-finite value")
""",
        ),
        Role(
            "filter1d",
            provided=2,
            summary="line_in and line_out",
            types="float64*, int64, float64*, int64",
            targets=("generic_filter1d",),
            returns="nothing in particular (it fills line_out)",
            body="""\
def {entry}(li, nin, lo, nout, ud{unpacked}):
    lo_view = _capsules_as_array(lo, nout)
    {name}(_capsules_as_array(li, nin), lo_view{p})
{check}    return 1""",
            check="""\
    for v in lo_view:
        if not _capsules_np.isfinite(v):
            raise FloatingPointError("{name} wrote a non-finite value")
""",
            # SciPy's lines as they are: the entry point's path for kept promises
            # (capsules.generate.entries) then lets the compiler see that they do not overlap
            pointer_body="""\
def {entry}(li, nin, lo, nout, ud{unpacked}):
    {twin}(li, lo{p}, nin, nout)
    return 1""",
        ),
        Role(
            "mapping",
            provided=1,
            summary="the output coordinates",
            types="int64*, float64*, int32, int32",
            targets=("geometric_transform",),
            returns="the input coordinates, a tuple or array of numbers",
            body="""\
def {entry}(oc, ic, orank, irank, ud{unpacked}):
    res = {name}(_capsules_as_array(oc, orank){p})
""" + _COORDINATES + """{check}    return 1""",
            check="""\
            if not _capsules_np.isfinite(ic[i]):
                raise FloatingPointError("{name} returned a non-finite coordinate")
""",
            # a coordinate view costs an allocation per pixel: the twin takes the raw pointer
            pointer_body="""\
def {entry}(oc, ic, orank, irank, ud{unpacked}):
    res = {twin}(oc{p}, orank)
""" + _COORDINATES + """    return 1""",
        ),
    )
}
