/* Gradient checks of whole networks by directional finite differences.
 *
 * A network's forward is float32; per-element differences drown in its
 * rounding, so the check runs along whole directions: the normalised
 * gradient (the derivative there is |g|, and any wrong component lowers it)
 * and a random unit direction. The loss is summed in float64; deep nets
 * with batch norm over few values and ReLU / max-pool kinks are strongly
 * curved, so the step shrinks until the central difference agrees within
 * 2e-3 relative plus the float32 noise of the loss (8 ulps / h). */
#ifndef SEGNAS_TEST_DIRCHECK_H
#define SEGNAS_TEST_DIRCHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "segnas/nn.h"

/* The loss at the parameters' current values (no backward). */
typedef double (*dir_loss_fn)(void *user);

/* Central differences of the loss along `dir` (one float per element of the
 * set, in order) for steps 1e-3, 1e-3/3, ... down to h_min; true when one
 * agrees with `analytic`. Restores the parameters. */
bool dir_fd_agrees(dir_loss_fn loss, void *user, const sn_param_set *set, const float *dir, double analytic,
                   double h_min, const char *what);

/* Both checks (gradient direction and a random one seeded by `seed`) for a
 * set whose gradients hold d(loss)/d(param); records CHECK results. */
void dir_check_set(dir_loss_fn loss, void *user, const sn_param_set *set, const char *what, uint64_t seed,
                   double h_min);

#endif
