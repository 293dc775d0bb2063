/* Plain-C, double-precision reference implementations of every op: the test
 * oracles for the fast kernels and the functions that finite differences
 * differentiate. Same layouts as the engine (NHWC, HWIO weights). Written for
 * obviousness, not speed. */
#ifndef SEGNAS_TEST_REF_H
#define SEGNAS_TEST_REF_H

#include <stdbool.h>
#include <stdint.h>

void ref_relu(const double *x, double *y, int64_t n);
void ref_add(const double *a, const double *b, double *y, int64_t n);
void ref_mul(const double *a, const double *b, double *y, int64_t n);

#endif
