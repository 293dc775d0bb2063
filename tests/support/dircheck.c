#include "support/dircheck.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/check.h"

static double ulp(double v) { return fabs(v) * 0x1p-23; }

/* Copies the set's values into / out of one flat array. */
static void flat_copy(const sn_param_set *set, float *flat, bool to_flat)
{
    int64_t off = 0;
    for (int i = 0; i < set->n; i++) {
        sn_tensor *t = set->items[i];
        if (to_flat) memcpy(flat + off, t->data, sizeof(float) * (size_t)t->numel);
        else memcpy(t->data, flat + off, sizeof(float) * (size_t)t->numel);
        off += t->numel;
    }
}

static void set_along(const sn_param_set *set, const float *base, const float *dir, double step)
{
    int64_t off = 0;
    for (int i = 0; i < set->n; i++) {
        sn_tensor *t = set->items[i];
        for (int64_t k = 0; k < t->numel; k++) t->data[k] = base[off + k] + (float)(step * dir[off + k]);
        off += t->numel;
    }
}

bool dir_fd_agrees(dir_loss_fn loss, void *user, const sn_param_set *set, const float *dir, double analytic,
                   double h_min, const char *what)
{
    float *saved = malloc(sizeof(float) * (size_t)sn_param_set_numel(set));
    if (!saved) abort();
    flat_copy(set, saved, true);
    bool ok = false;
    for (double h = 1e-3; h >= h_min * 0.999 && !ok; h /= 3) {
        set_along(set, saved, dir, h);
        double lp = loss(user);
        set_along(set, saved, dir, -h);
        double lm = loss(user);
        double fd = (lp - lm) / (2 * h), tol = 2e-3 * fabs(analytic) + 8 * ulp(lp) / h;
        printf("  %-14s h %.1e  analytic %+.6e  finite difference %+.6e  |diff| %.1e  tolerance %.1e\n", what, h,
               analytic, fd, fabs(analytic - fd), tol);
        ok = fabs(analytic - fd) <= tol;
    }
    flat_copy(set, saved, false);
    free(saved);
    return ok;
}

void dir_check_set(dir_loss_fn loss, void *user, const sn_param_set *set, const char *what, uint64_t seed,
                   double h_min)
{
    int64_t total = sn_param_set_numel(set), off = 0;
    float *dir = malloc(sizeof(float) * (size_t)total);
    if (!dir) abort();
    double norm = 0;
    for (int i = 0; i < set->n; i++) {
        sn_tensor *t = set->items[i];
        for (int64_t k = 0; k < t->numel; k++) dir[off + k] = t->grad[k], norm += (double)t->grad[k] * t->grad[k];
        off += t->numel;
    }
    norm = sqrt(norm);
    CHECK(norm > 0 && isfinite(norm), "%s: nonzero finite gradient (|g| = %g)", what, norm);
    for (int64_t k = 0; k < total; k++) dir[k] = (float)(dir[k] / norm);
    CHECK(dir_fd_agrees(loss, user, set, dir, norm, h_min, what), "%s: derivative along the gradient", what);

    sn_rng rng;
    sn_rng_seed(&rng, seed);
    sn_rng_fill_normal(&rng, dir, total, 0, 1);
    double dn = 0, analytic = 0;
    for (int64_t k = 0; k < total; k++) dn += (double)dir[k] * dir[k];
    off = 0;
    for (int i = 0; i < set->n; i++) {
        sn_tensor *t = set->items[i];
        for (int64_t k = 0; k < t->numel; k++) {
            dir[off + k] = (float)(dir[off + k] / sqrt(dn));
            analytic += (double)t->grad[k] * dir[off + k];
        }
        off += t->numel;
    }
    CHECK(dir_fd_agrees(loss, user, set, dir, analytic, h_min, what), "%s: derivative along a random direction",
          what);
    free(dir);
}
