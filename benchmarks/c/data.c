/* Hand-written C twins of kernels/data.py, reading the same arrays through user_data:
 * a struct holding a pointer to the caller's array and its shape.  Same algorithms, same
 * operation order.  Built by benchmarks/data.py with capsules' own compiler flags. */
#include <math.h>
#include <stdint.h>

#define EXPORT __attribute__((visibility("default")))

typedef struct {
    const double *restrict table;
    int64_t size;
    double x0, dx;
} interpolation;

EXPORT double interpolated(int n, double *x, void *user_data) {
    (void)n;
    const interpolation *d = (const interpolation *)user_data;
    double t = (x[0] - d->x0) / d->dx;
    int64_t i = (int64_t)floor(t);
    if (i < 0) return d->table[0];
    if (i >= d->size - 1) return d->table[d->size - 1];
    double f = t - (double)i;
    return d->table[i] * (1.0 - f) + d->table[i + 1] * f;
}

typedef struct {
    const double *restrict weights;
    int64_t rows, columns;
} weights;

EXPORT int weighted(double *restrict window, intptr_t size, double *restrict out, void *user_data) {
    (void)size;
    const weights *w = (const weights *)user_data;
    double total = 0.0;
    for (int64_t i = 0; i < w->rows; i++)
        for (int64_t j = 0; j < w->columns; j++)
            total += window[i * w->columns + j] * w->weights[i * w->columns + j];
    *out = total;
    return 1;
}
