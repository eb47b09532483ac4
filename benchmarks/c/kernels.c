/* Hand-written C versions of the benchmark kernels.  Same algorithms, same
 * operation order, as the modules in benchmarks/kernels.
 *
 * Built twice (benchmarks/harness.py):
 * - plain C: gcc -O3 -march=native -shared -fPIC, as most C is built;
 * - expert C: -DEXPERT and the flags capsules builds with (capsules.build.NATIVE_FLAGS),
 *   with the hints below, each stated only where capsules' own build states the
 *   same thing (capsules/adapters.py), so that neither side knows more than the other.
 * cffi and Cython build the plain version. */
#include <math.h>
#include <stdint.h>

#define EXPORT __attribute__((visibility("default")))

#ifdef EXPERT
/* restrict: the pointers SciPy hands a callback are its own buffers, which never
 * overlap.  capsules states it on W4's path (checked at each call); for the others
 * it is a promise a C programmer would write, which their loops do not depend on. */
#define RESTRICT restrict
/* A range SciPy promises, stated as a C programmer states it: generic_filter1d
 * refuses a filter size under 1, so a window holds at least one point
 * (capsules' W4 path is compiled under the same promise). */
#define ASSUME(condition) \
    do {                  \
        if (!(condition)) \
            __builtin_unreachable(); \
    } while (0)
#if defined(__x86_64__)
/* 40 bytes of stack that no instruction touches, as capsules reserves in a straight
 * integrand's frame: W1's frame then no longer lies on the slots where SciPy's thunk
 * saved its registers (benchmarks/w1_frames.py; the effect is host-specific). */
#define FRAME_PAD              \
    char frame_pad_[40];       \
    __asm__ volatile("" : : "m"(frame_pad_));
#else
#define FRAME_PAD
#endif
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
/* 256-bit vectors for the short loops over a generic_filter footprint, as capsules
 * compiles its generic_filter entry points (CAPSULES_SHORT_LOOPS): the same order
 * of operations, so the same results. */
#define SHORT_LOOPS _Pragma("GCC push_options") _Pragma("GCC target(\"prefer-vector-width=256\")")
#define END_SHORT_LOOPS _Pragma("GCC pop_options")
#endif
#else
#define RESTRICT
#define ASSUME(condition) ((void)0)
#define FRAME_PAD
#endif
#ifndef SHORT_LOOPS
#define SHORT_LOOPS
#define END_SHORT_LOOPS
#endif

/* W1: exp(-x^2) sin^2(50 x) */
EXPORT double osc(double x) {
    FRAME_PAD
    double s = sin(50.0 * x);
    return exp(-x * x) * s * s;
}

/* W2: Genz oscillatory, user_data = (u1, a_1, ..., a_n) */
EXPORT double genz(int n, double *RESTRICT x, void *user_data) {
    const double *c = (const double *)user_data;
    double t = 2.0 * M_PI * c[0];
    for (int i = 0; i < n; i++)
        t += c[i + 1] * x[i];
    return cos(t);
}

SHORT_LOOPS
/* W3a: local range */
EXPORT int local_range(double *RESTRICT buffer, intptr_t filter_size, double *RESTRICT return_value,
                       void *user_data) {
    (void)user_data;
    double lo = buffer[0], hi = buffer[0];
    for (intptr_t i = 1; i < filter_size; i++) {
        double v = buffer[i];
        if (v < lo) lo = v;
        if (v > hi) hi = v;
    }
    *return_value = hi - lo;
    return 1;
}

/* W3b: local variance, two passes */
EXPORT int local_variance(double *RESTRICT buffer, intptr_t filter_size, double *RESTRICT return_value,
                          void *user_data) {
    (void)user_data;
    double s = 0.0;
    for (intptr_t i = 0; i < filter_size; i++)
        s += buffer[i];
    double mean = s / (double)filter_size;
    double q = 0.0;
    for (intptr_t i = 0; i < filter_size; i++) {
        double d = buffer[i] - mean;
        q += d * d;
    }
    *return_value = q / (double)filter_size;
    return 1;
}
END_SHORT_LOOPS

/* W4: moving average over windows of width points; inlined in both entry points below */
static inline void average_windows(const double *RESTRICT input_line, intptr_t width, double *RESTRICT output_line,
                                   intptr_t output_length) {
    for (intptr_t i = 0; i < output_length; i++) {
        double s = 0.0;
        for (intptr_t k = 0; k < width; k++)
            s += input_line[i + k];
        output_line[i] = s / (double)width;
    }
}

/* W4: moving average over windows of input_length - output_length + 1 points */
EXPORT int moving_average(double *RESTRICT input_line, intptr_t input_length, double *RESTRICT output_line,
                          intptr_t output_length, void *user_data) {
    (void)user_data;
    ASSUME(input_length >= output_length);
    average_windows(input_line, input_length - output_length + 1, output_line, output_length);
    return 1;
}

#ifdef EXPERT
/* W4 with its width known to be 9, as capsules knows it in the build made with
 * constants={"moving_average_fixed": {"width": 9}}: the counterpart of that build only,
 * never a baseline of the default one (which knows no width). */
EXPORT int moving_average_9(double *RESTRICT input_line, intptr_t input_length, double *RESTRICT output_line,
                            intptr_t output_length, void *user_data) {
    (void)user_data;
    ASSUME(input_length - output_length + 1 == 9);
    average_windows(input_line, 9, output_line, output_length);
    return 1;
}
#endif

/* W5: rotation about a centre, user_data = (cos a, sin a, centre row, centre column) */
EXPORT int rotate(intptr_t *RESTRICT output_coordinates, double *RESTRICT input_coordinates, int output_rank,
                  int input_rank, void *user_data) {
    (void)output_rank;
    (void)input_rank;
    const double *p = (const double *)user_data;
    double c = p[0], s = p[1];
    double dy = (double)output_coordinates[0] - p[2];
    double dx = (double)output_coordinates[1] - p[3];
    input_coordinates[0] = c * dy - s * dx + p[2];
    input_coordinates[1] = s * dy + c * dx + p[3];
    return 1;
}

/* Floors: callbacks that do (next to) nothing, to measure SciPy's own overhead. */
EXPORT double noop_quad(double x) {
    (void)x;
    return 0.0;
}

EXPORT double noop_nquad(int n, double *x, void *user_data) {
    (void)n;
    (void)x;
    (void)user_data;
    return 0.0;
}

EXPORT int noop_filter(double *buffer, intptr_t filter_size, double *return_value, void *user_data) {
    (void)buffer;
    (void)filter_size;
    (void)user_data;
    *return_value = 0.0;
    return 1;
}

EXPORT int noop_filter1d(double *input_line, intptr_t input_length, double *output_line, intptr_t output_length,
                         void *user_data) {
    (void)input_line;
    (void)input_length;
    (void)output_line;
    (void)output_length;
    (void)user_data;
    return 1;
}

/* the identity mapping: geometric_transform needs coordinates to interpolate at */
EXPORT int noop_transform(intptr_t *output_coordinates, double *input_coordinates, int output_rank, int input_rank,
                          void *user_data) {
    (void)output_rank;
    (void)user_data;
    for (int i = 0; i < input_rank; i++)
        input_coordinates[i] = (double)output_coordinates[i];
    return 1;
}
