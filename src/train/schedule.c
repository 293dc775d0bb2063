/* Learning-rate schedules. Auto-DeepLab's search uses cosine decay
 * 0.025 -> 0.001 for the weights (Sec. 5); DeepLab trains with the "poly"
 * policy lr0 (1 - t/T)^0.9 (Chen et al., DeepLab, Sec. 4). Both may start
 * with a linear warmup. */
#include <math.h>
#include <stdio.h>

#include "segnas/train.h"

#define POLY_DEFAULT_POWER 0.9

sn_schedule sn_schedule_cosine(double lr0, double lr_min, int64_t total_steps)
{
    sn_schedule s = {0};
    s.kind = SN_SCHEDULE_COSINE;
    s.lr0 = lr0;
    s.lr_min = lr_min;
    s.total_steps = total_steps;
    return s;
}

sn_schedule sn_schedule_poly(double lr0, double power, int64_t total_steps)
{
    sn_schedule s = {0};
    s.kind = SN_SCHEDULE_POLY;
    s.lr0 = lr0;
    s.power = power;
    s.total_steps = total_steps;
    return s;
}

static int fail(char *err, size_t errlen, const char *what)
{
    if (err && errlen) snprintf(err, errlen, "learning-rate schedule: %s", what);
    return SN_ERR_ARG;
}

int sn_schedule_check(const sn_schedule *s, char *err, size_t errlen)
{
    if (s->kind != SN_SCHEDULE_CONSTANT && s->kind != SN_SCHEDULE_COSINE && s->kind != SN_SCHEDULE_POLY)
        return fail(err, errlen, "unknown kind");
    if (!(s->lr0 >= 0) || !isfinite(s->lr0)) return fail(err, errlen, "lr0 must be a finite value >= 0");
    if (!(s->lr_min >= 0) || !(s->lr_min <= s->lr0)) return fail(err, errlen, "lr_min must be in [0, lr0]");
    if (!(s->power >= 0) || !isfinite(s->power)) return fail(err, errlen, "power must be >= 0");
    if (s->warmup_steps < 0) return fail(err, errlen, "warmup_steps must be >= 0");
    if (!(s->warmup_start_lr >= 0) || !isfinite(s->warmup_start_lr))
        return fail(err, errlen, "warmup_start_lr must be a finite value >= 0");
    if (s->kind != SN_SCHEDULE_CONSTANT && s->total_steps <= s->warmup_steps)
        return fail(err, errlen, "total_steps must exceed warmup_steps");
    return SN_OK;
}

/* The decay part at t in [0, T]. */
static double decay(const sn_schedule *s, double t, double T)
{
    double f = T > 0 ? fmin(fmax(t / T, 0.0), 1.0) : 1.0;
    switch (s->kind) {
    case SN_SCHEDULE_COSINE:
        return s->lr_min + 0.5 * (s->lr0 - s->lr_min) * (1.0 + cos(M_PI * f));
    case SN_SCHEDULE_POLY: {
        double power = s->power > 0 ? s->power : POLY_DEFAULT_POWER;
        return s->lr_min + (s->lr0 - s->lr_min) * pow(1.0 - f, power);
    }
    default:
        return s->lr0;
    }
}

double sn_schedule_lr(const sn_schedule *s, int64_t step)
{
    if (step < 0) step = 0;
    int64_t w = s->warmup_steps > 0 ? s->warmup_steps : 0;
    if (step < w)
        return s->warmup_start_lr + (s->lr0 - s->warmup_start_lr) * (double)step / (double)w;
    return decay(s, (double)(step - w), (double)(s->total_steps - w));
}
