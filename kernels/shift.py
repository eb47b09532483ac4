"""geometric_transform mappings that shift every coordinate by user_data[0]."""

from numpy.ctypeslib import as_array


#pythran export capsule transform(int64*, float64*, int32, int32, float64*)
def transform(output_coordinates, input_coordinates, output_rank, input_rank, user_data):
    """Shift every axis by s: x_i = o_i - s (on array views of the coordinate pointers).

    user_data: [s].
    """
    shift = user_data[0]
    input_data = as_array(input_coordinates, input_rank)
    output_data = as_array(output_coordinates, output_rank)
    input_data[:] = output_data - shift
    return 1


#pythran export capsule transform_basic(int64*, float64*, int32, int32, float64*)
def transform_basic(output_coordinates, input_coordinates, output_rank, input_rank, user_data):
    """Shift every axis by s: x_i = o_i - s (one coordinate at a time).

    user_data: [s].
    """
    shift = user_data[0]
    for i in range(input_rank):
        input_coordinates[i] = output_coordinates[i] - shift
    return 1
