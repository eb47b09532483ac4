"""Coordinate mappings for scipy.ndimage.geometric_transform.

geometric_transform calls the mapping once per output pixel: it receives
the integer output coordinates o (``output_rank`` of them) and writes the
input coordinates x (``input_rank`` of them) to sample, then returns 1.  A
mapping returns 0 when its parameters do not fit the call (wrong rank, a zero
scale, ...), which makes SciPy raise RuntimeError instead of reading past the
end of a coordinate array.

Coordinates are in array order: axis 0 is the row (y, downwards), axis 1
the column (x).  Angles are in radians.  Parameters come from user_data,
whose layout each docstring gives.
"""

import math


#pythran export capsule shift(int64*, float64*, int32, int32, float64*)
def shift(output_coordinates, input_coordinates, output_rank, input_rank, user_data):
    """Shift by a vector: x_i = o_i - s_i, what ndimage.shift(input, s) computes.

    user_data: [r, s_0, ..., s_{r-1}]: the image rank r, then one shift per axis.

    r must equal the image rank (the call fails otherwise).
    """
    if user_data[0] != input_rank or output_rank != input_rank:
        return 0
    for i in range(input_rank):
        input_coordinates[i] = output_coordinates[i] - user_data[1 + i]
    return 1


#pythran export capsule affine(int64*, float64*, int32, int32, float64*)
def affine(output_coordinates, input_coordinates, output_rank, input_rank, user_data):
    """General affine map: x = M o + t, what ndimage.affine_transform(input, M, offset=t) computes.

    user_data: [r, M_00, M_01, ..., M_(r-1)(r-1), t_0, ..., t_{r-1}]: the rank r, M in row order, t.

    That is 1 + r (r + 1) values; r must equal the image rank (the call fails
    otherwise).
    """
    if user_data[0] != input_rank or output_rank != input_rank:
        return 0
    r = input_rank
    for i in range(r):
        s = user_data[1 + r * r + i]
        for j in range(r):
            s += user_data[1 + r * i + j] * output_coordinates[j]
        input_coordinates[i] = s
    return 1


#pythran export capsule rotate_scale(int64*, float64*, int32, int32, float64*)
def rotate_scale(output_coordinates, input_coordinates, output_rank, input_rank, user_data):
    """Rotate by theta and scale by s about c: x = c + M (o - c), M = [[cos, sin], [-sin, cos]] / s.

    user_data: [theta, s, c_0, c_1].

    The rotation and scaling act in the plane of axes 0 and 1.  The output is the input turned by theta
    (counter-clockwise on screen, where row 0 is at the top: theta = pi/2 is
    numpy.rot90) and magnified s times about c.  Each output pixel o samples

        x = c + M (o - c),   M = (1 / s) [[cos theta, sin theta], [-sin theta, cos theta]],

    which is ndimage.affine_transform(input, M, offset=c - M c).  Axes after
    the first two (colour channels, ...) pass through.  Needs a rank >= 2
    image, the same output rank, and s != 0.
    """
    theta = user_data[0]
    scale = user_data[1]
    if input_rank < 2 or output_rank != input_rank or scale == 0.0:
        return 0
    c0 = user_data[2]
    c1 = user_data[3]
    cos_t = math.cos(theta) / scale
    sin_t = math.sin(theta) / scale
    d0 = output_coordinates[0] - c0
    d1 = output_coordinates[1] - c1
    input_coordinates[0] = c0 + cos_t * d0 + sin_t * d1
    input_coordinates[1] = c1 - sin_t * d0 + cos_t * d1
    for i in range(2, input_rank):
        input_coordinates[i] = output_coordinates[i]
    return 1


# every angle j dtheta finite over 65536 columns (sin of an infinite angle raises in Python)
#capsules verify user_data=-1000:1000
#pythran export capsule polar_unwarp(int64*, float64*, int32, int32, float64*)
def polar_unwarp(output_coordinates, input_coordinates, output_rank, input_rank, user_data):
    """Polar unwarp about c: x_0 = c_0 + r sin(theta), x_1 = c_1 + r cos(theta), r = i dr, theta = j dtheta.

    user_data: [c_0, c_1, dr, dtheta].

    Output row = radius, column = angle.  Output pixel (i, j) is the point at
    radius r = i dr and angle theta = j dtheta (from the +column axis towards
    +row):

        x_0 = c_0 + r sin(theta),   x_1 = c_1 + r cos(theta).

    Choose output_shape=(n_r, n_theta); n_theta dtheta = 2 pi covers the full
    circle.  2-D input and output only.
    """
    if output_rank != 2 or input_rank != 2:
        return 0
    r = output_coordinates[0] * user_data[2]
    theta = output_coordinates[1] * user_data[3]
    input_coordinates[0] = user_data[0] + r * math.sin(theta)
    input_coordinates[1] = user_data[1] + r * math.cos(theta)
    return 1


# r_min exp(i dlog) stays finite over 65536 rows, and so does every angle
#capsules verify user_data=-1000:1000 user_data[3]=-0.01:0.01
#pythran export capsule log_polar_unwarp(int64*, float64*, int32, int32, float64*)
def log_polar_unwarp(output_coordinates, input_coordinates, output_rank, input_rank, user_data):
    """Log-polar unwarp about c: x = c + r (sin theta, cos theta), r = r_min exp(i dlog), theta = j dtheta.

    user_data: [c_0, c_1, r_min, dlog, dtheta].

    Output row = log radius, column = angle.  Output pixel (i, j) is the
    point at radius r = r_min exp(i dlog) and angle theta = j dtheta:

        x_0 = c_0 + r sin(theta),   x_1 = c_1 + r cos(theta).

    A scaling about c becomes a shift along axis 0, a rotation a shift along
    axis 1.  2-D input and output only.
    """
    if output_rank != 2 or input_rank != 2:
        return 0
    r = user_data[2] * math.exp(output_coordinates[0] * user_data[3])
    theta = output_coordinates[1] * user_data[4]
    input_coordinates[0] = user_data[0] + r * math.sin(theta)
    input_coordinates[1] = user_data[1] + r * math.cos(theta)
    return 1


#pythran export capsule radial_distortion(int64*, float64*, int32, int32, float64*)
def radial_distortion(output_coordinates, input_coordinates, output_rank, input_rank, user_data):
    """Radial lens distortion (Brown's model) about c: x = c + d (1 + k1 rho^2 + k2 rho^4), d = o - c.

    user_data: [c_0, c_1, k1, k2, R], R normalising the radius: rho = |d| / R.

    With d = o - c and rho = |d| / R (R
    normalises the radius, e.g. half the image diagonal), output pixel o
    samples

        x = c + d (1 + k1 rho^2 + k2 rho^4)

    in the plane of axes 0 and 1; later axes pass through.  k1 > 0 undoes
    barrel distortion (pulls the corners in), k1 < 0 undoes pincushion.
    Needs rank >= 2, the same output rank, and R != 0.
    """
    norm = user_data[4]
    if input_rank < 2 or output_rank != input_rank or norm == 0.0:
        return 0
    c0 = user_data[0]
    c1 = user_data[1]
    d0 = output_coordinates[0] - c0
    d1 = output_coordinates[1] - c1
    rho2 = (d0 * d0 + d1 * d1) / (norm * norm)
    factor = 1.0 + rho2 * (user_data[2] + user_data[3] * rho2)
    input_coordinates[0] = c0 + d0 * factor
    input_coordinates[1] = c1 + d1 * factor
    for i in range(2, input_rank):
        input_coordinates[i] = output_coordinates[i]
    return 1
