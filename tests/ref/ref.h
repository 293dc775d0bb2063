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

/* Convolution, NHWC input {n,h,w,ci}, HWIO weights {kh,kw,ci/groups,co},
 * optional bias {co}; output {n,oh,ow,co} with
 * oh = (h + pad_t + pad_b - dil_h*(kh-1) - 1) / stride_h + 1 (likewise ow). */
typedef struct ref_conv_shape {
    int64_t n, h, w, ci, co;
    int kh, kw, stride_h, stride_w, pad_t, pad_l, pad_b, pad_r, dil_h, dil_w, groups;
} ref_conv_shape;
int64_t ref_conv_out_h(const ref_conv_shape *s);
int64_t ref_conv_out_w(const ref_conv_shape *s);
void ref_conv2d(const ref_conv_shape *s, const double *x, const double *w, const double *b, double *y);
