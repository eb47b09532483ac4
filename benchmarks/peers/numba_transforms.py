"""numba @cfunc version of the W5 mapping."""

from numba import cfunc

from ._numba_common import CACHE, f64p, intc, intpp


@cfunc(intc(intpp, f64p, intc, intc, f64p), cache=CACHE)
def rotate(output_coordinates, input_coordinates, output_rank, input_rank, user_data):
    c = user_data[0]
    s = user_data[1]
    dy = output_coordinates[0] - user_data[2]
    dx = output_coordinates[1] - user_data[3]
    input_coordinates[0] = c * dy - s * dx + user_data[2]
    input_coordinates[1] = s * dy + c * dx + user_data[3]
    return 1
