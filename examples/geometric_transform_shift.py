"""SciPy's geometric_transform example with a compiled mapping: shift every coordinate by 0.5.

Both seed kernels (the numpy.ctypeslib.as_array version and the loop
version) give the same array as the equivalent Python mapping.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

import capsules

KERNELS = Path(__file__).resolve().parent.parent / "kernels"


def main() -> None:
    shift = 0.5
    image = np.arange(12).reshape(4, 3).astype(np.float64)
    mod = capsules.load(KERNELS / "shift.py")
    reference = ndimage.geometric_transform(image, lambda c: tuple(x - shift for x in c))
    np.set_printoptions(precision=4, suppress=True)
    for kernel in mod:
        result = ndimage.geometric_transform(image, kernel.lowlevel(user_data=shift))
        same = "equal to" if np.array_equal(result, reference) else "DIFFERENT FROM"
        print(f"{kernel.name} ({kernel.signature!r}), {same} the Python mapping:\n{result}\n")


if __name__ == "__main__":
    main()
