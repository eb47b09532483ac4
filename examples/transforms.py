"""Compiled geometric_transform mappings, checked against scipy.ndimage and Python mappings.

    python examples/transforms.py
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

import capsules

KERNELS = Path(__file__).parent.parent / "kernels"


def timed(f):
    start = time.perf_counter()
    result = f()
    return result, time.perf_counter() - start


def report(name: str, got: np.ndarray, reference: np.ndarray, what: str, seconds: float, python: float | None = None):
    speed = f"  ({python / seconds:4.0f}x faster than the Python mapping)" if python else ""
    print(f"{name:<18} {str(got.shape):<10} vs {what:<34} max |diff| {np.max(np.abs(got - reference)):8.1e}"
          f"  {seconds * 1e3:6.1f} ms{speed}")


def main() -> None:
    transforms = capsules.load(KERNELS / "transforms.py")
    y, x = np.mgrid[0:181, 0:241].astype(float)
    img = np.sin(x / 9.0) * np.cos(y / 13.0) + ((x - 120) ** 2 + (y - 90) ** 2 < 40**2)
    c = (90.0, 120.0)
    print(f"image {img.shape}, cubic splines (order=3)\n")
    # the first call pays the loading
    ndimage.geometric_transform(img[:8, :8], transforms.shift.lowlevel([2, 0.5, 0.5]))

    s = (3.25, -7.5)
    got, t = timed(lambda: ndimage.geometric_transform(img, transforms.shift.lowlevel([2, *s])))
    reference, builtin = timed(lambda: ndimage.shift(img, s))
    report("shift", got, reference, f"ndimage.shift ({builtin * 1e3:.1f} ms)", t)

    m = np.array([[0.9, 0.15], [-0.2, 1.1]])
    offset = np.array([4.0, -10.0])
    got, t = timed(lambda: ndimage.geometric_transform(img, transforms.affine.lowlevel(np.r_[2, m.ravel(), offset])))
    report("affine", got, ndimage.affine_transform(img, m, offset=offset), "ndimage.affine_transform", t)

    theta, scale = math.radians(30), 1.25
    got, t = timed(lambda: ndimage.geometric_transform(img, transforms.rotate_scale.lowlevel([theta, scale, *c])))
    rot = np.array([[math.cos(theta), math.sin(theta)], [-math.sin(theta), math.cos(theta)]]) / scale
    report("rotate_scale", got, ndimage.affine_transform(img, rot, offset=np.array(c) - rot @ c),
           "affine_transform (30 deg, x1.25)", t)

    def polar(out):
        r, th = out[0] * 1.0, out[1] * (2 * math.pi / 360)
        return (c[0] + r * math.sin(th), c[1] + r * math.cos(th))

    shape = (90, 360)
    got, t = timed(lambda: ndimage.geometric_transform(
        img, transforms.polar_unwarp.lowlevel([*c, 1.0, 2 * math.pi / 360]), output_shape=shape))
    reference, slow = timed(lambda: ndimage.geometric_transform(img, polar, output_shape=shape))
    report("polar_unwarp", got, reference, "Python mapping", t, slow)
    # the disc of radius 40 about c becomes the rows r < 40
    inside = got[:39].mean() - got[41:].mean()
    print(f"{'':<18} the disc r < 40 unwarps to the top 40 rows: mean inside - outside = {inside:.2f}")

    dlog = math.log(90.0) / 120

    def log_polar(out):
        r, th = math.exp(out[0] * dlog), out[1] * (2 * math.pi / 360)
        return (c[0] + r * math.sin(th), c[1] + r * math.cos(th))

    shape = (120, 360)
    got, t = timed(lambda: ndimage.geometric_transform(
        img, transforms.log_polar_unwarp.lowlevel([*c, 1.0, dlog, 2 * math.pi / 360]), output_shape=shape))
    reference, slow = timed(lambda: ndimage.geometric_transform(img, log_polar, output_shape=shape))
    report("log_polar_unwarp", got, reference, "Python mapping", t, slow)

    k1, k2, norm = 0.15, 0.03, math.hypot(*c)

    def lens(out):
        d0, d1 = out[0] - c[0], out[1] - c[1]
        rho2 = (d0 * d0 + d1 * d1) / norm**2
        f = 1 + k1 * rho2 + k2 * rho2 * rho2
        return (c[0] + d0 * f, c[1] + d1 * f)

    got, t = timed(lambda: ndimage.geometric_transform(img, transforms.radial_distortion.lowlevel([*c, k1, k2, norm])))
    reference, slow = timed(lambda: ndimage.geometric_transform(img, lens))
    report("radial_distortion", got, reference, "Python mapping", t, slow)


if __name__ == "__main__":
    main()
