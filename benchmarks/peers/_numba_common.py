"""What the numba kernel modules share: numba's types and the cache switch.

The numba kernels that read user_data declare it as ``float64*`` (numba cannot
index a ``void*``); the harness hands their ctypes function to SciPy with the
``void *`` signature string (benchmarks/harness.py SIGNATURES), the same C
ABI.  ``BENCH_NUMBA_CACHE=1`` turns on numba's on-disk cache (``cache=True``)
for the cold-start measurement.
"""

import os

from numba import types

CACHE = os.environ.get("BENCH_NUMBA_CACHE") == "1"

f64 = types.float64
f64p = types.CPointer(types.float64)
intp = types.intp
intpp = types.CPointer(types.intp)
intc = types.intc

