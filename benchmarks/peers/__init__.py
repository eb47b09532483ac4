"""Peer implementations of the benchmark kernels: numba @cfunc and pure-Python SciPy callbacks."""
