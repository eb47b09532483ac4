/* Prototypes of the hand-written C kernels (also read by cffi's cdef: no preprocessor lines). */
double osc(double x);
double genz(int n, double *x, void *user_data);
int local_range(double *buffer, intptr_t filter_size, double *return_value, void *user_data);
int local_variance(double *buffer, intptr_t filter_size, double *return_value, void *user_data);
int moving_average(double *input_line, intptr_t input_length, double *output_line, intptr_t output_length,
                   void *user_data);
int rotate(intptr_t *output_coordinates, double *input_coordinates, int output_rank, int input_rank,
           void *user_data);
double noop_quad(double x);
double noop_nquad(int n, double *x, void *user_data);
int noop_filter(double *buffer, intptr_t filter_size, double *return_value, void *user_data);
int noop_filter1d(double *input_line, intptr_t input_length, double *output_line, intptr_t output_length,
                  void *user_data);
int noop_transform(intptr_t *output_coordinates, double *input_coordinates, int output_rank, int input_rank,
                   void *user_data);
