"""Array kernels compiled from plain Python and called on numpy arrays, in place where they write.

    python examples/array_kernels.py
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

import capsules

KERNELS = Path(__file__).parent.parent / "kernels"


def timed(f):
    start = time.perf_counter()
    result = f()
    return result, time.perf_counter() - start


def main() -> None:
    arrays = capsules.load(KERNELS / "arrays.py")
    python = arrays.python_module()  # the same functions, run by the interpreter
    rng = np.random.default_rng(0)

    # vector magnitude, written into p
    n = 1_000_000
    px, py, pz = rng.standard_normal((3, n))
    p = np.empty(n)
    _, t = timed(lambda: arrays.magnitude(p, px, py, pz))
    small = np.empty(20_000)
    _, slow = timed(lambda: python.magnitude(small, px[:20_000], py[:20_000], pz[:20_000]))
    diff = np.max(np.abs(p - np.sqrt(px**2 + py**2 + pz**2)))
    print(f"magnitude     n={n:,}: max |p - numpy| = {diff:.1e}, {t * 1e3:.1f} ms "
          f"({slow * n / 20_000 / t:.0f}x faster than the Python loop)")

    # float32 mean, accumulated in float32 like the C compute_mean
    a = rng.uniform(0, 1, n).astype(np.float32)
    mean = arrays.mean32(a)
    c_like = np.cumsum(a, dtype=np.float32)[-1] / np.float32(n)
    # pythran returns the float32 result as a Python float; numpy.float32() of it is exact
    print(f"mean32        n={n:,}: {np.float32(mean)!s} (the float32 running sum gives {c_like!s}: "
          f"{'equal' if mean == c_like else 'DIFFERENT'}; numpy's float64 mean: {np.mean(a, dtype=np.float64):.9f})")

    # in-place add: the caller's array changes, no copy
    x = np.arange(6.0)
    alias = x
    arrays.iadd(x, np.full(6, 10.0))
    print(f"iadd          x += 10 in place: {x}, same object: {alias is x}")

    # heat equation: 200 explicit steps on a 200 x 200 plate, against numpy slicing
    size, a_diff = 200, 0.5
    dx2 = dy2 = 0.01**2
    dt = dx2 * dy2 / (2 * a_diff * (dx2 + dy2))
    field = np.zeros((size, size))
    field[size // 4 : size // 2, size // 4 : size // 2] = 1.0  # a hot square
    field[0] = 0.5  # a warm top edge (a fixed boundary)
    u, u_previous = field.copy(), field.copy()
    _, t = timed(lambda: [arrays.evolve(u, u_previous, a_diff, dt, dx2, dy2) for _ in range(200)])
    ref = field.copy()
    start = time.perf_counter()
    for _ in range(200):
        new = ref.copy()
        new[1:-1, 1:-1] = ref[1:-1, 1:-1] + a_diff * dt * (
            (ref[2:, 1:-1] - 2 * ref[1:-1, 1:-1] + ref[:-2, 1:-1]) / dx2
            + (ref[1:-1, 2:] - 2 * ref[1:-1, 1:-1] + ref[1:-1, :-2]) / dy2
        )
        ref = new
    numpy_time = time.perf_counter() - start
    print(f"evolve        200 steps of {size}x{size}: max |u - numpy| = {np.max(np.abs(u - ref)):.1e}, "
          f"{t * 1e3:.0f} ms (numpy slicing {numpy_time * 1e3:.0f} ms); heat in the square "
          f"{field[50:100, 50:100].sum():.0f} -> {u[50:100, 50:100].sum():.1f}")

    # Fibonacci
    seq = arrays.fib_sequence(93)
    print(f"fib           F(10) = {arrays.fib(10)}, F(92) = {arrays.fib(92)}; "
          f"fib_sequence(93) matches the recurrence: {bool(np.all(seq[2:] == seq[1:-1] + seq[:-2]))}")


if __name__ == "__main__":
    main()
