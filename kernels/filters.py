"""Filters for scipy.ndimage.generic_filter and generic_filter1d.

generic_filter kernels receive the window as a buffer: the input values
under the footprint's nonzero elements, in C (row-major) order of the
footprint, ``filter_size`` of them.  They write one value to
``return_value[0]`` and return 1 (0 makes SciPy raise).

generic_filter1d kernels receive one line of the input, extended at both
ends according to ``mode`` by ``filter_size - 1`` values in total, and fill
the ``output_length`` values of the output line; ``input_length`` is
``output_length + filter_size - 1``.  Window i of the output is
``input_line[i : i + filter_size]`` (with origin 0 it is centred on input i).

Kernels that take no parameters ignore user_data; pass none.
"""

import math

import numpy as np
from numpy.ctypeslib import as_array


# ---------------------------------------------------------------- generic_filter


#pythran export capsule local_range(float64*, int64, float64*, float64*)
def local_range(buffer, filter_size, return_value, user_data):
    """Local range: max(window) - min(window).

    user_data: none.
    """
    lo = buffer[0]
    hi = buffer[0]
    for i in range(1, filter_size):
        v = buffer[i]
        if v < lo:
            lo = v
        if v > hi:
            hi = v
    return_value[0] = hi - lo
    return 1


#pythran export capsule local_variance(float64*, int64, float64*, float64*)
def local_variance(buffer, filter_size, return_value, user_data):
    """Local (population) variance: sum_i (w_i - mean)^2 / N over the N window values.

    user_data: none.

    Two passes (the mean first), so no cancellation.
    """
    return_value[0] = _variance(buffer, filter_size)
    return 1


#pythran export capsule local_std(float64*, int64, float64*, float64*)
def local_std(buffer, filter_size, return_value, user_data):
    """Local (population) standard deviation: sqrt(sum_i (w_i - mean)^2 / N).

    user_data: none.
    """
    return_value[0] = math.sqrt(_variance(buffer, filter_size))
    return 1


def _variance(buffer, filter_size):
    s = 0.0
    for i in range(filter_size):
        s += buffer[i]
    mean = s / filter_size
    ss = 0.0
    for i in range(filter_size):
        d = buffer[i] - mean
        ss += d * d
    return ss / filter_size


#pythran export capsule local_finite_mean(float64*, int64, float64*, float64*)
def local_finite_mean(buffer, filter_size, return_value, user_data):
    """Mean of the finite values of the window: sum_{w_i finite} w_i / #{w_i finite}.

    user_data: none.

    NaN and +-inf are skipped; a window with no finite value gives NaN.
    With mode="constant", cval=nan the border is treated as missing data.
    """
    s = 0.0
    count = 0
    for i in range(filter_size):
        v = buffer[i]
        if not (math.isnan(v) or math.isinf(v)):
            s += v
            count += 1
    if count == 0:
        return_value[0] = np.nan
    else:
        return_value[0] = s / count
    return 1


# the sort may put 0.0 and -0.0, which compare equal, either way round: a median of zeros has either sign
#capsules verify any-zero
#pythran export capsule local_median(float64*, int64, float64*, float64*)
def local_median(buffer, filter_size, return_value, user_data):
    """Local median: the middle value of the sorted window (mean of the two middle ones if N is even).

    user_data: none.

    The same value as numpy.median of the window.
    """
    ordered = np.sort(as_array(buffer, filter_size))
    half = filter_size // 2
    if filter_size % 2 == 1:
        return_value[0] = ordered[half]
    else:
        return_value[0] = 0.5 * (ordered[half - 1] + ordered[half])
    return 1


# q in [0, 100], then one weight >= 0 per window value (windows of up to 9); the sort may put
# 0.0 and -0.0 either way round
#capsules verify user_data[0]=0:100 user_data=0:10 len(user_data)=10 any-zero
#pythran export capsule weighted_percentile(float64*, int64, float64*, float64*)
def weighted_percentile(buffer, filter_size, return_value, user_data):
    """Weighted percentile: the first sorted v_(k) whose cumulative weight reaches q / 100 of the total.

    user_data: [q, w_1, ..., w_N], q in [0, 100], then one weight w_k >= 0 per footprint element.

    The weights are in the buffer's order (the footprint's nonzero
    elements in C order: ``[q, *weights[footprint != 0]]``).  Sorting the
    window values v_(1) <= ... <= v_(N) with their weights, the result is the
    first v_(k) whose cumulative weight reaches q / 100 of the total and is
    positive: numpy.percentile(window, q, weights=w, method="inverted_cdf").
    With unit weights and q = 50 and N odd it is the median.  Returns 0
    (SciPy raises) if the weights do not add up to a positive total.
    """
    q = user_data[0] / 100.0
    values = as_array(buffer, filter_size)
    order = np.argsort(values)
    total = 0.0
    for k in range(filter_size):
        total += user_data[1 + order[k]]
    if not total > 0.0:
        return 0
    cumulative = 0.0
    result = values[order[filter_size - 1]]
    for k in range(filter_size):
        cumulative += user_data[1 + order[k]]
        if cumulative > 0.0 and cumulative / total >= q:
            result = values[order[k]]
            break
    return_value[0] = result
    return 1


# -------------------------------------------------------------- generic_filter1d


# m from 1 to the filter size, as the docstring asks
#capsules verify user_data=1:5
#pythran export capsule moving_average(float64*, int64, float64*, int64, int64*)
def moving_average(input_line, input_length, output_line, output_length, user_data):
    """Trailing moving average: output[i] = (1/m) sum of the last m values of window i.

    user_data: [m], an integer, 1 <= m <= filter_size.

    With F = filter_size, output[i] = (1/m) sum_{j=i+F-m}^{i+F-1} input_line[j]; with m = F it is the
    centred box average, ndimage.uniform_filter1d(size=F).  Returns 0 (SciPy
    raises) if m is out of range.
    """
    m = user_data[0]
    size = input_length - output_length + 1
    if m < 1 or m > size:
        return 0
    start = size - m
    for i in range(output_length):
        s = 0.0
        for k in range(m):  # a count the same for every i: the compiler can run several windows at once
            s += input_line[i + start + k]
        output_line[i] = s / m
    return 1


#pythran export capsule ewma(float64*, int64, float64*, int64, float64*)
def ewma(input_line, input_length, output_line, output_length, user_data):
    """Exponentially weighted moving average: y_j = alpha x_j + (1 - alpha) y_{j-1} along the line.

    user_data: [alpha], 0 < alpha <= 1.

    The recursion runs over the whole
    (extended) line: y_0 = x_0, y_j = alpha x_j + (1 - alpha) y_{j-1}, and
    output[i] = y_{i + F - 1}, the value at the right end of window i
    (F = filter_size).  With filter_size=1 this is the classic causal EWMA of
    each line; a larger filter_size looks F // 2 values ahead and warms the
    average up on the mode-extended border.
    """
    alpha = user_data[0]
    size = input_length - output_length + 1
    y = input_line[0]
    for j in range(1, size):
        y = alpha * input_line[j] + (1.0 - alpha) * y
    output_line[0] = y
    for i in range(1, output_length):
        y = alpha * input_line[i + size - 1] + (1.0 - alpha) * y
        output_line[i] = y
    return 1


#pythran export capsule cumulative_max(float64*, int64, float64*, int64, float64*)
def cumulative_max(input_line, input_length, output_line, output_length, user_data):
    """Running maximum: output[i] = max(input_line[0 : i + F]) (F = filter_size).

    user_data: none.

    With filter_size=1 it is numpy.maximum.accumulate along the axis.
    """
    size = input_length - output_length + 1
    best = input_line[0]
    for j in range(1, size):
        if input_line[j] > best:
            best = input_line[j]
    output_line[0] = best
    for i in range(1, output_length):
        v = input_line[i + size - 1]
        if v > best:
            best = v
        output_line[i] = best
    return 1
