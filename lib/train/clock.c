/* The monotonic clock of the step timers (kept apart: it needs POSIX declarations). */
#define _POSIX_C_SOURCE 199309L
#include "train/trainer_internal.h"

#include <time.h>

double sae_train_now(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0.0; /* no clock: the timers stay at zero, nothing else depends on them */
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
