"""kernels/transforms.py: geometric_transform with compiled mappings against ndimage and Python mappings."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import ndimage

import capsules

pytestmark = pytest.mark.compile

MODES = ("constant", "nearest", "reflect", "mirror", "wrap")
RTOL = 1e-12
ATOL = 1e-12


@pytest.fixture(scope="module")
def transforms(load_kernel):
    return load_kernel("transforms")


def image(shape=(21, 26), seed=0):
    rng = np.random.default_rng(seed)
    # smooth plus noise: the spline interpolation sees both
    grids = np.meshgrid(*(np.linspace(0, 3, n) for n in shape), indexing="ij")
    return sum(np.sin(g * (k + 1)) for k, g in enumerate(grids)) + 0.3 * rng.standard_normal(shape)


def python_mapping(kernel, user_data, input_rank):
    """kernel.py as a geometric_transform mapping (numpy arrays in place of the pointers)."""
    data = np.asarray(user_data, dtype=float)

    def mapping(output_coordinates):
        out = np.array(output_coordinates, dtype=np.int64)
        x = np.empty(input_rank)
        assert kernel.py(out, x, len(out), input_rank, data) == 1
        return tuple(x)

    return mapping


# ------------------------------------------------------------------ shift, affine


@pytest.mark.parametrize("order", [0, 1, 3])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", [(21, 26), (7, 9, 8)])
def test_shift_matches_ndimage_shift(transforms, order, mode, shape):
    img = image(shape, seed=1)
    rng = np.random.default_rng(2)
    s = rng.uniform(-4, 4, len(shape))
    got = ndimage.geometric_transform(img, transforms.shift.lowlevel(np.r_[len(shape), s]), order=order, mode=mode,
                                      cval=0.7)
    assert_allclose(got, ndimage.shift(img, s, order=order, mode=mode, cval=0.7), rtol=RTOL, atol=ATOL)


def test_integer_shift_moves_pixels_exactly(transforms):
    img = image(seed=3)
    got = ndimage.geometric_transform(img, transforms.shift.lowlevel([2, 3, -5]), order=1)
    assert_array_equal(got[3:, :-5], img[:-3, 5:])
    assert_array_equal(got[:3], 0.0)


@pytest.mark.parametrize("kernel", ["shift", "affine"])
def test_rank_mismatch_fails_instead_of_reading_past_the_end(transforms, kernel):
    data = [3, 1.0, 2.0, 3.0] if kernel == "shift" else [3] + [0.0] * 12
    with pytest.raises(capsules.KernelError, match="returned 0 \\(failure\\)"):  # located, not SciPy's "unknown error"
        ndimage.geometric_transform(image((5, 6)), transforms[kernel].lowlevel(data))


@pytest.mark.parametrize("order", [1, 3])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", [(21, 26), (7, 9, 8)])
def test_affine_matches_affine_transform(transforms, order, mode, shape):
    img = image(shape, seed=4)
    rng = np.random.default_rng(5)
    r = len(shape)
    matrix = np.eye(r) + rng.uniform(-0.3, 0.3, (r, r))
    offset = rng.uniform(-3, 3, r)
    data = np.r_[r, matrix.ravel(), offset]
    got = ndimage.geometric_transform(img, transforms.affine.lowlevel(data), order=order, mode=mode, cval=-0.2)
    expected = ndimage.affine_transform(img, matrix, offset=offset, order=order, mode=mode, cval=-0.2)
    assert_allclose(got, expected, rtol=RTOL, atol=ATOL)


def rotation_matrix(theta, scale):
    return np.array([[math.cos(theta), math.sin(theta)], [-math.sin(theta), math.cos(theta)]]) / scale


@pytest.mark.parametrize("order", [0, 1, 3])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("theta", "scale"), [(0.3, 1.0), (-1.1, 0.7), (2.5, 1.6)])
def test_rotate_scale_matches_affine_transform(transforms, order, mode, theta, scale):
    img = image(seed=6)
    centre = np.array([9.5, 13.0])
    m = rotation_matrix(theta, scale)
    got = ndimage.geometric_transform(img, transforms.rotate_scale.lowlevel(np.r_[theta, scale, centre]),
                                      order=order, mode=mode)
    expected = ndimage.affine_transform(img, m, offset=centre - m @ centre, order=order, mode=mode)
    if order == 0:
        # nearest-pixel sampling: a coordinate within rounding of .5 may round
        # either way in the two computations; allow a handful of such pixels
        assert np.mean(got != expected) < 0.01
    else:
        assert_allclose(got, expected, rtol=RTOL, atol=ATOL)


def test_quarter_turn_is_rot90(transforms):
    img = image((15, 15), seed=7)
    c = (15 - 1) / 2
    # cos(pi/2) is 6e-17, not 0: the last row lands a hair outside the image,
    # which mode="nearest" clamps back
    got = ndimage.geometric_transform(img, transforms.rotate_scale.lowlevel([math.pi / 2, 1.0, c, c]), order=1,
                                      mode="nearest")
    assert_allclose(got, np.rot90(img), rtol=0, atol=1e-13)


def test_rotate_scale_passes_channels_through(transforms):
    rgb = np.stack([image((12, 17), seed=s) for s in (8, 9, 10)], axis=-1)
    data = [0.4, 1.2, 6.0, 8.0]
    # order 1: a higher-order spline would also interpolate across the channel axis
    got = ndimage.geometric_transform(rgb, transforms.rotate_scale.lowlevel(data), order=1)
    for k in range(3):
        one = ndimage.geometric_transform(rgb[..., k], transforms.rotate_scale.lowlevel(data), order=1)
        assert_allclose(got[..., k], one, rtol=RTOL, atol=ATOL)


def test_zero_scale_fails(transforms):
    with pytest.raises(capsules.KernelError, match="returned 0 \\(failure\\)"):  # located, not SciPy's "unknown error"
        ndimage.geometric_transform(image((5, 6)), transforms.rotate_scale.lowlevel([0.1, 0.0, 2.0, 2.0]))


# ------------------------------------------------------------- polar, log-polar


def polar_reference(centre, radius, angle):
    """(i, j) -> input coordinates, through a complex number: c + r e^(i theta) with x_1 the real part."""

    def mapping(out):
        z = complex(centre[1], centre[0]) + radius(out[0]) * np.exp(1j * angle(out[1]))
        return (z.imag, z.real)

    return mapping


@pytest.mark.parametrize("order", [1, 3])
@pytest.mark.parametrize("mode", ["constant", "nearest", "mirror"])
def test_polar_unwarp_matches_a_python_mapping(transforms, order, mode):
    img = image((31, 28), seed=11)
    centre = (15.0, 13.5)
    n_r, n_theta = 14, 36
    dr, dtheta = 1.0, 2 * math.pi / n_theta
    data = [*centre, dr, dtheta]
    kw = {"output_shape": (n_r, n_theta), "order": order, "mode": mode}
    got = ndimage.geometric_transform(img, transforms.polar_unwarp.lowlevel(data), **kw)
    expected = ndimage.geometric_transform(img, polar_reference(centre, lambda i: i * dr, lambda j: j * dtheta), **kw)
    assert_allclose(got, expected, rtol=RTOL, atol=ATOL)
    python = ndimage.geometric_transform(img, python_mapping(transforms.polar_unwarp, data, 2), **kw)
    assert_allclose(got, python, rtol=RTOL, atol=ATOL)


def test_polar_unwarp_of_a_radial_image_is_constant_along_angles(transforms):
    # f = |p - c|^2 is a quadratic, which cubic splines reproduce far from the
    # border (the border's influence decays like 0.27^distance)
    y, x = np.mgrid[0:81, 0:81].astype(float)
    c = (40.0, 40.0)
    img = (y - c[0]) ** 2 + (x - c[1]) ** 2
    n_theta = 24
    got = ndimage.geometric_transform(img, transforms.polar_unwarp.lowlevel([*c, 1.0, 2 * math.pi / n_theta]),
                                      output_shape=(12, n_theta), order=3, mode="nearest")
    assert_allclose(got, np.repeat((np.arange(12.0) ** 2)[:, None], n_theta, axis=1), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("order", [1, 3])
@pytest.mark.parametrize("mode", ["constant", "nearest", "reflect"])
def test_log_polar_unwarp_matches_a_python_mapping(transforms, order, mode):
    img = image((33, 35), seed=12)
    centre = (16.0, 17.0)
    r_min, dlog, dtheta = 0.8, 0.15, 2 * math.pi / 40
    data = [*centre, r_min, dlog, dtheta]
    kw = {"output_shape": (20, 40), "order": order, "mode": mode, "cval": 0.1}
    got = ndimage.geometric_transform(img, transforms.log_polar_unwarp.lowlevel(data), **kw)
    expected = ndimage.geometric_transform(
        img, polar_reference(centre, lambda i: r_min * math.exp(i * dlog), lambda j: j * dtheta), **kw
    )
    assert_allclose(got, expected, rtol=RTOL, atol=ATOL)
    python = ndimage.geometric_transform(img, python_mapping(transforms.log_polar_unwarp, data, 2), **kw)
    assert_allclose(got, python, rtol=RTOL, atol=ATOL)


def test_log_polar_turns_scaling_into_a_row_shift(transforms):
    # f = |p - c|^2: doubling r (four rows, at four rows per octave) quadruples f;
    # cubic splines reproduce the quadratic far from the border
    y, x = np.mgrid[0:101, 0:101].astype(float)
    c = (50.0, 50.0)
    img = (y - c[0]) ** 2 + (x - c[1]) ** 2
    dlog = math.log(2.0) / 4
    got = ndimage.geometric_transform(img, transforms.log_polar_unwarp.lowlevel([*c, 1.5, dlog, 0.3]),
                                      output_shape=(16, 21), order=3)
    assert_allclose(got[4:], 4.0 * got[:-4], rtol=1e-9)
    assert_allclose(got[:, 0], (1.5 * 2.0 ** (np.arange(16) / 4)) ** 2, rtol=1e-9)


@pytest.mark.parametrize("kernel", ["polar_unwarp", "log_polar_unwarp"])
def test_polar_kernels_refuse_other_ranks(transforms, kernel):
    data = [1.0, 1.0, 1.0, 0.1, 0.1]
    with pytest.raises(capsules.KernelError, match="returned 0 \\(failure\\)"):  # located, not SciPy's "unknown error"
        ndimage.geometric_transform(np.zeros((4, 4, 4)), transforms[kernel].lowlevel(data))


# ------------------------------------------------------------------ lens distortion


@pytest.mark.parametrize(("k1", "k2"), [(0.12, 0.0), (-0.08, 0.02), (0.2, -0.05)])
@pytest.mark.parametrize("mode", ["constant", "nearest", "mirror"])
def test_radial_distortion_matches_a_python_mapping(transforms, k1, k2, mode):
    img = image((24, 32), seed=13)
    centre = (11.5, 15.5)
    norm = math.hypot(12.0, 16.0)
    data = [*centre, k1, k2, norm]

    def reference(out):
        d = np.subtract(out, centre)
        rho2 = d @ d / norm**2
        return tuple(np.add(centre, d * (1 + k1 * rho2 + k2 * rho2**2)))

    kw = {"order": 3, "mode": mode}
    got = ndimage.geometric_transform(img, transforms.radial_distortion.lowlevel(data), **kw)
    assert_allclose(got, ndimage.geometric_transform(img, reference, **kw), rtol=RTOL, atol=ATOL)
    python = ndimage.geometric_transform(img, python_mapping(transforms.radial_distortion, data, 2), **kw)
    assert_allclose(got, python, rtol=RTOL, atol=ATOL)


def test_zero_distortion_is_the_identity(transforms):
    img = image(seed=14)
    got = ndimage.geometric_transform(img, transforms.radial_distortion.lowlevel([10.0, 12.5, 0.0, 0.0, 16.0]),
                                      order=1)
    assert_array_equal(got, img)


def test_radial_distortion_passes_channels_through(transforms):
    rgb = np.stack([image((12, 17), seed=s) for s in (15, 16)], axis=-1)
    data = [5.5, 8.0, 0.1, 0.01, 10.0]
    got = ndimage.geometric_transform(rgb, transforms.radial_distortion.lowlevel(data), order=1)
    for k in range(2):
        one = ndimage.geometric_transform(rgb[..., k], transforms.radial_distortion.lowlevel(data), order=1)
        assert_allclose(got[..., k], one, rtol=RTOL, atol=ATOL)


def test_radial_distortion_refuses_zero_norm(transforms):
    with pytest.raises(capsules.KernelError, match="returned 0 \\(failure\\)"):  # located, not SciPy's "unknown error"
        ndimage.geometric_transform(image((5, 6)), transforms.radial_distortion.lowlevel([2.0, 2.0, 0.1, 0.0, 0.0]))


# ------------------------------------------------------------------ compiled == python


@pytest.mark.parametrize(
    ("kernel", "data", "shape"),
    [
        ("shift", [2, 1.3, -2.6], (13, 11)),
        ("shift", [3, 0.5, -1.25, 2.0], (6, 7, 5)),
        ("affine", [2, 0.9, 0.2, -0.1, 1.1, 0.5, -1.5], (13, 11)),
        ("rotate_scale", [0.7, 1.3, 6.0, 5.0], (13, 11)),
        ("rotate_scale", [0.7, 1.3, 3.0, 3.0], (6, 7, 5)),
        ("radial_distortion", [6.0, 5.0, 0.1, -0.02, 8.0], (13, 11)),
    ],
)
def test_compiled_mapping_equals_python_mapping(transforms, kernel, data, shape):
    img = image(shape, seed=17)
    k = transforms[kernel]
    got = ndimage.geometric_transform(img, k.lowlevel(data), order=3, mode="mirror")
    python = ndimage.geometric_transform(img, python_mapping(k, data, len(shape)), order=3, mode="mirror")
    assert_allclose(got, python, rtol=RTOL, atol=ATOL)
