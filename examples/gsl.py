"""Compiled kernels called by the GNU Scientific Library, not SciPy, through ctypes.

A capsule is a plain C function pointer: ``capsules.gsl.gsl_function(kernel,
user_data)`` packs one, with its user_data, into GSL's ``gsl_function``
struct.  Here GSL integrates (``gsl_integration_qags``, ``qagiu``) and
differentiates (``gsl_deriv_central``) the kernels of kernels/gsl_functions.py,
each against its closed form.  Needs Debian's libgsl (``apt-get install
libgsl-dev``); without it the example says so and exits.

    python examples/gsl.py
"""

from __future__ import annotations

import ctypes
import math
import sys
from pathlib import Path

import capsules
from capsules import gsl

KERNELS = Path(__file__).resolve().parent.parent / "kernels"


def main() -> int:
    try:
        lib = gsl.load_library()
    except capsules.CapsulesError as err:
        print(f"skipped: {err}")
        return 0
    mod = capsules.load(KERNELS / "gsl_functions.py")
    result, abserr = ctypes.c_double(), ctypes.c_double()
    out = (ctypes.byref(result), ctypes.byref(abserr))
    work = lib.gsl_integration_workspace_alloc(1000)
    try:
        rows = []
        # 3x^2 + 2x + 1: the derivative at 2 is 14, the integral over [0, 2] is 14
        f = gsl.gsl_function(mod.quadratic, [1.0, 2.0, 3.0])
        status = lib.gsl_deriv_central(ctypes.byref(f), 2.0, 1e-3, *out)
        rows.append(("gsl_deriv_central", "d/dx (3x^2 + 2x + 1) at x = 2", status, result.value, abserr.value, 14.0))
        status = lib.gsl_integration_qags(ctypes.byref(f), 0.0, 2.0, 0.0, 1e-12, 1000, work, *out)
        rows.append(("gsl_integration_qags", "int_0^2 3x^2 + 2x + 1 dx", status, result.value, abserr.value, 14.0))
        # an integrable singularity at 0: GSL's own qags example
        f = gsl.gsl_function(mod.log_over_sqrt, [1.0])
        status = lib.gsl_integration_qags(ctypes.byref(f), 0.0, 1.0, 0.0, 1e-10, 1000, work, *out)
        rows.append(("gsl_integration_qags", "int_0^1 log(x) / sqrt(x) dx", status, result.value, abserr.value, -4.0))
        k, w = 0.5, 3.0
        f = gsl.gsl_function(mod.damped_sine, [k, w])
        status = lib.gsl_integration_qagiu(ctypes.byref(f), 0.0, 0.0, 1e-10, 1000, work, *out)
        rows.append(("gsl_integration_qagiu", "int_0^inf exp(-x/2) sin(3x) dx", status, result.value, abserr.value,
                     w / (k * k + w * w)))
        status = lib.gsl_deriv_central(ctypes.byref(f), 1.0, 1e-3, *out)
        rows.append(("gsl_deriv_central", "d/dx exp(-x/2) sin(3x) at x = 1", status, result.value, abserr.value,
                     math.exp(-k) * (w * math.cos(w) - k * math.sin(w))))
    finally:
        lib.gsl_integration_workspace_free(work)
    print(f"{'GSL routine':<22} {'what':<32} {'result':>20} {'closed form':>20} {'|error|':>8} {'GSL estimate':>12}")
    failed = 0
    for routine, what, status, value, estimate, exact in rows:
        if status != 0:
            failed += 1
            print(f"{routine:<22} {what:<32} failed: {lib.gsl_strerror(status).decode()}")
            continue
        print(f"{routine:<22} {what:<32} {value:20.15g} {exact:20.15g} {abs(value - exact):8.1e} {estimate:12.1e}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
