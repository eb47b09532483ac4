"""Natural kernels with typed parameters: every dtype and rank, in every role (and kernels/data.py)."""

import numpy as np


#capsules integrand integers(x; n: int64, small: int32[:], large: int64[:], grid: int64[:, :], cells: int32[:, :])
def integers(x, n, small, large, grid, cells):
    rows, columns = grid.shape
    return (x * n + small[len(small) - 1] + large[0] - large[1] + grid[rows - 1, columns - 1]
            + cells[1, 0] + cells.shape[0] * 100 + cells.shape[1] * 1000)


#capsules filter1d fir(line_in, line_out; taps: float64[:])
def fir(line_in, line_out, taps):
    for i in range(len(line_out)):
        total = 0.0
        for k in range(len(taps)):
            total += taps[k] * line_in[i + k]
        line_out[i] = total


#capsules mapping affine(out; matrix: float64[:, :], offset: float64[:])
def affine(out, matrix, offset):
    return (matrix[0, 0] * out[0] + matrix[0, 1] * out[1] + offset[0],
            matrix[1, 0] * out[0] + matrix[1, 1] * out[1] + offset[1])


#capsules integrand picks(x; table: float64[:], grid: float64[:, :], i: int64, j: int64)
def picks(x, table, grid, i, j):
    return table[i] + grid[i, j] + x


#capsules integrand summed(x; a: float64[:], b: int32[:, :])
def summed(x, a, b):
    """What a view does beyond subscripts: slices and NumPy's reductions."""
    return x * np.sum(a[1:]) + b.sum() + a.shape[0]
