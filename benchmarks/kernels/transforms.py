"""Coordinate mapping of workload W5 (geometric_transform)."""


#pythran export capsule rotate(int64*, float64*, int32, int32, float64*)
def rotate(output_coordinates, input_coordinates, output_rank, input_rank, user_data):
    """W5: rotation about a centre; user_data = (cos a, sin a, centre row, centre column)."""
    c = user_data[0]
    s = user_data[1]
    dy = output_coordinates[0] - user_data[2]
    dx = output_coordinates[1] - user_data[3]
    input_coordinates[0] = c * dy - s * dx + user_data[2]
    input_coordinates[1] = s * dy + c * dx + user_data[3]
    return 1
