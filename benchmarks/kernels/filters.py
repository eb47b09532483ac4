"""Filter kernels of workloads W3 (generic_filter) and W4 (generic_filter1d)."""


#pythran export capsule local_range(float64*, int64, float64*, float64*)
def local_range(buffer, filter_size, return_value, user_data):
    """W3a: max - min of the footprint."""
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
    """W3b: population variance of the footprint, two passes (mean, then squared deviations)."""
    s = 0.0
    for i in range(filter_size):
        s += buffer[i]
    mean = s / filter_size
    q = 0.0
    for i in range(filter_size):
        d = buffer[i] - mean
        q += d * d
    return_value[0] = q / filter_size
    return 1


#pythran export capsule moving_average(float64*, int64, float64*, int64, float64*)
def moving_average(input_line, input_length, output_line, output_length, user_data):
    """W4: mean of each window of input_length - output_length + 1 points."""
    width = input_length - output_length + 1
    for i in range(output_length):
        s = 0.0
        for k in range(width):
            s += input_line[i + k]
        output_line[i] = s / width
    return 1


#capsules filter1d moving_average_fixed(line_in, line_out; width)
def moving_average_fixed(line_in, line_out, width):
    """W4 as a natural kernel, built with width fixed at 9 (constants=...): the sum unrolls."""
    w = int(width)
    for i in range(len(line_out)):
        s = 0.0
        for k in range(w):
            s += line_in[i + k]
        line_out[i] = s / w
