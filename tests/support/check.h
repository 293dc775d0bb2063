/* Minimal test harness: every check is a comparison that can fail. A test
 * program calls the CHECK macros and ends with `return check_summary("name");`, which
 * prints "N passed, M failed" (a line CI reads) and returns nonzero on failure. */
#ifndef SEGNAS_TEST_CHECK_H
#define SEGNAS_TEST_CHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "segnas/ops.h"
#include "segnas/tensor.h"

void check_record(bool ok, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int check_summary(const char *suite);

#define CHECK(cond, ...) check_record((cond), __FILE__, __LINE__, __VA_ARGS__)
/* |a - b| <= tol * max(1, |b|) */
#define CHECK_NEAR(a, b, tol, what)                                                          \
    do {                                                                                     \
        double a_ = (a), b_ = (b);                                                           \
        double s_ = fabs(b_) > 1 ? fabs(b_) : 1;                                             \
        check_record(fabs(a_ - b_) <= (tol) * s_, __FILE__, __LINE__, "%s: %.9g vs %.9g", \
                     (what), a_, b_);                                                        \
    } while (0)

/* Relative error of `got` against `want`: max|got-want| / max(max|want|, floor).
 * Every array comparison of the suite uses this one metric. */
double rel_err_f32_f64(const float *got, const double *want, int64_t n, double floor);
double rel_err_f32(const float *got, const float *want, int64_t n, double floor);

/* Fills a tensor with N(0, std) values from a seeded stream. */
void fill_normal(sn_tensor *t, uint64_t seed, float std);
/* A leaf input that requires a gradient (step arena). */
sn_tensor *leaf4(sn_ctx *ctx, int64_t n, int64_t h, int64_t w, int64_t c, uint64_t seed);
sn_tensor *leaf(sn_ctx *ctx, int ndim, const int64_t *shape, uint64_t seed);

/* A context for tests (fails the test program if it cannot be made). */
sn_ctx *test_ctx(void);

/* Finite-difference gradient check against a double-precision reference.
 * The scalar loss is L(x) = sum_i r_i * f(x)_i where f is the op evaluated by
 * the reference `fn` on double inputs; `fn` writes `out_n` doubles.
 * Compares analytic gradients `grads[k]` (float, as the engine computed them
 * with output gradient r) against central differences of L in float64 for
 * each of the `n_inputs` inputs. Returns the worst relative error. */
typedef void (*ref_fn)(void *user, const double *const *inputs, double *out);
double gradcheck(ref_fn fn, void *user, int n_inputs, const float *const *inputs,
                 const int64_t *input_sizes, const float *const *grads, const float *r,
                 int64_t out_n, double h);

/* malloc'ed array of n N(0,1) floats (e.g. an output gradient). */
float *random_floats(int64_t n, uint64_t seed);

/* Copies float data to a freshly malloc'ed double array. */
double *to_f64(const float *x, int64_t n);

#endif
